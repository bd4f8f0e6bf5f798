// Elementwise ops: unary math, binary arithmetic/comparison/logic with broadcasting and PyTorch
// type promotion, where, clamp, masked_fill. Device-generic: validation, dtype and shape
// inference, then the device's kernel (signatures in elementwise.h).
//
// Dtype rules (PyTorch's): binary ops compute in result_type(inputs) (dimensioned tensors outrank
// 0-d tensors, which outrank wrapped Python numbers of the same category, so float16 + 2.0 stays
// float16); true division, atan2 and the unary_float ops compute integers and bools in the default
// float dtype; comparisons and logical ops compute in the promoted dtype and give bool. Inputs are
// cast to the compute dtype before the kernel runs.
#include "core/ops/impl/elementwise.h"

#include "core/ops/impl/common.h"

namespace heron {
namespace {
using namespace ops;
using ew::Params;

[[noreturn]] void type_error(const char* op, const std::string& msg) {
  throw Error(ErrorCode::TypeError, str_cat(op, ": ", msg), op);
}

const Tensor& input(const OpCtx& ctx, size_t i) {
  const Tensor& t = ctx.in(i);
  if (!t.defined())
    throw Error(ErrorCode::NullHandle, str_cat(ctx.name(), ": input ", i, " is an undefined tensor"), ctx.name());
  return t;
}

// t as dtype dt on device dev (t itself when it already is).
Tensor prepare(const Tensor& t, DType dt, Device dev) {
  if (t.dtype() == dt && t.device() == dev) return t;
  Tensor r = t.to(dt);
  if (r.device() != dev) r = r.to(dev);
  return r;
}

Dims bshape(const char* op, const Dims& a, const Dims& b) {
  if (a == b) return a;
  try {
    return broadcast_shapes(a, b);
  } catch (const Error& e) {
    throw Error(e.code(), str_cat(op, ": ", e.what()), op);
  }
}

// ---------------------------------------------------------------- unary
// Same dtype in and out.
void run_unary_same(OpCtx& ctx, int op, const Params& p) {
  const Tensor& x = input(ctx, 0);
  Device dev = x.device();
  auto k = kernel<ew::UnaryKernel>(op, dev, x.dtype());
  Tensor out = Tensor::empty(x.shape(), x.dtype(), dev);
  if (out.numel()) k(out, x, p);
  ctx.set(std::move(out));
}

// Computes in dtype `dt` (casting a fresh copy and working in place on it when x has another dtype).
void run_unary_as(OpCtx& ctx, int op, DType dt, const Params& p) {
  const Tensor& x = input(ctx, 0);
  if (x.dtype() == dt) { run_unary_same(ctx, op, p); return; }
  Device dev = x.device();
  auto k = kernel<ew::UnaryKernel>(op, dev, dt);
  Tensor out = x.to(dt);  // a new tensor: safe to overwrite
  if (out.numel()) k(out, out, p);
  ctx.set(std::move(out));
}

// unary_float: integers and bools compute in the default float dtype.
void run_unary_float(OpCtx& ctx, int op, const Params& p = {}) {
  const Tensor& x = input(ctx, 0);
  run_unary_as(ctx, op, is_floating(x.dtype()) ? x.dtype() : kDefaultFloat, p);
}

// Predicates: by input dtype, bool output.
void run_unary_pred(OpCtx& ctx, int op) {
  const Tensor& x = input(ctx, 0);
  Device dev = x.device();
  auto k = kernel<ew::UnaryKernel>(op, dev, x.dtype());
  Tensor out = Tensor::empty(x.shape(), DType::Bool, dev);
  if (out.numel()) k(out, x, Params{});
  ctx.set(std::move(out));
}

void reject_bool(const OpCtx& ctx, const char* what) {
  const Tensor& x = input(ctx, 0);
  if (x.dtype() == DType::Bool) type_error(ctx.name(), str_cat(what, " is not supported for bool tensors"));
}

// floor/ceil/trunc: integers are returned unchanged (as a copy).
void run_unary_round(OpCtx& ctx, int op) {
  const Tensor& x = input(ctx, 0);
  reject_bool(ctx, "rounding");
  if (!is_floating(x.dtype())) { ctx.set(x.clone()); return; }
  run_unary_same(ctx, op, Params{});
}

HERON_IMPL(neg, NegAttrs) {
  if (input(ctx, 0).dtype() == DType::Bool)
    type_error("neg", "negation, the `-` operator, on a bool tensor is not supported; use logical_not or bitwise_not to invert a mask");
  run_unary_same(ctx, OpId::neg, Params{});
}
HERON_IMPL(abs, AbsAttrs) {
  reject_bool(ctx, "abs");
  run_unary_same(ctx, OpId::abs, Params{});
}
HERON_IMPL(sign, SignAttrs) { run_unary_same(ctx, OpId::sign, Params{}); }
HERON_IMPL(square, SquareAttrs) {
  // Like PyTorch, the square of a bool tensor is int64.
  const Tensor& x = input(ctx, 0);
  run_unary_as(ctx, OpId::square, x.dtype() == DType::Bool ? DType::Int64 : x.dtype(), Params{});
}
HERON_IMPL(relu, ReluAttrs) {
  reject_bool(ctx, "relu");
  run_unary_same(ctx, OpId::relu, Params{});
}
HERON_IMPL(bitwise_not, BitwiseNotAttrs) {
  const Tensor& x = input(ctx, 0);
  if (is_floating(x.dtype())) type_error("bitwise_not", str_cat("expected an integer or bool tensor, got ", dtype_name(x.dtype())));
  run_unary_same(ctx, OpId::bitwise_not, Params{});
}

HERON_IMPL(exp, ExpAttrs) { run_unary_float(ctx, OpId::exp); }
HERON_IMPL(expm1, Expm1Attrs) { run_unary_float(ctx, OpId::expm1); }
HERON_IMPL(log, LogAttrs) { run_unary_float(ctx, OpId::log); }
HERON_IMPL(log1p, Log1pAttrs) { run_unary_float(ctx, OpId::log1p); }
HERON_IMPL(log2, Log2Attrs) { run_unary_float(ctx, OpId::log2); }
HERON_IMPL(sqrt, SqrtAttrs) { run_unary_float(ctx, OpId::sqrt); }
HERON_IMPL(rsqrt, RsqrtAttrs) { run_unary_float(ctx, OpId::rsqrt); }
HERON_IMPL(sin, SinAttrs) { run_unary_float(ctx, OpId::sin); }
HERON_IMPL(cos, CosAttrs) { run_unary_float(ctx, OpId::cos); }
HERON_IMPL(tan, TanAttrs) { run_unary_float(ctx, OpId::tan); }
HERON_IMPL(tanh, TanhAttrs) { run_unary_float(ctx, OpId::tanh); }
HERON_IMPL(sigmoid, SigmoidAttrs) { run_unary_float(ctx, OpId::sigmoid); }
HERON_IMPL(silu, SiluAttrs) { run_unary_float(ctx, OpId::silu); }
HERON_IMPL(erf, ErfAttrs) { run_unary_float(ctx, OpId::erf); }
HERON_IMPL(reciprocal, ReciprocalAttrs) { run_unary_float(ctx, OpId::reciprocal); }
HERON_IMPL(gelu, GeluAttrs) {
  Params p;
  p.op = "gelu";
  p.approximate = attrs.approximate == "tanh" ? 1 : 0;
  run_unary_float(ctx, OpId::gelu, p);
}
HERON_IMPL(softplus, SoftplusAttrs) {
  Params p;
  p.op = "softplus";
  p.beta = attrs.beta;
  p.threshold = attrs.threshold;
  run_unary_float(ctx, OpId::softplus, p);
}

HERON_IMPL(floor, FloorAttrs) { run_unary_round(ctx, OpId::floor); }
HERON_IMPL(ceil, CeilAttrs) { run_unary_round(ctx, OpId::ceil); }
HERON_IMPL(trunc, TruncAttrs) { run_unary_round(ctx, OpId::trunc); }
HERON_IMPL(round, RoundAttrs) {
  const Tensor& x = input(ctx, 0);
  reject_bool(ctx, "rounding");
  if (!is_floating(x.dtype()) && attrs.decimals >= 0) { ctx.set(x.clone()); return; }
  Params p;
  p.op = "round";
  p.decimals = attrs.decimals;
  run_unary_same(ctx, OpId::round, p);
}

HERON_IMPL(isnan, IsnanAttrs) { run_unary_pred(ctx, OpId::isnan); }
HERON_IMPL(isinf, IsinfAttrs) { run_unary_pred(ctx, OpId::isinf); }
HERON_IMPL(isfinite, IsfiniteAttrs) { run_unary_pred(ctx, OpId::isfinite); }
HERON_IMPL(logical_not, LogicalNotAttrs) { run_unary_pred(ctx, OpId::logical_not); }

// ---------------------------------------------------------------- binary
// Computes op in dtype `compute` (inputs cast to it) into a fresh tensor of dtype `out_dtype`.
void run_binary(OpCtx& ctx, int op, DType compute, DType out_dtype, const Params& p) {
  const char* name = ctx.name();
  const Tensor& a0 = input(ctx, 0);
  const Tensor& b0 = input(ctx, 1);
  Device dev = common_device(name, ctx.inputs(), 2);
  Dims shape = bshape(name, a0.shape(), b0.shape());
  auto k = kernel<ew::BinaryKernel>(op, dev, compute);
  Tensor a = prepare(a0, compute, dev);
  Tensor b = prepare(b0, compute, dev);
  Tensor out = Tensor::empty(shape, out_dtype, dev);
  if (out.numel()) k(out, a, b, p);
  ctx.set(std::move(out));
}

DType binary_dtype(const OpCtx& ctx) { return result_type(input(ctx, 0), input(ctx, 1)); }

std::string dtypes_str(const OpCtx& ctx) {
  return str_cat(dtype_name(ctx.in(0).dtype()), " and ", dtype_name(ctx.in(1).dtype()));
}

// PyTorch's alpha rules: an integral result needs an integral alpha; a bool alpha needs a bool result.
void check_alpha(const char* op, DType dt, const Scalar& alpha) {
  if (alpha.kind == Scalar::Bool && dt != DType::Bool)
    type_error(op, str_cat("a bool alpha is only supported for bool results, got ", dtype_name(dt)));
  if (alpha.is_float() && !is_floating(dt))
    type_error(op, str_cat("for integer or bool inputs (", dtype_name(dt), "), alpha must not be a floating-point number (got ", alpha.str(), ")"));
}

HERON_IMPL(add, AddAttrs) {
  DType dt = binary_dtype(ctx);
  check_alpha("add", dt, attrs.alpha);
  Params p;
  p.op = "add";
  p.alpha = attrs.alpha;
  run_binary(ctx, OpId::add, dt, dt, p);
}
HERON_IMPL(sub, SubAttrs) {
  DType dt = binary_dtype(ctx);
  if (ctx.in(0).dtype() == DType::Bool || ctx.in(1).dtype() == DType::Bool)
    type_error("sub", "subtraction, the `-` operator, with a bool tensor is not supported; use logical_xor or bitwise_not to invert a mask");
  check_alpha("sub", dt, attrs.alpha);
  Params p;
  p.op = "sub";
  p.alpha = attrs.alpha;
  run_binary(ctx, OpId::sub, dt, dt, p);
}
HERON_IMPL(mul, MulAttrs) {
  DType dt = binary_dtype(ctx);
  Params p;
  p.op = "mul";
  run_binary(ctx, OpId::mul, dt, dt, p);
}
HERON_IMPL(div, DivAttrs) {
  DType dt = binary_dtype(ctx);
  Params p;
  p.op = "div";
  if (!attrs.rounding_mode) {
    DType f = is_floating(dt) ? dt : kDefaultFloat;
    run_binary(ctx, OpId::div, f, f, p);
    return;
  }
  p.rounding = *attrs.rounding_mode == "trunc" ? ew::kTrunc : ew::kFloor;
  if (dt == DType::Bool) type_error("div", str_cat("rounding_mode '", *attrs.rounding_mode, "' is not supported for bool inputs"));
  run_binary(ctx, OpId::div, dt, dt, p);
}
HERON_IMPL(floor_divide, FloorDivideAttrs) {
  DType dt = binary_dtype(ctx);
  if (dt == DType::Bool) type_error("floor_divide", "not supported for bool inputs");
  Params p;
  p.op = "floor_divide";
  run_binary(ctx, OpId::floor_divide, dt, dt, p);
}
HERON_IMPL(remainder, RemainderAttrs) {
  DType dt = binary_dtype(ctx);
  if (dt == DType::Bool) type_error("remainder", "not supported for bool inputs");
  Params p;
  p.op = "remainder";
  run_binary(ctx, OpId::remainder, dt, dt, p);
}
HERON_IMPL(pow, PowAttrs) {
  DType dt = binary_dtype(ctx);
  if (dt == DType::Bool) type_error("pow", "not supported when both the input and the exponent are bool");
  Params p;
  p.op = "pow";
  run_binary(ctx, OpId::pow, dt, dt, p);
}
HERON_IMPL(maximum, MaximumAttrs) {
  DType dt = binary_dtype(ctx);
  run_binary(ctx, OpId::maximum, dt, dt, Params{});
}
HERON_IMPL(minimum, MinimumAttrs) {
  DType dt = binary_dtype(ctx);
  run_binary(ctx, OpId::minimum, dt, dt, Params{});
}
HERON_IMPL(atan2, Atan2Attrs) {
  DType dt = binary_dtype(ctx);
  DType f = is_floating(dt) ? dt : kDefaultFloat;
  run_binary(ctx, OpId::atan2, f, f, Params{});
}

#define HERON_BOOL_RESULT_IMPL(NAME, ATTRS) \
  HERON_IMPL(NAME, ATTRS) { run_binary(ctx, OpId::NAME, binary_dtype(ctx), DType::Bool, Params{}); }
HERON_BOOL_RESULT_IMPL(eq, EqAttrs)
HERON_BOOL_RESULT_IMPL(ne, NeAttrs)
HERON_BOOL_RESULT_IMPL(lt, LtAttrs)
HERON_BOOL_RESULT_IMPL(le, LeAttrs)
HERON_BOOL_RESULT_IMPL(gt, GtAttrs)
HERON_BOOL_RESULT_IMPL(ge, GeAttrs)
HERON_BOOL_RESULT_IMPL(logical_and, LogicalAndAttrs)
HERON_BOOL_RESULT_IMPL(logical_or, LogicalOrAttrs)
HERON_BOOL_RESULT_IMPL(logical_xor, LogicalXorAttrs)
#undef HERON_BOOL_RESULT_IMPL

void run_bitwise(OpCtx& ctx, int op, bool allow_bool) {
  DType dt = binary_dtype(ctx);
  if (is_floating(dt) || (!allow_bool && dt == DType::Bool))
    type_error(ctx.name(), str_cat("expected integer", allow_bool ? " or bool" : "", " inputs, got ", dtypes_str(ctx)));
  run_binary(ctx, op, dt, dt, Params{});
}
HERON_IMPL(bitwise_and, BitwiseAndAttrs) { run_bitwise(ctx, OpId::bitwise_and, true); }
HERON_IMPL(bitwise_or, BitwiseOrAttrs) { run_bitwise(ctx, OpId::bitwise_or, true); }
HERON_IMPL(bitwise_xor, BitwiseXorAttrs) { run_bitwise(ctx, OpId::bitwise_xor, true); }
HERON_IMPL(bitwise_left_shift, BitwiseLeftShiftAttrs) { run_bitwise(ctx, OpId::bitwise_left_shift, false); }
HERON_IMPL(bitwise_right_shift, BitwiseRightShiftAttrs) { run_bitwise(ctx, OpId::bitwise_right_shift, false); }

// ---------------------------------------------------------------- where / clamp / masked_fill
HERON_IMPL(where, WhereAttrs) {
  const Tensor& c0 = input(ctx, 0);
  const Tensor& a0 = input(ctx, 1);
  const Tensor& b0 = input(ctx, 2);
  if (c0.dtype() != DType::Bool) type_error("where", str_cat("condition must be a bool tensor, got ", dtype_name(c0.dtype())));
  DType dt = result_type(a0, b0);
  Device dev = common_device("where", ctx.inputs(), 3);
  Dims shape = bshape("where", bshape("where", c0.shape(), a0.shape()), b0.shape());
  auto k = kernel<ew::WhereKernel>(OpId::where, dev, dt);
  Tensor c = prepare(c0, DType::Bool, dev);
  Tensor a = prepare(a0, dt, dev);
  Tensor b = prepare(b0, dt, dev);
  Tensor out = Tensor::empty(shape, dt, dev);
  if (out.numel()) k(out, c, a, b);
  ctx.set(std::move(out));
}

// result_type of a tensor of dtype t with a wrapped Python number s.
DType promote_with_scalar(DType t, const Scalar& s) {
  auto category = [](DType d) { return d == DType::Bool ? 0 : is_floating(d) ? 2 : 1; };
  int sc = s.kind == Scalar::Float ? 2 : s.kind == Scalar::Int ? 1 : 0;
  return sc > category(t) ? s.natural_dtype() : t;
}

HERON_IMPL(clamp, ClampAttrs) {
  const Tensor& x = input(ctx, 0);
  if (!attrs.min && !attrs.max)
    throw Error(ErrorCode::InvalidArgument, "clamp: at least one of 'min' and 'max' must be given", "clamp");
  if (x.dtype() == DType::Bool) type_error("clamp", "not supported for bool tensors");
  DType dt = x.dtype();
  Params p;
  p.op = "clamp";
  if (attrs.min) { dt = promote_types(dt, promote_with_scalar(x.dtype(), *attrs.min)); p.has_min = true; p.min = *attrs.min; }
  if (attrs.max) { dt = promote_types(dt, promote_with_scalar(x.dtype(), *attrs.max)); p.has_max = true; p.max = *attrs.max; }
  run_unary_as(ctx, OpId::clamp, dt, p);
}

HERON_IMPL(masked_fill, MaskedFillAttrs) {
  const Tensor& x = input(ctx, 0);
  const Tensor& m0 = input(ctx, 1);
  if (m0.dtype() != DType::Bool) type_error("masked_fill", str_cat("mask must be a bool tensor, got ", dtype_name(m0.dtype())));
  if (bshape("masked_fill", x.shape(), m0.shape()) != x.shape())
    throw Error(ErrorCode::InvalidArgument,
                str_cat("masked_fill: mask of shape ", m0.shape().str(), " cannot be broadcast to the input's shape ", x.shape().str()),
                "masked_fill");
  Device dev = common_device("masked_fill", ctx.inputs(), 2);
  auto k = kernel<ew::MaskedFillKernel>(OpId::masked_fill, dev, x.dtype());
  Tensor m = prepare(m0, DType::Bool, dev);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), dev);
  if (out.numel()) k(out, x, m, attrs.value);
  ctx.set(std::move(out));
}

}  // namespace
}  // namespace heron
