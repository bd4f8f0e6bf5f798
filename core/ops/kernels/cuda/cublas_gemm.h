// A row-major GEMM on a cuda device through cuBLAS (loaded at run time, matmul_kernels.cu):
// C (m x n, row stride ldc) = op(A) op(B) + beta C, op = transpose where ta / tb. Runs on the
// default stream of `device`. Throws DeviceError when cuBLAS is missing or fails.
#pragma once
#include <cstdint>

namespace heron {
namespace cuda {

void gemm_rowmajor(int device, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                   int64_t ldb, float beta, float* c, int64_t ldc);
void gemm_rowmajor(int device, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const double* a, int64_t lda, const double* b,
                   int64_t ldb, double beta, double* c, int64_t ldc);

}  // namespace cuda
}  // namespace heron
