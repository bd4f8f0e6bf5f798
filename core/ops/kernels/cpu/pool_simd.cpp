// float32 max pooling with AVX-512: 16 output columns at a time, the window's taps visited in the
// scalar kernel's order (rows, then columns) with the same rule (take v when v > best or v is
// nan), so values and indices equal the scalar kernel's exactly. Columns outside the input are
// masked out (as if absent); rows outside are skipped. Stride 1: masked loads; stride 2: two
// masked loads of 32 pixels and a permute keeping the even ones; other strides: gathers.
#include "core/ops/kernels/cpu/pool_simd.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "core/ops/kernels/cpu/vec_math.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HERON_POOL_X86 1
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#endif

namespace heron {
namespace cpu {

#if HERON_POOL_X86
namespace {

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f")
#endif

inline uint32_t lane_bits(int64_t n) {  // the first n (clamped to [0, 16]) lanes
  return n <= 0 ? 0u : n >= 16 ? 0xFFFFu : (1u << n) - 1;
}

// kIdx: also the flat index of each maximum (ip); without it only the values (a session that
// drops the indices), the same values.
template <bool kIdx>
void max_plane(const float* xp, float* yp, int64_t* ip, const PoolGeom& g) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i Wv = _mm512_set1_epi32(static_cast<int32_t>(g.W));
  const __m512 ninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    const int64_t h0 = oh * g.sH - g.pH;
    int64_t ih_lo = h0;
    while (ih_lo < 0) ih_lo += g.dH;
    const int64_t h_end = std::min(h0 + (g.kH - 1) * g.dH + 1, g.H);
    for (int64_t ow0 = 0; ow0 < g.OW; ow0 += 16) {
      const int64_t n = std::min<int64_t>(16, g.OW - ow0);
      const __mmask16 out_mask = static_cast<__mmask16>(n >= 16 ? 0xFFFF : (1u << n) - 1);
      // w0 per lane = ow * sW - pW; the first valid column is w0 rounded up by dW past 0.
      const __m512i ow = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int32_t>(ow0)), lane);
      const __m512i w0 = _mm512_sub_epi32(_mm512_mullo_epi32(ow, _mm512_set1_epi32(static_cast<int32_t>(g.sW))),
                                          _mm512_set1_epi32(static_cast<int32_t>(g.pW)));
      // iw_lo = w0 < 0 ? w0 + ceil(-w0 / dW) * dW : w0
      __m512i iw_lo = w0;
      if (kIdx && ow0 * g.sW < g.pW) {  // some lane starts left of the input (a division per lane: only here)
        alignas(64) int32_t w0a[16], lo[16];
        _mm512_store_si512(w0a, w0);
        for (int k = 0; k < 16; ++k) {
          int32_t v = w0a[k];
          if (v < 0) v += static_cast<int32_t>(((-v) + g.dW - 1) / g.dW * g.dW);
          lo[k] = v;
        }
        iw_lo = _mm512_load_si512(lo);
      }
      __m512 best = ninf;
      __m512i bi = _mm512_setzero_si512();
      if constexpr (kIdx) bi = _mm512_add_epi32(_mm512_mullo_epi32(_mm512_set1_epi32(static_cast<int32_t>(ih_lo)), Wv), iw_lo);
      for (int64_t ih = ih_lo; ih < h_end; ih += g.dH) {
        const float* row = xp + ih * g.W;
        const __m512i rowbase = _mm512_set1_epi32(static_cast<int32_t>(ih * g.W));
        for (int64_t j = 0; j < g.kW; ++j) {
          const __m512i iw = _mm512_add_epi32(w0, _mm512_set1_epi32(static_cast<int32_t>(j * g.dW)));
          const __mmask16 valid = _mm512_cmplt_epu32_mask(iw, Wv) & out_mask;
          if (!valid) continue;
          __m512 v;
          if (g.sW == 1) {
            v = _mm512_mask_loadu_ps(ninf, valid, row + (ow0 * g.sW - g.pW + j * g.dW));
          } else if (g.sW == 2) {  // 32 consecutive pixels (outside [0, W): -inf), keep the even ones
            const int64_t base = 2 * ow0 - g.pW + j * g.dW;
            const int64_t lo = std::max<int64_t>(0, -base), hi = std::min<int64_t>(2 * n, g.W - base);
            const __mmask16 m0 = static_cast<__mmask16>(lane_bits(hi) & ~lane_bits(lo));
            const __mmask16 m1 = static_cast<__mmask16>(lane_bits(hi - 16) & ~lane_bits(lo - 16));
            v = _mm512_permutex2var_ps(_mm512_mask_loadu_ps(ninf, m0, row + base), even, _mm512_mask_loadu_ps(ninf, m1, row + base + 16));
          } else {
            v = _mm512_mask_i32gather_ps(ninf, valid, iw, row, 4);
          }
          const __mmask16 take = (_mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q)) & valid;
          best = _mm512_mask_mov_ps(best, take, v);
          if constexpr (kIdx) bi = _mm512_mask_mov_epi32(bi, take, _mm512_add_epi32(rowbase, iw));
        }
      }
      _mm512_mask_storeu_ps(yp + oh * g.OW + ow0, out_mask, best);
      if constexpr (!kIdx) continue;
      int64_t* o = ip + oh * g.OW + ow0;
      _mm512_mask_storeu_epi64(o, static_cast<__mmask8>(out_mask & 0xFF), _mm512_cvtepi32_epi64(_mm512_castsi512_si256(bi)));
      _mm512_mask_storeu_epi64(o + 8, static_cast<__mmask8>(out_mask >> 8), _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(bi, 1)));
    }
  }
}

// max(a, b) where a nan in either wins (the scalar kernel's rule; which nan does not matter).
inline __m512 nanmax(__m512 a, __m512 b) { return _mm512_mask_mov_ps(_mm512_max_ps(a, b), _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q), a); }

// Values only, 3x3 windows, stride 2, padding 1, no dilation (ResNet's stem pool), separably: per
// output row the maximum of its (up to) three input rows into m (a row of W, -inf on both sides),
// then per 16 outputs the maximum of m's columns 2j-1, 2j and 2j+1 (even lanes of three loads).
// The same values as max_plane (maxima are exact; a nan anywhere in the window gives nan).
void max_plane_3x3s2(const float* xp, float* yp, const PoolGeom& g, float* m) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512 ninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  const int64_t W = g.W, OW = g.OW;
  float* row = m + 16;  // row[-16 .. -1] and row[W ..] stay -inf
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    const int64_t h0 = 2 * oh - 1;
    const float* r[3];
    int nr = 0;
    for (int64_t ih = std::max<int64_t>(h0, 0); ih < std::min<int64_t>(h0 + 3, g.H); ++ih) r[nr++] = xp + ih * W;
    int64_t c = 0;
    for (; c + 16 <= W; c += 16) {  // plain loads: masked ones that miss the cache are slow on Zen 5
      __m512 v = _mm512_loadu_ps(r[0] + c);
      for (int i = 1; i < nr; ++i) v = nanmax(v, _mm512_loadu_ps(r[i] + c));
      _mm512_storeu_ps(row + c, v);
    }
    if (c < W) {
      const __mmask16 mk = static_cast<__mmask16>(lane_bits(W - c));
      __m512 v = _mm512_mask_loadu_ps(ninf, mk, r[0] + c);
      for (int i = 1; i < nr; ++i) v = nanmax(v, _mm512_mask_loadu_ps(ninf, mk, r[i] + c));
      _mm512_mask_storeu_ps(row + c, mk, v);
    }
    for (int64_t ow0 = 0; ow0 < OW; ow0 += 16) {
      const float* b = row + 2 * ow0;
      const __m512 a = _mm512_permutex2var_ps(_mm512_loadu_ps(b - 1), even, _mm512_loadu_ps(b + 15));
      const __m512 c = _mm512_permutex2var_ps(_mm512_loadu_ps(b), even, _mm512_loadu_ps(b + 16));
      const __m512 d = _mm512_permutex2var_ps(_mm512_loadu_ps(b + 1), even, _mm512_loadu_ps(b + 17));
      _mm512_mask_storeu_ps(yp + oh * OW + ow0, static_cast<__mmask16>(lane_bits(OW - ow0)), nanmax(nanmax(a, c), d));
    }
  }
}

// Global average of each plane: four accumulators over 16-pixel chunks (chunk c into c % 4), the
// tail masked into the fourth, combined as (a0 + a1) + (a2 + a3) and reduced by a fixed tree, so a
// plane's sum does not depend on which thread computes it.
void global_avg_planes(const float* x, float* y, int64_t p0, int64_t p1, int64_t HW) {
  const float n_f = static_cast<float>(HW);
  const __mmask16 tail = static_cast<__mmask16>(lane_bits(HW % 16));
  for (int64_t p = p0; p < p1; ++p) {
    const float* xp = x + p * HW;
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= HW; i += 64) {
      a0 = _mm512_add_ps(a0, _mm512_loadu_ps(xp + i));
      a1 = _mm512_add_ps(a1, _mm512_loadu_ps(xp + i + 16));
      a2 = _mm512_add_ps(a2, _mm512_loadu_ps(xp + i + 32));
      a3 = _mm512_add_ps(a3, _mm512_loadu_ps(xp + i + 48));
    }
    if (i + 16 <= HW) {
      a0 = _mm512_add_ps(a0, _mm512_loadu_ps(xp + i));
      i += 16;
      if (i + 16 <= HW) {
        a1 = _mm512_add_ps(a1, _mm512_loadu_ps(xp + i));
        i += 16;
        if (i + 16 <= HW) {
          a2 = _mm512_add_ps(a2, _mm512_loadu_ps(xp + i));
          i += 16;
        }
      }
    }
    if (tail) a3 = _mm512_add_ps(a3, _mm512_maskz_loadu_ps(tail, xp + i));
    const __m512 s = _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3));
    // 16 -> 8 -> 4 -> 2 -> 1 lanes, upper half onto lower half each time.
    __m256 h8 = _mm256_add_ps(_mm512_castps512_ps256(s), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(s), 1)));
    __m128 h4 = _mm_add_ps(_mm256_castps256_ps128(h8), _mm256_extractf128_ps(h8, 1));
    __m128 h2 = _mm_add_ps(h4, _mm_movehl_ps(h4, h4));
    __m128 h1 = _mm_add_ss(h2, _mm_movehdup_ps(h2));
    y[p] = _mm_cvtss_f32(h1) / n_f;
  }
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

}  // namespace

static bool pool_simd_on() {
  static const bool on = [] {
    const char* e = std::getenv("HERON_POOL_SIMD");
    return !(e && !std::strcmp(e, "0"));
  }();
  return on;
}

bool max_pool_f32_simd_ok(const PoolGeom& g) {
  if (vec::active_isa() != vec::Isa::Avx512) return false;
  return pool_simd_on() && g.H * g.W < (int64_t{1} << 30) && g.OW * g.sW + g.kW * g.dW < (int64_t{1} << 29);
}

void max_pool_f32_simd(const float* xp, float* yp, int64_t* ip, const PoolGeom& g) {
  if (ip) {
    max_plane<true>(xp, yp, ip, g);
  } else if (g.kH == 3 && g.kW == 3 && g.sH == 2 && g.sW == 2 && g.pH == 1 && g.pW == 1 && g.dH == 1 && g.dW == 1 &&
             2 * g.OW <= g.W + 1 && 2 * g.OH <= g.H + 1) {
    // m: one row of W with 16 -inf cells before it and enough after it for the last block's loads
    // (columns up to 2 * (OW rounded up to 16) + 17).
    thread_local std::vector<float> m;
    const size_t need = static_cast<size_t>(16 + 2 * ((g.OW + 15) / 16 * 16) + 48 + g.W);
    if (m.size() < need) m.assign(need, -std::numeric_limits<float>::infinity());
    std::fill(m.begin() + 16 + g.W, m.end(), -std::numeric_limits<float>::infinity());  // a wider plane's row may be left there
    max_plane_3x3s2(xp, yp, g, m.data());
  } else {
    max_plane<false>(xp, yp, nullptr, g);
  }
}

bool global_avg_f32_simd_ok(int64_t HW) { return HW > 0 && vec::active_isa() == vec::Isa::Avx512 && pool_simd_on(); }

void global_avg_f32_simd(const float* x, float* y, int64_t p0, int64_t p1, int64_t HW) { global_avg_planes(x, y, p0, p1, HW); }

#else
bool max_pool_f32_simd_ok(const PoolGeom&) { return false; }
void max_pool_f32_simd(const float*, float*, int64_t*, const PoolGeom&) {}
bool global_avg_f32_simd_ok(int64_t) { return false; }
void global_avg_f32_simd(const float*, float*, int64_t, int64_t, int64_t) {}
#endif

}  // namespace cpu
}  // namespace heron
