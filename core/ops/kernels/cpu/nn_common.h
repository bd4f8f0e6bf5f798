// Helpers shared by the CPU nn kernels: deterministic chunked parallel sums and lane-split
// accumulation that the compiler vectorises without reassociating.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

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

// s1 += sum(p[i] - k), s2 += sum((p[i] - k)^2) over n elements, with 8 lanes in T per block of
// 1024 and the blocks added in double.
template <typename T>
inline void shifted_sums(const T* p, int64_t n, T k, double& s1, double& s2) {
  constexpr int L = 8;
  for (int64_t b0 = 0; b0 < n; b0 += 1024) {
    const int64_t b1 = std::min(n, b0 + 1024);
    T a1[L] = {}, a2[L] = {};
    int64_t i = b0;
    for (; i + L <= b1; i += L)
      for (int l = 0; l < L; ++l) {
        T d = p[i + l] - k;
        a1[l] += d;
        a2[l] += d * d;
      }
    double t1 = 0, t2 = 0;
    for (; i < b1; ++i) {
      T d = p[i] - k;
      t1 += d;
      t2 += static_cast<double>(d) * d;
    }
    for (int l = 0; l < L; ++l) { t1 += a1[l]; t2 += a2[l]; }
    s1 += t1;
    s2 += t2;
  }
}

// sg += sum(g[i]), sgx += sum(g[i] * (x[i] - m)).
template <typename T>
inline void grad_sums(const T* g, const T* x, int64_t n, T m, double& sg, double& sgx) {
  constexpr int L = 8;
  for (int64_t b0 = 0; b0 < n; b0 += 1024) {
    const int64_t b1 = std::min(n, b0 + 1024);
    T a1[L] = {}, a2[L] = {};
    int64_t i = b0;
    for (; i + L <= b1; i += L)
      for (int l = 0; l < L; ++l) {
        a1[l] += g[i + l];
        a2[l] += g[i + l] * (x[i + l] - m);
      }
    double t1 = 0, t2 = 0;
    for (; i < b1; ++i) {
      t1 += g[i];
      t2 += static_cast<double>(g[i]) * (x[i] - m);
    }
    for (int l = 0; l < L; ++l) { t1 += a1[l]; t2 += a2[l]; }
    sg += t1;
    sgx += t2;
  }
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
