// Implicit-GEMM float32 convolution for AVX-512 CPUs (the inference fast path; also the forward
// product of training).
//
//   y[n, g] (Kg x OH*OW) = w[g] (Kg x Cg*kH*kW) @ col(x[n, g]) (Cg*kH*kW x OH*OW)
//
// without ever building col: a micro-kernel computes an 8 x 32 block of y (8 output channels x 32
// output pixels, 16 zmm accumulators) from a packed 8-row sliver of w and a packed 32-column
// panel of col, which is gathered from x just before use (kc rows at a time, so it stays in L1
// while every 8-row sliver of w passes over it). The packed weights (w[g] cut into 8-row slivers,
// k-major, rows past Kg zero) are made once per frozen weight tensor (a session's) and cached with
// its storage, or per call for other weights. The
// bias, a residual (same layout as y) and a clamp (ReLU = [0, inf), ReLU6 = [0, 6]) are applied
// while the block is in registers, so conv + BatchNorm (folded) + add + ReLU is one pass over y.
//
// Work items are (group, image, run of panels, range of 8-row slivers), pulled by the pool
// threads from a shared counter; each output element is summed by one thread in a fixed order
// (k blocks in sequence), so results do not depend on the thread count.
//
// Packing the column panel: 1x1 stride-1 unpadded convolutions read 32 consecutive pixels (masked
// loads), or with at most 8 slivers (or reducing channels on a plane of <= 256 pixels) are not
// packed at all (the micro-kernel reads x with row stride H*W); stride-1 convolutions copy each
// output row's run of pixels with masked loads clipped to the image (zeros outside); stride-2 stems (few reduction rows, kernel >= 3
// wide) split the input once into even and odd columns (with rows of zeros above and below) and
// read it in place, each 16-pixel half of a panel through its output row's table of k rows
// (copying only panels whose halves cross a row); other stride-2 convolutions
// keep the even pixels of two loads with a permute; anything else gathers (vgatherdps) with a
// validity mask. A panel's tail of at most 16 pixels (14x14 planes: 4 of 32) runs a half-width
// micro-kernel; at batch > 1, 1x1 convolutions pool such tails of several images into one
// packed panel instead, and otherwise run a tail of at most 8 pixels as pixels as rows
// (conv_narrow_tail.cpp). 1x1 convolutions take k blocks of up to 640 rows (others 256). The next
// panel's output lines are prefetched into L2 when a panel writes at most 96 rows; for 1x1
// convolutions with inputs over 1 MB the next panel's input rows too (one row per step of the
// first sliver, or of the packing): kc rows H*W apart are more streams than the hardware
// prefetchers follow.
#include "core/ops/kernels/cpu/conv_gemm.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "core/ops/kernels/cpu/split_items.h"
#include "core/ops/kernels/cpu/vec_math.h"
#include "core/tensor/tensor.h"
#include "core/util/error.h"
#include "core/util/thread_pool.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HERON_CONV_GEMM_X86 1
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#endif

namespace heron {
namespace cpu {

bool conv_fast_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("HERON_CONV_FAST");
    return !(e && !std::strcmp(e, "0"));
  }();
  return on;
}

#if HERON_CONV_GEMM_X86
namespace {

constexpr int64_t MR = 8;    // output channels per micro-kernel block
constexpr int64_t NR = 32;   // output pixels per micro-kernel block (two zmm)
constexpr int64_t KC = 256;  // reduction rows per packed panel (32 KB of column panel at most)
constexpr int64_t KC_1X1 = 640;  // the same for 1x1 convolutions (80 KB, read from L2)
constexpr int64_t PANELS_PER_ITEM = 8;

// Per-thread, 64-byte aligned float buffers that only grow, kept across calls (panels, Winograd
// transforms, partial sums): slot i is one buffer.
struct Scratch {
  float* p[2] = {nullptr, nullptr};
  size_t n[2] = {0, 0};
  ~Scratch() {
    std::free(p[0]);
    std::free(p[1]);
  }
  float* get(int slot, size_t want) {
    if (n[slot] < want) {
      std::free(p[slot]);
      p[slot] = static_cast<float*>(std::aligned_alloc(64, (want * sizeof(float) + 63) / 64 * 64));
      n[slot] = p[slot] ? want : 0;
      if (!p[slot]) throw Error(ErrorCode::OutOfMemory, str_cat("conv2d: cannot allocate ", want * sizeof(float), " bytes of scratch"));
    }
    return p[slot];
  }
};

Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

struct PackedWeight {
  float* data = nullptr;
  ~PackedWeight() { std::free(data); }
};

// w[g] (Kg x Kd) as slivers of MR rows: packed[((g * Mb + mb) * Kd + k) * MR + r] = w[g][mb*MR + r][k].
std::shared_ptr<const PackedWeight> packed_weight(const Tensor& w, const ConvGeom& g, int64_t Kg, int64_t Kd, int64_t Mb) {
  // Cached with the weight's storage only when it is frozen (a session's weights); otherwise
  // packed per call (eager calls and training, where weights change between calls).
  const Storage& st = *w.storage();
  const bool cache = st.frozen();
  const std::string key = cache ? str_cat("conv_gemm.mr8:", w.offset(), ":", w.shape().str(), ":", g.G) : std::string();
  if (cache)
    if (auto p = st.find_derived(key)) return std::static_pointer_cast<const PackedWeight>(p);
  auto pw = std::make_shared<PackedWeight>();
  const size_t n = static_cast<size_t>(g.G * Mb * Kd * MR);
  const size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
  pw->data = static_cast<float*>(std::aligned_alloc(64, std::max<size_t>(bytes, 64)));
  if (!pw->data) throw Error(ErrorCode::OutOfMemory, str_cat("conv2d: cannot allocate ", bytes, " bytes of packed weights"));
  const float* src = w.data<float>();
  for (int64_t gi = 0; gi < g.G; ++gi)
    for (int64_t mb = 0; mb < Mb; ++mb) {
      float* dst = pw->data + (gi * Mb + mb) * Kd * MR;
      for (int64_t r = 0; r < MR; ++r) {
        const int64_t m = mb * MR + r;
        const float* row = m < Kg ? src + (gi * Kg + m) * Kd : nullptr;
        for (int64_t k = 0; k < Kd; ++k) dst[k * MR + r] = row ? row[k] : 0.f;
      }
    }
  if (cache) st.put_derived(key, pw);
  return pw;
}

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

#include "core/ops/kernels/cpu/lanes_avx512.inc"

struct Store {
  int64_t rows;             // valid rows of the block (<= MR)
  __mmask16 m0, m1;         // valid columns
  bool accumulate;          // add to what y holds (an earlier k block)
  bool last;                // the last k block: apply the epilogue
  const float* bias;        // at the block's first row, or null
  const float* res;         // at the block's first element, or null
  bool clamp;
  float lo, hi;
};

// C (rows x 32, row stride ldc) [+]= A (kc x MR) @ B (kc x NR), then the epilogue on the last block.
// NV = 1: only the first 16 columns (a panel's tail of at most 16 pixels: 14x14 planes end with
// 4 of 32), half the work.
// B rows: packed (kc x NR), or with LDB rows ldb apart in place, or with BT row k at Bt[k].
// BT2: the two halves of row k at Bt[k] + off and Bt2[k] + off2 (a panel across two output rows).
template <int NV = 2, bool LDB = false, bool BT = false, bool PF = false, bool BT2 = false>
inline void micro_kernel(int64_t kc, const float* __restrict A, const float* __restrict B, float* C, int64_t ldc, const Store& s,
                         int64_t ldb = NR, const float* const* Bt = nullptr, const float* const* Bt2 = nullptr, int64_t off = 0,
                         int64_t off2 = 0) {
  __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  __m512 c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
  for (int64_t k = 0; k < kc; ++k) {
    if (BT) B = Bt[k];
    if (BT2) B = Bt[k] + off;
    const float* B2 = BT2 ? Bt2[k] + off2 : B + 16;
    if (PF) {  // row k of the next panel (in place: NR floats further) into L2, one to three lines
      _mm_prefetch(reinterpret_cast<const char*>(B + NR), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(B + NR + 16), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(B + NR + 31), _MM_HINT_T1);
    }
    const __m512 b0 = LDB || BT || BT2 ? _mm512_loadu_ps(B) : _mm512_load_ps(B);
    const __m512 b1 = NV == 2 ? (LDB || BT || BT2 ? _mm512_loadu_ps(B2) : _mm512_load_ps(B2)) : b0;
    __m512 a;
#define HERON_FMA_ROW(r)            \
  a = _mm512_set1_ps(A[r]);         \
  c##r##0 = _mm512_fmadd_ps(a, b0, c##r##0); \
  if (NV == 2) c##r##1 = _mm512_fmadd_ps(a, b1, c##r##1);
    HERON_FMA_ROW(0) HERON_FMA_ROW(1) HERON_FMA_ROW(2) HERON_FMA_ROW(3)
    HERON_FMA_ROW(4) HERON_FMA_ROW(5) HERON_FMA_ROW(6) HERON_FMA_ROW(7)
#undef HERON_FMA_ROW
    A += MR;
    B += LDB ? ldb : NR;
  }
  const __m512 lo = _mm512_set1_ps(s.lo), hi = _mm512_set1_ps(s.hi);
  auto store_row = [&](int64_t r, __m512 x0, __m512 x1) {
    float* cr = C + r * ldc;
    if (s.accumulate) {
      x0 = _mm512_add_ps(x0, load_lanes(s.m0, cr, s.m0 == 0xFFFF));
      if (NV == 2) x1 = _mm512_add_ps(x1, load_lanes(s.m1, cr + 16, s.m1 == 0xFFFF));
    }
    if (s.last) {
      if (s.bias) {
        const __m512 bv = _mm512_set1_ps(s.bias[r]);
        x0 = _mm512_add_ps(x0, bv);
        if (NV == 2) x1 = _mm512_add_ps(x1, bv);
      }
      if (s.res) {
        const float* rr = s.res + r * ldc;
        x0 = _mm512_add_ps(x0, load_lanes(s.m0, rr, s.m0 == 0xFFFF));
        if (NV == 2) x1 = _mm512_add_ps(x1, load_lanes(s.m1, rr + 16, s.m1 == 0xFFFF));
      }
      if (s.clamp) {
        // max/min return their second operand when either is nan: nan stays nan, like clamp.
        x0 = _mm512_min_ps(hi, _mm512_max_ps(lo, x0));
        if (NV == 2) x1 = _mm512_min_ps(hi, _mm512_max_ps(lo, x1));
      }
    }
    _mm512_mask_storeu_ps(cr, s.m0, x0);
    if (NV == 2) _mm512_mask_storeu_ps(cr + 16, s.m1, x1);
  };
  store_row(0, c00, c01);
  if (s.rows > 1) store_row(1, c10, c11);
  if (s.rows > 2) store_row(2, c20, c21);
  if (s.rows > 3) store_row(3, c30, c31);
  if (s.rows > 4) store_row(4, c40, c41);
  if (s.rows > 5) store_row(5, c50, c51);
  if (s.rows > 6) store_row(6, c60, c61);
  if (s.rows > 7) store_row(7, c70, c71);
}

// The geometry the packing routines need, for one group of one image.
struct PackGeom {
  const float* x;  // image n, first channel of group g: Cg planes of H x W
  int64_t H, W, HW, OW, kH, kW, sH, sW, pH, pW, dH, dW;
  int64_t C;  // channels of the group
};

// Bp (kc x NR) = rows [k0, k0 + kc) of col for output pixels [p0, p0 + nr) of a 1x1 stride-1
// unpadded convolution (col row k = channel k's plane).
template <bool PF = false>
inline void pack_1x1(float* Bp, const PackGeom& q, int64_t p0, int64_t nr, int64_t k0, int64_t kc) {
  const __mmask16 m0 = lane_mask(nr), m1 = lane_mask(nr - 16);
  const float* src = q.x + k0 * q.HW + p0;
  for (int64_t kk = 0; kk < kc; ++kk, src += q.HW) {
    if (PF) {
      _mm_prefetch(reinterpret_cast<const char*>(src + NR), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(src + NR + 16), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(src + NR + 31), _MM_HINT_T1);
    }
    if (nr == NR) {  // plain loads: masked ones are slow on Zen 5 when they miss the cache
      _mm512_store_ps(Bp + kk * NR, _mm512_loadu_ps(src));
      _mm512_store_ps(Bp + kk * NR + 16, _mm512_loadu_ps(src + 16));
    } else {
      _mm512_store_ps(Bp + kk * NR, _mm512_maskz_loadu_ps(m0, src));
      _mm512_store_ps(Bp + kk * NR + 16, _mm512_maskz_loadu_ps(m1, src + 16));
    }
  }
}

// A run of output pixels of one output row inside a panel: panel columns [j0, j0 + len) are
// output row oh, columns ow0 ... ow0 + len - 1.
struct Segment {
  int64_t j0, len, oh, ow0;
};

inline int64_t panel_segments(Segment* seg, int64_t p0, int64_t nr, int64_t OW) {
  int64_t n = 0;
  for (int64_t j = 0; j < nr;) {
    const int64_t p = p0 + j, oh = p / OW, ow = p % OW;
    const int64_t len = std::min(nr - j, OW - ow);
    seg[n++] = Segment{j, len, oh, ow};
    j += len;
  }
  return n;
}

// Stride-1 (in width) convolutions: each segment is a contiguous run of the input row, clipped to
// [0, W) with zeros outside; at most NR long, so two masked loads and stores.
inline void pack_rows(float* Bp, const PackGeom& q, const Segment* seg, int64_t nseg, int64_t k0, int64_t kc) {
  const int64_t RS = q.kH * q.kW;
  const float* hi_ok = q.x + q.C * q.HW;  // (src >= q.x: t0 clips the row start)
  int64_t c = k0 / RS, rs = k0 % RS, r = rs / q.kW, s = rs % q.kW;
  for (int64_t kk = 0; kk < kc; ++kk) {
    float* dst = Bp + kk * NR;
    _mm512_store_ps(dst, _mm512_setzero_ps());
    _mm512_store_ps(dst + 16, _mm512_setzero_ps());
    const float* plane = q.x + c * q.HW;
    for (int64_t i = 0; i < nseg; ++i) {
      const Segment& sg = seg[i];
      const int64_t ih = sg.oh * q.sH - q.pH + r * q.dH;
      if (ih < 0 || ih >= q.H) continue;
      const int64_t iw0 = sg.ow0 - q.pW + s * q.dW;  // input column of the segment's first pixel
      // valid segment positions t: 0 <= iw0 + t < W
      const int64_t t0 = std::max<int64_t>(0, -iw0), t1 = std::min<int64_t>(sg.len, q.W - iw0);
      if (t1 <= t0) continue;
      const float* src = plane + ih * q.W + iw0 + t0;
      float* d = dst + sg.j0 + t0;
      const int64_t n = t1 - t0;
      const __mmask16 a = lane_mask(n), b = lane_mask(n - 16);
      if (src + 32 <= hi_ok) {  // plain loads (see pack_rows_s2), masked stores
        _mm512_mask_storeu_ps(d, a, _mm512_loadu_ps(src));
        if (n > 16) _mm512_mask_storeu_ps(d + 16, b, _mm512_loadu_ps(src + 16));
      } else {
        _mm512_mask_storeu_ps(d, a, _mm512_maskz_loadu_ps(a, src));
        if (n > 16) _mm512_mask_storeu_ps(d + 16, b, _mm512_maskz_loadu_ps(b, src + 16));
      }
    }
    if (++s == q.kW) {
      s = 0;
      if (++r == q.kH) {
        r = 0;
        ++c;
      }
    }
  }
}

// Reads rows [ih0, ih1) (clipped to the image) of the C channel planes at x once, in order: the
// input of a work item's panels, brought into cache by the hardware prefetchers (sequential
// runs) before packing reads it across planes H*W apart, more streams than they follow. Without
// it a batch's images (not in L2) were packed at memory latency: ResNet-18's stride-2 128 -> 256
// layer at batch 8 took 0.75 ms per image against 0.63 at batch 1 (one thread, Zen 5), 0.64 with
// it. (Software prefetches of the next panel's rows did not help there.)
inline void touch_rows(const float* x, int64_t C, int64_t H, int64_t W, int64_t ih0, int64_t ih1) {
  ih0 = std::max<int64_t>(ih0, 0);
  ih1 = std::min(ih1, H);
  if (ih1 <= ih0) return;
  const int64_t n = (ih1 - ih0) * W;
  __m512 acc = _mm512_setzero_ps();
  for (int64_t c = 0; c < C; ++c) {
    const float* s = x + c * H * W + ih0 * W;
    for (int64_t i = 0; i + 16 <= n; i += 16) acc = _mm512_max_ps(acc, _mm512_loadu_ps(s + i));
  }
  asm volatile("" : : "v"(acc));
}

// Stride-2 (in width) convolutions: a segment's pixels are every other one of a run of the input
// row; per 16 output columns, two loads of 32 consecutive pixels and a permute keeping the even
// ones (zeros outside [0, W)). The loads are plain wherever the 32 floats lie inside the group's
// planes, the permute masking the lanes outside the row: masked loads that miss the cache are
// slow on Zen 5 (ResNet-18's stride-2 128 -> 256 layer at batch 8, one thread: 7.1 -> 5.9 ms).
//
// The chunks' geometry (input offset in the plane, masks, panel column) depends on the tap (r, s)
// only, not on the channel: it is worked out once per call into a table (at most kS2Table
// chunks, else per row as below), so a k row costs its loads, permutes and stores alone
// (ResNet-18's stride-2 64 -> 128 layer at batch 1: the scalar work per row was 27% of it).
struct S2Chunk {
  int32_t off;              // input offset of the chunk's first pixel in the plane (may be < 0)
  int32_t dst;              // panel column
  __mmask16 o, a, b, st;    // output lanes in the row (plain loads), load masks (masked), stored lanes
};
constexpr int kS2Table = 384;

inline void pack_rows_s2(float* Bp, const PackGeom& q, const Segment* seg, int64_t nseg, int64_t k0, int64_t kc) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const int64_t RS = q.kH * q.kW;
  const float* lo_ok = q.x;  // plain loads are safe inside the group's planes
  const float* hi_ok = q.x + q.C * q.HW;
  int64_t c = k0 / RS, rs = k0 % RS, r = rs / q.kW, s = rs % q.kW;
  int64_t chunks = 0;
  for (int64_t i = 0; i < nseg; ++i) chunks += (seg[i].len + 15) / 16;
  if (RS <= 64 && RS * chunks <= kS2Table && q.C * q.HW < (int64_t{1} << 31)) {
    S2Chunk tab[kS2Table];
    int32_t beg[65];
    int64_t nt = 0;
    for (int64_t tr = 0; tr < q.kH; ++tr)
      for (int64_t ts = 0; ts < q.kW; ++ts) {
        beg[tr * q.kW + ts] = static_cast<int32_t>(nt);
        for (int64_t i = 0; i < nseg; ++i) {
          const Segment& sg = seg[i];
          const int64_t ih = sg.oh * q.sH - q.pH + tr * q.dH;
          if (ih < 0 || ih >= q.H) continue;
          for (int64_t t0 = 0; t0 < sg.len; t0 += 16) {
            const int64_t n = std::min<int64_t>(16, sg.len - t0);
            const int64_t base = 2 * (sg.ow0 + t0) - q.pW + ts * q.dW;
            const int64_t lo = std::max<int64_t>(0, -base), hi = std::min<int64_t>(2 * n, q.W - base);
            if (hi <= lo) continue;
            S2Chunk& e = tab[nt++];
            e.off = static_cast<int32_t>(ih * q.W + base);
            e.dst = static_cast<int32_t>(sg.j0 + t0);
            e.o = static_cast<__mmask16>(lane_mask((hi + 1) / 2) & ~lane_mask((lo + 1) / 2));
            e.a = static_cast<__mmask16>(lane_mask(hi) & ~lane_mask(lo));
            e.b = static_cast<__mmask16>(lane_mask(hi - 16) & ~lane_mask(lo - 16));
            e.st = lane_mask(n);
          }
        }
      }
    beg[RS] = static_cast<int32_t>(nt);
    int64_t t = rs;
    for (int64_t kk = 0; kk < kc; ++kk) {
      float* dst = Bp + kk * NR;
      _mm512_store_ps(dst, _mm512_setzero_ps());
      _mm512_store_ps(dst + 16, _mm512_setzero_ps());
      const float* plane = q.x + c * q.HW;
      for (int32_t j = beg[t]; j < beg[t + 1]; ++j) {
        const S2Chunk& e = tab[j];
        const float* src = plane + e.off;
        __m512 v;
        if (src >= lo_ok && src + 32 <= hi_ok)
          v = _mm512_maskz_permutex2var_ps(e.o, _mm512_loadu_ps(src), even, _mm512_loadu_ps(src + 16));
        else
          v = _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(e.a, src), even, _mm512_maskz_loadu_ps(e.b, src + 16));
        _mm512_mask_storeu_ps(dst + e.dst, e.st, v);
      }
      if (++t == RS) {
        t = 0;
        ++c;
      }
    }
    return;
  }
  for (int64_t kk = 0; kk < kc; ++kk) {
    float* dst = Bp + kk * NR;
    _mm512_store_ps(dst, _mm512_setzero_ps());
    _mm512_store_ps(dst + 16, _mm512_setzero_ps());
    const float* plane = q.x + c * q.HW;
    for (int64_t i = 0; i < nseg; ++i) {
      const Segment& sg = seg[i];
      const int64_t ih = sg.oh * q.sH - q.pH + r * q.dH;
      if (ih < 0 || ih >= q.H) continue;
      const float* row = plane + ih * q.W;
      for (int64_t t0 = 0; t0 < sg.len; t0 += 16) {
        const int64_t n = std::min<int64_t>(16, sg.len - t0);
        const int64_t base = 2 * (sg.ow0 + t0) - q.pW + s * q.dW;  // input column of this chunk's first pixel
        const int64_t lo = std::max<int64_t>(0, -base), hi = std::min<int64_t>(2 * n, q.W - base);
        if (hi <= lo) continue;
        const __mmask16 a = static_cast<__mmask16>(lane_mask(hi) & ~lane_mask(lo));
        const __mmask16 b = static_cast<__mmask16>(lane_mask(hi - 16) & ~lane_mask(lo - 16));
        const float* src = row + base;
        __m512 v;
        if (src >= lo_ok && src + 32 <= hi_ok) {
          // Output lane j reads input lane 2j: valid for lo <= 2j < hi.
          const __mmask16 o = static_cast<__mmask16>(lane_mask((hi + 1) / 2) & ~lane_mask((lo + 1) / 2));
          v = _mm512_maskz_permutex2var_ps(o, _mm512_loadu_ps(src), even, _mm512_loadu_ps(src + 16));
        } else {
          v = _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(a, src), even, _mm512_maskz_loadu_ps(b, src + 16));
        }
        _mm512_mask_storeu_ps(dst + sg.j0 + t0, lane_mask(n), v);
      }
    }
    if (++s == q.kW) {
      s = 0;
      if (++r == q.kH) {
        r = 0;
        ++c;
      }
    }
  }
}

// Stride-2 convolutions with few reduction rows (stems: 3 input channels, kW >= 3): the input is
// split once per call into its even and odd columns ("deinterleaved": D[c][parity][ih][j] =
// x[c][ih][2 (j - L) + parity], zeros outside the row, L = ceil(pW / 2) columns of left margin), so
// every tap reads a contiguous run of one D row: tap s of output column ow is D[c][(s - pW) & 1]
// [ih][ow + L + floor((s - pW) / 2)]. Panels are then packed with plain copies (no permutes, no
// clipping) and the three taps of a kernel row share the two D rows.
// Each plane has T rows of zeros above the image and B below, so every tap of every output row
// reads a row of D (HP = T + H + B rows per plane and parity).
struct DeinterleavedGeom {
  int64_t L, WD;  // left margin, row length (a multiple of 16)
  int64_t T, HP;  // zero rows above the image, rows per plane
};

inline DeinterleavedGeom deinterleaved_geom(const ConvGeom& g) {
  const int64_t L = (g.pW + 1) / 2;
  const int64_t T = g.pH, below = std::max<int64_t>(0, (g.OH - 1) * g.sH - g.pH + (g.kH - 1) * g.dH - (g.H - 1));
  return DeinterleavedGeom{L, (g.OW + L + g.kW + 15) / 16 * 16, T, T + g.H + below};
}

// D rows [r0, r1) of all N * C * H rows (row = (n * C + c) * H + ih, both parities).
inline void deinterleave_rows(const float* x, float* D, const ConvGeom& g, const DeinterleavedGeom& d, int64_t r0, int64_t r1) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  for (int64_t row = r0; row < r1; ++row) {
    const int64_t ih = row % g.H, nc = row / g.H;
    const float* src = x + row * g.W;
    float* d0 = D + ((nc * 2 + 0) * d.HP + d.T + ih) * d.WD;
    float* d1 = D + ((nc * 2 + 1) * d.HP + d.T + ih) * d.WD;
    if (ih == 0)  // this plane's rows of zeros above and below the image
      for (int64_t par = 0; par < 2; ++par)
        for (int64_t z = 0; z < d.HP; ++z)
          if (z < d.T || z >= d.T + g.H) std::fill_n(D + ((nc * 2 + par) * d.HP + z) * d.WD, d.WD, 0.f);
    for (int64_t j0 = 0; j0 < d.WD; j0 += 16) {
      const int64_t base = 2 * (j0 - d.L);  // input column of lane 0's even pixel
      const int64_t lo = std::max<int64_t>(0, -base), hi = std::min<int64_t>(32, g.W - base);
      __m512 a = _mm512_setzero_ps(), b = a;
      if (hi > lo) {
        const __mmask16 ma = static_cast<__mmask16>(lane_mask(hi) & ~lane_mask(lo));
        const __mmask16 mb = static_cast<__mmask16>(lane_mask(hi - 16) & ~lane_mask(lo - 16));
        a = _mm512_maskz_loadu_ps(ma, src + base);
        b = _mm512_maskz_loadu_ps(mb, src + base + 16);
      }
      _mm512_store_ps(d0 + j0, _mm512_permutex2var_ps(a, even, b));
      _mm512_store_ps(d1 + j0, _mm512_permutex2var_ps(a, odd, b));
    }
  }
}

// Bp (kc x NR) from the deinterleaved input of one image and group (Dn: C x 2 x H x WD).
inline void pack_rows_d(float* Bp, const float* Dn, const PackGeom& q, const DeinterleavedGeom& d, const Segment* seg, int64_t nseg, int64_t nr,
                        int64_t k0, int64_t kc) {
  const int64_t RS = q.kH * q.kW;
  int64_t c = k0 / RS, rs = k0 % RS, r = rs / q.kW, s = rs % q.kW;
  for (int64_t kk = 0; kk < kc; ++kk) {
    float* dst = Bp + kk * NR;
    if (nr < NR) {  // columns past the image: zeros (never stored, but no stale denormals either)
      _mm512_store_ps(dst, _mm512_setzero_ps());
      _mm512_store_ps(dst + 16, _mm512_setzero_ps());
    }
    const int64_t t = s - q.pW, par = t & 1, shift = (t - par) / 2 + d.L;
    const float* plane = Dn + ((c * 2 + par) * d.HP + d.T) * d.WD;
    for (int64_t i = 0; i < nseg; ++i) {
      const Segment& sg = seg[i];
      const int64_t ih = sg.oh * q.sH - q.pH + r * q.dH;
      const __mmask16 a = lane_mask(sg.len), b = lane_mask(sg.len - 16);
      float* o = dst + sg.j0;
      if (ih < 0 || ih >= q.H) {
        _mm512_mask_storeu_ps(o, a, _mm512_setzero_ps());
        if (sg.len > 16) _mm512_mask_storeu_ps(o + 16, b, _mm512_setzero_ps());
        continue;
      }
      const float* src = plane + ih * d.WD + sg.ow0 + shift;
      _mm512_mask_storeu_ps(o, a, _mm512_maskz_loadu_ps(a, src));
      if (sg.len > 16) _mm512_mask_storeu_ps(o + 16, b, _mm512_maskz_loadu_ps(b, src + 16));
    }
    if (++s == q.kW) {
      s = 0;
      if (++r == q.kH) {
        r = 0;
        ++c;
      }
    }
  }
}

// Row pointers (kc of them) of output row oh: the start of the deinterleaved row that each k row
// of its output column 0 reads (output column ow reads ow floats further; rows above or below
// the image are D's rows of zeros).
inline void deinterleaved_table(const float** Bt, const float* Dn, const PackGeom& q, const DeinterleavedGeom& d, int64_t oh,
                                int64_t k0, int64_t kc) {
  const int64_t RS = q.kH * q.kW;
  int64_t c = k0 / RS, rs = k0 % RS, r = rs / q.kW, s = rs % q.kW;
  for (int64_t kk = 0; kk < kc; ++kk) {
    const int64_t t = s - q.pW, par = t & 1, shift = (t - par) / 2 + d.L;
    const int64_t ih = oh * q.sH - q.pH + r * q.dH;
    Bt[kk] = Dn + ((c * 2 + par) * d.HP + d.T + ih) * d.WD + shift;
    if (++s == q.kW) {
      s = 0;
      if (++r == q.kH) {
        r = 0;
        ++c;
      }
    }
  }
}

// Any geometry: a masked gather per 16 columns.
inline void pack_gather(float* Bp, const PackGeom& q, int64_t p0, int64_t nr, int64_t k0, int64_t kc) {
  alignas(64) int32_t ih0[NR], iw0[NR];
  for (int64_t j = 0; j < NR; ++j) {
    if (j < nr) {
      const int64_t p = p0 + j, oh = p / q.OW, ow = p % q.OW;
      ih0[j] = static_cast<int32_t>(oh * q.sH - q.pH);
      iw0[j] = static_cast<int32_t>(ow * q.sW - q.pW);
    } else {
      ih0[j] = -(1 << 30);  // never valid
      iw0[j] = 0;
    }
  }
  const __m512i H = _mm512_set1_epi32(static_cast<int32_t>(q.H)), W = _mm512_set1_epi32(static_cast<int32_t>(q.W));
  const __m512i ih0a = _mm512_load_si512(ih0), ih0b = _mm512_load_si512(ih0 + 16);
  const __m512i iw0a = _mm512_load_si512(iw0), iw0b = _mm512_load_si512(iw0 + 16);
  const int64_t RS = q.kH * q.kW;
  int64_t c = k0 / RS, rs = k0 % RS, r = rs / q.kW, s = rs % q.kW;
  for (int64_t kk = 0; kk < kc; ++kk) {
    const float* plane = q.x + c * q.HW;
    const __m512i dh = _mm512_set1_epi32(static_cast<int32_t>(r * q.dH)), dw = _mm512_set1_epi32(static_cast<int32_t>(s * q.dW));
    const __m512i iha = _mm512_add_epi32(ih0a, dh), ihb = _mm512_add_epi32(ih0b, dh);
    const __m512i iwa = _mm512_add_epi32(iw0a, dw), iwb = _mm512_add_epi32(iw0b, dw);
    const __mmask16 ma = _mm512_cmplt_epu32_mask(iha, H) & _mm512_cmplt_epu32_mask(iwa, W);
    const __mmask16 mb = _mm512_cmplt_epu32_mask(ihb, H) & _mm512_cmplt_epu32_mask(iwb, W);
    const __m512i ia = _mm512_add_epi32(_mm512_mullo_epi32(iha, W), iwa), ib = _mm512_add_epi32(_mm512_mullo_epi32(ihb, W), iwb);
    _mm512_store_ps(Bp + kk * NR, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), ma, ia, plane, 4));
    _mm512_store_ps(Bp + kk * NR + 16, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mb, ib, plane, 4));
    if (++s == q.kW) {
      s = 0;
      if (++r == q.kH) {
        r = 0;
        ++c;
      }
    }
  }
}

void run(const float* x, const float* wp, float* y, const ConvGeom& g, const ConvEpilogue& e) {
  const int64_t Kg = g.K / g.G, Cg = g.C / g.G, Kd = Cg * g.kH * g.kW, Mb = (Kg + MR - 1) / MR;
  const int64_t OHW = g.OH * g.OW, HW = g.H * g.W;
  const bool is1x1 = g.kH == 1 && g.kW == 1 && g.sH == 1 && g.sW == 1 && g.pH == 0 && g.pW == 0 && g.OH == g.H && g.OW == g.W;
  // Pooled tails: a 1x1 convolution whose planes end with a partial panel of fewer than 16 pixels
  // (14x14: 4 of 32), at batch > 1, gathers the tails of up to NR / tail images into one packed
  // panel instead of running a half-width panel per image for them (14x14: 196 instead of 208
  // columns per image).
  const int64_t tail = OHW % NR;
  const bool pool = is1x1 && g.G == 1 && g.N >= 2 && tail > 0 && tail < 16;
  const int64_t per_tail = pool ? NR / tail : 0, tail_panels = pool ? (g.N + per_tail - 1) / per_tail : 0;
  // Otherwise (batch 1, or grouped) a 1x1 convolution's last panel of at most 8 pixels runs as
  // separate work items, pixels as rows (conv1x1_narrow_tail_f32: 4 instead of 16 columns' FMAs
  // for a 14x14 plane's 4 pixels).
  const bool narrow = is1x1 && !pool && tail > 0 && tail <= 8;
  const int64_t panels = pool || narrow ? OHW / NR : (OHW + NR - 1) / NR;  // per image, pooled / narrow tails apart
  const int64_t threads = get_num_threads();
  // Items: runs of about PANELS_PER_ITEM panels of one image and group, split evenly; at least
  // ~8 items per thread when the images allow it (items are pulled dynamically, so many similar
  // ones balance well), else the output channels are split too (small images at batch 1).
  int64_t chunks = (panels + PANELS_PER_ITEM - 1) / PANELS_PER_ITEM;
  const int64_t want = 8 * threads;
  if (g.G * g.N * chunks < want) chunks = std::min(panels, (want + g.G * g.N - 1) / (g.G * g.N));
  const int64_t base_items = g.G * g.N * chunks;
  const int64_t units = std::max<int64_t>(1, base_items + tail_panels + (narrow ? g.G * g.N : 0));
  // At least ~4 items per thread: batch-1 14x14 planes have 7 panels (the last a quarter full),
  // and 7 items on 2 threads left one idle for up to a panel (MobileNetV2's 14x14 layers 5-8%
  // faster split into 14).
  const int64_t msplit = std::max<int64_t>(1, std::min<int64_t>(Mb, (4 * threads + units - 1) / units));
  const int64_t main_items = base_items * msplit;
  const int64_t pooled_items = tail_panels * msplit, narrow_items = narrow ? g.G * g.N * msplit : 0;
  const int64_t items = main_items + pooled_items + narrow_items;  // (the tails last: lighter)
  // Balanced k blocks of at most KC rows, KC_1X1 for 1x1 convolutions: their panels are cheap
  // to pack and an 80 KB panel read from L2 (10 bytes per cycle) costs less than more passes of
  // partial sums through y (MobileNetV2's 14x14 reductions: 4-7% faster).
  const int64_t kmax = is1x1 ? KC_1X1 : KC;
  const int64_t nkb = (Kd + kmax - 1) / kmax, kcb = (Kd + nkb - 1) / nkb;
  const bool rows = !is1x1 && g.sW == 1;
  // 1x1 convolutions with at most 8 slivers (64 output channels) read whole panels straight
  // from x (row stride H*W) instead of packing them: a packed panel would be used by at most 8
  // slivers (MobileNetV2's reductions to 16-64 channels 3-40% faster; with 12 slivers its
  // 16 -> 96 expansion at 112x112 got 10% slower).
  // So do reductions (more input than output channels) on planes of at most 256 pixels, whatever
  // their slivers: an image's input stays in L2 and the next panel's rows are prefetched
  // (MobileNetV2's 576 -> 96 and 384 -> 96 at 14x14: 3-4% faster; its 14x14 expansions, with
  // fewer rows per sliver, 1-3% slower in place).
  const bool direct = is1x1 && (Mb <= 8 || (HW <= 256 && Kd > Kg));
  const bool rows2 = g.sW == 2;
  // Stems (few reduction rows, one k block, stride 2, kernel >= 3 wide): deinterleave once.
  const bool dei = rows2 && g.dW == 1 && g.kW >= 3 && g.G == 1 && Kd <= KC;
  const DeinterleavedGeom dg = deinterleaved_geom(g);
  float* D = nullptr;
  if (dei) {
    // In the calling thread's scratch (slot 1; the items use slot 0), read by every thread.
    D = scratch().get(1, static_cast<size_t>(g.N * g.C * 2 * dg.HP * dg.WD));
    parallel_for(0, g.N * g.C * g.H, std::max<int64_t>(1, 8192 / std::max<int64_t>(1, dg.WD)),
                 [&](int64_t r0, int64_t r1) { deinterleave_rows(x, D, g, dg, r0, r1); });
  }
  const bool clamp = e.lo > -__builtin_inff() || e.hi < __builtin_inff();
  // Output lines are prefetched (into L2) one panel ahead when a panel writes at most 96 rows:
  // 2 lines per row, streams the hardware prefetchers do not follow; beyond that the prefetches
  // cost more than they save (MobileNetV2's 24 -> 144 expansions got slower).
  const bool prefetch_out = Kg <= 96;
  // 1x1 convolutions prefetch the next panel's input rows when the input exceeds 1 MB (a core's
  // L2): a smaller one mostly comes from L2 already, and the prefetches then cost ~2% (MobileNetV2
  // batch 1's 56x56 and 28x28 expansions).
  const bool prefetch_in = g.N * g.C * HW > (int64_t{1} << 18);
  // Other packed convolutions read their item's input rows once first (touch_rows) when the
  // input exceeds 1 MB and an image's group of planes is at most 1 MB.
  const bool touch_in = !is1x1 && !dei && g.N * g.C * HW > (int64_t{1} << 18) && Cg * HW <= (int64_t{1} << 18);

  auto item = [&](int64_t it, float* Bp) {
    // Row tables of the last two output rows seen (panels run in order within an item).
    const float* Btab[2][KC];
    int64_t tab_row[2] = {-1, -1}, tab_k0[2] = {-1, -1};
    auto row_table = [&](int64_t oh, int64_t k0, int64_t kc, const float* Dn, const PackGeom& q) -> const float* const* {
      for (int i = 0; i < 2; ++i)
        if (tab_row[i] == oh && tab_k0[i] == k0) return Btab[i];
      // Replace a stale k block's table, else the older row's.
      const int i = tab_k0[0] != k0 ? 0 : tab_k0[1] != k0 ? 1 : tab_row[0] < tab_row[1] ? 0 : 1;
      deinterleaved_table(Btab[i], Dn, q, dg, oh, k0, kc);
      tab_row[i] = oh;
      tab_k0[i] = k0;
      return Btab[i];
    };
    const int64_t ms = it % msplit;
    int64_t rest = it / msplit;
    const int64_t ch = rest % chunks;
    rest /= chunks;
    const int64_t n = rest % g.N, gi = rest / g.N;
    const int64_t mb0 = ms * Mb / msplit, mb1 = (ms + 1) * Mb / msplit;
    const int64_t pa0 = ch * panels / chunks, pa1 = (ch + 1) * panels / chunks;
    PackGeom q{x + (n * g.C + gi * Cg) * HW, g.H, g.W, HW, g.OW, g.kH, g.kW, g.sH, g.sW, g.pH, g.pW, g.dH, g.dW, Cg};
    float* yg = y + (n * g.K + gi * Kg) * OHW;
    const float* rg = e.residual ? e.residual + (n * g.K + gi * Kg) * OHW : nullptr;
    const float* wg = wp + gi * Mb * Kd * MR;
    if (touch_in) {  // the input rows of panels [pa0, pa1)
      const int64_t q0 = pa0 * NR, q1 = std::min(OHW, pa1 * NR) - 1;
      touch_rows(q.x, Cg, g.H, g.W, q0 / g.OW * g.sH - g.pH, q1 / g.OW * g.sH - g.pH + (g.kH - 1) * g.dH + 1);
    }
    for (int64_t k0 = 0; k0 < Kd; k0 += kcb) {
      const int64_t kc = std::min(kcb, Kd - k0);
      for (int64_t pa = pa0; pa < pa1; ++pa) {
        const int64_t p0 = pa * NR, nr = std::min(NR, OHW - p0);
        if (prefetch_out && k0 == 0 && pa + 1 < pa1) {
          // The next panel's output (and residual) lines: often cold (a session's arena).
          const int64_t pn = p0 + NR;
          for (int64_t m = mb0 * MR; m < std::min(Kg, mb1 * MR); ++m) {
            _mm_prefetch(reinterpret_cast<const char*>(yg + m * OHW + pn), _MM_HINT_T1);
            _mm_prefetch(reinterpret_cast<const char*>(yg + m * OHW + pn + 16), _MM_HINT_T1);
            if (rg) {
              _mm_prefetch(reinterpret_cast<const char*>(rg + m * OHW + pn), _MM_HINT_T1);
              _mm_prefetch(reinterpret_cast<const char*>(rg + m * OHW + pn + 16), _MM_HINT_T1);
            }
          }
        }
        const bool direct_b = direct && nr == NR;  // (a partial panel is packed: zeros past the image)
        bool table_b = false;
        const float* const* tb0 = nullptr;
        const float* const* tb1 = nullptr;
        int64_t toff0 = 0, toff1 = 0;
        if (direct_b) {
        } else if (is1x1) {
          if (prefetch_in && pa + 1 < pa1) pack_1x1<true>(Bp, q, p0, nr, k0, kc);  // (prefetching the next panel's rows)
          else pack_1x1(Bp, q, p0, nr, k0, kc);
        } else if (rows || rows2) {
          Segment seg[NR];
          const int64_t nseg = panel_segments(seg, p0, nr, g.OW);
          if (rows) {
            pack_rows(Bp, q, seg, nseg, k0, kc);
          } else if (dei && (nr == NR || nr == 16) && (p0 % g.OW) + 16 <= g.OW && (nr == 16 || ((p0 + 16) % g.OW) + 16 <= g.OW)) {
            // Each 16-pixel half of the panel lies inside one output row: each of its k rows is
            // 16 consecutive floats of a deinterleaved row, which the micro-kernel reads in
            // place through the row's table (ResNet-18's 112-wide stem rows: every panel).
            table_b = true;
            const float* Dn = D + n * g.C * 2 * dg.HP * dg.WD;
            tb0 = row_table(p0 / g.OW, k0, kc, Dn, q);
            tb1 = nr == NR ? row_table((p0 + 16) / g.OW, k0, kc, Dn, q) : tb0;
            toff0 = p0 % g.OW;
            toff1 = (p0 + 16) % g.OW;
          } else if (dei) {
            pack_rows_d(Bp, D + n * g.C * 2 * dg.HP * dg.WD, q, dg, seg, nseg, nr, k0, kc);
          } else {
            pack_rows_s2(Bp, q, seg, nseg, k0, kc);
          }
        } else {
          pack_gather(Bp, q, p0, nr, k0, kc);
        }
        Store s;
        s.m0 = lane_mask(nr);
        s.m1 = lane_mask(nr - 16);
        s.accumulate = k0 > 0;
        s.last = k0 + kc == Kd;
        s.clamp = clamp;
        s.lo = e.lo;
        s.hi = e.hi;
        for (int64_t mb = mb0; mb < mb1; ++mb) {
          s.rows = std::min(MR, Kg - mb * MR);
          s.bias = e.bias ? e.bias + gi * Kg + mb * MR : nullptr;
          s.res = rg ? rg + mb * MR * OHW + p0 : nullptr;
          if (table_b && nr == NR)
            micro_kernel<2, false, false, false, true>(kc, wg + (mb * Kd + k0) * MR, nullptr, yg + mb * MR * OHW + p0, OHW, s, NR, tb0, tb1,
                                                       toff0, toff1);
          else if (table_b)
            micro_kernel<1, false, false, false, true>(kc, wg + (mb * Kd + k0) * MR, nullptr, yg + mb * MR * OHW + p0, OHW, s, NR, tb0, tb0,
                                                       toff0, toff0);
          else if (prefetch_in && direct_b && mb == mb0 && pa + 1 < pa1)  // (prefetching the next panel's rows)
            micro_kernel<2, true, false, true>(kc, wg + (mb * Kd + k0) * MR, q.x + k0 * HW + p0, yg + mb * MR * OHW + p0, OHW, s, HW);
          else if (direct_b) micro_kernel<2, true>(kc, wg + (mb * Kd + k0) * MR, q.x + k0 * HW + p0, yg + mb * MR * OHW + p0, OHW, s, HW);
          else if (nr <= 16) micro_kernel<1>(kc, wg + (mb * Kd + k0) * MR, Bp, yg + mb * MR * OHW + p0, OHW, s);
          else micro_kernel<2>(kc, wg + (mb * Kd + k0) * MR, Bp, yg + mb * MR * OHW + p0, OHW, s);
        }
      }
    }
  };

  // A pooled tail panel: column j * tail + t is pixel OHW - tail + t of image n0 + j. The products
  // go to a block of partial sums (slot 1 of the thread's scratch: the 1x1 path has no other use
  // for it), the epilogue then runs per row and image (masked loads and stores) in the
  // micro-kernel's order (bias, residual, clamp keeping nan), so each output is the same sum as a
  // half-width panel would give.
  auto tail_item = [&](int64_t t, float* Bp) {
    const int64_t ms = t % msplit, tp = t / msplit;
    const int64_t mb0 = ms * Mb / msplit, mb1 = (ms + 1) * Mb / msplit;
    const int64_t n0 = tp * per_tail, nn = std::min(per_tail, g.N - n0), q0 = OHW - tail;
    float* Ct = scratch().get(1, static_cast<size_t>((mb1 - mb0) * MR * NR));
    const __mmask16 mt = lane_mask(tail);
    Store s;
    s.rows = MR;  // (rows past Kg: zero weights, never written back)
    s.m0 = s.m1 = 0xFFFF;
    s.last = false;
    s.bias = nullptr;
    s.res = nullptr;
    s.clamp = false;
    s.lo = s.hi = 0.f;
    for (int64_t k0 = 0; k0 < Kd; k0 += kcb) {
      const int64_t kc = std::min(kcb, Kd - k0);
      for (int64_t kk = 0; kk < kc; ++kk) {
        float* dst = Bp + kk * NR;
        _mm512_store_ps(dst, _mm512_setzero_ps());
        _mm512_store_ps(dst + 16, _mm512_setzero_ps());
        for (int64_t j = 0; j < nn; ++j)
          _mm512_mask_storeu_ps(dst + j * tail, mt, _mm512_maskz_loadu_ps(mt, x + ((n0 + j) * g.C + k0 + kk) * HW + q0));
      }
      s.accumulate = k0 > 0;
      for (int64_t mb = mb0; mb < mb1; ++mb) micro_kernel<2>(kc, wp + (mb * Kd + k0) * MR, Bp, Ct + (mb - mb0) * MR * NR, NR, s);
    }
    const __m512 lo = _mm512_set1_ps(e.lo), hi = _mm512_set1_ps(e.hi);
    for (int64_t m = mb0 * MR; m < std::min(Kg, mb1 * MR); ++m) {
      const float* c = Ct + (m - mb0 * MR) * NR;
      const __m512 b = _mm512_set1_ps(e.bias ? e.bias[m] : 0.f);
      for (int64_t j = 0; j < nn; ++j) {
        const int64_t o = ((n0 + j) * g.K + m) * OHW + q0;
        __m512 v = _mm512_maskz_loadu_ps(mt, c + j * tail);
        if (e.bias) v = _mm512_add_ps(v, b);
        if (e.residual) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mt, e.residual + o));
        if (clamp) v = _mm512_min_ps(hi, _mm512_max_ps(lo, v));  // as the micro-kernel: nan stays nan
        _mm512_mask_storeu_ps(y + o, mt, v);
      }
    }
  };

  // A narrow tail: image n, group gi, slivers mb0 .. mb1 - 1.
  auto narrow_item = [&](int64_t t) {
    const int64_t ms = t % msplit, rest = t / msplit, n = rest % g.N, gi = rest / g.N;
    const int64_t mb0 = ms * Mb / msplit, mb1 = (ms + 1) * Mb / msplit, p0 = panels * NR;
    const int64_t o = (n * g.K + gi * Kg + mb0 * MR) * OHW + p0;
    conv1x1_narrow_tail_f32(x + (n * g.C + gi * Cg) * HW + p0, HW, tail, wp + (gi * Mb + mb0) * Kd * MR, Kd, kcb, mb1 - mb0,
                            std::min(Kg - mb0 * MR, (mb1 - mb0) * MR), y + o, OHW, e.bias ? e.bias + gi * Kg + mb0 * MR : nullptr,
                            e.residual ? e.residual + o : nullptr, clamp, e.lo, e.hi);
  };

  split_items(items, std::min<int64_t>(threads, items), [&](int64_t, int64_t it, int64_t) {
    float* Bp = scratch().get(0, static_cast<size_t>(kcb * NR));
    if (it < main_items) item(it, Bp);
    else if (it < main_items + pooled_items) tail_item(it - main_items, Bp);
    else narrow_item(it - main_items - pooled_items);
  });
}

// ------------------------------------------------------------------ small planes: pixels as rows
// At batch 1 a 7x7 plane has 49 pixels: the direct kernel's 32-pixel panels compute 64 columns
// for them (23% wasted). Here the roles swap: y^T (pixels x K) = col^T (pixels x Kd) @ w^T
// (Kd x K), a micro-kernel block being 7 pixels x 32 output channels (14 zmm accumulators; 49 =
// 7 x 7, 196 = 28 x 7, and slivers may span images, so nothing is wasted), written back to NCHW
// by scatters (per block once, against Kd x 14 FMAs), or where a sliver's pixels are consecutive
// in one image by an in-register transposition and masked stores of 7-pixel rows. w^T is packed in 32-channel panels
// ([panel][k][32], cached for frozen weights); col^T in 7-pixel slivers ([sliver][k][7]) per call,
// except for 1x1 convolutions whose planes 7 divides (7x7): there a sliver's 7 pixels are
// consecutive in each channel plane of one image, and the micro-kernel broadcasts them straight
// from x (row k at x + k*H*W; consecutive rows 196 bytes apart, a stride the prefetchers follow).
constexpr int64_t TR = 7;   // pixels per sliver
constexpr int64_t TC = 32;  // output channels per panel
constexpr int64_t T_KC = 512;  // k rows per block at most (balanced): <= 64 KB of the w^T panel, read from L2

struct TLayout {
  int64_t P, S, Kd, panels;
};

void t_pack_pixels(const float* x, float* A, const ConvGeom& g, int64_t s0, int64_t s1, int64_t P) {
  const int64_t OHW = g.OH * g.OW, HW = g.H * g.W, RS = g.kH * g.kW, Kd = g.C * RS;
  const bool is1x1 = g.kH == 1 && g.kW == 1 && g.sH == 1 && g.sW == 1 && g.pH == 0 && g.pW == 0;
  const bool fast_rows = !is1x1 && (g.sW == 1 || g.sW == 2) && g.dW == 1 && g.kW <= 64 && g.G == 1;
  const int64_t total = g.N * g.C * HW;
  for (int64_t sl = s0; sl < s1; ++sl) {
    float* a = A + sl * Kd * TR;
    const int64_t p0 = sl * TR;
    if (is1x1 && p0 + TR <= P && p0 / OHW == (p0 + TR - 1) / OHW) {
      // The 7 pixels are consecutive in one image: per channel one masked load and store.
      const __mmask16 m7 = lane_mask(TR);
      const float* src = x + (p0 / OHW) * g.C * HW + p0 % OHW;
      for (int64_t c = 0; c < g.C; ++c) _mm512_mask_storeu_ps(a + c * TR, m7, _mm512_maskz_loadu_ps(m7, src + c * HW));
      continue;
    }
    if (fast_rows && p0 + TR <= P && (p0 % OHW) % g.OW + TR <= g.OW) {
      // The 7 pixels are consecutive in one output row, width stride 1 or 2: per channel and
      // kernel tap one load (plain inside the input, the lanes outside the row zeroed) and a
      // 7-lane store, instead of 7 scalar copies (ResNet-18's 7x7 layers: 8% of their time).
      const int64_t n = p0 / OHW, q0 = p0 % OHW, oh = q0 / g.OW, ow0 = q0 % g.OW;
      const float* xn = x + n * g.C * HW;
      const __mmask16 m7 = lane_mask(TR);
      __mmask16 mj[64];
      for (int64_t j = 0; j < g.kW; ++j) {
        mj[j] = 0;
        for (int64_t q = 0; q < TR; ++q) {
          const int64_t iw = (ow0 + q) * g.sW - g.pW + j;
          if (iw >= 0 && iw < g.W) mj[j] = static_cast<__mmask16>(mj[j] | (1u << q));
        }
      }
      const __m512i idx = g.sW == 2 ? _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
                                    : _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
      int64_t k = 0;
      for (int64_t c = 0; c < g.C; ++c)
        for (int64_t i = 0; i < g.kH; ++i) {
          const int64_t ih = oh * g.sH - g.pH + i * g.dH;
          if (ih < 0 || ih >= g.H) {
            for (int64_t j = 0; j < g.kW; ++j, ++k) _mm512_mask_storeu_ps(a + k * TR, m7, _mm512_setzero_ps());
            continue;
          }
          const int64_t rowoff = (n * g.C + c) * HW + ih * g.W;  // from x
          for (int64_t j = 0; j < g.kW; ++j, ++k) {
            const int64_t o = rowoff + ow0 * g.sW - g.pW + j;  // lane 0's input column, from x
            __m512 v;
            if (o >= 0 && o + 32 <= total) {
              const __m512 lo = _mm512_loadu_ps(x + o), hi = _mm512_loadu_ps(x + o + 16);
              v = _mm512_maskz_permutex2var_ps(mj[j], lo, idx, hi);
            } else {
              v = _mm512_setzero_ps();
              for (int64_t q = 0; q < TR; ++q)
                if (mj[j] >> q & 1) v = _mm512_mask_mov_ps(v, static_cast<__mmask16>(1u << q), _mm512_set1_ps(xn[o - n * g.C * HW + q * g.sW]));
            }
            _mm512_mask_storeu_ps(a + k * TR, m7, v);
          }
        }
      continue;
    }
    for (int64_t r = 0; r < TR; ++r) {
      const int64_t p = sl * TR + r;
      if (p >= P) {
        for (int64_t k = 0; k < Kd; ++k) a[k * TR + r] = 0.f;
        continue;
      }
      const int64_t n = p / OHW, q = p % OHW, oh = q / g.OW, ow = q % g.OW;
      const float* xn = x + n * g.C * HW;
      if (is1x1) {  // the pixel's channel vector
        const float* src = xn + q;
        for (int64_t c = 0; c < g.C; ++c) a[c * TR + r] = src[c * HW];
        continue;
      }
      // Offsets of the taps inside a channel plane (-1 outside), the same for every channel.
      int64_t off[256];
      const bool table = RS <= 256;
      if (table)
        for (int64_t i = 0; i < g.kH; ++i)
          for (int64_t j = 0; j < g.kW; ++j) {
            const int64_t ih = oh * g.sH - g.pH + i * g.dH, iw = ow * g.sW - g.pW + j * g.dW;
            off[i * g.kW + j] = ih >= 0 && ih < g.H && iw >= 0 && iw < g.W ? ih * g.W + iw : -1;
          }
      int64_t k = 0;
      for (int64_t c = 0; c < g.C; ++c) {
        const float* plane = xn + c * HW;
        for (int64_t t = 0; t < RS; ++t, ++k) {
          int64_t o;
          if (table) {
            o = off[t];
          } else {
            const int64_t ih = oh * g.sH - g.pH + (t / g.kW) * g.dH, iw = ow * g.sW - g.pW + (t % g.kW) * g.dW;
            o = ih >= 0 && ih < g.H && iw >= 0 && iw < g.W ? ih * g.W + iw : -1;
          }
          a[k * TR + r] = o >= 0 ? plane[o] : 0.f;
        }
      }
    }
  }
}

void t_run(const float* x, const float* wt, float* y, const ConvGeom& g, const ConvEpilogue& e) {
  const int64_t OHW = g.OH * g.OW, Kd = g.C * g.kH * g.kW, P = g.N * OHW;
  const int64_t S = (P + TR - 1) / TR, panels = g.K / TC;
  const int64_t threads = get_num_threads();
  const bool clamp = e.lo > -__builtin_inff() || e.hi < __builtin_inff();
  // The packed pixels live in the calling thread's scratch (slot 1; the items use slot 0), read
  // by every thread of the call.
  const bool inplace = g.kH == 1 && g.kW == 1 && g.sH == 1 && g.sW == 1 && g.pH == 0 && g.pW == 0 &&
                       OHW % TR == 0;
  const int64_t HW = g.H * g.W;
  float* const Abuf = inplace ? nullptr : scratch().get(1, static_cast<size_t>(S * Kd * TR));
  if (!inplace)
    parallel_for(0, S, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, Kd)), [&](int64_t s0, int64_t s1) { t_pack_pixels(x, Abuf, g, s0, s1, P); });
  const int64_t astep = inplace ? HW : TR;
  // Items: (channel panel, run of slivers); enough of them for the threads.
  int64_t runs = 1;
  while (panels * runs < 4 * threads && runs < S) ++runs;
  const int64_t items = panels * runs;
  const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i ch_off0 = _mm512_mullo_epi32(lanes, _mm512_set1_epi32(static_cast<int32_t>(OHW)));
  const __m512i ch_off1 = _mm512_add_epi32(ch_off0, _mm512_set1_epi32(static_cast<int32_t>(16 * OHW)));
  const __m512 lov = _mm512_set1_ps(e.lo), hiv = _mm512_set1_ps(e.hi);
  const __m512i lo_pairs = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
  const __m512i hi_pairs = _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
  const int64_t tnb = (Kd + T_KC - 1) / T_KC, tkc = (Kd + tnb - 1) / tnb;  // balanced k blocks
  auto item = [&](int64_t it, float* acc_buf) {
    const int64_t cp = it % panels, run = it / panels;
    const int64_t sa = run * S / runs, sb = (run + 1) * S / runs;
    const float* B = wt + cp * Kd * TC;
    const int64_t k0 = cp * TC;  // first output channel
    const __m512 b0 = e.bias ? _mm512_loadu_ps(e.bias + k0) : _mm512_setzero_ps();
    const __m512 b1 = e.bias ? _mm512_loadu_ps(e.bias + k0 + 16) : _mm512_setzero_ps();
    // Every sliver of the run passes over a k block of the w^T panel (one block up to 512 rows,
    // 64 KB, read from L2: per 14 FMAs one 128-byte row; fewer blocks measured 2-4% faster than
    // 16 KB blocks held in L1); the partial sums of a sliver wait in acc_buf between blocks.
    for (int64_t kb = 0; kb < Kd; kb += tkc) {
      const int64_t kc = std::min(tkc, Kd - kb);
      const bool first = kb == 0, last = kb + kc == Kd;
      // The next block of w^T (this panel's or the next panel's first), fetched into L2 a line
      // at a time, spread over the second and later slivers of the current block (the first one
      // streams the current block itself; prefetching during it did not help): in a session the
      // weights mostly come from memory (7x7 layers 3-6% faster).
      const float* nxt = nullptr;
      int64_t nlines = 0;
      if (kb + kc < Kd) {
        nxt = B + (kb + kc) * TC;
        nlines = std::min(tkc, Kd - kb - kc) * 2;
      } else if (cp + 1 < panels) {
        nxt = wt + (cp + 1) * Kd * TC;
        nlines = std::min(tkc, Kd) * 2;
      }
      const int64_t ns = sb - sa, per = ns > 1 ? (nlines + ns - 2) / (ns - 1) : 0;
      for (int64_t sl = sa; sl < sb; ++sl) {
        const float* a = inplace ? x + ((sl * TR) / OHW * g.C + kb) * HW + (sl * TR) % OHW : Abuf + (sl * Kd + kb) * TR;
        float* cb = acc_buf + (sl - sa) * TR * TC;
        __m512 c[TR][2];
        for (int r = 0; r < TR; ++r) {
          c[r][0] = first ? _mm512_setzero_ps() : _mm512_load_ps(cb + r * TC);
          c[r][1] = first ? _mm512_setzero_ps() : _mm512_load_ps(cb + r * TC + 16);
        }
        const float* bp = B + kb * TC;
        const int64_t j = sl - sa;
        int64_t pl = j >= 1 ? (j - 1) * per : 0;
        const int64_t pe = j >= 1 ? std::min(nlines, j * per) : 0;
        const int64_t step = pe > pl ? std::max<int64_t>(1, kc / (pe - pl)) : kc + 1;
        int64_t cnt = step;
        for (int64_t k = 0; k < kc; ++k, a += astep, bp += TC) {
          if (--cnt == 0) {
            cnt = step;
            if (pl < pe) _mm_prefetch(reinterpret_cast<const char*>(nxt + 16 * pl++), _MM_HINT_T1);
          }
          const __m512 v0 = _mm512_load_ps(bp), v1 = _mm512_load_ps(bp + 16);
#pragma GCC unroll 7
          for (int r = 0; r < TR; ++r) {
            const __m512 av = _mm512_set1_ps(a[r]);
            c[r][0] = _mm512_fmadd_ps(av, v0, c[r][0]);
            c[r][1] = _mm512_fmadd_ps(av, v1, c[r][1]);
          }
        }
        if (!last) {
          for (int r = 0; r < TR; ++r) {
            _mm512_store_ps(cb + r * TC, c[r][0]);
            _mm512_store_ps(cb + r * TC + 16, c[r][1]);
          }
          continue;
        }
        if (inplace) {
          // The sliver's 7 pixels are consecutive in one image: transpose the 7 x 32 block (a
          // padding row 8th) into rows of 7 pixels per channel and store those, two channels per
          // register (lanes 0-6 and 8-14), instead of scattering 32 channels per pixel (13% of a
          // 160 -> 960 layer at 7x7). Same per-element arithmetic: (sum + bias) + residual, clamp.
          const int64_t p0 = sl * TR, n = p0 / OHW, q = p0 % OHW;
          float* yb = y + (n * g.K + k0) * OHW + q;
          const float* rb = e.residual ? e.residual + (n * g.K + k0) * OHW + q : nullptr;
          auto put = [&](__m512 w, int64_t clo, int64_t chi) {
            if (rb) w = _mm512_add_ps(w, _mm512_mask_loadu_ps(_mm512_maskz_loadu_ps(0x7F, rb + clo * OHW), 0x7F00, rb + chi * OHW - 8));
            if (clamp) w = _mm512_min_ps(hiv, _mm512_max_ps(lov, w));
            _mm512_mask_storeu_ps(yb + clo * OHW, 0x7F, w);
            _mm512_mask_storeu_ps(yb + chi * OHW - 8, 0x7F00, w);
          };
          for (int h = 0; h < 2; ++h) {
            __m512 rw[8];
            for (int r = 0; r < TR; ++r) rw[r] = _mm512_add_ps(c[r][h], h ? b1 : b0);
            rw[7] = rw[6];
            // t: pairs of rows interleaved within 128-bit lanes; u[j] / v[j]: rows 0-3 / 4-7 of
            // channels 4L + j in lane L; w: channels j and 4 + j (or 8 + j and 12 + j), 8 rows each.
            const __m512 t0 = _mm512_unpacklo_ps(rw[0], rw[1]), t1 = _mm512_unpackhi_ps(rw[0], rw[1]);
            const __m512 t2 = _mm512_unpacklo_ps(rw[2], rw[3]), t3 = _mm512_unpackhi_ps(rw[2], rw[3]);
            const __m512 t4 = _mm512_unpacklo_ps(rw[4], rw[5]), t5 = _mm512_unpackhi_ps(rw[4], rw[5]);
            const __m512 t6 = _mm512_unpacklo_ps(rw[6], rw[7]), t7 = _mm512_unpackhi_ps(rw[6], rw[7]);
            const __m512 u[4] = {_mm512_shuffle_ps(t0, t2, 0x44), _mm512_shuffle_ps(t0, t2, 0xEE), _mm512_shuffle_ps(t1, t3, 0x44),
                                 _mm512_shuffle_ps(t1, t3, 0xEE)};
            const __m512 v[4] = {_mm512_shuffle_ps(t4, t6, 0x44), _mm512_shuffle_ps(t4, t6, 0xEE), _mm512_shuffle_ps(t5, t7, 0x44),
                                 _mm512_shuffle_ps(t5, t7, 0xEE)};
            for (int j = 0; j < 4; ++j) {
              put(_mm512_permutex2var_ps(u[j], lo_pairs, v[j]), 16 * h + j, 16 * h + 4 + j);
              put(_mm512_permutex2var_ps(u[j], hi_pairs, v[j]), 16 * h + 8 + j, 16 * h + 12 + j);
            }
          }
          continue;
        }
#pragma GCC unroll 7
        for (int r = 0; r < TR; ++r) {
          const int64_t p = sl * TR + r;
          if (p >= P) break;
          const int64_t n = p / OHW, q = p % OHW;
          const int64_t base = (n * g.K + k0) * OHW + q;  // y index of channel k0 at this pixel
          __m512 u0 = _mm512_add_ps(c[r][0], b0), u1 = _mm512_add_ps(c[r][1], b1);
          if (e.residual) {
            u0 = _mm512_add_ps(u0, _mm512_i32gather_ps(ch_off0, e.residual + base, 4));
            u1 = _mm512_add_ps(u1, _mm512_i32gather_ps(ch_off1, e.residual + base, 4));
          }
          if (clamp) {
            u0 = _mm512_min_ps(hiv, _mm512_max_ps(lov, u0));
            u1 = _mm512_min_ps(hiv, _mm512_max_ps(lov, u1));
          }
          _mm512_i32scatter_ps(y + base, ch_off0, u0, 4);
          _mm512_i32scatter_ps(y + base, ch_off1, u1, 4);
        }
      }
    }
  };
  const int64_t max_run = (S + runs - 1) / runs + 1;
  split_items(items, std::min<int64_t>(threads, items),
              [&](int64_t, int64_t it, int64_t) { item(it, scratch().get(0, static_cast<size_t>(max_run * TR * TC))); });
}

// ------------------------------------------------------------------ Winograd F(2x2, 3x3)
// 3x3 stride-1 undilated dense convolutions with enough tiles: each 2x2 output block from a 4x4
// input block through 16 products instead of 36 (Lavin & Gray):
//   V[e] (C x tiles) = (B^T d B)[e],  M[e] (K x tiles) = U[e] (K x C) @ V[e],  y = A^T M A
// with U[e] = (G w G^T)[e] packed once per frozen weight in the micro-kernel's sliver layout
// ([e][sliver][c][8]). Work items are panels of 32 tiles (of any images / tile rows), times a
// range of output-channel slivers: the input transform gathers each tile's 4x4 block for 16
// tiles at a time into the panel layout, the 16 products run on the same micro-kernel as the
// direct path, and the output transform interleaves the 2x2 blocks of 16 tiles back into rows,
// applying the epilogue (bias, residual, clamp) with masked loads and stores per tile row.
constexpr int64_t WT = 32;  // tiles per panel

struct WinoGroup {  // 16 consecutive tiles of a panel
  int64_t nseg = 0;
  struct Seg {
    int64_t l0, l1;     // lanes
    int64_t out[2];     // element offset of interleaved position 0 in y for output rows 0 and 1 (k = 0), or -1
    __mmask16 ma[2], mb[2];  // valid interleaved positions [0, 16) and [16, 32)
  } seg[16];
};

inline __mmask16 bits16(int64_t lo, int64_t hi) {  // positions [lo, hi) of 0..15
  return static_cast<__mmask16>(lane_mask(hi) & ~lane_mask(lo));
}

// V for channel c and the 16 tiles of a half from their 4x4 input blocks d: (B^T d B)[e], stored
// at Vp[e][c][half * 16 ...].
inline void winograd_input_store(const __m512 (&d)[4][4], float* Vp, int64_t C, int64_t c, int64_t half) {
  __m512 t[4][4];  // B^T d
  for (int j = 0; j < 4; ++j) {
    t[0][j] = _mm512_sub_ps(d[0][j], d[2][j]);
    t[1][j] = _mm512_add_ps(d[1][j], d[2][j]);
    t[2][j] = _mm512_sub_ps(d[2][j], d[1][j]);
    t[3][j] = _mm512_sub_ps(d[1][j], d[3][j]);
  }
  for (int i = 0; i < 4; ++i) {  // (B^T d) B
    float* o = Vp + ((i * 4) * C + c) * WT + half * 16;
    const int64_t es = C * WT;
    _mm512_store_ps(o, _mm512_sub_ps(t[i][0], t[i][2]));
    _mm512_store_ps(o + es, _mm512_add_ps(t[i][1], t[i][2]));
    _mm512_store_ps(o + 2 * es, _mm512_sub_ps(t[i][2], t[i][1]));
    _mm512_store_ps(o + 3 * es, _mm512_sub_ps(t[i][1], t[i][3]));
  }
}

// The input transform of one half (16 tiles at lanes [0, nv)) from row loads instead of gathers:
// the tiles of a half lie in at most a few runs of consecutive tiles of one tile row (segments);
// lane l of a segment reads input columns base + 2l + j (j = 0..3) of rows 2 th - pH + i, which
// are the even / odd lanes of three consecutive 16-float loads (shifted by two with valignd for
// j = 2, 3). Every load must lie inside the input's total floats (else false: the gathers run). The same
// values reach the same lanes as with the gathers, zeros outside the image.
bool winograd_input_rows(const float* x, int64_t total, float* Vp, int64_t C, int64_t tfirst, int64_t nv, int64_t half,
                         const ConvGeom& g, int64_t TH, int64_t TW) {
  const int64_t HW = g.H * g.W;
  struct Seg {
    int64_t ls, th;
    __mmask16 lanes, col[4];
    int64_t off;  // offset of image n's channel 0, row 2 th - pH, column base (lane 0) from x
  } seg[16];
  int64_t ns = 0;
  for (int64_t l = 0; l < nv;) {
    const int64_t t = tfirst + l, n = t / (TH * TW), r = t % (TH * TW), th = r / TW, tw = r % TW;
    const int64_t len = std::min(nv - l, TW - tw);
    Seg& sg = seg[ns++];
    sg.ls = l;
    sg.th = th;
    sg.lanes = static_cast<__mmask16>(lane_mask(l + len) & ~lane_mask(l));
    for (int j = 0; j < 4; ++j) {
      sg.col[j] = 0;
      for (int64_t q = 0; q < len; ++q) {
        const int64_t iw = 2 * (tw + q) - g.pW + j;
        if (iw >= 0 && iw < g.W) sg.col[j] = static_cast<__mmask16>(sg.col[j] | (1u << (l + q)));
      }
    }
    const int64_t base = 2 * tw - g.pW - 2 * l;  // column read by lane 0 for j = 0
    sg.off = n * C * HW + (2 * th - g.pH) * g.W + base;
    // the first and last loads of the whole channel loop (rows outside the image are not read)
    const int64_t ih0 = std::max<int64_t>(0, 2 * th - g.pH), ih1 = std::min<int64_t>(g.H - 1, 2 * th - g.pH + 3);
    const int64_t lo = n * C * HW + ih0 * g.W + base, hi = n * C * HW + (C - 1) * HW + ih1 * g.W + base + 48;
    l += len;
    if (ih1 >= ih0 && (lo < 0 || hi > total)) return false;  // (all four rows outside: no loads)
  }
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  for (int64_t c = 0; c < C; ++c) {
    __m512 d[4][4];
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j) d[i][j] = _mm512_setzero_ps();
    for (int64_t si = 0; si < ns; ++si) {
      const Seg& sg = seg[si];
      for (int i = 0; i < 4; ++i) {
        const int64_t ih = 2 * sg.th - g.pH + i;
        if (ih < 0 || ih >= g.H) continue;
        const float* q = x + (sg.off + c * HW + i * g.W);
        const __m512 a0 = _mm512_loadu_ps(q), a1 = _mm512_loadu_ps(q + 16), a2 = _mm512_loadu_ps(q + 32);
        const __m512 s0 = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(a1), _mm512_castps_si512(a0), 2));
        const __m512 s1 = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(a2), _mm512_castps_si512(a1), 2));
        d[i][0] = _mm512_mask_mov_ps(d[i][0], sg.col[0], _mm512_permutex2var_ps(a0, even, a1));
        d[i][1] = _mm512_mask_mov_ps(d[i][1], sg.col[1], _mm512_permutex2var_ps(a0, odd, a1));
        d[i][2] = _mm512_mask_mov_ps(d[i][2], sg.col[2], _mm512_permutex2var_ps(s0, even, s1));
        d[i][3] = _mm512_mask_mov_ps(d[i][3], sg.col[3], _mm512_permutex2var_ps(s0, odd, s1));
      }
    }
    winograd_input_store(d, Vp, C, c, half);
  }
  return true;
}

void winograd_input(const float* x, float* Vp, int64_t C, int64_t t0, int64_t nt, const ConvGeom& g, int64_t TH, int64_t TW) {
  const int64_t HW = g.H * g.W;
  for (int64_t half = 0; half < 2; ++half) {
    const int64_t nv = std::min<int64_t>(16, nt - half * 16);
    if (nv > 0 && winograd_input_rows(x, g.N * C * HW, Vp, C, t0 + half * 16, nv, half, g, TH, TW)) continue;
    alignas(64) int32_t off[16];
    __mmask16 rowm[4] = {0, 0, 0, 0}, colm[4] = {0, 0, 0, 0};
    int64_t n0 = -1;
    for (int64_t l = 0; l < 16; ++l) {
      const int64_t t = t0 + half * 16 + l;
      off[l] = 0;
      if (half * 16 + l >= nt) continue;
      const int64_t n = t / (TH * TW), r = t % (TH * TW), th = r / TW, tw = r % TW;
      if (n0 < 0) n0 = n;
      const int64_t ih = 2 * th - g.pH, iw = 2 * tw - g.pW;
      off[l] = static_cast<int32_t>((n - n0) * C * HW + ih * g.W + iw);
      for (int i = 0; i < 4; ++i) {
        if (static_cast<uint64_t>(ih + i) < static_cast<uint64_t>(g.H)) rowm[i] = static_cast<__mmask16>(rowm[i] | (1u << l));
        if (static_cast<uint64_t>(iw + i) < static_cast<uint64_t>(g.W)) colm[i] = static_cast<__mmask16>(colm[i] | (1u << l));
      }
    }
    if (n0 < 0) {  // no tiles in this half: zeros
      for (int64_t e = 0; e < 16; ++e)
        for (int64_t c = 0; c < C; ++c) _mm512_store_ps(Vp + (e * C + c) * WT + half * 16, _mm512_setzero_ps());
      continue;
    }
    const __m512i base = _mm512_load_si512(off);
    __m512i idx[4][4];
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j) idx[i][j] = _mm512_add_epi32(base, _mm512_set1_epi32(static_cast<int32_t>(i * g.W + j)));
    const float* xc = x + n0 * C * HW;
    for (int64_t c = 0; c < C; ++c, xc += HW) {
      __m512 d[4][4];
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) d[i][j] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), rowm[i] & colm[j], idx[i][j], xc, 4);
      winograd_input_store(d, Vp, C, c, half);
    }
  }
}

void winograd_groups(WinoGroup* grp, int64_t t0, int64_t nt, const ConvGeom& g, int64_t TH, int64_t TW) {
  for (int64_t half = 0; half < 2; ++half) {
    WinoGroup& G = grp[half];
    G.nseg = 0;
    for (int64_t l = 0; l < 16 && half * 16 + l < nt;) {
      const int64_t t = t0 + half * 16 + l;
      const int64_t n = t / (TH * TW), r = t % (TH * TW), th = r / TW, tw = r % TW;
      const int64_t len = std::min<int64_t>({16 - l, TW - tw, nt - half * 16 - l});
      WinoGroup::Seg& sg = G.seg[G.nseg++];
      sg.l0 = l;
      sg.l1 = l + len;
      for (int rr = 0; rr < 2; ++rr) {
        const int64_t oh = 2 * th + rr;
        if (oh >= g.OH) {
          sg.out[rr] = -1;
          continue;
        }
        const int64_t col0 = 2 * tw - 2 * l;  // output column of interleaved position 0
        sg.out[rr] = (n * g.K * g.OH + oh) * g.OW + col0;
        const int64_t lo = 2 * l, hi = std::min<int64_t>(2 * (l + len), g.OW - col0);
        sg.ma[rr] = bits16(lo, hi);
        sg.mb[rr] = bits16(lo - 16, hi - 16);
      }
      l += len;
    }
  }
}

void winograd_output(const float* Mt, int64_t kl, int64_t Kr, int64_t k, float* y, const WinoGroup* grp, const ConvGeom& g,
                     const ConvEpilogue& e, bool clamp) {
  const int64_t OHW = g.OH * g.OW;
  const __m512i lo8 = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi8 = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const __m512 lov = _mm512_set1_ps(e.lo), hiv = _mm512_set1_ps(e.hi);
  const __m512 bv = _mm512_set1_ps(e.bias ? e.bias[k] : 0.f);
  for (int64_t half = 0; half < 2; ++half) {
    const WinoGroup& G = grp[half];
    if (!G.nseg) continue;
    __m512 m[4][4];
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j) m[i][j] = _mm512_load_ps(Mt + ((i * 4 + j) * Kr + kl) * WT + half * 16);
    __m512 s[2][4];  // A^T m
    for (int j = 0; j < 4; ++j) {
      s[0][j] = _mm512_add_ps(_mm512_add_ps(m[0][j], m[1][j]), m[2][j]);
      s[1][j] = _mm512_sub_ps(_mm512_sub_ps(m[1][j], m[2][j]), m[3][j]);
    }
    for (int rr = 0; rr < 2; ++rr) {
      const __m512 y0 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s[rr][0], s[rr][1]), s[rr][2]), bv);
      const __m512 y1 = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s[rr][1], s[rr][2]), s[rr][3]), bv);
      const __m512 ia = _mm512_permutex2var_ps(y0, lo8, y1), ib = _mm512_permutex2var_ps(y0, hi8, y1);  // row order
      for (int64_t q = 0; q < G.nseg; ++q) {
        const WinoGroup::Seg& sg = G.seg[q];
        if (sg.out[rr] < 0) continue;
        const int64_t o = sg.out[rr] + k * OHW;
        __m512 a = ia, b = ib;
        if (e.residual) {
          const bool plain = o + 32 <= g.N * g.K * OHW;  // (o >= 0)
          a = _mm512_add_ps(a, load_lanes(sg.ma[rr], e.residual + o, plain));
          b = _mm512_add_ps(b, load_lanes(sg.mb[rr], e.residual + o + 16, plain));
        }
        if (clamp) {
          a = _mm512_min_ps(hiv, _mm512_max_ps(lov, a));
          b = _mm512_min_ps(hiv, _mm512_max_ps(lov, b));
        }
        if (sg.ma[rr]) _mm512_mask_storeu_ps(y + o, sg.ma[rr], a);
        if (sg.mb[rr]) _mm512_mask_storeu_ps(y + o + 16, sg.mb[rr], b);
      }
    }
  }
}

void winograd_run(const float* x, const float* U, float* y, const ConvGeom& g, const ConvEpilogue& e) {
  const int64_t C = g.C, K = g.K, Mb = (K + MR - 1) / MR;
  const int64_t TH = (g.OH + 1) / 2, TW = (g.OW + 1) / 2, T = g.N * TH * TW;
  const int64_t panels = (T + WT - 1) / WT;
  const int64_t threads = get_num_threads();
  const int64_t msplit = std::max<int64_t>(1, std::min<int64_t>(Mb, (2 * threads + panels - 1) / panels));
  const int64_t items = panels * msplit;
  const int64_t nkb = (C + KC - 1) / KC, kcb = (C + nkb - 1) / nkb;
  const bool clamp = e.lo > -__builtin_inff() || e.hi < __builtin_inff();
  auto item = [&](int64_t it) {
    const int64_t ms = it % msplit, pa = it / msplit;
    const int64_t mb0 = ms * Mb / msplit, mb1 = (ms + 1) * Mb / msplit;
    const int64_t Kr = (mb1 - mb0) * MR;
    const int64_t t0 = pa * WT, nt = std::min(WT, T - t0);
    float* Vp = scratch().get(0, static_cast<size_t>(16 * C * WT));
    float* Mt = scratch().get(1, static_cast<size_t>(16 * Kr * WT));
    winograd_input(x, Vp, C, t0, nt, g, TH, TW);
    Store s;
    s.m0 = s.m1 = 0xFFFF;
    s.last = false;
    s.bias = nullptr;
    s.res = nullptr;
    s.clamp = false;
    s.lo = s.hi = 0.f;
    for (int64_t ei = 0; ei < 16; ++ei)
      for (int64_t c0 = 0; c0 < C; c0 += kcb) {
        const int64_t kc = std::min(kcb, C - c0);
        s.accumulate = c0 > 0;
        for (int64_t mb = mb0; mb < mb1; ++mb) {
          s.rows = MR;  // rows past K are zero weights; Mt has room for them
          micro_kernel(kc, U + ((ei * Mb + mb) * C + c0) * MR, Vp + (ei * C + c0) * WT, Mt + (ei * Kr + (mb - mb0) * MR) * WT, WT, s);
        }
      }
    WinoGroup grp[2];
    winograd_groups(grp, t0, nt, g, TH, TW);
    for (int64_t k = mb0 * MR; k < std::min(K, mb1 * MR); ++k) winograd_output(Mt, k - mb0 * MR, Kr, k, y, grp, g, e, clamp);
  };
  split_items(items, std::min<int64_t>(threads, items), [&](int64_t, int64_t it, int64_t) { item(it); });
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

}  // namespace

bool winograd_enabled_f32() {
  static const bool on = [] {
    const char* e = std::getenv("HERON_CONV_WINOGRAD");
    return !(e && !std::strcmp(e, "0"));
  }();
  return on;
}

// Winograd pays with enough tiles to reuse its 16/9 larger weights over, and enough channels.
bool winograd_f32_ok(const ConvGeom& g, bool frozen_weight) {
  if (!winograd_enabled_f32() || g.G != 1 || g.kH != 3 || g.kW != 3 || g.sH != 1 || g.sW != 1 || g.dH != 1 || g.dW != 1) return false;
  if (g.C < 16 || g.K < 16) return false;
  const int64_t tiles = g.N * ((g.OH + 1) / 2) * ((g.OW + 1) / 2);
  // A weight that is not frozen is transformed on every call: worth it only over many tiles.
  if (tiles < (frozen_weight ? 32 : 512)) return false;
  return 2 * g.C * g.H * g.W < (int64_t{1} << 31);  // int32 gather offsets over two images
}

// U[e] = (G w G^T)[e] in sliver layout [e][mb][c][8], computed in double.
std::shared_ptr<const PackedWeight> winograd_weight_packed(const Tensor& w, const ConvGeom& g) {
  const int64_t K = g.K, C = g.C, Mb = (K + MR - 1) / MR;
  const Storage& st = *w.storage();
  const bool cache = st.frozen();
  const std::string key = cache ? str_cat("conv_gemm.wino23.mr8:", w.offset(), ":", w.shape().str()) : std::string();
  if (cache)
    if (auto p = st.find_derived(key)) return std::static_pointer_cast<const PackedWeight>(p);
  auto pw = std::make_shared<PackedWeight>();
  const size_t n = static_cast<size_t>(16 * Mb * C * MR);
  pw->data = static_cast<float*>(std::aligned_alloc(64, std::max<size_t>((n * sizeof(float) + 63) / 64 * 64, 64)));
  if (!pw->data) throw Error(ErrorCode::OutOfMemory, "conv2d: cannot allocate Winograd weights");
  std::fill_n(pw->data, n, 0.f);
  const float* src = w.data<float>();
  const double Gm[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  for (int64_t k = 0; k < K; ++k)
    for (int64_t c = 0; c < C; ++c) {
      const float* f = src + (k * C + c) * 9;
      double t[4][3];  // G f
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 3; ++j) t[i][j] = Gm[i][0] * f[0 * 3 + j] + Gm[i][1] * f[1 * 3 + j] + Gm[i][2] * f[2 * 3 + j];
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) {
          const double u = t[i][0] * Gm[j][0] + t[i][1] * Gm[j][1] + t[i][2] * Gm[j][2];
          const int64_t e = i * 4 + j, mb = k / MR, r = k % MR;
          pw->data[((e * Mb + mb) * C + c) * MR + r] = static_cast<float>(u);
        }
    }
  if (cache) st.put_derived(key, pw);
  return pw;
}

// The pixels-as-rows path: dense convolutions with whole 32-channel panels on planes where the
// direct kernel's 32-pixel panels waste >= 15% of their columns (7x7 at any batch), frozen
// weights (w^T is packed once), and offsets that fit the scatters' int32 indices.
bool t_ok(const ConvGeom& g, bool frozen_weight) {
  if (!frozen_weight || g.G != 1 || g.K % TC != 0) return false;
  const int64_t OHW = g.OH * g.OW, Kd = g.C * g.kH * g.kW;
  const int64_t cols = (OHW + NR - 1) / NR * NR;
  if (OHW * 100 > cols * 85 || Kd < 16) return false;
  if (g.N * g.OH * g.OW * Kd > (int64_t{1} << 26)) return false;  // the packed pixels stay small
  return g.K * OHW < (int64_t{1} << 30) && g.H * g.W * g.C < (int64_t{1} << 30);
}

bool t_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("HERON_CONV_PIXEL_ROWS");
    return !(e && !std::strcmp(e, "0"));
  }();
  return on;
}

std::shared_ptr<const PackedWeight> t_weight_packed(const Tensor& w, const ConvGeom& g) {
  const int64_t K = g.K, Kd = g.C * g.kH * g.kW, panels = K / TC;
  const Storage& st = *w.storage();
  const std::string key = str_cat("conv_gemm.t32:", w.offset(), ":", w.shape().str());
  if (auto p = st.find_derived(key)) return std::static_pointer_cast<const PackedWeight>(p);
  auto pw = std::make_shared<PackedWeight>();
  const size_t n = static_cast<size_t>(K * Kd);
  pw->data = static_cast<float*>(std::aligned_alloc(64, std::max<size_t>((n * sizeof(float) + 63) / 64 * 64, 64)));
  if (!pw->data) throw Error(ErrorCode::OutOfMemory, "conv2d: cannot allocate packed weights");
  const float* src = w.data<float>();
  for (int64_t cp = 0; cp < panels; ++cp)
    for (int64_t k = 0; k < Kd; ++k)
      for (int64_t l = 0; l < TC; ++l) pw->data[(cp * Kd + k) * TC + l] = src[(cp * TC + l) * Kd + k];
  st.put_derived(key, pw);
  return pw;
}

bool conv_gemm_supported(const ConvGeom& g) {
  if (!conv_fast_enabled() || vec::active_isa() != vec::Isa::Avx512) return false;
  const bool depthwise = g.G > 1 && g.G == g.C && g.K == g.C;
  if (depthwise) return false;
  const int64_t Cg = g.C / g.G;
  if (Cg * g.kH * g.kW == 0) return false;
  // Gather indices are int32 within one plane.
  if (g.H * g.W >= (int64_t{1} << 30) || g.H + g.kH * g.dH >= (int64_t{1} << 29) || g.W + g.kW * g.dW >= (int64_t{1} << 29)) return false;
  return true;
}

void conv_gemm_f32(const Tensor& x, const Tensor& w, const Tensor& y, const ConvGeom& g, const ConvEpilogue& e) {
  const bool frozen = w.storage()->frozen();
  const bool t_path = t_enabled() && t_ok(g, frozen);
  // Winograd's 2x2 tiles cover odd planes with waste (7x7: 8x8 computed, 31% more): where that
  // is over a quarter and pixels as rows can run the layer, it does (ResNet-18's 7x7 layer 4 at
  // batch 8, 2 threads, Zen 5: 4.5-5.1 instead of 6.2-6.4 ms per convolution; batch 1 the same).
  const bool wino_waste = 4 * (2 * ((g.OH + 1) / 2)) * (2 * ((g.OW + 1) / 2)) > 5 * g.OH * g.OW;
  if (winograd_f32_ok(g, frozen) && !(t_path && wino_waste)) {
    auto u = winograd_weight_packed(w, g);
    winograd_run(x.data<float>(), u->data, y.data<float>(), g, e);
    return;
  }
  if (t_path) {
    auto wt = t_weight_packed(w, g);
    t_run(x.data<float>(), wt->data, y.data<float>(), g, e);
    return;
  }
  const int64_t Kg = g.K / g.G, Kd = (g.C / g.G) * g.kH * g.kW, Mb = (Kg + MR - 1) / MR;
  auto pw = packed_weight(w, g, Kg, Kd, Mb);
  run(x.data<float>(), pw->data, y.data<float>(), g, e);
}

#else  // not x86-64

bool conv_gemm_supported(const ConvGeom&) { return false; }
void conv_gemm_f32(const Tensor&, const Tensor&, const Tensor&, const ConvGeom&, const ConvEpilogue&) {
  throw Error(ErrorCode::NotImplemented, "conv_gemm_f32: not available on this CPU");
}

#endif

}  // namespace cpu
}  // namespace heron
