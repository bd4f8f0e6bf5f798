// Recurrent layers in the core (ops_rnn.yaml): whole-sequence ops against the same recurrences
// composed by hand from their one-step cells (per batch item, so variable lengths and the reverse
// direction are checked independently of the sequence kernels' batching), gradients against central
// finite differences in float64 (layers, directions, projections, lengths and dropout together),
// the float32 fast path against float64, and argument errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "core/autograd/autograd.h"
#include "core/ops/generated/ops_gen.h"
#include "core/tensor/tensor.h"
#include "core/util/philox.h"

using namespace heron;
namespace O = heron::ops;
namespace A = heron::autograd;

namespace {
Tensor randn(const Dims& shape, std::mt19937& g, double scale = 1.0, DType dt = DType::Float64) {
  Tensor t = Tensor::empty(shape, DType::Float64, host_device());
  std::normal_distribution<double> n(0.0, scale);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<double>()[i] = n(g);
  return dt == DType::Float64 ? t : t.to(dt);
}
double max_diff(const Tensor& a, const Tensor& b) {
  Tensor x = a.contiguous().to(DType::Float64), y = b.contiguous().to(DType::Float64);
  EXPECT_EQ(x.shape(), y.shape());
  double m = 0;
  for (int64_t i = 0; i < x.numel(); ++i) m = std::max(m, std::fabs(x.data<double>()[i] - y.data<double>()[i]));
  return m;
}
Tensor lengths_tensor(const std::vector<int64_t>& v) {
  Tensor t = Tensor::empty(Dims{static_cast<int64_t>(v.size())}, DType::Int64, host_device());
  for (size_t i = 0; i < v.size(); ++i) t.data<int64_t>()[i] = v[i];
  return t;
}

// Flat PyTorch-order params for L layers x D directions.
std::vector<Tensor> make_params(int64_t G, int64_t I, int64_t H, int64_t P, int64_t L, int64_t D, bool bias, std::mt19937& g,
                                DType dt = DType::Float64) {
  std::vector<Tensor> ps;
  const int64_t Hout = P > 0 ? P : H;
  for (int64_t l = 0; l < L; ++l)
    for (int64_t d = 0; d < D; ++d) {
      const int64_t In = l == 0 ? I : D * Hout;
      ps.push_back(randn(Dims{G * H, In}, g, 0.4, dt));
      ps.push_back(randn(Dims{G * H, Hout}, g, 0.4, dt));
      if (bias) ps.push_back(randn(Dims{G * H}, g, 0.4, dt)), ps.push_back(randn(Dims{G * H}, g, 0.4, dt));
      if (P > 0) ps.push_back(randn(Dims{P, H}, g, 0.4, dt));
    }
  return ps;
}
}  // namespace

// rnn / lstm / gru (2 layers, bidirectional, sorted lengths) == one-step cells run per batch item
// over its own length, forward then reversed, layer by layer.
TEST(Rnn, SequenceEqualsCellsPerItem) {
  std::mt19937 g(7);
  const int64_t T = 5, B = 3, I = 4, H = 6, L = 2, D = 2;
  const std::vector<int64_t> lens{5, 3, 1};
  for (const std::string mode : {"rnn", "lstm", "gru"}) {
    const int64_t G = mode == "lstm" ? 4 : mode == "gru" ? 3 : 1;
    auto ps = make_params(G, I, H, 0, L, D, true, g);
    Tensor x = randn(Dims{T, B, I}, g);
    Tensor h0 = randn(Dims{L * D, B, H}, g), c0 = randn(Dims{L * D, B, H}, g);
    Tensor lt = lengths_tensor(lens);
    std::vector<Tensor> r;
    if (mode == "lstm") r = O::lstm(x, h0, c0, lt, ps, O::LstmAttrs{H, L, true, false, 0.0, false, true, 0});
    else if (mode == "gru") r = O::gru(x, h0, lt, ps, O::GruAttrs{H, L, true, false, 0.0, false, true});
    else r = O::rnn(x, h0, lt, ps, O::RnnAttrs{H, L, "tanh", true, false, 0.0, false, true});
    const Tensor& y = r[0];
    const Tensor& hn = r[1];
    double err = 0;
    for (int64_t b = 0; b < B; ++b) {
      const int64_t n = lens[static_cast<size_t>(b)];
      // layer input for this item: n steps of (1, In)
      std::vector<Tensor> in;
      for (int64_t t = 0; t < n; ++t) in.push_back(x.select(0, t).slice(0, b, b + 1, 1).contiguous());
      for (int64_t l = 0; l < L; ++l) {
        std::vector<Tensor> outs[2];
        for (int64_t d = 0; d < D; ++d) {
          const size_t at = static_cast<size_t>((l * D + d) * 4);
          Tensor h = h0.select(0, l * D + d).slice(0, b, b + 1, 1).contiguous();
          Tensor c = c0.select(0, l * D + d).slice(0, b, b + 1, 1).contiguous();
          outs[d].assign(static_cast<size_t>(n), Tensor());
          for (int64_t s = 0; s < n; ++s) {
            const int64_t t = d == 0 ? s : n - 1 - s;
            const Tensor& xt = in[static_cast<size_t>(t)];
            if (mode == "lstm") {
              auto o = O::lstm_cell(xt, h, c, ps[at], ps[at + 1], ps[at + 2], ps[at + 3]);
              h = o[0], c = o[1];
            } else if (mode == "gru") {
              h = O::gru_cell(xt, h, ps[at], ps[at + 1], ps[at + 2], ps[at + 3])[0];
            } else {
              h = O::rnn_cell(xt, h, ps[at], ps[at + 1], ps[at + 2], ps[at + 3], O::RnnCellAttrs{"tanh"})[0];
            }
            outs[d][static_cast<size_t>(t)] = h;
          }
          err = std::max(err, max_diff(hn.select(0, l * D + d).slice(0, b, b + 1, 1), h));
          if (mode == "lstm") err = std::max(err, max_diff(r[2].select(0, l * D + d).slice(0, b, b + 1, 1), c));
        }
        for (int64_t t = 0; t < n; ++t)
          in[static_cast<size_t>(t)] = O::concat({outs[0][static_cast<size_t>(t)], outs[1][static_cast<size_t>(t)]}, O::ConcatAttrs{1});
      }
      for (int64_t t = 0; t < T; ++t) {
        Tensor got = y.select(0, t).slice(0, b, b + 1, 1);
        if (t < n) err = std::max(err, max_diff(got, in[static_cast<size_t>(t)]));
        else err = std::max(err, max_diff(got, O::zeros_like(got)));  // padding stays 0
      }
    }
    EXPECT_LT(err, 1e-12) << mode;
  }
}

// Every gradient (input, both states, every param) against central differences, float64, with
// everything on at once: 2 layers, bidirectional, projection, lengths, batch_first, dropout.
TEST(Rnn, GradientsMatchFiniteDifferences) {
  std::mt19937 g(11);
  const int64_t T = 4, B = 3, I = 3, H = 5, P = 3, L = 2, D = 2;
  for (const std::string mode : {"lstm", "gru", "rnn"}) {
    const int64_t G = mode == "lstm" ? 4 : mode == "gru" ? 3 : 1;
    const int64_t Pm = mode == "lstm" ? P : 0, Hout = Pm > 0 ? Pm : H;
    auto ps = make_params(G, I, H, Pm, L, D, true, g);
    Tensor x = randn(Dims{B, T, I}, g);  // batch_first
    Tensor h0 = randn(Dims{L * D, B, Hout}, g), c0 = randn(Dims{L * D, B, H}, g);
    Tensor lt = lengths_tensor({4, 2, 2});
    Tensor ry = randn(Dims{B, T, D * Hout}, g), rh = randn(Dims{L * D, B, Hout}, g), rc = randn(Dims{L * D, B, H}, g);
    auto loss = [&]() {
      Generator::default_generator().manual_seed(1234);  // the same dropout mask every call
      std::vector<Tensor> r;
      if (mode == "lstm") r = O::lstm(x, h0, c0, lt, ps, O::LstmAttrs{H, L, true, true, 0.3, true, true, P});
      else if (mode == "gru") r = O::gru(x, h0, lt, ps, O::GruAttrs{H, L, true, true, 0.3, true, true});
      else r = O::rnn(x, h0, lt, ps, O::RnnAttrs{H, L, "tanh", true, true, 0.3, true, true});
      Tensor s = O::add(O::sum(O::mul(r[0], ry)), O::sum(O::mul(r[1], rh)));
      if (mode == "lstm") s = O::add(s, O::sum(O::mul(r[2], rc)));
      return s;
    };
    std::vector<Tensor> leaves{x, h0};
    if (mode == "lstm") leaves.push_back(c0);
    for (auto& p : ps) leaves.push_back(p);
    for (auto& t : leaves) A::set_requires_grad(t, true);
    Tensor s = loss();
    A::backward({s}, {Tensor()}, false);
    double worst = 0;
    for (auto& t : leaves) {
      Tensor gr = A::grad(t);
      ASSERT_TRUE(gr.defined());
      A::set_requires_grad(t, false);
    }
    std::vector<Tensor> grads;
    for (auto& t : leaves) grads.push_back(A::grad(t).clone());
    const double eps = 1e-6;
    for (size_t k = 0; k < leaves.size(); ++k) {
      double* p = leaves[k].data<double>();
      for (int64_t i = 0; i < leaves[k].numel(); i += 1 + leaves[k].numel() / 7) {  // a spread of entries per tensor
        const double keep = p[i];
        p[i] = keep + eps;
        const double up = loss().to(DType::Float64).contiguous().data<double>()[0];
        p[i] = keep - eps;
        const double dn = loss().to(DType::Float64).contiguous().data<double>()[0];
        p[i] = keep;
        const double fd = (up - dn) / (2 * eps);
        const double an = grads[k].data<double>()[i];
        worst = std::max(worst, std::fabs(fd - an) / (1.0 + std::fabs(fd)));
      }
    }
    EXPECT_LT(worst, 1e-6) << mode;
    if (std::getenv("RNN_TEST_VERBOSE")) std::printf("%s worst %.3g\n", mode.c_str(), worst);
  }
}

// The float32 path (packed AVX-512 products where available) agrees with float64.
TEST(Rnn, Float32MatchesFloat64) {
  std::mt19937 g(3);
  const int64_t T = 6, B = 19, I = 40, H = 70, L = 1, D = 2;
  auto ps64 = make_params(4, I, H, 0, L, D, true, g);
  std::vector<Tensor> ps32;
  for (auto& p : ps64) ps32.push_back(p.to(DType::Float32));
  Tensor x = randn(Dims{T, B, I}, g);
  Tensor x32 = x.to(DType::Float32);
  for (auto& p : ps32) A::set_requires_grad(p, true);
  A::set_requires_grad(x32, true);
  for (auto& p : ps64) A::set_requires_grad(p, true);
  A::set_requires_grad(x, true);
  auto r64 = O::lstm(x, Tensor(), Tensor(), Tensor(), ps64, O::LstmAttrs{H, L, true, false, 0.0, false, true, 0});
  auto r32 = O::lstm(x32, Tensor(), Tensor(), Tensor(), ps32, O::LstmAttrs{H, L, true, false, 0.0, false, true, 0});
  EXPECT_LT(max_diff(r64[0], r32[0]), 1e-5);
  A::backward({O::sum(r64[0])}, {Tensor()}, false);
  A::backward({O::sum(r32[0])}, {Tensor()}, false);
  EXPECT_LT(max_diff(A::grad(x), A::grad(x32)), 1e-4);
  for (size_t i = 0; i < ps64.size(); ++i) EXPECT_LT(max_diff(A::grad(ps64[i]), A::grad(ps32[i])), 2e-4) << i;
}

TEST(Rnn, BadArgumentsNameTheExpectedShape) {
  std::mt19937 g(5);
  auto ps = make_params(4, 3, 4, 0, 1, 1, true, g);
  Tensor x = randn(Dims{5, 2, 3}, g);
  auto msg = [&](auto fn) {
    try {
      fn();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(msg([&] { O::lstm(x, Tensor(), Tensor(), lengths_tensor({2, 5}), ps, O::LstmAttrs{4}); }).find("sorted in decreasing order"),
            std::string::npos);
  EXPECT_NE(msg([&] { O::lstm(x, Tensor(), Tensor(), lengths_tensor({6, 5}), ps, O::LstmAttrs{4}); }).find("in [1, 5]"), std::string::npos);
  EXPECT_NE(msg([&] { O::lstm(x, Tensor(), Tensor(), lengths_tensor({5, 0}), ps, O::LstmAttrs{4}); }).find("in [1, 5]"), std::string::npos);
  EXPECT_NE(msg([&] { O::lstm(x, randn(Dims{1, 3, 4}, g), Tensor(), Tensor(), ps, O::LstmAttrs{4}); }).find("[1, 2, 4]"), std::string::npos);
  EXPECT_NE(msg([&] { O::lstm(randn(Dims{5, 3}, g).unsqueeze(0).unsqueeze(0), Tensor(), Tensor(), Tensor(), ps, O::LstmAttrs{4}); })
                .find("expected 'input' of 3 dims"),
            std::string::npos);
  EXPECT_NE(msg([&] { O::lstm(x, Tensor(), Tensor(), Tensor(), ps, O::LstmAttrs{5}); }).find("weight_ih_l0"), std::string::npos);
  EXPECT_NE(msg([&] { O::gru(x, Tensor(), Tensor(), ps, O::GruAttrs{4}); }).find("weight_ih_l0"), std::string::npos);
  EXPECT_NE(msg([&] { O::lstm(x, Tensor(), Tensor(), Tensor(), {ps[0]}, O::LstmAttrs{4}); }).find("expected 4 params"), std::string::npos);
}

// Without gradient recording the kernels keep only the current step's state (two alternating
// hidden-state slots); the results must be the same bits as with the full reserve.
TEST(Rnn, InferenceEqualsRecorded) {
  std::mt19937 g(9);
  const int64_t T = 6, B = 3, I = 4, H = 20, L = 2, D = 2;
  for (const std::string mode : {"rnn", "lstm", "lstm_proj", "gru"}) {
    const bool lstm = mode.rfind("lstm", 0) == 0;
    const int64_t G = lstm ? 4 : mode == "gru" ? 3 : 1, P = mode == "lstm_proj" ? 7 : 0, Hout = P > 0 ? P : H;
    for (DType dt : {DType::Float64, DType::Float32}) {
      auto ps = make_params(G, I, H, P, L, D, true, g, dt);
      Tensor x = randn(Dims{T, B, I}, g, 1.0, dt), h0 = randn(Dims{L * D, B, Hout}, g, 1.0, dt);
      Tensor lt = lengths_tensor({6, 4, 2});
      auto call = [&]() {
        if (lstm) return O::lstm(x, h0, Tensor(), lt, ps, O::LstmAttrs{H, L, true, false, 0.0, false, true, P});
        if (mode == "gru") return O::gru(x, h0, lt, ps, O::GruAttrs{H, L, true, false, 0.0, false, true});
        return O::rnn(x, h0, lt, ps, O::RnnAttrs{H, L, "tanh", true, false, 0.0, false, true});
      };
      auto a = call();
      EXPECT_EQ(a.back().numel(), 0) << mode;  // no reserve without recording
      for (auto& p : ps) A::set_requires_grad(p, true);
      auto b = call();
      EXPECT_GT(b.back().numel(), 0) << mode;
      for (size_t i = 0; i + 1 < a.size(); ++i) EXPECT_EQ(max_diff(a[i], b[i]), 0.0) << mode << " output " << i;
    }
  }
}

// An empty batch is a valid call: empty outputs, zero weight gradients (and no null-pointer copies,
// which UBSan would flag).
TEST(Rnn, EmptyBatch) {
  std::mt19937 g(2);
  auto ps = make_params(3, 3, 4, 0, 2, 2, true, g);
  Tensor x = randn(Dims{5, 0, 3}, g);
  A::set_requires_grad(x, true);
  for (auto& p : ps) A::set_requires_grad(p, true);
  auto r = O::gru(x, Tensor(), Tensor(), ps, O::GruAttrs{4, 2, true, false, 0.0, false, true});
  EXPECT_EQ(r[0].shape(), (Dims{5, 0, 8}));
  EXPECT_EQ(r[1].shape(), (Dims{4, 0, 4}));
  A::backward({O::sum(r[0])}, {Tensor()}, false);
  for (auto& p : ps) EXPECT_EQ(max_diff(A::grad(p), O::zeros_like(p)), 0.0);
  EXPECT_EQ(A::grad(x).shape(), x.shape());
}
