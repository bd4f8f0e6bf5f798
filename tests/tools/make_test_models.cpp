// Writes the small .heron models that the C API and heron-run tests use (tests/capi, tests/python),
// built by hand as graph::Graph. Weights follow closed formulas so that the tests can recompute
// them in numpy.  Usage: heron_make_test_models DIR
#include <cmath>
#include <cstdio>
#include <string>

#include "core/graph/model_io.h"
#include "core/ops/dispatcher.h"

using namespace heron;

namespace {

// w[k] = sin(0.37 * k + seed) / 2 over the row-major positions.
Tensor formula(const Dims& shape, double seed) {
  Tensor t = Tensor::empty(shape, DType::Float32, host_device());
  float* p = t.data<float>();
  for (int64_t k = 0; k < t.numel(); ++k) p[k] = static_cast<float>(std::sin(0.37 * static_cast<double>(k) + seed) / 2);
  return t;
}

// mlp.heron: x float32[?, 8] -> linear(w1[16, 8], b1[16]) -> relu -> "h" -> linear(w2[4, 16], no bias) -> "y".
// Outputs: y, h. Seeds: w1 1.0, b1 2.0, w2 3.0.
graph::Graph mlp() {
  graph::Graph g;
  int x = g.add_value("x", DType::Float32, {-1, 8});
  int w1 = g.add_value("w1", DType::Float32, {16, 8});
  int b1 = g.add_value("b1", DType::Float32, {16});
  int w2 = g.add_value("w2", DType::Float32, {4, 16});
  int l1 = g.add_value("l1", DType::Float32, {-1, 16});
  int h = g.add_value("h", DType::Float32, {-1, 16});
  int y = g.add_value("y", DType::Float32, {-1, 4});
  g.inputs = {x};
  g.initializers[w1] = formula({16, 8}, 1.0);
  g.initializers[b1] = formula({16}, 2.0);
  g.initializers[w2] = formula({4, 16}, 3.0);
  g.nodes.push_back({"linear_0", "linear", {x, w1, b1}, {l1}, {}});
  g.nodes.push_back({"relu_1", "relu", {l1}, {h}, {}});
  g.nodes.push_back({"linear_2", "linear", {h, w2, -1}, {y}, {}});
  g.outputs = {y, h};
  return g;
}

// two_inputs.heron: a float64[2, 3], b float64[2, 3] -> add(a, b, alpha=2) -> "sum" (no weights).
graph::Graph two_inputs() {
  graph::Graph g;
  int a = g.add_value("a", DType::Float64, {2, 3});
  int b = g.add_value("b", DType::Float64, {2, 3});
  int s = g.add_value("sum", DType::Float64, {2, 3});
  g.inputs = {a, b};
  graph::AttrValue alpha;
  alpha.kind = graph::AttrValue::Float;
  alpha.f = 2.0;
  g.nodes.push_back({"add_0", "add", {a, b}, {s}, {alpha}});
  g.outputs = {s};
  return g;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: heron_make_test_models DIR\n");
    return 2;
  }
  std::string dir = argv[1];
  try {
    graph::save_model_file(mlp(), dir + "/mlp.heron");
    graph::save_model_file(two_inputs(), dir + "/two_inputs.heron");
  } catch (const Error& e) {
    std::fprintf(stderr, "heron_make_test_models: %s\n", e.what());
    return 1;
  }
  return 0;
}
