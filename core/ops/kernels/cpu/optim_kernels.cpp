// CPU kernels of the fused optimizer ops: one pass per element over a whole parameter group,
// parallel over the concatenated elements of all its tensors. 16-bit floats compute in float.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

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

// Stores v into *dst and returns the stored value as the compute type: the value a later use of
// the state sees (a no-op for float and double; rounds 16-bit states like a separate op would).
template <typename T, typename A> inline A store(T* dst, A v) {
  *dst = static_cast<T>(v);
  if constexpr (std::is_same_v<T, A>) return v;
  else return static_cast<A>(*dst);
}

// The hot loops: options that change the operation sequence are template parameters, the others
// are loop-invariant selects, and the pointers are restrict so that the loops vectorize.
// torch.lerp's formula (exact at both ends): a + w (b - a) for w < 0.5, else b - (b - a)(1 - w).

template <typename T, bool WD, bool MOM>
void sgd_loop(T* __restrict p, const T* __restrict gr, T* __restrict buf, int64_t lo, int64_t hi, opmath_t<T> lr,
              opmath_t<T> gsign, opmath_t<T> wd, opmath_t<T> mom, opmath_t<T> damp1, bool first, bool nesterov) {
  using A = opmath_t<T>;
  for (int64_t j = lo; j < hi; ++j) {
    A pv = static_cast<A>(p[j]);
    A d = gsign * static_cast<A>(gr[j]);
    if constexpr (WD) d = d + wd * pv;
    if constexpr (MOM) {
      A b = first ? d : static_cast<A>(buf[j]) * mom + damp1 * d;
      b = store(buf + j, b);
      d = nesterov ? d + mom * b : b;
    }
    p[j] = static_cast<T>(pv - lr * d);
  }
}

template <typename T>
void sgd_kernel(const OptimGroup& g, const ops::SgdStep_Attrs& at) {
  using A = opmath_t<T>;
  const A lr = static_cast<A>(at.lr), mom = static_cast<A>(at.momentum), damp1 = static_cast<A>(1.0 - at.dampening);
  const A wd = static_cast<A>(at.weight_decay), gsign = at.maximize ? A(-1) : A(1);
  const bool use_wd = at.weight_decay != 0.0, use_mom = at.momentum != 0.0;
  auto loop = use_wd ? (use_mom ? &sgd_loop<T, true, true> : &sgd_loop<T, true, false>)
                     : (use_mom ? &sgd_loop<T, false, true> : &sgd_loop<T, false, false>);
  for_each_range(g, [&](size_t i, int64_t lo, int64_t hi) {
    loop(slot<T>(g, 0, i), slot<T>(g, 1, i), use_mom ? slot<T>(g, 2, i) : nullptr, lo, hi, lr, gsign, wd, mom, damp1, at.first_step,
         at.nesterov);
  });
}

template <typename T, bool WD, bool AMS>
void adam_loop(T* __restrict p, const T* __restrict gr, T* __restrict m, T* __restrict v, T* __restrict vmax, int64_t lo, int64_t hi,
               opmath_t<T> gsign, opmath_t<T> wd, opmath_t<T> decay, opmath_t<T> w1, bool w1_lo, opmath_t<T> omw1, opmath_t<T> b2,
               opmath_t<T> w2, opmath_t<T> bc2_sqrt, opmath_t<T> eps, opmath_t<T> neg_step_size) {
  using A = opmath_t<T>;
  for (int64_t j = lo; j < hi; ++j) {
    A pv = static_cast<A>(p[j]) * decay;  // decay is exactly 1 unless AdamW decays
    A d = gsign * static_cast<A>(gr[j]);
    if constexpr (WD) d = d + wd * pv;
    A m0 = static_cast<A>(m[j]);
    A mv = w1_lo ? m0 + w1 * (d - m0) : d - (d - m0) * omw1;
    A vv = static_cast<A>(v[j]) * b2 + w2 * d * d;
    mv = store(m + j, mv);
    vv = store(v + j, vv);
    if constexpr (AMS) {
      A old = static_cast<A>(vmax[j]);
      vv = store(vmax + j, (vv > old || vv != vv) ? vv : old);  // torch.maximum: nan propagates
    }
    A denom = std::sqrt(vv) / bc2_sqrt + eps;
    p[j] = static_cast<T>(pv + neg_step_size * (mv / denom));
  }
}

template <typename T>
void adam_kernel(const OptimGroup& g, const ops::AdamStep_Attrs& at) {
  using A = opmath_t<T>;
  const double bc1 = 1.0 - std::pow(at.beta1, static_cast<double>(at.step));
  const double bc2 = 1.0 - std::pow(at.beta2, static_cast<double>(at.step));
  const A neg_step_size = static_cast<A>(-(at.lr / bc1));
  const A bc2_sqrt = static_cast<A>(std::sqrt(bc2));
  const A w1 = static_cast<A>(1.0 - at.beta1), b2 = static_cast<A>(at.beta2);
  const A w2 = static_cast<A>(1.0 - at.beta2);
  const A eps = static_cast<A>(at.eps), wd = static_cast<A>(at.weight_decay), gsign = at.maximize ? A(-1) : A(1);
  const bool use_wd = at.weight_decay != 0.0, decoupled = at.decoupled_weight_decay, ams = at.amsgrad;
  const A decay = use_wd && decoupled ? static_cast<A>(1.0 - at.lr * at.weight_decay) : A(1);
  const bool l2 = use_wd && !decoupled;
  auto loop = l2 ? (ams ? &adam_loop<T, true, true> : &adam_loop<T, true, false>)
                 : (ams ? &adam_loop<T, false, true> : &adam_loop<T, false, false>);
  for_each_range(g, [&](size_t i, int64_t lo, int64_t hi) {
    loop(slot<T>(g, 0, i), slot<T>(g, 1, i), slot<T>(g, 2, i), slot<T>(g, 3, i), ams ? slot<T>(g, 4, i) : nullptr, lo, hi, gsign, wd,
         decay, w1, w1 < A(0.5), A(1) - w1, b2, w2, bc2_sqrt, eps, neg_step_size);
  });
}

template <typename T, bool WD, bool MOM, bool CENTERED>
void rmsprop_loop(T* __restrict p, const T* __restrict gr, T* __restrict sq, T* __restrict buf, T* __restrict ga, int64_t lo,
                  int64_t hi, opmath_t<T> gsign, opmath_t<T> wd, opmath_t<T> alpha, opmath_t<T> w, bool w_lo, opmath_t<T> omw, opmath_t<T> eps,
                  opmath_t<T> mom, opmath_t<T> neg_lr) {
  using A = opmath_t<T>;
  for (int64_t j = lo; j < hi; ++j) {
    A pv = static_cast<A>(p[j]);
    A d = gsign * static_cast<A>(gr[j]);
    if constexpr (WD) d = d + wd * pv;
    A s = store(sq + j, static_cast<A>(sq[j]) * alpha + w * d * d);
    A avg;
    if constexpr (CENTERED) {
      A g0 = static_cast<A>(ga[j]);
      A gav = store(ga + j, w_lo ? g0 + w * (d - g0) : d - (d - g0) * omw);
      avg = std::sqrt(s - gav * gav);
    } else {
      avg = std::sqrt(s);
    }
    avg = avg + eps;
    if constexpr (MOM) {
      A b = store(buf + j, static_cast<A>(buf[j]) * mom + d / avg);
      p[j] = static_cast<T>(pv + neg_lr * b);
    } else {
      p[j] = static_cast<T>(pv + neg_lr * (d / avg));
    }
  }
}

template <typename T>
void rmsprop_kernel(const OptimGroup& g, const ops::RmspropStep_Attrs& at) {
  using A = opmath_t<T>;
  const A alpha = static_cast<A>(at.alpha), w = static_cast<A>(1.0 - at.alpha), eps = static_cast<A>(at.eps);
  const A wd = static_cast<A>(at.weight_decay), mom = static_cast<A>(at.momentum), neg_lr = static_cast<A>(-at.lr);
  const A gsign = at.maximize ? A(-1) : A(1);
  const bool use_wd = at.weight_decay != 0.0, use_mom = at.momentum > 0.0, centered = at.centered;
  using Loop = void (*)(T*, const T*, T*, T*, T*, int64_t, int64_t, A, A, A, A, bool, A, A, A, A);
  static const Loop loops[8] = {&rmsprop_loop<T, false, false, false>, &rmsprop_loop<T, false, false, true>,
                                &rmsprop_loop<T, false, true, false>,  &rmsprop_loop<T, false, true, true>,
                                &rmsprop_loop<T, true, false, false>,  &rmsprop_loop<T, true, false, true>,
                                &rmsprop_loop<T, true, true, false>,   &rmsprop_loop<T, true, true, true>};
  Loop loop = loops[(use_wd ? 4 : 0) + (use_mom ? 2 : 0) + (centered ? 1 : 0)];
  for_each_range(g, [&](size_t i, int64_t lo, int64_t hi) {
    loop(slot<T>(g, 0, i), slot<T>(g, 1, i), slot<T>(g, 2, i), use_mom ? slot<T>(g, 3, i) : nullptr, centered ? slot<T>(g, 4, i) : nullptr,
         lo, hi, gsign, wd, alpha, w, w < A(0.5), A(1) - w, eps, mom, neg_lr);
  });
}

template <typename T, bool WD>
void adagrad_loop(T* __restrict p, const T* __restrict gr, T* __restrict ss, int64_t lo, int64_t hi, opmath_t<T> gsign,
                  opmath_t<T> wd, opmath_t<T> eps, opmath_t<T> neg_clr) {
  using A = opmath_t<T>;
  for (int64_t j = lo; j < hi; ++j) {
    A pv = static_cast<A>(p[j]);
    A d = gsign * static_cast<A>(gr[j]);
    if constexpr (WD) d = d + wd * pv;
    A s = store(ss + j, static_cast<A>(ss[j]) + d * d);
    p[j] = static_cast<T>(pv + neg_clr * (d / (std::sqrt(s) + eps)));
  }
}

template <typename T>
void adagrad_kernel(const OptimGroup& g, const ops::AdagradStep_Attrs& at) {
  using A = opmath_t<T>;
  const A neg_clr = static_cast<A>(-(at.lr / (1.0 + static_cast<double>(at.step - 1) * at.lr_decay)));
  const A eps = static_cast<A>(at.eps), wd = static_cast<A>(at.weight_decay), gsign = at.maximize ? A(-1) : A(1);
  auto loop = at.weight_decay != 0.0 ? &adagrad_loop<T, true> : &adagrad_loop<T, false>;
  for_each_range(g, [&](size_t i, int64_t lo, int64_t hi) {
    loop(slot<T>(g, 0, i), slot<T>(g, 1, i), slot<T>(g, 2, i), lo, hi, gsign, wd, eps, neg_clr);
  });
}

// ---- clip_grad_norm_: per-tensor norm (deterministic: fixed blocks, summed in order) and scaling.
// Sums accumulate in double over 8 independent lanes (so the loop vectorizes without reassociating
// anything nondeterministically); nan propagates through the sums by itself.
template <typename T, typename F>
double block_sum(const T* __restrict x, int64_t lo, int64_t hi, F f) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t j = lo;
  for (; j + 8 <= hi; j += 8)
    for (int k = 0; k < 8; ++k) acc[k] += f(static_cast<double>(static_cast<opmath_t<T>>(x[j + k])));
  double tail = 0;
  for (; j < hi; ++j) tail += f(static_cast<double>(static_cast<opmath_t<T>>(x[j])));
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail;
}

template <typename T>
double block_norm(const T* x, int64_t lo, int64_t hi, double p) {
  const double inf = std::numeric_limits<double>::infinity();
  if (p == 2.0) return block_sum(x, lo, hi, [](double v) { return v * v; });
  if (p == 1.0) return block_sum(x, lo, hi, [](double v) { return std::fabs(v); });
  if (p == 0.0) return block_sum(x, lo, hi, [](double v) { return v != 0.0 ? 1.0 : 0.0; });
  if (p == inf || p == -inf) {
    double acc = p == inf ? 0.0 : inf;
    bool nan = false;
    for (int64_t j = lo; j < hi; ++j) {
      double a = std::fabs(static_cast<double>(static_cast<opmath_t<T>>(x[j])));
      nan |= a != a;
      acc = p == inf ? (a > acc ? a : acc) : (a < acc ? a : acc);
    }
    return nan ? std::numeric_limits<double>::quiet_NaN() : acc;
  }
  return block_sum(x, lo, hi, [p](double v) { return std::pow(std::fabs(v), p); });
}

template <typename T>
double norm_kernel(const void* data, int64_t n, double p) {
  const T* x = static_cast<const T*>(data);
  const double inf = std::numeric_limits<double>::infinity();
  if (n == 0) return p == -inf ? inf : 0.0;  // torch: norm of an empty tensor is 0 (min over none: inf)
  const int64_t nblocks = (n + kGrain - 1) / kGrain;
  std::vector<double> part(static_cast<size_t>(nblocks), 0.0);
  parallel_for(0, nblocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) part[static_cast<size_t>(b)] = block_norm(x, b * kGrain, std::min(n, (b + 1) * kGrain), p);
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
