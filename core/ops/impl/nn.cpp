// nn ops (layers, normalisation, losses): validation, shapes, dtypes and output allocation; the
// arithmetic is the device's kernels (impl/nn.h). Device-generic.
#include "core/ops/impl/nn.h"

#include <cmath>

#include "core/autograd/autograd.h"
#include "core/ops/impl/common.h"
#include "core/ops/impl/creation_kernels.h"
#include "core/util/philox.h"

namespace heron {
namespace {
using namespace ops;
using namespace nn;

Error arg_error(const char* op, const std::string& msg) { return Error(ErrorCode::InvalidArgument, str_cat(op, ": ", msg), op); }
Error type_error(const char* op, const std::string& msg) { return Error(ErrorCode::TypeError, str_cat(op, ": ", msg), op); }

// A floating input of a supported dtype (float32 / float64).
void check_float(const char* op, const char* arg, const Tensor& t) {
  if (t.dtype() != DType::Float32 && t.dtype() != DType::Float64)
    throw type_error(op, str_cat("expected '", arg, "' of dtype float32 or float64, got ", dtype_name(t.dtype())));
}
// An optional/other tensor argument with the same dtype as the input.
void check_same_dtype(const char* op, const char* arg, const Tensor& t, DType dt) {
  if (t.defined() && t.dtype() != dt)
    throw type_error(op, str_cat("expected '", arg, "' of dtype ", dtype_name(dt), " (the input's), got ", dtype_name(t.dtype())));
}
void check_shape(const char* op, const char* arg, const Tensor& t, const Dims& want) {
  if (t.defined() && t.shape() != want)
    throw arg_error(op, str_cat("expected '", arg, "' of shape ", want.str(), ", got ", t.shape().str()));
}
Tensor contig(const Tensor& t) { return t.defined() ? t.contiguous() : Tensor(); }

int reduction_code(const char* op, const std::string& r) {
  if (r == "none") return kNone;
  if (r == "mean") return kMean;
  if (r == "sum") return kSum;
  throw arg_error(op, str_cat("reduction must be one of 'none', 'mean', 'sum', got '", r, "'"));
}

Device dev_of(const char* op, OpCtx& ctx) {
  std::vector<Tensor> ts;
  for (size_t i = 0; i < ctx.num_inputs(); ++i)
    if (ctx.in(i).defined()) ts.push_back(ctx.in(i));
  return common_device(op, ts.data(), ts.size());
}

int64_t prod(const Dims& d, size_t from, size_t to) {
  int64_t p = 1;
  for (size_t i = from; i < to; ++i) p *= d[i];
  return p;
}

// ------------------------------------------------------------------ linear
HERON_IMPL(linear, LinearAttrs) {
  const char* op = "linear";
  const Tensor& x = ctx.in(0);
  const Tensor& w = ctx.in(1);
  const Tensor& b = ctx.in(2);
  Device dev = dev_of(op, ctx);
  check_float(op, "input", x);
  check_same_dtype(op, "weight", w, x.dtype());
  check_same_dtype(op, "bias", b, x.dtype());
  if (x.dim() < 1) throw arg_error(op, "expected 'input' with at least 1 dim (..., in_features), got a 0-d tensor");
  if (w.dim() != 2) throw arg_error(op, str_cat("expected 'weight' of shape (out_features, in_features), got ", w.shape().str()));
  const int64_t K = x.size(-1), O = w.size(0);
  if (w.size(1) != K)
    throw arg_error(op, str_cat("expected 'weight' of shape ", Dims{O, K}.str(), " to match input ", x.shape().str(), ", got ",
                                w.shape().str()));
  check_shape(op, "bias", b, Dims{O});
  Dims osh = x.shape();
  osh[osh.size() - 1] = O;
  Tensor out = Tensor::empty(osh, x.dtype(), dev);
  const int64_t M = prod(x.shape(), 0, x.shape().size() - 1);
  if (out.numel() > 0) {
    auto fn = kernel<LinearFn>(OpId::linear, dev, x.dtype());
    fn(x.contiguous().reshape(Dims{M, K}), w.contiguous(), contig(b), out.view(Dims{M, O}));
  }
  ctx.set(out);
}

HERON_IMPL(linear_backward, LinearBackwardAttrs) {
  const char* op = "linear_backward";
  const Tensor& g = ctx.in(0);
  const Tensor& x = ctx.in(1);
  const Tensor& w = ctx.in(2);
  Device dev = dev_of(op, ctx);
  check_float(op, "input", x);
  check_same_dtype(op, "grad_output", g, x.dtype());
  check_same_dtype(op, "weight", w, x.dtype());
  if (x.dim() < 1 || w.dim() != 2 || w.size(1) != x.size(-1))
    throw arg_error(op, str_cat("expected input (..., in) and weight (out, in), got ", x.shape().str(), " and ", w.shape().str()));
  const int64_t K = x.size(-1), O = w.size(0), M = prod(x.shape(), 0, x.shape().size() - 1);
  Dims gsh = x.shape();
  gsh[gsh.size() - 1] = O;
  check_shape(op, "grad_output", g, gsh);
  if (attrs.output_mask.size() != 3) throw arg_error(op, str_cat("output_mask needs 3 entries, got ", attrs.output_mask.str()));
  bool want[3] = {attrs.output_mask[0] != 0, attrs.output_mask[1] != 0, attrs.output_mask[2] != 0};
  Tensor gi = want[0] ? Tensor::empty(x.shape(), x.dtype(), dev) : Tensor::empty(Dims{0}, x.dtype(), dev);
  Tensor gw = want[1] ? Tensor::empty(w.shape(), x.dtype(), dev) : Tensor::empty(Dims{0}, x.dtype(), dev);
  Tensor gb = want[2] ? Tensor::empty(Dims{O}, x.dtype(), dev) : Tensor::empty(Dims{0}, x.dtype(), dev);
  if (want[0] || want[1] || want[2]) {
    auto fn = kernel<LinearBackwardFn>(OpId::linear_backward, dev, x.dtype());
    fn(g.contiguous().reshape(Dims{M, O}), x.contiguous().reshape(Dims{M, K}), w.contiguous(),
       want[0] ? gi.view(Dims{M, K}) : Tensor(), want[1] ? gw : Tensor(), want[2] ? gb : Tensor());
  }
  ctx.set(gi);
  ctx.set(gw);
  ctx.set(gb);
}

// ------------------------------------------------------------------ leaky_relu
HERON_IMPL(leaky_relu, LeakyReluAttrs) {
  const char* op = "leaky_relu";
  const Tensor& x = ctx.in(0);
  check_float(op, "input", x);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (out.numel() > 0) kernel<LeakyReluFn>(OpId::leaky_relu, x.device(), x.dtype())(x.contiguous(), out, attrs.negative_slope);
  ctx.set(out);
}

HERON_IMPL(leaky_relu_backward, LeakyReluBackwardAttrs) {
  const char* op = "leaky_relu_backward";
  const Tensor& g = ctx.in(0);
  const Tensor& x = ctx.in(1);
  Device dev = dev_of(op, ctx);
  check_float(op, "input", x);
  check_same_dtype(op, "grad_output", g, x.dtype());
  check_shape(op, "grad_output", g, x.shape());
  Tensor gi = Tensor::empty(x.shape(), x.dtype(), dev);
  if (gi.numel() > 0)
    kernel<LeakyReluBackwardFn>(OpId::leaky_relu_backward, dev, x.dtype())(g.contiguous(), x.contiguous(), gi, attrs.negative_slope);
  ctx.set(gi);
}

// ------------------------------------------------------------------ dropout
HERON_IMPL(dropout, DropoutAttrs) {
  const char* op = "dropout";
  const Tensor& x = ctx.in(0);
  check_float(op, "input", x);
  const double p = attrs.p;
  if (!(p >= 0.0 && p <= 1.0)) throw arg_error(op, str_cat("p must be in [0, 1], got ", p));
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor mask = Tensor::empty(x.shape(), DType::Bool, x.device());
  const int64_t n = x.numel();
  if (n > 0) {
    if (!attrs.training || p == 0.0) {
      out.copy_from(x);
      fill_tensor(mask, Scalar::from_bool(true));
    } else {
      auto fn = kernel<DropoutFn>(OpId::dropout, x.device(), x.dtype());
      auto [seed, off] = Generator::default_generator().reserve(blocks_for(n, 4));
      fn(x.contiguous(), out, mask, p, p >= 1.0 ? 0.0 : 1.0 / (1.0 - p), seed, off);
    }
  }
  ctx.set(out);
  ctx.set(mask);
}

HERON_IMPL(dropout_backward, DropoutBackwardAttrs) {
  const char* op = "dropout_backward";
  const Tensor& g = ctx.in(0);
  const Tensor& m = ctx.in(1);
  Device dev = dev_of(op, ctx);
  check_float(op, "grad_output", g);
  if (m.dtype() != DType::Bool) throw type_error(op, str_cat("expected a bool 'mask', got ", dtype_name(m.dtype())));
  check_shape(op, "mask", m, g.shape());
  const double p = attrs.p;
  if (!(p >= 0.0 && p <= 1.0)) throw arg_error(op, str_cat("p must be in [0, 1], got ", p));
  Tensor gi = Tensor::empty(g.shape(), g.dtype(), dev);
  if (gi.numel() > 0)
    kernel<DropoutBackwardFn>(OpId::dropout_backward, dev, g.dtype())(g.contiguous(), m.contiguous(), gi,
                                                                      p >= 1.0 ? 0.0 : 1.0 / (1.0 - p));
  ctx.set(gi);
}

// ------------------------------------------------------------------ embedding
void check_indices(const char* op, const Tensor& idx) {
  if (idx.dtype() != DType::Int64 && idx.dtype() != DType::Int32)
    throw type_error(op, str_cat("expected 'indices' of dtype int32 or int64, got ", dtype_name(idx.dtype())));
}

HERON_IMPL(embedding, EmbeddingAttrs) {
  const char* op = "embedding";
  const Tensor& w = ctx.in(0);
  const Tensor& idx = ctx.in(1);
  Device dev = dev_of(op, ctx);
  check_float(op, "weight", w);
  check_indices(op, idx);
  if (w.dim() != 2) throw arg_error(op, str_cat("expected 'weight' of shape (num_embeddings, embedding_dim), got ", w.shape().str()));
  const int64_t num = w.size(0), dim = w.size(1);
  if (attrs.padding_idx && (*attrs.padding_idx >= num || *attrs.padding_idx < -num))
    throw arg_error(op, str_cat("padding_idx ", *attrs.padding_idx, " is out of range for ", num, " embeddings"));
  Dims osh = idx.shape();
  osh.push_back(dim);
  Tensor out = Tensor::empty(osh, w.dtype(), dev);
  if (idx.numel() > 0) {
    if (dim == 0 || num == 0) {
      if (num == 0) throw Error(ErrorCode::IndexError, str_cat(op, ": index out of range: the weight has 0 rows"), op);
    } else {
      kernel<EmbeddingFn>(OpId::embedding, dev, w.dtype())(w.contiguous(), idx.contiguous(), out.view(Dims{idx.numel(), dim}));
    }
  }
  ctx.set(out);
}

HERON_IMPL(embedding_backward, EmbeddingBackwardAttrs) {
  const char* op = "embedding_backward";
  const Tensor& g = ctx.in(0);
  const Tensor& idx = ctx.in(1);
  Device dev = dev_of(op, ctx);
  check_float(op, "grad_output", g);
  check_indices(op, idx);
  const int64_t num = attrs.num_weights;
  if (num < 0) throw arg_error(op, str_cat("num_weights must be >= 0, got ", num));
  if (g.dim() != idx.dim() + 1 || Dims(g.shape().data(), idx.dim()) != idx.shape())
    throw arg_error(op, str_cat("expected 'grad_output' of shape indices.shape + (dim,) = ", idx.shape().str(), " + (dim,), got ",
                                g.shape().str()));
  const int64_t dim = g.size(-1);
  int64_t pad = -1;
  if (attrs.padding_idx) {
    pad = *attrs.padding_idx;
    if (pad >= num || pad < -num) throw arg_error(op, str_cat("padding_idx ", pad, " is out of range for ", num, " embeddings"));
    if (pad < 0) pad += num;
  }
  Tensor gw = Tensor::empty(Dims{num, dim}, g.dtype(), dev);
  if (gw.numel() > 0)
    kernel<EmbeddingBackwardFn>(OpId::embedding_backward, dev, g.dtype())(g.contiguous().reshape(Dims{idx.numel(), dim}),
                                                                          idx.contiguous(), gw, pad);
  ctx.set(gw);
}

// ------------------------------------------------------------------ pixel_shuffle (views + one copy)
Tensor fresh_copy(const Tensor& t, const Tensor& input) {
  Tensor c = t.contiguous();
  return c.shares_storage(input) ? c.clone() : c;
}

HERON_IMPL(pixel_shuffle, PixelShuffleAttrs) {
  const char* op = "pixel_shuffle";
  const Tensor& x = ctx.in(0);
  const int64_t r = attrs.upscale_factor;
  if (r < 1) throw arg_error(op, str_cat("upscale_factor must be >= 1, got ", r));
  if (x.dim() < 3) throw arg_error(op, str_cat("expected input of shape (*, C*r*r, H, W) with at least 3 dims, got ", x.shape().str()));
  const int64_t nd = x.dim(), C = x.size(-3), H = x.size(-2), W = x.size(-1);
  if (C % (r * r) != 0)
    throw arg_error(op, str_cat("the channel dim ", C, " of input ", x.shape().str(), " is not divisible by upscale_factor^2 = ", r * r));
  Dims lead(x.shape().data(), nd - 3);
  Dims v = lead;
  for (int64_t s : {C / (r * r), r, r, H, W}) v.push_back(s);
  Dims perm;
  const int64_t L = static_cast<int64_t>(lead.size());
  for (int64_t i = 0; i < L; ++i) perm.push_back(i);
  for (int64_t s : {L, L + 3, L + 1, L + 4, L + 2}) perm.push_back(s);
  Dims osh = lead;
  for (int64_t s : {C / (r * r), H * r, W * r}) osh.push_back(s);
  ctx.set(fresh_copy(x.reshape(v).permute(perm), x).view(osh));
}

HERON_IMPL(pixel_unshuffle, PixelUnshuffleAttrs) {
  const char* op = "pixel_unshuffle";
  const Tensor& x = ctx.in(0);
  const int64_t r = attrs.downscale_factor;
  if (r < 1) throw arg_error(op, str_cat("downscale_factor must be >= 1, got ", r));
  if (x.dim() < 3) throw arg_error(op, str_cat("expected input of shape (*, C, H*r, W*r) with at least 3 dims, got ", x.shape().str()));
  const int64_t nd = x.dim(), C = x.size(-3), H = x.size(-2), W = x.size(-1);
  if (H % r != 0 || W % r != 0)
    throw arg_error(op, str_cat("the spatial dims (", H, ", ", W, ") of input ", x.shape().str(), " are not divisible by downscale_factor ", r));
  Dims lead(x.shape().data(), nd - 3);
  Dims v = lead;
  for (int64_t s : {C, H / r, r, W / r, r}) v.push_back(s);
  Dims perm;
  const int64_t L = static_cast<int64_t>(lead.size());
  for (int64_t i = 0; i < L; ++i) perm.push_back(i);
  for (int64_t s : {L, L + 2, L + 4, L + 1, L + 3}) perm.push_back(s);
  Dims osh = lead;
  for (int64_t s : {C * r * r, H / r, W / r}) osh.push_back(s);
  ctx.set(fresh_copy(x.reshape(v).permute(perm), x).view(osh));
}

// ------------------------------------------------------------------ interpolate
// Output spatial size and the per-dim scale factors (<= 0 when none) from size / scale_factor.
InterpParams interp_params(const char* op, const Dims& in, const std::optional<Dims>& size,
                           const std::optional<std::vector<double>>& sf, const std::string& mode, bool align_corners) {
  const int64_t nd = static_cast<int64_t>(in.size());
  const bool bilinear = mode == "bilinear";
  if (mode != "nearest" && !bilinear) throw arg_error(op, str_cat("mode must be 'nearest' or 'bilinear', got '", mode, "'"));
  if (bilinear && nd != 4) throw arg_error(op, str_cat("bilinear mode expects a 4-d input (N, C, H, W), got shape ", in.str()));
  if (!bilinear && nd != 3 && nd != 4)
    throw arg_error(op, str_cat("nearest mode expects a 3-d (N, C, W) or 4-d (N, C, H, W) input, got shape ", in.str()));
  const int64_t ns = nd - 2;
  InterpParams p{};
  p.P = in[0] * in[1];
  p.IH = ns == 2 ? in[2] : 1;
  p.IW = in[nd - 1];
  p.bilinear = bilinear;
  p.align_corners = align_corners;
  p.scale_h = p.scale_w = -1.0;
  int64_t osz[2] = {1, 1};
  if (size && sf) throw arg_error(op, "only one of size and scale_factor may be given");
  if (size) {
    if (static_cast<int64_t>(size->size()) != ns && size->size() != 1)
      throw arg_error(op, str_cat("expected size with ", ns, " entries for input of shape ", in.str(), ", got ", size->str()));
    for (int64_t i = 0; i < ns; ++i) {
      osz[i] = (*size)[size->size() == 1 ? 0 : i];
      if (osz[i] <= 0) throw arg_error(op, str_cat("output sizes must be positive, got ", size->str()));
    }
  } else if (sf) {
    if (static_cast<int64_t>(sf->size()) != ns && sf->size() != 1)
      throw arg_error(op, str_cat("expected scale_factor with ", ns, " entries for input of shape ", in.str(), ", got ", sf->size()));
    for (int64_t i = 0; i < ns; ++i) {
      double s = (*sf)[sf->size() == 1 ? 0 : i];
      if (!(s > 0) || !std::isfinite(s)) throw arg_error(op, str_cat("scale_factor must be positive and finite, got ", s));
      osz[i] = static_cast<int64_t>(std::floor(static_cast<double>(in[2 + i]) * s));
      if (osz[i] <= 0) throw arg_error(op, str_cat("scale_factor ", s, " gives an empty output for input of shape ", in.str()));
      if (ns == 2 && i == 0) p.scale_h = s;
      else p.scale_w = s;
    }
  } else {
    throw arg_error(op, "either size or scale_factor must be given");
  }
  if (ns == 2) { p.OH = osz[0]; p.OW = osz[1]; }
  else { p.OH = 1; p.OW = osz[0]; }
  return p;
}

HERON_IMPL(interpolate, InterpolateAttrs) {
  const char* op = "interpolate";
  const Tensor& x = ctx.in(0);
  check_float(op, "input", x);
  InterpParams p = interp_params(op, x.shape(), attrs.size, attrs.scale_factor, attrs.mode, attrs.align_corners);
  Dims osh = x.shape();
  if (x.dim() == 4) osh[2] = p.OH;
  osh[x.dim() - 1] = p.OW;
  Tensor out = Tensor::empty(osh, x.dtype(), x.device());
  if (out.numel() > 0 && x.numel() > 0) kernel<InterpolateFn>(OpId::interpolate, x.device(), x.dtype())(x.contiguous(), out, p);
  ctx.set(out);
}

HERON_IMPL(interpolate_backward, InterpolateBackwardAttrs) {
  const char* op = "interpolate_backward";
  const Tensor& g = ctx.in(0);
  check_float(op, "grad_output", g);
  const Dims& in = attrs.input_size;
  if (static_cast<int64_t>(in.size()) != g.dim() || (g.dim() != 3 && g.dim() != 4) || in[0] != g.size(0) || in[1] != g.size(1))
    throw arg_error(op, str_cat("grad_output of shape ", g.shape().str(), " does not match input_size ", in.str()));
  std::optional<Dims> size;
  Dims sz(g.shape().data() + 2, g.dim() - 2);
  if (!attrs.scale_factor) size = sz;
  InterpParams p = interp_params(op, in, size, attrs.scale_factor, attrs.mode, attrs.align_corners);
  if ((g.dim() == 4 && p.OH != g.size(2)) || p.OW != g.size(-1))
    throw arg_error(op, str_cat("grad_output of shape ", g.shape().str(), " does not match the output size for input_size ", in.str()));
  Tensor gi = Tensor::empty(in, g.dtype(), g.device());
  if (gi.numel() > 0) {
    if (g.numel() == 0) fill_tensor(gi, Scalar(0.0));
    else kernel<InterpolateBackwardFn>(OpId::interpolate_backward, g.device(), g.dtype())(g.contiguous(), gi, p);
  }
  ctx.set(gi);
}

// ------------------------------------------------------------------ normalisation
struct NCS { int64_t N, C, S; };
NCS ncs_of(const char* op, const Tensor& x) {
  if (x.dim() < 2) throw arg_error(op, str_cat("expected input of shape (N, C, *) with at least 2 dims, got ", x.shape().str()));
  return {x.size(0), x.size(1), prod(x.shape(), 2, x.shape().size())};
}
void check_param(const char* op, const char* arg, const Tensor& t, DType dt, int64_t C) {
  check_same_dtype(op, arg, t, dt);
  check_shape(op, arg, t, Dims{C});
}

HERON_IMPL(batch_norm, BatchNormAttrs) {
  const char* op = "batch_norm";
  const Tensor& x = ctx.in(0);
  const Tensor &w = ctx.in(1), &b = ctx.in(2), &rm = ctx.in(3), &rv = ctx.in(4);
  Device dev = dev_of(op, ctx);
  check_float(op, "input", x);
  NCS d = ncs_of(op, x);
  check_param(op, "weight", w, x.dtype(), d.C);
  check_param(op, "bias", b, x.dtype(), d.C);
  check_param(op, "running_mean", rm, x.dtype(), d.C);
  check_param(op, "running_var", rv, x.dtype(), d.C);
  if (rm.defined() != rv.defined()) throw arg_error(op, "running_mean and running_var must be given together");
  if (!attrs.training && !rm.defined()) throw arg_error(op, "running_mean and running_var are required when training is false");
  if (attrs.training && d.N * d.S <= 1)
    throw arg_error(op, str_cat("expected more than 1 value per channel when training, got input of shape ", x.shape().str()));
  if (rm.defined() && attrs.training && (!rm.is_contiguous() || !rv.is_contiguous()))
    throw arg_error(op, "running_mean and running_var must be contiguous to be updated in place");
  Tensor out = Tensor::empty(x.shape(), x.dtype(), dev);
  Tensor mean = Tensor::empty(Dims{d.C}, x.dtype(), dev);
  Tensor invstd = Tensor::empty(Dims{d.C}, x.dtype(), dev);
  if (d.C > 0)
    kernel<BatchNormFn>(OpId::batch_norm, dev, x.dtype())(x.contiguous(), contig(w), contig(b), attrs.training ? rm : contig(rm),
                                                          attrs.training ? rv : contig(rv), out, mean, invstd, d.N, d.C, d.S,
                                                          attrs.training, attrs.momentum, attrs.eps);
  if (attrs.training && rm.defined()) {  // written in place: a backward that saved them must see it
    autograd::bump_version(rm);
    autograd::bump_version(rv);
  }
  ctx.set(out);
  ctx.set(mean);
  ctx.set(invstd);
}

HERON_IMPL(batch_norm_backward, BatchNormBackwardAttrs) {
  const char* op = "batch_norm_backward";
  const Tensor &g = ctx.in(0), &x = ctx.in(1), &w = ctx.in(2), &mean = ctx.in(3), &invstd = ctx.in(4);
  Device dev = dev_of(op, ctx);
  check_float(op, "input", x);
  NCS d = ncs_of(op, x);
  check_same_dtype(op, "grad_output", g, x.dtype());
  check_shape(op, "grad_output", g, x.shape());
  check_param(op, "weight", w, x.dtype(), d.C);
  check_param(op, "save_mean", mean, x.dtype(), d.C);
  check_param(op, "save_invstd", invstd, x.dtype(), d.C);
  Tensor gi = Tensor::empty(x.shape(), x.dtype(), dev);
  Tensor gw = Tensor::empty(Dims{d.C}, x.dtype(), dev);
  Tensor gb = Tensor::empty(Dims{d.C}, x.dtype(), dev);
  if (d.C > 0)
    kernel<BatchNormBackwardFn>(OpId::batch_norm_backward, dev, x.dtype())(g.contiguous(), x.contiguous(), contig(w), contig(mean),
                                                                           contig(invstd), gi, gw, gb, d.N, d.C, d.S, attrs.training);
  ctx.set(gi);
  ctx.set(gw);
  ctx.set(gb);
}

void run_group_norm(const char* op, const Tensor& x, const Tensor& w, const Tensor& b, int64_t G, double eps, Device dev,
                    Tensor& out, Tensor& mean, Tensor& rstd) {
  NCS d = ncs_of(op, x);
  out = Tensor::empty(x.shape(), x.dtype(), dev);
  mean = Tensor::empty(Dims{d.N, G}, x.dtype(), dev);
  rstd = Tensor::empty(Dims{d.N, G}, x.dtype(), dev);
  if (d.N * G > 0)
    kernel<GroupNormFn>(OpId::group_norm, dev, x.dtype())(x.contiguous(), contig(w), contig(b), out, mean, rstd, d.N, d.C, d.S, G, eps);
}

HERON_IMPL(group_norm, GroupNormAttrs) {
  const char* op = "group_norm";
  const Tensor &x = ctx.in(0), &w = ctx.in(1), &b = ctx.in(2);
  Device dev = dev_of(op, ctx);
  check_float(op, "input", x);
  NCS d = ncs_of(op, x);
  const int64_t G = attrs.num_groups;
  if (G < 1 || d.C % G != 0)
    throw arg_error(op, str_cat("num_groups must be >= 1 and divide the number of channels ", d.C, ", got ", G));
  check_param(op, "weight", w, x.dtype(), d.C);
  check_param(op, "bias", b, x.dtype(), d.C);
  Tensor out, mean, rstd;
  run_group_norm(op, x, w, b, G, attrs.eps, dev, out, mean, rstd);
  ctx.set(out);
  ctx.set(mean);
  ctx.set(rstd);
}

HERON_IMPL(group_norm_backward, GroupNormBackwardAttrs) {
  const char* op = "group_norm_backward";
  const Tensor &g = ctx.in(0), &x = ctx.in(1), &w = ctx.in(2), &mean = ctx.in(3), &rstd = ctx.in(4);
  Device dev = dev_of(op, ctx);
  check_float(op, "input", x);
  NCS d = ncs_of(op, x);
  const int64_t G = attrs.num_groups;
  if (G < 1 || d.C % G != 0)
    throw arg_error(op, str_cat("num_groups must be >= 1 and divide the number of channels ", d.C, ", got ", G));
  check_same_dtype(op, "grad_output", g, x.dtype());
  check_shape(op, "grad_output", g, x.shape());
  check_param(op, "weight", w, x.dtype(), d.C);
  check_same_dtype(op, "mean", mean, x.dtype());
  check_same_dtype(op, "rstd", rstd, x.dtype());
  check_shape(op, "mean", mean, Dims{d.N, G});
  check_shape(op, "rstd", rstd, Dims{d.N, G});
  Tensor gi = Tensor::empty(x.shape(), x.dtype(), dev);
  Tensor gw = Tensor::empty(Dims{d.C}, x.dtype(), dev);
  Tensor gb = Tensor::empty(Dims{d.C}, x.dtype(), dev);
  kernel<GroupNormBackwardFn>(OpId::group_norm_backward, dev, x.dtype())(g.contiguous(), x.contiguous(), contig(w), contig(mean),
                                                                         contig(rstd), gi, gw, gb, d.N, d.C, d.S, G);
  ctx.set(gi);
  ctx.set(gw);
  ctx.set(gb);
}

HERON_IMPL(instance_norm, InstanceNormAttrs) {
  const char* op = "instance_norm";
  const Tensor &x = ctx.in(0), &w = ctx.in(1), &b = ctx.in(2), &rm = ctx.in(3), &rv = ctx.in(4);
  Device dev = dev_of(op, ctx);
  check_float(op, "input", x);
  NCS d = ncs_of(op, x);
  check_param(op, "weight", w, x.dtype(), d.C);
  check_param(op, "bias", b, x.dtype(), d.C);
  check_param(op, "running_mean", rm, x.dtype(), d.C);
  check_param(op, "running_var", rv, x.dtype(), d.C);
  if (rm.defined() != rv.defined()) throw arg_error(op, "running_mean and running_var must be given together");
  if (!attrs.use_input_stats) {
    if (!rm.defined()) throw arg_error(op, "running_mean and running_var are required when use_input_stats is false");
    Tensor out = Tensor::empty(x.shape(), x.dtype(), dev);
    Tensor mean = Tensor::empty(Dims{d.C}, x.dtype(), dev);
    Tensor rstd = Tensor::empty(Dims{d.C}, x.dtype(), dev);
    if (d.C > 0)
      kernel<BatchNormFn>(OpId::batch_norm, dev, x.dtype())(x.contiguous(), contig(w), contig(b), contig(rm), contig(rv), out, mean,
                                                            rstd, d.N, d.C, d.S, false, attrs.momentum, attrs.eps);
    ctx.set(out);
    ctx.set(mean);
    ctx.set(rstd);
    return;
  }
  if (d.S <= 1)
    throw arg_error(op, str_cat("expected more than 1 spatial element per channel when using input stats, got input of shape ",
                                x.shape().str()));
  if (rm.defined() && (!rm.is_contiguous() || !rv.is_contiguous()))
    throw arg_error(op, "running_mean and running_var must be contiguous to be updated in place");
  Tensor out, mean, rstd;
  run_group_norm(op, x, w, b, d.C, attrs.eps, dev, out, mean, rstd);
  if (rm.defined() && d.N * d.C > 0) {
    kernel<InstanceNormRunningFn>(OpId::instance_norm, dev, x.dtype())(mean, rstd, rm, rv, d.N, d.C, d.S, attrs.momentum, attrs.eps);
    autograd::bump_version(rm);
    autograd::bump_version(rv);
  }
  ctx.set(out);
  ctx.set(mean);
  ctx.set(rstd);
}

// layer_norm: (M, K) split of the input by normalized_shape.
void layer_dims(const char* op, const Tensor& x, const Dims& ns, int64_t& M, int64_t& K) {
  const int64_t k = static_cast<int64_t>(ns.size());
  if (k < 1) throw arg_error(op, "normalized_shape must have at least one dim");
  bool ok = x.dim() >= k;
  for (int64_t i = 0; ok && i < k; ++i) ok = x.size(x.dim() - k + i) == ns[i];
  if (!ok)
    throw arg_error(op, str_cat("expected input with trailing shape normalized_shape = ", ns.str(), ", got input of shape ", x.shape().str()));
  K = ns.numel();
  M = prod(x.shape(), 0, x.dim() - k);
}

HERON_IMPL(layer_norm, LayerNormAttrs) {
  const char* op = "layer_norm";
  const Tensor &x = ctx.in(0), &w = ctx.in(1), &b = ctx.in(2);
  Device dev = dev_of(op, ctx);
  check_float(op, "input", x);
  int64_t M, K;
  layer_dims(op, x, attrs.normalized_shape, M, K);
  check_same_dtype(op, "weight", w, x.dtype());
  check_same_dtype(op, "bias", b, x.dtype());
  check_shape(op, "weight", w, attrs.normalized_shape);
  check_shape(op, "bias", b, attrs.normalized_shape);
  Dims ssh = x.shape();
  for (size_t i = x.dim() - attrs.normalized_shape.size(); i < ssh.size(); ++i) ssh[i] = 1;
  Tensor out = Tensor::empty(x.shape(), x.dtype(), dev);
  Tensor mean = Tensor::empty(ssh, x.dtype(), dev);
  Tensor rstd = Tensor::empty(ssh, x.dtype(), dev);
  if (M > 0) kernel<LayerNormFn>(OpId::layer_norm, dev, x.dtype())(x.contiguous(), contig(w), contig(b), out, mean, rstd, M, K, attrs.eps);
  ctx.set(out);
  ctx.set(mean);
  ctx.set(rstd);
}

HERON_IMPL(layer_norm_backward, LayerNormBackwardAttrs) {
  const char* op = "layer_norm_backward";
  const Tensor &g = ctx.in(0), &x = ctx.in(1), &w = ctx.in(2), &mean = ctx.in(3), &rstd = ctx.in(4);
  Device dev = dev_of(op, ctx);
  check_float(op, "input", x);
  int64_t M, K;
  layer_dims(op, x, attrs.normalized_shape, M, K);
  check_same_dtype(op, "grad_output", g, x.dtype());
  check_shape(op, "grad_output", g, x.shape());
  check_same_dtype(op, "weight", w, x.dtype());
  check_shape(op, "weight", w, attrs.normalized_shape);
  check_same_dtype(op, "mean", mean, x.dtype());
  check_same_dtype(op, "rstd", rstd, x.dtype());
  if (mean.numel() != M || rstd.numel() != M)
    throw arg_error(op, str_cat("expected mean and rstd with ", M, " elements, got shapes ", mean.shape().str(), " and ", rstd.shape().str()));
  Tensor gi = Tensor::empty(x.shape(), x.dtype(), dev);
  Tensor gw = Tensor::empty(attrs.normalized_shape, x.dtype(), dev);
  Tensor gb = Tensor::empty(attrs.normalized_shape, x.dtype(), dev);
  kernel<LayerNormBackwardFn>(OpId::layer_norm_backward, dev, x.dtype())(g.contiguous(), x.contiguous(), contig(w), contig(mean),
                                                                         contig(rstd), gi, gw, gb, M, K);
  ctx.set(gi);
  ctx.set(gw);
  ctx.set(gb);
}

// ------------------------------------------------------------------ class losses
struct ClassSetup {
  ClassLossParams p;
  Dims sample_shape;  // shape of the per-sample loss
  Tensor x, target, weight;
};

ClassSetup class_setup(const char* op, const Tensor& x, const Tensor& t, const Tensor& w, int64_t ignore_index,
                       const std::string& reduction, double smoothing, bool allow_prob) {
  check_float(op, "input", x);
  ClassSetup s;
  s.p.op = op;
  s.p.reduction = reduction_code(op, reduction);
  s.p.ignore_index = ignore_index;
  s.p.label_smoothing = smoothing;
  if (!(smoothing >= 0.0 && smoothing <= 1.0)) throw arg_error(op, str_cat("label_smoothing must be in [0, 1], got ", smoothing));
  if (x.dim() < 1) throw arg_error(op, str_cat("expected input of shape (C), (N, C) or (N, C, d1, ...), got a 0-d tensor"));
  const bool unbatched = x.dim() == 1;
  s.p.N = unbatched ? 1 : x.size(0);
  s.p.C = unbatched ? x.size(0) : x.size(1);
  s.p.S = unbatched ? 1 : prod(x.shape(), 2, x.shape().size());
  Dims ssh;
  if (!unbatched) {
    ssh.push_back(x.size(0));
    for (int64_t i = 2; i < x.dim(); ++i) ssh.push_back(x.size(i));
  }
  s.sample_shape = ssh;
  s.p.prob = is_floating(t.dtype());
  if (s.p.prob) {
    if (!allow_prob) throw type_error(op, str_cat("expected 'target' of dtype int64 (class indices), got ", dtype_name(t.dtype())));
    check_same_dtype(op, "target", t, x.dtype());
    if (t.shape() != x.shape())
      throw arg_error(op, str_cat("expected class-probability 'target' of the input's shape ", x.shape().str(), ", got ", t.shape().str()));
    s.target = t.contiguous();
  } else {
    if (t.dtype() != DType::Int64 && t.dtype() != DType::Int32)
      throw type_error(op, str_cat("expected 'target' of dtype int64 (class indices) or a floating dtype (probabilities), got ",
                                   dtype_name(t.dtype())));
    if (t.shape() != ssh)
      throw arg_error(op, str_cat("expected class-index 'target' of shape ", ssh.str(), " for input of shape ", x.shape().str(), ", got ",
                                  t.shape().str()));
    s.target = t.to(DType::Int64).contiguous();
  }
  check_same_dtype(op, "weight", w, x.dtype());
  check_shape(op, "weight", w, Dims{s.p.C});
  s.x = x.contiguous();
  s.weight = contig(w);
  return s;
}

void class_loss_forward(OpCtx& ctx, int op_id, const char* op, const Tensor& x, const Tensor& t, const Tensor& w,
                        int64_t ignore_index, const std::string& reduction, double smoothing, bool allow_prob) {
  Device dev = dev_of(op, ctx);
  ClassSetup s = class_setup(op, x, t, w, ignore_index, reduction, smoothing, allow_prob);
  Tensor out = Tensor::empty(s.p.reduction == kNone ? s.sample_shape : Dims{}, x.dtype(), dev);
  kernel<CrossEntropyFn>(op_id, dev, x.dtype())(s.x, s.target, s.weight, out, s.p);
  ctx.set(out);
}

void class_loss_backward(OpCtx& ctx, int op_id, const char* op, const Tensor& g, const Tensor& x, const Tensor& t,
                         const Tensor& w, int64_t ignore_index, const std::string& reduction, double smoothing, bool allow_prob) {
  Device dev = dev_of(op, ctx);
  ClassSetup s = class_setup(op, x, t, w, ignore_index, reduction, smoothing, allow_prob);
  check_same_dtype(op, "grad_output", g, x.dtype());
  check_shape(op, "grad_output", g, s.p.reduction == kNone ? s.sample_shape : Dims{});
  Tensor gi = Tensor::empty(x.shape(), x.dtype(), dev);
  kernel<CrossEntropyBackwardFn>(op_id, dev, x.dtype())(g.contiguous(), s.x, s.target, s.weight, gi, s.p);
  ctx.set(gi);
}

HERON_IMPL(cross_entropy, CrossEntropyAttrs) {
  class_loss_forward(ctx, OpId::cross_entropy, "cross_entropy", ctx.in(0), ctx.in(1), ctx.in(2), attrs.ignore_index, attrs.reduction,
                     attrs.label_smoothing, true);
}
HERON_IMPL(cross_entropy_backward, CrossEntropyBackwardAttrs) {
  class_loss_backward(ctx, OpId::cross_entropy_backward, "cross_entropy_backward", ctx.in(0), ctx.in(1), ctx.in(2), ctx.in(3),
                      attrs.ignore_index, attrs.reduction, attrs.label_smoothing, true);
}
HERON_IMPL(nll_loss, NllLossAttrs) {
  class_loss_forward(ctx, OpId::nll_loss, "nll_loss", ctx.in(0), ctx.in(1), ctx.in(2), attrs.ignore_index, attrs.reduction, 0.0, false);
}
HERON_IMPL(nll_loss_backward, NllLossBackwardAttrs) {
  class_loss_backward(ctx, OpId::nll_loss_backward, "nll_loss_backward", ctx.in(0), ctx.in(1), ctx.in(2), ctx.in(3), attrs.ignore_index,
                      attrs.reduction, 0.0, false);
}

// ------------------------------------------------------------------ pointwise losses
// Checks x, y (same shape and dtype) and expands the optional weights to x's shape.
void pointwise_setup(const char* op, const Tensor& x, const Tensor& y, const Tensor& w, const Tensor& pw, Tensor& xc, Tensor& yc,
                     Tensor& wc, Tensor& pwc) {
  check_float(op, "input", x);
  check_same_dtype(op, "target", y, x.dtype());
  if (y.shape() != x.shape())
    throw arg_error(op, str_cat("expected 'target' of the input's shape ", x.shape().str(), ", got ", y.shape().str()));
  auto expand = [&](const char* arg, const Tensor& t) -> Tensor {
    if (!t.defined()) return Tensor();
    check_same_dtype(op, arg, t, x.dtype());
    bool ok = t.dim() <= x.dim();
    for (int64_t i = 0; ok && i < t.dim(); ++i) {
      int64_t s = t.size(t.dim() - 1 - i);
      ok = s == 1 || s == x.size(x.dim() - 1 - i);
    }
    if (!ok)
      throw arg_error(op, str_cat("expected '", arg, "' broadcastable to the input's shape ", x.shape().str(), ", got ", t.shape().str()));
    return t.expand(x.shape()).contiguous();
  };
  xc = x.contiguous();
  yc = y.contiguous();
  wc = expand("weight", w);
  pwc = expand("pos_weight", pw);
}

void pointwise_forward(OpCtx& ctx, int op_id, const char* op, const Tensor& w, const Tensor& pw, const std::string& reduction,
                       double beta) {
  const Tensor &x = ctx.in(0), &y = ctx.in(1);
  Device dev = dev_of(op, ctx);
  int red = reduction_code(op, reduction);
  Tensor xc, yc, wc, pwc;
  pointwise_setup(op, x, y, w, pw, xc, yc, wc, pwc);
  Tensor out = Tensor::empty(red == kNone ? x.shape() : Dims{}, x.dtype(), dev);
  kernel<PointwiseLossFn>(op_id, dev, x.dtype())(xc, yc, wc, pwc, out, red, beta);
  ctx.set(out);
}

void pointwise_backward(OpCtx& ctx, int op_id, const char* op, const Tensor& w, const Tensor& pw, const std::string& reduction,
                        double beta) {
  const Tensor &g = ctx.in(0), &x = ctx.in(1), &y = ctx.in(2);
  Device dev = dev_of(op, ctx);
  int red = reduction_code(op, reduction);
  Tensor xc, yc, wc, pwc;
  pointwise_setup(op, x, y, w, pw, xc, yc, wc, pwc);
  check_same_dtype(op, "grad_output", g, x.dtype());
  check_shape(op, "grad_output", g, red == kNone ? x.shape() : Dims{});
  Tensor gi = Tensor::empty(x.shape(), x.dtype(), dev);
  if (gi.numel() > 0) kernel<PointwiseLossBackwardFn>(op_id, dev, x.dtype())(g.contiguous(), xc, yc, wc, pwc, gi, red, beta);
  ctx.set(gi);
}

void check_beta(const char* op, double beta) {
  if (!(beta >= 0.0)) throw arg_error(op, str_cat("beta must be >= 0, got ", beta));
}

HERON_IMPL(mse_loss, MseLossAttrs) { pointwise_forward(ctx, OpId::mse_loss, "mse_loss", Tensor(), Tensor(), attrs.reduction, 0.0); }
HERON_IMPL(mse_loss_backward, MseLossBackwardAttrs) {
  pointwise_backward(ctx, OpId::mse_loss_backward, "mse_loss_backward", Tensor(), Tensor(), attrs.reduction, 0.0);
}
HERON_IMPL(l1_loss, L1LossAttrs) { pointwise_forward(ctx, OpId::l1_loss, "l1_loss", Tensor(), Tensor(), attrs.reduction, 0.0); }
HERON_IMPL(l1_loss_backward, L1LossBackwardAttrs) {
  pointwise_backward(ctx, OpId::l1_loss_backward, "l1_loss_backward", Tensor(), Tensor(), attrs.reduction, 0.0);
}
HERON_IMPL(smooth_l1_loss, SmoothL1LossAttrs) {
  check_beta("smooth_l1_loss", attrs.beta);
  pointwise_forward(ctx, OpId::smooth_l1_loss, "smooth_l1_loss", Tensor(), Tensor(), attrs.reduction, attrs.beta);
}
HERON_IMPL(smooth_l1_loss_backward, SmoothL1LossBackwardAttrs) {
  check_beta("smooth_l1_loss_backward", attrs.beta);
  pointwise_backward(ctx, OpId::smooth_l1_loss_backward, "smooth_l1_loss_backward", Tensor(), Tensor(), attrs.reduction, attrs.beta);
}
HERON_IMPL(binary_cross_entropy, BinaryCrossEntropyAttrs) {
  pointwise_forward(ctx, OpId::binary_cross_entropy, "binary_cross_entropy", ctx.in(2), Tensor(), attrs.reduction, 0.0);
}
HERON_IMPL(binary_cross_entropy_backward, BinaryCrossEntropyBackwardAttrs) {
  pointwise_backward(ctx, OpId::binary_cross_entropy_backward, "binary_cross_entropy_backward", ctx.in(3), Tensor(), attrs.reduction,
                     0.0);
}
HERON_IMPL(binary_cross_entropy_with_logits, BinaryCrossEntropyWithLogitsAttrs) {
  pointwise_forward(ctx, OpId::binary_cross_entropy_with_logits, "binary_cross_entropy_with_logits", ctx.in(2), ctx.in(3),
                    attrs.reduction, 0.0);
}
HERON_IMPL(binary_cross_entropy_with_logits_backward, BinaryCrossEntropyWithLogitsBackwardAttrs) {
  pointwise_backward(ctx, OpId::binary_cross_entropy_with_logits_backward, "binary_cross_entropy_with_logits_backward", ctx.in(3),
                     ctx.in(4), attrs.reduction, 0.0);
}

}  // namespace
}  // namespace heron
