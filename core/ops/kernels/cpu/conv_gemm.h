// The float32 convolution fast path on AVX-512 CPUs: an implicit GEMM (no column matrix) over
// weights packed once per weight tensor, with the bias, a residual and a clamp fused into the
// store. See conv_gemm.cpp.
#pragma once
#include <cstdint>

#include "core/ops/impl/conv.h"

namespace heron {
namespace cpu {

// What is applied to each output element before it is stored: y = clamp(conv + bias[k] +
// residual, lo, hi). bias and residual may be null; residual has y's layout (N, K, OH, OW).
struct ConvEpilogue {
  const float* bias = nullptr;
  const float* residual = nullptr;
  float lo = -__builtin_inff(), hi = __builtin_inff();
};

// False when HERON_CONV_FAST=0: every float32 fast path of conv_gemm.cpp and conv_depthwise.cpp
// is off (read once per process).
bool conv_fast_enabled();

// Whether conv_gemm_f32 takes this convolution (float32 on a CPU with AVX-512F, not depthwise,
// not disabled with HERON_CONV_FAST=0 or HERON_SIMD below avx512).
bool conv_gemm_supported(const ConvGeom& g);

// y (N, K, OH, OW) = epilogue(conv(x, w)); x, w and y contiguous; w (K, C/G, kH, kW) is packed
// for the micro-kernel: once, cached with its storage (Storage::find_derived), when the storage
// is frozen (a session's weights); on every call otherwise. Deterministic: every output element is summed in
// the same order at any thread count.
void conv_gemm_f32(const Tensor& x, const Tensor& w, const Tensor& y, const ConvGeom& g, const ConvEpilogue& e);

// conv_narrow_tail.cpp (used by conv_gemm_f32): the last panel of a 1x1 convolution's image when
// it holds nr <= 8 pixels, as pixels-as-rows FMAs. x: the panel's first pixel of input channel 0
// (channel rows ldx apart); wp: the first of nsl packed 8-row slivers (k-major, Kd rows each),
// summed in k blocks of kcb rows; y: the first output pixel of the slivers' first row (rows ldy
// apart), rows of them valid; bias, res (y's layout) at that row / element, or null. The same bits
// as conv_gemm's half-width micro-kernel.
void conv1x1_narrow_tail_f32(const float* x, int64_t ldx, int64_t nr, const float* wp, int64_t Kd, int64_t kcb, int64_t nsl,
                             int64_t rows, float* y, int64_t ldy, const float* bias, const float* res, bool clamp, float lo, float hi);

// Depthwise convolutions (groups == C == K), float32, AVX-512F, the same epilogue; dedicated
// paths for 3x3 stride 1 and 2 (MobileNet's). See conv_depthwise.cpp.
bool depthwise_f32_supported(const ConvGeom& g);
void depthwise_f32(const Tensor& x, const Tensor& w, const Tensor& y, const ConvGeom& g, const ConvEpilogue& e);

}  // namespace cpu
}  // namespace heron
