// CPU kernels of the random ops on Philox4x32-10. Work is split over the thread pool by Philox
// block, and element i reads only block offset + i / per_block, so the output is the same for
// every thread count. Block layout: core/ops/impl/creation_kernels.h.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/ops/generated/ops_gen.h"
#include "core/ops/impl/creation_kernels.h"
#include "core/ops/kernels/cpu/loops.h"
#include "core/ops/kernels/cpu/register.h"
#include "core/util/philox.h"

namespace heron {
namespace cpu {
namespace {

constexpr double kTwoPi = 6.283185307179586476925286766559;

inline uint64_t word64(const std::array<uint32_t, 4>& w, int k) {
  return (static_cast<uint64_t>(w[2 * k]) << 32) | w[2 * k + 1];
}

// Runs body(block, first_element) for every block covering n elements, per_block per block.
template <typename F>
void for_blocks(int64_t n, int64_t per_block, F&& body) {
  const int64_t nblocks = (n + per_block - 1) / per_block;
  parallel_for(0, nblocks, std::max<int64_t>(1, kGrain / per_block), [&](int64_t b, int64_t e) {
    for (int64_t blk = b; blk < e; ++blk) body(blk, blk * per_block);
  });
}

// The largest value of T below v (v finite or inf).
template <typename T>
T next_down(T v) {
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    return std::nextafter(v, -std::numeric_limits<T>::infinity());
  } else {
    T r = v;
    if (r.bits & 0x8000u) ++r.bits;          // negative: larger magnitude
    else if (r.bits == 0) r.bits = 0x8001u;  // +0 -> smallest negative
    else --r.bits;
    return r;
  }
}

// Uniform in [0, 1) exactly representable in T (as many bits as T's significand).
template <typename T>
inline double unit32(uint32_t x) {
  if constexpr (std::is_same_v<T, Half>) return static_cast<double>(x >> 21) * (1.0 / 2048.0);
  else if constexpr (std::is_same_v<T, BFloat16>) return static_cast<double>(x >> 24) * (1.0 / 256.0);
  else return static_cast<double>(u32_to_unit_float(x));
}

template <typename T>
inline T uniform_value(double u, double low, double high) {
  T t = convert<T>(low + u * (high - low));
  if (high > low)
    while (static_cast<double>(static_cast<opmath_t<T>>(t)) >= high) t = next_down(t);
  return t;
}

// ------------------------------------------------------------------ rand
template <typename T>
void rand_kernel(const Tensor& out, double low, double high, uint64_t seed, uint64_t offset) {
  T* o = out.data<T>();
  const int64_t n = out.numel();
  if constexpr (std::is_same_v<T, double>) {
    for_blocks(n, 2, [&](int64_t blk, int64_t i0) {
      auto w = philox_block(seed, offset + static_cast<uint64_t>(blk));
      for (int k = 0; k < 2 && i0 + k < n; ++k) o[i0 + k] = uniform_value<T>(u64_to_unit_double(word64(w, k)), low, high);
    });
  } else {
    for_blocks(n, 4, [&](int64_t blk, int64_t i0) {
      auto w = philox_block(seed, offset + static_cast<uint64_t>(blk));
      for (int k = 0; k < 4 && i0 + k < n; ++k) o[i0 + k] = uniform_value<T>(unit32<T>(w[k]), low, high);
    });
  }
}

// ------------------------------------------------------------------ randn (Box-Muller)
template <typename T>
void randn_kernel(const Tensor& out, double mean, double std, uint64_t seed, uint64_t offset) {
  T* o = out.data<T>();
  const int64_t n = out.numel();
  for_blocks(n, 2, [&](int64_t blk, int64_t i0) {
    auto w = philox_block(seed, offset + static_cast<uint64_t>(blk));
    double u1 = u64_to_unit_double(word64(w, 0)), u2 = u64_to_unit_double(word64(w, 1));
    double r = std::sqrt(-2.0 * std::log1p(-u1));  // 1 - u1 in (0, 1]
    double th = kTwoPi * u2;
    o[i0] = convert<T>(mean + std * r * std::cos(th));
    if (i0 + 1 < n) o[i0 + 1] = convert<T>(mean + std * r * std::sin(th));
  });
}

// ------------------------------------------------------------------ randint
template <typename T>
void randint_kernel(const Tensor& out, int64_t low, int64_t high, uint64_t seed, uint64_t offset) {
  T* o = out.data<T>();
  const int64_t n = out.numel();
  const uint64_t range = static_cast<uint64_t>(high) - static_cast<uint64_t>(low);
  for_blocks(n, 2, [&](int64_t blk, int64_t i0) {
    auto w = philox_block(seed, offset + static_cast<uint64_t>(blk));
    for (int k = 0; k < 2 && i0 + k < n; ++k) {
      uint64_t v = static_cast<uint64_t>(low) + word64(w, k) % range;
      o[i0 + k] = convert<T>(static_cast<int64_t>(v));
    }
  });
}

// ------------------------------------------------------------------ bernoulli
template <typename T>
void bernoulli_kernel(const Tensor& out, const Tensor& p, uint64_t seed, uint64_t offset) {
  const T* q = p.data<T>();
  T* o = out.data<T>();
  const int64_t n = out.numel();
  for (int64_t i = 0; i < n; ++i) {
    double v = static_cast<double>(static_cast<opmath_t<T>>(q[i]));
    if (!(v >= 0.0 && v <= 1.0))
      throw Error(ErrorCode::InvalidArgument,
                  str_cat("bernoulli: probabilities must be in [0, 1], got ", v, " at flat index ", i), "bernoulli");
  }
  const T one = convert<T>(int64_t{1}), zero = convert<T>(int64_t{0});
  for_blocks(n, 2, [&](int64_t blk, int64_t i0) {
    auto w = philox_block(seed, offset + static_cast<uint64_t>(blk));
    for (int k = 0; k < 2 && i0 + k < n; ++k) {
      double v = static_cast<double>(static_cast<opmath_t<T>>(q[i0 + k]));
      o[i0 + k] = u64_to_unit_double(word64(w, k)) < v ? one : zero;
    }
  });
}

// ------------------------------------------------------------------ randperm (Fisher-Yates)
template <typename T>
void randperm_kernel(const Tensor& out, uint64_t seed, uint64_t offset) {
  const int64_t n = out.numel();
  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), int64_t{0});
  for (int64_t i = n - 1; i >= 1; --i) {
    auto w = philox_block(seed, offset + static_cast<uint64_t>(i));
    int64_t j = static_cast<int64_t>(word64(w, 0) % static_cast<uint64_t>(i + 1));
    std::swap(perm[i], perm[j]);
  }
  T* o = out.data<T>();
  for (int64_t i = 0; i < n; ++i) o[i] = convert<T>(perm[i]);
}


HERON_CPU_KERNELS_FLOAT(ops::OpId::rand, rand_kernel);
HERON_CPU_KERNELS_FLOAT(ops::OpId::randn, randn_kernel);
HERON_CPU_KERNELS_FLOAT(ops::OpId::randint, randint_kernel);
HERON_CPU_KERNELS_INT(ops::OpId::randint, randint_kernel);
HERON_CPU_KERNELS_FLOAT(ops::OpId::bernoulli, bernoulli_kernel);
HERON_CPU_KERNELS_INT(ops::OpId::randperm, randperm_kernel);


}  // namespace
}  // namespace cpu
}  // namespace heron
