// Helpers shared by the CPU nn kernels: deterministic chunked parallel sums and lane-split
// accumulation that the compiler vectorises without reassociating.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "core/ops/impl/nn.h"
#include "core/ops/kernels/cpu/loops.h"

namespace heron {
namespace cpu {
namespace nnk {

// Sum over [0, n) of f(i0, i1) (partial sums in double) in fixed chunks, so the result does not
// depend on the thread count.
template <typename F>
double chunked_sum(int64_t n, int64_t chunk, F f) {
  if (n <= 0) return 0.0;
  const int64_t nc = (n + chunk - 1) / chunk;
  if (nc == 1) return f(int64_t{0}, n);
  std::vector<double> part(static_cast<size_t>(nc), 0.0);
  parallel_for(0, nc, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) part[c] = f(c * chunk, std::min(n, (c + 1) * chunk));
  });
  double s = 0.0;
  for (double v : part) s += v;
  return s;
}

// Lane sums over one block [0, n) (n <= 1024, in L1): a1 = sum(u[i]), a2 = sum(u[i] * v[i]) where
// (shifted) u = p - k, v = p - k; (grad) u = g, v = x - m. SSE2 with 4 accumulators where available
// (plain loops of lanes are not reduced in SIMD without -ffast-math), scalar otherwise.
template <bool Grad, typename T>
inline void block_sums(const T* g, const T* p, int64_t n, T k, double& s1, double& s2) {
  int64_t i = 0;
  double t1 = 0, t2 = 0;
#if defined(__SSE2__)
  if constexpr (std::is_same_v<T, float>) {
    const __m128 kk = _mm_set1_ps(k);
    __m128 a0 = _mm_setzero_ps(), a1 = a0, b0 = a0, b1 = a0;
    for (; i + 8 <= n; i += 8) {
      __m128 v0 = _mm_sub_ps(_mm_loadu_ps(p + i), kk), v1 = _mm_sub_ps(_mm_loadu_ps(p + i + 4), kk);
      __m128 u0 = Grad ? _mm_loadu_ps(g + i) : v0, u1 = Grad ? _mm_loadu_ps(g + i + 4) : v1;
      a0 = _mm_add_ps(a0, u0);
      a1 = _mm_add_ps(a1, u1);
      b0 = _mm_add_ps(b0, _mm_mul_ps(u0, v0));
      b1 = _mm_add_ps(b1, _mm_mul_ps(u1, v1));
    }
    alignas(16) float la[4], lb[4];
    _mm_store_ps(la, _mm_add_ps(a0, a1));
    _mm_store_ps(lb, _mm_add_ps(b0, b1));
    for (int l = 0; l < 4; ++l) { t1 += la[l]; t2 += lb[l]; }
  } else if constexpr (std::is_same_v<T, double>) {
    const __m128d kk = _mm_set1_pd(k);
    __m128d a0 = _mm_setzero_pd(), a1 = a0, b0 = a0, b1 = a0;
    for (; i + 4 <= n; i += 4) {
      __m128d v0 = _mm_sub_pd(_mm_loadu_pd(p + i), kk), v1 = _mm_sub_pd(_mm_loadu_pd(p + i + 2), kk);
      __m128d u0 = Grad ? _mm_loadu_pd(g + i) : v0, u1 = Grad ? _mm_loadu_pd(g + i + 2) : v1;
      a0 = _mm_add_pd(a0, u0);
      a1 = _mm_add_pd(a1, u1);
      b0 = _mm_add_pd(b0, _mm_mul_pd(u0, v0));
      b1 = _mm_add_pd(b1, _mm_mul_pd(u1, v1));
    }
    alignas(16) double la[2], lb[2];
    _mm_store_pd(la, _mm_add_pd(a0, a1));
    _mm_store_pd(lb, _mm_add_pd(b0, b1));
    t1 += la[0] + la[1];
    t2 += lb[0] + lb[1];
  }
#endif
  for (; i < n; ++i) {
    const T v = p[i] - k;
    const T u = Grad ? g[i] : v;
    t1 += u;
    t2 += static_cast<double>(u) * v;
  }
  s1 += t1;
  s2 += t2;
}

// s1 += sum(p[i] - k), s2 += sum((p[i] - k)^2) over n elements, by blocks of 1024 added in double.
template <typename T>
inline void shifted_sums(const T* p, int64_t n, T k, double& s1, double& s2) {
  for (int64_t b0 = 0; b0 < n; b0 += 1024) block_sums<false, T>(nullptr, p + b0, std::min<int64_t>(1024, n - b0), k, s1, s2);
}

// sg += sum(g[i]), sgx += sum(g[i] * (x[i] - m)).
template <typename T>
inline void grad_sums(const T* g, const T* x, int64_t n, T m, double& sg, double& sgx) {
  for (int64_t b0 = 0; b0 < n; b0 += 1024) block_sums<true, T>(g + b0, x + b0, std::min<int64_t>(1024, n - b0), m, sg, sgx);
}

// Natural log of n contiguous floats, written so that the compiler vectorises it (bit tricks on
// uint32 and selects, no calls): Cephes' logf polynomial (about 1 ulp). Zero, negative, inf, nan
// and subnormal inputs are redone with std::log afterwards, so those follow libm exactly.
inline void log_f32(const float* in, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    float x = in[i];
    uint32_t bits;
    std::memcpy(&bits, &x, 4);
    const int32_t e0 = static_cast<int32_t>(bits >> 23) - 126;
    const uint32_t mb = (bits & 0x007FFFFFu) | 0x3F000000u;  // mantissa in [0.5, 1)
    float m;
    std::memcpy(&m, &mb, 4);
    const bool small = m < 0.707106781186547524f;
    const float e = static_cast<float>(e0 - (small ? 1 : 0));
    m = m - 1.0f + (small ? m : 0.0f);
    const float z = m * m;
    float y = 7.0376836292e-2f;
    y = y * m - 1.1514610310e-1f;
    y = y * m + 1.1676998740e-1f;
    y = y * m - 1.2420140846e-1f;
    y = y * m + 1.4249322787e-1f;
    y = y * m - 1.6668057665e-1f;
    y = y * m + 2.0000714765e-1f;
    y = y * m - 2.4999993993e-1f;
    y = y * m + 3.3333331174e-1f;
    y = y * m * z;
    y += -2.12194440e-4f * e;
    y += -0.5f * z;
    out[i] = m + y + 0.693359375f * e;
  }
  for (int64_t i = 0; i < n; ++i) {
    const float x = in[i];
    if (!(x >= 1.17549435e-38f && x <= 3.40282347e38f)) out[i] = std::log(x);
  }
}

// log1p of n contiguous floats through log_f32 with Goldberg's correction:
// log1p(v) = log(u) * v / (u - 1) for u = 1 + v != 1, else v (accurate for tiny v). tmp: n floats.
inline void log1p_f32(const float* in, float* out, float* tmp, int64_t n) {
  for (int64_t i = 0; i < n; ++i) tmp[i] = 1.0f + in[i];
  log_f32(tmp, out, n);
  for (int64_t i = 0; i < n; ++i) {
    const float v = in[i], u = tmp[i], d = u - 1.0f;
    out[i] = d == 0.0f ? v : out[i] * (v / d);
  }
  for (int64_t i = 0; i < n; ++i)
    if (!(in[i] > -1.0f && in[i] <= 3.0e38f)) out[i] = std::log1p(in[i]);
}

// Mean and biased variance from shifted sums over n elements (shift k).
inline void moments(double s1, double s2, int64_t n, double k, double& mean, double& var) {
  double m1 = s1 / static_cast<double>(n);
  mean = k + m1;
  var = std::max(0.0, s2 / static_cast<double>(n) - m1 * m1);
}

}  // namespace nnk
}  // namespace cpu
}  // namespace heron
