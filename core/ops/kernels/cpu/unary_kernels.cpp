// CPU kernels of the unary elementwise ops (and clamp). Each op is a functor template over the
// math type M = opmath_t<T> (float for the 16-bit floats); registration instantiates it per dtype.
// float32 exp/sigmoid/silu/tanh on contiguous data use the SIMD routines of vec_math.
#include <cmath>

#include "core/ops/generated/ops_gen.h"
#include "core/ops/kernels/cpu/ew_common.h"
#include "core/ops/kernels/cpu/vec_math.h"

namespace heron {
namespace cpu {
namespace {
using namespace ewk;
using ew::Params;

#define HERON_SIMPLE_UNARY(NAME, EXPR)                    \
  template <typename M> struct NAME {                     \
    explicit NAME(const Params&) {}                       \
    M operator()(M x) const { return EXPR; }              \
  };

// ---------------------------------------------------------------- same-dtype arithmetic
template <typename M> struct NegOp {
  explicit NegOp(const Params&) {}
  M operator()(M x) const {
    if constexpr (kIsInt<M>) return wrap_neg(x);
    else return -x;
  }
};
template <typename M> struct AbsOp {
  explicit AbsOp(const Params&) {}
  M operator()(M x) const {
    if constexpr (std::is_unsigned_v<M>) return x;
    else if constexpr (kIsInt<M>) return x < 0 ? wrap_neg(x) : x;
    else return std::fabs(x);
  }
};
template <typename M> struct SignOp {
  explicit SignOp(const Params&) {}
  M operator()(M x) const {
    if constexpr (std::is_same_v<M, bool> || std::is_unsigned_v<M>) return x > 0 ? M(1) : M(0);
    else if constexpr (kIsInt<M>) return static_cast<M>((x > 0) - (x < 0));
    else return std::isnan(x) ? x : static_cast<M>((x > 0) - (x < 0));
  }
};
template <typename M> struct SquareOp {
  explicit SquareOp(const Params&) {}
  M operator()(M x) const {
    if constexpr (kIsInt<M>) return wrap_mul(x, x);
    else return x * x;
  }
};
template <typename M> struct ReluOp {
  explicit ReluOp(const Params&) {}
  M operator()(M x) const {
    if constexpr (std::is_unsigned_v<M>) return x;
    else return x < M(0) ? M(0) : x;  // nan stays nan
  }
};
template <typename M> struct BitwiseNotOp {
  explicit BitwiseNotOp(const Params&) {}
  M operator()(M x) const {
    if constexpr (std::is_same_v<M, bool>) return !x;
    else return static_cast<M>(~x);
  }
};

// ---------------------------------------------------------------- floating-point functions
template <typename M> struct ExpOp {
  explicit ExpOp(const Params&) {}
  M operator()(M x) const { return std::exp(x); }
  static void vec_f32(float* o, const float* a, int64_t n) { vec::exp_f32(o, a, n); }
};
HERON_SIMPLE_UNARY(Expm1Op, std::expm1(x))
HERON_SIMPLE_UNARY(LogOp, std::log(x))
HERON_SIMPLE_UNARY(Log1pOp, std::log1p(x))
HERON_SIMPLE_UNARY(Log2Op, std::log2(x))
HERON_SIMPLE_UNARY(SqrtOp, std::sqrt(x))
HERON_SIMPLE_UNARY(RsqrtOp, M(1) / std::sqrt(x))
HERON_SIMPLE_UNARY(SinOp, std::sin(x))
HERON_SIMPLE_UNARY(CosOp, std::cos(x))
HERON_SIMPLE_UNARY(TanOp, std::tan(x))
HERON_SIMPLE_UNARY(ErfOp, std::erf(x))
HERON_SIMPLE_UNARY(ReciprocalOp, M(1) / x)
HERON_SIMPLE_UNARY(FloorOp, std::floor(x))
HERON_SIMPLE_UNARY(CeilOp, std::ceil(x))
HERON_SIMPLE_UNARY(TruncOp, std::trunc(x))

template <typename M> struct TanhOp {
  explicit TanhOp(const Params&) {}
  M operator()(M x) const { return std::tanh(x); }
  static void vec_f32(float* o, const float* a, int64_t n) { vec::tanh_f32(o, a, n); }
};

// Stable logistic function: exp of a non-positive argument only.
template <typename M> inline M sigmoid(M x) {
  M e = std::exp(-std::fabs(x));
  M r = M(1) / (M(1) + e);
  return x < M(0) ? e * r : r;
}
template <typename M> struct SigmoidOp {
  explicit SigmoidOp(const Params&) {}
  M operator()(M x) const { return sigmoid(x); }
  static void vec_f32(float* o, const float* a, int64_t n) { vec::sigmoid_f32(o, a, n); }
};
template <typename M> struct SiluOp {
  explicit SiluOp(const Params&) {}
  M operator()(M x) const { return x * sigmoid(x); }
  static void vec_f32(float* o, const float* a, int64_t n) { vec::silu_f32(o, a, n); }
};
template <typename M> struct GeluOp {
  bool tanh_form;
  explicit GeluOp(const Params& p) : tanh_form(p.approximate == 1) {}
  M operator()(M x) const {
    if (tanh_form) {
      const M k = static_cast<M>(0.79788456080286535588);  // sqrt(2/pi)
      // 0.5 x (1 + tanh u) = x * sigmoid(2u): no cancellation for negative x.
      M u = k * (x + static_cast<M>(0.044715) * x * x * x);
      return x * sigmoid(u + u);
    }
    // x * Phi(x) with Phi(x) = erfc(-x / sqrt 2) / 2: no cancellation for negative x.
    return M(0.5) * x * std::erfc(-x * static_cast<M>(0.70710678118654752440));
  }
};
template <typename M> struct SoftplusOp {
  M beta, threshold;
  explicit SoftplusOp(const Params& p) : beta(static_cast<M>(p.beta)), threshold(static_cast<M>(p.threshold)) {}
  M operator()(M x) const {
    M bx = x * beta;
    return bx > threshold ? x : std::log1p(std::exp(bx)) / beta;
  }
};

// Half to even (the default rounding mode), to `decimals` places like numpy: x * 10^d rounded,
// divided back; negative d divides first.
template <typename M> struct RoundOp {
  int64_t decimals;
  M scale;
  explicit RoundOp(const Params& p) : decimals(p.decimals), scale(1) {
    if constexpr (!kIsInt<M>) {
      int64_t d = decimals < 0 ? -decimals : decimals;
      scale = static_cast<M>(std::pow(10.0, static_cast<double>(d)));
    }
  }
  M operator()(M x) const {
    if constexpr (kIsInt<M>) {
      // Integers: unchanged for decimals >= 0; else to a multiple of 10^-decimals, half to even.
      if (decimals >= 0) return x;
      if (decimals < -18) return M(0);
      int64_t p = 1;
      for (int64_t i = 0; i < -decimals; ++i) p *= 10;
      int64_t v = static_cast<int64_t>(x);
      int64_t q = v / p, r = v % p;
      int64_t ar = r < 0 ? -r : r;
      if (2 * ar > p || (2 * ar == p && (q % 2 != 0))) q += v < 0 ? -1 : 1;
      return static_cast<M>(static_cast<uint64_t>(q) * static_cast<uint64_t>(p));
    } else {
      if (decimals == 0) return std::nearbyint(x);
      if (decimals > 0) return std::nearbyint(x * scale) / scale;
      return std::nearbyint(x / scale) * scale;
    }
  }
};

// ---------------------------------------------------------------- predicates (bool output)
template <typename M> struct IsnanOp {
  explicit IsnanOp(const Params&) {}
  bool operator()(M x) const {
    if constexpr (std::is_floating_point_v<M>) return std::isnan(x);
    else return false;
  }
};
template <typename M> struct IsinfOp {
  explicit IsinfOp(const Params&) {}
  bool operator()(M x) const {
    if constexpr (std::is_floating_point_v<M>) return std::isinf(x);
    else return false;
  }
};
template <typename M> struct IsfiniteOp {
  explicit IsfiniteOp(const Params&) {}
  bool operator()(M x) const {
    if constexpr (std::is_floating_point_v<M>) return std::isfinite(x);
    else return true;
  }
};
template <typename M> struct LogicalNotOp {
  explicit LogicalNotOp(const Params&) {}
  bool operator()(M x) const { return x == M(0); }
};

// ---------------------------------------------------------------- clamp
// nan in the input or a bound propagates. Integers compare in int64 so that bounds outside the
// type's range act as no bound.
template <typename M> struct ClampOp {
  bool has_min, has_max;
  std::conditional_t<kIsInt<M>, int64_t, M> lo{}, hi{};
  explicit ClampOp(const Params& p) : has_min(p.has_min), has_max(p.has_max) {
    if constexpr (kIsInt<M>) {
      if (has_min) lo = p.min.is_float() ? static_cast<int64_t>(p.min.f) : p.min.i;
      if (has_max) hi = p.max.is_float() ? static_cast<int64_t>(p.max.f) : p.max.i;
    } else {
      if (has_min) lo = static_cast<M>(p.min.to_double());
      if (has_max) hi = static_cast<M>(p.max.to_double());
    }
  }
  M operator()(M x) const {
    if constexpr (kIsInt<M>) {
      int64_t v = x;
      if (has_min && v < lo) v = lo;
      if (has_max && v > hi) v = hi;
      return static_cast<M>(v);
    } else {
      if (std::isnan(x)) return x;
      if (has_min) {
        if (std::isnan(lo)) return lo;
        if (x < lo) x = lo;
      }
      if (has_max) {
        if (std::isnan(hi)) return hi;
        if (x > hi) x = hi;
      }
      return x;
    }
  }
};

// ---------------------------------------------------------------- registration
struct Registrar {
  Registrar() {
    using O = ops::OpId;
    // neg/abs: also uint8 (wrapping / identity, like PyTorch); bool is rejected by the impl.
    reg_unary<NegOp, false>(O::neg, NumericTypes{});
    reg_unary<AbsOp, false>(O::abs, NumericTypes{});
    reg_unary<SignOp, false>(O::sign, AllTypes{});
    reg_unary<SquareOp, false>(O::square, NumericTypes{});
    reg_unary<ReluOp, false>(O::relu, NumericTypes{});
    reg_unary<BitwiseNotOp, false>(O::bitwise_not, IntBoolTypes{});
    // unary_float: integer inputs are cast to the default float dtype by the impl.
    reg_unary<ExpOp, false>(O::exp, FloatTypes{});
    reg_unary<Expm1Op, false>(O::expm1, FloatTypes{});
    reg_unary<LogOp, false>(O::log, FloatTypes{});
    reg_unary<Log1pOp, false>(O::log1p, FloatTypes{});
    reg_unary<Log2Op, false>(O::log2, FloatTypes{});
    reg_unary<SqrtOp, false>(O::sqrt, FloatTypes{});
    reg_unary<RsqrtOp, false>(O::rsqrt, FloatTypes{});
    reg_unary<SinOp, false>(O::sin, FloatTypes{});
    reg_unary<CosOp, false>(O::cos, FloatTypes{});
    reg_unary<TanOp, false>(O::tan, FloatTypes{});
    reg_unary<TanhOp, false>(O::tanh, FloatTypes{});
    reg_unary<SigmoidOp, false>(O::sigmoid, FloatTypes{});
    reg_unary<GeluOp, false>(O::gelu, FloatTypes{});
    reg_unary<SiluOp, false>(O::silu, FloatTypes{});
    reg_unary<SoftplusOp, false>(O::softplus, FloatTypes{});
    reg_unary<ErfOp, false>(O::erf, FloatTypes{});
    reg_unary<ReciprocalOp, false>(O::reciprocal, FloatTypes{});
    // unary_round: integers are copied by the impl (round with negative decimals has a kernel).
    reg_unary<FloorOp, false>(O::floor, FloatTypes{});
    reg_unary<CeilOp, false>(O::ceil, FloatTypes{});
    reg_unary<TruncOp, false>(O::trunc, FloatTypes{});
    reg_unary<RoundOp, false>(O::round, NumericTypes{});
    // predicates: by input dtype, bool output.
    reg_unary<IsnanOp, true>(O::isnan, AllTypes{});
    reg_unary<IsinfOp, true>(O::isinf, AllTypes{});
    reg_unary<IsfiniteOp, true>(O::isfinite, AllTypes{});
    reg_unary<LogicalNotOp, true>(O::logical_not, AllTypes{});
    reg_unary<ClampOp, false>(O::clamp, NumericTypes{});
  }
} g_registrar;

}  // namespace
}  // namespace cpu
}  // namespace heron
