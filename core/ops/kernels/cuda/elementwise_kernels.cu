// cuda kernels: copy_ (strided, broadcasting, converting), fill, unary and binary elementwise ops.
#include <cmath>

#include "core/device/cuda/cuda_common.h"
#include "core/ops/dispatcher.h"
#include "core/ops/generated/ops_gen.h"
#include "core/ops/impl/creation_kernels.h"
#include "core/ops/impl/elementwise.h"
#include "core/ops/kernels/cuda/cuda_types.cuh"

namespace heron {
namespace cuda {
namespace {

using ops::OpId;

// ---------------------------------------------------------------- copy_
template <typename Dst, typename Src>
__global__ void copy_kernel(Iter<2> it, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    char* p[2];
    it.offsets(i, p);
    *reinterpret_cast<Dst*>(p[0]) = cast<Dst>(load(*reinterpret_cast<const Src*>(p[1])));
  }
}

template <typename Dst>
void copy_(const Tensor& dst, const Tensor& src) {
  set_device(dst.device().index);
  const Tensor* ins[1] = {&src};
  auto it = make_iter<2>(dst, ins);
  int64_t n = dst.numel();
  visit(src.dtype(), [&](auto s) {
    using Src = decltype(s);
    copy_kernel<Dst, Src><<<blocks_for(n), kThreads>>>(it, n);
  });
  check_launch("copy_");
}

// ---------------------------------------------------------------- fill
template <typename T>
__global__ void fill_kernel(Iter<1> it, int64_t n, T v) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    char* p[1];
    it.offsets(i, p);
    *reinterpret_cast<T*>(p[0]) = v;
  }
}

template <typename T>
T host_value(const Scalar& v) {
  if constexpr (std::is_same_v<T, __half>) return __float2half(static_cast<float>(v.to_double()));
  else if constexpr (std::is_same_v<T, __nv_bfloat16>) return __float2bfloat16(static_cast<float>(v.to_double()));
  else if constexpr (std::is_same_v<T, bool>) return v.to_double() != 0.0;
  else if constexpr (std::is_integral_v<T>) return static_cast<T>(v.kind == Scalar::Float ? static_cast<int64_t>(v.f) : v.i);
  else return static_cast<T>(v.to_double());
}

template <typename T>
void fill(const Tensor& out, const Scalar& v) {
  set_device(out.device().index);
  auto it = make_iter<1>(out, nullptr);
  int64_t n = out.numel();
  fill_kernel<T><<<blocks_for(n), kThreads>>>(it, n, host_value<T>(v));
  check_launch("fill");
}

// ---------------------------------------------------------------- unary
enum class U { Neg, Abs, Exp, Expm1, Log, Log1p, Log2, Sqrt, Rsqrt, Square, Sin, Cos, Tan, Tanh, Sigmoid, Relu, Gelu,
               Silu, Softplus, Erf, Floor, Ceil, Trunc, Reciprocal };

struct UParams {
  int approximate;
  double beta, threshold;
};

template <U op, typename A>
__device__ __forceinline__ A unary_fn(A x, const UParams& p) {
  if constexpr (op == U::Neg) return -x;
  else if constexpr (op == U::Abs) return x < A(0) ? -x : x;
  else if constexpr (op == U::Exp) return exp(x);
  else if constexpr (op == U::Expm1) return expm1(x);
  else if constexpr (op == U::Log) return log(x);
  else if constexpr (op == U::Log1p) return log1p(x);
  else if constexpr (op == U::Log2) return log2(x);
  else if constexpr (op == U::Sqrt) return sqrt(x);
  else if constexpr (op == U::Rsqrt) return A(1) / sqrt(x);
  else if constexpr (op == U::Square) return x * x;
  else if constexpr (op == U::Sin) return sin(x);
  else if constexpr (op == U::Cos) return cos(x);
  else if constexpr (op == U::Tan) return tan(x);
  else if constexpr (op == U::Tanh) return tanh(x);
  else if constexpr (op == U::Sigmoid) return A(1) / (A(1) + exp(-x));
  else if constexpr (op == U::Relu) return x > A(0) ? x : A(0);
  else if constexpr (op == U::Gelu) {
    if (p.approximate) {
      const A k = A(0.7978845608028654);
      return A(0.5) * x * (A(1) + tanh(k * (x + A(0.044715) * x * x * x)));
    }
    return A(0.5) * x * (A(1) + erf(x * A(0.7071067811865476)));
  } else if constexpr (op == U::Silu) return x / (A(1) + exp(-x));
  else if constexpr (op == U::Softplus) {
    A bx = A(p.beta) * x;
    return bx > A(p.threshold) ? x : log1p(exp(bx)) / A(p.beta);
  } else if constexpr (op == U::Erf) return erf(x);
  else if constexpr (op == U::Floor) return floor(x);
  else if constexpr (op == U::Ceil) return ceil(x);
  else if constexpr (op == U::Trunc) return trunc(x);
  else if constexpr (op == U::Reciprocal) return A(1) / x;
  else return x;
}

template <U op, typename T>
__global__ void unary_kernel(Iter<2> it, int64_t n, UParams p) {
  using A = typename Acc<T>::type;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    char* q[2];
    it.offsets(i, q);
    *reinterpret_cast<T*>(q[0]) = cast<T>(unary_fn<op, A>(load(*reinterpret_cast<const T*>(q[1])), p));
  }
}

template <U op, typename T>
void unary(const Tensor& out, const Tensor& in, const ew::Params& params) {
  set_device(out.device().index);
  const Tensor* ins[1] = {&in};
  auto it = make_iter<2>(out, ins);
  int64_t n = out.numel();
  UParams p{params.approximate, params.beta, params.threshold};
  unary_kernel<op, T><<<blocks_for(n), kThreads>>>(it, n, p);
  check_launch("unary");
}

// ---------------------------------------------------------------- binary
enum class B { Add, Sub, Mul, Div, Max, Min, Pow, Atan2, Eq, Ne, Lt, Le, Gt, Ge };

template <B op, typename A>
__device__ __forceinline__ auto binary_fn(A x, A y, A alpha) {
  if constexpr (op == B::Add) return x + alpha * y;
  else if constexpr (op == B::Sub) return x - alpha * y;
  else if constexpr (op == B::Mul) return x * y;
  else if constexpr (op == B::Div) return x / y;
  else if constexpr (op == B::Max) return (x != x || y != y) ? (x != x ? x : y) : (x > y ? x : y);
  else if constexpr (op == B::Min) return (x != x || y != y) ? (x != x ? x : y) : (x < y ? x : y);
  else if constexpr (op == B::Pow) return static_cast<A>(pow(static_cast<double>(x), static_cast<double>(y)));
  else if constexpr (op == B::Atan2) return static_cast<A>(atan2(static_cast<double>(x), static_cast<double>(y)));
  else if constexpr (op == B::Eq) return x == y;
  else if constexpr (op == B::Ne) return x != y;
  else if constexpr (op == B::Lt) return x < y;
  else if constexpr (op == B::Le) return x <= y;
  else if constexpr (op == B::Gt) return x > y;
  else return x >= y;
}

template <B op> constexpr bool is_compare = op == B::Eq || op == B::Ne || op == B::Lt || op == B::Le || op == B::Gt || op == B::Ge;

template <B op, typename T>
__global__ void binary_kernel(Iter<3> it, int64_t n, typename Acc<T>::type alpha) {
  using A = typename Acc<T>::type;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    char* q[3];
    it.offsets(i, q);
    A x = load(*reinterpret_cast<const T*>(q[1]));
    A y = load(*reinterpret_cast<const T*>(q[2]));
    if constexpr (is_compare<op>) *reinterpret_cast<bool*>(q[0]) = binary_fn<op, A>(x, y, alpha);
    else *reinterpret_cast<T*>(q[0]) = cast<T>(binary_fn<op, A>(x, y, alpha));
  }
}

template <B op, typename T>
void binary(const Tensor& out, const Tensor& a, const Tensor& b, const ew::Params& p) {
  using A = typename Acc<T>::type;
  set_device(out.device().index);
  const Tensor* ins[2] = {&a, &b};
  auto it = make_iter<3>(out, ins);
  int64_t n = out.numel();
  A alpha = p.alpha.kind == Scalar::Float ? static_cast<A>(p.alpha.f) : static_cast<A>(p.alpha.i);
  binary_kernel<op, T><<<blocks_for(n), kThreads>>>(it, n, alpha);
  check_launch("binary");
}

// ---------------------------------------------------------------- registration
#define REG_ALL_DTYPES(OPID, FN)                                         \
  HERON_REGISTER_KERNEL(OPID, "cuda", DType::Float32, &FN<float>);         \
  HERON_REGISTER_KERNEL(OPID, "cuda", DType::Float64, &FN<double>);        \
  HERON_REGISTER_KERNEL(OPID, "cuda", DType::Float16, &FN<__half>);        \
  HERON_REGISTER_KERNEL(OPID, "cuda", DType::BFloat16, &FN<__nv_bfloat16>); \
  HERON_REGISTER_KERNEL(OPID, "cuda", DType::Int8, &FN<int8_t>);           \
  HERON_REGISTER_KERNEL(OPID, "cuda", DType::UInt8, &FN<uint8_t>);         \
  HERON_REGISTER_KERNEL(OPID, "cuda", DType::Int32, &FN<int32_t>);         \
  HERON_REGISTER_KERNEL(OPID, "cuda", DType::Int64, &FN<int64_t>);         \
  HERON_REGISTER_KERNEL(OPID, "cuda", DType::Bool, &FN<bool>)

REG_ALL_DTYPES(OpId::copy_, copy_);
REG_ALL_DTYPES(OpId::full, fill);

#define REG_UNARY_FLOAT(NAME, U_)                                                      \
  HERON_REGISTER_KERNEL(OpId::NAME, "cuda", DType::Float32, (&unary<U_, float>));       \
  HERON_REGISTER_KERNEL(OpId::NAME, "cuda", DType::Float64, (&unary<U_, double>));      \
  HERON_REGISTER_KERNEL(OpId::NAME, "cuda", DType::Float16, (&unary<U_, __half>));      \
  HERON_REGISTER_KERNEL(OpId::NAME, "cuda", DType::BFloat16, (&unary<U_, __nv_bfloat16>))
#define REG_UNARY_SIGNED(NAME, U_)                                                 \
  REG_UNARY_FLOAT(NAME, U_);                                                       \
  HERON_REGISTER_KERNEL(OpId::NAME, "cuda", DType::Int32, (&unary<U_, int32_t>));   \
  HERON_REGISTER_KERNEL(OpId::NAME, "cuda", DType::Int64, (&unary<U_, int64_t>))

REG_UNARY_SIGNED(neg, U::Neg);
REG_UNARY_SIGNED(abs, U::Abs);
REG_UNARY_SIGNED(square, U::Square);
REG_UNARY_SIGNED(relu, U::Relu);
REG_UNARY_FLOAT(exp, U::Exp);
REG_UNARY_FLOAT(expm1, U::Expm1);
REG_UNARY_FLOAT(log, U::Log);
REG_UNARY_FLOAT(log1p, U::Log1p);
REG_UNARY_FLOAT(log2, U::Log2);
REG_UNARY_FLOAT(sqrt, U::Sqrt);
REG_UNARY_FLOAT(rsqrt, U::Rsqrt);
REG_UNARY_FLOAT(sin, U::Sin);
REG_UNARY_FLOAT(cos, U::Cos);
REG_UNARY_FLOAT(tan, U::Tan);
REG_UNARY_FLOAT(tanh, U::Tanh);
REG_UNARY_FLOAT(sigmoid, U::Sigmoid);
REG_UNARY_FLOAT(gelu, U::Gelu);
REG_UNARY_FLOAT(silu, U::Silu);
REG_UNARY_FLOAT(softplus, U::Softplus);
REG_UNARY_FLOAT(erf, U::Erf);
REG_UNARY_FLOAT(floor, U::Floor);
REG_UNARY_FLOAT(ceil, U::Ceil);
REG_UNARY_FLOAT(trunc, U::Trunc);
REG_UNARY_FLOAT(reciprocal, U::Reciprocal);

#define REG_BINARY(NAME, B_, T, DT) HERON_REGISTER_KERNEL(OpId::NAME, "cuda", DType::DT, (&binary<B_, T>))
#define REG_BINARY_NUM(NAME, B_)          \
  REG_BINARY(NAME, B_, float, Float32);   \
  REG_BINARY(NAME, B_, double, Float64);  \
  REG_BINARY(NAME, B_, __half, Float16);  \
  REG_BINARY(NAME, B_, __nv_bfloat16, BFloat16); \
  REG_BINARY(NAME, B_, int32_t, Int32);   \
  REG_BINARY(NAME, B_, int64_t, Int64)
#define REG_BINARY_FLOAT(NAME, B_)        \
  REG_BINARY(NAME, B_, float, Float32);   \
  REG_BINARY(NAME, B_, double, Float64);  \
  REG_BINARY(NAME, B_, __half, Float16);  \
  REG_BINARY(NAME, B_, __nv_bfloat16, BFloat16)

REG_BINARY_NUM(add, B::Add);
REG_BINARY_NUM(sub, B::Sub);
REG_BINARY_NUM(mul, B::Mul);
REG_BINARY_FLOAT(div, B::Div);  // integer division checks divisors on the host: not on cuda yet
REG_BINARY_NUM(maximum, B::Max);
REG_BINARY_NUM(minimum, B::Min);
REG_BINARY_FLOAT(pow, B::Pow);
REG_BINARY_FLOAT(atan2, B::Atan2);
REG_BINARY_NUM(eq, B::Eq);
REG_BINARY_NUM(ne, B::Ne);
REG_BINARY_NUM(lt, B::Lt);
REG_BINARY_NUM(le, B::Le);
REG_BINARY_NUM(gt, B::Gt);
REG_BINARY_NUM(ge, B::Ge);

}  // namespace
}  // namespace cuda
}  // namespace heron
