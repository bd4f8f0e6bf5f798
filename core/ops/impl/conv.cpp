// Convolutions: conv1d, conv2d, conv_transpose2d and their backward ops. Device-generic: shape
// and dtype checks, the output geometry and allocation here; the products are the device's
// ConvKernels (impl/conv.h). conv1d is conv2d with a unit height.
#include "core/ops/impl/common.h"
#include "core/ops/impl/conv.h"

#include <cmath>
#include <limits>

namespace heron {
namespace {
using namespace ops;

// An int-list attribute of a spatial op: one entry (the same for every spatial dim) or nd of
// them, each >= lo.
Dims spatial(const char* op, const char* attr, const Dims& v, size_t nd, int64_t lo) {
  Dims r;
  if (v.size() == 1) r = Dims(nd, v[0]);
  else if (v.size() == nd) r = v;
  else
    throw Error(ErrorCode::InvalidArgument,
                str_cat(op, ": ", attr, " must have 1 or ", nd, " entries, got ", v.size(), " (", v.str(), ")"), op);
  for (size_t i = 0; i < nd; ++i)
    if (r[i] < lo)
      throw Error(ErrorCode::InvalidArgument, str_cat(op, ": ", attr, " must be >= ", lo, ", got ", v.str()), op);
  return r;
}

std::string dims_str(const Dims& d) { return d.str(); }

// Checks that t is float32 / float64 and of dtype dt (the input's).
void check_dtype(const char* op, const char* what, const Tensor& t, DType dt) {
  if (t.dtype() != dt)
    throw Error(ErrorCode::TypeError,
                str_cat(op, ": expected ", what, " of dtype ", dtype_name(dt), " (the input's), got ", dtype_name(t.dtype())), op);
}

DType float_dtype(const char* op, const Tensor& x) {
  if (x.dtype() != DType::Float32 && x.dtype() != DType::Float64)
    throw Error(ErrorCode::TypeError,
                str_cat(op, ": expected a float32 or float64 input, got ", dtype_name(x.dtype())), op);
  return x.dtype();
}

// What conv1d / conv2d / conv_transpose2d agree on after checking their arguments.
struct ConvSetup {
  ConvGeom g;
  bool batched;
  DType dt;
  Device dev;
  Tensor x, w;  // 4-d, contiguous (x batched)
  Dims in_shape, w_shape, out_shape;  // as the caller sees them (out: batched or not)
};

// Checks input / weight / bias of a (non-transposed) convolution with nd spatial dims (1 or 2)
// and computes the geometry. `grad`, when defined, must have the output's shape.
ConvSetup conv_setup(const char* op, size_t nd, const Tensor& x0, const Tensor& w0, const Tensor& b0, const Dims& stride_a,
                     const Dims& padding_a, const Dims& dilation_a, int64_t groups, bool same) {
  ConvSetup s;
  const Tensor ts[3] = {x0, w0, b0};
  s.dev = common_device(op, ts, 3);
  s.dt = float_dtype(op, x0);
  check_dtype(op, "weight", w0, s.dt);
  if (b0.defined()) check_dtype(op, "bias", b0, s.dt);
  const char* in_names = nd == 1 ? "(N, C, L) or (C, L)" : "(N, C, H, W) or (C, H, W)";
  const char* w_names = nd == 1 ? "(K, C/groups, kL)" : "(K, C/groups, kH, kW)";
  if (x0.dim() != int64_t(nd) + 1 && x0.dim() != int64_t(nd) + 2)
    throw Error(ErrorCode::InvalidArgument,
                str_cat(op, ": expected input of shape ", in_names, ", got shape ", dims_str(x0.shape())), op);
  if (w0.dim() != int64_t(nd) + 2)
    throw Error(ErrorCode::InvalidArgument,
                str_cat(op, ": expected weight of shape ", w_names, " (", nd + 2, " dims), got shape ", dims_str(w0.shape())), op);
  if (groups < 1) throw Error(ErrorCode::InvalidArgument, str_cat(op, ": groups must be >= 1, got ", groups), op);
  s.batched = x0.dim() == int64_t(nd) + 2;
  s.in_shape = x0.shape();
  s.w_shape = w0.shape();
  Tensor x = s.batched ? x0 : x0.unsqueeze(0);
  Tensor w = w0;
  if (nd == 1) {
    x = x.unsqueeze(2);
    w = w.unsqueeze(2);
  }
  const int64_t N = x.shape()[0], C = x.shape()[1], H = x.shape()[2], W = x.shape()[3];
  const int64_t K = w.shape()[0], Cg = w.shape()[1], kH = w.shape()[2], kW = w.shape()[3];
  if (K % groups != 0)
    throw Error(ErrorCode::InvalidArgument,
                str_cat(op, ": weight's ", K, " output channels (shape ", dims_str(w0.shape()), ") are not divisible by groups=", groups), op);
  if (C != Cg * groups)
    throw Error(ErrorCode::InvalidArgument,
                str_cat(op, ": weight of shape ", dims_str(w0.shape()), " and groups=", groups, " expect input with ", Cg * groups,
                        " channels, got input of shape ", dims_str(x0.shape())), op);
  if (b0.defined() && (b0.dim() != 1 || b0.shape()[0] != K))
    throw Error(ErrorCode::InvalidArgument,
                str_cat(op, ": expected bias of shape (", K, ") (the weight's output channels), got shape ", dims_str(b0.shape())), op);
  Dims st = spatial(op, "stride", stride_a, nd, 1), pd = spatial(op, "padding", padding_a, nd, 0),
       dl = spatial(op, "dilation", dilation_a, nd, 1);
  if (nd == 1) {
    st = Dims{1, st[0]};
    pd = Dims{0, pd[0]};
    dl = Dims{1, dl[0]};
  }
  int64_t pad_t[2], pad_b[2];
  const int64_t in_sz[2] = {H, W}, k_sz[2] = {kH, kW};
  for (int i = 0; i < 2; ++i) {
    if (same) {
      if (st[i] != 1)
        throw Error(ErrorCode::InvalidArgument,
                    str_cat(op, ": same_padding needs stride 1, got stride ", stride_a.str()), op);
      int64_t total = dl[i] * (k_sz[i] - 1);
      pad_t[i] = total / 2;
      pad_b[i] = total - pad_t[i];
    } else {
      pad_t[i] = pad_b[i] = pd[i];
    }
  }
  int64_t out_sz[2];
  for (int i = 0; i < 2; ++i) {
    int64_t span = in_sz[i] + pad_t[i] + pad_b[i] - dl[i] * (k_sz[i] - 1) - 1;
    if (span < 0)
      throw Error(ErrorCode::InvalidArgument,
                  str_cat(op, ": the padded input (", (nd == 1 ? "" : (i == 0 ? "height " : "width ")),
                          in_sz[i] + pad_t[i] + pad_b[i], ") is smaller than the dilated kernel (", dl[i] * (k_sz[i] - 1) + 1,
                          "); input shape ", dims_str(x0.shape()), ", weight shape ", dims_str(w0.shape())), op);
    out_sz[i] = span / st[i] + 1;
  }
  s.g = ConvGeom{N, C, H, W, K, out_sz[0], out_sz[1], kH, kW, st[0], st[1], pad_t[0], pad_t[1], dl[0], dl[1], groups};
  s.x = x.contiguous();
  s.w = w.contiguous();
  Dims out;
  if (s.batched) out.push_back(N);
  out.push_back(K);
  if (nd == 2) out.push_back(out_sz[0]);
  out.push_back(out_sz[1]);
  s.out_shape = out;
  return s;
}

// Shapes a 4-d (N, K, OH, OW) result like the caller's output (unbatched / 1-d).
Tensor unshape(const Tensor& t4, const Dims& shape) { return t4.view(shape); }

// gy as a contiguous 4-d (N, K, OH, OW) tensor, checked against the expected output shape.
Tensor grad_4d(const char* op, const Tensor& gy, const ConvSetup& s, const Dims& expect) {
  check_dtype(op, "grad", gy, s.dt);
  if (gy.shape() != expect)
    throw Error(ErrorCode::InvalidArgument,
                str_cat(op, ": expected grad of shape ", dims_str(expect), " (the forward output's), got shape ", dims_str(gy.shape())), op);
  return gy.contiguous().view(Dims{s.g.N, s.g.K, s.g.OH, s.g.OW});
}

Dims output_mask(const char* op, const Dims& m) {
  if (m.size() != 3)
    throw Error(ErrorCode::InvalidArgument, str_cat(op, ": output_mask must have 3 entries, got ", m.str()), op);
  for (size_t i = 0; i < 3; ++i)
    if (m[i] != 0 && m[i] != 1)
      throw Error(ErrorCode::InvalidArgument, str_cat(op, ": output_mask entries must be 0 or 1, got ", m.str()), op);
  return m;
}

Tensor empty_grad(DType dt, Device dev) { return Tensor::empty(Dims{0}, dt, dev); }

void conv_forward(OpCtx& ctx, const char* op, int op_id, size_t nd, const Dims& stride, const Dims& padding,
                  const Dims& dilation, int64_t groups, bool same) {
  const Tensor& b0 = ctx.in(2);
  ConvSetup s = conv_setup(op, nd, ctx.in(0), ctx.in(1), b0, stride, padding, dilation, groups, same);
  auto k = kernel<const ConvKernels*>(op_id, s.dev, s.dt);
  Tensor y = Tensor::empty(Dims{s.g.N, s.g.K, s.g.OH, s.g.OW}, s.dt, s.dev);
  Tensor b = b0.defined() ? b0.contiguous() : Tensor();
  if (y.numel() > 0) k->forward(s.x, s.w, b, y, s.g);
  ctx.set(unshape(y, s.out_shape));
}

void conv_backward(OpCtx& ctx, const char* op, int op_id, size_t nd, const Dims& stride, const Dims& padding,
                   const Dims& dilation, int64_t groups, bool same, const Dims& mask_a) {
  Dims mask = output_mask(op, mask_a);
  const Tensor& gy0 = ctx.in(0);
  ConvSetup s = conv_setup(op, nd, ctx.in(1), ctx.in(2), Tensor(), stride, padding, dilation, groups, same);
  common_device(op, ctx.inputs(), 3);
  Tensor gy = grad_4d(op, gy0, s, s.out_shape);
  auto k = kernel<const ConvKernels*>(op_id, s.dev, s.dt);
  Tensor gx = empty_grad(s.dt, s.dev), gw = empty_grad(s.dt, s.dev), gb = empty_grad(s.dt, s.dev);
  if (mask[0]) {
    gx = Tensor::empty(Dims{s.g.N, s.g.C, s.g.H, s.g.W}, s.dt, s.dev);
    if (gx.numel() > 0) k->backward_data(gy, s.w, Tensor(), gx, s.g);
    gx = gx.view(s.in_shape);
  }
  if (mask[1] || mask[2]) {
    Tensor gw4 = mask[1] ? Tensor::empty(s.w.shape(), s.dt, s.dev) : Tensor();
    Tensor gb1 = mask[2] ? Tensor::empty(Dims{s.g.K}, s.dt, s.dev) : Tensor();
    k->backward_weight(gy, s.x, gw4, gb1, s.g);
    if (mask[1]) gw = gw4.view(s.w_shape);
    if (mask[2]) gb = gb1;
  }
  ctx.set(gx);
  ctx.set(gw);
  ctx.set(gb);
}

HERON_IMPL(conv1d, Conv1dAttrs) {
  conv_forward(ctx, "conv1d", OpId::conv1d, 1, attrs.stride, attrs.padding, attrs.dilation, attrs.groups, attrs.same_padding);
}
HERON_IMPL(conv2d, Conv2dAttrs) {
  conv_forward(ctx, "conv2d", OpId::conv2d, 2, attrs.stride, attrs.padding, attrs.dilation, attrs.groups, attrs.same_padding);
}
HERON_IMPL(conv1d_backward, Conv1dBackwardAttrs) {
  conv_backward(ctx, "conv1d_backward", OpId::conv1d_backward, 1, attrs.stride, attrs.padding, attrs.dilation, attrs.groups,
                attrs.same_padding, attrs.output_mask);
}
HERON_IMPL(conv2d_fused, Conv2dFusedAttrs) {
  const char* op = "conv2d_fused";
  const Tensor& b0 = ctx.in(2);
  const Tensor& r0 = ctx.in(3);
  ConvSetup s = conv_setup(op, 2, ctx.in(0), ctx.in(1), b0, attrs.stride, attrs.padding, attrs.dilation, attrs.groups, attrs.same_padding);
  common_device(op, ctx.inputs(), 4);
  Tensor r;
  if (r0.defined()) {
    check_dtype(op, "residual", r0, s.dt);
    if (r0.shape() != s.out_shape)
      throw Error(ErrorCode::InvalidArgument,
                  str_cat(op, ": expected residual of shape ", dims_str(s.out_shape), " (the output's), got shape ", dims_str(r0.shape())), op);
    r = r0.contiguous();
  }
  const double inf = std::numeric_limits<double>::infinity();
  const double lo = attrs.min ? attrs.min->to_double() : -inf, hi = attrs.max ? attrs.max->to_double() : inf;
  if (std::isnan(lo) || std::isnan(hi) || lo > hi)
    throw Error(ErrorCode::InvalidArgument, str_cat(op, ": min (", lo, ") must be <= max (", hi, ") and neither nan"), op);
  auto k = kernel<const ConvKernels*>(OpId::conv2d_fused, s.dev, s.dt);
  Tensor y = Tensor::empty(Dims{s.g.N, s.g.K, s.g.OH, s.g.OW}, s.dt, s.dev);
  Tensor b = b0.defined() ? b0.contiguous() : Tensor();
  if (y.numel() > 0) k->forward_fused(s.x, s.w, b, r, y, s.g, lo, hi);
  ctx.set(unshape(y, s.out_shape));
}

HERON_IMPL(conv2d_backward, Conv2dBackwardAttrs) {
  conv_backward(ctx, "conv2d_backward", OpId::conv2d_backward, 2, attrs.stride, attrs.padding, attrs.dilation, attrs.groups,
                attrs.same_padding, attrs.output_mask);
}

// ------------------------------------------------------------------ transposed
// conv_transpose2d(x, w) is the backward-data product of the conv2d whose input has the
// transposed convolution's output shape and whose output has x's shape; its geometry is that
// conv2d's (N, C = K_out, H = OH, W = OW, K = C_in, OH = H, OW = W).
struct TransposeSetup {
  ConvGeom g;  // of the matching conv2d
  bool batched;
  DType dt;
  Device dev;
  Tensor x, w;
  Dims in_shape, w_shape, out_shape;
};

TransposeSetup transpose_setup(const char* op, const Tensor& x0, const Tensor& w0, const Tensor& b0, const Dims& stride_a,
                               const Dims& padding_a, const Dims& out_pad_a, int64_t groups, const Dims& dilation_a) {
  TransposeSetup s;
  const Tensor ts[3] = {x0, w0, b0};
  s.dev = common_device(op, ts, 3);
  s.dt = float_dtype(op, x0);
  check_dtype(op, "weight", w0, s.dt);
  if (b0.defined()) check_dtype(op, "bias", b0, s.dt);
  if (x0.dim() != 3 && x0.dim() != 4)
    throw Error(ErrorCode::InvalidArgument,
                str_cat(op, ": expected input of shape (N, C_in, H, W) or (C_in, H, W), got shape ", dims_str(x0.shape())), op);
  if (w0.dim() != 4)
    throw Error(ErrorCode::InvalidArgument,
                str_cat(op, ": expected weight of shape (C_in, K/groups, kH, kW) (4 dims), got shape ", dims_str(w0.shape())), op);
  if (groups < 1) throw Error(ErrorCode::InvalidArgument, str_cat(op, ": groups must be >= 1, got ", groups), op);
  s.batched = x0.dim() == 4;
  s.in_shape = x0.shape();
  s.w_shape = w0.shape();
  Tensor x = s.batched ? x0 : x0.unsqueeze(0);
  const int64_t N = x.shape()[0], Cin = x.shape()[1], H = x.shape()[2], W = x.shape()[3];
  const int64_t wc = w0.shape()[0], Kg = w0.shape()[1], kH = w0.shape()[2], kW = w0.shape()[3];
  if (wc != Cin)
    throw Error(ErrorCode::InvalidArgument,
                str_cat(op, ": weight of shape ", dims_str(w0.shape()), " expects input with ", wc,
                        " channels (its first dim), got input of shape ", dims_str(x0.shape())), op);
  if (Cin % groups != 0)
    throw Error(ErrorCode::InvalidArgument,
                str_cat(op, ": input's ", Cin, " channels (shape ", dims_str(x0.shape()), ") are not divisible by groups=", groups), op);
  const int64_t K = Kg * groups;
  if (b0.defined() && (b0.dim() != 1 || b0.shape()[0] != K))
    throw Error(ErrorCode::InvalidArgument,
                str_cat(op, ": expected bias of shape (", K, ") (weight's dim 1 times groups), got shape ", dims_str(b0.shape())), op);
  Dims st = spatial(op, "stride", stride_a, 2, 1), pd = spatial(op, "padding", padding_a, 2, 0),
       op_ = spatial(op, "output_padding", out_pad_a, 2, 0), dl = spatial(op, "dilation", dilation_a, 2, 1);
  const int64_t in_sz[2] = {H, W}, k_sz[2] = {kH, kW};
  int64_t out_sz[2];
  for (int i = 0; i < 2; ++i) {
    if (op_[i] >= st[i] && op_[i] >= dl[i])
      throw Error(ErrorCode::InvalidArgument,
                  str_cat(op, ": output_padding must be smaller than either stride or dilation, got output_padding ",
                          out_pad_a.str(), ", stride ", stride_a.str(), ", dilation ", dilation_a.str()), op);
    out_sz[i] = (in_sz[i] - 1) * st[i] - 2 * pd[i] + dl[i] * (k_sz[i] - 1) + op_[i] + 1;
    if (out_sz[i] < 1)
      throw Error(ErrorCode::InvalidArgument,
                  str_cat(op, ": the output would have size ", out_sz[i], " (< 1) in dim ", i + 2, "; input shape ",
                          dims_str(x0.shape()), ", weight shape ", dims_str(w0.shape()), ", padding ", padding_a.str()), op);
  }
  s.g = ConvGeom{N, K, out_sz[0], out_sz[1], Cin, H, W, kH, kW, st[0], st[1], pd[0], pd[1], dl[0], dl[1], groups};
  s.x = x.contiguous();
  s.w = w0.contiguous();
  s.out_shape = s.batched ? Dims{N, K, out_sz[0], out_sz[1]} : Dims{K, out_sz[0], out_sz[1]};
  return s;
}

HERON_IMPL(conv_transpose2d, ConvTranspose2dAttrs) {
  const char* op = "conv_transpose2d";
  const Tensor& b0 = ctx.in(2);
  TransposeSetup s = transpose_setup(op, ctx.in(0), ctx.in(1), b0, attrs.stride, attrs.padding, attrs.output_padding,
                                     attrs.groups, attrs.dilation);
  auto k = kernel<const ConvKernels*>(OpId::conv_transpose2d, s.dev, s.dt);
  Tensor y = Tensor::empty(Dims{s.g.N, s.g.C, s.g.H, s.g.W}, s.dt, s.dev);
  if (y.numel() > 0) k->backward_data(s.x, s.w, b0.defined() ? b0.contiguous() : Tensor(), y, s.g);
  ctx.set(y.view(s.out_shape));
}

HERON_IMPL(conv_transpose2d_backward, ConvTranspose2dBackwardAttrs) {
  const char* op = "conv_transpose2d_backward";
  Dims mask = output_mask(op, attrs.output_mask);
  TransposeSetup s = transpose_setup(op, ctx.in(1), ctx.in(2), Tensor(), attrs.stride, attrs.padding, attrs.output_padding,
                                     attrs.groups, attrs.dilation);
  common_device(op, ctx.inputs(), 3);
  const Tensor& gy0 = ctx.in(0);
  check_dtype(op, "grad", gy0, s.dt);
  if (gy0.shape() != s.out_shape)
    throw Error(ErrorCode::InvalidArgument,
                str_cat(op, ": expected grad of shape ", dims_str(s.out_shape), " (the forward output's), got shape ",
                        dims_str(gy0.shape())), op);
  // In the matching conv2d, gy is the input and x the output.
  Tensor gy = gy0.contiguous().view(Dims{s.g.N, s.g.C, s.g.H, s.g.W});
  auto k = kernel<const ConvKernels*>(OpId::conv_transpose2d_backward, s.dev, s.dt);
  Tensor gx = empty_grad(s.dt, s.dev), gw = empty_grad(s.dt, s.dev), gb = empty_grad(s.dt, s.dev);
  if (mask[0]) {
    gx = Tensor::empty(Dims{s.g.N, s.g.K, s.g.OH, s.g.OW}, s.dt, s.dev);
    if (gx.numel() > 0) k->forward(gy, s.w, Tensor(), gx, s.g);
    gx = gx.view(s.in_shape);
  }
  if (mask[1]) {
    gw = Tensor::empty(s.w.shape(), s.dt, s.dev);
    k->backward_weight(s.x, gy, gw, Tensor(), s.g);
  }
  if (mask[2]) {
    // The bias gradient sums gy per channel: backward_weight's bias sum over a geometry whose
    // output is gy.
    gb = Tensor::empty(Dims{s.g.C}, s.dt, s.dev);
    ConvGeom bg = s.g;
    bg.K = s.g.C;
    bg.OH = s.g.H;
    bg.OW = s.g.W;
    k->backward_weight(gy, Tensor(), Tensor(), gb, bg);
  }
  ctx.set(gx);
  ctx.set(gw);
  ctx.set(gb);
}

}  // namespace
}  // namespace heron
