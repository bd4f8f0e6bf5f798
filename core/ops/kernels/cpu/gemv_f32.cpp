// Small-batch float32 linear layers: out[m, o] = b[o] + x[m] . w[o] for M <= 4 rows of x.
//
// At batch 1 the product is bound by reading w (MobileNetV2's classifier: 5 MB for 2.6 MFLOP),
// so w is read once, row-major as stored (no packing), R rows at a time (8 for one or two rows of
// x, 4 otherwise): per 16 columns R weight loads and M broadcast-free loads of x feed R x M
// accumulator registers; each accumulator is reduced horizontally at the end (a fixed tree), the
// bias added last. Blocks of output features are shared among the pool threads; an output is
// always summed by one thread in the same order, so results do not depend on the thread count.
#include "core/ops/kernels/cpu/gemv_f32.h"

#include <algorithm>

#include "core/ops/kernels/cpu/vec_math.h"
#include "core/util/thread_pool.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HERON_GEMV_X86 1
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12's intrinsics headers (_mm512_undefined_ps)
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>
#endif

namespace heron {
namespace cpu {

#if HERON_GEMV_X86
namespace {

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f")
#endif

// The sum of the 16 lanes, by a fixed tree (halves, quarters, pairs within 128 bits).
inline float hsum(__m512 a) {
  a = _mm512_add_ps(a, _mm512_shuffle_f32x4(a, a, 0x4E));
  a = _mm512_add_ps(a, _mm512_shuffle_f32x4(a, a, 0xB1));
  a = _mm512_add_ps(a, _mm512_permute_ps(a, 0x4E));
  a = _mm512_add_ps(a, _mm512_permute_ps(a, 0xB1));
  return _mm512_cvtss_f32(a);
}

// Rows [o0, o0 + R) of out for all M rows of x.
template <int R, int M>
inline void gemv_block(const float* x, const float* w, const float* b, float* out, int64_t K, int64_t O, int64_t o0) {
  __m512 acc[R][M];
  for (int r = 0; r < R; ++r)
    for (int m = 0; m < M; ++m) acc[r][m] = _mm512_setzero_ps();
  const float* wr = w + o0 * K;
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    __m512 xv[M];
    for (int m = 0; m < M; ++m) xv[m] = _mm512_loadu_ps(x + m * K + k);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 wv = _mm512_loadu_ps(wr + r * K + k);
      for (int m = 0; m < M; ++m) acc[r][m] = _mm512_fmadd_ps(wv, xv[m], acc[r][m]);
    }
  }
  if (k < K) {
    const __mmask16 t = static_cast<__mmask16>((1u << (K - k)) - 1);
    __m512 xv[M];
    for (int m = 0; m < M; ++m) xv[m] = _mm512_maskz_loadu_ps(t, x + m * K + k);
    for (int r = 0; r < R; ++r) {
      const __m512 wv = _mm512_maskz_loadu_ps(t, wr + r * K + k);
      for (int m = 0; m < M; ++m) acc[r][m] = _mm512_fmadd_ps(wv, xv[m], acc[r][m]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int m = 0; m < M; ++m) {
      const float s = hsum(acc[r][m]);
      out[m * O + o0 + r] = b ? s + b[o0 + r] : s;
    }
}

template <int M>
void gemv_rows(const float* x, const float* w, const float* b, float* out, int64_t K, int64_t O, int64_t o0, int64_t o1) {
  constexpr int R = M <= 2 ? 8 : 4;
  int64_t o = o0;
  for (; o + R <= o1; o += R) gemv_block<R, M>(x, w, b, out, K, O, o);
  for (; o < o1; ++o) gemv_block<1, M>(x, w, b, out, K, O, o);
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

}  // namespace

bool linear_gemv_f32_ok(int64_t M, int64_t K, int64_t O) {
  return vec::active_isa() == vec::Isa::Avx512 && M >= 1 && M <= 4 && K >= 16 && O >= 8;
}

void linear_gemv_f32(const float* x, const float* w, const float* b, float* out, int64_t M, int64_t K, int64_t O) {
  // Blocks of 64 output features (8 register blocks; 320 KB of w at K = 1280), several per thread.
  constexpr int64_t BLK = 64;
  const int64_t nblk = (O + BLK - 1) / BLK;
  parallel_for(0, nblk, 1, [&](int64_t b0, int64_t b1) {
    const int64_t o0 = b0 * BLK, o1 = std::min(O, b1 * BLK);
    switch (M) {
      case 1: gemv_rows<1>(x, w, b, out, K, O, o0, o1); break;
      case 2: gemv_rows<2>(x, w, b, out, K, O, o0, o1); break;
      case 3: gemv_rows<3>(x, w, b, out, K, O, o0, o1); break;
      default: gemv_rows<4>(x, w, b, out, K, O, o0, o1); break;
    }
  });
}

#else  // not x86-64

bool linear_gemv_f32_ok(int64_t, int64_t, int64_t) { return false; }
void linear_gemv_f32(const float*, const float*, const float*, float*, int64_t, int64_t, int64_t) {}

#endif

}  // namespace cpu
}  // namespace heron
