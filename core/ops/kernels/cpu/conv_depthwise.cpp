// Depthwise float32 convolution (groups == C == K) for AVX-512 CPUs, NCHW, one plane (image,
// channel) at a time; the bias, a residual (y's layout) and a clamp are applied in registers
// before the single store (MobileNet's conv + BatchNorm (folded) + ReLU6 is one pass).
//
// 3x3 kernels, dilation 1, stride 1 or 2 (MobileNetV2's every depthwise layer) have their own
// paths. The plane's nine weights, bias and clamp bounds stay in registers throughout.
// - stride-1 rows (output width > 8, or != input width): a step of R output rows (8, or 7 where
//   that divides the height) and one block of 16 output columns is accumulated in R registers;
//   each of the step's R + 2 input rows is loaded once per block (three unaligned loads, one per
//   kernel column) and feeds every output row it belongs to: 3 (R + 2) loads for 9R FMAs instead
//   of 9R loads. Interior blocks use plain loads, edge blocks masked ones (masks tabulated once
//   per call).
// - flat (stride 1, output width == input width <= 8: 7x7 planes): the plane is one run of OH*OW
//   pixels, 16 per register; tap (i, j) is the run shifted by (i - pH) * W + (j - pW), with a
//   per-register, per-tap mask (tabulated once per call) zeroing what falls outside the image.
//   No lanes are wasted on 7-wide rows. Planes of 49-64 pixels (four registers) one at a time with
//   everything in registers; others two at a time: each mask is loaded once for both, and their 8
//   accumulation chains hide the FMA latency. (From 9 wide on, the rows path with its
//   shared row loads is faster: 14x14, 576 planes: 36 vs 50 us.)
// - stride-2 rows (output width > 7): steps of R output rows (2R + 1 input rows instead of 3R; R
//   by size, see dw3_s2_rows_per_step); an input row is loaded as 32 pixels from the block's
//   second tap column (aligned on MobileNet's 112-wide planes: no cache-line splits) plus one
//   broadcast pixel, and the three tap vectors come from in-lane shuffles and one permute (see
//   dw3_s2_rows).
// - stride-2 pairs (output width <= 7: 14x14 -> 7x7): two output rows per register (lanes 0-7
//   and 8-15); per kernel row one masked load from each of the two input rows and three
//   two-source permutes give the three tap vectors of both; two planes at a time.
// Everything else (other kernels, strides, dilations) takes the general path: per output row,
// 16-column blocks accumulated over the valid taps (dw_general_plane).
//
// Planes are split over the pool; every output element is summed by one thread in a fixed tap
// order, so results do not depend on the thread count.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/ops/kernels/cpu/conv_gemm.h"
#include "core/ops/kernels/cpu/vec_math.h"
#include "core/tensor/tensor.h"
#include "core/util/error.h"
#include "core/util/thread_pool.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HERON_CONV_DW_X86 1
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#endif

namespace heron {
namespace cpu {

#if HERON_CONV_DW_X86
namespace {

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f")
#endif

inline __mmask16 lane_mask(int64_t n) {  // the first n (clamped to [0, 16]) lanes
  if (n <= 0) return 0;
  if (n >= 16) return 0xFFFF;
  return static_cast<__mmask16>((1u << n) - 1);
}

// ------------------------------------------------------------------ general path
// The column geometry is the same for every row and plane, so it is tabulated once per call: for
// each block of 16 output columns and each kernel column j, where the taps start in the input row
// and which lanes are inside [0, W) (stride 1: one masked load; stride 2: two masked loads of 32
// consecutive pixels and a permute keeping the even ones; other strides: a masked gather). A
// plane is then, per output row and block, one register accumulated over the valid kernel rows
// and all kernel columns, plus bias, residual and clamp, one store.
struct DwTable {
  int64_t blocks = 0, kW = 0;
  std::vector<int64_t> base;          // [block][j]: input column of lane 0's tap
  std::vector<__mmask16> m0, m1;      // [block][j]: valid lanes (stride 2: of the two 16-pixel loads)
  std::vector<__mmask16> out;         // [block]: output lanes
};

DwTable dw_table(const ConvGeom& g) {
  DwTable t;
  t.blocks = (g.OW + 15) / 16;
  t.kW = g.kW;
  t.base.resize(static_cast<size_t>(t.blocks * g.kW));
  t.m0.resize(t.base.size());
  t.m1.resize(t.base.size());
  t.out.resize(static_cast<size_t>(t.blocks));
  for (int64_t b = 0; b < t.blocks; ++b) {
    const int64_t ow0 = 16 * b, n = std::min<int64_t>(16, g.OW - ow0);
    t.out[b] = lane_mask(n);
    for (int64_t j = 0; j < g.kW; ++j) {
      const int64_t base = ow0 * g.sW - g.pW + j * g.dW, k = b * g.kW + j;
      t.base[k] = base;
      if (g.sW == 1) {
        const int64_t lo = std::max<int64_t>(0, -base), hi = std::min<int64_t>(n, g.W - base);
        t.m0[k] = static_cast<__mmask16>(lane_mask(hi) & ~lane_mask(lo));
        t.m1[k] = 0;
      } else if (g.sW == 2) {  // pixels base .. base + 2n - 1 are read
        const int64_t lo = std::max<int64_t>(0, -base), hi = std::min<int64_t>(2 * n, g.W - base);
        t.m0[k] = static_cast<__mmask16>(lane_mask(hi) & ~lane_mask(lo));
        t.m1[k] = static_cast<__mmask16>(lane_mask(hi - 16) & ~lane_mask(lo - 16));
      } else {
        __mmask16 m = 0;
        for (int64_t l = 0; l < n; ++l) {
          const int64_t iw = base + l * g.sW;
          if (iw >= 0 && iw < g.W) m = static_cast<__mmask16>(m | (1u << l));
        }
        t.m0[k] = m;
        t.m1[k] = 0;
      }
    }
  }
  return t;
}

template <int S>  // the width stride when 1 or 2; 0 = any (gathers)
void dw_general_plane(const float* xp, const float* wc, float bias, float* yp, const float* rp, const ConvGeom& g, const DwTable& t,
                     bool clamp, float lo, float hi) {
  const __m512 lov = _mm512_set1_ps(lo), hiv = _mm512_set1_ps(hi), bv = _mm512_set1_ps(bias);
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i steps = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32(static_cast<int32_t>(g.sW)));
  const int64_t kW = g.kW, units = g.OH * t.blocks;
  auto load = [&](const float* row, int64_t k) {
    if (S == 1) return _mm512_maskz_loadu_ps(t.m0[k], row + t.base[k]);
    if (S == 2)
      return _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(t.m0[k], row + t.base[k]), even, _mm512_maskz_loadu_ps(t.m1[k], row + t.base[k] + 16));
    return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), t.m0[k], _mm512_add_epi32(steps, _mm512_set1_epi32(static_cast<int32_t>(t.base[k]))), row,
                                    4);
  };
  auto finish = [&](__m512 a, int64_t oh, int64_t b) {
    const __mmask16 out = t.out[b];
    const int64_t o = oh * g.OW + 16 * b;
    if (rp) a = _mm512_add_ps(a, _mm512_maskz_loadu_ps(out, rp + o));
    if (clamp) a = _mm512_min_ps(hiv, _mm512_max_ps(lov, a));
    _mm512_mask_storeu_ps(yp + o, out, a);
  };
  if (t.blocks >= 4) {
    // Wide rows: per output row, four blocks at a time (four independent accumulation chains
    // hide the FMA latency), the valid kernel rows found once per row.
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      const float* rows[16];
      const float* wrow[16];
      int64_t nr = 0;
      for (int64_t i = 0; i < g.kH; ++i) {  // kH <= 16 (depthwise_f32_supported)
        const int64_t ih = oh * g.sH - g.pH + i * g.dH;
        if (ih < 0 || ih >= g.H) continue;
        rows[nr] = xp + ih * g.W;
        wrow[nr] = wc + i * kW;
        ++nr;
      }
      for (int64_t b0 = 0; b0 < t.blocks; b0 += 4) {
        const int64_t nb = std::min<int64_t>(4, t.blocks - b0);
        __m512 acc[4] = {bv, bv, bv, bv};
        for (int64_t r = 0; r < nr; ++r)
          for (int64_t j = 0; j < kW; ++j) {
            const __m512 wv = _mm512_set1_ps(wrow[r][j]);
#pragma GCC unroll 4
            for (int q = 0; q < 4; ++q) {
              if (q >= nb) break;
              acc[q] = _mm512_fmadd_ps(wv, load(rows[r], (b0 + q) * kW + j), acc[q]);
            }
          }
#pragma GCC unroll 4
        for (int q = 0; q < 4; ++q) {
          if (q >= nb) break;
          finish(acc[q], oh, b0 + q);
        }
      }
    }
    return;
  }
  if (S != 0 && g.OW <= 8) {
    // Planes at most 8 wide (7x7): two output rows per register (lanes 0-7 row oh, 8-15 row
    // oh + 1), four such pairs at a time, instead of 16 lanes for 7 columns.
    const __mmask16 out_lo = lane_mask(g.OW);
    const int64_t pairs = (g.OH + 1) / 2;
    for (int64_t u0 = 0; u0 < pairs; u0 += 4) {
      const int64_t nu = std::min<int64_t>(4, pairs - u0);
      __m512 acc[4] = {bv, bv, bv, bv};
      for (int64_t i = 0; i < g.kH; ++i) {
        const float* ra[4];
        const float* rb[4];
        for (int64_t q = 0; q < nu; ++q) {
          const int64_t oa = 2 * (u0 + q), ob = oa + 1;
          const int64_t iha = oa * g.sH - g.pH + i * g.dH, ihb = ob * g.sH - g.pH + i * g.dH;
          ra[q] = iha >= 0 && iha < g.H ? xp + iha * g.W : nullptr;
          rb[q] = ob < g.OH && ihb >= 0 && ihb < g.H ? xp + ihb * g.W : nullptr;
        }
        for (int64_t j = 0; j < kW; ++j) {
          const __m512 wv = _mm512_set1_ps(wc[i * kW + j]);
          const int64_t base = t.base[j];
          const __mmask16 m = t.m0[j];
#pragma GCC unroll 4
          for (int q = 0; q < 4; ++q) {
            if (q >= nu) break;
            if (!ra[q] && !rb[q]) continue;
            __m512 v;
            if (S == 1) {
              v = ra[q] ? _mm512_maskz_loadu_ps(static_cast<__mmask16>(m & out_lo), ra[q] + base) : _mm512_setzero_ps();
              if (rb[q]) v = _mm512_mask_loadu_ps(v, static_cast<__mmask16>((m & out_lo) << 8), rb[q] + base - 8);
            } else {  // stride 2: 16 pixels of each row, the even ones of both in one permute
              const __m512 a = ra[q] ? _mm512_maskz_loadu_ps(m, ra[q] + base) : _mm512_setzero_ps();
              const __m512 b = rb[q] ? _mm512_maskz_loadu_ps(m, rb[q] + base) : _mm512_setzero_ps();
              v = _mm512_permutex2var_ps(a, even, b);
            }
            acc[q] = _mm512_fmadd_ps(wv, v, acc[q]);
          }
        }
      }
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) {
        if (q >= nu) break;
        const int64_t oa = 2 * (u0 + q);
        const __mmask16 ma = out_lo, mb = oa + 1 < g.OH ? static_cast<__mmask16>(out_lo << 8) : static_cast<__mmask16>(0);
        __m512 a = acc[q];
        if (rp) {
          a = _mm512_add_ps(a, _mm512_maskz_loadu_ps(ma, rp + oa * g.OW));
          if (mb) a = _mm512_mask_add_ps(a, mb, a, _mm512_maskz_loadu_ps(mb, rp + (oa + 1) * g.OW - 8));
        }
        if (clamp) a = _mm512_min_ps(hiv, _mm512_max_ps(lov, a));
        _mm512_mask_storeu_ps(yp + oa * g.OW, ma, a);
        if (mb) _mm512_mask_storeu_ps(yp + (oa + 1) * g.OW - 8, mb, a);
      }
    }
    return;
  }
  // Narrow rows (14x14, 7x7 planes): units (output row, block), four at a time.
  for (int64_t u0 = 0; u0 < units; u0 += 4) {
    const int64_t nu = std::min<int64_t>(4, units - u0);
    const float* rowp[4][16];  // per unit and kernel row: the input row, or null outside the image
    int64_t ub[4], uoh[4];
    __m512 acc[4] = {bv, bv, bv, bv};
    for (int64_t q = 0; q < nu; ++q) {
      const int64_t u = u0 + q, oh = u / t.blocks;
      uoh[q] = oh;
      ub[q] = u % t.blocks;
      for (int64_t i = 0; i < g.kH; ++i) {  // kH <= 16 (depthwise_f32_supported)
        const int64_t ih = oh * g.sH - g.pH + i * g.dH;
        rowp[q][i] = ih >= 0 && ih < g.H ? xp + ih * g.W : nullptr;
      }
    }
    for (int64_t i = 0; i < g.kH; ++i) {
      for (int64_t j = 0; j < kW; ++j) {
        const __m512 wv = _mm512_set1_ps(wc[i * kW + j]);
#pragma GCC unroll 4
        for (int q = 0; q < 4; ++q) {
          if (q >= nu) break;
          const float* row = rowp[q][i];
          if (!row) continue;
          const __m512 v = load(row, ub[q] * kW + j);
          acc[q] = _mm512_fmadd_ps(wv, v, acc[q]);
        }
      }
    }
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) {
      if (q >= nu) break;
      finish(acc[q], uoh[q], ub[q]);
    }
  }
}

// ------------------------------------------------------------------ 3x3, dilation 1
// Tap (i, j) of a plane's weights is w[3 * i + j], broadcast once per plane into w[9].

// Rows paths: per 16-column output block, where lane 0's taps start and which lanes are valid.
struct Dw3Cols {
  int64_t blocks = 0;
  std::vector<int64_t> c0;        // [block]: input column of lane 0's tap j = 0
  std::vector<uint8_t> interior;  // [block]: 16 output lanes, every tap inside the row: plain loads
  std::vector<__mmask16> m;       // [block][3]: stride 1: valid lanes of tap j's load; stride 2: of
                                  // the loads at c0 + 1, c0 + 17 and (lane 15) c0 - 15
  std::vector<__mmask16> out;     // [block]: output lanes
};

Dw3Cols dw3_cols(const ConvGeom& g) {
  Dw3Cols t;
  t.blocks = (g.OW + 15) / 16;
  t.c0.resize(static_cast<size_t>(t.blocks));
  t.interior.resize(t.c0.size());
  t.out.resize(t.c0.size());
  t.m.resize(t.c0.size() * 3);
  auto range = [](int64_t lo, int64_t hi) {  // lanes lo .. hi - 1
    return static_cast<__mmask16>(lane_mask(hi) & ~lane_mask(lo));
  };
  for (int64_t b = 0; b < t.blocks; ++b) {
    const int64_t ow0 = 16 * b, n = std::min<int64_t>(16, g.OW - ow0), c0 = ow0 * g.sW - g.pW;
    t.c0[b] = c0;
    t.out[b] = lane_mask(n);
    __mmask16* m = &t.m[static_cast<size_t>(3 * b)];
    if (g.sW == 1) {
      for (int64_t j = 0; j < 3; ++j) m[j] = range(-(c0 + j), std::min<int64_t>(n, g.W - (c0 + j)));
      t.interior[b] = n == 16 && c0 >= 0 && c0 + 17 < g.W;
    } else {  // columns c0 .. c0 + 2n are read
      const int64_t end = std::min<int64_t>(g.W, c0 + 2 * n + 1);  // one past the last column read
      m[0] = range(-(c0 + 1), end - (c0 + 1));
      m[1] = range(-(c0 + 17), end - (c0 + 17));
      m[2] = c0 >= 0 && c0 < end ? 0x8000 : 0;  // pixel c0 as lane 15 of a load from c0 - 15
      t.interior[b] = n == 16 && c0 >= 0 && c0 + 32 < g.W;
    }
  }
  return t;
}

// One plane of the rows paths.
struct Dw3Plane {
  const float* x;  // input plane
  float* y;        // output plane
  const float* r;  // residual plane (y's layout) or null
  __m512 w[9], bias, lo, hi;
  const float *x_lo, *x_hi;  // the whole input: plain loads inside it are safe
};

#include "core/ops/kernels/cpu/lanes_avx512.inc"  // load_lanes

// The plane's weights, bias and clamp bounds as locals (in registers: a struct's members would be
// reloaded after every store, which may alias them as far as the compiler knows).
#define DW3_LOCALS                                                                                  \
  const __m512 w[9] = {p.w[0], p.w[1], p.w[2], p.w[3], p.w[4], p.w[5], p.w[6], p.w[7], p.w[8]};  \
  const __m512 bias = p.bias, lo = p.lo, hi = p.hi;                                                \
  float* const yp = p.y;                                                                           \
  const float* const rp = p.r;                                                                     \
  const float* const xp = p.x

template <bool Res, bool Clamp>
inline void dw3_store(float* yp, const float* rp, __m512 lo, __m512 hi, __m512 a, int64_t o, __mmask16 out) {
  // Whole blocks load and store plainly (masked loads and stores streaming from / to memory are
  // slow on Zen 5: 256 MB of stores 15-16 ms masked, 9.1-9.5 plain), partial ones masked.
  // (The same for the implicit-GEMM micro-kernel's stores made MobileNetV2 ~7% slower.)
  if (out == 0xFFFF) {
    if (Res) a = _mm512_add_ps(a, load_lanes(out, rp + o, true));
    if (Clamp) a = _mm512_min_ps(hi, _mm512_max_ps(lo, a));
    asm("" : "+v"(a));  // (kept apart from the masked store below)
    _mm512_storeu_ps(yp + o, a);
    return;
  }
  if (Res) a = _mm512_add_ps(a, _mm512_maskz_loadu_ps(out, rp + o));
  if (Clamp) a = _mm512_min_ps(hi, _mm512_max_ps(lo, a));
  _mm512_mask_storeu_ps(yp + o, out, a);
}

// Stride 1: R output rows x 16 columns per step; input row k of the step (R + 2 of them) is
// loaded once (three shifted loads) and feeds output rows k - 2 .. k.
template <int R, bool Res, bool Clamp>
void dw3_s1_rows(const Dw3Plane& p, const ConvGeom& g, const Dw3Cols& t) {
  DW3_LOCALS;
  for (int64_t oh0 = 0; oh0 < g.OH; oh0 += R) {
    const float* rows[R + 2];
    for (int k = 0; k < R + 2; ++k) {
      const int64_t ih = oh0 - g.pH + k;
      rows[k] = ih >= 0 && ih < g.H ? xp + ih * g.W : nullptr;
    }
    const int64_t nr = std::min<int64_t>(R, g.OH - oh0);
    for (int64_t b = 0; b < t.blocks; ++b) {
      __m512 acc[R];
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r] = bias;
      const int64_t c0 = t.c0[b];
      auto taps = [&](int k, __m512 v0, __m512 v1, __m512 v2) {
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          const int i = k - r;
          if (i < 0 || i > 2) continue;
          acc[r] = _mm512_fmadd_ps(w[3 * i], v0, acc[r]);
          acc[r] = _mm512_fmadd_ps(w[3 * i + 1], v1, acc[r]);
          acc[r] = _mm512_fmadd_ps(w[3 * i + 2], v2, acc[r]);
        }
      };
      if (t.interior[b]) {
#pragma GCC unroll 10
        for (int k = 0; k < R + 2; ++k) {
          if (!rows[k]) continue;
          const float* s = rows[k] + c0;
          taps(k, _mm512_loadu_ps(s), _mm512_loadu_ps(s + 1), _mm512_loadu_ps(s + 2));
        }
      } else {
        const __mmask16 m0 = t.m[3 * b], m1 = t.m[3 * b + 1], m2 = t.m[3 * b + 2];
#pragma GCC unroll 10
        for (int k = 0; k < R + 2; ++k) {
          if (!rows[k]) continue;
          const float* s = rows[k] + c0;
          const bool plain = s >= p.x_lo && s + 18 <= p.x_hi;
          taps(k, load_lanes(m0, s, plain), load_lanes(m1, s + 1, plain), load_lanes(m2, s + 2, plain));
        }
      }
      const __mmask16 out = t.out[b];
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r)
        if (r < nr) dw3_store<Res, Clamp>(yp, rp, lo, hi, acc[r], (oh0 + r) * g.OW + 16 * b, out);
    }
  }
}

// Stride 2: R output rows x 16 columns per step; input row k of the step (2R + 1 of them) is
// loaded once and feeds output rows (k - 2) / 2 .. k / 2. The block's 16 outputs read columns
// c0 .. c0 + 32: X0, X1 = the 32 pixels from c0 + 1 (aligned loads when the row is aligned and
// pW = 1, as in MobileNet's 112- and 56-wide planes: no cache-line splits) and pixel c0
// broadcast. Taps 1 and 2 are the even and odd pixels of X0, X1 (vshufps: in-lane, cheap), in a
// permuted lane order (128-bit lane q holds outputs 2q, 2q + 1, 2q + 8, 2q + 9); tap 0 is tap 2
// moved one output along (one two-source permute, taking pixel c0 for output 0). One permute per
// output register restores the order before the store.
template <int R, bool Res, bool Clamp>
void dw3_s2_rows(const Dw3Plane& p, const ConvGeom& g, const Dw3Cols& t) {
  DW3_LOCALS;
  const __m512i order = _mm512_setr_epi32(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
  const __m512i shift = _mm512_setr_epi32(31, 0, 13, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14);
  for (int64_t oh0 = 0; oh0 < g.OH; oh0 += R) {
    const float* rows[2 * R + 1];
    for (int k = 0; k < 2 * R + 1; ++k) {
      const int64_t ih = 2 * oh0 - g.pH + k;
      rows[k] = ih >= 0 && ih < g.H ? xp + ih * g.W : nullptr;
    }
    const int64_t nr = std::min<int64_t>(R, g.OH - oh0);
    for (int64_t b = 0; b < t.blocks; ++b) {
      __m512 acc[R];
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r] = bias;
      const int64_t c0 = t.c0[b];
      auto taps = [&](int k, __m512 x0, __m512 x1, __m512 xl) {
        const __m512 v1 = _mm512_shuffle_ps(x0, x1, _MM_SHUFFLE(2, 0, 2, 0));
        const __m512 v2 = _mm512_shuffle_ps(x0, x1, _MM_SHUFFLE(3, 1, 3, 1));
        const __m512 v0 = _mm512_permutex2var_ps(v2, shift, xl);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          const int i = k - 2 * r;
          if (i < 0 || i > 2) continue;
          acc[r] = _mm512_fmadd_ps(w[3 * i], v0, acc[r]);
          acc[r] = _mm512_fmadd_ps(w[3 * i + 1], v1, acc[r]);
          acc[r] = _mm512_fmadd_ps(w[3 * i + 2], v2, acc[r]);
        }
      };
      if (t.interior[b]) {
#pragma GCC unroll 10
        for (int k = 0; k < 2 * R + 1; ++k) {
          if (!rows[k]) continue;
          const float* s = rows[k] + c0;
          taps(k, _mm512_loadu_ps(s + 1), _mm512_loadu_ps(s + 17), _mm512_set1_ps(s[0]));
        }
      } else {
        const __mmask16 m0 = t.m[3 * b], m1 = t.m[3 * b + 1], ml = t.m[3 * b + 2];
#pragma GCC unroll 10
        for (int k = 0; k < 2 * R + 1; ++k) {
          if (!rows[k]) continue;
          const float* s = rows[k] + c0;
          const bool plain = s - 15 >= p.x_lo && s + 33 <= p.x_hi;
          taps(k, load_lanes(m0, s + 1, plain), load_lanes(m1, s + 17, plain), load_lanes(ml, s - 15, plain));
        }
      }
      const __mmask16 out = t.out[b];
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r)
        if (r < nr) dw3_store<Res, Clamp>(yp, rp, lo, hi, _mm512_permutexvar_ps(order, acc[r]), (oh0 + r) * g.OW + 16 * b, out);
    }
  }
}

// Stride 2, output rows at most 7 wide (14x14 -> 7x7): two output rows per register (lanes 0-7
// row oh, 8-15 row oh + 1). For kernel row i, one masked load of 16 pixels from each of the two
// input rows and three permutes give the three tap vectors of both rows. Planes pl0 .. pl1 - 1,
// two at a time (eight accumulation chains).
// FP: the pair count when known at compile time (4: 7 or 8 output rows; 0: any, in groups of 4).
// With it the group loop and its bounds checks fold away; the weights are broadcast per kernel
// row where used (nine per plane held across the loop were spilled with the accumulators).
template <int FP, bool Res, bool Clamp>
void dw3_s2_pairs(const float* x, const float* wt, const float* bt, float* y, const float* res, float lo_, float hi_, int64_t pl0,
                  int64_t pl1, const ConvGeom& g, __mmask16 ma) {
  const int64_t HW = g.H * g.W, OHW = g.OH * g.OW;
  const __m512 lo = _mm512_set1_ps(lo_), hi = _mm512_set1_ps(hi_);
  const __m512i i0 = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i i1 = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const __m512i i2 = _mm512_setr_epi32(2, 4, 6, 8, 10, 12, 14, 0, 18, 20, 22, 24, 26, 28, 30, 16);  // lanes 7, 15 unused
  const __mmask16 out = lane_mask(g.OW);
  const int64_t pairs = (g.OH + 1) / 2, c0 = -g.pW;
  for (int64_t pl = pl0; pl < pl1; pl += 2) {
    const bool two = pl + 1 < pl1;
    const int64_t ca = pl % g.C, cb = two ? (pl + 1) % g.C : ca;
    const float* wpa = wt + ca * 9;
    const float* wpb = wt + cb * 9;
    const __m512 ba = _mm512_set1_ps(bt ? bt[ca] : 0.f), bb = _mm512_set1_ps(bt ? bt[cb] : 0.f);
    const float* xa = x + pl * HW;
    const float* xb = two ? xa + HW : xa;
    float* ya = y + pl * OHW;
    const float* ra = res ? res + pl * OHW : nullptr;
    for (int64_t u0 = 0; u0 < (FP ? FP : pairs); u0 += 4) {
      const int64_t nu = FP ? FP : std::min<int64_t>(4, pairs - u0);
      __m512 acca[4] = {ba, ba, ba, ba}, accb[4] = {bb, bb, bb, bb};
#pragma GCC unroll 3
      for (int i = 0; i < 3; ++i) {
        const __m512 wa[3] = {_mm512_set1_ps(wpa[3 * i]), _mm512_set1_ps(wpa[3 * i + 1]), _mm512_set1_ps(wpa[3 * i + 2])};
        const __m512 wb[3] = {_mm512_set1_ps(wpb[3 * i]), _mm512_set1_ps(wpb[3 * i + 1]), _mm512_set1_ps(wpb[3 * i + 2])};
#pragma GCC unroll 4
        for (int q = 0; q < 4; ++q) {
          if (q >= nu) break;
          const int64_t oa = 2 * (u0 + q), iha = 2 * oa - g.pH + i, ihb = iha + 2;
          const bool va = iha >= 0 && iha < g.H, vb = oa + 1 < g.OH && ihb >= 0 && ihb < g.H;
          const int64_t sa = iha * g.W + c0, sb = ihb * g.W + c0;
          {
            const __m512 a = va ? _mm512_maskz_loadu_ps(ma, xa + sa) : _mm512_setzero_ps();
            const __m512 b = vb ? _mm512_maskz_loadu_ps(ma, xa + sb) : _mm512_setzero_ps();
            acca[q] = _mm512_fmadd_ps(wa[0], _mm512_permutex2var_ps(a, i0, b), acca[q]);
            acca[q] = _mm512_fmadd_ps(wa[1], _mm512_permutex2var_ps(a, i1, b), acca[q]);
            acca[q] = _mm512_fmadd_ps(wa[2], _mm512_permutex2var_ps(a, i2, b), acca[q]);
          }
          {
            const __m512 a = va ? _mm512_maskz_loadu_ps(ma, xb + sa) : _mm512_setzero_ps();
            const __m512 b = vb ? _mm512_maskz_loadu_ps(ma, xb + sb) : _mm512_setzero_ps();
            accb[q] = _mm512_fmadd_ps(wb[0], _mm512_permutex2var_ps(a, i0, b), accb[q]);
            accb[q] = _mm512_fmadd_ps(wb[1], _mm512_permutex2var_ps(a, i1, b), accb[q]);
            accb[q] = _mm512_fmadd_ps(wb[2], _mm512_permutex2var_ps(a, i2, b), accb[q]);
          }
        }
      }
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) {
        if (q >= nu) break;
        const int64_t oa = 2 * (u0 + q);
        const __mmask16 outb = oa + 1 < g.OH ? static_cast<__mmask16>(out << 8) : static_cast<__mmask16>(0);
        dw3_store<Res, Clamp>(ya, ra, lo, hi, acca[q], oa * g.OW, out);
        if (outb) dw3_store<Res, Clamp>(ya, ra, lo, hi, acca[q], (oa + 1) * g.OW - 8, outb);
        if (two) {
          dw3_store<Res, Clamp>(ya + OHW, ra ? ra + OHW : nullptr, lo, hi, accb[q], oa * g.OW, out);
          if (outb) dw3_store<Res, Clamp>(ya + OHW, ra ? ra + OHW : nullptr, lo, hi, accb[q], (oa + 1) * g.OW - 8, outb);
        }
      }
    }
  }
}

// Flat path (stride 1, OW == W): the plane as one run of OH * OW pixels.
struct Dw3Flat {
  int64_t vecs = 0;              // registers per plane
  int64_t off[9] = {};           // tap (i, j): input offset from the output pixel
  std::vector<__mmask16> m;      // [vec][tap]: lanes whose tap is inside the image
  std::vector<__mmask16> out;    // [vec]: output lanes
};

Dw3Flat dw3_flat_table(const ConvGeom& g) {
  Dw3Flat t;
  const int64_t n = g.OH * g.OW;
  t.vecs = (n + 15) / 16;
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 3; ++j) t.off[3 * i + j] = (i - g.pH) * g.W + (j - g.pW);
  t.m.assign(static_cast<size_t>(t.vecs * 9), 0);
  t.out.resize(static_cast<size_t>(t.vecs));
  for (int64_t v = 0; v < t.vecs; ++v) {
    t.out[v] = lane_mask(n - 16 * v);
    for (int64_t l = 0; l < 16 && 16 * v + l < n; ++l) {
      const int64_t oh = (16 * v + l) / g.OW, ow = (16 * v + l) % g.OW;
      for (int64_t k = 0; k < 9; ++k) {
        const int64_t ih = oh - g.pH + k / 3, iw = ow - g.pW + k % 3;
        if (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W) t.m[v * 9 + k] = static_cast<__mmask16>(t.m[v * 9 + k] | (1u << l));
      }
    }
  }
  return t;
}

// Planes pl0 .. pl1 - 1, two at a time: each tap's mask is loaded once for both planes, and the
// two planes' eight accumulation chains hide the FMA latency.
template <bool Res, bool Clamp>
void dw3_flat(const float* x, const float* wt, const float* bt, float* y, const float* res, float lo_, float hi_, int64_t pl0, int64_t pl1,
              const ConvGeom& g, const Dw3Flat& t) {
  const int64_t HW = g.H * g.W, OHW = g.OH * g.OW;
  const __m512 lo = _mm512_set1_ps(lo_), hi = _mm512_set1_ps(hi_);
  for (int64_t pl = pl0; pl < pl1; pl += 2) {
    const bool two = pl + 1 < pl1;
    const int64_t ca = pl % g.C, cb = two ? (pl + 1) % g.C : ca;
    __m512 wa[9], wb[9];
    for (int k = 0; k < 9; ++k) {
      wa[k] = _mm512_set1_ps(wt[ca * 9 + k]);
      wb[k] = _mm512_set1_ps(wt[cb * 9 + k]);
    }
    const __m512 ba = _mm512_set1_ps(bt ? bt[ca] : 0.f), bb = _mm512_set1_ps(bt ? bt[cb] : 0.f);
    const float* xa = x + pl * HW;
    const float* xb = two ? xa + HW : xa;
    float* ya = y + pl * OHW;
    const float* ra = res ? res + pl * OHW : nullptr;
    for (int64_t v0 = 0; v0 < t.vecs; v0 += 4) {
      const int64_t nv = std::min<int64_t>(4, t.vecs - v0);
      __m512 acca[4] = {ba, ba, ba, ba}, accb[4] = {bb, bb, bb, bb};
#pragma GCC unroll 9
      for (int k = 0; k < 9; ++k) {
#pragma GCC unroll 4
        for (int q = 0; q < 4; ++q) {
          if (q >= nv) break;
          const int64_t v = v0 + q;
          const __mmask16 m = t.m[v * 9 + k];
          const int64_t o = 16 * v + t.off[k];
          acca[q] = _mm512_fmadd_ps(wa[k], _mm512_maskz_loadu_ps(m, xa + o), acca[q]);
          accb[q] = _mm512_fmadd_ps(wb[k], _mm512_maskz_loadu_ps(m, xb + o), accb[q]);
        }
      }
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) {
        if (q >= nv) break;
        dw3_store<Res, Clamp>(ya, ra, lo, hi, acca[q], 16 * (v0 + q), t.out[v0 + q]);
        if (two) dw3_store<Res, Clamp>(ya + OHW, ra ? ra + OHW : nullptr, lo, hi, accb[q], 16 * (v0 + q), t.out[v0 + q]);
      }
    }
  }
}

// Planes of 49-64 pixels (7x7, 8x8: four registers), one at a time: its nine weights in registers
// for the whole plane, four accumulation chains, nothing spilled (dw3_flat's two planes hold 18
// weights and 8 accumulators, and GCC spilled them; MobileNetV2's 960 x 7 x 7 layer, 1 thread:
// 10% faster this way).
template <bool Res, bool Clamp>
void dw3_flat4(const float* x, const float* wt, const float* bt, float* y, const float* res, float lo_, float hi_, int64_t pl0, int64_t pl1,
               const ConvGeom& g, const Dw3Flat& t) {
  const int64_t HW = g.H * g.W, OHW = g.OH * g.OW;
  const __m512 lo = _mm512_set1_ps(lo_), hi = _mm512_set1_ps(hi_);
  const __mmask16* mt = t.m.data();
  int64_t off[9];
  for (int k = 0; k < 9; ++k) off[k] = t.off[k];
  const __mmask16 o3 = t.out[3];
  for (int64_t pl = pl0; pl < pl1; ++pl) {
    const int64_t c = pl % g.C;
    const float* wp = wt + c * 9;
    const __m512 w0 = _mm512_set1_ps(wp[0]), w1 = _mm512_set1_ps(wp[1]), w2 = _mm512_set1_ps(wp[2]), w3 = _mm512_set1_ps(wp[3]),
                 w4 = _mm512_set1_ps(wp[4]), w5 = _mm512_set1_ps(wp[5]), w6 = _mm512_set1_ps(wp[6]), w7 = _mm512_set1_ps(wp[7]),
                 w8 = _mm512_set1_ps(wp[8]);
    const __m512 w[9] = {w0, w1, w2, w3, w4, w5, w6, w7, w8};
    const __m512 b = _mm512_set1_ps(bt ? bt[c] : 0.f);
    const float* xp = x + pl * HW;
    float* yp = y + pl * OHW;
    const float* rp = res ? res + pl * OHW : nullptr;
    __m512 acc[4] = {b, b, b, b};
#pragma GCC unroll 9
    for (int k = 0; k < 9; ++k) {
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) acc[q] = _mm512_fmadd_ps(w[k], _mm512_maskz_loadu_ps(mt[q * 9 + k], xp + 16 * q + off[k]), acc[q]);
    }
    dw3_store<Res, Clamp>(yp, rp, lo, hi, acc[0], 0, 0xFFFF);
    dw3_store<Res, Clamp>(yp, rp, lo, hi, acc[1], 16, 0xFFFF);
    dw3_store<Res, Clamp>(yp, rp, lo, hi, acc[2], 32, 0xFFFF);
    dw3_store<Res, Clamp>(yp, rp, lo, hi, acc[3], 48, o3);
  }
}

// Output rows per step of dw3_s2_rows. Longer steps share more input rows (2R + 1 for R output
// rows) but read 2R + 1 rows side by side: on an input far larger than the L3 cache (MobileNetV2's
// 96-channel 112x112 layer at batch 8: 38 MB) one output row at a time streams it from memory
// much faster (2.0 vs 3.2 ms); 2 rows suit 56-wide outputs, 4 narrower ones.
int dw3_s2_rows_per_step(const ConvGeom& g) {
  if (g.N * g.C * g.H * g.W * int64_t{4} > (int64_t{16} << 20)) return 1;
  return g.OW > 32 ? 2 : 4;
}

// Output rows per step of dw3_s1_rows: 8 (8 accumulators), or 7 where that divides the height and
// 8 does not (14, 28: no rows computed in vain).
int dw3_s1_rows_per_step(int64_t OH) {
  if (OH % 8 == 0) return 8;
  if (OH % 7 == 0) return 7;
  return OH <= 4 ? 4 : 8;
}
enum class DwPath { General, S1Rows, S1Flat, S2Rows, S2Pairs };

DwPath dw_path(const ConvGeom& g) {
  if (g.kH != 3 || g.kW != 3 || g.dH != 1 || g.dW != 1) return DwPath::General;
  if (g.sH == 1 && g.sW == 1) return g.OW == g.W && g.OW <= 8 && g.OH * g.OW <= (int64_t{1} << 14) ? DwPath::S1Flat : DwPath::S1Rows;
  if (g.sH == 2 && g.sW == 2) return g.OW > 7 ? DwPath::S2Rows : DwPath::S2Pairs;
  return DwPath::General;
}

template <bool Res, bool Clamp>
void dw3_plane(DwPath path, const Dw3Plane& p, const ConvGeom& g, const Dw3Cols& cols, const Dw3Flat& flat, __mmask16 pair_mask) {
  if (path == DwPath::S1Rows) {
    const int r = dw3_s1_rows_per_step(g.OH);
    if (r == 8) dw3_s1_rows<8, Res, Clamp>(p, g, cols);
    else if (r == 7) dw3_s1_rows<7, Res, Clamp>(p, g, cols);
    else dw3_s1_rows<4, Res, Clamp>(p, g, cols);
  } else {
    const int r = dw3_s2_rows_per_step(g);
    if (r == 1) dw3_s2_rows<1, Res, Clamp>(p, g, cols);
    else if (r == 2) dw3_s2_rows<2, Res, Clamp>(p, g, cols);
    else dw3_s2_rows<4, Res, Clamp>(p, g, cols);
  }
}

// f(std::bool_constant<residual>, std::bool_constant<clamp>): the four epilogue instantiations.
template <typename F>
inline void dw3_epilogue_variants(F&& f, bool res, bool clamp) {
  if (res) {
    if (clamp) f(std::true_type(), std::true_type());
    else f(std::true_type(), std::false_type());
  } else {
    if (clamp) f(std::false_type(), std::true_type());
    else f(std::false_type(), std::false_type());
  }
}

void depthwise_run(const float* x, const float* w, float* y, const ConvGeom& g, const ConvEpilogue& e) {
  const int64_t HW = g.H * g.W, OHW = g.OH * g.OW, planes = g.N * g.C;
  const bool clamp = e.lo > -__builtin_inff() || e.hi < __builtin_inff();
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 14) / std::max<int64_t>(1, OHW * g.kH * g.kW));
  const DwPath path = dw_path(g);
  const DwTable t = path == DwPath::General ? dw_table(g) : DwTable();
  const Dw3Cols cols = path == DwPath::S1Rows || path == DwPath::S2Rows ? dw3_cols(g) : Dw3Cols();
  const Dw3Flat flat = path == DwPath::S1Flat ? dw3_flat_table(g) : Dw3Flat();
  // S2Pairs: input columns -pW .. 2 OW - pW (2 OW + 1 <= 15 of them) inside the row.
  const __mmask16 pair_mask = static_cast<__mmask16>(lane_mask(std::min<int64_t>(2 * g.OW + 1, g.W + g.pW)) & ~lane_mask(g.pW));
  const bool pairs4 = (g.OH + 1) / 2 == 4;  // 7 or 8 output rows (MobileNet's 14x14 -> 7x7)
  const bool flat4 = flat.vecs == 4;  // 49-64 pixels (7x7, 8x8 planes): dw3_flat4
  parallel_for(0, planes, grain, [&](int64_t p0, int64_t p1) {
    if (path == DwPath::S2Pairs) {
      if (pairs4) dw3_epilogue_variants([&](auto res, auto clp) {
        dw3_s2_pairs<4, decltype(res)::value, decltype(clp)::value>(x, w, e.bias, y, e.residual, e.lo, e.hi, p0, p1, g, pair_mask);
      }, e.residual != nullptr, clamp);
      else dw3_epilogue_variants([&](auto res, auto clp) {
        dw3_s2_pairs<0, decltype(res)::value, decltype(clp)::value>(x, w, e.bias, y, e.residual, e.lo, e.hi, p0, p1, g, pair_mask);
      }, e.residual != nullptr, clamp);
      return;
    }
    if (path == DwPath::S1Flat && flat4) {
      dw3_epilogue_variants([&](auto res, auto clp) {
        dw3_flat4<decltype(res)::value, decltype(clp)::value>(x, w, e.bias, y, e.residual, e.lo, e.hi, p0, p1, g, flat);
      }, e.residual != nullptr, clamp);
      return;
    }
    if (path == DwPath::S1Flat) {
      dw3_epilogue_variants([&](auto res, auto clp) {
        dw3_flat<decltype(res)::value, decltype(clp)::value>(x, w, e.bias, y, e.residual, e.lo, e.hi, p0, p1, g, flat);
      }, e.residual != nullptr, clamp);
      return;
    }
    for (int64_t pl = p0; pl < p1; ++pl) {
      const int64_t c = pl % g.C;
      const float* xp = x + pl * HW;
      const float* wc = w + c * g.kH * g.kW;
      const float b = e.bias ? e.bias[c] : 0.f;
      float* yp = y + pl * OHW;
      const float* rp = e.residual ? e.residual + pl * OHW : nullptr;
      if (path == DwPath::General) {
        if (g.sW == 1) dw_general_plane<1>(xp, wc, b, yp, rp, g, t, clamp, e.lo, e.hi);
        else if (g.sW == 2) dw_general_plane<2>(xp, wc, b, yp, rp, g, t, clamp, e.lo, e.hi);
        else dw_general_plane<0>(xp, wc, b, yp, rp, g, t, clamp, e.lo, e.hi);
        continue;
      }
      Dw3Plane p;
      p.x = xp;
      p.y = yp;
      p.r = rp;
      for (int k = 0; k < 9; ++k) p.w[k] = _mm512_set1_ps(wc[k]);
      p.bias = _mm512_set1_ps(b);
      p.lo = _mm512_set1_ps(e.lo);
      p.hi = _mm512_set1_ps(e.hi);
      p.x_lo = x;
      p.x_hi = x + g.N * g.C * HW;
      if (rp) {
        if (clamp) dw3_plane<true, true>(path, p, g, cols, flat, pair_mask);
        else dw3_plane<true, false>(path, p, g, cols, flat, pair_mask);
      } else {
        if (clamp) dw3_plane<false, true>(path, p, g, cols, flat, pair_mask);
        else dw3_plane<false, false>(path, p, g, cols, flat, pair_mask);
      }
    }
  });
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

}  // namespace

bool depthwise_f32_supported(const ConvGeom& g) {
  if (!conv_fast_enabled() || vec::active_isa() != vec::Isa::Avx512) return false;
  if (!(g.G > 1 && g.G == g.C && g.K == g.C) || g.kH > 16) return false;
  return g.H * g.W < (int64_t{1} << 30) && g.OW * g.sW + g.kW * g.dW < (int64_t{1} << 29);
}

void depthwise_f32(const Tensor& x, const Tensor& w, const Tensor& y, const ConvGeom& g, const ConvEpilogue& e) {
  depthwise_run(x.data<float>(), w.data<float>(), y.data<float>(), g, e);
}

#else  // not x86-64

bool depthwise_f32_supported(const ConvGeom&) { return false; }
void depthwise_f32(const Tensor&, const Tensor&, const Tensor&, const ConvGeom&, const ConvEpilogue&) {
  throw Error(ErrorCode::NotImplemented, "depthwise_f32: not available on this CPU");
}

#endif

}  // namespace cpu
}  // namespace heron
