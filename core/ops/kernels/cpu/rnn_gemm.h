// The recurrent products of the RNN kernels (rnn_kernels.cpp) on float32 AVX-512 CPUs: a GEMM
// whose right-hand matrix (a layer's W_hh) is packed once per call into 32-column panels, so the
// time loop never repacks it (OpenBLAS packs both operands on every call, which at batch 64 costs
// as much as the product).
#pragma once
#include <cstdint>
#include <vector>

namespace heron {
namespace cpu {

// Whether rnn_gemm_f32 runs here (AVX-512F active; HERON_RNN_FAST=0 turns it off).
bool rnn_gemm_supported();

constexpr int64_t kRnnPanel = 32;

// Packs op(B) (K x N; B is K x N row-major, or N x K when trans) into ceil(N/32) panels of K x 32
// (zero-padded), resizing `out`.
void rnn_pack_b(const float* b, int64_t ldb, bool trans, int64_t K, int64_t N, std::vector<float>& out);

// C[:, n0:n1] (M rows) = A (M x K, row-major) . packed[:, n0:n1] (+ C when accumulate); n0 is a
// multiple of 32. Single-threaded (callers split the panels over the pool).
void rnn_gemm_f32(int64_t M, int64_t n0, int64_t n1, int64_t K, const float* a, int64_t lda, const float* packed, float* c, int64_t ldc,
                  bool accumulate);

// One term of rnn_gemm_sum_f32: A (M x K, row-major, row stride lda) times a matrix packed by
// rnn_pack_b (K x N).
struct RnnGemmTerm {
  const float* a;
  int64_t lda;
  int64_t K;
  const float* packed;
};

// C[:, n0:n1] (M rows) = (C when accumulate, else bias[n0:n1], or zero when null) + the sum over
// the terms of A_t . B_t[:, n0:n1]; n0 is a multiple of 32. Each 8 x 32 block of C sums every term
// in registers (terms in order, k in order within a term) and is stored once; A is read in place
// (not packed). Single-threaded.
void rnn_gemm_sum_f32(int64_t M, int64_t n0, int64_t n1, const RnnGemmTerm* terms, int nterms, const float* bias, float* c, int64_t ldc,
                      bool accumulate);

}  // namespace cpu
}  // namespace heron
