// Reductions (sum, mean, prod, amax, amin, argmax, argmin, var, std, logsumexp, all, any), scans
// (cumsum, cumprod) and softmax / log_softmax. Device-generic: validation, output shape and
// dtype rules (PyTorch's) here; the element work is the device's kernel (see impl/reduce.h).
#include "core/ops/impl/reduce.h"

#include "core/ops/impl/common.h"

namespace heron {
namespace {
using namespace ops;

struct Geom {
  Dims mask;       // 1 where reduced (one entry per input dim; one entry for a 0-d input)
  Dims out_shape;  // keepdim or squeezed
  int64_t count = 1;
};

// dim none (or empty, like PyTorch) reduces every dim.
Geom reduce_geom(const char* op, const Tensor& x, const std::optional<Dims>& dim, bool keepdim) {
  Geom g;
  const int64_t nd = x.dim();
  g.mask = Dims(std::max<int64_t>(nd, 1), 0);
  if (!dim || dim->empty()) {
    for (auto& m : g.mask) m = 1;
  } else {
    std::vector<bool> m = dims_mask(op, *dim, nd);
    for (size_t i = 0; i < m.size(); ++i) g.mask[i] = m[i];
  }
  for (int64_t d = 0; d < nd; ++d) {
    if (g.mask[d]) {
      g.count *= x.shape()[d];
      if (keepdim) g.out_shape.push_back(1);
    } else {
      g.out_shape.push_back(x.shape()[d]);
    }
  }
  return g;
}

Tensor run_reduce(int op_id, const Tensor& x, const Geom& g, DType out_dtype, Device dev, double correction = 0.0) {
  auto fn = kernel<ReduceKernelFn>(op_id, dev, x.dtype());
  Tensor out = Tensor::empty(g.out_shape, out_dtype, dev);
  ReduceArgs a{x, out, g.mask, correction};
  if (out.numel() > 0) fn(a);
  return out;
}

// Errors for extremum reductions over zero elements (PyTorch refuses them too).
void check_nonempty(const char* op, const Tensor& x, const Geom& g) {
  if (g.count != 0) return;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (g.mask[d] && x.shape()[d] == 0)
      throw Error(ErrorCode::InvalidArgument,
                  str_cat(op, ": cannot reduce over dim ", d, " of size 0 (input shape ", x.shape().str(),
                          "): the reduction of zero elements has no identity"),
                  op);
}

void require_float(const char* op, DType t, const char* extra = "") {
  if (!is_floating(t))
    throw Error(ErrorCode::TypeError,
                str_cat(op, ": expected a floating-point input, got ", dtype_name(t), extra), op);
}

// sum / prod: int and bool accumulate in int64; `dtype` casts the input first and sets the result.
Tensor sum_like(int op_id, const char* op, const Tensor& x0, const std::optional<Dims>& dim, bool keepdim,
                const std::optional<DType>& dtype) {
  Device dev = common_device(op, &x0, 1);
  Geom g = reduce_geom(op, x0, dim, keepdim);
  Tensor x = dtype ? x0.to(*dtype) : x0;
  DType natural = is_floating(x.dtype()) ? x.dtype() : DType::Int64;
  Tensor out = run_reduce(op_id, x, g, natural, dev);
  if (dtype && *dtype != natural) out = out.to(*dtype);
  return out;
}

HERON_IMPL(sum, SumAttrs) { ctx.set(sum_like(OpId::sum, "sum", ctx.in(0), attrs.dim, attrs.keepdim, attrs.dtype)); }
HERON_IMPL(prod, ProdAttrs) { ctx.set(sum_like(OpId::prod, "prod", ctx.in(0), attrs.dim, attrs.keepdim, attrs.dtype)); }

HERON_IMPL(mean, MeanAttrs) {
  const Tensor& x0 = ctx.in(0);
  Device dev = common_device("mean", &x0, 1);
  if (attrs.dtype && !is_floating(*attrs.dtype))
    throw Error(ErrorCode::TypeError,
                str_cat("mean(): could not infer output dtype. Optional dtype must be a floating-point dtype, got ",
                        dtype_name(*attrs.dtype)),
                "mean");
  if (!attrs.dtype && !is_floating(x0.dtype()))
    throw Error(ErrorCode::TypeError,
                str_cat("mean(): could not infer output dtype. Input dtype must be a floating-point dtype, got ",
                        dtype_name(x0.dtype()), " (pass dtype= to compute the mean in a floating dtype)"),
                "mean");
  Geom g = reduce_geom("mean", x0, attrs.dim, attrs.keepdim);
  Tensor x = attrs.dtype ? x0.to(*attrs.dtype) : x0;
  ctx.set(run_reduce(OpId::mean, x, g, x.dtype(), dev));
}

Tensor extremum(int op_id, const char* op, const Tensor& x, const std::optional<Dims>& dim, bool keepdim) {
  Device dev = common_device(op, &x, 1);
  Geom g = reduce_geom(op, x, dim, keepdim);
  check_nonempty(op, x, g);
  return run_reduce(op_id, x, g, x.dtype(), dev);
}

HERON_IMPL(amax, AmaxAttrs) { ctx.set(extremum(OpId::amax, "amax", ctx.in(0), attrs.dim, attrs.keepdim)); }
HERON_IMPL(amin, AminAttrs) { ctx.set(extremum(OpId::amin, "amin", ctx.in(0), attrs.dim, attrs.keepdim)); }

Tensor arg_extremum(int op_id, const char* op, const Tensor& x, const std::optional<int64_t>& dim, bool keepdim) {
  Device dev = common_device(op, &x, 1);
  if (x.dtype() == DType::Bool)
    throw Error(ErrorCode::TypeError, str_cat(op, ": bool input is not supported (cast it to an integer dtype first)"), op);
  Geom g;
  if (dim) {
    g = reduce_geom(op, x, Dims{*dim}, keepdim);
  } else {
    g = reduce_geom(op, x, std::nullopt, keepdim);
    if (x.numel() == 0)
      throw Error(ErrorCode::InvalidArgument,
                  str_cat(op, ": cannot take the index of an extremum of an empty tensor (shape ", x.shape().str(), ")"), op);
  }
  check_nonempty(op, x, g);
  return run_reduce(op_id, x, g, DType::Int64, dev);
}

HERON_IMPL(argmax, ArgmaxAttrs) { ctx.set(arg_extremum(OpId::argmax, "argmax", ctx.in(0), attrs.dim, attrs.keepdim)); }
HERON_IMPL(argmin, ArgminAttrs) { ctx.set(arg_extremum(OpId::argmin, "argmin", ctx.in(0), attrs.dim, attrs.keepdim)); }

Tensor var_like(int op_id, const char* op, const Tensor& x, const std::optional<Dims>& dim, double correction, bool keepdim) {
  Device dev = common_device(op, &x, 1);
  require_float(op, x.dtype(), " (var and std only support floating-point dtypes)");
  Geom g = reduce_geom(op, x, dim, keepdim);
  return run_reduce(op_id, x, g, x.dtype(), dev, correction);
}

HERON_IMPL(var, VarAttrs) { ctx.set(var_like(OpId::var, "var", ctx.in(0), attrs.dim, attrs.correction, attrs.keepdim)); }
HERON_IMPL(std, StdAttrs) { ctx.set(var_like(OpId::std, "std", ctx.in(0), attrs.dim, attrs.correction, attrs.keepdim)); }

// Integer and bool inputs compute in the default float dtype, like PyTorch.
HERON_IMPL(logsumexp, LogsumexpAttrs) {
  const Tensor& x0 = ctx.in(0);
  Device dev = common_device("logsumexp", &x0, 1);
  Geom g = reduce_geom("logsumexp", x0, attrs.dim, attrs.keepdim);
  Tensor x = is_floating(x0.dtype()) ? x0 : x0.to(kDefaultFloat);
  ctx.set(run_reduce(OpId::logsumexp, x, g, x.dtype(), dev));
}

HERON_IMPL(all, AllAttrs) {
  const Tensor& x = ctx.in(0);
  Device dev = common_device("all", &x, 1);
  Geom g = reduce_geom("all", x, attrs.dim, attrs.keepdim);
  ctx.set(run_reduce(OpId::all, x, g, DType::Bool, dev));
}
HERON_IMPL(any, AnyAttrs) {
  const Tensor& x = ctx.in(0);
  Device dev = common_device("any", &x, 1);
  Geom g = reduce_geom("any", x, attrs.dim, attrs.keepdim);
  ctx.set(run_reduce(OpId::any, x, g, DType::Bool, dev));
}

// ------------------------------------------------------------------ scans
Tensor scan(int op_id, const char* op, const Tensor& x0, int64_t dim_in, const std::optional<DType>& dtype) {
  Device dev = common_device(op, &x0, 1);
  int64_t dim = wrap_dim(dim_in, x0.dim());
  Tensor x = dtype ? x0.to(*dtype) : x0;
  DType natural = is_floating(x.dtype()) ? x.dtype() : DType::Int64;
  auto fn = kernel<ScanKernelFn>(op_id, dev, x.dtype());
  Tensor out = Tensor::empty(x.shape(), natural, dev);
  if (out.numel() > 0) fn(x, out, dim);
  if (dtype && *dtype != natural) out = out.to(*dtype);
  return out;
}

HERON_IMPL(cumsum, CumsumAttrs) { ctx.set(scan(OpId::cumsum, "cumsum", ctx.in(0), attrs.dim, attrs.dtype)); }
HERON_IMPL(cumprod, CumprodAttrs) { ctx.set(scan(OpId::cumprod, "cumprod", ctx.in(0), attrs.dim, attrs.dtype)); }

// ------------------------------------------------------------------ softmax
Tensor softmax_like(int op_id, const char* op, const Tensor& x0, int64_t dim_in, const std::optional<DType>& dtype, bool log) {
  Device dev = common_device(op, &x0, 1);
  int64_t dim = wrap_dim(dim_in, x0.dim());
  if (dtype) require_float(op, *dtype, " as dtype");
  else require_float(op, x0.dtype(), " (pass dtype= to compute in a floating dtype)");
  Tensor x = dtype ? x0.to(*dtype) : x0;
  auto fn = kernel<SoftmaxKernelFn>(op_id, dev, x.dtype());
  Tensor out = Tensor::empty(x.shape(), x.dtype(), dev);
  if (out.numel() > 0) fn(x, out, dim, log);
  return out;
}

HERON_IMPL(softmax, SoftmaxAttrs) { ctx.set(softmax_like(OpId::softmax, "softmax", ctx.in(0), attrs.dim, attrs.dtype, false)); }
HERON_IMPL(log_softmax, LogSoftmaxAttrs) {
  ctx.set(softmax_like(OpId::log_softmax, "log_softmax", ctx.in(0), attrs.dim, attrs.dtype, true));
}

}  // namespace
}  // namespace heron
