// Kernel signatures shared by the convolution and pooling implementations (impl/conv.cpp,
// impl/pool.cpp) and their per-device kernels.
#pragma once
#include "core/tensor/tensor.h"

namespace heron {

// The geometry of one 2-d convolution y = conv(x, w): x (N, C, H, W), w (K, C/G, kH, kW),
// y (N, K, OH, OW). pH / pW are the top / left padding; the bottom / right padding is whatever
// OH / OW imply (it may differ from the top / left one: same padding, transposed convolutions).
struct ConvGeom {
  int64_t N, C, H, W;
  int64_t K, OH, OW;
  int64_t kH, kW;
  int64_t sH, sW, pH, pW, dH, dW;
  int64_t G;
};

// The three products of a convolution. Every tensor is contiguous and of the kernel's dtype;
// outputs are fresh. A device registers one table per dtype under each conv op id (conv1d,
// conv2d, conv_transpose2d and their backward ops): a transposed convolution is the backward-data
// product of the conv2d it transposes, and its backward uses the forward and backward-weight ones.
struct ConvKernels {
  // y (N, K, OH, OW) = conv(x, w) (+ b (K) when defined).
  void (*forward)(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y, const ConvGeom& g);
  // gx (N, C, H, W) = the gradient of conv(x, w) with respect to x given gy (N, K, OH, OW)
  // (+ b (C) per channel when defined: the bias of a transposed convolution).
  void (*backward_data)(const Tensor& gy, const Tensor& w, const Tensor& b, const Tensor& gx, const ConvGeom& g);
  // gw (K, C/G, kH, kW) = the gradient with respect to w (when defined), gb (K) = sum of gy over
  // N, OH, OW (when defined).
  void (*backward_weight)(const Tensor& gy, const Tensor& x, const Tensor& gw, const Tensor& gb, const ConvGeom& g);
  // y = clamp(conv(x, w) + b + residual, lo, hi) (conv2d_fused): b and residual (N, K, OH, OW)
  // may be undefined; y does not alias any input.
  void (*forward_fused)(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& residual, const Tensor& y, const ConvGeom& g,
                        double lo, double hi);
};

// The geometry of one 2-d pooling over NC planes of H x W giving OH x OW.
struct PoolGeom {
  int64_t NC, H, W, OH, OW;
  int64_t kH, kW, sH, sW, pH, pW, dH, dW;
};

struct PoolKernels {
  // y, idx (NC, OH, OW) = max and flat H*W index of each window (nan wins).
  void (*max_forward)(const Tensor& x, const Tensor& y, const Tensor& idx, const PoolGeom& g);
  // gx (NC, H, W) = zeros with gy added at idx.
  void (*max_backward)(const Tensor& gy, const Tensor& idx, const Tensor& gx, const PoolGeom& g);
  // Average pooling; divisor > 0 overrides the window count.
  void (*avg_forward)(const Tensor& x, const Tensor& y, const PoolGeom& g, bool count_include_pad, int64_t divisor);
  void (*avg_backward)(const Tensor& gy, const Tensor& gx, const PoolGeom& g, bool count_include_pad, int64_t divisor);
  // Adaptive average pooling (only NC, H, W, OH, OW of the geometry are used).
  void (*adaptive_forward)(const Tensor& x, const Tensor& y, const PoolGeom& g);
  void (*adaptive_backward)(const Tensor& gy, const Tensor& gx, const PoolGeom& g);
};

}  // namespace heron
