// The narrow tail of a 1x1 float32 convolution for conv_gemm.cpp (AVX-512 CPUs): an image's last
// panel when it holds at most 8 pixels (14x14 planes at batch 1 end with 4 of 32). Pixels as rows:
// per 8-row sliver of the packed weights, acc[p] (the 8 output channels of pixel p, one ymm) +=
// x[k][p] * w[k][0..7], x read in place, so no lanes are spent on absent pixels (conv_gemm's
// half-width micro-kernel computes 16 columns for them: 4x the work for 4 pixels). Each output goes
// through the same chain of operations as in conv_gemm's micro-kernel (FMAs over k in order, k
// block by k block, the earlier blocks' partial sum added first, then bias, residual and a clamp
// that keeps nan), so the results are bit for bit those of the half-width kernel.
//
// In its own file (conv_gemm.cpp only calls it): with these functions in conv_gemm.cpp GCC stopped
// inlining the packed micro-kernel into its item loop, and the expansion layers got 4-6% slower.
#include <algorithm>
#include <cstdint>

#include "core/ops/kernels/cpu/conv_gemm.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

namespace heron {
namespace cpu {
namespace {

constexpr int64_t MR = 8;  // rows per sliver of the packed weights (conv_gemm.cpp's MR)

template <int P>
__attribute__((target("avx512f,avx2,fma"))) void narrow_block(int64_t kc, const float* A, int64_t as, int64_t nsl, const float* X,
                                                              int64_t ldx, float* C, int64_t ldc, int64_t rows_total, bool accumulate,
                                                              bool last, const float* bias, const float* res, bool clamp, float lo,
                                                              float hi) {
  for (int64_t sl = 0; sl < nsl; ++sl) {
    __m256 acc[P];
#pragma GCC unroll 8
    for (int p = 0; p < P; ++p) acc[p] = _mm256_setzero_ps();
    const float* a = A + sl * as;
    const float* xk = X;
    for (int64_t k = 0; k < kc; ++k) {
      const __m256 av = _mm256_loadu_ps(a + k * MR);
#pragma GCC unroll 8
      for (int p = 0; p < P; ++p) acc[p] = _mm256_fmadd_ps(_mm256_set1_ps(xk[p]), av, acc[p]);
      xk += ldx;
    }
    alignas(32) float buf[P][MR];
#pragma GCC unroll 8
    for (int p = 0; p < P; ++p) _mm256_store_ps(buf[p], acc[p]);
    const int64_t rows = std::min<int64_t>(MR, rows_total - sl * MR);
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t row = sl * MR + r;
      float* cr = C + row * ldc;
      for (int p = 0; p < P; ++p) {
        float v = buf[p][r];
        if (accumulate) v = v + cr[p];
        if (last) {
          if (bias) v = v + bias[row];
          if (res) v = v + res[row * ldc + p];
          if (clamp) {  // as max_ps(lo, v) then min_ps(hi, v): a nan v stays nan
            v = lo > v ? lo : v;
            v = hi < v ? hi : v;
          }
        }
        cr[p] = v;
      }
    }
  }
}

using NarrowBlockFn = void (*)(int64_t, const float*, int64_t, int64_t, const float*, int64_t, float*, int64_t, int64_t, bool, bool,
                               const float*, const float*, bool, float, float);
constexpr NarrowBlockFn kNarrowBlock[9] = {nullptr,          &narrow_block<1>, &narrow_block<2>, &narrow_block<3>, &narrow_block<4>,
                                           &narrow_block<5>, &narrow_block<6>, &narrow_block<7>, &narrow_block<8>};

}  // namespace

void conv1x1_narrow_tail_f32(const float* x, int64_t ldx, int64_t nr, const float* wp, int64_t Kd, int64_t kcb, int64_t nsl,
                             int64_t rows, float* y, int64_t ldy, const float* bias, const float* res, bool clamp, float lo, float hi) {
  for (int64_t k0 = 0; k0 < Kd; k0 += kcb) {
    const int64_t kc = std::min(kcb, Kd - k0);
    kNarrowBlock[nr](kc, wp + k0 * MR, Kd * MR, nsl, x + k0 * ldx, ldx, y, ldy, rows, k0 > 0, k0 + kc == Kd, bias, res, clamp, lo, hi);
  }
}

}  // namespace cpu
}  // namespace heron

#else

namespace heron {
namespace cpu {
void conv1x1_narrow_tail_f32(const float*, int64_t, int64_t, const float*, int64_t, int64_t, int64_t, int64_t, float*, int64_t,
                             const float*, const float*, bool, float, float) {}
}  // namespace cpu
}  // namespace heron

#endif
