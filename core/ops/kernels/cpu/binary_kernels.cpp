// CPU kernels of the binary elementwise ops, plus where and masked_fill. Functor templates over
// the math type M = opmath_t<T>; contiguous float32/float64 add/sub/mul/div use vec_math's SIMD
// loops. Integer division and remainder by zero and negative integer powers throw heron::Error
// (the implementation then discards the output).
#include <cmath>

#include "core/ops/generated/ops_gen.h"
#include "core/ops/kernels/cpu/ew_common.h"
#include "core/ops/kernels/cpu/vec_math.h"

namespace heron {
namespace cpu {
namespace {
using namespace ewk;
using ew::Params;

[[noreturn]] void int_div_by_zero(const char* op) {
  throw Error(ErrorCode::InvalidArgument, str_cat(op, ": integer division by zero"), op);
}

// SIMD path for float/double (only instantiated there).
inline void vec_bin(vec::BinOp bop, float* o, const float* a, int64_t sa, const float* b, int64_t sb, int64_t n, float alpha) {
  vec::binary_f32(bop, o, a, sa, b, sb, n, alpha);
}
inline void vec_bin(vec::BinOp bop, double* o, const double* a, int64_t sa, const double* b, int64_t sb, int64_t n, double alpha) {
  vec::binary_f64(bop, o, a, sa, b, sb, n, alpha);
}

// ---------------------------------------------------------------- arithmetic
template <typename M> struct AddOp {
  M alpha;
  static constexpr bool kVecBin = true;
  explicit AddOp(const Params& p) : alpha(p.alpha.template to<M>()) {}
  M operator()(M a, M b) const {
    if constexpr (kIsInt<M>) return wrap_add(a, wrap_mul(b, alpha));
    else if constexpr (std::is_same_v<M, bool>) return a || (b && alpha);
    else return a + b * alpha;
  }
  void vec(M* o, const M* a, int64_t sa, const M* b, int64_t sb, int64_t n) const {
    if constexpr (std::is_floating_point_v<M>) vec_bin(vec::BinOp::Add, o, a, sa, b, sb, n, alpha);
  }
};
template <typename M> struct SubOp {
  M alpha;
  static constexpr bool kVecBin = true;
  explicit SubOp(const Params& p) : alpha(p.alpha.template to<M>()) {}
  M operator()(M a, M b) const {
    if constexpr (kIsInt<M>) return wrap_sub(a, wrap_mul(b, alpha));
    else return a - b * alpha;
  }
  void vec(M* o, const M* a, int64_t sa, const M* b, int64_t sb, int64_t n) const {
    if constexpr (std::is_floating_point_v<M>) vec_bin(vec::BinOp::Sub, o, a, sa, b, sb, n, alpha);
  }
};
template <typename M> struct MulOp {
  static constexpr bool kVecBin = true;
  explicit MulOp(const Params&) {}
  M operator()(M a, M b) const {
    if constexpr (kIsInt<M>) return wrap_mul(a, b);
    else if constexpr (std::is_same_v<M, bool>) return a && b;
    else return a * b;
  }
  void vec(M* o, const M* a, int64_t sa, const M* b, int64_t sb, int64_t n) const {
    if constexpr (std::is_floating_point_v<M>) vec_bin(vec::BinOp::Mul, o, a, sa, b, sb, n, M(1));
  }
};
// True division: floating dtypes only (the impl casts integers to float).
template <typename M> struct DivOp {
  static constexpr bool kVecBin = true;
  explicit DivOp(const Params&) {}
  M operator()(M a, M b) const { return a / b; }
  void vec(M* o, const M* a, int64_t sa, const M* b, int64_t sb, int64_t n) const {
    if constexpr (std::is_floating_point_v<M>) vec_bin(vec::BinOp::Div, o, a, sa, b, sb, n, M(1));
  }
};

// Python's floor division of floats: computed from fmod so that it is consistent with the
// remainder, then rounded; b == 0 gives a / b (inf or nan).
template <typename M> inline M float_floor_div(M a, M b) {
  if (b == M(0)) return a / b;
  M mod = std::fmod(a, b);
  M div = (a - mod) / b;
  if (mod != M(0) && ((b < M(0)) != (mod < M(0)))) div -= M(1);
  if (div == M(0)) return std::copysign(M(0), a / b);
  M fl = std::floor(div);
  if (div - fl > M(0.5)) fl += M(1);
  return fl;
}

template <typename M> inline M int_div_trunc(M a, M b, const char* op) {
  if (b == M(0)) int_div_by_zero(op);
  if constexpr (std::is_signed_v<M>) {
    if (b == M(-1)) return wrap_neg(a);  // INT_MIN / -1 wraps instead of trapping
  }
  return static_cast<M>(a / b);
}
template <typename M> inline M int_div_floor(M a, M b, const char* op) {
  M q = int_div_trunc(a, b, op);
  if constexpr (std::is_signed_v<M>) {
    if (b != M(-1) && static_cast<M>(a % b) != 0 && ((a < 0) != (b < 0))) q = static_cast<M>(q - 1);
  }
  return q;
}

template <typename M> struct DivTruncOp {
  const char* name;
  explicit DivTruncOp(const Params& p) : name(p.op) {}
  M operator()(M a, M b) const {
    if constexpr (kIsInt<M>) return int_div_trunc(a, b, name);
    else return std::trunc(a / b);
  }
};
template <typename M> struct DivFloorOp {
  const char* name;
  explicit DivFloorOp(const Params& p) : name(p.op) {}
  M operator()(M a, M b) const {
    if constexpr (kIsInt<M>) return int_div_floor(a, b, name);
    else return float_floor_div(a, b);
  }
};
// Remainder with the sign of the divisor (Python's %).
template <typename M> struct RemainderOp {
  const char* name;
  explicit RemainderOp(const Params& p) : name(p.op) {}
  M operator()(M a, M b) const {
    if constexpr (kIsInt<M>) {
      if (b == 0) int_div_by_zero(name);
      if constexpr (std::is_signed_v<M>) {
        if (b == M(-1)) return M(0);
        M r = static_cast<M>(a % b);
        if (r != 0 && ((r < 0) != (b < 0))) r = static_cast<M>(r + b);
        return r;
      } else {
        return static_cast<M>(a % b);
      }
    } else {
      M mod = std::fmod(a, b);
      if (mod != M(0)) {
        if ((b < M(0)) != (mod < M(0))) mod += b;
      } else {
        mod = std::copysign(M(0), b);
      }
      return mod;
    }
  }
};
template <typename M> struct PowOp {
  const char* name;
  explicit PowOp(const Params& p) : name(p.op) {}
  M operator()(M a, M b) const {
    if constexpr (kIsInt<M>) {
      if constexpr (std::is_signed_v<M>) {
        if (b < 0)
          throw Error(ErrorCode::InvalidArgument, str_cat(name, ": integers to negative integer powers are not allowed"), name);
      }
      M result = 1, base = a;
      using U = std::make_unsigned_t<M>;
      U e = static_cast<U>(b);
      while (e) {
        if (e & 1u) result = wrap_mul(result, base);
        e = static_cast<U>(e >> 1);
        if (e) base = wrap_mul(base, base);
      }
      return result;
    } else {
      return std::pow(a, b);
    }
  }
};
template <typename M> struct MaximumOp {
  explicit MaximumOp(const Params&) {}
  M operator()(M a, M b) const {
    if constexpr (std::is_floating_point_v<M>) {
      if (std::isnan(a) || std::isnan(b)) return a + b;
    }
    return a < b ? b : a;
  }
};
template <typename M> struct MinimumOp {
  explicit MinimumOp(const Params&) {}
  M operator()(M a, M b) const {
    if constexpr (std::is_floating_point_v<M>) {
      if (std::isnan(a) || std::isnan(b)) return a + b;
    }
    return b < a ? b : a;
  }
};
template <typename M> struct Atan2Op {
  explicit Atan2Op(const Params&) {}
  M operator()(M a, M b) const { return std::atan2(a, b); }
};

// ---------------------------------------------------------------- comparisons and logic (bool out)
#define HERON_BOOL_BINARY(NAME, EXPR)                 \
  template <typename M> struct NAME {                 \
    explicit NAME(const Params&) {}                   \
    bool operator()(M a, M b) const { return EXPR; }  \
  };
HERON_BOOL_BINARY(EqOp, a == b)
HERON_BOOL_BINARY(NeOp, a != b)
HERON_BOOL_BINARY(LtOp, a < b)
HERON_BOOL_BINARY(LeOp, a <= b)
HERON_BOOL_BINARY(GtOp, a > b)
HERON_BOOL_BINARY(GeOp, a >= b)
HERON_BOOL_BINARY(LogicalAndOp, (a != M(0)) && (b != M(0)))
HERON_BOOL_BINARY(LogicalOrOp, (a != M(0)) || (b != M(0)))
HERON_BOOL_BINARY(LogicalXorOp, (a != M(0)) != (b != M(0)))

// ---------------------------------------------------------------- bitwise
template <typename M> struct BitAndOp {
  explicit BitAndOp(const Params&) {}
  M operator()(M a, M b) const { return static_cast<M>(a & b); }
};
template <typename M> struct BitOrOp {
  explicit BitOrOp(const Params&) {}
  M operator()(M a, M b) const { return static_cast<M>(a | b); }
};
template <typename M> struct BitXorOp {
  explicit BitXorOp(const Params&) {}
  M operator()(M a, M b) const { return static_cast<M>(a ^ b); }
};
// Shifts by a negative amount or by at least the bit width give 0 (left) or the sign fill (right).
template <typename M> struct ShlOp {
  explicit ShlOp(const Params&) {}
  M operator()(M a, M b) const {
    constexpr int64_t bits = sizeof(M) * 8;
    int64_t s = static_cast<int64_t>(b);
    if (s < 0 || s >= bits) return M(0);
    using U = std::make_unsigned_t<M>;
    return static_cast<M>(static_cast<U>(static_cast<U>(a) << s));
  }
};
template <typename M> struct ShrOp {
  explicit ShrOp(const Params&) {}
  M operator()(M a, M b) const {
    constexpr int64_t bits = sizeof(M) * 8;
    int64_t s = static_cast<int64_t>(b);
    if (s < 0 || s >= bits) {
      if constexpr (std::is_signed_v<M>) return a < 0 ? M(-1) : M(0);
      else return M(0);
    }
    return static_cast<M>(a >> s);
  }
};

// ---------------------------------------------------------------- where / masked_fill
// Bool tensors are read as bytes (any non-zero byte is true).
template <typename T>
void where_kernel(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  run_elementwise<4>(out, {&cond, &a, &b}, [&](char** p, const int64_t* s, int64_t n) {
    constexpr int64_t st = sizeof(T);
    if (s[0] == st && s[1] == 1 && s[2] == st && s[3] == st) {
      T* o = reinterpret_cast<T*>(p[0]);
      const uint8_t* c = reinterpret_cast<const uint8_t*>(p[1]);
      const T* x = reinterpret_cast<const T*>(p[2]);
      const T* y = reinterpret_cast<const T*>(p[3]);
      for (int64_t i = 0; i < n; ++i) o[i] = c[i] ? x[i] : y[i];
    } else {
      for (int64_t i = 0; i < n; ++i) {
        const char* src = *reinterpret_cast<const uint8_t*>(p[1] + i * s[1]) ? p[2] + i * s[2] : p[3] + i * s[3];
        *reinterpret_cast<T*>(p[0] + i * s[0]) = *reinterpret_cast<const T*>(src);
      }
    }
  });
}

template <typename T>
void masked_fill_kernel(const Tensor& out, const Tensor& in, const Tensor& mask, const Scalar& value) {
  const T v = value.is_float() ? convert<T>(value.f) : convert<T>(value.i);
  run_elementwise<3>(out, {&in, &mask}, [&](char** p, const int64_t* s, int64_t n) {
    constexpr int64_t st = sizeof(T);
    if (s[0] == st && s[1] == st && s[2] == 1) {
      T* o = reinterpret_cast<T*>(p[0]);
      const T* x = reinterpret_cast<const T*>(p[1]);
      const uint8_t* m = reinterpret_cast<const uint8_t*>(p[2]);
      for (int64_t i = 0; i < n; ++i) o[i] = m[i] ? v : x[i];
    } else {
      for (int64_t i = 0; i < n; ++i)
        *reinterpret_cast<T*>(p[0] + i * s[0]) =
            *reinterpret_cast<const uint8_t*>(p[2] + i * s[2]) ? v : *reinterpret_cast<const T*>(p[1] + i * s[1]);
    }
  });
}

template <typename... Ts>
void reg_where(TypeList<Ts...>) {
  (register_kernel(ops::OpId::where, "cpu", CppToDType<Ts>::value, reinterpret_cast<KernelFn>(&where_kernel<Ts>)), ...);
  (register_kernel(ops::OpId::masked_fill, "cpu", CppToDType<Ts>::value, reinterpret_cast<KernelFn>(&masked_fill_kernel<Ts>)), ...);
}

// div: one kernel per dtype that switches on the rounding mode (true division only reaches
// floating dtypes: the impl casts integers to float first).
template <typename T>
void div_kernel(const Tensor& out, const Tensor& a, const Tensor& b, const Params& p) {
  if (p.rounding == ew::kTrunc) binary_kernel<DivTruncOp, T, T>(out, a, b, p);
  else if (p.rounding == ew::kFloor) binary_kernel<DivFloorOp, T, T>(out, a, b, p);
  else if constexpr (!kIsInt<T>) binary_kernel<DivOp, T, T>(out, a, b, p);
  else throw Error(ErrorCode::Runtime, str_cat(p.op, ": true division of integers reached an integer kernel"), p.op);
}
template <typename... Ts>
void reg_div(TypeList<Ts...>) {
  (register_kernel(ops::OpId::div, "cpu", CppToDType<Ts>::value, reinterpret_cast<KernelFn>(&div_kernel<Ts>)), ...);
}

// ---------------------------------------------------------------- registration
struct Registrar {
  Registrar() {
    using O = ops::OpId;
    reg_binary<AddOp, false>(O::add, AllTypes{});
    reg_binary<SubOp, false>(O::sub, NumericTypes{});
    reg_binary<MulOp, false>(O::mul, AllTypes{});
    reg_div(NumericTypes{});
    reg_binary<DivFloorOp, false>(O::floor_divide, NumericTypes{});
    reg_binary<RemainderOp, false>(O::remainder, NumericTypes{});
    reg_binary<PowOp, false>(O::pow, NumericTypes{});
    reg_binary<MaximumOp, false>(O::maximum, AllTypes{});
    reg_binary<MinimumOp, false>(O::minimum, AllTypes{});
    reg_binary<Atan2Op, false>(O::atan2, FloatTypes{});
    reg_binary<EqOp, true>(O::eq, AllTypes{});
    reg_binary<NeOp, true>(O::ne, AllTypes{});
    reg_binary<LtOp, true>(O::lt, AllTypes{});
    reg_binary<LeOp, true>(O::le, AllTypes{});
    reg_binary<GtOp, true>(O::gt, AllTypes{});
    reg_binary<GeOp, true>(O::ge, AllTypes{});
    reg_binary<LogicalAndOp, true>(O::logical_and, AllTypes{});
    reg_binary<LogicalOrOp, true>(O::logical_or, AllTypes{});
    reg_binary<LogicalXorOp, true>(O::logical_xor, AllTypes{});
    reg_binary<BitAndOp, false>(O::bitwise_and, IntBoolTypes{});
    reg_binary<BitOrOp, false>(O::bitwise_or, IntBoolTypes{});
    reg_binary<BitXorOp, false>(O::bitwise_xor, IntBoolTypes{});
    reg_binary<ShlOp, false>(O::bitwise_left_shift, IntTypes{});
    reg_binary<ShrOp, false>(O::bitwise_right_shift, IntTypes{});
    reg_where(AllTypes{});
  }
} g_registrar;

}  // namespace
}  // namespace cpu
}  // namespace heron
