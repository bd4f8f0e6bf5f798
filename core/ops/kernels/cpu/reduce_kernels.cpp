// CPU reduction kernels: sum, mean, prod, amax, amin, argmax, argmin, var, std, logsumexp, all, any.
//
// Every reduction is an `Op` with a state: init(), run() (reduce a strided run of the input into
// a state), row() (fold one row of W input elements into W states, one per output column),
// combine(a, b) (a precedes b in index order) and finish(). One engine drives them all without
// copying the input:
//
//  * the input's dims are split into kept and reduced ones (size-1 dims dropped); for
//    order-insensitive ops both lists are sorted by stride, then adjacent dims are coalesced;
//  * "runs" layout: when the innermost reduced dim is the innermost dim overall, each output
//    element reduces runs along it (looping over the other reduced dims);
//  * "rows" layout: when a kept dim is innermost (e.g. reducing the outer or middle dims of a
//    contiguous tensor), the engine walks the reduced positions row by row and folds each row
//    into a block of per-column states, so memory is read in order and the loop vectorizes.
//
// Sums are pairwise (8 interleaved accumulators in blocks of 256, halves combined recursively,
// also across runs, rows and parallel chunks), so float32 sums of many millions of elements stay
// accurate. Parallel splits are fixed by the sizes only, never by the thread count, so results
// are identical for every number of threads.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "core/ops/generated/ops_gen.h"
#include "core/ops/impl/reduce.h"
#include "core/ops/kernels/cpu/loops.h"
#include "core/ops/kernels/cpu/reduce_simd.h"
#include "core/ops/kernels/cpu/vec_math.h"

namespace heron {
namespace cpu {
namespace {

template <typename T>
inline bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>) return v != v;
  else return false;
}

template <typename In>
inline const In& elem(const char* p) { return *reinterpret_cast<const In*>(p); }

constexpr int64_t kLeaf = 256;         // pairwise block (elements)
constexpr int64_t kRowLeaf = 32;       // pairwise block (rows)
constexpr int64_t kChunk = 1 << 16;    // elements per parallel chunk of one long reduction

// Pairwise tree-combine of partial states in index order.
template <class Op, class State>
void tree_combine(const Op& op, State* parts, int64_t n, int64_t stride = 1) {
  for (int64_t step = 1; step < n; step *= 2)
    for (int64_t i = 0; i + step < n; i += 2 * step) op.combine(parts[i * stride], parts[(i + step) * stride]);
}


// ------------------------------------------------------------------ simple associative ops
// A policy gives: In, Acc, Out, kPairwise, identity(), load(In), comb(Acc, Acc), fin(Acc, count).
template <class Pol>
struct SimpleOp {
  using In = typename Pol::In;
  using Acc = typename Pol::Acc;
  using Out = typename Pol::Out;
  using State = Acc;
  static constexpr bool kPairwise = Pol::kPairwise;
  static constexpr bool kOrdered = false;
  explicit SimpleOp(const ReduceArgs&) {}

  State init() const { return Pol::identity(); }

  template <bool Contig>
  static Acc tree(const char* p, int64_t n, int64_t s) {
    auto at = [&](int64_t i) -> Acc {
      if constexpr (Contig) return Pol::load(reinterpret_cast<const In*>(p)[i]);
      else return Pol::load(elem<In>(p + i * s));
    };
    if (n < 16) {
      Acc r = Pol::identity();
      for (int64_t i = 0; i < n; ++i) r = Pol::comb(r, at(i));
      return r;
    }
#if defined(__SSE2__)
    if constexpr (Contig && Pol::kExtreme && (std::is_same_v<In, float> || std::is_same_v<In, double>))
      return extreme_sse<Pol::kMax>(reinterpret_cast<const In*>(p), n);
#endif
    if (kPairwise && n > kLeaf) {
      int64_t h = (n / 2) & ~int64_t{7};
      Acc left = tree<Contig>(p, h, s);  // left first: memory is read in ascending order
      return Pol::comb(left, tree<Contig>(p + h * s, n - h, s));
    }
    Acc r[8];
    for (int j = 0; j < 8; ++j) r[j] = at(j);
    int64_t i = 8;
    for (; i + 8 <= n; i += 8)
      for (int j = 0; j < 8; ++j) r[j] = Pol::comb(r[j], at(i + j));
    Acc res = Pol::comb(Pol::comb(Pol::comb(r[0], r[1]), Pol::comb(r[2], r[3])),
                        Pol::comb(Pol::comb(r[4], r[5]), Pol::comb(r[6], r[7])));
    for (; i < n; ++i) res = Pol::comb(res, at(i));
    return res;
  }

  State run(const char* p, int64_t n, int64_t s, int64_t) const {
    if (s == static_cast<int64_t>(sizeof(In))) return tree<true>(p, n, s);
    return tree<false>(p, n, s);
  }
  void row(State* st, const char* p, int64_t n, int64_t s, int64_t) const {
#if defined(__SSE2__)
    if constexpr (Pol::kExtreme && (std::is_same_v<In, float> || std::is_same_v<In, double>)) {
      if (s == static_cast<int64_t>(sizeof(In))) {
        extreme_row_sse<Pol::kMax>(st, reinterpret_cast<const In*>(p), n);
        return;
      }
    }
#endif
    if (s == static_cast<int64_t>(sizeof(In))) {
      const In* x = reinterpret_cast<const In*>(p);
      for (int64_t w = 0; w < n; ++w) st[w] = Pol::comb(st[w], Pol::load(x[w]));
    } else {
      for (int64_t w = 0; w < n; ++w) st[w] = Pol::comb(st[w], Pol::load(elem<In>(p + w * s)));
    }
  }
  void combine(State& a, const State& b) const { a = Pol::comb(a, b); }
  Out finish(const State& s, int64_t count) const { return Pol::fin(s, count); }
};

template <typename T>
constexpr bool kFloatLike = std::is_floating_point_v<opmath_t<T>>;

// sum / prod: floats accumulate in opmath (float for 16-bit, double for float64); integers and
// bool in uint64 (two's-complement wrap, no UB) and return int64.
template <typename T>
using IntAcc = std::conditional_t<kFloatLike<T>, opmath_t<T>, uint64_t>;
template <typename T>
using IntOut = std::conditional_t<kFloatLike<T>, T, int64_t>;

template <typename T>
struct SumPol {
  using In = T;
  using Acc = IntAcc<T>;
  using Out = IntOut<T>;
  static constexpr bool kPairwise = true;
  static constexpr bool kExtreme = false, kMax = false;
  static Acc identity() { return Acc(0); }
  static Acc load(T v) {
    if constexpr (kFloatLike<T>) return static_cast<Acc>(v);
    else return static_cast<uint64_t>(static_cast<int64_t>(v));
  }
  static Acc comb(Acc a, Acc b) { return a + b; }
  static Out fin(Acc a, int64_t) {
    if constexpr (kFloatLike<T>) return Out(a);
    else return static_cast<int64_t>(a);
  }
};

template <typename T>
struct ProdPol : SumPol<T> {
  using Acc = IntAcc<T>;
  static constexpr bool kPairwise = false;
  static Acc identity() { return Acc(1); }
  static Acc comb(Acc a, Acc b) { return a * b; }
};

template <typename T>
struct MeanPol {
  using In = T;
  using Acc = opmath_t<T>;
  using Out = T;
  static constexpr bool kPairwise = true;
  static constexpr bool kExtreme = false, kMax = false;
  static Acc identity() { return Acc(0); }
  static Acc load(T v) { return static_cast<Acc>(v); }
  static Acc comb(Acc a, Acc b) { return a + b; }
  static Out fin(Acc a, int64_t n) { return Out(static_cast<Acc>(a / static_cast<Acc>(n))); }
};

// amax / amin: nan propagates; bool max is any, min is all.
template <typename T, bool Max>
struct ExtremePol {
  using In = T;
  using Acc = opmath_t<T>;
  using Out = T;
  static constexpr bool kPairwise = false;
  static constexpr bool kExtreme = true, kMax = Max;
  static Acc identity() {
    if constexpr (std::is_same_v<Acc, bool>) return !Max;
    else if constexpr (std::is_floating_point_v<Acc>)
      return Max ? -std::numeric_limits<Acc>::infinity() : std::numeric_limits<Acc>::infinity();
    else return Max ? std::numeric_limits<Acc>::lowest() : std::numeric_limits<Acc>::max();
  }
  static Acc load(T v) { return static_cast<Acc>(v); }
  static Acc comb(Acc a, Acc b) {
    // Branch-free so the 8-lane loop vectorizes: keep a when it wins or is nan.
    bool keep = Max ? (a > b) : (a < b);
    if constexpr (std::is_floating_point_v<Acc>) keep = keep | (a != a);
    return keep ? a : b;
  }
  static Out fin(Acc a, int64_t) { return Out(a); }
};


template <typename T, bool All>
struct LogicalPol {
  using In = T;
  using Acc = bool;
  using Out = bool;
  static constexpr bool kPairwise = false;
  static constexpr bool kExtreme = false, kMax = false;
  static Acc identity() { return All; }
  static Acc load(T v) { return static_cast<opmath_t<T>>(v) != 0; }
  static Acc comb(Acc a, Acc b) { return All ? (a && b) : (a || b); }
  static Out fin(Acc a, int64_t) { return a; }
};

// ------------------------------------------------------------------ var / std
template <typename T, bool Sqrt>
struct VarOp {
  using In = T;
  using Acc = opmath_t<T>;
  using Out = T;
  struct State {
    int64_t n = 0;
    Acc mean = 0;
    Acc m2 = 0;
  };
  static constexpr bool kPairwise = true;
  static constexpr bool kOrdered = false;
  double correction;
  explicit VarOp(const ReduceArgs& a) : correction(a.correction) {}

  State init() const { return {}; }
  State run(const char* p, int64_t n, int64_t s, int64_t) const {
    // Blocks of 2048: two passes over each block (it stays in cache), merged with Chan's formula.
    State st;
    constexpr int64_t kBlk = 2048;
    for (int64_t b = 0; b < n; b += kBlk) {
      int64_t m = std::min(kBlk, n - b);
      const char* q = p + b * s;
      Acc sum = s == static_cast<int64_t>(sizeof(In)) ? SimpleOp<MeanPol<T>>::template tree<true>(q, m, s)
                                                       : SimpleOp<MeanPol<T>>::template tree<false>(q, m, s);
      Acc mean = sum / static_cast<Acc>(m);
      Acc r[8] = {};
      int64_t i = 0;
      if (s == static_cast<int64_t>(sizeof(In))) {
        const In* x = reinterpret_cast<const In*>(q);
        for (; i + 8 <= m; i += 8)
          for (int j = 0; j < 8; ++j) {
            Acc d = static_cast<Acc>(x[i + j]) - mean;
            r[j] += d * d;
          }
      }
      Acc m2 = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
      for (; i < m; ++i) {
        Acc d = static_cast<Acc>(elem<In>(q + i * s)) - mean;
        m2 += d * d;
      }
      combine(st, State{m, mean, m2});
    }
    return st;
  }
  void row(State* st, const char* p, int64_t n, int64_t s, int64_t) const {
    if (n == 0) return;
    int64_t cnt = st[0].n + 1;
    Acc inv = Acc(1) / static_cast<Acc>(cnt);
    for (int64_t w = 0; w < n; ++w) {
      Acc x = static_cast<Acc>(elem<In>(p + w * s));
      Acc d = x - st[w].mean;
      st[w].mean += d * inv;
      st[w].m2 += d * (x - st[w].mean);
      st[w].n = cnt;
    }
  }
  void combine(State& a, const State& b) const {
    if (b.n == 0) return;
    if (a.n == 0) { a = b; return; }
    int64_t n = a.n + b.n;
    Acc d = b.mean - a.mean;
    Acc fb = static_cast<Acc>(b.n) / static_cast<Acc>(n);
    a.mean += d * fb;
    a.m2 += b.m2 + d * d * static_cast<Acc>(a.n) * fb;
    a.n = n;
  }
  Out finish(const State& s, int64_t) const {
    double div = std::max(0.0, static_cast<double>(s.n) - correction);
    double v = static_cast<double>(s.m2) / div;
    if (Sqrt) v = std::sqrt(v);
    return Out(static_cast<Acc>(v));
  }
};

// ------------------------------------------------------------------ logsumexp
// State (m, s): the value is m + log(s), s = sum of exp(x - m). Infinities and nan are exact:
// all -inf gives -inf, any +inf gives +inf, any nan gives nan.
template <typename T>
struct LseOp {
  using In = T;
  using Acc = opmath_t<T>;
  using Out = T;
  struct State {
    Acc m = -std::numeric_limits<Acc>::infinity();
    Acc s = 0;
  };
  static constexpr bool kPairwise = true;
  static constexpr bool kOrdered = false;
  explicit LseOp(const ReduceArgs&) {}

  static void add(State& st, Acc x) {
    if (is_nan(x)) {
      st.m = x;  // sticks: nothing compares greater or equal to nan
      st.s = Acc(1);
    } else if (x > st.m) {
      st.s = st.s * std::exp(st.m - x) + Acc(1);  // m == -inf: exp(-inf) == 0
      st.m = x;
    } else if (x == st.m) {
      st.s += Acc(1);
    } else {
      st.s += std::exp(x - st.m);
    }
  }
  State init() const { return {}; }
  State run(const char* p, int64_t n, int64_t s, int64_t) const {
    if (n > kLeaf) {
      int64_t h = n / 2;
      State a = run(p, h, s, 0);
      combine(a, run(p + h * s, n - h, s, 0));
      return a;
    }
    if constexpr (std::is_same_v<T, float>) {
      if (s == static_cast<int64_t>(sizeof(float)) && n > 0) {
        // Contiguous float32: max, then exp(x - max) with the SIMD exp, then a sum.
        const float* x = reinterpret_cast<const float*>(p);
        float m = SimpleOp<ExtremePol<float, true>>::template tree<true>(p, n, s);
        if (std::isfinite(m)) {
          float buf[kLeaf];
          for (int64_t i = 0; i < n; ++i) buf[i] = x[i] - m;
          vec::exp_f32(buf, buf, n);
          return State{m, SimpleOp<MeanPol<float>>::template tree<true>(reinterpret_cast<const char*>(buf), n, sizeof(float))};
        }
      }
    }
    State st;
    for (int64_t i = 0; i < n; ++i) add(st, static_cast<Acc>(elem<In>(p + i * s)));
    return st;
  }
  void row(State* st, const char* p, int64_t n, int64_t s, int64_t) const {
    for (int64_t w = 0; w < n; ++w) add(st[w], static_cast<Acc>(elem<In>(p + w * s)));
  }
  void combine(State& a, const State& b) const {
    const Acc ninf = -std::numeric_limits<Acc>::infinity();
    if (b.m == ninf) return;
    if (a.m == ninf) { a = b; return; }
    Acc m = (a.m > b.m || is_nan(a.m)) ? a.m : b.m;
    if (is_nan(b.m)) m = b.m;
    auto w = [&](Acc mi) { return mi == m ? Acc(1) : std::exp(mi - m); };
    a.s = a.s * w(a.m) + b.s * w(b.m);
    a.m = m;
  }
  Out finish(const State& s, int64_t) const { return Out(static_cast<Acc>(s.m + std::log(s.s))); }
};

// ------------------------------------------------------------------ argmax / argmin
// First occurrence; nan counts as the extreme (the first nan wins), like PyTorch.
template <typename T, bool Max>
struct ArgOp {
  using In = T;
  using Acc = opmath_t<T>;
  using Out = int64_t;
  struct State {
    Acc v{};
    int64_t i = -1;
  };
  static constexpr bool kPairwise = false;
  static constexpr bool kOrdered = true;
  explicit ArgOp(const ReduceArgs&) {}

  static bool better(Acc x, Acc best) {
    if constexpr (Max) return x > best || is_nan(x);
    else return x < best || is_nan(x);
  }
  State init() const { return {}; }
  State run(const char* p, int64_t n, int64_t s, int64_t idx0) const {
    if (n == 0) return {};
    Acc best = static_cast<Acc>(elem<In>(p));
    int64_t bi = 0;
    if (s == static_cast<int64_t>(sizeof(In))) {
      // Contiguous: the extreme with a vectorized pass, then its first position.
      const In* x = reinterpret_cast<const In*>(p);
      best = SimpleOp<ExtremePol<T, Max>>::template tree<true>(p, n, s);
      if (is_nan(best)) {
        while (!is_nan(static_cast<Acc>(x[bi]))) ++bi;
      } else {
        while (static_cast<Acc>(x[bi]) != best) ++bi;
      }
    } else {
      for (int64_t i = 1; i < n && !is_nan(best); ++i) {
        Acc v = static_cast<Acc>(elem<In>(p + i * s));
        if (better(v, best)) { best = v; bi = i; }
      }
    }
    return {best, idx0 + bi};
  }
  void row(State* st, const char* p, int64_t n, int64_t s, int64_t idx) const {
    for (int64_t w = 0; w < n; ++w) {
      Acc v = static_cast<Acc>(elem<In>(p + w * s));
      if (st[w].i < 0 || (!is_nan(st[w].v) && better(v, st[w].v))) st[w] = {v, idx};
    }
  }
  void combine(State& a, const State& b) const {
    if (b.i < 0) return;
    if (a.i < 0 || (!is_nan(a.v) && better(b.v, a.v))) a = b;
  }
  Out finish(const State& s, int64_t) const { return s.i < 0 ? 0 : s.i; }
};

// ------------------------------------------------------------------ the engine
// A heap array of states (std::vector<bool> would not do for the bool states of all/any).
template <typename S>
struct Buf {
  std::unique_ptr<S[]> p;
  explicit Buf(size_t n) : p(new S[n == 0 ? 1 : n]()) {}
  S* data() { return p.get(); }
  S& operator[](size_t i) { return p[i]; }
};

struct Dim3 {
  int64_t size, is, os;  // size, input byte stride, output byte stride
};

// A multi-index over dims (outermost first) tracking an input and an output byte offset.
struct Walker {
  const Dim3* d = nullptr;
  int64_t n = 0;
  Dims idx;
  int64_t in = 0, out = 0;
  Walker(const std::vector<Dim3>& dims) : d(dims.data()), n(static_cast<int64_t>(dims.size())), idx(dims.size(), 0) {}
  void set(int64_t lin) {
    in = out = 0;
    for (int64_t k = n - 1; k >= 0; --k) {
      int64_t i = lin % d[k].size;
      lin /= d[k].size;
      idx[k] = i;
      in += i * d[k].is;
      out += i * d[k].os;
    }
  }
  void next() {
    for (int64_t k = n - 1; k >= 0; --k) {
      if (++idx[k] < d[k].size) { in += d[k].is; out += d[k].os; return; }
      in -= (d[k].size - 1) * d[k].is;
      out -= (d[k].size - 1) * d[k].os;
      idx[k] = 0;
    }
  }
};

inline int64_t input_offset(const std::vector<Dim3>& dims, int64_t lin) {
  int64_t off = 0;
  for (int64_t k = static_cast<int64_t>(dims.size()) - 1; k >= 0; --k) {
    off += (lin % dims[k].size) * dims[k].is;
    lin /= dims[k].size;
  }
  return off;
}

void coalesce(std::vector<Dim3>& v) {
  if (v.size() < 2) return;
  std::vector<Dim3> c;
  c.push_back(v[0]);
  for (size_t i = 1; i < v.size(); ++i) {
    Dim3& b = c.back();
    if (b.is == v[i].is * v[i].size && b.os == v[i].os * v[i].size) {
      b.size *= v[i].size;
      b.is = v[i].is;
      b.os = v[i].os;
    } else {
      c.push_back(v[i]);
    }
  }
  v.swap(c);
}

inline int64_t iabs(int64_t v) { return v < 0 ? -v : v; }

template <class Op>
struct Engine {
  using In = typename Op::In;
  using Out = typename Op::Out;
  using State = typename Op::State;
  const Op& op;
  const char* base;
  char* obase;
  int64_t count;

  // ---- runs layout: reduce the inner run (R, rs) for each position of the outer reduced dims.
  std::vector<Dim3> ored;
  int64_t R = 1, rs = 0;

  // Reduces the reduced positions [l0, l1) (linear over (outer reduced dims, run)) at input b.
  State span(const char* b, int64_t l0, int64_t l1) const {
    int64_t q0 = l0 / R, q1 = (l1 - 1) / R;
    if (q0 == q1) return op.run(b + input_offset(ored, q0) + (l0 - q0 * R) * rs, l1 - l0, rs, l0);
    if (Op::kPairwise) {
      int64_t m = ((q0 + q1 + 1) / 2) * R;
      State s = span(b, l0, m);
      op.combine(s, span(b, m, l1));
      return s;
    }
    State s = op.init();
    for (int64_t l = l0; l < l1;) {
      int64_t q = l / R;
      int64_t e = std::min(l1, (q + 1) * R);
      op.combine(s, op.run(b + input_offset(ored, q) + (l - q * R) * rs, e - l, rs, l));
      l = e;
    }
    return s;
  }

  void run_runs(const std::vector<Dim3>& kept) {
    const int64_t O = [&] { int64_t n = 1; for (auto& d : kept) n *= d.size; return n; }();
    const int64_t L = count;
    if (O < 8 && L > 2 * kChunk) {
      // Few outputs, long reductions: fixed chunks of each reduction in parallel.
      int64_t nch = (L + kChunk - 1) / kChunk;
      Buf<State> parts(nch);
      Walker it(kept);
      it.set(0);
      for (int64_t o = 0; o < O; ++o, it.next()) {
        const char* b = base + it.in;
        parallel_for(0, nch, 1, [&](int64_t c0, int64_t c1) {
          for (int64_t c = c0; c < c1; ++c) parts[c] = span(b, c * kChunk, std::min(L, (c + 1) * kChunk));
        });
        tree_combine(op, parts.data(), nch);
        *reinterpret_cast<Out*>(obase + it.out) = op.finish(parts[0], count);
      }
      return;
    }
    int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(L, 1));
    parallel_for(0, O, grain, [&](int64_t o0, int64_t o1) {
      Walker it(kept);
      it.set(o0);
      for (int64_t o = o0; o < o1; ++o, it.next())
        *reinterpret_cast<Out*>(obase + it.out) = op.finish(span(base + it.in, 0, L), count);
    });
  }

  // ---- rows layout: rows are the positions of the reduced dims `red`; each row holds W
  // elements (stride wis) that fold into W per-column states.
  std::vector<Dim3> red;
  int64_t wis = 0;

  // Folds rows [l0, l1) into st[0..wn); scratch holds (levels * wn) states for the pairwise split.
  void rows(State* st, int64_t wn, const char* b, int64_t l0, int64_t l1, State* scratch) const {
    if (Op::kPairwise && l1 - l0 > kRowLeaf) {
      int64_t m = l0 + (l1 - l0) / 2;
      rows(st, wn, b, l0, m, scratch);
      State* tmp = scratch;
      for (int64_t w = 0; w < wn; ++w) tmp[w] = op.init();
      rows(tmp, wn, b, m, l1, scratch + wn);
      for (int64_t w = 0; w < wn; ++w) op.combine(st[w], tmp[w]);
      return;
    }
    Walker it(red);
    it.set(l0);
    for (int64_t l = l0; l < l1; ++l, it.next()) op.row(st, b + it.in, wn, wis, l);
  }

  void run_rows(const std::vector<Dim3>& outer, const Dim3& wdim) {
    wis = wdim.is;
    const int64_t W = wdim.size;
    const int64_t P = count;
    const int64_t O1 = [&] { int64_t n = 1; for (auto& d : outer) n *= d.size; return n; }();
    const int64_t WB = std::min<int64_t>(W, std::max<int64_t>(16, 16384 / static_cast<int64_t>(sizeof(State))));
    const int64_t nwb = (W + WB - 1) / WB;
    const int64_t tasks = O1 * nwb;
    int levels = 2;
    for (int64_t p = P; p > kRowLeaf; p = (p + 1) / 2) ++levels;

    auto finish_block = [&](const State* st, int64_t wn, int64_t out_off) {
      for (int64_t w = 0; w < wn; ++w) *reinterpret_cast<Out*>(obase + out_off + w * wdim.os) = op.finish(st[w], count);
    };
    // Task t = (outer position, column block).
    auto task_ptrs = [&](int64_t t, Walker& it, int64_t& in_off, int64_t& out_off, int64_t& wn) {
      int64_t o = t / nwb, wb = t % nwb;
      it.set(o);
      int64_t w0 = wb * WB;
      wn = std::min(WB, W - w0);
      in_off = it.in + w0 * wdim.is;
      out_off = it.out + w0 * wdim.os;
    };

    const int64_t chunk_rows = std::max<int64_t>(64, kChunk / std::max<int64_t>(WB, 1));
    if (tasks < 8 && P > 2 * chunk_rows) {
      // Few column blocks, many rows: fixed row chunks in parallel, partial states combined.
      int64_t nch = (P + chunk_rows - 1) / chunk_rows;
      Buf<State> parts(nch * WB);
      Walker it(outer);
      for (int64_t t = 0; t < tasks; ++t) {
        int64_t in_off, out_off, wn;
        task_ptrs(t, it, in_off, out_off, wn);
        parallel_for(0, nch, 1, [&](int64_t c0, int64_t c1) {
          Buf<State> scratch(static_cast<size_t>(levels) * wn);
          for (int64_t c = c0; c < c1; ++c) {
            State* st = parts.data() + c * wn;
            for (int64_t w = 0; w < wn; ++w) st[w] = op.init();
            rows(st, wn, base + in_off, c * chunk_rows, std::min(P, (c + 1) * chunk_rows), scratch.data());
          }
        });
        // Pairwise over the chunks, a whole row of states at a time (sequential memory).
        State* ps = parts.data();
        for (int64_t step = 1; step < nch; step *= 2)
          for (int64_t c = 0; c + step < nch; c += 2 * step)
            for (int64_t w = 0; w < wn; ++w) op.combine(ps[c * wn + w], ps[(c + step) * wn + w]);
        finish_block(ps, wn, out_off);
      }
      return;
    }
    int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(WB * P, 1));
    parallel_for(0, tasks, grain, [&](int64_t t0, int64_t t1) {
      Buf<State> st(WB), scratch(static_cast<size_t>(levels) * WB);
      Walker it(outer);
      for (int64_t t = t0; t < t1; ++t) {
        int64_t in_off, out_off, wn;
        task_ptrs(t, it, in_off, out_off, wn);
        for (int64_t w = 0; w < wn; ++w) st[w] = op.init();
        rows(st.data(), wn, base + in_off, 0, P, scratch.data());
        finish_block(st.data(), wn, out_off);
      }
    });
  }
};

template <class Op>
void reduce_kernel(const ReduceArgs& a) {
  using In = typename Op::In;
  using Out = typename Op::Out;
  const Tensor& x = a.in;
  const Tensor& y = a.out;
  const int64_t on = y.numel();
  if (on == 0) return;
  Op op(a);
  const int64_t nd = x.dim();
  int64_t count = 1;
  for (int64_t d = 0; d < nd; ++d)
    if (a.mask[d]) count *= x.shape()[d];
  Out* out = y.data<Out>();
  if (count == 0) {
    Out v = op.finish(op.init(), 0);
    for (int64_t i = 0; i < on; ++i) out[i] = v;
    return;
  }
  const int64_t isz = sizeof(In);
  std::vector<Dim3> kept, red;
  kept.reserve(nd);
  red.reserve(nd);
  int64_t ostride = sizeof(Out);
  for (int64_t d = nd - 1; d >= 0; --d) {
    int64_t sz = x.shape()[d];
    if (a.mask[d]) {
      if (sz != 1) red.push_back({sz, x.strides()[d] * isz, 0});
    } else {
      if (sz != 1) kept.push_back({sz, x.strides()[d] * isz, ostride});
      ostride *= sz;
    }
  }
  std::reverse(kept.begin(), kept.end());
  std::reverse(red.begin(), red.end());
  auto by_stride = [](const Dim3& p, const Dim3& q) { return iabs(p.is) > iabs(q.is); };
  if (!Op::kOrdered) std::stable_sort(red.begin(), red.end(), by_stride);
  std::stable_sort(kept.begin(), kept.end(), by_stride);
  coalesce(red);
  coalesce(kept);

  Engine<Op> eng{op, static_cast<const char*>(x.raw_data()), reinterpret_cast<char*>(out), count, {}, 1, 0, {}, 0};
  bool rows_layout = !kept.empty() && !red.empty() && iabs(kept.back().is) < iabs(red.back().is);
  if (!rows_layout) {
    if (!red.empty()) {
      eng.R = red.back().size;
      eng.rs = red.back().is;
      red.pop_back();
      eng.ored = std::move(red);
    }
    eng.run_runs(kept);
  } else {
    Dim3 wdim = kept.back();
    kept.pop_back();
    eng.red = std::move(red);
    eng.run_rows(kept, wdim);
  }
}

template <class Pol>
void simple_kernel(const ReduceArgs& a) { reduce_kernel<SimpleOp<Pol>>(a); }

#define HERON_REG_ALL(OP, TMPL)                                                   \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::Float32, &TMPL(float));      \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::Float64, &TMPL(double));     \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::Float16, &TMPL(Half));       \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::BFloat16, &TMPL(BFloat16));  \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::Int8, &TMPL(int8_t));        \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::UInt8, &TMPL(uint8_t));      \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::Int32, &TMPL(int32_t));      \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::Int64, &TMPL(int64_t))
#define HERON_REG_BOOL(OP, TMPL) HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::Bool, &TMPL(bool))
#define HERON_REG_FLOAT(OP, TMPL)                                                 \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::Float32, &TMPL(float));      \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::Float64, &TMPL(double));     \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::Float16, &TMPL(Half));       \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::BFloat16, &TMPL(BFloat16))

#define SUM_K(T) simple_kernel<SumPol<T>>
#define PROD_K(T) simple_kernel<ProdPol<T>>
#define MEAN_K(T) simple_kernel<MeanPol<T>>
#define AMAX_K(T) simple_kernel<ExtremePol<T, true>>
#define AMIN_K(T) simple_kernel<ExtremePol<T, false>>
#define ALL_K(T) simple_kernel<LogicalPol<T, true>>
#define ANY_K(T) simple_kernel<LogicalPol<T, false>>
#define ARGMAX_K(T) reduce_kernel<ArgOp<T, true>>
#define ARGMIN_K(T) reduce_kernel<ArgOp<T, false>>
#define VAR_K(T) reduce_kernel<VarOp<T, false>>
#define STD_K(T) reduce_kernel<VarOp<T, true>>
#define LSE_K(T) reduce_kernel<LseOp<T>>

HERON_REG_ALL(sum, SUM_K);
HERON_REG_BOOL(sum, SUM_K);
HERON_REG_ALL(prod, PROD_K);
HERON_REG_BOOL(prod, PROD_K);
HERON_REG_FLOAT(mean, MEAN_K);
HERON_REG_ALL(amax, AMAX_K);
HERON_REG_BOOL(amax, AMAX_K);
HERON_REG_ALL(amin, AMIN_K);
HERON_REG_BOOL(amin, AMIN_K);
HERON_REG_ALL(all, ALL_K);
HERON_REG_BOOL(all, ALL_K);
HERON_REG_ALL(any, ANY_K);
HERON_REG_BOOL(any, ANY_K);
HERON_REG_ALL(argmax, ARGMAX_K);
HERON_REG_ALL(argmin, ARGMIN_K);
HERON_REG_FLOAT(var, VAR_K);
HERON_REG_FLOAT(std, STD_K);
HERON_REG_FLOAT(logsumexp, LSE_K);

}  // namespace
}  // namespace cpu
}  // namespace heron
