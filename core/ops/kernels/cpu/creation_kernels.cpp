// CPU kernels of the creation ops: fill (any strided view), arange, linspace.
// Signatures in core/ops/impl/creation_kernels.h.
#include <algorithm>

#include "core/ops/generated/ops_gen.h"
#include "core/ops/impl/creation_kernels.h"
#include "core/ops/kernels/cpu/loops.h"
#include "core/ops/kernels/cpu/register.h"

namespace heron {
namespace cpu {
namespace {

template <typename T>
void fill_kernel(const Tensor& out, const Scalar& v) {
  const T val = v.to<T>();
  auto it = make_iter<1>(out, {});
  it.run([&](char** p, const int64_t* s, int64_t n) {
    if (s[0] == static_cast<int64_t>(sizeof(T))) {
      T* o = reinterpret_cast<T*>(p[0]);
      std::fill(o, o + n, val);
    } else {
      for (int64_t i = 0; i < n; ++i) *reinterpret_cast<T*>(p[0] + i * s[0]) = val;
    }
  });
}

template <typename T>
void arange_kernel(const Tensor& out, const Scalar& start, const Scalar& step) {
  T* o = out.data<T>();
  const int64_t n = out.numel();
  const bool ints = !start.is_float() && !step.is_float();
  parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
    if (ints) {
      // Unsigned (wrapping) arithmetic: every value lies in [start, end), so no result overflows.
      const uint64_t s0 = static_cast<uint64_t>(start.i), st = static_cast<uint64_t>(step.i);
      for (int64_t i = b; i < e; ++i) o[i] = convert<T>(static_cast<int64_t>(s0 + static_cast<uint64_t>(i) * st));
    } else {
      const double s = start.to_double(), st = step.to_double();
      for (int64_t i = b; i < e; ++i) o[i] = convert<T>(s + static_cast<double>(i) * st);
    }
  });
}

template <typename T>
void linspace_kernel(const Tensor& out, double start, double end) {
  T* o = out.data<T>();
  const int64_t n = out.numel();
  const double step = (end - start) / static_cast<double>(n - 1);
  const int64_t half = n / 2;
  parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      // Symmetric from both ends, so that the last value is exactly `end`.
      double v = i < half ? start + step * static_cast<double>(i) : end - step * static_cast<double>(n - 1 - i);
      o[i] = convert<T>(v);
    }
  });
}


HERON_CPU_KERNELS_ALL(ops::OpId::full, fill_kernel);
HERON_CPU_KERNELS_NUMERIC(ops::OpId::arange, arange_kernel);
HERON_CPU_KERNELS_NUMERIC(ops::OpId::linspace, linspace_kernel);


}  // namespace
}  // namespace cpu
}  // namespace heron
