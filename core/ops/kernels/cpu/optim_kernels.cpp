// CPU kernels of the fused optimizer ops: one pass per element over a whole parameter group,
// parallel over the concatenated elements of all its tensors. 16-bit floats compute in float.
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/ops/impl/optim.h"
#include "core/ops/kernels/cpu/register.h"
#include "core/util/thread_pool.h"

namespace heron {
namespace {

constexpr int64_t kGrain = 1 << 15;

// Runs f(i, lo, hi) over element ranges [lo, hi) of param i, covering every element of the group
// once, in parallel chunks that may span several tensors.
template <typename F>
void for_each_range(const OptimGroup& g, F&& f) {
  const size_t n = g.numel.size();
  std::vector<int64_t> start(n + 1, 0);
  for (size_t i = 0; i < n; ++i) start[i + 1] = start[i] + g.numel[i];
  parallel_for(0, start[n], kGrain, [&](int64_t b, int64_t e) {
    size_t i = static_cast<size_t>(std::upper_bound(start.begin(), start.end(), b) - start.begin()) - 1;
    while (b < e) {
      int64_t end_i = std::min(e, start[i + 1]);
      if (end_i > b) f(i, b - start[i], end_i - start[i]);
      b = end_i;
      ++i;
    }
  });
}

template <typename T> T* slot(const OptimGroup& g, size_t s, size_t i) { return static_cast<T*>(g.ptr[s][i]); }

// torch.lerp's formula (exact at both ends).
template <typename A> inline A lerp(A a, A b, A w) { return w < A(0.5) ? a + w * (b - a) : b - (b - a) * (A(1) - w); }

template <typename T>
void sgd_kernel(const OptimGroup& g, const ops::SgdStep_Attrs& at) {
  using A = opmath_t<T>;
  const A lr = static_cast<A>(at.lr), mom = static_cast<A>(at.momentum), damp1 = static_cast<A>(1.0 - at.dampening);
  const A wd = static_cast<A>(at.weight_decay);
  const bool use_wd = at.weight_decay != 0.0, use_mom = at.momentum != 0.0;
  const bool nesterov = at.nesterov, maximize = at.maximize, first = at.first_step;
  for_each_range(g, [&](size_t i, int64_t lo, int64_t hi) {
    T* p = slot<T>(g, 0, i);
    const T* gr = slot<T>(g, 1, i);
    T* buf = use_mom ? slot<T>(g, 2, i) : nullptr;
    for (int64_t j = lo; j < hi; ++j) {
      A pv = static_cast<A>(p[j]);
      A d = static_cast<A>(gr[j]);
      if (maximize) d = -d;
      if (use_wd) d = d + wd * pv;
      if (use_mom) {
        A b = first ? d : static_cast<A>(buf[j]) * mom + damp1 * d;
        buf[j] = static_cast<T>(b);
        b = static_cast<A>(buf[j]);
        d = nesterov ? d + mom * b : b;
      }
      p[j] = static_cast<T>(pv - lr * d);
    }
  });
}

template <typename T>
void adam_kernel(const OptimGroup& g, const ops::AdamStep_Attrs& at) {
  using A = opmath_t<T>;
  const double bc1 = 1.0 - std::pow(at.beta1, static_cast<double>(at.step));
  const double bc2 = 1.0 - std::pow(at.beta2, static_cast<double>(at.step));
  const A neg_step_size = static_cast<A>(-(at.lr / bc1));
  const A bc2_sqrt = static_cast<A>(std::sqrt(bc2));
  const A w1 = static_cast<A>(1.0 - at.beta1), b2 = static_cast<A>(at.beta2), w2 = static_cast<A>(1.0 - at.beta2);
  const A eps = static_cast<A>(at.eps), wd = static_cast<A>(at.weight_decay);
  const A decay = static_cast<A>(1.0 - at.lr * at.weight_decay);
  const bool use_wd = at.weight_decay != 0.0, decoupled = at.decoupled_weight_decay, ams = at.amsgrad, maximize = at.maximize;
  for_each_range(g, [&](size_t i, int64_t lo, int64_t hi) {
    T* p = slot<T>(g, 0, i);
    const T* gr = slot<T>(g, 1, i);
    T* m = slot<T>(g, 2, i);
    T* v = slot<T>(g, 3, i);
    T* vmax = ams ? slot<T>(g, 4, i) : nullptr;
    for (int64_t j = lo; j < hi; ++j) {
      A pv = static_cast<A>(p[j]);
      A d = static_cast<A>(gr[j]);
      if (maximize) d = -d;
      if (use_wd) {
        if (decoupled) pv = pv * decay;
        else d = d + wd * pv;
      }
      A mv = lerp(static_cast<A>(m[j]), d, w1);
      A vv = static_cast<A>(v[j]) * b2 + w2 * d * d;
      m[j] = static_cast<T>(mv);
      v[j] = static_cast<T>(vv);
      mv = static_cast<A>(m[j]);
      vv = static_cast<A>(v[j]);
      if (ams) {
        A old = static_cast<A>(vmax[j]);
        A mx = (vv > old || std::isnan(vv)) ? vv : old;
        vmax[j] = static_cast<T>(mx);
        vv = static_cast<A>(vmax[j]);
      }
      A denom = std::sqrt(vv) / bc2_sqrt + eps;
      p[j] = static_cast<T>(pv + neg_step_size * (mv / denom));
    }
  });
}

template <typename T>
void rmsprop_kernel(const OptimGroup& g, const ops::RmspropStep_Attrs& at) {
  using A = opmath_t<T>;
  const A alpha = static_cast<A>(at.alpha), w = static_cast<A>(1.0 - at.alpha), eps = static_cast<A>(at.eps);
  const A wd = static_cast<A>(at.weight_decay), mom = static_cast<A>(at.momentum), neg_lr = static_cast<A>(-at.lr);
  const bool use_wd = at.weight_decay != 0.0, use_mom = at.momentum > 0.0, centered = at.centered, maximize = at.maximize;
  for_each_range(g, [&](size_t i, int64_t lo, int64_t hi) {
    T* p = slot<T>(g, 0, i);
    const T* gr = slot<T>(g, 1, i);
    T* sq = slot<T>(g, 2, i);
    T* buf = use_mom ? slot<T>(g, 3, i) : nullptr;
    T* ga = centered ? slot<T>(g, 4, i) : nullptr;
    for (int64_t j = lo; j < hi; ++j) {
      A pv = static_cast<A>(p[j]);
      A d = static_cast<A>(gr[j]);
      if (maximize) d = -d;
      if (use_wd) d = d + wd * pv;
      A s = static_cast<A>(sq[j]) * alpha + w * d * d;
      sq[j] = static_cast<T>(s);
      s = static_cast<A>(sq[j]);
      A avg;
      if (centered) {
        A gav = lerp(static_cast<A>(ga[j]), d, w);
        ga[j] = static_cast<T>(gav);
        gav = static_cast<A>(ga[j]);
        avg = std::sqrt(s - gav * gav);
      } else {
        avg = std::sqrt(s);
      }
      avg = avg + eps;
      if (use_mom) {
        A b = static_cast<A>(buf[j]) * mom + d / avg;
        buf[j] = static_cast<T>(b);
        p[j] = static_cast<T>(pv + neg_lr * static_cast<A>(buf[j]));
      } else {
        p[j] = static_cast<T>(pv + neg_lr * (d / avg));
      }
    }
  });
}

template <typename T>
void adagrad_kernel(const OptimGroup& g, const ops::AdagradStep_Attrs& at) {
  using A = opmath_t<T>;
  const A neg_clr = static_cast<A>(-(at.lr / (1.0 + static_cast<double>(at.step - 1) * at.lr_decay)));
  const A eps = static_cast<A>(at.eps), wd = static_cast<A>(at.weight_decay);
  const bool use_wd = at.weight_decay != 0.0, maximize = at.maximize;
  for_each_range(g, [&](size_t i, int64_t lo, int64_t hi) {
    T* p = slot<T>(g, 0, i);
    const T* gr = slot<T>(g, 1, i);
    T* ss = slot<T>(g, 2, i);
    for (int64_t j = lo; j < hi; ++j) {
      A pv = static_cast<A>(p[j]);
      A d = static_cast<A>(gr[j]);
      if (maximize) d = -d;
      if (use_wd) d = d + wd * pv;
      A s = static_cast<A>(ss[j]) + d * d;
      ss[j] = static_cast<T>(s);
      A sd = std::sqrt(static_cast<A>(ss[j])) + eps;
      p[j] = static_cast<T>(pv + neg_clr * (d / sd));
    }
  });
}

// ---- clip_grad_norm_: per-tensor norm (deterministic: fixed blocks, summed in order) and scaling.
template <typename T>
double norm_kernel(const void* data, int64_t n, double p) {
  const T* x = static_cast<const T*>(data);
  const double inf = std::numeric_limits<double>::infinity();
  if (n == 0) return p == -inf ? inf : 0.0;  // torch: norm of an empty tensor is 0 (min over none: inf)
  const int64_t nblocks = (n + kGrain - 1) / kGrain;
  std::vector<double> part(static_cast<size_t>(nblocks), 0.0);
  parallel_for(0, nblocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t lo = b * kGrain, hi = std::min(n, lo + kGrain);
      double acc = p == -inf ? inf : 0.0;
      bool nan = false;
      for (int64_t j = lo; j < hi; ++j) {
        double a = std::abs(static_cast<double>(static_cast<opmath_t<T>>(x[j])));
        if (std::isnan(a)) nan = true;
        if (p == inf) acc = std::max(acc, a);
        else if (p == -inf) acc = std::min(acc, a);
        else if (p == 0.0) acc += a != 0.0 ? 1.0 : 0.0;
        else if (p == 1.0) acc += a;
        else if (p == 2.0) acc += a * a;
        else acc += std::pow(a, p);
      }
      part[static_cast<size_t>(b)] = nan ? std::numeric_limits<double>::quiet_NaN() : acc;
    }
  });
  double acc = p == -inf ? inf : 0.0;
  for (double v : part) {
    if (std::isnan(v)) return v;
    if (p == inf) acc = std::max(acc, v);
    else if (p == -inf) acc = std::min(acc, v);
    else acc += v;
  }
  if (p == inf || p == -inf || p == 0.0 || p == 1.0) return acc;
  if (p == 2.0) return std::sqrt(acc);
  return std::pow(acc, 1.0 / p);
}

template <typename T>
void scale_kernel(void* data, int64_t n, double coef) {
  using A = opmath_t<T>;
  T* x = static_cast<T*>(data);
  const A c = static_cast<A>(coef);
  parallel_for(0, n, kGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t j = lo; j < hi; ++j) x[j] = static_cast<T>(static_cast<A>(x[j]) * c);
  });
}

template <typename T> ClipGradNormKernels clip_kernels = {&norm_kernel<T>, &scale_kernel<T>};

HERON_CPU_KERNELS_FLOAT(ops::OpId::sgd_step_, sgd_kernel);
HERON_CPU_KERNELS_FLOAT(ops::OpId::adam_step_, adam_kernel);
HERON_CPU_KERNELS_FLOAT(ops::OpId::rmsprop_step_, rmsprop_kernel);
HERON_CPU_KERNELS_FLOAT(ops::OpId::adagrad_step_, adagrad_kernel);
HERON_CPU_KERNELS_FLOAT(ops::OpId::clip_grad_norm_, clip_kernels);

}  // namespace
}  // namespace heron
