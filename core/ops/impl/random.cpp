// Random ops on the counter-based Philox generator: rand, randn, randint, bernoulli, randperm.
// Element i of a result depends only on (seed, offset, i) (see creation_kernels.h for the block
// layout), so results are the same for every thread count. With a `seed` attribute the stream is
// (seed, 0) and the default generator is left alone; otherwise the op reserves its blocks from the
// default generator, so consecutive calls draw disjoint streams.
#include <cmath>
#include <limits>

#include "core/ops/impl/common.h"
#include "core/ops/impl/creation_kernels.h"
#include "core/util/philox.h"

namespace heron {
namespace {
using namespace ops;

Error arg_error(const char* op, const std::string& msg) { return Error(ErrorCode::InvalidArgument, str_cat(op, ": ", msg), op); }

void check_size(const char* op, const Dims& size) {
  for (int64_t s : size)
    if (s < 0) throw arg_error(op, str_cat("negative dimension ", s, " in size ", size.str()));
}

void check_float_dtype(const char* op, DType dt) {
  if (!is_floating(dt))
    throw Error(ErrorCode::TypeError, str_cat(op, ": dtype must be a floating-point type, got ", dtype_name(dt)), op);
}

// (seed, first block) of the stream for n_blocks blocks.
std::pair<uint64_t, uint64_t> stream(const std::optional<int64_t>& seed, uint64_t n_blocks) {
  if (seed) return {static_cast<uint64_t>(*seed), 0};
  return Generator::default_generator().reserve(n_blocks);
}

// The integer range a dtype holds exactly (floats: 2**53 covers every int64 we can produce).
void dtype_int_range(DType dt, int64_t& lo, int64_t& hi) {
  switch (dt) {
    case DType::Int8: lo = INT8_MIN; hi = INT8_MAX; return;
    case DType::UInt8: lo = 0; hi = UINT8_MAX; return;
    case DType::Int32: lo = INT32_MIN; hi = INT32_MAX; return;
    case DType::Float16: lo = -2048; hi = 2048; return;
    case DType::BFloat16: lo = -256; hi = 256; return;
    case DType::Float32: lo = -(int64_t{1} << 24); hi = int64_t{1} << 24; return;
    case DType::Float64: lo = -(int64_t{1} << 53); hi = int64_t{1} << 53; return;
    default: lo = INT64_MIN; hi = INT64_MAX; return;
  }
}

HERON_IMPL(rand, RandAttrs) {
  const char* op = "rand";
  check_size(op, attrs.size);
  check_float_dtype(op, attrs.dtype);
  if (!std::isfinite(attrs.low) || !std::isfinite(attrs.high) || !(attrs.low <= attrs.high))
    throw arg_error(op, str_cat("expects finite low <= high, got low=", attrs.low, ", high=", attrs.high));
  Device dev = creation_device(attrs.device);
  Tensor out = Tensor::empty(attrs.size, attrs.dtype, dev);
  int64_t n = out.numel();
  if (n > 0) {
    auto fn = kernel<RandFn>(OpId::rand, dev, attrs.dtype);
    auto [seed, off] = stream(attrs.seed, blocks_for(n, rand_elems_per_block(attrs.dtype)));
    fn(out, attrs.low, attrs.high, seed, off);
  }
  ctx.set(out);
}

HERON_IMPL(randn, RandnAttrs) {
  const char* op = "randn";
  check_size(op, attrs.size);
  check_float_dtype(op, attrs.dtype);
  if (!std::isfinite(attrs.mean) || !std::isfinite(attrs.std) || attrs.std < 0)
    throw arg_error(op, str_cat("expects a finite mean and std >= 0, got mean=", attrs.mean, ", std=", attrs.std));
  Device dev = creation_device(attrs.device);
  Tensor out = Tensor::empty(attrs.size, attrs.dtype, dev);
  int64_t n = out.numel();
  if (n > 0) {
    auto fn = kernel<RandFn>(OpId::randn, dev, attrs.dtype);
    auto [seed, off] = stream(attrs.seed, blocks_for(n, 2));
    fn(out, attrs.mean, attrs.std, seed, off);
  }
  ctx.set(out);
}

HERON_IMPL(randint, RandintAttrs) {
  const char* op = "randint";
  check_size(op, attrs.size);
  DType dt = attrs.dtype;
  if (dt == DType::Bool) throw Error(ErrorCode::TypeError, "randint: dtype bool is not supported", op);
  if (attrs.high <= attrs.low)
    throw arg_error(op, str_cat("high (", attrs.high, ") must be greater than low (", attrs.low, ")"));
  int64_t lo, hi;
  dtype_int_range(dt, lo, hi);
  if (attrs.low < lo || attrs.high - 1 > hi)
    throw arg_error(op, str_cat("the range [", attrs.low, ", ", attrs.high, ") does not fit dtype ", dtype_name(dt)));
  Device dev = creation_device(attrs.device);
  Tensor out = Tensor::empty(attrs.size, dt, dev);
  int64_t n = out.numel();
  if (n > 0) {
    auto fn = kernel<RandintFn>(OpId::randint, dev, dt);
    auto [seed, off] = stream(attrs.seed, blocks_for(n, 2));
    fn(out, attrs.low, attrs.high, seed, off);
  }
  ctx.set(out);
}

HERON_IMPL(bernoulli, BernoulliAttrs) {
  const char* op = "bernoulli";
  const Tensor& p = ctx.in(0);
  if (!is_floating(p.dtype()))
    throw Error(ErrorCode::TypeError,
                str_cat(op, ": expects a floating-point tensor of probabilities, got ", dtype_name(p.dtype())), op);
  Tensor out = Tensor::empty(p.shape(), p.dtype(), p.device());
  int64_t n = out.numel();
  if (n > 0) {
    auto fn = kernel<BernoulliFn>(OpId::bernoulli, p.device(), p.dtype());
    Tensor pc = p.contiguous();
    // Validate before reserving random blocks, so a bad call leaves the default generator alone.
    auto host_value = [](const Tensor& t) {
      Tensor h = t.to(host_device()).to(DType::Float64);
      return *h.data<double>();
    };
    double lo = host_value(ops::amin(pc)), hi = host_value(ops::amax(pc));
    if (!(lo >= 0.0 && hi <= 1.0))
      throw arg_error(op, str_cat("probabilities must lie in [0, 1], got values in [", lo, ", ", hi, "]"));
    auto [seed, off] = stream(attrs.seed, blocks_for(n, 2));
    fn(out, pc, seed, off);
  }
  ctx.set(out);
}

HERON_IMPL(randperm, RandpermAttrs) {
  const char* op = "randperm";
  DType dt = attrs.dtype;
  if (!is_integral(dt))
    throw Error(ErrorCode::TypeError, str_cat("randperm: dtype must be an integer type, got ", dtype_name(dt)), op);
  if (attrs.n < 0) throw arg_error(op, str_cat("n must be non-negative, got ", attrs.n));
  int64_t lo, hi;
  dtype_int_range(dt, lo, hi);
  if (attrs.n - 1 > hi) throw arg_error(op, str_cat("n=", attrs.n, " is too large for dtype ", dtype_name(dt)));
  Device dev = creation_device(attrs.device);
  Tensor out = Tensor::empty(Dims{attrs.n}, dt, dev);
  if (attrs.n > 0) {
    auto fn = kernel<RandpermFn>(OpId::randperm, dev, dt);
    auto [seed, off] = stream(attrs.seed, static_cast<uint64_t>(attrs.n));
    fn(out, seed, off);
  }
  ctx.set(out);
}

}  // namespace
}  // namespace heron
