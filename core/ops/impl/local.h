// Kernel signatures shared by the locally connected ops (impl/local.cpp: local_conv2d,
// local_share_conv2d and their backward ops) and their per-device kernels.
#pragma once
#include "core/tensor/tensor.h"

namespace heron {

// The geometry of one local_share convolution y = local_share(x, w): x (N, IC, IH, IW),
// w (G, SGH, SGW, IC/G, FH, FW, OC/G), y (N, OC, OH, OW); output position (oh, ow) uses the
// filter of spatial group (oh / (OH/SGH), ow / (OW/SGW)). local is the case SGH = OH, SGW = OW,
// dilation 1, no flip. Input tap (fh, fw) of output (oh, ow) is
//   ih = oh*sH - pH + th*dH, iw = ow*sW - pW + tw*dW, (th, tw) = flip ? (FH-1-fh, FW-1-fw) : (fh, fw).
struct LocalGeom {
  int64_t N, IC, IH, IW;
  int64_t OC, OH, OW;
  int64_t FH, FW;
  int64_t sH, sW, pH, pW, dH, dW;
  int64_t G, SGH, SGW;
  bool flip;  // convolution mode
};

// The three products; every tensor contiguous, of the kernel's dtype; outputs fresh (the kernels
// write every element). `naive` picks the reference loops; the result is bitwise the same
// (docs/design/local.md defines the accumulation order every kernel follows).
struct LocalKernels {
  // y = local_share(x, w) (+ b (OC) when defined).
  void (*forward)(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y, const LocalGeom& g, bool naive);
  // gx (N, IC, IH, IW) from gy (N, OC, OH, OW).
  void (*backward_data)(const Tensor& gy, const Tensor& w, const Tensor& gx, const LocalGeom& g, bool naive);
  // gw (G, SGH, SGW, IC/G, FH, FW, OC/G) from gy and x.
  void (*backward_filter)(const Tensor& gy, const Tensor& x, const Tensor& gw, const LocalGeom& g, bool naive);
};

}  // namespace heron
