// Helpers shared by the CPU elementwise kernels: dtype lists for compact registration, wrapping
// integer arithmetic (signed overflow wraps like PyTorch/numpy instead of being undefined), and the
// generic unary/binary kernel loops.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "core/ops/dispatcher.h"
#include "core/ops/impl/elementwise.h"
#include "core/ops/kernels/cpu/loops.h"

namespace heron {
namespace cpu {
namespace ewk {

template <typename... Ts> struct TypeList {};
using FloatTypes = TypeList<float, double, Half, BFloat16>;
using IntTypes = TypeList<int8_t, uint8_t, int32_t, int64_t>;
using SignedIntTypes = TypeList<int8_t, int32_t, int64_t>;
using IntBoolTypes = TypeList<int8_t, uint8_t, int32_t, int64_t, bool>;
using NumericTypes = TypeList<float, double, Half, BFloat16, int8_t, uint8_t, int32_t, int64_t>;
using AllTypes = TypeList<float, double, Half, BFloat16, int8_t, uint8_t, int32_t, int64_t, bool>;

// An integer type other than bool.
template <typename T> constexpr bool kIsInt = std::is_integral_v<T> && !std::is_same_v<T, bool>;

template <typename T> inline T wrap_add(T a, T b) {
  using U = std::make_unsigned_t<T>;
  return static_cast<T>(static_cast<U>(static_cast<U>(a) + static_cast<U>(b)));
}
template <typename T> inline T wrap_sub(T a, T b) {
  using U = std::make_unsigned_t<T>;
  return static_cast<T>(static_cast<U>(static_cast<U>(a) - static_cast<U>(b)));
}
template <typename T> inline T wrap_mul(T a, T b) {
  using U = std::make_unsigned_t<T>;
  // uint8 operands promote to int, where the product cannot overflow.
  return static_cast<T>(static_cast<U>(static_cast<U>(a) * static_cast<U>(b)));
}
template <typename T> inline T wrap_neg(T a) { return wrap_sub(T(0), a); }

// Runs loop(char** ptrs, const int64_t* strides, int64_t n) over out (fresh, contiguous) and
// inputs broadcast to it. When every input is either contiguous with out's size or a single
// element, the whole range is one flat 1-d loop (no iterator set-up: this is the common case and
// what keeps ops on tiny tensors cheap); otherwise the general strided iterator runs.
template <int N, typename Loop>
void run_elementwise(const Tensor& out, const std::array<const Tensor*, N - 1>& ins, Loop&& loop) {
  const int64_t n = out.numel();
  if (n == 0) return;
  std::array<char*, N> ptrs;
  int64_t strides[N];
  bool flat = out.is_contiguous();
  ptrs[0] = static_cast<char*>(out.raw_data());
  strides[0] = static_cast<int64_t>(out.itemsize());
  for (int k = 1; k < N && flat; ++k) {
    const Tensor& t = *ins[k - 1];
    ptrs[k] = static_cast<char*>(t.raw_data());
    if (t.numel() == 1) strides[k] = 0;
    // Broadcasting to out without growing means only leading/size-1 dims differ: same order.
    else if (t.numel() == n && t.is_contiguous()) strides[k] = static_cast<int64_t>(t.itemsize());
    else flat = false;
  }
  if (!flat) {
    make_iter<N>(out, ins).run(loop);
    return;
  }
  if (n < 2 * kGrain) {
    loop(ptrs.data(), strides, n);
    return;
  }
  parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
    std::array<char*, N> p;
    for (int k = 0; k < N; ++k) p[k] = ptrs[k] + b * strides[k];
    loop(p.data(), strides, e - b);
  });
}

// True when an Op<M> provides a contiguous float32 SIMD routine `static void vec_f32(float*, const float*, int64_t)`.
template <typename O, typename = void> struct HasVecF32 : std::false_type {};
template <typename O> struct HasVecF32<O, std::void_t<decltype(&O::vec_f32)>> : std::true_type {};

// out = Op(in), Op<opmath_t<T>> built from the params; out is Out (T or bool).
template <template <typename> class Op, typename T, typename Out>
void unary_kernel(const Tensor& out, const Tensor& in, const ew::Params& p) {
  using M = opmath_t<T>;
  const Op<M> op(p);
  run_elementwise<2>(out, {&in}, [&](char** ptr, const int64_t* s, int64_t n) {
    if (s[0] == static_cast<int64_t>(sizeof(Out)) && s[1] == static_cast<int64_t>(sizeof(T))) {
      Out* o = reinterpret_cast<Out*>(ptr[0]);
      const T* a = reinterpret_cast<const T*>(ptr[1]);
      if constexpr (std::is_same_v<T, float> && std::is_same_v<Out, float> && HasVecF32<Op<M>>::value) {
        Op<M>::vec_f32(o, a, n);
      } else {
        for (int64_t i = 0; i < n; ++i) o[i] = static_cast<Out>(op(static_cast<M>(a[i])));
      }
    } else if constexpr (std::is_same_v<T, float> && std::is_same_v<Out, float> && HasVecF32<Op<M>>::value) {
      // Strided: gather, run the same SIMD routine, scatter (results do not depend on layout).
      float buf[256] = {};  // zero-initialised: GCC cannot see that every read was written
      for (int64_t i0 = 0; i0 < n; i0 += 256) {
        const int64_t m = std::min<int64_t>(256, n - i0);
        for (int64_t i = 0; i < m; ++i) buf[i] = *reinterpret_cast<const float*>(ptr[1] + (i0 + i) * s[1]);
        Op<M>::vec_f32(buf, buf, m);
        for (int64_t i = 0; i < m; ++i) *reinterpret_cast<float*>(ptr[0] + (i0 + i) * s[0]) = buf[i];
      }
    } else {
      for (int64_t i = 0; i < n; ++i)
        *reinterpret_cast<Out*>(ptr[0] + i * s[0]) =
            static_cast<Out>(op(static_cast<M>(*reinterpret_cast<const T*>(ptr[1] + i * s[1]))));
    }
  });
}

template <template <typename> class Op, bool kBoolOut, typename... Ts>
void reg_unary(int op, TypeList<Ts...>) {
  (register_kernel(op, "cpu", CppToDType<Ts>::value,
                   reinterpret_cast<KernelFn>(&unary_kernel<Op, Ts, std::conditional_t<kBoolOut, bool, Ts>>)),
   ...);
}

// out = Op(a, b), a and b of type T broadcast to out. Ops with a float SIMD path set
// kVecBin (the vec::BinOp in `binop`, alpha in `alpha`).
template <typename O, typename = void> struct HasVecBin : std::false_type {};
template <typename O> struct HasVecBin<O, std::void_t<decltype(O::kVecBin)>> : std::true_type {};

template <template <typename> class Op, typename T, typename Out>
void binary_kernel(const Tensor& out, const Tensor& a, const Tensor& b, const ew::Params& p) {
  using M = opmath_t<T>;
  const Op<M> op(p);
  run_elementwise<3>(out, {&a, &b}, [&](char** ptr, const int64_t* s, int64_t n) {
    constexpr int64_t so = sizeof(Out), st = sizeof(T);
    Out* o = reinterpret_cast<Out*>(ptr[0]);
    const T* x = reinterpret_cast<const T*>(ptr[1]);
    const T* y = reinterpret_cast<const T*>(ptr[2]);
    if constexpr ((std::is_same_v<T, float> || std::is_same_v<T, double>) && std::is_same_v<Out, T> &&
                  HasVecBin<Op<M>>::value) {
      if (s[0] == so && (s[1] == st || s[1] == 0) && (s[2] == st || s[2] == 0)) {
        op.vec(o, x, s[1] ? 1 : 0, y, s[2] ? 1 : 0, n);
        return;
      }
    }
    if (s[0] == so && s[1] == st && s[2] == st) {
      for (int64_t i = 0; i < n; ++i) o[i] = static_cast<Out>(op(static_cast<M>(x[i]), static_cast<M>(y[i])));
    } else if (s[0] == so && s[1] == st && s[2] == 0) {
      const M yv = static_cast<M>(y[0]);
      for (int64_t i = 0; i < n; ++i) o[i] = static_cast<Out>(op(static_cast<M>(x[i]), yv));
    } else if (s[0] == so && s[1] == 0 && s[2] == st) {
      const M xv = static_cast<M>(x[0]);
      for (int64_t i = 0; i < n; ++i) o[i] = static_cast<Out>(op(xv, static_cast<M>(y[i])));
    } else {
      for (int64_t i = 0; i < n; ++i)
        *reinterpret_cast<Out*>(ptr[0] + i * s[0]) =
            static_cast<Out>(op(static_cast<M>(*reinterpret_cast<const T*>(ptr[1] + i * s[1])),
                                static_cast<M>(*reinterpret_cast<const T*>(ptr[2] + i * s[2]))));
    }
  });
}

template <template <typename> class Op, bool kBoolOut, typename... Ts>
void reg_binary(int op, TypeList<Ts...>) {
  (register_kernel(op, "cpu", CppToDType<Ts>::value,
                   reinterpret_cast<KernelFn>(&binary_kernel<Op, Ts, std::conditional_t<kBoolOut, bool, Ts>>)),
   ...);
}

}  // namespace ewk
}  // namespace cpu
}  // namespace heron
