// SSE2 helpers shared by the CPU reduction and softmax kernels: nan-propagating max / min of a
// contiguous float32 / float64 array, and the same folded into a row of running extremes.
// (SSE2 is part of x86-64; other targets use the scalar loops of the callers.)
#pragma once
#include <cstdint>
#include <limits>

#if defined(__SSE2__)
#include <emmintrin.h>

namespace heron {
namespace cpu {

// max / min of n >= 16 contiguous floats or doubles with SSE2: maxps/minps lanes, plus a mask of
// the nans seen (maxps drops them), so the result propagates nan like the scalar rule.
template <bool Max>
inline float extreme_sse(const float* x, int64_t n) {
  auto mm = [](__m128 a, __m128 b) { return Max ? _mm_max_ps(a, b) : _mm_min_ps(a, b); };
  __m128 a0 = _mm_loadu_ps(x), a1 = _mm_loadu_ps(x + 4), a2 = _mm_loadu_ps(x + 8), a3 = _mm_loadu_ps(x + 12);
  __m128 nan = _mm_or_ps(_mm_cmpunord_ps(a0, a1), _mm_cmpunord_ps(a2, a3));
  int64_t i = 16;
  for (; i + 16 <= n; i += 16) {
    __m128 b0 = _mm_loadu_ps(x + i), b1 = _mm_loadu_ps(x + i + 4), b2 = _mm_loadu_ps(x + i + 8), b3 = _mm_loadu_ps(x + i + 12);
    a0 = mm(a0, b0);
    a1 = mm(a1, b1);
    a2 = mm(a2, b2);
    a3 = mm(a3, b3);
    nan = _mm_or_ps(nan, _mm_or_ps(_mm_cmpunord_ps(b0, b1), _mm_cmpunord_ps(b2, b3)));
  }
  if (_mm_movemask_ps(nan)) return std::numeric_limits<float>::quiet_NaN();
  alignas(16) float l[4];
  _mm_store_ps(l, mm(mm(a0, a1), mm(a2, a3)));
  float r = l[0];
  for (int j = 1; j < 4; ++j) r = Max ? (l[j] > r ? l[j] : r) : (l[j] < r ? l[j] : r);
  for (; i < n; ++i) {
    float v = x[i];
    if (v != v) return v;
    r = Max ? (v > r ? v : r) : (v < r ? v : r);
  }
  return r;
}
template <bool Max>
inline double extreme_sse(const double* x, int64_t n) {
  auto mm = [](__m128d a, __m128d b) { return Max ? _mm_max_pd(a, b) : _mm_min_pd(a, b); };
  __m128d a0 = _mm_loadu_pd(x), a1 = _mm_loadu_pd(x + 2), a2 = _mm_loadu_pd(x + 4), a3 = _mm_loadu_pd(x + 6);
  __m128d nan = _mm_or_pd(_mm_cmpunord_pd(a0, a1), _mm_cmpunord_pd(a2, a3));
  int64_t i = 8;
  for (; i + 8 <= n; i += 8) {
    __m128d b0 = _mm_loadu_pd(x + i), b1 = _mm_loadu_pd(x + i + 2), b2 = _mm_loadu_pd(x + i + 4), b3 = _mm_loadu_pd(x + i + 6);
    a0 = mm(a0, b0);
    a1 = mm(a1, b1);
    a2 = mm(a2, b2);
    a3 = mm(a3, b3);
    nan = _mm_or_pd(nan, _mm_or_pd(_mm_cmpunord_pd(b0, b1), _mm_cmpunord_pd(b2, b3)));
  }
  if (_mm_movemask_pd(nan)) return std::numeric_limits<double>::quiet_NaN();
  alignas(16) double l[2];
  _mm_store_pd(l, mm(mm(a0, a1), mm(a2, a3)));
  double r = Max ? (l[1] > l[0] ? l[1] : l[0]) : (l[1] < l[0] ? l[1] : l[0]);
  for (; i < n; ++i) {
    double v = x[i];
    if (v != v) return v;
    r = Max ? (v > r ? v : r) : (v < r ? v : r);
  }
  return r;
}
// st[w] = extreme(st[w], x[w]), nan-propagating (a nan in either stays).
template <bool Max>
inline void extreme_row_sse(float* st, const float* x, int64_t n) {
  int64_t w = 0;
  for (; w + 4 <= n; w += 4) {
    __m128 a = _mm_loadu_ps(st + w), b = _mm_loadu_ps(x + w);
    __m128 r = Max ? _mm_max_ps(b, a) : _mm_min_ps(b, a);  // a when either is nan
    __m128 bn = _mm_cmpunord_ps(b, b);
    _mm_storeu_ps(st + w, _mm_or_ps(_mm_and_ps(bn, b), _mm_andnot_ps(bn, r)));
  }
  for (; w < n; ++w) {
    float a = st[w], b = x[w];
    st[w] = ((Max ? a > b : a < b) || a != a) ? a : b;
  }
}
template <bool Max>
inline void extreme_row_sse(double* st, const double* x, int64_t n) {
  int64_t w = 0;
  for (; w + 2 <= n; w += 2) {
    __m128d a = _mm_loadu_pd(st + w), b = _mm_loadu_pd(x + w);
    __m128d r = Max ? _mm_max_pd(b, a) : _mm_min_pd(b, a);
    __m128d bn = _mm_cmpunord_pd(b, b);
    _mm_storeu_pd(st + w, _mm_or_pd(_mm_and_pd(bn, b), _mm_andnot_pd(bn, r)));
  }
  for (; w < n; ++w) {
    double a = st[w], b = x[w];
    st[w] = ((Max ? a > b : a < b) || a != a) ? a : b;
  }
}

}  // namespace cpu
}  // namespace heron
#endif
