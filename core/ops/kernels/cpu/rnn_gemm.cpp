// Packed-panel GEMM for the recurrent products (rnn_gemm.h): an 8 x 32 register block (16 zmm
// accumulators), panels outermost so one 32-column panel of W_hh stays in cache while every row
// block of the (small) left-hand matrix passes over it. The sum over k runs in order, so results
// do not depend on how callers split the panels over threads.
#include "core/ops/kernels/cpu/rnn_gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "core/ops/kernels/cpu/vec_math.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HERON_RNN_GEMM_X86 1
#include <immintrin.h>
#endif

namespace heron {
namespace cpu {

void rnn_pack_b(const float* b, int64_t ldb, bool trans, int64_t K, int64_t N, std::vector<float>& out) {
  const int64_t np = (N + kRnnPanel - 1) / kRnnPanel;
  out.assign(static_cast<size_t>(np * K * kRnnPanel), 0.0f);
  for (int64_t p = 0; p < np; ++p) {
    const int64_t j0 = p * kRnnPanel, nj = std::min(kRnnPanel, N - j0);
    float* dst = out.data() + p * K * kRnnPanel;
    if (trans) {  // B is N x K: column j of op(B) is row j of B
      for (int64_t j = 0; j < nj; ++j) {
        const float* src = b + (j0 + j) * ldb;
        for (int64_t k = 0; k < K; ++k) dst[k * kRnnPanel + j] = src[k];
      }
    } else {
      for (int64_t k = 0; k < K; ++k) std::memcpy(dst + k * kRnnPanel, b + k * ldb + j0, sizeof(float) * nj);
    }
  }
}

#if HERON_RNN_GEMM_X86
namespace {

constexpr int64_t kKc = 512;  // k rows per block (a panel streams from L2; the packed A block stays in L1)

// C (MR x 32, masked columns) (+)= Ap (k-major, 8 per k) . Bp (k-major, 32 per k) over kc rows.
template <int MR>
__attribute__((target("avx512f"))) void ukr(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, bool acc, __mmask16 m0,
                                            __mmask16 m1) {
  __m512 c0[MR], c1[MR];
  for (int i = 0; i < MR; ++i) c0[i] = _mm512_setzero_ps(), c1[i] = _mm512_setzero_ps();
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_loadu_ps(bp + k * kRnnPanel), b1 = _mm512_loadu_ps(bp + k * kRnnPanel + 16);
    for (int i = 0; i < MR; ++i) {
      const __m512 av = _mm512_set1_ps(ap[k * 8 + i]);
      c0[i] = _mm512_fmadd_ps(av, b0, c0[i]);
      c1[i] = _mm512_fmadd_ps(av, b1, c1[i]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * ldc;
    if (acc) {
      c0[i] = _mm512_add_ps(c0[i], _mm512_maskz_loadu_ps(m0, ci));
      c1[i] = _mm512_add_ps(c1[i], _mm512_maskz_loadu_ps(m1, ci + 16));
    }
    _mm512_mask_storeu_ps(ci, m0, c0[i]);
    _mm512_mask_storeu_ps(ci + 16, m1, c1[i]);
  }
}

using Ukr = void (*)(int64_t, const float*, const float*, float*, int64_t, bool, __mmask16, __mmask16);
const Ukr kUkr[9] = {nullptr, &ukr<1>, &ukr<2>, &ukr<3>, &ukr<4>, &ukr<5>, &ukr<6>, &ukr<7>, &ukr<8>};

// A (M x K) as row blocks of 8, k-major within a block (zero-padded rows): one contiguous 32-byte
// read per k for the broadcasts.
void pack_a(int64_t M, int64_t K, const float* a, int64_t lda, std::vector<float>& out) {
  const int64_t nt = (M + 7) / 8;
  out.resize(static_cast<size_t>(nt * K * 8));
  for (int64_t t = 0; t < nt; ++t) {
    float* dst = out.data() + t * K * 8;
    const int64_t mr = std::min<int64_t>(8, M - t * 8);
    for (int64_t k = 0; k < K; ++k) {
      for (int64_t i = 0; i < mr; ++i) dst[k * 8 + i] = a[(t * 8 + i) * lda + k];
      for (int64_t i = mr; i < 8; ++i) dst[k * 8 + i] = 0.0f;
    }
  }
}

// C (MR x 32, masked columns) = bias (or 0) + sum over the terms of A_t rows (read in place) .
// the term's panel.
template <int MR>
__attribute__((target("avx512f"))) void ukr_sum(const RnnGemmTerm* terms, int nterms, int64_t i0, int64_t panel, const float* bias, float* c,
                                                int64_t ldc, bool acc, __mmask16 m0, __mmask16 m1) {
  __m512 c0[MR], c1[MR];
  const __m512 z0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
  const __m512 z1 = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
  for (int i = 0; i < MR; ++i) {
    c0[i] = acc ? _mm512_maskz_loadu_ps(m0, c + i * ldc) : z0;
    c1[i] = acc ? _mm512_maskz_loadu_ps(m1, c + i * ldc + 16) : z1;
  }
  for (int t = 0; t < nterms; ++t) {
    const int64_t K = terms[t].K, lda = terms[t].lda;
    const float* a = terms[t].a + i0 * lda;
    const float* bp = terms[t].packed + panel * K * kRnnPanel;
#pragma GCC unroll 4
    for (int64_t k = 0; k < K; ++k) {
      const __m512 b0 = _mm512_loadu_ps(bp + k * kRnnPanel), b1 = _mm512_loadu_ps(bp + k * kRnnPanel + 16);
      for (int i = 0; i < MR; ++i) {
        const __m512 av = _mm512_set1_ps(a[i * lda + k]);
        c0[i] = _mm512_fmadd_ps(av, b0, c0[i]);
        c1[i] = _mm512_fmadd_ps(av, b1, c1[i]);
      }
    }
  }
  for (int i = 0; i < MR; ++i) {
    _mm512_mask_storeu_ps(c + i * ldc, m0, c0[i]);
    _mm512_mask_storeu_ps(c + i * ldc + 16, m1, c1[i]);
  }
}

using UkrSum = void (*)(const RnnGemmTerm*, int, int64_t, int64_t, const float*, float*, int64_t, bool, __mmask16, __mmask16);
const UkrSum kUkrSum[9] = {nullptr, &ukr_sum<1>, &ukr_sum<2>, &ukr_sum<3>, &ukr_sum<4>, &ukr_sum<5>, &ukr_sum<6>, &ukr_sum<7>, &ukr_sum<8>};

}  // namespace

void rnn_gemm_sum_f32(int64_t M, int64_t n0, int64_t n1, const RnnGemmTerm* terms, int nterms, const float* bias, float* c, int64_t ldc,
                      bool accumulate) {
  if (M <= 0 || n1 <= n0) return;
  for (int64_t j0 = n0; j0 < n1; j0 += kRnnPanel) {
    const int64_t nj = std::min(kRnnPanel, n1 - j0);
    const __mmask16 m0 = static_cast<__mmask16>(nj >= 16 ? 0xFFFF : (1u << nj) - 1);
    const __mmask16 m1 = static_cast<__mmask16>(nj >= 32 ? 0xFFFF : nj <= 16 ? 0 : (1u << (nj - 16)) - 1);
    for (int64_t i0 = 0; i0 < M; i0 += 8) {
      const int64_t mr = std::min<int64_t>(8, M - i0);
      kUkrSum[mr](terms, nterms, i0, j0 / kRnnPanel, bias ? bias + j0 : nullptr, c + i0 * ldc + j0, ldc, accumulate, m0, m1);
    }
  }
}

bool rnn_gemm_supported() {
  static const bool on = [] {
    const char* e = std::getenv("HERON_RNN_FAST");
    return !(e && !std::strcmp(e, "0"));
  }();
  return on && vec::active_isa() == vec::Isa::Avx512;
}

void rnn_gemm_f32(int64_t M, int64_t n0, int64_t n1, int64_t K, const float* a, int64_t lda, const float* packed, float* c, int64_t ldc,
                  bool accumulate) {
  if (M <= 0 || n1 <= n0) return;
  thread_local std::vector<float> ap;
  pack_a(M, K, a, lda, ap);
  for (int64_t k0 = 0; k0 < K; k0 += kKc) {
    const int64_t kc = std::min(kKc, K - k0);
    const bool acc = accumulate || k0 > 0;
    for (int64_t j0 = n0; j0 < n1; j0 += kRnnPanel) {
      const int64_t nj = std::min(kRnnPanel, n1 - j0);
      const __mmask16 m0 = static_cast<__mmask16>(nj >= 16 ? 0xFFFF : (1u << nj) - 1);
      const __mmask16 m1 = static_cast<__mmask16>(nj >= 32 ? 0xFFFF : nj <= 16 ? 0 : (1u << (nj - 16)) - 1);
      const float* bp = packed + (j0 / kRnnPanel) * K * kRnnPanel + k0 * kRnnPanel;
      for (int64_t i0 = 0; i0 < M; i0 += 8) {
        const int64_t mr = std::min<int64_t>(8, M - i0);
        kUkr[mr](kc, ap.data() + i0 * K + k0 * 8, bp, c + i0 * ldc + j0, ldc, acc, m0, m1);
      }
    }
  }
}

#else
bool rnn_gemm_supported() { return false; }
void rnn_gemm_f32(int64_t, int64_t, int64_t, int64_t, const float*, int64_t, const float*, float*, int64_t, bool) {}
void rnn_gemm_sum_f32(int64_t, int64_t, int64_t, const RnnGemmTerm*, int, const float*, float*, int64_t, bool) {}
#endif

}  // namespace cpu
}  // namespace heron
