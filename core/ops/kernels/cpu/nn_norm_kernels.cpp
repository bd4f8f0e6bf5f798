// CPU kernels of batch_norm, group_norm (and instance_norm), layer_norm and their backward ops.
// Statistics are single-pass shifted sums (shift = the first element of the set, so no
// catastrophic cancellation when |mean| >> std), accumulated in 8 lanes of T per block of 1024 and
// in double across blocks. Each forward reads the input twice (statistics, then the affine
// transform) and writes once; the backward ops read g and x twice. Work is split by channel
// (batch_norm) or by row (group/layer norm); the split never changes the result.
#include <cmath>
#include <vector>

#include "core/ops/kernels/cpu/nn_common.h"
#include "core/ops/kernels/cpu/register.h"

namespace heron {
namespace cpu {
namespace {
using namespace nnk;

template <typename T>
const T* ptr_or_null(const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; }

// Per-channel (sum1, sum2) over the (N, S) elements of each channel of a (N, C, S) array: for
// channel c, f(c, base pointer of (n, c), S, s1, s2) accumulates.
template <typename F>
void per_channel(int64_t N, int64_t C, int64_t S, std::vector<double>& s1, std::vector<double>& s2, F f) {
  s1.assign(static_cast<size_t>(C), 0.0);
  s2.assign(static_cast<size_t>(C), 0.0);
  const int64_t work = std::max<int64_t>(1, N * S);
  parallel_for(0, C, std::max<int64_t>(1, kGrain / work), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c)
      for (int64_t n = 0; n < N; ++n) f(c, (n * C + c) * S, s1[c], s2[c]);
  });
}

// Per-channel statistics go by rows (whole (n, :) rows read in order, in chunks of rows) when the
// spatial size is small, or moderate with enough rows to split; else by channel. Chosen by shape
// only, so results do not depend on the thread count.
constexpr int64_t kSmallS = 32;
inline bool by_rows(int64_t N, int64_t S) { return S < kSmallS || (S <= 4096 && N >= 16); }

// Per-channel sums for small S (e.g. (N, C) input), reading whole rows in order: the rows go in
// a fixed number of chunks (independent of the thread count), each with its own per-channel
// partials, added in chunk order at the end (deterministic).
// Grad = false: s1 += x - k[c], s2 += (x - k[c])^2; Grad = true: s1 += g, s2 += g * (x - k[c]).
template <bool Grad, typename T>
void per_channel_small(const T* g, const T* x, const T* k, int64_t N, int64_t C, int64_t S, std::vector<double>& s1,
                       std::vector<double>& s2) {
  const int64_t row = C * S;
  const int64_t nch = std::max<int64_t>(1, std::min<int64_t>({N, 32, (int64_t{1} << 20) / std::max<int64_t>(C, 1)}));
  std::vector<double> p1(static_cast<size_t>(nch * C), 0.0), p2(static_cast<size_t>(nch * C), 0.0);
  parallel_for(0, nch, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t ch = c0; ch < c1; ++ch) {
      double* a1 = p1.data() + ch * C;
      double* a2 = p2.data() + ch * C;
      for (int64_t n = N * ch / nch; n < N * (ch + 1) / nch; ++n) {
        const T* xr = x + n * row;
        const T* gr = Grad ? g + n * row : nullptr;
        if (S == 1) {
          for (int64_t c = 0; c < C; ++c) {
            const T v = xr[c] - k[c];
            const T u = Grad ? gr[c] : v;
            a1[c] += static_cast<double>(u);
            a2[c] += static_cast<double>(u) * static_cast<double>(v);
          }
        } else {
          for (int64_t c = 0; c < C; ++c)
            for (int64_t q0 = 0; q0 < S; q0 += 1024)
              nnk::block_sums<Grad, T>(Grad ? gr + c * S + q0 : nullptr, xr + c * S + q0, std::min<int64_t>(1024, S - q0), k[c],
                                       a1[c], a2[c]);
        }
      }
    }
  });
  s1.assign(static_cast<size_t>(C), 0.0);
  s2.assign(static_cast<size_t>(C), 0.0);
  for (int64_t ch = 0; ch < nch; ++ch)
    for (int64_t c = 0; c < C; ++c) {
      s1[c] += p1[ch * C + c];
      s2[c] += p2[ch * C + c];
    }
}

// out[n, c, s] = a[c] * in1[n, c, s] + b[c] * in2[n, c, s] + d[c]  (in2 may be null).
template <typename T>
void apply_affine(const T* in1, const T* in2, T* out, const std::vector<T>& a, const std::vector<T>& b, const std::vector<T>& d,
                  int64_t N, int64_t C, int64_t S) {
  if (S < kSmallS) {
    // By rows of C * S elements.
    const T* ap = a.data();
    const T* bp = b.data();
    const T* dp = d.data();
    parallel_for(0, N, std::max<int64_t>(1, kGrain / std::max<int64_t>(C * S, 1)), [&](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n) {
        const T* x1 = in1 + n * C * S;
        const T* x2 = in2 ? in2 + n * C * S : nullptr;
        T* o = out + n * C * S;
        if (S == 1) {
          if (x2) {
            for (int64_t c = 0; c < C; ++c) o[c] = ap[c] * x1[c] + bp[c] * x2[c] + dp[c];
          } else {
            for (int64_t c = 0; c < C; ++c) o[c] = ap[c] * x1[c] + dp[c];
          }
        } else {
          for (int64_t c = 0; c < C; ++c)
            for (int64_t q = 0; q < S; ++q)
              o[c * S + q] = ap[c] * x1[c * S + q] + (x2 ? bp[c] * x2[c * S + q] : T(0)) + dp[c];
        }
      }
    });
    return;
  }
  const int64_t pairs = N * C;
  parallel_for(0, pairs, std::max<int64_t>(1, kGrain / std::max<int64_t>(S, 1)), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t c = p % C;
      const T ac = a[c], bc = b[c], dc = d[c];
      const T* x1 = in1 + p * S;
      T* o = out + p * S;
      if (in2) {
        const T* x2 = in2 + p * S;
        for (int64_t s = 0; s < S; ++s) o[s] = ac * x1[s] + bc * x2[s] + dc;
      } else {
        for (int64_t s = 0; s < S; ++s) o[s] = ac * x1[s] + dc;
      }
    }
  });
}

// ------------------------------------------------------------------ batch_norm
template <typename T>
void batch_norm_kernel(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& rm, const Tensor& rv, const Tensor& out,
                       const Tensor& mean, const Tensor& invstd, int64_t N, int64_t C, int64_t S, bool training, double momentum,
                       double eps) {
  const T* xp = x.data<T>();
  const T* wp = ptr_or_null<T>(w);
  const T* bp = ptr_or_null<T>(b);
  T* mp = mean.data<T>();
  T* ip = invstd.data<T>();
  std::vector<double> m(static_cast<size_t>(C)), is(static_cast<size_t>(C));
  if (training) {
    std::vector<double> s1, s2;
    if (by_rows(N, S)) {
      std::vector<T> shift(static_cast<size_t>(C));
      for (int64_t c = 0; c < C; ++c) shift[c] = xp[c * S];
      per_channel_small<false, T>(nullptr, xp, shift.data(), N, C, S, s1, s2);
    } else {
      per_channel(N, C, S, s1, s2, [&](int64_t c, int64_t off, double& a1, double& a2) {
        shifted_sums(xp + off, S, xp[c * S], a1, a2);
      });
    }
    const int64_t M = N * S;
    for (int64_t c = 0; c < C; ++c) {
      double var;
      moments(s1[c], s2[c], M, static_cast<double>(xp[c * S]), m[c], var);
      is[c] = 1.0 / std::sqrt(var + eps);
      if (rm.defined()) {
        T* rmp = rm.data<T>();
        T* rvp = rv.data<T>();
        rmp[c] = static_cast<T>((1.0 - momentum) * rmp[c] + momentum * m[c]);
        rvp[c] = static_cast<T>((1.0 - momentum) * rvp[c] + momentum * var * M / (M - 1));
      }
    }
  } else {
    const T* rmp = rm.data<T>();
    const T* rvp = rv.data<T>();
    for (int64_t c = 0; c < C; ++c) {
      m[c] = rmp[c];
      is[c] = 1.0 / std::sqrt(static_cast<double>(rvp[c]) + eps);
    }
  }
  std::vector<T> a(C), zero(C, T(0)), d(C);
  for (int64_t c = 0; c < C; ++c) {
    mp[c] = static_cast<T>(m[c]);
    ip[c] = static_cast<T>(is[c]);
    double sc = is[c] * (wp ? static_cast<double>(wp[c]) : 1.0);
    a[c] = static_cast<T>(sc);
    d[c] = static_cast<T>((bp ? static_cast<double>(bp[c]) : 0.0) - m[c] * sc);
  }
  apply_affine<T>(xp, nullptr, out.data<T>(), a, zero, d, N, C, S);
}

template <typename T>
void batch_norm_backward_kernel(const Tensor& g, const Tensor& x, const Tensor& w, const Tensor& mean, const Tensor& invstd,
                                const Tensor& gi, const Tensor& gw, const Tensor& gb, int64_t N, int64_t C, int64_t S, bool training) {
  const T* gp = g.data<T>();
  const T* xp = x.data<T>();
  const T* wp = ptr_or_null<T>(w);
  const T* mp = mean.data<T>();
  const T* ip = invstd.data<T>();
  std::vector<double> sg, sgx;
  if (by_rows(N, S))
    per_channel_small<true, T>(gp, xp, mp, N, C, S, sg, sgx);
  else
    per_channel(N, C, S, sg, sgx, [&](int64_t c, int64_t off, double& a1, double& a2) { grad_sums(gp + off, xp + off, S, mp[c], a1, a2); });
  T* gwp = gw.data<T>();
  T* gbp = gb.data<T>();
  const double M = static_cast<double>(N * S);
  std::vector<T> A(C), B(C), D(C);
  for (int64_t c = 0; c < C; ++c) {
    const double r = ip[c], wc = wp ? static_cast<double>(wp[c]) : 1.0, mu = mp[c];
    gwp[c] = static_cast<T>(sgx[c] * r);
    gbp[c] = static_cast<T>(sg[c]);
    const double a = r * wc;
    if (training && M > 0) {
      const double bq = -r * r * r * wc * sgx[c] / M;
      A[c] = static_cast<T>(a);
      B[c] = static_cast<T>(bq);
      D[c] = static_cast<T>(-a * sg[c] / M - mu * bq);
    } else {
      A[c] = static_cast<T>(a);
      B[c] = T(0);
      D[c] = T(0);
    }
  }
  apply_affine<T>(gp, training ? xp : nullptr, gi.data<T>(), A, B, D, N, C, S);
}

// ------------------------------------------------------------------ group_norm
template <typename T>
void group_norm_kernel(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& out, const Tensor& mean, const Tensor& rstd,
                       int64_t N, int64_t C, int64_t S, int64_t G, double eps) {
  const T* xp = x.data<T>();
  const T* wp = ptr_or_null<T>(w);
  const T* bp = ptr_or_null<T>(b);
  T* op = out.data<T>();
  T* mp = mean.data<T>();
  T* rp = rstd.data<T>();
  const int64_t Cg = C / G, D = Cg * S;
  parallel_for(0, N * G, std::max<int64_t>(1, kGrain / std::max<int64_t>(D, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; ++row) {
      const T* xr = xp + row * D;
      T* orow = op + row * D;
      double s1 = 0, s2 = 0, mu = 0, var = 0;
      if (D > 0) {
        shifted_sums(xr, D, xr[0], s1, s2);
        moments(s1, s2, D, static_cast<double>(xr[0]), mu, var);
      } else {
        mu = std::nan("");
        var = std::nan("");
      }
      const double rs = 1.0 / std::sqrt(var + eps);
      mp[row] = static_cast<T>(mu);
      rp[row] = static_cast<T>(rs);
      const int64_t g = row % G;
      for (int64_t k = 0; k < Cg; ++k) {
        const int64_t c = g * Cg + k;
        const double sc = rs * (wp ? static_cast<double>(wp[c]) : 1.0);
        const T a = static_cast<T>(sc), d = static_cast<T>((bp ? static_cast<double>(bp[c]) : 0.0) - mu * sc);
        const T* xs = xr + k * S;
        T* os = orow + k * S;
        for (int64_t s = 0; s < S; ++s) os[s] = a * xs[s] + d;
      }
    }
  });
}

template <typename T>
void group_norm_backward_kernel(const Tensor& g, const Tensor& x, const Tensor& w, const Tensor& mean, const Tensor& rstd,
                                const Tensor& gi, const Tensor& gw, const Tensor& gb, int64_t N, int64_t C, int64_t S, int64_t G) {
  const T* gp = g.data<T>();
  const T* xp = x.data<T>();
  const T* wp = ptr_or_null<T>(w);
  const T* mp = mean.data<T>();
  const T* rp = rstd.data<T>();
  T* gip = gi.data<T>();
  const int64_t Cg = C / G, D = Cg * S;
  // Per (n, c): db = sum g, dsm = sum g * (x - mean of its group).
  std::vector<double> db(static_cast<size_t>(N * C), 0.0), dsm(static_cast<size_t>(N * C), 0.0);
  parallel_for(0, N * G, std::max<int64_t>(1, kGrain / std::max<int64_t>(D, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; ++row) {
      const int64_t n = row / G, grp = row % G;
      const T mu = mp[row];
      const double r = rp[row];
      double a1 = 0, a2 = 0;
      for (int64_t k = 0; k < Cg; ++k) {
        const int64_t c = grp * Cg + k, off = row * D + k * S;
        double sg = 0, sgx = 0;
        grad_sums(gp + off, xp + off, S, mu, sg, sgx);
        db[n * C + c] = sg;
        dsm[n * C + c] = sgx;
        const double wc = wp ? static_cast<double>(wp[c]) : 1.0;
        a1 += wc * sg;
        a2 += wc * sgx;
      }
      const double A1 = D > 0 ? a1 / D : 0.0, A2 = D > 0 ? a2 * r / D : 0.0;
      const double bq = -r * r * A2, dq = -r * A1 + static_cast<double>(mu) * r * r * A2;
      for (int64_t k = 0; k < Cg; ++k) {
        const int64_t c = grp * Cg + k, off = row * D + k * S;
        const T a = static_cast<T>(r * (wp ? static_cast<double>(wp[c]) : 1.0)), bb = static_cast<T>(bq), d = static_cast<T>(dq);
        for (int64_t s = 0; s < S; ++s) gip[off + s] = a * gp[off + s] + bb * xp[off + s] + d;
      }
    }
  });
  T* gwp = gw.data<T>();
  T* gbp = gb.data<T>();
  for (int64_t c = 0; c < C; ++c) {
    double sw = 0, sb = 0;
    for (int64_t n = 0; n < N; ++n) {
      sw += static_cast<double>(rp[n * G + c / Cg]) * dsm[n * C + c];
      sb += db[n * C + c];
    }
    gwp[c] = static_cast<T>(sw);
    gbp[c] = static_cast<T>(sb);
  }
}

template <typename T>
void instance_norm_running_kernel(const Tensor& mean, const Tensor& rstd, const Tensor& rm, const Tensor& rv, int64_t N, int64_t C,
                                  int64_t S, double momentum, double eps) {
  const T* mp = mean.data<T>();
  const T* rp = rstd.data<T>();
  T* rmp = rm.data<T>();
  T* rvp = rv.data<T>();
  for (int64_t c = 0; c < C; ++c) {
    double sm = 0, sv = 0;
    for (int64_t n = 0; n < N; ++n) {
      const double r = rp[n * C + c];
      sm += mp[n * C + c];
      sv += (1.0 / (r * r) - eps) * S / (S - 1);
    }
    rmp[c] = static_cast<T>((1.0 - momentum) * rmp[c] + momentum * sm / N);
    rvp[c] = static_cast<T>((1.0 - momentum) * rvp[c] + momentum * sv / N);
  }
}

// ------------------------------------------------------------------ layer_norm
template <typename T>
void layer_norm_kernel(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& out, const Tensor& mean, const Tensor& rstd,
                       int64_t M, int64_t K, double eps) {
  const T* xp = x.data<T>();
  const T* wp = ptr_or_null<T>(w);
  const T* bp = ptr_or_null<T>(b);
  T* op = out.data<T>();
  T* mp = mean.data<T>();
  T* rp = rstd.data<T>();
  parallel_for(0, M, std::max<int64_t>(1, kGrain / std::max<int64_t>(K, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; ++row) {
      const T* xr = xp + row * K;
      T* orow = op + row * K;
      double s1 = 0, s2 = 0, mu, var;
      if (K > 0) {
        shifted_sums(xr, K, xr[0], s1, s2);
        moments(s1, s2, K, static_cast<double>(xr[0]), mu, var);
      } else {
        mu = var = std::nan("");
      }
      const double rs = 1.0 / std::sqrt(var + eps);
      mp[row] = static_cast<T>(mu);
      rp[row] = static_cast<T>(rs);
      const T r = static_cast<T>(rs), d = static_cast<T>(-mu * rs);
      if (wp && bp) {
        for (int64_t k = 0; k < K; ++k) orow[k] = (xr[k] * r + d) * wp[k] + bp[k];
      } else if (wp) {
        for (int64_t k = 0; k < K; ++k) orow[k] = (xr[k] * r + d) * wp[k];
      } else if (bp) {
        for (int64_t k = 0; k < K; ++k) orow[k] = (xr[k] * r + d) + bp[k];
      } else {
        for (int64_t k = 0; k < K; ++k) orow[k] = xr[k] * r + d;
      }
    }
  });
}

template <typename T>
void layer_norm_backward_kernel(const Tensor& g, const Tensor& x, const Tensor& w, const Tensor& mean, const Tensor& rstd,
                                const Tensor& gi, const Tensor& gw, const Tensor& gb, int64_t M, int64_t K) {
  const T* gp = g.data<T>();
  const T* xp = x.data<T>();
  const T* wp = ptr_or_null<T>(w);
  const T* mp = mean.data<T>();
  const T* rp = rstd.data<T>();
  T* gip = gi.data<T>();
  // Rows go in a fixed number of chunks (independent of the thread count); each chunk also sums
  // its rows' contributions to grad_weight / grad_bias while the row is in cache, and the chunk
  // partials are added in order at the end (deterministic).
  const int64_t nch = std::max<int64_t>(1, std::min<int64_t>({M, 32, (int64_t{1} << 20) / std::max<int64_t>(K, 1)}));
  std::vector<double> pw(static_cast<size_t>(nch * K), 0.0), pb(static_cast<size_t>(nch * K), 0.0);
  parallel_for(0, nch, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t ch = c0; ch < c1; ++ch) {
      double* sw = pw.data() + ch * K;
      double* sb = pb.data() + ch * K;
      // Up to 32 rows accumulate in T (vectorised), then flush into the double partials.
      thread_local std::vector<T> tw, tb;
      tw.assign(static_cast<size_t>(K), T(0));
      tb.assign(static_cast<size_t>(K), T(0));
      int64_t pending = 0;
      auto flush = [&] {
        for (int64_t k = 0; k < K; ++k) {
          sw[k] += tw[k];
          sb[k] += tb[k];
          tw[k] = T(0);
          tb[k] = T(0);
        }
        pending = 0;
      };
      for (int64_t row = M * ch / nch; row < M * (ch + 1) / nch; ++row) {
        const T* gr = gp + row * K;
        const T* xr = xp + row * K;
        T* o = gip + row * K;
        const T mu = mp[row];
        const double r = rp[row];
        double a1 = 0, a2 = 0;
        if (wp) {
          constexpr int L = 8;
          T l1[L] = {}, l2[L] = {};
          int64_t k = 0;
          for (; k + L <= K; k += L)
            for (int l = 0; l < L; ++l) {
              T gw_ = gr[k + l] * wp[k + l];
              l1[l] += gw_;
              l2[l] += gw_ * (xr[k + l] - mu);
            }
          for (; k < K; ++k) {
            T gw_ = gr[k] * wp[k];
            a1 += gw_;
            a2 += static_cast<double>(gw_) * (xr[k] - mu);
          }
          for (int l = 0; l < L; ++l) { a1 += l1[l]; a2 += l2[l]; }
        } else {
          grad_sums(gr, xr, K, mu, a1, a2);
        }
        const double A1 = K > 0 ? a1 / K : 0.0, A2 = K > 0 ? a2 * r / K : 0.0;
        const T rr = static_cast<T>(r), bq = static_cast<T>(-r * r * A2), dq = static_cast<T>(-r * A1 + static_cast<double>(mu) * r * r * A2);
        if (wp) {
          for (int64_t k = 0; k < K; ++k) o[k] = rr * wp[k] * gr[k] + bq * xr[k] + dq;
        } else {
          for (int64_t k = 0; k < K; ++k) o[k] = rr * gr[k] + bq * xr[k] + dq;
        }
        const T nmr = static_cast<T>(-static_cast<double>(mu) * r);
        T* twp = tw.data();
        T* tbp = tb.data();
        for (int64_t k = 0; k < K; ++k) {
          twp[k] += gr[k] * (xr[k] * rr + nmr);
          tbp[k] += gr[k];
        }
        if (++pending == 32) flush();
      }
      flush();
    }
  });
  T* gwp = gw.data<T>();
  T* gbp = gb.data<T>();
  parallel_for(0, K, std::max<int64_t>(1, kGrain / nch), [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      double a = 0, b = 0;
      for (int64_t ch = 0; ch < nch; ++ch) {
        a += pw[ch * K + k];
        b += pb[ch * K + k];
      }
      gwp[k] = static_cast<T>(a);
      gbp[k] = static_cast<T>(b);
    }
  });
}

#define NN_FLOAT_KERNELS(OP, FN)                                   \
  HERON_REGISTER_KERNEL(OP, "cpu", ::heron::DType::Float32, &FN<float>); \
  HERON_REGISTER_KERNEL(OP, "cpu", ::heron::DType::Float64, &FN<double>)

NN_FLOAT_KERNELS(ops::OpId::batch_norm, batch_norm_kernel);
NN_FLOAT_KERNELS(ops::OpId::batch_norm_backward, batch_norm_backward_kernel);
NN_FLOAT_KERNELS(ops::OpId::group_norm, group_norm_kernel);
NN_FLOAT_KERNELS(ops::OpId::group_norm_backward, group_norm_backward_kernel);
NN_FLOAT_KERNELS(ops::OpId::instance_norm, instance_norm_running_kernel);
NN_FLOAT_KERNELS(ops::OpId::layer_norm, layer_norm_kernel);
NN_FLOAT_KERNELS(ops::OpId::layer_norm_backward, layer_norm_backward_kernel);

}  // namespace
}  // namespace cpu
}  // namespace heron
