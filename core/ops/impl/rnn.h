// Recurrent layers (impl/rnn.cpp: rnn, lstm, gru, the cells and rnn_backward): the problem
// description shared by the device-generic part and the per-device kernels, and the layout of the
// reserve (the workspace the forward pass leaves for the backward pass). docs/design/rnn.md.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor/tensor.h"

namespace heron {

enum RnnMode : int { kRnnTanh = 0, kRnnRelu = 1, kRnnLstm = 2, kRnnGru = 3 };

// One call: L layers x D directions over T steps of B items; every tensor time-major and
// contiguous: x (T, B, I), y (T, B, D*Hout), states (L*D, B, Hout) / (L*D, B, H).
struct RnnConfig {
  int mode = kRnnTanh;
  int64_t T = 0, B = 0, I = 0, H = 0, P = 0, L = 1, D = 1;
  bool bias = true;
  bool dropout_on = false;  // training and p > 0 and L > 1
  double p = 0.0;
  bool varlen = false;
  bool keep = true;  // the workspace is kept for backward (else per-step state is overwritten: inference)
  std::vector<int64_t> batch_sizes;  // per step t: items with length > t (all B without lengths)

  int64_t G() const { return mode == kRnnLstm ? 4 : mode == kRnnGru ? 3 : 1; }
  int64_t Hout() const { return P > 0 ? P : H; }
  int64_t layer_in(int64_t l) const { return l == 0 ? I : D * Hout(); }
  int64_t per_dir() const { return 2 + (bias ? 2 : 0) + (P > 0 ? 1 : 0); }
};

// Offsets (in elements) into the reserve. Per layer l and direction d, at dir_base(l, d):
//   gates  (T, B, G*H)  activated gates, columns in blocks of kRnnUnitBlock units (docs/design/rnn.md)
//   hprev  (T, B, Hout) the hidden state each step started from
//   lstm:  c (T, B, H) cell state after the step, cprev (T, B, H) before it; r (T, B, H) = o*tanh(c)
//          when projecting
//   gru:   hn (T, B, H) = h W_hn^T + b_hn
// then for every layer l >= 1, at layer_base(l): x (T, B, D*Hout) its input (after dropout) and,
// with dropout, mask (T, B, D*Hout) holding 0 or 1/(1-p).
constexpr int64_t kRnnUnitBlock = 32;  // a multiple of 32 columns for every gate count (rnn_gemm.h panels)
struct RnnLayout {
  int64_t gates = 0, hprev = 0, c = 0, cprev = 0, r = 0, hn = 0, dir_size = 0;
  int64_t layers_start = 0, layer_size = 0, mask = 0;
  int64_t total = 0;
  int64_t dir_base(int64_t l, int64_t d, int64_t D) const { return (l * D + d) * dir_size; }
  int64_t layer_base(int64_t l) const { return layers_start + (l - 1) * layer_size; }
};

inline RnnLayout rnn_layout(const RnnConfig& c) {
  RnnLayout o;
  const int64_t S = c.T * c.B;
  const int64_t St = (c.keep ? c.T : 1) * c.B;  // per-step state: every step's, or only the current one's
  int64_t at = 0;
  o.gates = at, at += S * c.G() * c.H;
  o.hprev = at, at += (c.keep ? c.T : 2) * c.B * c.Hout();  // inference: two slots, written alternately
  if (c.mode == kRnnLstm) {
    o.c = at, at += St * c.H;
    o.cprev = at, at += St * c.H;
    if (c.P > 0) o.r = at, at += St * c.H;
  }
  if (c.mode == kRnnGru) o.hn = at, at += St * c.H;
  o.dir_size = at;
  o.layers_start = c.L * c.D * o.dir_size;
  o.mask = S * c.D * c.Hout();
  o.layer_size = o.mask * (c.dropout_on ? 2 : 1);
  o.total = o.layers_start + (c.L - 1) * o.layer_size;
  return o;
}

// Per-device kernels. Undefined h0 / c0 / gy / ghn / gcn mean zeros. `ws` has rnn_layout().total
// elements; the forward pass fills it, the backward pass reads it. Without `keep` the forward pass
// gets an undefined ws and uses scratch memory of its own. gparams are fresh tensors in
// the params' shapes; gx, gh0, gc0 fresh in x's / the states' shapes (gc0 undefined unless lstm).
struct RnnKernels {
  void (*forward)(const RnnConfig& c, const Tensor& x, const Tensor& h0, const Tensor& c0, const std::vector<Tensor>& params,
                  const Tensor& y, const Tensor& hn, const Tensor& cn, const Tensor& ws, uint64_t seed, uint64_t offset);
  void (*backward)(const RnnConfig& c, const Tensor& x, const std::vector<Tensor>& params, const Tensor& ws, const Tensor& gy,
                   const Tensor& ghn, const Tensor& gcn, const Tensor& gx, const Tensor& gh0, const Tensor& gc0,
                   const std::vector<Tensor>& gparams);
};

}  // namespace heron
