// CPU kernels of the recurrent layers (impl/rnn.h; docs/design/rnn.md). Per layer and direction:
//  - the weights' gate rows are permuted once per call into blocks of kRnnUnitBlock hidden units
//    ([i f g o] of units u0..u0+ub, then the next block), so one contiguous column range of the
//    gate matrix holds every gate of a set of units;
//  - the input projection of all T steps is one GEMM (bias pre-filled);
//  - each step runs one parallel region: every thread multiplies the previous hidden state by its
//    own column range of W_hh (OpenBLAS, single-threaded inside the region) and then applies the
//    gate nonlinearities and the state update to exactly those units, with no barrier between
//    the product and the update (a projection, LSTM proj_size > 0, adds one product per step);
//  - backward: per step the gate gradients (parallel over units) and one product for the
//    previous hidden state's gradient; the weight and input gradients of all steps are one GEMM
//    each afterwards.
// No allocation inside the time loop. Variable lengths (sorted) shrink the rows of every step.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "core/ops/generated/ops_gen.h"
#include "core/ops/impl/rnn.h"
#include "core/ops/impl/rnn_generic.h"
#include "core/ops/kernels/cpu/blas_threads.h"
#include "core/ops/kernels/cpu/register.h"
#include "core/ops/kernels/cpu/rnn_gemm.h"
#include "core/ops/kernels/cpu/vec_math.h"
#include "core/util/philox.h"
#include "core/util/error.h"
#include "core/util/thread_pool.h"

namespace heron {
namespace cpu {
namespace {

inline void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
                 float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
}
inline void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const double* a, int64_t lda, const double* b, int64_t ldb, double beta,
                 double* c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0, a, lda, b, ldb, beta, c, ldc);
}


int64_t num_parts(int64_t items) { return std::max<int64_t>(1, std::min<int64_t>(get_num_threads(), items)); }

// fn(i0, i1) over a static split of [0, items) into one chunk per thread (decided by the shape
// and the thread count only).
template <typename F>
void static_split(int64_t items, F fn) {
  const int64_t np = num_parts(items);
  if (np <= 1) {
    if (items > 0) fn(int64_t{0}, items);
    return;
  }
  parallel_for(0, np, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t i0 = items * p / np, i1 = items * (p + 1) / np;
      if (i1 > i0) fn(i0, i1);
    }
  });
}

// C (m x n) = op(A) op(B) + beta C over the pool: rows or columns of C in parts (the sum over k is
// never split). How an element is rounded may depend on the shape of the call that computes it:
// OpenBLAS has small-matrix kernels (SkylakeX's take m*n*k up to 1e6), and its Haswell kernels
// (what OpenBLAS 0.3.21 picks on CPUs it does not know, e.g. AMD Zen 5) round edge tiles
// differently. So the parts are fixed by the shape alone (at most kFixedParts, each of at least
// kMinPart multiply-adds) and only their assignment to threads depends on the thread count: every
// element comes from the same call at any thread count (a product too small to split is one call).
template <typename T>
void pgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb, T beta, T* c,
           int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == T(0) ? T(0) : beta * c[i * ldc + j];
    return;
  }
  constexpr int64_t kChunk = 16;
  constexpr int64_t kFixedParts = 8;
  constexpr double kMinPart = double(int64_t{1} << 21);
  const bool rows = m >= n;
  const int64_t chunks = ((rows ? m : n) + kChunk - 1) / kChunk;
  const int64_t parts = std::min<int64_t>({kFixedParts, chunks, int64_t(double(m) * double(n) * double(k) / kMinPart)});
  if (parts < 2) {
    gemm(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  parallel_for(0, parts, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t c0 = chunks * p / parts, c1 = chunks * (p + 1) / parts;
      if (rows) {
        const int64_t i0 = c0 * kChunk, i1 = std::min(m, c1 * kChunk);
        if (i1 > i0) gemm(ta, tb, i1 - i0, n, k, ta ? a + i0 : a + i0 * lda, lda, b, ldb, beta, c + i0 * ldc, ldc);
      } else {
        const int64_t j0 = c0 * kChunk, j1 = std::min(n, c1 * kChunk);
        if (j1 > j0) gemm(ta, tb, m, j1 - j0, k, a, lda, tb ? b + j0 * ldb : b + j0, ldb, beta, c + j0, ldc);
      }
    }
  });
}

inline void sigmoid_v(float* p, int64_t n) { vec::sigmoid_f32(p, p, n); }
inline void tanh_v(float* p, int64_t n) { vec::tanh_f32(p, p, n); }
inline void sigmoid_v(double* p, int64_t n) {
  for (int64_t i = 0; i < n; ++i) p[i] = 1.0 / (1.0 + std::exp(-p[i]));
}
inline void tanh_v(double* p, int64_t n) {
  for (int64_t i = 0; i < n; ++i) p[i] = std::tanh(p[i]);
}

// The permuted position of gate q's row for unit u (G gates, H units).
inline int64_t perm_row(int64_t q, int64_t u, int64_t G, int64_t H) {
  const int64_t u0 = u / kRnnUnitBlock * kRnnUnitBlock;
  const int64_t ub = std::min(kRnnUnitBlock, H - u0);
  return u0 * G + q * ub + (u - u0);
}
template <typename T>
void permute_rows(const T* src, T* dst, int64_t G, int64_t H, int64_t K) {
  for (int64_t q = 0; q < G; ++q)
    for (int64_t u = 0; u < H; ++u) std::memcpy(dst + perm_row(q, u, G, H) * K, src + (q * H + u) * K, sizeof(T) * K);
}
template <typename T>
void unpermute_rows(const T* src, T* dst, int64_t G, int64_t H, int64_t K) {
  for (int64_t q = 0; q < G; ++q)
    for (int64_t u = 0; u < H; ++u) std::memcpy(dst + (q * H + u) * K, src + perm_row(q, u, G, H) * K, sizeof(T) * K);
}

using rnn_generic::dir_params;  // one direction's weights out of the flat parameter list

// The float32 AVX-512 path for the recurrent products (W_hh packed once per call).
template <typename T>
bool use_packed() {
  return std::is_same<T, float>::value && rnn_gemm_supported();
}
inline const float* as_f(const float* p) { return p; }
inline const float* as_f(const double*) { return nullptr; }
inline float* as_f(float* p) { return p; }
inline float* as_f(double*) { return nullptr; }

// Per-thread scratch that outlives the call (no page faults and zeroing of fresh memory on every
// call; the kernels may run on several threads at once, each with its own).
template <typename T>
T* scratch(int slot, int64_t n) {
  thread_local std::vector<T> bufs[8];
  auto& v = bufs[slot];
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  return v.data();
}

// One direction's forward weights, permuted (and W_hh packed when `packed`, W_ih too when the
// input projection is folded into the steps).
template <typename T>
struct Prepared {
  std::vector<T> wi, wh;
  std::vector<float> whp, wip;
};

inline std::vector<float>& packed_scratch(int slot) {
  thread_local std::vector<float> bufs[3];
  return bufs[slot];
}

// When the input projection is folded into the per-step product (packed path): for inputs at
// most kRnnFoldMaxIn wide, whose separate GEMM (K this small) is dominated by its output traffic
// (every gate of every step written, read back and written again), while in the step's product it
// adds K rows to a block of gates that is in registers anyway; and for any input width from
// kRnnFoldMinBatch rows on, where each packed W_ih element streamed per step is used by enough
// rows to keep the product compute-bound, and the gates never go through memory between the
// projection and the step. Below that batch a step would re-read all of W_ih for a few rows:
// there the one GEMM over all steps wins (docs/design/rnn.md, item 5).
constexpr int64_t kRnnFoldMaxIn = 64;
constexpr int64_t kRnnFoldMinBatch = 32;

// Rows per product-and-update chunk of the packed step (a thread's gates of one unit block for
// these rows stay in L1 between the product and the update).
constexpr int64_t kRnnRowChunk = 32;

inline int64_t nblocks(int64_t H) { return (H + kRnnUnitBlock - 1) / kRnnUnitBlock; }

// HERON_RNN_GENERIC=1: run the device-generic algorithm (impl/rnn_generic.h), the one the cuda
// kernels run, on the CPU with plain loops and OpenBLAS products. Slow; it exists so that every
// RNN test can check that algorithm on machines without a GPU. Read once per process.
bool generic_requested() {
  static const bool on = [] {
    const char* e = std::getenv("HERON_RNN_GENERIC");
    return e != nullptr && *e != '\0' && std::strcmp(e, "0") != 0;
  }();
  return on;
}

struct HostBackend {
  Device dev;
  std::vector<Tensor> held;
  template <typename F>
  void launch(int64_t n, const F& f) {
    for (int64_t i = 0; i < n; ++i) f(i);
  }
  template <typename T>
  T* alloc(int64_t n) {
    held.push_back(Tensor::empty(Dims{n}, CppToDType<T>::value, dev));
    return held.back().template data<T>();
  }
  template <typename T>
  void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb, T beta, T* c,
            int64_t ldc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == T(0) ? T(0) : beta * c[i * ldc + j];
      return;
    }
    cpu::gemm(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
  }
};

// ------------------------------------------------------------------ forward
template <typename T>
void forward(const RnnConfig& c, const Tensor& x, const Tensor& h0t, const Tensor& c0t, const std::vector<Tensor>& params, const Tensor& y,
             const Tensor& hnt, const Tensor& cnt, const Tensor& wst, uint64_t seed, uint64_t offset) {
  if (generic_requested()) {
    HostBackend bk{x.device(), {}};
    rnn_generic::forward<T>(bk, c, x, h0t, c0t, params, y, hnt, cnt, wst, seed, offset);
    return;
  }
  BlasSingleThread single;
  const RnnLayout lay = rnn_layout(c);
  const int64_t T_ = c.T, B = c.B, H = c.H, P = c.P, G = c.G(), GH = G * H, Hout = c.Hout(), D = c.D, S = T_ * B, Yw = D * Hout;
  const bool lstm = c.mode == kRnnLstm, gru = c.mode == kRnnGru;
  T* ws = wst.defined() ? wst.data<T>() : scratch<T>(0, lay.total);
  const int64_t nb = nblocks(H);
  const int64_t kt = c.keep ? 1 : 0;  // per-step state index: t (kept) or 0
  const T *wi = nullptr, *wh = nullptr;
  std::vector<T> bx(static_cast<size_t>(GH)), bhn(gru ? static_cast<size_t>(H) : 0), hst(static_cast<size_t>(B * Hout)),
      cst(lstm ? static_cast<size_t>(B * H) : 0), ghh(gru ? static_cast<size_t>(B * GH) : 0);
  const bool packed = use_packed<T>();
  std::vector<float>& whp = packed_scratch(0);
  std::vector<float>& wip = packed_scratch(2);
  if (c.varlen) std::fill_n(ws, lay.layers_start, T(0));  // rows past a length stay finite (the backward GEMMs read them)
  for (int64_t l = 0; l < c.L; ++l) {
    const int64_t In = c.layer_in(l);
    const T* X = l == 0 ? x.data<T>() : ws + lay.layer_base(l);
    const bool fold = packed && (In <= kRnnFoldMaxIn || B >= kRnnFoldMinBatch);
    T* Y = l == c.L - 1 ? y.data<T>() : ws + lay.layer_base(l + 1);
    if (c.varlen) std::fill_n(Y, S * Yw, T(0));
    for (int64_t d = 0; d < D; ++d) {
      const rnn_generic::Params<T> p = dir_params<T>(c, params, l, d);
      T* base = ws + lay.dir_base(l, d, D);
      T* gates = base + lay.gates;
      // Frozen weights (a session's) are permuted and packed once, kept with W_hh's storage.
      const size_t at = static_cast<size_t>((l * D + d) * c.per_dir());
      const Storage& sih = *params[at].storage();
      const Storage& shh = *params[at + 1].storage();
      const bool cache = sih.frozen() && shh.frozen();
      std::shared_ptr<const Prepared<T>> prep;
      std::string key;
      if (cache) {
        key = str_cat("rnn.fwd:", G, ":", H, ":", In, ":", Hout, ":", packed, ":", fold, ":", reinterpret_cast<uintptr_t>(&sih), ":",
                      params[at].offset(), ":", params[at + 1].offset());
        prep = std::static_pointer_cast<const Prepared<T>>(shh.find_derived(key));
      }
      if (prep) {
        wi = prep->wi.data();
        wh = prep->wh.data();
      } else {
        T* wim = scratch<T>(1, GH * In);
        T* whm = scratch<T>(2, GH * Hout);
        permute_rows(p.w_ih, wim, G, H, In);
        permute_rows(p.w_hh, whm, G, H, Hout);
        if (packed) rnn_pack_b(as_f(whm), Hout, true, Hout, GH, whp);
        if (fold) rnn_pack_b(as_f(wim), In, true, In, GH, wip);
        wi = wim, wh = whm;
        if (cache) {
          auto np = std::make_shared<Prepared<T>>();
          np->wi.assign(wi, wi + GH * In);
          np->wh.assign(wh, wh + GH * Hout);
          if (packed) np->whp = whp;
          if (fold) np->wip = wip;
          shh.put_derived(key, np);
          prep = np;
        }
      }
      const float* whpp = prep ? prep->whp.data() : whp.data();
      const float* wipp = prep ? prep->wip.data() : wip.data();
      for (int64_t q = 0; q < G; ++q)
        for (int64_t u = 0; u < H; ++u) {
          const int64_t r = q * H + u;
          T v = T(0);
          if (c.bias) v = p.b_ih[r] + (gru && q == 2 ? T(0) : p.b_hh[r]);
          bx[static_cast<size_t>(perm_row(q, u, G, H))] = v;
          if (gru && q == 2) bhn[static_cast<size_t>(u)] = c.bias ? p.b_hh[r] : T(0);
        }
      // input projection for every step (folded into the steps' products: see kRnnFoldMaxIn)
      if (!fold) {
        static_split(S, [&](int64_t s0, int64_t s1) {
          for (int64_t s = s0; s < s1; ++s) std::memcpy(gates + s * GH, bx.data(), sizeof(T) * GH);
        });
        pgemm<T>(false, true, S, GH, In, X, In, wi, In, T(1), gates, GH);
      }
      // initial state
      const int64_t sd = l * D + d;
      if (h0t.defined()) std::memcpy(hst.data(), h0t.data<T>() + sd * B * Hout, sizeof(T) * B * Hout);
      else std::fill(hst.begin(), hst.end(), T(0));
      if (lstm) {
        if (c0t.defined()) std::memcpy(cst.data(), c0t.data<T>() + sd * B * H, sizeof(T) * B * H);
        else std::fill(cst.begin(), cst.end(), T(0));
      }
      int64_t prev_bt = 0;
      for (int64_t s = 0; s < T_; ++s) {
        const int64_t t = d == 0 ? s : T_ - 1 - s;
        const int64_t bt = c.batch_sizes[static_cast<size_t>(t)];
        if (bt == 0) {
          prev_bt = 0;
          continue;
        }
        // The state this step starts from is in its hprev slot: written by the previous step's
        // threads (each its own units, no serial copy), except at the first step and, in the
        // reverse direction with lengths, for items whose sequence starts here (held state).
        auto hslot = [&](int64_t ss) {
          const int64_t tt = d == 0 ? ss : T_ - 1 - ss;
          return base + lay.hprev + (c.keep ? tt : (ss & 1)) * B * Hout;
        };
        T* hp = hslot(s);
        const int64_t have = s == 0 ? 0 : std::min(bt, prev_bt);
        if (have < bt) std::memcpy(hp + have * Hout, hst.data() + have * Hout, sizeof(T) * (bt - have) * Hout);
        prev_bt = bt;
        T* hnext = s + 1 < T_ ? hslot(s + 1) : nullptr;
        T* cp = lstm ? base + lay.cprev + kt * t * B * H : nullptr;
        T* cc = lstm ? base + lay.c + kt * t * B * H : nullptr;
        T* gt = gates + t * B * GH;
        T* yt = Y + t * B * Yw + d * Hout;
        T* rt = (lstm && P > 0) ? base + lay.r + kt * t * B * H : nullptr;
        T* hnt_ = gru ? base + lay.hn + kt * t * B * H : nullptr;
        // Rows [b0, b1) of unit blocks [j0, j1): the product for their gate columns, then their
        // gate nonlinearities and state update.
        auto product = [&](int64_t b0, int64_t b1, int64_t j0, int64_t j1) {
          const int64_t u0 = j0 * kRnnUnitBlock, u1 = std::min(H, j1 * kRnnUnitBlock);
          const int64_t col0 = u0 * G, ncol = (u1 - u0) * G;
          if (fold) {
            // gates = bias + x_t W_ih^T (+ h W_hh^T, except for GRU, whose h product stays apart)
            const RnnGemmTerm terms[2] = {{as_f(X + (t * B + b0) * In), In, In, wipp}, {as_f(hp + b0 * Hout), Hout, Hout, whpp}};
            rnn_gemm_sum_f32(b1 - b0, col0, col0 + ncol, terms, gru ? 1 : 2, as_f(bx.data()), as_f(gt + b0 * GH), GH, false);
            if (gru) rnn_gemm_sum_f32(b1 - b0, col0, col0 + ncol, terms + 1, 1, nullptr, as_f(ghh.data() + b0 * GH), GH, false);
          } else if (packed) {
            const RnnGemmTerm term = {as_f(hp + b0 * Hout), Hout, Hout, whpp};
            rnn_gemm_sum_f32(b1 - b0, col0, col0 + ncol, &term, 1, nullptr, as_f((gru ? ghh.data() : gt) + b0 * GH), GH, !gru);
          } else if (gru) gemm(false, true, bt, ncol, Hout, hp, Hout, wh + col0 * Hout, Hout, T(0), ghh.data() + col0, GH);
          else gemm(false, true, bt, ncol, Hout, hp, Hout, wh + col0 * Hout, Hout, T(1), gt + col0, GH);
        };
        auto update = [&](int64_t b0, int64_t b1, int64_t j0, int64_t j1) {
          T tmp[kRnnUnitBlock];
          for (int64_t j = j0; j < j1; ++j) {
            const int64_t ua = j * kRnnUnitBlock, ub = std::min(kRnnUnitBlock, H - ua);
            if (lstm && std::is_same<T, float>::value) {
              // all rows of the block in one call; the cell states before and after the step
              // only when the backward pass will read them
              vec::LstmRows a;
              a.g = as_f(gt + b0 * GH + ua * G), a.ldg = GH;
              a.c = as_f(cst.data() + b0 * H + ua), a.ldc = H;
              a.c_prev = c.keep ? as_f(cp + b0 * H + ua) : nullptr;
              a.c_save = c.keep ? as_f(cc + b0 * H + ua) : nullptr;
              if (P > 0) a.h = as_f(rt + b0 * H + ua), a.ldh = H, a.y = nullptr, a.ldy = 0, a.h2 = nullptr, a.ldh2 = 0;
              else {
                a.h = as_f(hst.data() + b0 * Hout + ua), a.ldh = Hout;
                a.y = as_f(yt + b0 * Yw + ua), a.ldy = Yw;
                a.h2 = hnext ? as_f(hnext + b0 * Hout + ua) : nullptr, a.ldh2 = Hout;
              }
              vec::lstm_rows_f32(a, b1 - b0, ub);
              continue;
            }
            for (int64_t b = b0; b < b1; ++b) {
              T* g = gt + b * GH + ua * G;
              if (lstm) std::memcpy(cp + b * H + ua, cst.data() + b * H + ua, sizeof(T) * ub);
              if (lstm) {
                sigmoid_v(g, 2 * ub);
                tanh_v(g + 2 * ub, ub);
                sigmoid_v(g + 3 * ub, ub);
                T* cs = cst.data() + b * H + ua;
                for (int64_t u = 0; u < ub; ++u) {
                  const T cn = g[ub + u] * cs[u] + g[u] * g[2 * ub + u];
                  cs[u] = cn;
                  cc[b * H + ua + u] = cn;
                  tmp[u] = cn;
                }
                tanh_v(tmp, ub);
                if (P > 0) {
                  for (int64_t u = 0; u < ub; ++u) rt[b * H + ua + u] = g[3 * ub + u] * tmp[u];
                } else {
                  T* hs = hst.data() + b * Hout + ua;
                  T* yo = yt + b * Yw + ua;
                  for (int64_t u = 0; u < ub; ++u) hs[u] = yo[u] = g[3 * ub + u] * tmp[u];
                }
              } else if (gru) {
                const T* gh = ghh.data() + b * GH + ua * G;
                for (int64_t u = 0; u < 2 * ub; ++u) g[u] += gh[u];
                sigmoid_v(g, 2 * ub);
                T* hn = hnt_ + b * H + ua;
                for (int64_t u = 0; u < ub; ++u) {
                  hn[u] = gh[2 * ub + u] + bhn[static_cast<size_t>(ua + u)];
                  g[2 * ub + u] += g[u] * hn[u];
                }
                tanh_v(g + 2 * ub, ub);
                T* hs = hst.data() + b * Hout + ua;
                T* yo = yt + b * Yw + ua;
                for (int64_t u = 0; u < ub; ++u) {
                  const T z = g[ub + u], n = g[2 * ub + u];
                  hs[u] = yo[u] = (T(1) - z) * n + z * hs[u];
                }
              } else {
                if (c.mode == kRnnTanh) tanh_v(g, ub);
                else
                  for (int64_t u = 0; u < ub; ++u) g[u] = g[u] > T(0) ? g[u] : T(0);
                T* hs = hst.data() + b * Hout + ua;
                T* yo = yt + b * Yw + ua;
                for (int64_t u = 0; u < ub; ++u) hs[u] = yo[u] = g[u];
              }
              if (hnext && P == 0) std::memcpy(hnext + b * Hout + ua, hst.data() + b * Hout + ua, sizeof(T) * ub);
            }
          }
        };
        // The packed products read A in place, so a thread can run them on a few rows at a time
        // and update those rows while their gates are still in L1.
        const int64_t rc = packed ? kRnnRowChunk : bt;
        static_split(nb, [&](int64_t j0, int64_t j1) {
          if (rc >= bt) {
            product(0, bt, j0, j1);
            update(0, bt, j0, j1);
            return;
          }
          for (int64_t j = j0; j < j1; ++j)
            for (int64_t b0 = 0; b0 < bt; b0 += rc) {
              const int64_t b1 = std::min(bt, b0 + rc);
              product(b0, b1, j, j + 1);
              update(b0, b1, j, j + 1);
            }
        });
        if (P > 0) {
          pgemm<T>(false, true, bt, P, H, rt, H, p.w_hr, H, T(0), hst.data(), P);
          for (int64_t b = 0; b < bt; ++b) std::memcpy(yt + b * Yw, hst.data() + b * P, sizeof(T) * P);
          if (hnext) std::memcpy(hnext, hst.data(), sizeof(T) * bt * P);
        }
      }
      std::memcpy(hnt.data<T>() + sd * B * Hout, hst.data(), sizeof(T) * B * Hout);
      if (lstm) std::memcpy(cnt.data<T>() + sd * B * H, cst.data(), sizeof(T) * B * H);
    }
    if (l < c.L - 1 && c.dropout_on) {
      // x_{l+1} = y_l * mask, mask = keep / (1 - p); Philox words as dropout draws them.
      T* xn = Y;
      T* mk = xn + lay.mask;
      const int64_t n = lay.mask, first = l * lay.mask;
      const double thr_d = std::ceil(c.p * 4294967296.0);
      const bool drop_all = thr_d >= 4294967296.0;
      const uint32_t thr = drop_all ? 0u : static_cast<uint32_t>(thr_d);
      const T scale = drop_all ? T(0) : static_cast<T>(1.0 / (1.0 - c.p));
      for (int64_t i = 0; i < n; ++i) {
        const int64_t gi = first + i;
        const auto w = philox_block(seed, offset + static_cast<uint64_t>(gi / 4));
        const bool keep = !drop_all && w[static_cast<size_t>(gi % 4)] >= thr;
        mk[i] = keep ? scale : T(0);
        xn[i] *= mk[i];
      }
    }
  }
}

// ------------------------------------------------------------------ backward
template <typename T>
void colsum(const T* g, int64_t rows, int64_t cols, T* out) {
  static_split((cols + 15) / 16, [&](int64_t c0, int64_t c1) {
    const int64_t j0 = c0 * 16, j1 = std::min(cols, c1 * 16);
    for (int64_t j = j0; j < j1; ++j) out[j] = T(0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = j0; j < j1; ++j) out[j] += g[r * cols + j];
  });
}

template <typename T>
void backward(const RnnConfig& c, const Tensor& x, const std::vector<Tensor>& params, const Tensor& wst, const Tensor& gyt, const Tensor& ghnt,
              const Tensor& gcnt, const Tensor& gxt, const Tensor& gh0t, const Tensor& gc0t, const std::vector<Tensor>& gparams) {
  if (generic_requested()) {
    HostBackend bk{x.device(), {}};
    rnn_generic::backward<T>(bk, c, x, params, wst, gyt, ghnt, gcnt, gxt, gh0t, gc0t, gparams);
    return;
  }
  BlasSingleThread single;
  const RnnLayout lay = rnn_layout(c);
  const int64_t T_ = c.T, B = c.B, H = c.H, P = c.P, G = c.G(), GH = G * H, Hout = c.Hout(), D = c.D, S = T_ * B, Yw = D * Hout;
  const bool lstm = c.mode == kRnnLstm, gru = c.mode == kRnnGru;
  const T* ws = wst.data<T>();
  const int64_t nb = nblocks(H);
  T* dgx = scratch<T>(0, S * GH);
  T* dgh = gru ? scratch<T>(1, S * GH) : nullptr;
  T* dht = P > 0 ? scratch<T>(2, S * P) : nullptr;
  T *wi = nullptr, *wh = nullptr;
  std::vector<T> gb(static_cast<size_t>(GH)), dh(static_cast<size_t>(B * Hout)), dc(lstm ? static_cast<size_t>(B * H) : 0),
      dr(static_cast<size_t>(B * H)), dhd(gru ? static_cast<size_t>(B * H) : 0);
  const bool packed = use_packed<T>();
  std::vector<float>& whp = packed_scratch(1);
  // gradients of the layers' outputs (between layers)
  T* dyA = c.L > 1 ? scratch<T>(6, S * Yw) : nullptr;
  T* dyB = c.L > 1 ? scratch<T>(7, S * Yw) : nullptr;
  for (int64_t l = c.L - 1; l >= 0; --l) {
    const int64_t In = c.layer_in(l);
    const T* X = l == 0 ? x.data<T>() : ws + lay.layer_base(l);
    // dY: gradient of this layer's output (S, Yw); zeros when none
    const T* dY = nullptr;
    if (l == c.L - 1) {
      if (gyt.defined()) dY = gyt.data<T>();
    } else {
      dY = dyA;
    }
    T* dX;
    if (l == 0) dX = gxt.data<T>();
    else {
      std::fill_n(dyB, S * Yw, T(0));
      dX = dyB;
    }
    if (l == 0) std::fill_n(dX, S * In, T(0));
    for (int64_t d = 0; d < D; ++d) {
      const rnn_generic::Params<T> p = dir_params<T>(c, params, l, d);
      const T* base = ws + lay.dir_base(l, d, D);
      const T* gates = base + lay.gates;
      wi = scratch<T>(3, GH * In);
      wh = scratch<T>(4, GH * Hout);
      permute_rows(p.w_ih, wi, G, H, In);
      permute_rows(p.w_hh, wh, G, H, Hout);
      if (packed) rnn_pack_b(as_f(wh), Hout, false, GH, Hout, whp);
      T* dGx = dgx;
      T* dGh = gru ? dgh : dGx;
      if (c.varlen) {  // rows past a length stay zero (the weight GEMMs read them)
        std::fill_n(dgx, S * GH, T(0));
        if (gru) std::fill_n(dgh, S * GH, T(0));
        if (P > 0) std::fill_n(dht, S * P, T(0));
      }
      const int64_t sd = l * D + d;
      if (ghnt.defined()) std::memcpy(dh.data(), ghnt.data<T>() + sd * B * Hout, sizeof(T) * B * Hout);
      else std::fill(dh.begin(), dh.end(), T(0));
      if (lstm) {
        if (gcnt.defined()) std::memcpy(dc.data(), gcnt.data<T>() + sd * B * H, sizeof(T) * B * H);
        else std::fill(dc.begin(), dc.end(), T(0));
      }
      for (int64_t s = T_ - 1; s >= 0; --s) {
        const int64_t t = d == 0 ? s : T_ - 1 - s;
        const int64_t bt = c.batch_sizes[static_cast<size_t>(t)];
        if (bt == 0) continue;
        if (dY) {
          const T* dy = dY + t * B * Yw + d * Hout;
          for (int64_t b = 0; b < bt; ++b)
            for (int64_t u = 0; u < Hout; ++u) dh[static_cast<size_t>(b * Hout + u)] += dy[b * Yw + u];
        }
        const T* drp = dh.data();  // gradient of o*tanh(c) (lstm) / of h
        if (P > 0) {
          std::memcpy(dht + t * B * P, dh.data(), sizeof(T) * bt * P);
          pgemm<T>(false, false, bt, H, P, dh.data(), P, p.w_hr, H, T(0), dr.data(), H);
          drp = dr.data();
        }
        const T* gt = gates + t * B * GH;
        T* dgt = dGx + t * B * GH;
        T* dght = dGh + t * B * GH;
        const T* cc = lstm ? base + lay.c + t * B * H : nullptr;
        const T* cp = lstm ? base + lay.cprev + t * B * H : nullptr;
        const T* hp = base + lay.hprev + t * B * Hout;
        const T* hn = gru ? base + lay.hn + t * B * H : nullptr;
        static_split(nb, [&](int64_t j0, int64_t j1) {
          T th[kRnnUnitBlock];
          for (int64_t j = j0; j < j1; ++j) {
            const int64_t ua = j * kRnnUnitBlock, ub = std::min(kRnnUnitBlock, H - ua);
            for (int64_t b = 0; b < bt; ++b) {
              const T* g = gt + b * GH + ua * G;
              T* dg = dgt + b * GH + ua * G;
              const T* dhv = drp + b * H + ua;
              if (lstm) {
                for (int64_t u = 0; u < ub; ++u) th[u] = cc[b * H + ua + u];
                tanh_v(th, ub);
                T* dcs = dc.data() + b * H + ua;
                for (int64_t u = 0; u < ub; ++u) {
                  const T i = g[u], f = g[ub + u], gg = g[2 * ub + u], o = g[3 * ub + u];
                  const T dct = dcs[u] + dhv[u] * o * (T(1) - th[u] * th[u]);
                  const T dO = dhv[u] * th[u];
                  dg[u] = dct * gg * i * (T(1) - i);
                  dg[ub + u] = dct * cp[b * H + ua + u] * f * (T(1) - f);
                  dg[2 * ub + u] = dct * i * (T(1) - gg * gg);
                  dg[3 * ub + u] = dO * o * (T(1) - o);
                  dcs[u] = dct * f;
                }
              } else if (gru) {
                T* dgh_ = dght + b * GH + ua * G;
                const T* hpv = hp + b * Hout + ua;
                const T* hnv = hn + b * H + ua;
                T* dd = dhd.data() + b * H + ua;
                for (int64_t u = 0; u < ub; ++u) {
                  const T r = g[u], z = g[ub + u], n = g[2 * ub + u];
                  const T dn = dhv[u] * (T(1) - z), dz = dhv[u] * (hpv[u] - n);
                  const T dnp = dn * (T(1) - n * n);
                  const T drp_ = dnp * hnv[u] * r * (T(1) - r);
                  const T dzp = dz * z * (T(1) - z);
                  dg[u] = dgh_[u] = drp_;
                  dg[ub + u] = dgh_[ub + u] = dzp;
                  dg[2 * ub + u] = dnp;
                  dgh_[2 * ub + u] = dnp * r;
                  dd[u] = dhv[u] * z;
                }
              } else {
                for (int64_t u = 0; u < ub; ++u) {
                  const T a = g[u];
                  dg[u] = c.mode == kRnnTanh ? dhv[u] * (T(1) - a * a) : (a > T(0) ? dhv[u] : T(0));
                }
              }
            }
          }
        });
        // gradient of the state the step started from
        if (gru)
          for (int64_t b = 0; b < bt; ++b) std::memcpy(dh.data() + b * Hout, dhd.data() + b * H, sizeof(T) * H);
        if (packed) {
          static_split((Hout + kRnnPanel - 1) / kRnnPanel, [&](int64_t p0, int64_t p1) {
            rnn_gemm_f32(bt, p0 * kRnnPanel, std::min(Hout, p1 * kRnnPanel), GH, as_f(dght), GH, whp.data(), as_f(dh.data()), Hout, gru);
          });
        } else if (gru) {
          pgemm<T>(false, false, bt, Hout, GH, dght, GH, wh, Hout, T(1), dh.data(), Hout);
        } else {
          pgemm<T>(false, false, bt, Hout, GH, dght, GH, wh, Hout, T(0), dh.data(), Hout);
        }
      }
      std::memcpy(gh0t.data<T>() + sd * B * Hout, dh.data(), sizeof(T) * B * Hout);
      if (lstm) std::memcpy(gc0t.data<T>() + sd * B * H, dc.data(), sizeof(T) * B * H);
      // weights, biases and the input's gradient: one GEMM each over all steps
      const size_t at = static_cast<size_t>(sd * c.per_dir());
      T* tmpw = scratch<T>(5, GH * std::max(In, Hout));
      pgemm<T>(true, false, GH, In, S, dGx, GH, X, In, T(0), tmpw, In);
      unpermute_rows(tmpw, gparams[at].data<T>(), G, H, In);
      pgemm<T>(true, false, GH, Hout, S, dGh, GH, base + lay.hprev, Hout, T(0), tmpw, Hout);
      unpermute_rows(tmpw, gparams[at + 1].data<T>(), G, H, Hout);
      size_t k = at + 2;
      if (c.bias) {
        colsum(dGx, S, GH, gb.data());
        unpermute_rows(gb.data(), gparams[k].data<T>(), G, H, 1);
        if (gru) colsum(dGh, S, GH, gb.data());  // else the same gate gradients: the same sums
        unpermute_rows(gb.data(), gparams[k + 1].data<T>(), G, H, 1);
        k += 2;
      }
      if (P > 0) pgemm<T>(true, false, P, H, S, dht, P, base + lay.r, H, T(0), gparams[k].data<T>(), H);
      pgemm<T>(false, false, S, In, GH, dGx, GH, wi, In, T(1), dX, In);
    }
    if (l > 0) {
      // the previous layer's output gradient: through the dropout mask
      if (c.dropout_on) {
        const T* mk = ws + lay.layer_base(l) + lay.mask;
        for (int64_t i = 0; i < S * Yw; ++i) dyB[i] *= mk[i];
      }
      std::swap(dyA, dyB);
    }
  }
}

template <typename T>
RnnKernels g_rnn_kernels = {&forward<T>, &backward<T>};

#define HERON_RNN_REGISTER(OP)                                                      \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::Float32, &g_rnn_kernels<float>); \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::Float64, &g_rnn_kernels<double>)
HERON_RNN_REGISTER(rnn);
HERON_RNN_REGISTER(lstm);
HERON_RNN_REGISTER(gru);
HERON_RNN_REGISTER(rnn_cell);
HERON_RNN_REGISTER(lstm_cell);
HERON_RNN_REGISTER(gru_cell);
HERON_RNN_REGISTER(rnn_backward);

}  // namespace
}  // namespace cpu
}  // namespace heron
