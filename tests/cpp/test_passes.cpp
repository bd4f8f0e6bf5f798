// Graph optimisation passes (core/graph/passes.h) and conv2d_fused, also run under ASan/UBSan:
// conv -> batch_norm (eval) -> add -> relu and depthwise conv -> batch_norm -> clamp become one
// conv2d_fused node whose results equal the ops called one by one (float64 and float32, every
// conv path); malformed batch norms are left alone and fail as the unoptimised graph does.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/graph/passes.h"
#include "core/ops/generated/ops_gen.h"
#include "core/runtime/session.h"

using namespace heron;
namespace O = heron::ops;
using graph::AttrValue;
using graph::Graph;
using runtime::Session;
using runtime::SessionOptions;

namespace {

Tensor rnd(const Dims& shape, DType dt, uint32_t seed, double lo = -1, double hi = 1) {
  Tensor t = Tensor::empty(shape, dt, host_device());
  std::mt19937 g(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  visit_dtype(dt, [&](auto z) {
    using T = decltype(z);
    T* p = t.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = convert<T>(u(g));
  });
  return t;
}

double max_diff(const Tensor& a, const Tensor& b) {
  Tensor x = a.to(DType::Float64).contiguous(), y = b.to(DType::Float64).contiguous();
  EXPECT_EQ(x.shape(), y.shape());
  double m = 0;
  for (int64_t i = 0; i < x.numel(); ++i) m = std::max(m, std::fabs(x.data<double>()[i] - y.data<double>()[i]));
  return m;
}

AttrValue ints(std::vector<int64_t> v) {
  AttrValue a;
  a.kind = AttrValue::Ints;
  a.ints = std::move(v);
  return a;
}
AttrValue integer(int64_t i) {
  AttrValue a;
  a.kind = AttrValue::Int;
  a.i = i;
  return a;
}
AttrValue boolean(bool b) {
  AttrValue a;
  a.kind = AttrValue::Bool;
  a.i = b;
  return a;
}
AttrValue flt(double f) {
  AttrValue a;
  a.kind = AttrValue::Float;
  a.f = f;
  return a;
}

// x (?, C, 9, 9) -> conv2d(w, b, groups) -> batch_norm (eval) -> [add x] -> relu | clamp(0, 6)
struct Block {
  Graph g;
  Tensor w, b, gamma, beta, mean, var;
  int64_t groups;
  bool residual, relu6;
  Block(DType dt, int64_t C, int64_t groups, bool residual, bool relu6, int64_t mean_len = -1)
      : groups(groups), residual(residual), relu6(relu6) {
    const int64_t K = C;
    w = rnd({K, C / groups, 3, 3}, dt, 1);
    b = rnd({K}, dt, 2);
    gamma = rnd({K}, dt, 3, 0.5, 1.5);
    beta = rnd({K}, dt, 4);
    mean = rnd({mean_len < 0 ? K : mean_len}, dt, 5);
    var = rnd({K}, dt, 6, 0.5, 2.0);
    int x = g.add_value("x", dt, {-1, C, 9, 9});
    int vw = g.add_value("w", dt, w.shape().vec()), vb = g.add_value("b", dt, {K});
    int vg = g.add_value("gamma", dt, {K}), vbe = g.add_value("beta", dt, {K});
    int vm = g.add_value("mean", dt, mean.shape().vec()), vv = g.add_value("var", dt, {K});
    int c = g.add_value("c", dt, {-1, K, 9, 9});
    int n = g.add_value("n", dt, {-1, K, 9, 9});
    int s1 = g.add_value("s1", dt, {K}), s2 = g.add_value("s2", dt, {K});
    int a = g.add_value("a", dt, {-1, K, 9, 9});
    int y = g.add_value("y", dt, {-1, K, 9, 9});
    g.inputs = {x};
    g.initializers[vw] = w;
    g.initializers[vb] = b;
    g.initializers[vg] = gamma;
    g.initializers[vbe] = beta;
    g.initializers[vm] = mean;
    g.initializers[vv] = var;
    g.nodes.push_back({"conv", "conv2d", {x, vw, vb}, {c}, {ints({1, 1}), ints({1, 1}), ints({1, 1}), integer(groups), boolean(false)}});
    g.nodes.push_back({"bn", "batch_norm", {c, vg, vbe, vm, vv}, {n, s1, s2}, {boolean(false), flt(0.1), flt(1e-5)}});
    int last = n;
    if (residual) {
      g.nodes.push_back({"add", "add", {n, x}, {a}, {}});
      last = a;
    }
    if (relu6) g.nodes.push_back({"act", "clamp", {last}, {y}, {integer(0), integer(6)}});
    else g.nodes.push_back({"act", "relu", {last}, {y}, {}});
    g.outputs = {y};
  }
  Tensor direct(const Tensor& x) const {
    Tensor c = O::conv2d(x, w, b, O::Conv2dAttrs{Dims{1, 1}, Dims{1, 1}, Dims{1, 1}, groups, false});
    Tensor n = O::batch_norm(c, gamma, beta, mean, var, O::BatchNormAttrs{false, 0.1, 1e-5})[0];
    if (residual) n = O::add(n, x);
    return relu6 ? O::clamp(n, O::ClampAttrs{Scalar(int64_t{0}), Scalar(int64_t{6})}) : O::relu(n);
  }
};

}  // namespace

TEST(Passes, ConvBatchNormAddActivationBecomesOneFusedNode) {
  for (DType dt : {DType::Float64, DType::Float32}) {
    for (int64_t groups : {int64_t{1}, int64_t{2}, int64_t{16}}) {  // dense, grouped, depthwise
      for (bool residual : {false, true}) {
        for (bool relu6 : {false, true}) {
          Block m(dt, 16, groups, residual, relu6);
          SessionOptions plain;
          plain.optimize = false;
          Session opt(m.g), ref(m.g, plain);
          ASSERT_EQ(opt.graph().nodes.size(), 1u) << opt.graph().to_text();
          EXPECT_EQ(opt.graph().nodes[0].op, "conv2d_fused");
          EXPECT_EQ(opt.optimization_report().folded_batch_norms, 1);
          EXPECT_EQ(opt.optimization_report().fused_residuals, residual ? 1 : 0);
          EXPECT_EQ(opt.optimization_report().fused_activations, 1);
          EXPECT_EQ(ref.graph().nodes.size(), residual ? 4u : 3u);
          for (int64_t batch : {1, 3}) {
            Tensor x = rnd({batch, 16, 9, 9}, dt, 100 + static_cast<uint32_t>(batch));
            Tensor want = m.direct(x);
            const double tol = dt == DType::Float64 ? 1e-10 : 1e-4;
            EXPECT_LT(max_diff(opt.run({"x"}, {x})[0], want), tol) << "groups " << groups;
            EXPECT_LT(max_diff(opt.run({"x"}, {x})[0], want), tol);  // packed weights reused
            EXPECT_LT(max_diff(ref.run({"x"}, {x})[0], want), tol);
          }
        }
      }
    }
  }
}

TEST(Passes, MalformedBatchNormIsLeftAloneAndFailsAsBefore) {
  Block m(DType::Float32, 8, 1, false, false, /*mean_len=*/5);  // running_mean of the wrong length
  SessionOptions plain;
  plain.optimize = false;
  Session opt(m.g), ref(m.g, plain);
  EXPECT_EQ(opt.optimization_report().folded_batch_norms, 0);
  Tensor x = rnd({2, 8, 9, 9}, DType::Float32, 7);
  EXPECT_THROW(opt.run({"x"}, {x}), Error);
  EXPECT_THROW(ref.run({"x"}, {x}), Error);
}

TEST(Passes, OptimizeIsIdempotentAndKeepsTheGraphValid) {
  Block m(DType::Float32, 8, 1, true, false);
  Graph g = m.g;
  graph::PassReport r1 = graph::optimize(g);
  g.validate();
  graph::PassReport r2 = graph::optimize(g);
  g.validate();
  EXPECT_EQ(r1.folded_batch_norms, 1);
  EXPECT_EQ(r2.folded_batch_norms + r2.fused_residuals + r2.fused_activations, 0);
  EXPECT_EQ(g.initializers.size(), 2u);  // the folded weight and bias only
}

TEST(ConvFused, EpilogueMatchesSeparateOps) {
  // Strided, padded, dilated: the gather packing; 1x1: the direct packing; both dtypes.
  for (DType dt : {DType::Float32, DType::Float64}) {
    struct Case { int64_t k, s, p, d; };
    for (Case c : {Case{3, 2, 1, 1}, Case{1, 1, 0, 1}, Case{3, 1, 2, 2}, Case{5, 3, 2, 1}}) {
      Tensor x = rnd({2, 12, 13, 17}, dt, 11), w = rnd({20, 12, c.k, c.k}, dt, 12), b = rnd({20}, dt, 13);
      O::Conv2dAttrs ca{Dims{c.s, c.s}, Dims{c.p, c.p}, Dims{c.d, c.d}, 1, false};
      Tensor y = O::conv2d(x, w, b, ca);
      Tensor r = rnd(y.shape(), dt, 14);
      O::Conv2dFusedAttrs fa{ca.stride, ca.padding, ca.dilation, 1, false, Scalar(-0.25), Scalar(0.5)};
      Tensor got = O::conv2d_fused(x, w, b, r, fa);
      Tensor want = O::clamp(O::add(y, r), O::ClampAttrs{Scalar(-0.25), Scalar(0.5)});
      EXPECT_LT(max_diff(got, want), dt == DType::Float64 ? 1e-12 : 1e-5) << c.k << " " << c.s;
    }
  }
}

TEST(ConvFused, BadArgumentsAreErrors) {
  Tensor x = rnd({1, 4, 6, 6}, DType::Float32, 1), w = rnd({8, 4, 3, 3}, DType::Float32, 2);
  O::Conv2dFusedAttrs fa;
  EXPECT_THROW(O::conv2d_fused(x, w, Tensor(), rnd({1, 8, 5, 5}, DType::Float32, 3), fa), Error);  // residual shape
  EXPECT_THROW(O::conv2d_fused(x, w, Tensor(), rnd({1, 8, 4, 4}, DType::Float64, 3), fa), Error);  // residual dtype
  fa.min = Scalar(2.0);
  fa.max = Scalar(1.0);
  EXPECT_THROW(O::conv2d_fused(x, w, Tensor(), Tensor(), fa), Error);  // min > max
}
