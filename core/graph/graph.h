// The graph IR ([deploy]): what tracing captures, what .heron files hold, what the runtime runs.
//
// A Graph is a list of nodes in topological order over numbered values. Every value has a name,
// a dtype and a shape whose entries may be -1 (a symbolic dim, e.g. the batch). Graph inputs and
// outputs are values with user-facing names; initializers are values bound to constant tensors
// (weights). Node attributes are typed and stored in the op's schema order, so a node runs through
// the same generated unpacking as heron_op_call.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/tensor/tensor.h"

namespace heron {
namespace graph {

// A typed attribute value (the ABI's heron_attr kinds, owning its data).
struct AttrValue {
  enum Kind : int32_t { Default = 0, None = 1, Int = 2, Float = 3, Bool = 4, String = 5, Ints = 6, Floats = 7, Dtype = 8 };
  Kind kind = Default;
  int64_t i = 0;
  double f = 0.0;
  std::string s;
  std::vector<int64_t> ints;
  std::vector<double> floats;
  bool operator==(const AttrValue& o) const {
    return kind == o.kind && i == o.i && f == o.f && s == o.s && ints == o.ints && floats == o.floats;
  }
};

struct Value {
  std::string name;
  DType dtype = DType::Float32;
  std::vector<int64_t> shape;  // -1 = symbolic
  bool wrapped_number = false;  // a captured Python/JS number: keeps its weak role in type promotion
};

struct Node {
  std::string name;               // unique, e.g. "conv2d_3"
  std::string op;                 // schema op name
  std::vector<int32_t> inputs;    // value ids; -1 for an absent optional input
  std::vector<int32_t> outputs;   // value ids
  std::vector<AttrValue> attrs;   // schema order, one per attribute of the op
};

struct Graph {
  std::vector<Value> values;
  std::vector<Node> nodes;
  std::vector<int32_t> inputs;
  std::vector<int32_t> outputs;
  std::map<int32_t, Tensor> initializers;  // value id -> constant

  int32_t add_value(std::string name, DType dt, std::vector<int64_t> shape) {
    values.push_back({std::move(name), dt, std::move(shape)});
    return static_cast<int32_t>(values.size() - 1);
  }
  // Structural and semantic checks (ops known, attribute kinds match the schema, ids in range,
  // every value defined once before use, no cycles, inputs/outputs/initializers consistent).
  // Throws heron::Error naming the node, attribute or value.
  void validate() const;
  // Recomputes every non-input value's dtype and shape by running the ops on meta shapes
  // (symbolic dims propagated). Throws naming the node whose shapes do not fit.
  void infer_shapes();
  // Renumbers values so that only used ones remain (inputs first, in order of first use).
  void compact();
  // A readable text form, one line per node:  %3 = conv2d(%0, %w1, %b1; stride=[1, 1], ...) : float32[N, 16, 26, 26]
  std::string to_text() const;
};

// Runs g eagerly, node by node (the reference for the runtime; also what shape inference uses).
std::vector<Tensor> execute(const Graph& g, const std::vector<Tensor>& inputs);

}  // namespace graph
}  // namespace heron
