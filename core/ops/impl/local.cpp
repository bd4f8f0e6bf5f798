// Locally connected ops: local_conv2d (untied convolution) and local_share_conv2d, with their
// backward ops. Device-generic: argument checks, geometry and allocation here; the products are
// the device's LocalKernels (impl/local.h). local is local_share with one spatial group per output
// position, so both ops share one kernel table.
#include "core/ops/impl/common.h"
#include "core/ops/impl/local.h"

namespace heron {
namespace {
using namespace ops;

Dims pair_attr(const char* op, const char* attr, const Dims& v, int64_t lo) {
  Dims r;
  if (v.size() == 1) r = Dims{v[0], v[0]};
  else if (v.size() == 2) r = v;
  else
    throw Error(ErrorCode::InvalidArgument, str_cat(op, ": ", attr, " must have 1 or 2 entries, got ", v.str()), op);
  for (size_t i = 0; i < 2; ++i)
    if (r[i] < lo) throw Error(ErrorCode::InvalidArgument, str_cat(op, ": ", attr, " must be >= ", lo, ", got ", v.str()), op);
  return r;
}

struct LocalSetup {
  LocalGeom g;
  DType dt;
  Device dev;
  Tensor x, w;
  Dims out_shape;
};

bool naive_algo(const char* op, const std::string& algo) {
  if (algo == "naive") return true;
  if (algo == "auto") return false;
  throw Error(ErrorCode::InvalidArgument, str_cat(op, ": algo must be 'auto' or 'naive', got '", algo, "'"), op);
}

// is_local: local_conv2d (weight carries OH, OW; no dilation / spatial_groups / mode attributes).
LocalSetup local_setup(const char* op, bool is_local, const Tensor& x0, const Tensor& w0, const Tensor& b0, const Dims& stride_a,
                       const Dims& padding_a, const Dims& dilation_a, const Dims& sg_a, int64_t groups, const std::string& mode) {
  LocalSetup s;
  const Tensor ts[3] = {x0, w0, b0};
  s.dev = common_device(op, ts, 3);
  s.dt = x0.dtype();
  if (s.dt != DType::Float32 && s.dt != DType::Float64)
    throw Error(ErrorCode::TypeError, str_cat(op, ": expected a float32 or float64 input, got ", dtype_name(s.dt)), op);
  auto same_dtype = [&](const char* what, const Tensor& t) {
    if (t.dtype() != s.dt)
      throw Error(ErrorCode::TypeError,
                  str_cat(op, ": expected ", what, " of dtype ", dtype_name(s.dt), " (the input's), got ", dtype_name(t.dtype())), op);
  };
  same_dtype("weight", w0);
  if (b0.defined()) same_dtype("bias", b0);
  const char* wname = is_local ? "(OH, OW, IC, FH, FW, OC) or (G, OH, OW, IC/G, FH, FW, OC/G)"
                               : "(SGH, SGW, IC, FH, FW, OC) or (G, SGH, SGW, IC/G, FH, FW, OC/G)";
  if (x0.dim() != 4)
    throw Error(ErrorCode::InvalidArgument, str_cat(op, ": expected input of shape (N, IC, IH, IW), got shape ", x0.shape().str()), op);
  if (w0.dim() != 6 && w0.dim() != 7)
    throw Error(ErrorCode::InvalidArgument, str_cat(op, ": expected weight of shape ", wname, " (6 or 7 dims), got shape ", w0.shape().str()), op);
  if (mode != "cross_correlation" && mode != "convolution")
    throw Error(ErrorCode::InvalidArgument,
                str_cat(op, ": mode must be 'cross_correlation' or 'convolution', got '", mode, "'"), op);
  const Dims st = pair_attr(op, "stride", stride_a, 1), pd = pair_attr(op, "padding", padding_a, 0),
             dl = pair_attr(op, "dilation", dilation_a, 1);
  const bool grouped = w0.dim() == 7;
  const Dims ws = w0.shape();
  const int64_t G = grouped ? ws[0] : 1;
  if (is_local) groups = G;
  if (groups < 1) throw Error(ErrorCode::InvalidArgument, str_cat(op, ": groups must be >= 1, got ", groups), op);
  if (!is_local && !grouped && groups != 1)
    throw Error(ErrorCode::InvalidArgument,
                str_cat(op, ": groups=", groups, " needs a 7-d weight (G, SGH, SGW, IC/G, FH, FW, OC/G), got shape ", ws.str()), op);
  if (G != groups)
    throw Error(ErrorCode::InvalidArgument,
                str_cat(op, ": weight of shape ", ws.str(), " has ", G, " groups (dim 0), but groups=", groups), op);
  const int64_t o = grouped ? 1 : 0;
  const int64_t A = ws[o], B = ws[o + 1], ICg = ws[o + 2], FH = ws[o + 3], FW = ws[o + 4], OCg = ws[o + 5];
  const int64_t N = x0.shape()[0], IC = x0.shape()[1], IH = x0.shape()[2], IW = x0.shape()[3];
  if (IC % G != 0 || ICg != IC / G)
    throw Error(ErrorCode::InvalidArgument,
                str_cat(op, ": input of shape ", x0.shape().str(), " has ", IC, " channels, so with ", G, " group(s) the weight's IC",
                        G > 1 ? "/G" : "", " dim must be ", IC % G == 0 ? str_cat(IC / G) : std::string("an integer (IC is not divisible by G)"),
                        "; got weight of shape ", ws.str()), op);
  if (FH < 1 || FW < 1 || OCg < 1 || A < 1 || B < 1)
    throw Error(ErrorCode::InvalidArgument, str_cat(op, ": weight of shape ", ws.str(), " has an empty dim"), op);
  int64_t out_sz[2];
  const int64_t in_sz[2] = {IH, IW}, k_sz[2] = {FH, FW};
  for (int i = 0; i < 2; ++i) {
    const int64_t span = in_sz[i] + 2 * pd[i] - dl[i] * (k_sz[i] - 1) - 1;
    if (span < 0)
      throw Error(ErrorCode::InvalidArgument,
                  str_cat(op, ": the padded input (", i == 0 ? "height " : "width ", in_sz[i] + 2 * pd[i], ") is smaller than the ",
                          dl[i] > 1 ? "dilated " : "", "filter (", dl[i] * (k_sz[i] - 1) + 1, "); input shape ", x0.shape().str(),
                          ", weight shape ", ws.str()), op);
    out_sz[i] = span / st[i] + 1;
  }
  const int64_t OH = out_sz[0], OW = out_sz[1];
  int64_t SGH, SGW;
  auto expected_w = [&](int64_t a, int64_t b) {
    return grouped ? str_cat("(", G, ", ", a, ", ", b, ", ", ICg, ", ", FH, ", ", FW, ", ", OCg, ")")
                   : str_cat("(", a, ", ", b, ", ", ICg, ", ", FH, ", ", FW, ", ", OCg, ")");
  };
  if (is_local) {
    if (A != OH || B != OW)
      throw Error(ErrorCode::InvalidArgument,
                  str_cat(op, ": input of shape ", x0.shape().str(), " with stride ", st.str(), " and padding ", pd.str(), " gives a ", OH,
                          "x", OW, " output, so expected weight of shape ", expected_w(OH, OW), ", got shape ", ws.str()), op);
    SGH = OH;
    SGW = OW;
  } else {
    const Dims sg = pair_attr(op, "spatial_groups", sg_a, 1);
    SGH = sg[0];
    SGW = sg[1];
    if (OH % SGH != 0 || OW % SGW != 0)
      throw Error(ErrorCode::InvalidArgument,
                  str_cat(op, ": spatial_groups ", sg.str(), " must divide the output's ", OH, "x", OW, " plane (input shape ",
                          x0.shape().str(), ", weight shape ", ws.str(), ")"), op);
    if (A != SGH || B != SGW)
      throw Error(ErrorCode::InvalidArgument,
                  str_cat(op, ": spatial_groups ", sg.str(), " expect weight of shape ", expected_w(SGH, SGW), ", got shape ", ws.str()), op);
  }
  const int64_t OC = OCg * G;
  if (b0.defined() && (b0.dim() != 1 || b0.shape()[0] != OC))
    throw Error(ErrorCode::InvalidArgument,
                str_cat(op, ": expected bias of shape (", OC, ") (the output channels), got shape ", b0.shape().str()), op);
  s.g = LocalGeom{N, IC, IH, IW, OC, OH, OW, FH, FW, st[0], st[1], pd[0], pd[1], dl[0], dl[1], G, SGH, SGW, mode == "convolution"};
  s.x = x0.contiguous();
  s.w = w0.contiguous();
  s.out_shape = Dims{N, OC, OH, OW};
  return s;
}

void local_forward(OpCtx& ctx, const char* op, int op_id, bool is_local, const Dims& stride, const Dims& padding, const Dims& dilation,
                   const Dims& sg, int64_t groups, const std::string& mode, const std::string& algo) {
  const Tensor& b0 = ctx.in(2);
  LocalSetup s = local_setup(op, is_local, ctx.in(0), ctx.in(1), b0, stride, padding, dilation, sg, groups, mode);
  const bool naive = naive_algo(op, algo);
  auto k = kernel<const LocalKernels*>(op_id, s.dev, s.dt);
  Tensor y = Tensor::empty(s.out_shape, s.dt, s.dev);
  if (y.numel() > 0) k->forward(s.x, s.w, b0.defined() ? b0.contiguous() : Tensor(), y, s.g, naive);
  ctx.set(y);
}

void local_backward(OpCtx& ctx, const char* op, int op_id, bool is_local, const Dims& stride, const Dims& padding, const Dims& dilation,
                    const Dims& sg, int64_t groups, const std::string& mode, const std::string& algo, const Dims& mask) {
  if (mask.size() != 2 || (mask[0] != 0 && mask[0] != 1) || (mask[1] != 0 && mask[1] != 1))
    throw Error(ErrorCode::InvalidArgument, str_cat(op, ": output_mask must be 2 entries of 0 or 1, got ", mask.str()), op);
  LocalSetup s = local_setup(op, is_local, ctx.in(1), ctx.in(2), Tensor(), stride, padding, dilation, sg, groups, mode);
  common_device(op, ctx.inputs(), 3);
  const bool naive = naive_algo(op, algo);
  const Tensor& gy0 = ctx.in(0);
  if (gy0.dtype() != s.dt)
    throw Error(ErrorCode::TypeError, str_cat(op, ": expected grad of dtype ", dtype_name(s.dt), ", got ", dtype_name(gy0.dtype())), op);
  if (gy0.shape() != s.out_shape)
    throw Error(ErrorCode::InvalidArgument,
                str_cat(op, ": expected grad of shape ", s.out_shape.str(), " (the forward output's), got shape ", gy0.shape().str()), op);
  Tensor gy = gy0.contiguous();
  auto k = kernel<const LocalKernels*>(op_id, s.dev, s.dt);
  Tensor gx = Tensor::empty(Dims{0}, s.dt, s.dev), gw = Tensor::empty(Dims{0}, s.dt, s.dev);
  if (mask[0]) {
    gx = Tensor::empty(s.x.shape(), s.dt, s.dev);
    if (gx.numel() > 0) k->backward_data(gy, s.w, gx, s.g, naive);
  }
  if (mask[1]) {
    gw = Tensor::empty(s.w.shape(), s.dt, s.dev);
    if (gw.numel() > 0) k->backward_filter(gy, s.x, gw, s.g, naive);
  }
  ctx.set(gx);
  ctx.set(gw);
}

HERON_IMPL(local_conv2d, LocalConv2dAttrs) {
  local_forward(ctx, "local_conv2d", OpId::local_conv2d, true, attrs.stride, attrs.padding, Dims{1, 1}, Dims{1, 1}, 1, "cross_correlation", attrs.algo);
}
HERON_IMPL(local_share_conv2d, LocalShareConv2dAttrs) {
  local_forward(ctx, "local_share_conv2d", OpId::local_share_conv2d, false, attrs.stride, attrs.padding, attrs.dilation, attrs.spatial_groups, attrs.groups,
                attrs.mode, attrs.algo);
}
HERON_IMPL(local_conv2d_backward, LocalConv2dBackwardAttrs) {
  local_backward(ctx, "local_conv2d_backward", OpId::local_conv2d_backward, true, attrs.stride, attrs.padding, Dims{1, 1}, Dims{1, 1}, 1, "cross_correlation",
                 attrs.algo, attrs.output_mask);
}
HERON_IMPL(local_share_conv2d_backward, LocalShareConv2dBackwardAttrs) {
  local_backward(ctx, "local_share_conv2d_backward", OpId::local_share_conv2d_backward, false, attrs.stride, attrs.padding, attrs.dilation, attrs.spatial_groups,
                 attrs.groups, attrs.mode, attrs.algo, attrs.output_mask);
}

}  // namespace
}  // namespace heron
