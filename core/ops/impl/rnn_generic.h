// The device-generic algorithm of the recurrent layers (impl/rnn.h), written once over a small
// backend so that every device without a hand-tuned CPU path shares it. The cuda kernels
// (kernels/cuda/rnn_kernels.cu) run it with cuBLAS products and fused element kernels; the CPU
// runs it with OpenBLAS and plain loops when HERON_RNN_GENERIC=1, which is how the algorithm is
// tested on machines without a GPU (docs/design/rnn.md).
//
// A backend BK provides:
//   template <typename F> void launch(int64_t n, const F& f);   // f(i) for i in [0, n), any order
//   template <typename T> T* alloc(int64_t n);                 // scratch living as long as BK
//   template <typename T> void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a,
//                                   int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc);
//     // row-major C (m x n) = op(A) op(B) + beta C, with m, n, k >= 1
// Element functors are HERON_HD structs holding plain pointers, so one definition serves a cuda
// kernel and a host loop. Work in one launch never reads what another element of it writes.
//
// Per layer and direction: the input projection of all steps is one product (bias pre-filled);
// per step one product with W_hh and one fused element kernel for the gate nonlinearities and the
// state update (plus one product for LSTM's projection); backward per step one fused element
// kernel and one product, then the weight, bias and input gradients of all steps at once.
// Gate columns are in the natural order (gate-major, as the weights), unlike the CPU kernels'
// blocked order: the reserve's layout belongs to the device that wrote it.
#pragma once
#include <math.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "core/ops/impl/rnn.h"
#include "core/util/hd.h"
#include "core/util/philox.h"

namespace heron {
namespace rnn_generic {

HERON_HD inline float r_exp(float x) { return expf(x); }
HERON_HD inline double r_exp(double x) { return exp(x); }
HERON_HD inline float r_tanh(float x) { return tanhf(x); }
HERON_HD inline double r_tanh(double x) { return tanh(x); }
template <typename T>
HERON_HD inline T r_sigmoid(T x) {
  return T(1) / (T(1) + r_exp(-x));
}

template <typename T>
struct Fill {
  T* p;
  T v;
  HERON_HD void operator()(int64_t i) const { p[i] = v; }
};

// dst[r * dld + j] = src[r * sld + j] for j < cols (i = r * cols + j).
template <typename T>
struct Copy2D {
  T* dst;
  int64_t dld;
  const T* src;
  int64_t sld, cols;
  HERON_HD void operator()(int64_t i) const {
    const int64_t r = i / cols, j = i % cols;
    dst[r * dld + j] = src[r * sld + j];
  }
};

// dst[r * dld + j] += src[r * sld + j].
template <typename T>
struct AddRows {
  T* dst;
  int64_t dld;
  const T* src;
  int64_t sld, cols;
  HERON_HD void operator()(int64_t i) const {
    const int64_t r = i / cols, j = i % cols;
    dst[r * dld + j] += src[r * sld + j];
  }
};

template <typename T>
struct MulBy {
  T* p;
  const T* m;
  HERON_HD void operator()(int64_t i) const { p[i] *= m[i]; }
};

// out[j] = sum over rows of g[r * cols + j] (rows summed in order).
template <typename T>
struct ColSum {
  const T* g;
  int64_t rows, cols;
  T* out;
  HERON_HD void operator()(int64_t j) const {
    T s = T(0);
    for (int64_t r = 0; r < rows; ++r) s += g[r * cols + j];
    out[j] = s;
  }
};

// Every row of the gate matrix starts as the bias: b_ih + b_hh (GRU's n gate: b_ih only, its b_hh
// goes inside r * (.)), or zero without biases.
template <typename T>
struct FillBias {
  T* gates;
  const T *b_ih, *b_hh;
  int64_t GH, H;
  bool gru;
  HERON_HD void operator()(int64_t i) const {
    const int64_t j = i % GH;
    T v = T(0);
    if (b_ih) v = b_ih[j] + ((gru && j >= 2 * H) ? T(0) : b_hh[j]);
    gates[i] = v;
  }
};

// Dropout between layers: Philox words exactly as the CPU kernels and the dropout op draw them.
template <typename T>
struct DropoutMask {
  T *x, *mask;
  uint64_t seed, offset;
  int64_t first;
  uint32_t thr;
  bool drop_all;
  T scale;
  HERON_HD void operator()(int64_t i) const {
    const int64_t gi = first + i;
    const auto w = philox_block(seed, offset + static_cast<uint64_t>(gi / 4));
    const bool keep = !drop_all && w[static_cast<size_t>(gi % 4)] >= thr;
    mask[i] = keep ? scale : T(0);
    x[i] *= mask[i];
  }
};

// One step, element (b, u): gate nonlinearities and state update. `g` holds the step's gate
// pre-activations (input projection + bias + h W_hh^T, GRU without the recurrent part) and gets
// the activated gates.
template <typename T>
struct StepForward {
  int mode;
  int64_t H, Hout, GH, Yw;
  bool proj;
  T* g;
  const T* gh;   // gru: h W_hh^T of the step (rows of GH)
  const T* bhn;  // gru: the n gate's b_hh, or null
  T *hst, *cst;  // running states (B, Hout) / (B, H)
  T *cprev, *cc, *r, *hn;
  T* y;  // the step's output rows (stride Yw), this direction's columns
  HERON_HD void operator()(int64_t i) const {
    const int64_t b = i / H, u = i % H;
    T* gr = g + b * GH;
    const int64_t e = b * H + u;
    if (mode == kRnnLstm) {
      const T ig = r_sigmoid(gr[u]), fg = r_sigmoid(gr[H + u]), gg = r_tanh(gr[2 * H + u]), og = r_sigmoid(gr[3 * H + u]);
      gr[u] = ig, gr[H + u] = fg, gr[2 * H + u] = gg, gr[3 * H + u] = og;
      const T cp = cst[e];
      cprev[e] = cp;
      const T cn = fg * cp + ig * gg;
      cst[e] = cn;
      cc[e] = cn;
      const T h = og * r_tanh(cn);
      if (proj) {
        r[e] = h;
      } else {
        hst[b * Hout + u] = h;
        y[b * Yw + u] = h;
      }
    } else if (mode == kRnnGru) {
      const T* ghr = gh + b * GH;
      const T rg = r_sigmoid(gr[u] + ghr[u]), z = r_sigmoid(gr[H + u] + ghr[H + u]);
      const T hv = ghr[2 * H + u] + (bhn ? bhn[u] : T(0));
      const T n = r_tanh(gr[2 * H + u] + rg * hv);
      gr[u] = rg, gr[H + u] = z, gr[2 * H + u] = n;
      hn[e] = hv;
      const T h = (T(1) - z) * n + z * hst[b * Hout + u];
      hst[b * Hout + u] = h;
      y[b * Yw + u] = h;
    } else {
      const T a = mode == kRnnTanh ? r_tanh(gr[u]) : (gr[u] > T(0) ? gr[u] : T(0));
      gr[u] = a;
      hst[b * Hout + u] = a;
      y[b * Yw + u] = a;
    }
  }
};

// One step backward, element (b, u): the gate gradients from dh (the gradient of o*tanh(c) when
// projecting, of h otherwise; rows of H) and, for LSTM, the running cell gradient.
template <typename T>
struct StepBackward {
  int mode;
  int64_t H, Hout, GH;
  const T* g;
  const T* dh;
  T *dg, *dgh;  // gate gradients of the step (gru: the recurrent part separately)
  T* dc;
  const T *cc, *cp, *hp, *hn;
  T* dhd;  // gru: the direct part of the previous state's gradient (rows of H)
  HERON_HD void operator()(int64_t i) const {
    const int64_t b = i / H, u = i % H;
    const T* gr = g + b * GH;
    T* d = dg + b * GH;
    const T dhv = dh[b * H + u];
    const int64_t e = b * H + u;
    if (mode == kRnnLstm) {
      const T th = r_tanh(cc[e]);
      const T ig = gr[u], fg = gr[H + u], gg = gr[2 * H + u], og = gr[3 * H + u];
      const T dct = dc[e] + dhv * og * (T(1) - th * th);
      const T dO = dhv * th;
      d[u] = dct * gg * ig * (T(1) - ig);
      d[H + u] = dct * cp[e] * fg * (T(1) - fg);
      d[2 * H + u] = dct * ig * (T(1) - gg * gg);
      d[3 * H + u] = dO * og * (T(1) - og);
      dc[e] = dct * fg;
    } else if (mode == kRnnGru) {
      T* dr = dgh + b * GH;
      const T rg = gr[u], z = gr[H + u], n = gr[2 * H + u];
      const T dn = dhv * (T(1) - z), dz = dhv * (hp[b * Hout + u] - n);
      const T dnp = dn * (T(1) - n * n);
      const T drp = dnp * hn[e] * rg * (T(1) - rg);
      const T dzp = dz * z * (T(1) - z);
      d[u] = dr[u] = drp;
      d[H + u] = dr[H + u] = dzp;
      d[2 * H + u] = dnp;
      dr[2 * H + u] = dnp * rg;
      dhd[e] = dhv * z;
    } else {
      const T a = gr[u];
      d[u] = mode == kRnnTanh ? dhv * (T(1) - a * a) : (a > T(0) ? dhv : T(0));
    }
  }
};

template <typename T>
struct Params {
  const T *w_ih, *w_hh, *b_ih, *b_hh, *w_hr;
};
template <typename T>
Params<T> dir_params(const RnnConfig& c, const std::vector<Tensor>& params, int64_t l, int64_t d) {
  const size_t at = static_cast<size_t>((l * c.D + d) * c.per_dir());
  Params<T> p{params[at].data<T>(), params[at + 1].data<T>(), nullptr, nullptr, nullptr};
  size_t k = at + 2;
  if (c.bias) p.b_ih = params[k].data<T>(), p.b_hh = params[k + 1].data<T>(), k += 2;
  if (c.P > 0) p.w_hr = params[k].data<T>();
  return p;
}

template <typename T, typename BK>
void fill(BK& bk, T* p, int64_t n, T v) {
  if (n > 0) bk.launch(n, Fill<T>{p, v});
}
template <typename T, typename BK>
void copy(BK& bk, T* dst, const T* src, int64_t n) {
  if (n > 0) bk.launch(n, Copy2D<T>{dst, n, src, n, n});
}

// The signature of RnnKernels::forward.
template <typename T, typename BK>
void forward(BK& bk, const RnnConfig& c, const Tensor& x, const Tensor& h0t, const Tensor& c0t, const std::vector<Tensor>& params,
             const Tensor& y, const Tensor& hnt, const Tensor& cnt, const Tensor& wst, uint64_t seed, uint64_t offset) {
  const RnnLayout lay = rnn_layout(c);
  const int64_t T_ = c.T, B = c.B, H = c.H, P = c.P, G = c.G(), GH = G * H, Hout = c.Hout(), D = c.D, S = T_ * B, Yw = D * Hout;
  const bool lstm = c.mode == kRnnLstm, gru = c.mode == kRnnGru;
  const int64_t kt = c.keep ? 1 : 0;
  T* ws = wst.defined() ? wst.data<T>() : bk.template alloc<T>(lay.total);
  T* hst = bk.template alloc<T>(B * Hout);
  T* cst = lstm ? bk.template alloc<T>(B * H) : nullptr;
  T* ghh = gru ? bk.template alloc<T>(B * GH) : nullptr;
  if (c.varlen) fill(bk, ws, lay.layers_start, T(0));  // rows past a length stay finite (backward products read them)
  for (int64_t l = 0; l < c.L; ++l) {
    const int64_t In = c.layer_in(l);
    const T* X = l == 0 ? x.data<T>() : ws + lay.layer_base(l);
    T* Y = l == c.L - 1 ? y.data<T>() : ws + lay.layer_base(l + 1);
    if (c.varlen) fill(bk, Y, S * Yw, T(0));
    for (int64_t d = 0; d < D; ++d) {
      const Params<T> p = dir_params<T>(c, params, l, d);
      T* base = ws + lay.dir_base(l, d, D);
      T* gates = base + lay.gates;
      bk.launch(S * GH, FillBias<T>{gates, p.b_ih, p.b_hh, GH, H, gru});
      bk.gemm(false, true, S, GH, In, X, In, p.w_ih, In, T(1), gates, GH);
      const int64_t sd = l * D + d;
      if (h0t.defined()) copy(bk, hst, h0t.data<T>() + sd * B * Hout, B * Hout);
      else fill(bk, hst, B * Hout, T(0));
      if (lstm) {
        if (c0t.defined()) copy(bk, cst, c0t.data<T>() + sd * B * H, B * H);
        else fill(bk, cst, B * H, T(0));
      }
      for (int64_t s = 0; s < T_; ++s) {
        const int64_t t = d == 0 ? s : T_ - 1 - s;
        const int64_t bt = c.batch_sizes[static_cast<size_t>(t)];
        if (bt == 0) continue;
        // the state the step starts from (kept for backward; inference keeps the current one only)
        T* hp = base + lay.hprev + kt * t * B * Hout;
        copy(bk, hp, hst, bt * Hout);
        T* gt = gates + t * B * GH;
        if (gru) bk.gemm(false, true, bt, GH, Hout, hp, Hout, p.w_hh, Hout, T(0), ghh, GH);
        else bk.gemm(false, true, bt, GH, Hout, hp, Hout, p.w_hh, Hout, T(1), gt, GH);
        T* rt = (lstm && P > 0) ? base + lay.r + kt * t * B * H : nullptr;
        T* yt = Y + t * B * Yw + d * Hout;
        StepForward<T> f{c.mode,
                         H,
                         Hout,
                         GH,
                         Yw,
                         P > 0,
                         gt,
                         ghh,
                         (gru && c.bias) ? p.b_hh + 2 * H : nullptr,
                         hst,
                         cst,
                         lstm ? base + lay.cprev + kt * t * B * H : nullptr,
                         lstm ? base + lay.c + kt * t * B * H : nullptr,
                         rt,
                         gru ? base + lay.hn + kt * t * B * H : nullptr,
                         yt};
        bk.launch(bt * H, f);
        if (P > 0) {
          bk.gemm(false, true, bt, P, H, rt, H, p.w_hr, H, T(0), hst, P);
          bk.launch(bt * P, Copy2D<T>{yt, Yw, hst, P, P});
        }
      }
      copy(bk, hnt.data<T>() + sd * B * Hout, hst, B * Hout);
      if (lstm) copy(bk, cnt.data<T>() + sd * B * H, cst, B * H);
    }
    if (l < c.L - 1 && c.dropout_on) {
      const double thr_d = ceil(c.p * 4294967296.0);
      const bool drop_all = thr_d >= 4294967296.0;
      const uint32_t thr = drop_all ? 0u : static_cast<uint32_t>(thr_d);
      const T scale = drop_all ? T(0) : static_cast<T>(1.0 / (1.0 - c.p));
      bk.launch(lay.mask, DropoutMask<T>{Y, Y + lay.mask, seed, offset, l * lay.mask, thr, drop_all, scale});
    }
  }
}

// The signature of RnnKernels::backward.
template <typename T, typename BK>
void backward(BK& bk, const RnnConfig& c, const Tensor& x, const std::vector<Tensor>& params, const Tensor& wst, const Tensor& gyt,
              const Tensor& ghnt, const Tensor& gcnt, const Tensor& gxt, const Tensor& gh0t, const Tensor& gc0t,
              const std::vector<Tensor>& gparams) {
  const RnnLayout lay = rnn_layout(c);
  const int64_t T_ = c.T, B = c.B, H = c.H, P = c.P, G = c.G(), GH = G * H, Hout = c.Hout(), D = c.D, S = T_ * B, Yw = D * Hout;
  const bool lstm = c.mode == kRnnLstm, gru = c.mode == kRnnGru;
  const T* ws = wst.data<T>();
  T* dgx = bk.template alloc<T>(S * GH);
  T* dgh = gru ? bk.template alloc<T>(S * GH) : dgx;
  T* dht = P > 0 ? bk.template alloc<T>(S * P) : nullptr;
  T* dh = bk.template alloc<T>(B * Hout);
  T* dc = lstm ? bk.template alloc<T>(B * H) : nullptr;
  T* dr = P > 0 ? bk.template alloc<T>(B * H) : nullptr;
  T* dhd = gru ? bk.template alloc<T>(B * H) : nullptr;
  T* dyA = c.L > 1 ? bk.template alloc<T>(S * Yw) : nullptr;  // gradients of the layers' outputs
  T* dyB = c.L > 1 ? bk.template alloc<T>(S * Yw) : nullptr;
  for (int64_t l = c.L - 1; l >= 0; --l) {
    const int64_t In = c.layer_in(l);
    const T* X = l == 0 ? x.data<T>() : ws + lay.layer_base(l);
    const T* dY = l == c.L - 1 ? (gyt.defined() ? gyt.data<T>() : nullptr) : dyA;
    T* dX = l == 0 ? gxt.data<T>() : dyB;
    fill(bk, dX, S * In, T(0));
    for (int64_t d = 0; d < D; ++d) {
      const Params<T> p = dir_params<T>(c, params, l, d);
      const T* base = ws + lay.dir_base(l, d, D);
      const T* gates = base + lay.gates;
      if (c.varlen) {  // rows past a length stay zero (the weight products read them)
        fill(bk, dgx, S * GH, T(0));
        if (gru) fill(bk, dgh, S * GH, T(0));
        if (P > 0) fill(bk, dht, S * P, T(0));
      }
      const int64_t sd = l * D + d;
      if (ghnt.defined()) copy(bk, dh, ghnt.data<T>() + sd * B * Hout, B * Hout);
      else fill(bk, dh, B * Hout, T(0));
      if (lstm) {
        if (gcnt.defined()) copy(bk, dc, gcnt.data<T>() + sd * B * H, B * H);
        else fill(bk, dc, B * H, T(0));
      }
      for (int64_t s = T_ - 1; s >= 0; --s) {
        const int64_t t = d == 0 ? s : T_ - 1 - s;
        const int64_t bt = c.batch_sizes[static_cast<size_t>(t)];
        if (bt == 0) continue;
        if (dY) bk.launch(bt * Hout, AddRows<T>{dh, Hout, dY + t * B * Yw + d * Hout, Yw, Hout});
        const T* drp = dh;
        if (P > 0) {
          copy(bk, dht + t * B * P, dh, bt * P);
          bk.gemm(false, false, bt, H, P, dh, P, p.w_hr, H, T(0), dr, H);
          drp = dr;
        }
        T* dgt = dgx + t * B * GH;
        T* dght = dgh + t * B * GH;
        StepBackward<T> f{c.mode,
                          H,
                          Hout,
                          GH,
                          gates + t * B * GH,
                          drp,
                          dgt,
                          gru ? dght : nullptr,
                          dc,
                          lstm ? base + lay.c + t * B * H : nullptr,
                          lstm ? base + lay.cprev + t * B * H : nullptr,
                          base + lay.hprev + t * B * Hout,
                          gru ? base + lay.hn + t * B * H : nullptr,
                          dhd};
        bk.launch(bt * H, f);
        // the gradient of the state the step started from
        if (gru) {
          bk.launch(bt * H, Copy2D<T>{dh, Hout, dhd, H, H});
          bk.gemm(false, false, bt, Hout, GH, dght, GH, p.w_hh, Hout, T(1), dh, Hout);
        } else {
          bk.gemm(false, false, bt, Hout, GH, dgt, GH, p.w_hh, Hout, T(0), dh, Hout);
        }
      }
      copy(bk, gh0t.data<T>() + sd * B * Hout, dh, B * Hout);
      if (lstm) copy(bk, gc0t.data<T>() + sd * B * H, dc, B * H);
      // weights, biases and the input's gradient: one product each over all steps
      const size_t at = static_cast<size_t>(sd * c.per_dir());
      bk.gemm(true, false, GH, In, S, dgx, GH, X, In, T(0), gparams[at].data<T>(), In);
      bk.gemm(true, false, GH, Hout, S, dgh, GH, base + lay.hprev, Hout, T(0), gparams[at + 1].data<T>(), Hout);
      size_t k = at + 2;
      if (c.bias) {
        bk.launch(GH, ColSum<T>{dgx, S, GH, gparams[k].data<T>()});
        bk.launch(GH, ColSum<T>{dgh, S, GH, gparams[k + 1].data<T>()});
        k += 2;
      }
      if (P > 0) bk.gemm(true, false, P, H, S, dht, P, base + lay.r, H, T(0), gparams[k].data<T>(), H);
      bk.gemm(false, false, S, In, GH, dgx, GH, p.w_ih, In, T(1), dX, In);
    }
    if (l > 0) {
      if (c.dropout_on) bk.launch(S * Yw, MulBy<T>{dyB, ws + lay.layer_base(l) + lay.mask});
      std::swap(dyA, dyB);
    }
  }
}

}  // namespace rnn_generic
}  // namespace heron
