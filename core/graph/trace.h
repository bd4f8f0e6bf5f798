// Tracing through the dispatcher: while a Tracer is active on a thread, every op call on that
// thread is appended to a graph (any language can trace, since every op goes through run_impl).
#pragma once
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/graph/graph.h"

namespace heron {
class OpCtx;
namespace graph {

// Typed attribute struct of op `op_id` -> AttrValues in schema order (generated).
std::vector<AttrValue> attrs_to_values(int op_id, const void* attrs);

class Tracer {
 public:
  Tracer();
  ~Tracer();
  // Declares a graph input (the tensor the traced function will receive).
  void add_input(const Tensor& t, const std::string& name);
  // Names a constant (e.g. a parameter) that may be captured: it becomes an initializer with this name.
  void name_constant(const Tensor& t, const std::string& name);
  // Called by the dispatcher after an op ran.
  void record(int op_id, OpCtx& ctx, const void* attrs);
  // Finishes: outputs (must be values produced by traced ops, or inputs), with their names.
  // dynamic_batch marks dim 0 of every input symbolic and re-infers shapes.
  bool busy = false;  // set while an op runs: its inner op calls are not traced
  Graph finish(const std::vector<Tensor>& outputs, const std::vector<std::string>& names, bool dynamic_batch);

 private:
  int32_t value_of(const Tensor& t, const char* op);
  Graph g_;
  std::unordered_map<const TensorImpl*, int32_t> ids_;
  std::unordered_map<const TensorImpl*, std::string> const_names_;
  std::vector<Tensor> keep_;  // every traced tensor stays alive, so no address is reused mid-trace
  std::unordered_map<std::string, int> op_counts_;
  Tracer* prev_ = nullptr;
  bool finished_ = false;
};

// The tracer active on this thread (nullptr when none). A Tracer makes itself active on
// construction and restores the previous one on destruction.
Tracer* active_tracer();

}  // namespace graph
}  // namespace heron
