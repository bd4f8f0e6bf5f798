// Recurrent layers: rnn, lstm, gru (whole sequences), rnn_cell, lstm_cell, gru_cell and
// rnn_backward. Device-generic: argument checks (every message names the argument and the shape
// it expects), the canonical time-major layout, allocation; the arithmetic is the device's
// RnnKernels (impl/rnn.h). A cell is a sequence of one step, one layer, one direction.
#include "core/ops/impl/rnn.h"

#include "core/ops/impl/common.h"
#include "core/ops/impl/creation_kernels.h"
#include "core/util/philox.h"

namespace heron {
namespace {
using namespace ops;

Error arg_error(const char* op, const std::string& msg) { return Error(ErrorCode::InvalidArgument, str_cat(op, ": ", msg), op); }
Error type_error(const char* op, const std::string& msg) { return Error(ErrorCode::TypeError, str_cat(op, ": ", msg), op); }

const char* gate_names(int mode) { return mode == kRnnLstm ? "4*hidden_size" : mode == kRnnGru ? "3*hidden_size" : "hidden_size"; }

// PyTorch's name of the k-th flat parameter, for messages.
std::string param_name(const RnnConfig& c, int64_t k) {
  const int64_t per = c.per_dir();
  const int64_t ld = k / per, j = k % per;
  const int64_t l = ld / c.D, d = ld % c.D;
  std::string base;
  if (j == 0) base = "weight_ih";
  else if (j == 1) base = "weight_hh";
  else if (c.bias && j == 2) base = "bias_ih";
  else if (c.bias && j == 3) base = "bias_hh";
  else base = "weight_hr";
  return str_cat(base, "_l", l, d == 1 ? "_reverse" : "");
}

struct Canon {
  RnnConfig c;
  DType dt = DType::Float32;
  Device dev;
  Tensor x, h0, c0;  // canonical: (T, B, I), (L*D, B, Hout), (L*D, B, H); states may be undefined
  std::vector<Tensor> params;
  bool batch_first = false, unbatched = false;
  Dims hx_shape, cx_shape;  // the states' shapes as the caller sees them
};

Canon canonicalize(const char* op, int mode, const Tensor& input, const Tensor& hx, const Tensor& cx, const Tensor& lengths,
                   const std::vector<Tensor>& params, int64_t H, int64_t L, bool bias, bool batch_first, double dropout,
                   bool training, bool bidirectional, int64_t P) {
  Canon k;
  RnnConfig& c = k.c;
  c.mode = mode;
  if (!input.defined()) throw arg_error(op, "'input' is required");
  if (input.dtype() != DType::Float32 && input.dtype() != DType::Float64)
    throw type_error(op, str_cat("expected 'input' of dtype float32 or float64, got ", dtype_name(input.dtype())));
  k.dt = input.dtype();
  if (H < 1) throw arg_error(op, str_cat("hidden_size must be >= 1, got ", H));
  if (L < 1) throw arg_error(op, str_cat("num_layers must be >= 1, got ", L));
  if (P < 0 || (P > 0 && (mode != kRnnLstm || P >= H)))
    throw arg_error(op, mode == kRnnLstm ? str_cat("proj_size must be in [0, hidden_size) = [0, ", H, "), got ", P)
                                         : str_cat("proj_size is only for lstm, got ", P));
  if (!(dropout >= 0.0 && dropout <= 1.0)) throw arg_error(op, str_cat("dropout must be in [0, 1], got ", dropout));
  c.H = H, c.L = L, c.P = P, c.D = bidirectional ? 2 : 1, c.bias = bias;
  c.p = dropout;
  c.dropout_on = training && dropout > 0.0 && L > 1;
  const int64_t Hout = c.Hout();
  const char* layout = batch_first ? "(batch, seq, input_size)" : "(seq, batch, input_size)";
  if (input.dim() == 3) {
    k.x = batch_first ? input.transpose(0, 1) : input;
  } else if (input.dim() == 2) {
    k.unbatched = true;
    k.x = input.unsqueeze(1);
  } else {
    throw arg_error(op, str_cat("expected 'input' of 3 dims ", layout, " or 2 dims (seq, input_size) unbatched, got shape ",
                                input.shape().str()));
  }
  k.batch_first = batch_first && !k.unbatched;
  c.T = k.x.size(0), c.B = k.x.size(1), c.I = k.x.size(2);
  if (c.T < 1 || c.I < 1) throw arg_error(op, str_cat("'input' needs at least one step and one feature, got shape ", input.shape().str()));
  k.x = k.x.contiguous();
  std::vector<Tensor> all{input};
  // states
  auto state = [&](const Tensor& s, const char* name, int64_t width, Dims& shown) -> Tensor {
    const Dims want = k.unbatched ? Dims{L * c.D, width} : Dims{L * c.D, c.B, width};
    shown = want;
    if (!s.defined()) return Tensor();
    if (s.dtype() != k.dt)
      throw type_error(op, str_cat("expected '", name, "' of dtype ", dtype_name(k.dt), " (the input's), got ", dtype_name(s.dtype())));
    if (s.shape() != want)
      throw arg_error(op, str_cat("expected '", name, "' of shape ", want.str(), " (num_layers * num_directions, ",
                                  k.unbatched ? "" : "batch, ", width == H ? "hidden_size" : "proj_size", "), got ", s.shape().str()));
    all.push_back(s);
    return (k.unbatched ? s.unsqueeze(1) : s).contiguous();
  };
  k.h0 = state(hx, "hx", Hout, k.hx_shape);
  if (mode == kRnnLstm) k.c0 = state(cx, "cx", H, k.cx_shape);
  else if (cx.defined()) throw arg_error(op, "'cx' is only for lstm");
  // lengths
  c.batch_sizes.assign(static_cast<size_t>(c.T), c.B);
  if (lengths.defined()) {
    if (k.unbatched) throw arg_error(op, "'lengths' needs a batched input (seq, batch, input_size)");
    if (lengths.dtype() != DType::Int64 && lengths.dtype() != DType::Int32)
      throw type_error(op, str_cat("expected 'lengths' of dtype int64, got ", dtype_name(lengths.dtype())));
    if (lengths.dim() != 1 || lengths.size(0) != c.B)
      throw arg_error(op, str_cat("expected 'lengths' of shape (", c.B, ") (one per batch item), got ", lengths.shape().str()));
    Tensor lh = lengths.to(host_device()).to(DType::Int64).contiguous();
    const int64_t* lp = lh.data<int64_t>();
    for (int64_t b = 0; b < c.B; ++b) {
      if (lp[b] < 1 || lp[b] > c.T)
        throw arg_error(op, str_cat("lengths[", b, "] = ", lp[b], " is out of range: every length must be in [1, ", c.T,
                                    "] (the sequence has ", c.T, " steps)"));
      if (b > 0 && lp[b] > lp[b - 1])
        throw arg_error(op, str_cat("'lengths' must be sorted in decreasing order, but lengths[", b, "] = ", lp[b], " > lengths[",
                                    b - 1, "] = ", lp[b - 1], " (sort the batch, e.g. pack_padded_sequence(enforce_sorted=False))"));
    }
    for (int64_t t = 0; t < c.T; ++t) {
      int64_t n = 0;
      while (n < c.B && lp[n] > t) ++n;
      c.batch_sizes[static_cast<size_t>(t)] = n;
    }
    c.varlen = lp[c.B - 1] < c.T;
  }
  // params
  const int64_t per = c.per_dir();
  if (static_cast<int64_t>(params.size()) != L * c.D * per)
    throw arg_error(op, str_cat("expected ", L * c.D * per, " params (per layer and direction: weight_ih, weight_hh",
                                bias ? ", bias_ih, bias_hh" : "", P > 0 ? ", weight_hr" : "", "), got ", params.size()));
  const int64_t GH = c.G() * H;
  for (int64_t i = 0; i < static_cast<int64_t>(params.size()); ++i) {
    const Tensor& w = params[static_cast<size_t>(i)];
    const int64_t l = i / per / c.D, j = i % per;
    Dims want;
    std::string what;
    if (j == 0) want = Dims{GH, c.layer_in(l)}, what = str_cat("(", gate_names(mode), ", ", l == 0 ? "input_size" : (c.D == 2 ? "2*" : ""),
                                                                l == 0 ? "" : (P > 0 ? "proj_size" : "hidden_size"), ")");
    else if (j == 1) want = Dims{GH, Hout}, what = str_cat("(", gate_names(mode), ", ", P > 0 ? "proj_size" : "hidden_size", ")");
    else if (bias && j <= 3) want = Dims{GH}, what = str_cat("(", gate_names(mode), ")");
    else want = Dims{P, H}, what = "(proj_size, hidden_size)";
    if (!w.defined()) throw arg_error(op, str_cat("params[", i, "] (", param_name(c, i), ") is missing"));
    if (w.dtype() != k.dt)
      throw type_error(op, str_cat("expected params[", i, "] (", param_name(c, i), ") of dtype ", dtype_name(k.dt), " (the input's), got ",
                                   dtype_name(w.dtype())));
    if (w.shape() != want)
      throw arg_error(op, str_cat("expected params[", i, "] (", param_name(c, i), ") of shape ", want.str(), " ", what, ", got ",
                                  w.shape().str()));
    k.params.push_back(w.contiguous());
    all.push_back(w);
  }
  k.dev = common_device(op, all.data(), all.size());
  return k;
}

bool recording(OpCtx&) { return ops::detail::impl_is_recording(); }

// Runs the forward pass; returns {y (caller's layout), hn, cn, reserve}.
struct FwdOut {
  Tensor y, hn, cn, reserve;
};
FwdOut run_forward(const char* op, int op_id, Canon& k, bool keep_reserve) {
  k.c.keep = keep_reserve;
  const RnnConfig& c = k.c;
  const RnnLayout lay = rnn_layout(c);
  Tensor y = Tensor::empty(Dims{c.T, c.B, c.D * c.Hout()}, k.dt, k.dev);
  Tensor hn = Tensor::empty(Dims{c.L * c.D, c.B, c.Hout()}, k.dt, k.dev);
  Tensor cn = c.mode == kRnnLstm ? Tensor::empty(Dims{c.L * c.D, c.B, c.H}, k.dt, k.dev) : Tensor();
  Tensor ws = keep_reserve ? Tensor::empty(Dims{lay.total}, k.dt, k.dev) : Tensor();
  uint64_t seed = 0, offset = 0;
  if (c.dropout_on) {
    auto so = Generator::default_generator().reserve(blocks_for((c.L - 1) * lay.mask, 4));
    seed = so.first, offset = so.second;
  }
  auto kern = kernel<const RnnKernels*>(op_id, k.dev, k.dt);
  if (c.B > 0) kern->forward(c, k.x, k.h0, k.c0, k.params, y, hn, cn, ws, seed, offset);
  FwdOut o;
  o.y = k.unbatched ? y.squeeze(Dims{1}) : k.batch_first ? y.transpose(0, 1).contiguous() : y;
  o.hn = k.unbatched ? hn.squeeze(Dims{1}) : hn;
  if (cn.defined()) o.cn = k.unbatched ? cn.squeeze(Dims{1}) : cn;
  o.reserve = keep_reserve ? ws : Tensor::empty(Dims{0}, k.dt, k.dev);
  (void)op;
  return o;
}

std::vector<Tensor> variadic(OpCtx& ctx, size_t fixed) {
  std::vector<Tensor> v;
  for (size_t i = fixed; i < ctx.num_inputs(); ++i) v.push_back(ctx.in(i));
  return v;
}

HERON_IMPL(rnn, RnnAttrs) {
  const int mode = attrs.nonlinearity == "relu" ? kRnnRelu : attrs.nonlinearity == "tanh" ? kRnnTanh : -1;
  if (mode < 0) throw arg_error("rnn", str_cat("nonlinearity must be 'tanh' or 'relu', got '", attrs.nonlinearity, "'"));
  Canon k = canonicalize("rnn", mode, ctx.in(0), ctx.in(1), Tensor(), ctx.in(2), variadic(ctx, 3), attrs.hidden_size, attrs.num_layers,
                         attrs.bias, attrs.batch_first, attrs.dropout, attrs.training, attrs.bidirectional, 0);
  FwdOut o = run_forward("rnn", OpId::rnn, k, recording(ctx));
  ctx.set(o.y), ctx.set(o.hn), ctx.set(o.reserve);
}
HERON_IMPL(lstm, LstmAttrs) {
  Canon k = canonicalize("lstm", kRnnLstm, ctx.in(0), ctx.in(1), ctx.in(2), ctx.in(3), variadic(ctx, 4), attrs.hidden_size,
                         attrs.num_layers, attrs.bias, attrs.batch_first, attrs.dropout, attrs.training, attrs.bidirectional,
                         attrs.proj_size);
  FwdOut o = run_forward("lstm", OpId::lstm, k, recording(ctx));
  ctx.set(o.y), ctx.set(o.hn), ctx.set(o.cn), ctx.set(o.reserve);
}
HERON_IMPL(gru, GruAttrs) {
  Canon k = canonicalize("gru", kRnnGru, ctx.in(0), ctx.in(1), Tensor(), ctx.in(2), variadic(ctx, 3), attrs.hidden_size, attrs.num_layers,
                         attrs.bias, attrs.batch_first, attrs.dropout, attrs.training, attrs.bidirectional, 0);
  FwdOut o = run_forward("gru", OpId::gru, k, recording(ctx));
  ctx.set(o.y), ctx.set(o.hn), ctx.set(o.reserve);
}

// ------------------------------------------------------------------ cells
struct CellArgs {
  Tensor input, hx, cx;
  std::vector<Tensor> params;
  int64_t H = 0;
  bool unbatched = false;
};
// Checks a cell's arguments and states them as a one-step sequence (T = 1).
CellArgs cell_args(const char* op, int mode, const Tensor& input, const Tensor& hx, const Tensor& cx, const Tensor& w_ih, const Tensor& w_hh,
                   const Tensor& b_ih, const Tensor& b_hh) {
  CellArgs a;
  const int64_t G = mode == kRnnLstm ? 4 : mode == kRnnGru ? 3 : 1;
  if (!input.defined() || !w_ih.defined() || !w_hh.defined()) throw arg_error(op, "'input', 'w_ih' and 'w_hh' are required");
  if (input.dim() != 1 && input.dim() != 2)
    throw arg_error(op, str_cat("expected 'input' of shape (batch, input_size) or unbatched (input_size), got ", input.shape().str()));
  if (w_hh.dim() != 2 || w_hh.size(0) % G != 0 || w_hh.size(1) * G != w_hh.size(0))
    throw arg_error(op, str_cat("expected 'w_hh' of shape (", gate_names(mode), ", hidden_size), got ", w_hh.shape().str()));
  a.H = w_hh.size(1);
  if (w_ih.dim() != 2 || w_ih.size(0) != w_hh.size(0) || w_ih.size(1) != input.size(-1))
    throw arg_error(op, str_cat("expected 'w_ih' of shape [", w_hh.size(0), ", ", input.size(-1), "] (", gate_names(mode),
                                ", input_size), got ", w_ih.shape().str()));
  if (b_ih.defined() != b_hh.defined()) throw arg_error(op, "give both 'b_ih' and 'b_hh' or neither");
  a.unbatched = input.dim() == 1;
  const int64_t B = a.unbatched ? 1 : input.size(0);
  auto st = [&](const Tensor& s, const char* name) -> Tensor {
    if (!s.defined()) return Tensor();
    const Dims want = a.unbatched ? Dims{a.H} : Dims{B, a.H};
    if (s.shape() != want) throw arg_error(op, str_cat("expected '", name, "' of shape ", want.str(), " (", a.unbatched ? "" : "batch, ",
                                                       "hidden_size), got ", s.shape().str()));
    return s.reshape(Dims{1, B, a.H});
  };
  a.input = input.reshape(Dims{1, B, input.size(-1)});
  a.hx = st(hx, "hx");
  a.cx = st(cx, "cx");
  a.params = {w_ih, w_hh};
  if (b_ih.defined()) a.params.push_back(b_ih), a.params.push_back(b_hh);
  return a;
}

void cell_forward(OpCtx& ctx, const char* op, int op_id, int mode, const Tensor& input, const Tensor& hx, const Tensor& cx, const Tensor& w_ih,
                  const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh) {
  CellArgs a = cell_args(op, mode, input, hx, cx, w_ih, w_hh, b_ih, b_hh);
  Canon k = canonicalize(op, mode, a.input, a.hx, a.cx, Tensor(), a.params, a.H, 1, b_ih.defined(), false, 0.0, false, false, 0);
  FwdOut o = run_forward(op, op_id, k, recording(ctx));
  const Dims out = a.unbatched ? Dims{a.H} : Dims{k.c.B, a.H};
  ctx.set(o.hn.reshape(out));
  if (mode == kRnnLstm) ctx.set(o.cn.reshape(out));
  ctx.set(o.reserve);
}

HERON_IMPL(rnn_cell, RnnCellAttrs) {
  const int mode = attrs.nonlinearity == "relu" ? kRnnRelu : attrs.nonlinearity == "tanh" ? kRnnTanh : -1;
  if (mode < 0) throw arg_error("rnn_cell", str_cat("nonlinearity must be 'tanh' or 'relu', got '", attrs.nonlinearity, "'"));
  cell_forward(ctx, "rnn_cell", OpId::rnn_cell, mode, ctx.in(0), ctx.in(1), Tensor(), ctx.in(2), ctx.in(3), ctx.in(4), ctx.in(5));
}
HERON_IMPL(lstm_cell, LstmCellAttrs) {
  (void)attrs;
  cell_forward(ctx, "lstm_cell", OpId::lstm_cell, kRnnLstm, ctx.in(0), ctx.in(1), ctx.in(2), ctx.in(3), ctx.in(4), ctx.in(5), ctx.in(6));
}
HERON_IMPL(gru_cell, GruCellAttrs) {
  (void)attrs;
  cell_forward(ctx, "gru_cell", OpId::gru_cell, kRnnGru, ctx.in(0), ctx.in(1), Tensor(), ctx.in(2), ctx.in(3), ctx.in(4), ctx.in(5));
}

// ------------------------------------------------------------------ backward
HERON_IMPL(rnn_backward, RnnBackwardAttrs) {
  const char* op = "rnn_backward";
  int mode = -1;
  if (attrs.mode == "lstm") mode = kRnnLstm;
  else if (attrs.mode == "gru") mode = kRnnGru;
  else if (attrs.mode == "rnn") mode = attrs.nonlinearity == "relu" ? kRnnRelu : kRnnTanh;
  else throw arg_error(op, str_cat("mode must be 'rnn', 'lstm' or 'gru', got '", attrs.mode, "'"));
  Canon k = canonicalize(op, mode, ctx.in(0), ctx.in(1), ctx.in(2), ctx.in(3), variadic(ctx, 8), attrs.hidden_size, attrs.num_layers,
                         attrs.bias, attrs.batch_first, attrs.dropout, attrs.training, attrs.bidirectional, attrs.proj_size);
  const RnnConfig& c = k.c;
  const RnnLayout lay = rnn_layout(c);
  const Tensor& reserve = ctx.in(4);
  if (!reserve.defined() || reserve.dtype() != k.dt || reserve.dim() != 1 || reserve.numel() != lay.total)
    throw arg_error(op, str_cat("'reserve' must be the reserve output of the forward call with the same arguments, recorded for "
                                "gradients: ", lay.total, " elements of ", dtype_name(k.dt), ", got ",
                                reserve.defined() ? reserve.shape().str() : std::string("none")));
  auto canon_grad = [&](const Tensor& g, const Dims& want_caller, const char* name, bool is_output) -> Tensor {
    if (!g.defined()) return Tensor();
    if (g.dtype() != k.dt) throw type_error(op, str_cat("expected '", name, "' of dtype ", dtype_name(k.dt), ", got ", dtype_name(g.dtype())));
    if (g.shape() != want_caller) throw arg_error(op, str_cat("expected '", name, "' of shape ", want_caller.str(), ", got ", g.shape().str()));
    Tensor t = k.unbatched ? g.unsqueeze(1) : (is_output && k.batch_first ? g.transpose(0, 1) : g);
    return t.contiguous();
  };
  const int64_t Yw = c.D * c.Hout();
  const Dims y_shape = k.unbatched ? Dims{c.T, Yw} : k.batch_first ? Dims{c.B, c.T, Yw} : Dims{c.T, c.B, Yw};
  Tensor gy = canon_grad(ctx.in(5), y_shape, "grad_output", true);
  Tensor ghn = canon_grad(ctx.in(6), k.hx_shape, "grad_hn", false);
  Tensor gcn = mode == kRnnLstm ? canon_grad(ctx.in(7), k.cx_shape, "grad_cn", false) : Tensor();
  Tensor gx = Tensor::empty(k.x.shape(), k.dt, k.dev);
  Tensor gh0 = Tensor::empty(Dims{c.L * c.D, c.B, c.Hout()}, k.dt, k.dev);
  Tensor gc0 = mode == kRnnLstm ? Tensor::empty(Dims{c.L * c.D, c.B, c.H}, k.dt, k.dev) : Tensor();
  std::vector<Tensor> gp;
  for (const Tensor& w : k.params) gp.push_back(Tensor::empty(w.shape(), k.dt, k.dev));
  auto kern = kernel<const RnnKernels*>(OpId::rnn_backward, k.dev, k.dt);
  if (c.B > 0) {
    kern->backward(c, k.x, k.params, reserve.contiguous(), gy, ghn, gcn, gx, gh0, gc0, gp);
  } else {  // an empty batch: nothing flows to the weights
    for (Tensor& g : gp) fill_tensor(g, Scalar(0.0));
  }
  ctx.set(k.unbatched ? gx.squeeze(Dims{1}) : k.batch_first ? gx.transpose(0, 1).contiguous() : gx);
  ctx.set(gh0.reshape(k.hx_shape));
  ctx.set(gc0.defined() ? gc0.reshape(k.cx_shape) : Tensor::empty(Dims{0}, k.dt, k.dev));
  for (Tensor& g : gp) ctx.set(g);
}

}  // namespace
}  // namespace heron
