// Small-batch float32 linear layers (a classifier at batch 1 is a 1 x K . K x O product) as
// AVX-512 dot products streaming the weight once, row-major as stored. See gemv_f32.cpp.
#pragma once
#include <cstdint>

namespace heron {
namespace cpu {

// Whether linear_gemv_f32 takes out (M x O) = x (M x K) @ w (O x K)^T [+ b]: float32 on a CPU with
// AVX-512F in use (not HERON_SIMD below avx512), 1 <= M <= 4, K >= 16, O >= 8.
bool linear_gemv_f32_ok(int64_t M, int64_t K, int64_t O);

// x, w, out contiguous; b (O) or null. Each output is summed by one thread in a fixed order (the
// same bits at any thread count).
void linear_gemv_f32(const float* x, const float* w, const float* b, float* out, int64_t M, int64_t K, int64_t O);

}  // namespace cpu
}  // namespace heron
