// Tracing through the dispatcher: the captured graph validates, prints, re-executes to the same
// values as eager, marks the batch dim symbolic, and refuses inconsistent graphs.
#include <gtest/gtest.h>

#include <random>

#include "core/graph/graph.h"
#include "core/graph/trace.h"
#include "core/ops/generated/ops_gen.h"

using namespace heron;
namespace O = heron::ops;
namespace G = heron::graph;

namespace {
Tensor randn(const Dims& shape, uint32_t seed) {
  Tensor t = Tensor::empty(shape, DType::Float32, host_device());
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(g);
  return t;
}
Tensor model(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& lw) {
  O::Conv2dAttrs ca;
  ca.padding = Dims{1, 1};
  Tensor h = O::relu(O::conv2d(x, w, b, ca));
  O::MaxPool2dAttrs pa;
  pa.kernel_size = Dims{2, 2};
  h = O::max_pool2d(h, pa)[0];
  h = O::flatten(h, O::FlattenAttrs{1, -1});
  return O::softmax(O::linear(h, lw, Tensor()), O::SoftmaxAttrs{1, std::nullopt});
}
void expect_equal(const Tensor& a, const Tensor& b) {
  ASSERT_EQ(a.shape(), b.shape());
  Tensor ac = a.contiguous(), bc = b.contiguous();
  for (int64_t i = 0; i < a.numel(); ++i) EXPECT_FLOAT_EQ(ac.data<float>()[i], bc.data<float>()[i]);
}
}  // namespace

TEST(Trace, CapturesAndReplaysAConvNet) {
  Tensor w = randn({4, 1, 3, 3}, 1), b = randn({4}, 2), lw = randn({3, 4 * 4 * 4}, 3);
  Tensor x = randn({2, 1, 8, 8}, 4);
  G::Graph g;
  Tensor eager;
  {
    G::Tracer tr;
    tr.add_input(x, "image");
    tr.name_constant(w, "conv.weight");
    eager = model(x, w, b, lw);
    g = tr.finish({eager}, {"probs"}, /*dynamic_batch=*/true);
  }
  EXPECT_EQ(G::active_tracer(), nullptr);
  EXPECT_EQ(g.nodes.size(), 6u);  // conv2d relu max_pool2d flatten linear softmax
  EXPECT_EQ(g.initializers.size(), 3u);
  EXPECT_EQ(g.values[g.inputs[0]].shape, (std::vector<int64_t>{-1, 1, 8, 8}));
  EXPECT_EQ(g.values[g.outputs[0]].shape, (std::vector<int64_t>{-1, 3}));
  std::string text = g.to_text();
  EXPECT_NE(text.find("%conv.weight"), std::string::npos) << text;
  EXPECT_NE(text.find("conv2d("), std::string::npos) << text;
  EXPECT_NE(text.find("float32[N, 3]"), std::string::npos) << text;
  expect_equal(G::execute(g, {x})[0], eager);
  Tensor x5 = randn({5, 1, 8, 8}, 5);
  expect_equal(G::execute(g, {x5})[0], model(x5, w, b, lw));
}

TEST(Trace, ValidateRejectsBrokenGraphs) {
  Tensor x = randn({3}, 1);
  G::Graph g;
  {
    G::Tracer tr;
    tr.add_input(x, "x");
    Tensor y = O::exp(O::neg(x));
    g = tr.finish({y}, {"y"}, false);
  }
  g.validate();
  G::Graph bad = g;
  bad.nodes[0].op = "no_such_op";
  EXPECT_THROW(bad.validate(), Error);
  bad = g;
  std::swap(bad.nodes[0], bad.nodes[1]);  // use before definition
  EXPECT_THROW(bad.validate(), Error);
  bad = g;
  bad.nodes[1].inputs[0] = 99;
  EXPECT_THROW(bad.validate(), Error);
  bad = g;
  bad.nodes[0].attrs.push_back(G::AttrValue{});
  EXPECT_THROW(bad.validate(), Error);
}

TEST(Trace, OutputNotFromInputsIsAnError) {
  Tensor x = randn({3}, 1), c = randn({3}, 2);
  G::Tracer tr;
  tr.add_input(x, "x");
  EXPECT_THROW(tr.finish({c}, {"c"}, false), Error);
}
