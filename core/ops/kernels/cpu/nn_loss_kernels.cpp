// CPU kernels of the losses: cross_entropy (fused log_softmax) and nll_loss over (N, C, S),
// and the pointwise losses (mse, l1, smooth_l1, binary_cross_entropy[_with_logits]), with their
// backward ops. Losses are computed in double; reductions use fixed chunks (deterministic).
#include <cmath>
#include <cstring>
#include <vector>

#include "core/ops/kernels/cpu/nn_common.h"
#include "core/ops/kernels/cpu/register.h"
#include "core/ops/kernels/cpu/vec_math.h"

namespace heron {
namespace cpu {
namespace {
using namespace nn;
using nnk::chunked_sum;

constexpr int64_t kChunk = 8192;

template <typename T>
const T* ptr_or_null(const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; }

// Class index of sample i (checked), or -1 when it equals ignore_index.
inline int64_t class_of(const int64_t* tp, int64_t i, const ClassLossParams& p) {
  const int64_t t = tp[i];
  if (t == p.ignore_index) return -1;
  if (t < 0 || t >= p.C)
    throw Error(ErrorCode::IndexError, str_cat(p.op, ": target ", t, " (at sample ", i, ") is out of bounds for ", p.C, " classes"), p.op);
  return t;
}

// Checks every class-index target; returns sum over non-ignored samples of weight[target].
template <typename T>
double target_weight_sum(const int64_t* tp, const T* wp, int64_t n, const ClassLossParams& p) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) {
    int64_t t = class_of(tp, i, p);
    if (t >= 0) s += wp ? static_cast<double>(wp[t]) : 1.0;
  }
  return s;
}

// log-sum-exp over the C classes of sample (n, s) (stride S).
template <typename T>
inline double lse_of(const T* xs, int64_t C, int64_t S) {
  double mx = -INFINITY;
  for (int64_t c = 0; c < C; ++c) mx = std::max(mx, static_cast<double>(xs[c * S]));
  if (std::isinf(mx)) return mx;
  double se = 0;
  for (int64_t c = 0; c < C; ++c) se += std::exp(static_cast<double>(xs[c * S]) - mx);
  return mx + std::log(se);
}

// Row maximum of a contiguous float row in 8 lanes (nan propagates through the comparison).
inline float row_max(const float* x, int64_t C) {
  constexpr int L = 8;
  float m[L];
  for (int l = 0; l < L; ++l) m[l] = -INFINITY;
  int64_t c = 0;
  for (; c + L <= C; c += L)
    for (int l = 0; l < L; ++l) m[l] = x[c + l] > m[l] ? x[c + l] : m[l];
  float r = -INFINITY;
  for (; c < C; ++c) r = x[c] > r ? x[c] : r;
  for (int l = 0; l < L; ++l) r = m[l] > r ? m[l] : r;
  return r;
}

// float32 rows (S == 1): the SIMD exp of vec_math into a scratch row, summed in lanes.
inline double lse_row_f32(const float* x, int64_t C, std::vector<float>& buf) {
  const float mx = row_max(x, C);
  if (std::isinf(mx) || std::isnan(mx)) return lse_of(x, C, 1);
  buf.resize(static_cast<size_t>(C));
  float* b = buf.data();
  for (int64_t c = 0; c < C; ++c) b[c] = x[c] - mx;
  vec::exp_f32(b, b, C);
  constexpr int L = 8;
  float a[L] = {};
  int64_t c = 0;
  for (; c + L <= C; c += L)
    for (int l = 0; l < L; ++l) a[l] += b[c + l];
  double se = 0;
  for (; c < C; ++c) se += b[c];
  for (int l = 0; l < L; ++l) se += a[l];
  return static_cast<double>(mx) + std::log(se);
}

// log-sum-exp of sample at xs: the fast float32 path for contiguous rows, else lse_of.
template <typename T>
inline double lse_sample(const T* xs, int64_t C, int64_t S) {
  if constexpr (std::is_same_v<T, float>) {
    if (S == 1) {
      thread_local std::vector<float> buf;
      return lse_row_f32(xs, C, buf);
    }
  }
  return lse_of(xs, C, S);
}

// Writes out (none: per sample; else the reduced scalar) from per-sample losses f(i) in double.
template <typename T, typename F>
void reduce_samples(const Tensor& out, int64_t n, int reduction, double denom, F f) {
  T* op = out.data<T>();
  if (reduction == kNone) {
    parallel_for(0, n, std::max<int64_t>(1, kChunk / 8), [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) op[i] = static_cast<T>(f(i));
    });
    return;
  }
  double s = chunked_sum(n, kChunk / 8, [&](int64_t i0, int64_t i1) {
    double a = 0;
    for (int64_t i = i0; i < i1; ++i) a += f(i);
    return a;
  });
  op[0] = static_cast<T>(reduction == kMean ? s / denom : s);
}

// ------------------------------------------------------------------ cross_entropy, spatial (S > 1)
// Samples (n, s) for s in a block of up to kL consecutive positions are processed together: for
// each class c their logits x[n, c, s0:s0+L] are contiguous, so max, exp and sums run along s.
constexpr int64_t kL = 256;

template <typename T>
inline void exp_inplace(T* v, int64_t n) {
  if constexpr (std::is_same_v<T, float>) vec::exp_f32(v, v, n);
  else for (int64_t i = 0; i < n; ++i) v[i] = std::exp(v[i]);
}

// lse[l] = log sum_c exp(xb[c * S + l]) for l < len.
template <typename T>
void lse_block(const T* xb, int64_t C, int64_t S, int64_t len, T* mx, T* tmp, double* acc, double* lse) {
  for (int64_t l = 0; l < len; ++l) mx[l] = xb[l];
  for (int64_t c = 1; c < C; ++c) {
    const T* row = xb + c * S;
    for (int64_t l = 0; l < len; ++l) mx[l] = row[l] > mx[l] ? row[l] : mx[l];
  }
  for (int64_t l = 0; l < len; ++l) acc[l] = 0.0;
  for (int64_t c = 0; c < C; ++c) {
    const T* row = xb + c * S;
    for (int64_t l = 0; l < len; ++l) tmp[l] = row[l] - mx[l];
    exp_inplace(tmp, len);
    for (int64_t l = 0; l < len; ++l) acc[l] += tmp[l];
  }
  for (int64_t l = 0; l < len; ++l) lse[l] = static_cast<double>(mx[l]) + std::log(acc[l]);
}

// Per-sample losses (n * S) of the spatial case.
template <typename T>
void ce_spatial_forward(const T* xp, const int64_t* tpi, const T* tpf, const T* wp, const ClassLossParams& p, double wsum,
                        std::vector<double>& per) {
  const int64_t C = p.C, S = p.S, N = p.N, nb = (S + kL - 1) / kL;
  const double eps = p.label_smoothing;
  per.assign(static_cast<size_t>(N * S), 0.0);
  parallel_for(0, N * nb, std::max<int64_t>(1, kChunk / std::max<int64_t>(C * kL, 1)), [&](int64_t b0, int64_t b1) {
    T mx[kL], tmp[kL];
    double acc[kL], lse[kL], sx[kL];
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t n = b / nb, s0 = (b % nb) * kL, len = std::min(kL, S - s0);
      const T* xb = xp + n * C * S + s0;
      lse_block(xb, C, S, len, mx, tmp, acc, lse);
      double* pr = per.data() + n * S + s0;
      if (p.prob) {
        for (int64_t l = 0; l < len; ++l) sx[l] = 0.0;
        for (int64_t c = 0; c < C; ++c) {
          const T* row = xb + c * S;
          const T* q = tpf + n * C * S + c * S + s0;
          const double wc = wp ? static_cast<double>(wp[c]) : 1.0;
          for (int64_t l = 0; l < len; ++l)
            sx[l] -= wc * ((1.0 - eps) * static_cast<double>(q[l]) + eps / C) * (static_cast<double>(row[l]) - lse[l]);
        }
        for (int64_t l = 0; l < len; ++l) pr[l] = sx[l];
        continue;
      }
      if (eps > 0) {
        for (int64_t l = 0; l < len; ++l) sx[l] = 0.0;
        for (int64_t c = 0; c < C; ++c) {
          const T* row = xb + c * S;
          const double wc = wp ? static_cast<double>(wp[c]) : 1.0;
          for (int64_t l = 0; l < len; ++l) sx[l] += wc * static_cast<double>(row[l]);
        }
      }
      for (int64_t l = 0; l < len; ++l) {
        const int64_t t = class_of(tpi, n * S + s0 + l, p);
        if (t < 0) continue;
        const double wt = wp ? static_cast<double>(wp[t]) : 1.0;
        double v = -(1.0 - eps) * wt * (static_cast<double>(xb[t * S + l]) - lse[l]);
        if (eps > 0) v -= eps / C * (sx[l] - lse[l] * wsum);
        pr[l] = v;
      }
    }
  });
}

// Gradient of the spatial case; scale(i) is the upstream factor of sample i (mean/sum/none).
template <typename T, typename Scale>
void ce_spatial_backward(const T* xp, const int64_t* tpi, const T* tpf, const T* wp, T* op, const ClassLossParams& p, double wsum,
                         Scale scale) {
  const int64_t C = p.C, S = p.S, N = p.N, nb = (S + kL - 1) / kL;
  const double eps = p.label_smoothing;
  parallel_for(0, N * nb, std::max<int64_t>(1, kChunk / std::max<int64_t>(C * kL, 1)), [&](int64_t b0, int64_t b1) {
    T mx[kL], tmp[kL];
    double acc[kL], lse[kL], sumG[kL], sc[kL];
    int64_t tt[kL];
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t n = b / nb, s0 = (b % nb) * kL, len = std::min(kL, S - s0);
      const T* xb = xp + n * C * S + s0;
      T* ob = op + n * C * S + s0;
      lse_block(xb, C, S, len, mx, tmp, acc, lse);
      for (int64_t l = 0; l < len; ++l) {
        const int64_t i = n * S + s0 + l;
        tt[l] = p.prob ? 0 : class_of(tpi, i, p);
        sc[l] = tt[l] < 0 ? 0.0 : scale(i);
        sumG[l] = 0.0;
      }
      if (p.prob) {
        for (int64_t c = 0; c < C; ++c) {
          const T* q = tpf + n * C * S + c * S + s0;
          const double wc = wp ? static_cast<double>(wp[c]) : 1.0;
          for (int64_t l = 0; l < len; ++l) sumG[l] -= wc * ((1.0 - eps) * static_cast<double>(q[l]) + eps / C);
        }
      } else {
        for (int64_t l = 0; l < len; ++l)
          if (tt[l] >= 0) sumG[l] = -(1.0 - eps) * (wp ? static_cast<double>(wp[tt[l]]) : 1.0) - eps / C * wsum;
      }
      for (int64_t c = 0; c < C; ++c) {
        const T* row = xb + c * S;
        T* orow = ob + c * S;
        for (int64_t l = 0; l < len; ++l) tmp[l] = static_cast<T>(static_cast<double>(row[l]) - lse[l]);
        exp_inplace(tmp, len);
        const double wc = wp ? static_cast<double>(wp[c]) : 1.0;
        if (p.prob) {
          const T* q = tpf + n * C * S + c * S + s0;
          for (int64_t l = 0; l < len; ++l)
            orow[l] = static_cast<T>(sc[l] * (-wc * ((1.0 - eps) * static_cast<double>(q[l]) + eps / C) - tmp[l] * sumG[l]));
        } else {
          for (int64_t l = 0; l < len; ++l) orow[l] = static_cast<T>(sc[l] * (-eps / C * wc - tmp[l] * sumG[l]));
        }
      }
      for (int64_t l = 0; l < len; ++l) {
        if (p.prob) continue;
        if (tt[l] < 0) {
          for (int64_t c = 0; c < C; ++c) ob[c * S + l] = T(0);
          continue;
        }
        const double wt = wp ? static_cast<double>(wp[tt[l]]) : 1.0;
        T& o = ob[tt[l] * S + l];
        o = static_cast<T>(static_cast<double>(o) - sc[l] * (1.0 - eps) * wt);
      }
    }
  });
}

// ------------------------------------------------------------------ cross_entropy
template <typename T>
void cross_entropy_kernel(const Tensor& x, const Tensor& target, const Tensor& weight, const Tensor& out, const ClassLossParams& p) {
  const T* xp = x.data<T>();
  const T* wp = ptr_or_null<T>(weight);
  const int64_t C = p.C, S = p.S, n = p.N * S;
  const double eps = p.label_smoothing;
  double wsum = 0;
  for (int64_t c = 0; c < C; ++c) wsum += wp ? static_cast<double>(wp[c]) : 1.0;
  if (S > 1) {
    const int64_t* tpi = p.prob ? nullptr : target.data<int64_t>();
    const double denom = p.prob ? static_cast<double>(n) : target_weight_sum(tpi, wp, n, p);
    std::vector<double> per;
    ce_spatial_forward<T>(xp, tpi, p.prob ? target.data<T>() : nullptr, wp, p, wsum, per);
    reduce_samples<T>(out, n, p.reduction, denom, [&](int64_t i) { return per[i]; });
    return;
  }
  if (p.prob) {
    const T* tp = target.data<T>();
    reduce_samples<T>(out, n, p.reduction, static_cast<double>(n), [&](int64_t i) {
      const int64_t base = (i / S) * C * S + i % S;
      const double lse = lse_sample(xp + base, C, S);
      double l = 0;
      for (int64_t c = 0; c < C; ++c) {
        const double q = (1.0 - eps) * static_cast<double>(tp[base + c * S]) + eps / C;
        const double wc = wp ? static_cast<double>(wp[c]) : 1.0;
        l -= wc * q * (static_cast<double>(xp[base + c * S]) - lse);
      }
      return l;
    });
    return;
  }
  const int64_t* tp = target.data<int64_t>();
  const double denom = target_weight_sum(tp, wp, n, p);
  reduce_samples<T>(out, n, p.reduction, denom, [&](int64_t i) {
    const int64_t t = class_of(tp, i, p);
    if (t < 0) return 0.0;
    const int64_t base = (i / S) * C * S + i % S;
    const double lse = lse_sample(xp + base, C, S);
    const double wt = wp ? static_cast<double>(wp[t]) : 1.0;
    double l = -(1.0 - eps) * wt * (static_cast<double>(xp[base + t * S]) - lse);
    if (eps > 0) {
      double sx = 0;
      for (int64_t c = 0; c < C; ++c) sx += (wp ? static_cast<double>(wp[c]) : 1.0) * static_cast<double>(xp[base + c * S]);
      l -= eps / C * (sx - lse * wsum);
    }
    return l;
  });
}

// Scale of sample i's gradient: the upstream grad, divided by the mean's denominator.
template <typename T>
inline double sample_scale(const T* gp, int64_t i, int reduction, double denom) {
  if (reduction == kNone) return gp[i];
  return reduction == kMean ? static_cast<double>(gp[0]) / denom : static_cast<double>(gp[0]);
}

template <typename T>
void cross_entropy_backward_kernel(const Tensor& g, const Tensor& x, const Tensor& target, const Tensor& weight, const Tensor& gi,
                                   const ClassLossParams& p) {
  const T* gp = g.data<T>();
  const T* xp = x.data<T>();
  const T* wp = ptr_or_null<T>(weight);
  T* op = gi.data<T>();
  const int64_t C = p.C, S = p.S, n = p.N * S;
  const double eps = p.label_smoothing;
  double wsum = 0;
  for (int64_t c = 0; c < C; ++c) wsum += wp ? static_cast<double>(wp[c]) : 1.0;
  const T* tpf = p.prob ? target.data<T>() : nullptr;
  const int64_t* tpi = p.prob ? nullptr : target.data<int64_t>();
  const double denom = p.prob ? static_cast<double>(n) : target_weight_sum(tpi, wp, n, p);
  if (S > 1) {
    ce_spatial_backward<T>(xp, tpi, tpf, wp, op, p, wsum, [&](int64_t i) { return sample_scale(gp, i, p.reduction, denom); });
    return;
  }
  parallel_for(0, n, std::max<int64_t>(1, kChunk / std::max<int64_t>(C, 1)), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t base = (i / S) * C * S + i % S;
      const int64_t t = p.prob ? 0 : class_of(tpi, i, p);
      if (t < 0) {
        for (int64_t c = 0; c < C; ++c) op[base + c * S] = T(0);
        continue;
      }
      const double s = sample_scale(gp, i, p.reduction, denom);
      const double lse = lse_sample(xp + base, C, S);
      if (p.prob) {
        double sumG = 0;
        for (int64_t c = 0; c < C; ++c) {
          const double q = (1.0 - eps) * static_cast<double>(tpf[base + c * S]) + eps / C;
          sumG -= (wp ? static_cast<double>(wp[c]) : 1.0) * q;
        }
        for (int64_t c = 0; c < C; ++c) {
          const double q = (1.0 - eps) * static_cast<double>(tpf[base + c * S]) + eps / C;
          const double G = -(wp ? static_cast<double>(wp[c]) : 1.0) * q;
          const double pc = std::exp(static_cast<double>(xp[base + c * S]) - lse);
          op[base + c * S] = static_cast<T>(s * (G - pc * sumG));
        }
      } else {
        const double wt = wp ? static_cast<double>(wp[t]) : 1.0;
        const double sumG = -(1.0 - eps) * wt - eps / C * wsum;
        if constexpr (std::is_same_v<T, float>) {
          if (S == 1) {
            // Contiguous float row: softmax with the SIMD exp, written straight into the output.
            float* o = op + base;
            const float* xr = xp + base;
            const float l = static_cast<float>(lse);
            for (int64_t c = 0; c < C; ++c) o[c] = xr[c] - l;
            vec::exp_f32(o, o, C);
            const float ms = static_cast<float>(-s * sumG), se = static_cast<float>(-s * eps / C);
            if (wp) {
              for (int64_t c = 0; c < C; ++c) o[c] = o[c] * ms + se * wp[c];
            } else {
              for (int64_t c = 0; c < C; ++c) o[c] = o[c] * ms + se;
            }
            o[t] = static_cast<float>(static_cast<double>(o[t]) - s * (1.0 - eps) * wt);
            continue;
          }
        }
        for (int64_t c = 0; c < C; ++c) {
          double G = -eps / C * (wp ? static_cast<double>(wp[c]) : 1.0);
          if (c == t) G -= (1.0 - eps) * wt;
          const double pc = std::exp(static_cast<double>(xp[base + c * S]) - lse);
          op[base + c * S] = static_cast<T>(s * (G - pc * sumG));
        }
      }
    }
  });
}

// ------------------------------------------------------------------ nll_loss
template <typename T>
void nll_loss_kernel(const Tensor& x, const Tensor& target, const Tensor& weight, const Tensor& out, const ClassLossParams& p) {
  const T* xp = x.data<T>();
  const T* wp = ptr_or_null<T>(weight);
  const int64_t C = p.C, S = p.S, n = p.N * S;
  const int64_t* tp = target.data<int64_t>();
  const double denom = target_weight_sum(tp, wp, n, p);
  reduce_samples<T>(out, n, p.reduction, denom, [&](int64_t i) {
    const int64_t t = class_of(tp, i, p);
    if (t < 0) return 0.0;
    const int64_t base = (i / S) * C * S + i % S;
    return -(wp ? static_cast<double>(wp[t]) : 1.0) * static_cast<double>(xp[base + t * S]);
  });
}

template <typename T>
void nll_loss_backward_kernel(const Tensor& g, const Tensor& x, const Tensor& target, const Tensor& weight, const Tensor& gi,
                              const ClassLossParams& p) {
  const T* gp = g.data<T>();
  const T* wp = ptr_or_null<T>(weight);
  T* op = gi.data<T>();
  const int64_t C = p.C, S = p.S, n = p.N * S;
  const int64_t* tp = target.data<int64_t>();
  const double denom = target_weight_sum(tp, wp, n, p);
  std::fill_n(op, x.numel(), T(0));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t t = class_of(tp, i, p);
    if (t < 0) continue;
    const int64_t base = (i / S) * C * S + i % S;
    op[base + t * S] = static_cast<T>(-(wp ? static_cast<double>(wp[t]) : 1.0) * sample_scale(gp, i, p.reduction, denom));
  }
}

// ------------------------------------------------------------------ pointwise losses
// Each functor fills out[0..n) with the loss (loss) or d loss / d x (grad) of n elements, in T,
// branch-free where the formula allows (random signs defeat the branch predictor). w / pw may be
// null (1). The kernels run them over blocks of kBlock elements.
constexpr int64_t kBlock = 1024;

template <typename T>
inline T wv(const T* w, int64_t i) { return w ? w[i] : T(1); }

struct Mse {
  static constexpr const char* name = "mse_loss";
  template <typename T>
  static void loss(const T* x, const T* y, const T*, const T*, T* o, int64_t n, T) {
    for (int64_t i = 0; i < n; ++i) { const T d = x[i] - y[i]; o[i] = d * d; }
  }
  template <typename T>
  static void grad(const T* x, const T* y, const T*, const T*, T* o, int64_t n, T) {
    for (int64_t i = 0; i < n; ++i) o[i] = T(2) * (x[i] - y[i]);
  }
};
template <typename T>
inline T sign_of(T d) { return d != d ? d : static_cast<T>((d > T(0)) - (d < T(0))); }
struct L1 {
  static constexpr const char* name = "l1_loss";
  template <typename T>
  static void loss(const T* x, const T* y, const T*, const T*, T* o, int64_t n, T) {
    for (int64_t i = 0; i < n; ++i) o[i] = std::fabs(x[i] - y[i]);
  }
  template <typename T>
  static void grad(const T* x, const T* y, const T*, const T*, T* o, int64_t n, T) {
    for (int64_t i = 0; i < n; ++i) o[i] = sign_of(x[i] - y[i]);
  }
};
struct SmoothL1 {
  static constexpr const char* name = "smooth_l1_loss";
  // z = min(|d|, beta): 0.5 z^2 / beta + (|d| - z) is the quadratic part below beta and
  // |d| - beta / 2 above, without a branch; beta = 0 is l1.
  template <typename T>
  static void loss(const T* x, const T* y, const T*, const T*, T* o, int64_t n, T beta) {
    if (beta == T(0)) return L1::loss(x, y, x, x, o, n, beta);
    const T hb = T(0.5) / beta;
    for (int64_t i = 0; i < n; ++i) {
      const T ad = std::fabs(x[i] - y[i]), z = std::min(ad, beta);
      o[i] = hb * z * z + (ad - z);
    }
  }
  template <typename T>
  static void grad(const T* x, const T* y, const T*, const T*, T* o, int64_t n, T beta) {
    if (beta == T(0)) return L1::grad(x, y, x, x, o, n, beta);
    for (int64_t i = 0; i < n; ++i) {
      const T d = x[i] - y[i];
      o[i] = std::fabs(d) < beta ? d / beta : sign_of(d);
    }
  }
};
struct Bce {
  static constexpr const char* name = "binary_cross_entropy";
  template <typename T>
  static void loss(const T* x, const T* y, const T* w, const T*, T* o, int64_t n, T) {
    if constexpr (std::is_same_v<T, float>) {
      // Vectorised logs for float32 (libm's scalar logf/log1pf are the bottleneck otherwise).
      float lx[kBlock], nx[kBlock], tmp[kBlock];
      nnk::log_f32(x, lx, n);
      for (int64_t i = 0; i < n; ++i) nx[i] = -x[i];
      nnk::log1p_f32(nx, o, tmp, n);
      for (int64_t i = 0; i < n; ++i)
        o[i] = -wv(w, i) * (y[i] * std::max(lx[i], -100.0f) + (1.0f - y[i]) * std::max(o[i], -100.0f));
    } else {
      for (int64_t i = 0; i < n; ++i) {
        const T lx = std::max(std::log(x[i]), T(-100)), l1x = std::max(std::log1p(-x[i]), T(-100));
        o[i] = -wv(w, i) * (y[i] * lx + (T(1) - y[i]) * l1x);
      }
    }
  }
  template <typename T>
  static void grad(const T* x, const T* y, const T* w, const T*, T* o, int64_t n, T) {
    for (int64_t i = 0; i < n; ++i) o[i] = wv(w, i) * (x[i] - y[i]) / std::max(x[i] * (T(1) - x[i]), T(1e-12));
  }
};
struct BceLogits {
  static constexpr const char* name = "binary_cross_entropy_with_logits";
  // e = exp(-|x|) (the SIMD exp for float32), softplus(-x) = log1p(e) + max(-x, 0). The loss
  // (1 - y) x + lw softplus(-x) is regrouped as (1 - y) max(x, 0) - pw y min(x, 0) + lw log1p(e)
  // (lw = 1 + (pw - 1) y), which has no cancellation between x and max(-x, 0).
  template <typename T>
  static void exp_neg_abs(const T* x, T* e, int64_t n) {
    for (int64_t i = 0; i < n; ++i) e[i] = -std::fabs(x[i]);
    if constexpr (std::is_same_v<T, float>) vec::exp_f32(e, e, n);
    else for (int64_t i = 0; i < n; ++i) e[i] = std::exp(e[i]);
  }
  template <typename T>
  static void loss(const T* x, const T* y, const T* w, const T* pw, T* o, int64_t n, T) {
    exp_neg_abs(x, o, n);
    if constexpr (std::is_same_v<T, float>) {
      float e[kBlock], tmp[kBlock];
      std::memcpy(e, o, sizeof(float) * n);
      nnk::log1p_f32(e, o, tmp, n);
      for (int64_t i = 0; i < n; ++i) {
        const float p = pw ? pw[i] : 1.0f, lw = 1.0f + (p - 1.0f) * y[i];
        o[i] = wv(w, i) * ((1.0f - y[i]) * std::max(x[i], 0.0f) - p * y[i] * std::min(x[i], 0.0f) + lw * o[i]);
      }
      return;
    }
    for (int64_t i = 0; i < n; ++i) {
      const T p = pw ? pw[i] : T(1), lw = T(1) + (p - T(1)) * y[i];
      o[i] = wv(w, i) * ((T(1) - y[i]) * std::max(x[i], T(0)) - p * y[i] * std::min(x[i], T(0)) + lw * std::log1p(o[i]));
    }
  }
  // d/dx = w * ((1 - y) - lw * sigmoid(-x)), sigmoid(-x) = (x >= 0 ? e : 1) / (1 + e).
  template <typename T>
  static void grad(const T* x, const T* y, const T* w, const T* pw, T* o, int64_t n, T) {
    exp_neg_abs(x, o, n);
    for (int64_t i = 0; i < n; ++i) {
      const T e = o[i], num = x[i] >= T(0) ? e : T(1);
      const T lw = pw ? T(1) + (pw[i] - T(1)) * y[i] : T(1);
      o[i] = wv(w, i) * ((T(1) - y[i]) - lw * (num / (T(1) + e)));
    }
  }
};

template <typename F, typename T>
void check_bce_input(const T* xp, int64_t n) {
  if constexpr (std::is_same_v<F, Bce>) {
    for (int64_t i = 0; i < n; ++i) {
      const double v = xp[i];
      if (!(v >= 0.0 && v <= 1.0))
        throw Error(ErrorCode::InvalidArgument,
                    str_cat(F::name, ": all elements of input should be between 0 and 1, got ", v, " at flat index ", i), F::name);
    }
  }
}

template <typename F, typename T>
void pointwise_loss_kernel(const Tensor& x, const Tensor& y, const Tensor& w, const Tensor& pw, const Tensor& out, int reduction,
                           double beta) {
  const T* xp = x.data<T>();
  const T* yp = y.data<T>();
  const T* wp = ptr_or_null<T>(w);
  const T* pp = ptr_or_null<T>(pw);
  const int64_t n = x.numel();
  const T b = static_cast<T>(beta);
  check_bce_input<F>(xp, n);
  // Loss of [i0, i1) into o, block by block.
  auto run = [&](int64_t i0, int64_t i1, T* o) {
    for (int64_t j = i0; j < i1; j += kBlock) {
      const int64_t m = std::min(kBlock, i1 - j);
      F::loss(xp + j, yp + j, wp ? wp + j : nullptr, pp ? pp + j : nullptr, o + (j - i0), m, b);
    }
  };
  T* op = out.data<T>();
  if (reduction == kNone) {
    parallel_for(0, n, kGrain, [&](int64_t i0, int64_t i1) { run(i0, i1, op + i0); });
    return;
  }
  double s = chunked_sum(n, kChunk, [&](int64_t i0, int64_t i1) {
    T buf[kBlock];
    double s1 = 0, s2 = 0;
    for (int64_t j = i0; j < i1; j += kBlock) {
      const int64_t m = std::min(kBlock, i1 - j);
      run(j, j + m, buf);
      nnk::block_sums<true, T>(buf, buf, m, T(0), s1, s2);
    }
    return s1;
  });
  op[0] = static_cast<T>(reduction == kMean ? s / static_cast<double>(n) : s);
}

template <typename F, typename T>
void pointwise_loss_backward_kernel(const Tensor& g, const Tensor& x, const Tensor& y, const Tensor& w, const Tensor& pw,
                                    const Tensor& gi, int reduction, double beta) {
  const T* gp = g.data<T>();
  const T* xp = x.data<T>();
  const T* yp = y.data<T>();
  const T* wp = ptr_or_null<T>(w);
  const T* pp = ptr_or_null<T>(pw);
  T* op = gi.data<T>();
  const int64_t n = x.numel();
  const T b = static_cast<T>(beta);
  const T sc = static_cast<T>(reduction == kNone ? 1.0 : reduction == kMean ? static_cast<double>(gp[0]) / n : static_cast<double>(gp[0]));
  parallel_for(0, n, kGrain, [&](int64_t i0, int64_t i1) {
    for (int64_t j = i0; j < i1; j += kBlock) {
      const int64_t m = std::min(kBlock, i1 - j);
      T* o = op + j;
      F::grad(xp + j, yp + j, wp ? wp + j : nullptr, pp ? pp + j : nullptr, o, m, b);
      if (reduction == kNone) {
        const T* gr = gp + j;
        for (int64_t k = 0; k < m; ++k) o[k] *= gr[k];
      } else {
        for (int64_t k = 0; k < m; ++k) o[k] *= sc;
      }
    }
  });
}

#define NN_FLOAT_KERNELS(OP, FN)                                   \
  HERON_REGISTER_KERNEL(OP, "cpu", ::heron::DType::Float32, &FN<float>); \
  HERON_REGISTER_KERNEL(OP, "cpu", ::heron::DType::Float64, &FN<double>)
#define NN_POINTWISE(OP, OPB, F)                                                                      \
  HERON_REGISTER_KERNEL(OP, "cpu", ::heron::DType::Float32, (&pointwise_loss_kernel<F, float>));       \
  HERON_REGISTER_KERNEL(OP, "cpu", ::heron::DType::Float64, (&pointwise_loss_kernel<F, double>));      \
  HERON_REGISTER_KERNEL(OPB, "cpu", ::heron::DType::Float32, (&pointwise_loss_backward_kernel<F, float>)); \
  HERON_REGISTER_KERNEL(OPB, "cpu", ::heron::DType::Float64, (&pointwise_loss_backward_kernel<F, double>))

NN_FLOAT_KERNELS(ops::OpId::cross_entropy, cross_entropy_kernel);
NN_FLOAT_KERNELS(ops::OpId::cross_entropy_backward, cross_entropy_backward_kernel);
NN_FLOAT_KERNELS(ops::OpId::nll_loss, nll_loss_kernel);
NN_FLOAT_KERNELS(ops::OpId::nll_loss_backward, nll_loss_backward_kernel);
NN_POINTWISE(ops::OpId::mse_loss, ops::OpId::mse_loss_backward, Mse);
NN_POINTWISE(ops::OpId::l1_loss, ops::OpId::l1_loss_backward, L1);
NN_POINTWISE(ops::OpId::smooth_l1_loss, ops::OpId::smooth_l1_loss_backward, SmoothL1);
NN_POINTWISE(ops::OpId::binary_cross_entropy, ops::OpId::binary_cross_entropy_backward, Bce);
NN_POINTWISE(ops::OpId::binary_cross_entropy_with_logits, ops::OpId::binary_cross_entropy_with_logits_backward, BceLogits);

}  // namespace
}  // namespace cpu
}  // namespace heron
