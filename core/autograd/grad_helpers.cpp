// Gradient helpers used by the formulas in the schema. Everything here runs with grad mode off and
// is composed of ops, so it works on every device that has the ops' kernels.
#include "core/autograd/grad_helpers.h"

#include "core/ops/impl/einsum.h"

#include <cmath>
#include <numeric>

namespace heron {
namespace autograd {
using namespace ops;

namespace {
Dims norm_dims(const std::optional<Dims>& dim, int64_t ndim) {
  Dims out;
  if (!dim || dim->empty()) {
    for (int64_t i = 0; i < ndim; ++i) out.push_back(i);
    return out;
  }
  for (int64_t d : *dim) out.push_back(wrap_dim(d, std::max<int64_t>(ndim, 1)));
  std::sort(out.begin(), out.end());
  return out;
}
SumAttrs sum_attrs(Dims dims, bool keepdim) {
  SumAttrs a;
  a.dim = std::move(dims);
  a.keepdim = keepdim;
  return a;
}
Tensor sum_keep(const Tensor& t, int64_t dim) { return sum(t, sum_attrs(Dims{dim}, true)); }
}  // namespace

void not_differentiable(const char* op, const char* why) {
  throw Error(ErrorCode::NotImplemented, str_cat("the derivative of ", op, " is not implemented ", why), op);
}

Tensor sc(double v) {
  Tensor t = Tensor::empty(Dims{}, DType::Float64, DeviceRegistry::get().host());
  *t.data<double>() = v;
  t.set_wrapped_number(true);
  return t;
}

Tensor zeros_meta(const Dims& shape, DType dtype, Device device) {
  ZerosAttrs a;
  a.size = shape;
  a.dtype = dtype;
  a.device = device_str(device);
  return zeros(a);
}

Tensor scale(const Tensor& g, const Scalar& s) {
  if (s.to_double() == 1.0) return g;
  return mul(g, sc(s.to_double()));
}

Tensor unreduce(const Tensor& g, const Dims& shape, const std::optional<Dims>& dim, bool keepdim) {
  const int64_t nd = static_cast<int64_t>(shape.size());
  Tensor r = g;
  if (!keepdim && nd > 0) {
    Dims keep_shape = shape;
    for (int64_t d : norm_dims(dim, nd)) keep_shape[d] = 1;
    r = r.reshape(keep_shape);
  }
  return r.expand(shape);
}

Tensor loss_grad_elementwise(const Tensor& g, const Tensor& x, const std::string& reduction) {
  if (reduction == "none") return g;
  Tensor e = unreduce(g, x.shape(), std::nullopt, false);
  if (reduction == "mean" && x.numel() > 0) e = mul(e, sc(1.0 / static_cast<double>(x.numel())));
  return e;
}

int64_t reduced_count(const Dims& shape, const std::optional<Dims>& dim) {
  int64_t n = 1;
  for (int64_t d : norm_dims(dim, static_cast<int64_t>(shape.size()))) n *= shape.size() ? shape[d] : 1;
  return n;
}

Tensor relu_backward(const Tensor& g, const Tensor& result) { return where(gt(result, sc(0)), g, sc(0)); }

Tensor gelu_backward(const Tensor& g, const Tensor& x, const std::string& approximate) {
  if (approximate == "tanh") {
    const double k = std::sqrt(2.0 / M_PI);
    Tensor x2 = square(x);
    Tensor inner = mul(mul(x, add(mul(x2, sc(0.044715)), sc(1.0))), sc(k));
    Tensor t = tanh(inner);
    Tensor dinner = mul(add(mul(x2, sc(3 * 0.044715)), sc(1.0)), sc(k));
    Tensor d = add(mul(add(t, sc(1.0)), sc(0.5)), mul(mul(mul(x, sc(0.5)), sub(sc(1.0), square(t))), dinner));
    return mul(g, d);
  }
  Tensor cdf = mul(add(erf(mul(x, sc(M_SQRT1_2))), sc(1.0)), sc(0.5));
  Tensor pdf = mul(exp(mul(square(x), sc(-0.5))), sc(0.5 * M_2_SQRTPI * M_SQRT1_2));
  return mul(g, add(cdf, mul(x, pdf)));
}

Tensor silu_backward(const Tensor& g, const Tensor& x) {
  Tensor s = sigmoid(x);
  return mul(g, mul(s, add(mul(x, sub(sc(1.0), s)), sc(1.0))));
}

Tensor softplus_backward(const Tensor& g, const Tensor& x, double beta, double threshold) {
  Tensor bx = mul(x, sc(beta));
  return where(gt(bx, sc(threshold)), g, mul(g, sigmoid(bx)));
}

Tensor erf_backward(const Tensor& g, const Tensor& x) { return mul(g, mul(exp(neg(square(x))), sc(M_2_SQRTPI))); }

Tensor pow_backward_input(const Tensor& g, const Tensor& x, const Tensor& e) {
  // e * x**(e-1), with 0 where e == 0 (so 0**0 does not give nan)
  Tensor d = mul(e, pow(x, sub(e, sc(1.0))));
  return mul(g, where(eq(e, sc(0.0)), sc(0.0), d));
}

Tensor pow_backward_exponent(const Tensor& g, const Tensor& x, const Tensor& result) {
  // result * log(x); PyTorch's convention: 0 where x == 0 and the exponent is >= 0
  Tensor d = mul(result, log(x));
  return mul(g, where(eq(x, sc(0.0)), sc(0.0), d));
}

Tensor minmax_backward(const Tensor& g, const Tensor& self, const Tensor& other, bool is_max) {
  // The larger (smaller) operand takes the gradient; ties split it evenly, as PyTorch does.
  Tensor wins = is_max ? gt(self, other) : lt(self, other);
  Tensor ties = eq(self, other);
  return add(where(wins, g, sc(0.0)), where(ties, mul(g, sc(0.5)), sc(0.0)));
}

Tensor clamp_backward(const Tensor& g, const Tensor& x, const std::optional<Scalar>& lo, const std::optional<Scalar>& hi) {
  Tensor r = g;
  if (lo) r = where(ge(x, sc(lo->to_double())), r, sc(0.0));
  if (hi) r = where(le(x, sc(hi->to_double())), r, sc(0.0));
  return r;
}

Tensor prod_backward(const Tensor& g, const Tensor& x, const Tensor& result, const std::optional<Dims>& dim, bool keepdim) {
  // prod of the others = result / x where x != 0; where x == 0 it is the product of the nonzero
  // others if x is the only zero in its slice, else 0.
  const Dims& shape = x.shape();
  Tensor ge = unreduce(g, shape, dim, keepdim);
  Tensor re = unreduce(result, shape, dim, keepdim);
  Tensor is_zero = eq(x, sc(0.0));
  SumAttrs sa;
  sa.dim = dim;
  sa.keepdim = keepdim;
  ProdAttrs pa;
  pa.dim = dim;
  pa.keepdim = keepdim;
  Tensor nz = unreduce(sum(cast(is_zero, CastAttrs{DType::Int64}), sa), shape, dim, keepdim);
  Tensor p1 = unreduce(prod(where(is_zero, sc(1.0), x), pa), shape, dim, keepdim);
  Tensor others = where(is_zero, where(eq(nz, sc(1.0)), p1, sc(0.0)), div(re, where(is_zero, sc(1.0), x)));
  return mul(ge, others);
}

Tensor amax_backward(const Tensor& g, const Tensor& x, const Tensor& result, const std::optional<Dims>& dim, bool keepdim) {
  const Dims& shape = x.shape();
  Tensor mask = cast(eq(x, unreduce(result, shape, dim, keepdim)), CastAttrs{x.dtype()});
  SumAttrs sa;
  sa.dim = dim;
  sa.keepdim = true;
  Tensor count = sum(mask, sa);
  return div(mul(unreduce(g, shape, dim, keepdim), mask), count);
}

Tensor var_backward(const Tensor& g, const Tensor& x, const std::optional<Dims>& dim, double correction, bool keepdim) {
  const Dims& shape = x.shape();
  MeanAttrs ma;
  ma.dim = dim;
  ma.keepdim = true;
  Tensor centered = sub(x, mean(x, ma));
  double n = static_cast<double>(reduced_count(shape, dim)) - correction;
  return mul(unreduce(g, shape, dim, keepdim), mul(centered, sc(2.0 / n)));
}

Tensor std_backward(const Tensor& g, const Tensor& x, const Tensor& result, const std::optional<Dims>& dim,
                    double correction, bool keepdim) {
  Tensor gv = div(g, mul(result, sc(2.0)));
  return var_backward(gv, x, dim, correction, keepdim);
}

Tensor logsumexp_backward(const Tensor& g, const Tensor& x, const Tensor& result, const std::optional<Dims>& dim,
                          bool keepdim) {
  const Dims& shape = x.shape();
  return mul(unreduce(g, shape, dim, keepdim), exp(sub(x, unreduce(result, shape, dim, keepdim))));
}

Tensor cumsum_backward(const Tensor& g, int64_t dim) {
  if (g.dim() == 0) return g;
  FlipAttrs fa;
  fa.dims = Dims{dim};
  CumsumAttrs ca;
  ca.dim = dim;
  return flip(cumsum(flip(g, fa), ca), fa);
}

Tensor cumprod_backward(const Tensor& g, const Tensor& x, const Tensor& result, int64_t dim) {
  // d out_k / d x_i = out_k / x_i for k >= i (x_i != 0): reverse cumsum of g*out, divided by x.
  // Inputs containing zeros fall back to an exact O(n^2) evaluation along dim.
  if (g.dim() == 0) return g;
  Tensor any_zero = ops::any(eq(x, sc(0.0)));
  if (!*any_zero.to(host_device()).data<bool>()) return div(cumsum_backward(mul(g, result), dim), x);
  const int64_t d = wrap_dim(dim, x.dim());
  const int64_t n = x.shape()[d];
  std::vector<Tensor> parts;
  for (int64_t i = 0; i < n; ++i) {
    // grad_i = sum_{k>=i} g_k * prod_{j<=k, j!=i} x_j
    Tensor xi_one = x.clone();
    xi_one.select(d, i).copy_from(ops::ones_like(x.select(d, i)));
    CumprodAttrs cp;
    cp.dim = d;
    Tensor c = cumprod(xi_one, cp);
    SliceAttrs sl;
    sl.dim = d;
    sl.start = i;
    Tensor term = mul(slice(g, sl), slice(c, sl));
    parts.push_back(sum(term, sum_attrs(Dims{d}, true)));
  }
  ConcatAttrs ca;
  ca.dim = d;
  return concat(parts, ca);
}

std::vector<Tensor> matmul_backward(const Tensor& g, const Tensor& a, const Tensor& b, bool need_a, bool need_b) {
  // Promote 1-d operands as matmul does, then reduce over broadcast batch dims (the engine's sum_to).
  Tensor a2 = a.dim() == 1 ? a.unsqueeze(0) : a;
  Tensor b2 = b.dim() == 1 ? b.unsqueeze(1) : b;
  Tensor g2 = g;
  if (a.dim() == 1 && b.dim() == 1) g2 = g.reshape(Dims{1, 1});
  else if (a.dim() == 1) g2 = g.unsqueeze(g.dim() - 1);
  else if (b.dim() == 1) g2 = g.unsqueeze(g.dim());
  std::vector<Tensor> out(2);
  if (need_a) {
    Tensor ga = matmul(g2, b2.transpose(-1, -2));
    if (a.dim() == 1) ga = ga.squeeze(Dims{ga.dim() - 2});
    out[0] = ga;
  }
  if (need_b) {
    Tensor gb = matmul(a2.transpose(-1, -2), g2);
    if (b.dim() == 1) gb = gb.squeeze(Dims{gb.dim() - 1});
    out[1] = gb;
  }
  return out;
}

Tensor softmax_backward(const Tensor& g, const Tensor& y, int64_t dim) {
  return mul(y, sub(g, sum_keep(mul(g, y), dim)));
}

Tensor log_softmax_backward(const Tensor& g, const Tensor& y, int64_t dim) {
  return sub(g, mul(exp(y), sum_keep(g, dim)));
}

Tensor permute_backward(const Tensor& g, const Dims& dims) {
  Dims inv(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) inv[wrap_dim(dims[i], static_cast<int64_t>(dims.size()))] = static_cast<int64_t>(i);
  return g.permute(inv);
}

Tensor slice_backward(const Tensor& g, const Dims& shape, DType dt, Device dev, const SliceAttrs& a) {
  Tensor z = zeros_meta(shape, dt, dev);
  slice(z, a).copy_from(g);
  return z;
}

Tensor select_backward(const Tensor& g, const Dims& shape, DType dt, Device dev, int64_t dim, int64_t index) {
  Tensor z = zeros_meta(shape, dt, dev);
  z.select(dim, index).copy_from(g);
  return z;
}

Tensor as_strided_backward(const Tensor& g, const Tensor& x, const AsStridedAttrs& a) {
  // Scatter-add g into x's storage positions, then read x's geometry back (x must not overlap itself).
  int64_t extent = x.offset() + 1;
  for (int64_t i = 0; i < x.dim(); ++i) extent += (x.shape()[i] - 1) * x.strides()[i];
  int64_t off = a.storage_offset ? *a.storage_offset : x.offset();
  for (size_t i = 0; i < a.size.size(); ++i) extent = std::max(extent, off + (a.size[i] - 1) * a.stride[i] + 1);
  ArangeAttrs ar;
  ar.end = Scalar(extent);
  ar.dtype = DType::Int64;
  ar.device = device_str(x.device());
  Tensor pos = arange(ar);
  Tensor idx = pos.as_strided(a.size, a.stride, off).reshape(Dims{-1});
  Tensor buf = zeros_meta(Dims{extent}, g.dtype(), g.device());
  IndexPut_Attrs ip;
  ip.accumulate = true;
  index_put_(buf, g.contiguous().reshape(Dims{-1}), {idx}, ip);
  return buf.as_strided(x.shape(), x.strides(), x.offset()).contiguous();
}

std::vector<Tensor> concat_backward(const Tensor& g, const std::vector<Dims>& shapes, int64_t dim, size_t first) {
  std::vector<Tensor> out;
  int64_t start = 0;
  for (size_t i = first; i < shapes.size(); ++i) {
    const Dims& s = shapes[i];
    if (s.size() == 1 && s[0] == 0 && g.dim() > 1) { out.push_back(Tensor()); continue; }  // legacy empty operand
    int64_t d = wrap_dim(dim, static_cast<int64_t>(s.size()));
    out.push_back(g.slice(d, start, start + s[d], 1));
    start += s[d];
  }
  return out;
}

std::vector<Tensor> stack_backward(const Tensor& g, size_t n, int64_t dim) {
  std::vector<Tensor> out;
  int64_t d = wrap_dim(dim, g.dim());
  for (size_t i = 0; i < n; ++i) out.push_back(g.select(d, static_cast<int64_t>(i)));
  return out;
}

Tensor gather_backward(const Tensor& g, const Dims& shape, DType dt, Device dev, const Tensor& index, int64_t dim) {
  ScatterAddAttrs a;
  a.dim = dim;
  return scatter_add(zeros_meta(shape, dt, dev), index, g, a);
}

Tensor index_select_backward(const Tensor& g, const Dims& shape, DType dt, Device dev, const Tensor& index, int64_t dim) {
  Tensor z = zeros_meta(shape, dt, dev);
  if (shape.empty()) return add(z, sum(g));
  int64_t d = wrap_dim(dim, static_cast<int64_t>(shape.size()));
  // index along dim d: move d to the front, index_put_ with accumulate, move back.
  Dims perm;
  perm.push_back(d);
  for (int64_t i = 0; i < static_cast<int64_t>(shape.size()); ++i)
    if (i != d) perm.push_back(i);
  Tensor zt = z.permute(perm);
  IndexPut_Attrs ip;
  ip.accumulate = true;
  index_put_(zt, g.permute(perm), {index.reshape(Dims{-1})}, ip);
  return z;
}

Tensor take_along_dim_backward(const Tensor& g, const Dims& shape, DType dt, Device dev, const Tensor& indices,
                               const std::optional<int64_t>& dim) {
  if (!dim) {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    Tensor flat = gather_backward(g.reshape(Dims{-1}), Dims{n}, dt, dev, indices.reshape(Dims{-1}), 0);
    return flat.reshape(shape);
  }
  // indices broadcast against input on the other dims: expand them to g's shape.
  return gather_backward(g, shape, dt, dev, indices.expand(g.shape()), *dim);
}

Tensor index_backward(const Tensor& g, const Dims& shape, DType dt, Device dev, const std::vector<Tensor>& indices) {
  Tensor z = zeros_meta(shape, dt, dev);
  IndexPut_Attrs ip;
  ip.accumulate = true;
  index_put_(z, g, indices, ip);
  return z;
}

Tensor pad_backward(const Tensor& g, const Dims& shape, const PadAttrs& a) {
  // Pad a tensor of flat source indices the same way: each output position then names the input
  // element it came from (-1 for constant fill), and the gradient is a scatter-add.
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  ArangeAttrs ar;
  ar.end = Scalar(n);
  ar.dtype = DType::Int64;
  ar.device = device_str(g.device());
  Tensor src = arange(ar).reshape(shape);
  PadAttrs pa = a;
  pa.value = -1.0;
  Tensor map = pad(src, pa).reshape(Dims{-1});
  Tensor gf = g.contiguous().reshape(Dims{-1});
  Tensor valid = ge(map, sc(0.0));
  Tensor z = zeros_meta(Dims{n + 1}, g.dtype(), g.device());
  // Send the constant-fill positions to a spare slot at n.
  Tensor target = where(valid, map, Tensor(sc(static_cast<double>(n))).to(DType::Int64));
  IndexPut_Attrs ip;
  ip.accumulate = true;
  index_put_(z, gf, {target}, ip);
  return z.slice(0, 0, n, 1).reshape(shape);
}

Tensor sort_backward(const Tensor& g, const Dims& shape, DType dt, Device dev, const Tensor& indices, int64_t dim) {
  if (shape.empty()) return g.reshape(shape);
  ScatterAttrs a;
  a.dim = dim;
  return scatter(zeros_meta(shape, dt, dev), indices, g, a);
}

Tensor scatter_backward_input(const Tensor& g, const Tensor& index, const ScatterAttrs& a) {
  if (a.reduce) not_differentiable("scatter", "with a reduce mode");
  ScatterAttrs s;
  s.dim = a.dim;
  return scatter(g, index, zeros_meta(index.shape(), g.dtype(), g.device()), s);
}

Tensor roll_backward(const Tensor& g, const RollAttrs& a) {
  RollAttrs r = a;
  for (auto& s : r.shifts) s = -s;
  return roll(g, r);
}

std::vector<Tensor> einsum_backward(const Tensor& g, const std::vector<Tensor>& operands, const std::string& equation,
                                    const std::function<bool(size_t)>& needs) {
  return einsum::backward(g, operands, equation, needs);
}

// ------------------------------------------------------------------ recurrent layers
std::vector<Tensor> rnn_sequence_grad(const std::string& mode, const Tensor& input, const Tensor& hx, const Tensor& cx,
                                      const Tensor& lengths, const std::vector<Tensor>& params, const Tensor& reserve,
                                      const Tensor& grad_output, const Tensor& grad_hn, const Tensor& grad_cn, int64_t hidden_size,
                                      int64_t num_layers, const std::string& nonlinearity, bool bias, bool batch_first,
                                      double dropout, bool training, bool bidirectional, int64_t proj_size) {
  const bool lstm = mode == "lstm";
  std::vector<Tensor> g = rnn_backward(input, hx, lstm ? cx : Tensor(), lengths, reserve, grad_output, grad_hn, lstm ? grad_cn : Tensor(),
                                       params,
                                       RnnBackwardAttrs{mode, hidden_size, num_layers, nonlinearity, bias, batch_first, dropout, training,
                                                        bidirectional, proj_size});
  // g: grad_input, grad_hx, grad_cx, params...; the op's flat inputs: input, hx, [cx], lengths, params...
  std::vector<Tensor> r{g[0], hx.defined() ? g[1] : Tensor()};
  if (lstm) r.push_back(cx.defined() ? g[2] : Tensor());
  r.push_back(Tensor());  // lengths
  for (size_t i = 3; i < g.size(); ++i) r.push_back(g[i]);
  return r;
}

std::vector<Tensor> rnn_cell_grad(const std::string& mode, const Tensor& input, const Tensor& hx, const Tensor& cx, const Tensor& w_ih,
                                  const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh, const Tensor& reserve,
                                  const Tensor& grad_h, const Tensor& grad_c, const std::string& nonlinearity) {
  const bool lstm = mode == "lstm";
  const int64_t H = w_hh.size(1);
  const int64_t B = input.dim() == 1 ? 1 : input.size(0);
  const Dims st{1, B, H};
  auto as_state = [&](const Tensor& t) { return t.defined() ? t.reshape(st) : Tensor(); };
  std::vector<Tensor> params{w_ih, w_hh};
  if (b_ih.defined()) params.push_back(b_ih), params.push_back(b_hh);
  // A cell is a one-step sequence whose output is h: its gradient enters as grad_output.
  std::vector<Tensor> g = rnn_backward(input.reshape(Dims{1, B, input.size(-1)}), as_state(hx), lstm ? as_state(cx) : Tensor(), Tensor(), reserve,
                                       grad_h.reshape(st), Tensor(), lstm ? as_state(grad_c) : Tensor(), params,
                                       RnnBackwardAttrs{mode, H, 1, nonlinearity, b_ih.defined(), false, 0.0, false, false, 0});
  std::vector<Tensor> r{g[0].reshape(input.shape()), hx.defined() ? g[1].reshape(hx.shape()) : Tensor()};
  if (lstm) r.push_back(cx.defined() ? g[2].reshape(cx.shape()) : Tensor());
  for (size_t i = 3; i < g.size(); ++i) r.push_back(g[i]);
  if (!b_ih.defined()) r.push_back(Tensor()), r.push_back(Tensor());
  return r;
}

}  // namespace autograd
}  // namespace heron
