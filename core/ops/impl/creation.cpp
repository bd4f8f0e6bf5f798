// Creation ops: empty, zeros, ones, full, arange, linspace, eye, empty_like, zeros_like,
// ones_like, full_like. Device-generic: allocation plus the device's fill / arange / linspace
// kernels.
#include <cmath>
#include <cstdint>

#include "core/ops/impl/common.h"
#include "core/ops/impl/creation_kernels.h"

namespace heron {
namespace {
using namespace ops;

Error arg_error(const char* op, const std::string& msg) { return Error(ErrorCode::InvalidArgument, str_cat(op, ": ", msg), op); }

void check_size(const char* op, const Dims& size) {
  for (int64_t s : size)
    if (s < 0) throw arg_error(op, str_cat("negative dimension ", s, " in size ", size.str()));
}

Tensor filled(const char* op, const Dims& size, DType dt, Device dev, const Scalar& v) {
  check_size(op, size);
  Tensor t = Tensor::empty(size, dt, dev);
  fill_tensor(t, v);
  return t;
}

HERON_IMPL(empty, EmptyAttrs) {
  check_size("empty", attrs.size);
  ctx.set(Tensor::empty(attrs.size, attrs.dtype, creation_device(attrs.device)));
}
HERON_IMPL(zeros, ZerosAttrs) { ctx.set(filled("zeros", attrs.size, attrs.dtype, creation_device(attrs.device), Scalar(int64_t{0}))); }
HERON_IMPL(ones, OnesAttrs) { ctx.set(filled("ones", attrs.size, attrs.dtype, creation_device(attrs.device), Scalar(int64_t{1}))); }
HERON_IMPL(full, FullAttrs) {
  DType dt = attrs.dtype ? *attrs.dtype : attrs.fill_value.natural_dtype();
  ctx.set(filled("full", attrs.size, dt, creation_device(attrs.device), attrs.fill_value));
}

HERON_IMPL(empty_like, EmptyLikeAttrs) {
  const Tensor& x = ctx.in(0);
  ctx.set(Tensor::empty(x.shape(), attrs.dtype ? *attrs.dtype : x.dtype(), x.device()));
}
HERON_IMPL(zeros_like, ZerosLikeAttrs) {
  const Tensor& x = ctx.in(0);
  ctx.set(filled("zeros_like", x.shape(), attrs.dtype ? *attrs.dtype : x.dtype(), x.device(), Scalar(int64_t{0})));
}
HERON_IMPL(ones_like, OnesLikeAttrs) {
  const Tensor& x = ctx.in(0);
  ctx.set(filled("ones_like", x.shape(), attrs.dtype ? *attrs.dtype : x.dtype(), x.device(), Scalar(int64_t{1})));
}
HERON_IMPL(full_like, FullLikeAttrs) {
  const Tensor& x = ctx.in(0);
  ctx.set(filled("full_like", x.shape(), attrs.dtype ? *attrs.dtype : x.dtype(), x.device(), attrs.fill_value));
}

// ------------------------------------------------------------------ arange
HERON_IMPL(arange, ArangeAttrs) {
  const char* op = "arange";
  const Scalar &start = attrs.start, &end = attrs.end, &step = attrs.step;
  bool all_int = !start.is_float() && !end.is_float() && !step.is_float();
  DType dt = attrs.dtype ? *attrs.dtype : (all_int ? DType::Int64 : kDefaultFloat);
  if (dt == DType::Bool) throw Error(ErrorCode::TypeError, "arange: dtype bool is not supported", op);
  int64_t count = 0;
  if (all_int) {
    int64_t s = start.i, e = end.i, st = step.i;
    if (st == 0) throw arg_error(op, "step must be nonzero");
    if ((e > s && st < 0) || (e < s && st > 0))
      throw arg_error(op, str_cat("the bounds start=", s, ", end=", e, " are inconsistent with the sign of step=", st));
    uint64_t span = e > s ? static_cast<uint64_t>(e) - static_cast<uint64_t>(s) : static_cast<uint64_t>(s) - static_cast<uint64_t>(e);
    uint64_t ast = st > 0 ? static_cast<uint64_t>(st) : uint64_t{0} - static_cast<uint64_t>(st);
    uint64_t c = span / ast + (span % ast != 0 ? 1 : 0);
    if (c > static_cast<uint64_t>(INT64_MAX))
      throw arg_error(op, str_cat("the range from ", s, " to ", e, " by ", st, " is too long"));
    count = static_cast<int64_t>(c);
  } else {
    double s = start.to_double(), e = end.to_double(), st = step.to_double();
    if (!std::isfinite(s) || !std::isfinite(e) || !std::isfinite(st))
      throw arg_error(op, str_cat("start=", start.str(), ", end=", end.str(), " and step=", step.str(), " must be finite"));
    if (st == 0) throw arg_error(op, "step must be nonzero");
    if ((e > s && st < 0) || (e < s && st > 0))
      throw arg_error(op, str_cat("the bounds start=", start.str(), ", end=", end.str(), " are inconsistent with the sign of step=",
                                  step.str()));
    double c = std::ceil((e - s) / st);
    if (c > 9.0e18) throw arg_error(op, str_cat("the range from ", start.str(), " to ", end.str(), " by ", step.str(), " is too long"));
    count = static_cast<int64_t>(c);
  }
  Device dev = creation_device(attrs.device);
  Tensor out = Tensor::empty(Dims{count}, dt, dev);
  if (count > 0) kernel<ArangeFn>(OpId::arange, dev, dt)(out, start, step);
  ctx.set(out);
}

// ------------------------------------------------------------------ linspace
HERON_IMPL(linspace, LinspaceAttrs) {
  const char* op = "linspace";
  if (attrs.steps < 0) throw arg_error(op, str_cat("steps must be non-negative, got ", attrs.steps));
  if (attrs.dtype == DType::Bool) throw Error(ErrorCode::TypeError, "linspace: dtype bool is not supported", op);
  Device dev = creation_device(attrs.device);
  Tensor out = Tensor::empty(Dims{attrs.steps}, attrs.dtype, dev);
  if (attrs.steps == 1) fill_tensor(out, Scalar(attrs.start));
  else if (attrs.steps > 1) kernel<LinspaceFn>(OpId::linspace, dev, attrs.dtype)(out, attrs.start, attrs.end);
  ctx.set(out);
}

// ------------------------------------------------------------------ eye
HERON_IMPL(eye, EyeAttrs) {
  const char* op = "eye";
  int64_t n = attrs.n, m = attrs.m ? *attrs.m : attrs.n;
  if (n < 0 || m < 0) throw arg_error(op, str_cat("n and m must be non-negative, got n=", n, ", m=", m));
  Tensor out = filled(op, Dims{n, m}, attrs.dtype, creation_device(attrs.device), Scalar(int64_t{0}));
  int64_t k = std::min(n, m);
  if (k > 0) fill_tensor(Tensor::make(out.storage(), out.dtype(), Dims{k}, Dims{m + 1}, 0), Scalar(int64_t{1}));
  ctx.set(out);
}

}  // namespace
}  // namespace heron
