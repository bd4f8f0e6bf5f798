// 2-d pooling: max_pool2d, avg_pool2d, adaptive_avg_pool2d and their backward ops.
// Device-generic: checks, output sizes (PyTorch's rules) and allocation; the loops are the
// device's PoolKernels (impl/conv.h).
#include "core/ops/impl/common.h"
#include "core/ops/impl/conv.h"

namespace heron {
namespace {
using namespace ops;

Dims pair_attr(const char* op, const char* attr, const Dims& v, int64_t lo) {
  Dims r;
  if (v.size() == 1) r = Dims{v[0], v[0]};
  else if (v.size() == 2) r = v;
  else
    throw Error(ErrorCode::InvalidArgument,
                str_cat(op, ": ", attr, " must have 1 or 2 entries, got ", v.size(), " (", v.str(), ")"), op);
  if (r[0] < lo || r[1] < lo)
    throw Error(ErrorCode::InvalidArgument, str_cat(op, ": ", attr, " must be >= ", lo, ", got ", v.str()), op);
  return r;
}

struct PoolSetup {
  PoolGeom g;
  DType dt;
  Device dev;
  Tensor x;  // contiguous
  Dims out_shape;  // as the caller sees it
};

// Checks a pooling input: (N, C, H, W) or (C, H, W), float32 / float64, H and W >= 1.
PoolSetup pool_input(const char* op, const Tensor& x) {
  PoolSetup s;
  s.dev = x.device();
  if (x.dtype() != DType::Float32 && x.dtype() != DType::Float64)
    throw Error(ErrorCode::TypeError, str_cat(op, ": expected a float32 or float64 input, got ", dtype_name(x.dtype())), op);
  s.dt = x.dtype();
  if (x.dim() != 3 && x.dim() != 4)
    throw Error(ErrorCode::InvalidArgument,
                str_cat(op, ": expected input of shape (N, C, H, W) or (C, H, W), got shape ", x.shape().str()), op);
  const int64_t H = x.shape()[x.dim() - 2], W = x.shape()[x.dim() - 1];
  if (H < 1 || W < 1 || x.shape()[x.dim() - 3] < 1)
    throw Error(ErrorCode::InvalidArgument,
                str_cat(op, ": expected non-empty channel, height and width dims, got input of shape ", x.shape().str()), op);
  s.g = PoolGeom{};
  s.g.NC = x.numel() / (H * W);
  s.g.H = H;
  s.g.W = W;
  s.x = x.contiguous();
  return s;
}

// PyTorch's pooling output size.
int64_t pool_out(const char* op, int64_t in, int64_t k, int64_t pad, int64_t stride, int64_t dil, bool ceil_mode,
                 const Tensor& x) {
  int64_t num = in + 2 * pad - dil * (k - 1) - 1 + (ceil_mode ? stride - 1 : 0);
  int64_t out = (num >= 0 ? num / stride : -((-num + stride - 1) / stride)) + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  if (out < 1)
    throw Error(ErrorCode::InvalidArgument,
                str_cat(op, ": the window (kernel ", k, ", dilation ", dil, ", padding ", pad, ") does not fit input of shape ",
                        x.shape().str(), ": output size ", out, " < 1"), op);
  return out;
}

// The window geometry of max_pool2d / avg_pool2d.
PoolSetup window_setup(const char* op, const Tensor& x0, const Dims& ks_a, const Dims& st_a, const Dims& pd_a,
                       const Dims& dl_a, bool ceil_mode) {
  PoolSetup s = pool_input(op, x0);
  Dims ks = pair_attr(op, "kernel_size", ks_a, 1);
  Dims st = st_a.size() == 0 ? ks : pair_attr(op, "stride", st_a, 1);
  Dims pd = pair_attr(op, "padding", pd_a, 0);
  Dims dl = pair_attr(op, "dilation", dl_a, 1);
  for (int i = 0; i < 2; ++i)
    if (pd[i] > ks[i] / 2)
      throw Error(ErrorCode::InvalidArgument,
                  str_cat(op, ": padding must be at most half the kernel size, got padding ", pd_a.str(), " for kernel_size ",
                          ks_a.str()), op);
  PoolGeom& g = s.g;
  g.kH = ks[0], g.kW = ks[1], g.sH = st[0], g.sW = st[1], g.pH = pd[0], g.pW = pd[1], g.dH = dl[0], g.dW = dl[1];
  g.OH = pool_out(op, g.H, g.kH, g.pH, g.sH, g.dH, ceil_mode, x0);
  g.OW = pool_out(op, g.W, g.kW, g.pW, g.sW, g.dW, ceil_mode, x0);
  s.out_shape = x0.shape();
  s.out_shape[x0.dim() - 2] = g.OH;
  s.out_shape[x0.dim() - 1] = g.OW;
  return s;
}

// Checks grad (and its dtype / device) against the forward output's shape; returns it contiguous.
Tensor check_grad(const char* op, const Tensor& gy, const PoolSetup& s) {
  if (gy.device() != s.dev)
    throw Error(ErrorCode::InvalidArgument, str_cat(op, ": expected grad on the input's device"), op);
  if (gy.dtype() != s.dt)
    throw Error(ErrorCode::TypeError,
                str_cat(op, ": expected grad of dtype ", dtype_name(s.dt), " (the input's), got ", dtype_name(gy.dtype())), op);
  if (gy.shape() != s.out_shape)
    throw Error(ErrorCode::InvalidArgument,
                str_cat(op, ": expected grad of shape ", s.out_shape.str(), " (the forward output's), got shape ", gy.shape().str()), op);
  return gy.contiguous();
}

int64_t divisor(const char* op, const std::optional<int64_t>& d) {
  if (!d) return 0;
  if (*d == 0) throw Error(ErrorCode::InvalidArgument, str_cat(op, ": divisor_override must be nonzero"), op);
  return *d;
}

HERON_IMPL(max_pool2d, MaxPool2dAttrs) {
  const char* op = "max_pool2d";
  PoolSetup s = window_setup(op, ctx.in(0), attrs.kernel_size, attrs.stride, attrs.padding, attrs.dilation, attrs.ceil_mode);
  auto k = kernel<const PoolKernels*>(OpId::max_pool2d, s.dev, s.dt);
  Tensor y = Tensor::empty(s.out_shape, s.dt, s.dev);
  // A session that drops the indices unread (inference) gets none: the kernel then tracks no
  // argmax (ResNet-18's stem pool at batch 1: 401 -> 95 us, docs/design/inference_kernels.md).
  Tensor idx = ctx.output_unused(1) ? Tensor() : Tensor::empty(s.out_shape, DType::Int64, s.dev);
  if (y.numel() > 0) k->max_forward(s.x, y, idx, s.g);
  ctx.set(y);
  ctx.set(idx);
}

HERON_IMPL(max_pool2d_backward, MaxPool2dBackwardAttrs) {
  const char* op = "max_pool2d_backward";
  common_device(op, ctx.inputs(), 3);
  const Tensor &gy0 = ctx.in(0), &x0 = ctx.in(1), &idx0 = ctx.in(2);
  PoolSetup s = pool_input(op, x0);
  if (idx0.dtype() != DType::Int64)
    throw Error(ErrorCode::TypeError, str_cat(op, ": expected indices of dtype int64, got ", dtype_name(idx0.dtype())), op);
  if (gy0.dtype() != s.dt)
    throw Error(ErrorCode::TypeError,
                str_cat(op, ": expected grad of dtype ", dtype_name(s.dt), " (the input's), got ", dtype_name(gy0.dtype())), op);
  if (gy0.shape() != idx0.shape())
    throw Error(ErrorCode::InvalidArgument,
                str_cat(op, ": grad (shape ", gy0.shape().str(), ") and indices (shape ", idx0.shape().str(),
                        ") must have the same shape"), op);
  bool lead_ok = gy0.dim() == x0.dim();
  for (int64_t d = 0; lead_ok && d < x0.dim() - 2; ++d) lead_ok = gy0.shape()[d] == x0.shape()[d];
  if (!lead_ok) {
    Dims want = x0.shape();
    std::string w = "(";
    for (int64_t d = 0; d < x0.dim() - 2; ++d) w += str_cat(want[d], ", ");
    w += "oH, oW)";
    throw Error(ErrorCode::InvalidArgument,
                str_cat(op, ": expected grad of shape ", w, " for input of shape ", x0.shape().str(), ", got shape ",
                        gy0.shape().str()), op);
  }
  s.g.OH = gy0.shape()[gy0.dim() - 2];
  s.g.OW = gy0.shape()[gy0.dim() - 1];
  auto k = kernel<const PoolKernels*>(OpId::max_pool2d_backward, s.dev, s.dt);
  Tensor gx = Tensor::empty(x0.shape(), s.dt, s.dev);
  k->max_backward(gy0.contiguous(), idx0.contiguous(), gx, s.g);
  ctx.set(gx);
}

HERON_IMPL(avg_pool2d, AvgPool2dAttrs) {
  const char* op = "avg_pool2d";
  PoolSetup s = window_setup(op, ctx.in(0), attrs.kernel_size, attrs.stride, attrs.padding, Dims{1, 1}, attrs.ceil_mode);
  int64_t div = divisor(op, attrs.divisor_override);
  auto k = kernel<const PoolKernels*>(OpId::avg_pool2d, s.dev, s.dt);
  Tensor y = Tensor::empty(s.out_shape, s.dt, s.dev);
  if (y.numel() > 0) k->avg_forward(s.x, y, s.g, attrs.count_include_pad, div);
  ctx.set(y);
}

HERON_IMPL(avg_pool2d_backward, AvgPool2dBackwardAttrs) {
  const char* op = "avg_pool2d_backward";
  common_device(op, ctx.inputs(), 2);
  PoolSetup s = window_setup(op, ctx.in(1), attrs.kernel_size, attrs.stride, attrs.padding, Dims{1, 1}, attrs.ceil_mode);
  int64_t div = divisor(op, attrs.divisor_override);
  Tensor gy = check_grad(op, ctx.in(0), s);
  auto k = kernel<const PoolKernels*>(OpId::avg_pool2d_backward, s.dev, s.dt);
  Tensor gx = Tensor::empty(ctx.in(1).shape(), s.dt, s.dev);
  k->avg_backward(gy, gx, s.g, attrs.count_include_pad, div);
  ctx.set(gx);
}

PoolSetup adaptive_setup(const char* op, const Tensor& x0, const Dims& os_a) {
  PoolSetup s = pool_input(op, x0);
  Dims os = pair_attr(op, "output_size", os_a, 1);
  s.g.OH = os[0];
  s.g.OW = os[1];
  s.out_shape = x0.shape();
  s.out_shape[x0.dim() - 2] = os[0];
  s.out_shape[x0.dim() - 1] = os[1];
  return s;
}

HERON_IMPL(adaptive_avg_pool2d, AdaptiveAvgPool2dAttrs) {
  const char* op = "adaptive_avg_pool2d";
  PoolSetup s = adaptive_setup(op, ctx.in(0), attrs.output_size);
  auto k = kernel<const PoolKernels*>(OpId::adaptive_avg_pool2d, s.dev, s.dt);
  Tensor y = Tensor::empty(s.out_shape, s.dt, s.dev);
  if (y.numel() > 0) k->adaptive_forward(s.x, y, s.g);
  ctx.set(y);
}

HERON_IMPL(adaptive_avg_pool2d_backward, AdaptiveAvgPool2dBackwardAttrs) {
  const char* op = "adaptive_avg_pool2d_backward";
  common_device(op, ctx.inputs(), 2);
  const Tensor& gy0 = ctx.in(0);
  const Tensor& x0 = ctx.in(1);
  if (gy0.dim() != x0.dim() || gy0.dim() < 3)
    throw Error(ErrorCode::InvalidArgument,
                str_cat(op, ": expected grad with the input's dims (", x0.dim(), "), got shape ", gy0.shape().str(),
                        " for input of shape ", x0.shape().str()), op);
  Dims os{gy0.shape()[gy0.dim() - 2], gy0.shape()[gy0.dim() - 1]};
  PoolSetup s = adaptive_setup(op, x0, os);
  Tensor gy = check_grad(op, gy0, s);
  auto k = kernel<const PoolKernels*>(OpId::adaptive_avg_pool2d_backward, s.dev, s.dt);
  Tensor gx = Tensor::empty(x0.shape(), s.dt, s.dev);
  k->adaptive_backward(gy, gx, s.g);
  ctx.set(gx);
}

}  // namespace
}  // namespace heron
