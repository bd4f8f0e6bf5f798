// Kernel signatures shared by the nn op implementations (impl/nn.cpp: layers, normalisation,
// losses) and their per-device kernels (kernels/<device>/nn_*.cpp).
//
// Conventions: the implementation has validated shapes and dtypes, and hands kernels contiguous
// tensors of the kernel's dtype (the registered one) unless noted; outputs are fresh and
// contiguous. Optional tensors are undefined when absent. Reductions are deterministic: they do not
// depend on the thread count.
#pragma once
#include <cstdint>

#include "core/ops/dispatcher.h"
#include "core/ops/generated/ops_gen.h"

namespace heron {
namespace nn {

enum Reduction : int { kNone = 0, kMean = 1, kSum = 2 };

// ---- layers
// out (M, O) = x (M, K) @ w (O, K)^T + b (O, optional).
using LinearFn = void (*)(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& out);
// gi (M, K) = g (M, O) @ w; gw (O, K) = g^T @ x; gb (O) = column sums of g. Each output may be
// undefined (not wanted).
using LinearBackwardFn = void (*)(const Tensor& g, const Tensor& x, const Tensor& w, const Tensor& gi, const Tensor& gw,
                                  const Tensor& gb);
// out = x > 0 ? x : slope * x.
using LeakyReluFn = void (*)(const Tensor& x, const Tensor& out, double slope);
// gi = x > 0 ? g : slope * g.
using LeakyReluBackwardFn = void (*)(const Tensor& g, const Tensor& x, const Tensor& gi, double slope);
// Element i keeps (mask true) when the uniform u_i >= p, u_i from 32-bit word i % 4 of Philox
// block offset + i / 4 of stream seed; out = keep ? x * scale : 0.
using DropoutFn = void (*)(const Tensor& x, const Tensor& out, const Tensor& mask, double p, double scale, uint64_t seed,
                           uint64_t offset);
// gi = mask ? g * scale : 0 (mask bool).
using DropoutBackwardFn = void (*)(const Tensor& g, const Tensor& mask, const Tensor& gi, double scale);
// out (n, dim) = w[idx] (idx int32 or int64, n elements); out-of-range indices throw IndexError.
using EmbeddingFn = void (*)(const Tensor& w, const Tensor& idx, const Tensor& out);
// gw (num, dim) = scatter-add of g (n, dim) at idx; row padding_idx (or none when < 0) stays zero.
using EmbeddingBackwardFn = void (*)(const Tensor& g, const Tensor& idx, const Tensor& gw, int64_t padding_idx);

// ---- interpolate: x (P, IH, IW), out (P, OH, OW) (3-d input: IH = OH = 1). scale_h/w: the
// scale_factor given for that dim, or <= 0 when none.
struct InterpParams {
  int64_t P, IH, IW, OH, OW;
  bool bilinear, align_corners;
  double scale_h, scale_w;
};
using InterpolateFn = void (*)(const Tensor& x, const Tensor& out, const InterpParams& p);
// gi (P, IH, IW) = adjoint of interpolate applied to g (P, OH, OW); gi is written fully.
using InterpolateBackwardFn = void (*)(const Tensor& g, const Tensor& gi, const InterpParams& p);

// ---- normalisation. x viewed as (N, C, S).
// batch_norm forward. Training: batch statistics into mean/invstd (C), and running_mean/var
// (contiguous (C) of the kernel dtype, or undefined) updated in place. Eval: mean/invstd from the
// running statistics.
using BatchNormFn = void (*)(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& running_mean,
                             const Tensor& running_var, const Tensor& out, const Tensor& mean, const Tensor& invstd,
                             int64_t N, int64_t C, int64_t S, bool training, double momentum, double eps);
// gi, gw, gb (gw/gb always (C)).
using BatchNormBackwardFn = void (*)(const Tensor& g, const Tensor& x, const Tensor& w, const Tensor& mean,
                                     const Tensor& invstd, const Tensor& gi, const Tensor& gw, const Tensor& gb,
                                     int64_t N, int64_t C, int64_t S, bool training);
// group_norm forward: G groups of C/G channels; mean/rstd (N, G). (instance_norm is G = C.)
using GroupNormFn = void (*)(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& out, const Tensor& mean,
                             const Tensor& rstd, int64_t N, int64_t C, int64_t S, int64_t G, double eps);
using GroupNormBackwardFn = void (*)(const Tensor& g, const Tensor& x, const Tensor& w, const Tensor& mean,
                                     const Tensor& rstd, const Tensor& gi, const Tensor& gw, const Tensor& gb,
                                     int64_t N, int64_t C, int64_t S, int64_t G);
// instance_norm running statistics: running = (1 - m) running + m * mean over n of the
// per-instance mean / unbiased variance (var = 1/rstd^2 - eps, times S/(S-1)).
using InstanceNormRunningFn = void (*)(const Tensor& mean, const Tensor& rstd, const Tensor& running_mean,
                                       const Tensor& running_var, int64_t N, int64_t C, int64_t S, double momentum,
                                       double eps);
// layer_norm: x (M, K); w, b (K) or undefined; mean/rstd (M).
using LayerNormFn = void (*)(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& out, const Tensor& mean,
                             const Tensor& rstd, int64_t M, int64_t K, double eps);
using LayerNormBackwardFn = void (*)(const Tensor& g, const Tensor& x, const Tensor& w, const Tensor& mean,
                                     const Tensor& rstd, const Tensor& gi, const Tensor& gw, const Tensor& gb,
                                     int64_t M, int64_t K);

// ---- losses
// Class losses: x (N, C, S); target int64 (N*S) for class indices, or (N, C, S) of the kernel
// dtype for probabilities (prob); weight (C) or undefined. out: (N*S) for kNone, else 0-d.
struct ClassLossParams {
  int64_t N, C, S;
  bool prob;
  int64_t ignore_index;
  int reduction;
  double label_smoothing;
  const char* op;
};
using CrossEntropyFn = void (*)(const Tensor& x, const Tensor& target, const Tensor& weight, const Tensor& out,
                                const ClassLossParams& p);
// g: 0-d (mean, sum) or (N*S) (none); gi (N, C, S).
using CrossEntropyBackwardFn = void (*)(const Tensor& g, const Tensor& x, const Tensor& target, const Tensor& weight,
                                        const Tensor& gi, const ClassLossParams& p);
// nll_loss uses the same two signatures (prob and label_smoothing unused).

// Pointwise losses over same-shape x, y (and BCE weight / pos_weight expanded to x's shape, or
// undefined). out: x's shape for kNone, else 0-d. g: 0-d or x's shape.
using PointwiseLossFn = void (*)(const Tensor& x, const Tensor& y, const Tensor& w, const Tensor& pw, const Tensor& out,
                                 int reduction, double beta);
using PointwiseLossBackwardFn = void (*)(const Tensor& g, const Tensor& x, const Tensor& y, const Tensor& w,
                                         const Tensor& pw, const Tensor& gi, int reduction, double beta);

}  // namespace nn
}  // namespace heron
