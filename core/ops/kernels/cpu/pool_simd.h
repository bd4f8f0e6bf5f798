// SIMD pooling kernels (pool_simd.cpp), chosen at run time by pool_kernels.cpp.
#pragma once
#include <cstdint>

#include "core/ops/impl/conv.h"

namespace heron {
namespace cpu {

// Whether max_pool_f32_simd can run this geometry on this CPU (AVX-512F; HERON_POOL_SIMD=0 turns it off).
bool max_pool_f32_simd_ok(const PoolGeom& g);
// One plane: y, idx (OH x OW) = the max and its flat H*W index of each window, exactly as the
// scalar kernel computes them (nan wins, first maximum kept).
void max_pool_f32_simd(const float* x, float* y, int64_t* idx, const PoolGeom& g);
// Whether global_avg_f32_simd can run planes of HW pixels (AVX-512F, HERON_POOL_SIMD not 0).
bool global_avg_f32_simd_ok(int64_t HW);
// y[p] = mean of x[p*HW, (p+1)*HW) for planes p in [p0, p1), each summed in a fixed order.
void global_avg_f32_simd(const float* x, float* y, int64_t p0, int64_t p1, int64_t HW);

}  // namespace cpu
}  // namespace heron
