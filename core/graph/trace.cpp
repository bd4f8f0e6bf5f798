#include "core/graph/trace.h"

#include <algorithm>

#include "core/ops/dispatcher.h"

namespace heron {
namespace graph {

namespace {
thread_local Tracer* t_tracer = nullptr;
std::vector<int64_t> dims_of(const Tensor& t) { return std::vector<int64_t>(t.shape().begin(), t.shape().end()); }
}  // namespace

Tracer* active_tracer() { return t_tracer; }

Tracer::Tracer() : prev_(t_tracer) { t_tracer = this; }
Tracer::~Tracer() { t_tracer = prev_; }

void Tracer::add_input(const Tensor& t, const std::string& name) {
  if (!t.defined()) throw Error(ErrorCode::NullHandle, "trace: input '" + name + "' is undefined");
  if (ids_.count(t.impl()))
    throw Error(ErrorCode::InvalidArgument, "trace: the same tensor is given as two inputs ('" + name + "')");
  int32_t id = g_.add_value(name, t.dtype(), dims_of(t));
  g_.inputs.push_back(id);
  ids_[t.impl()] = id;
  keep_.push_back(t);
}

void Tracer::name_constant(const Tensor& t, const std::string& name) {
  if (t.defined()) {
    const_names_[t.impl()] = name;
    keep_.push_back(t);
  }
}

int32_t Tracer::value_of(const Tensor& t, const char* op) {
  auto it = ids_.find(t.impl());
  if (it != ids_.end()) return it->second;
  // A tensor the trace did not produce: a constant (weights, buffers, Python numbers).
  std::string name;
  auto cn = const_names_.find(t.impl());
  if (cn != const_names_.end()) name = cn->second;
  else name = str_cat(t.is_wrapped_number() ? "scalar_" : "const_", g_.initializers.size());
  int32_t id = g_.add_value(name, t.dtype(), dims_of(t));
  g_.values[id].wrapped_number = t.is_wrapped_number();
  // Own a contiguous copy: the graph must not change when the caller later mutates the tensor.
  g_.initializers[id] = t.clone();
  ids_[t.impl()] = id;
  keep_.push_back(t);
  (void)op;
  return id;
}

void Tracer::record(int op_id, OpCtx& ctx, const void* attrs) {
  if (finished_) return;
  const OpInfo& op = ctx.op();
  Node n;
  n.op = op.name;
  n.name = str_cat(op.name, "_", op_counts_[op.name]++);
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    const Tensor& t = ctx.in(i);
    n.inputs.push_back(t.defined() ? value_of(t, op.name) : -1);
  }
  n.attrs = attrs_to_values(op_id, attrs);
  for (size_t j = 0; j < ctx.outputs.size(); ++j) {
    Tensor& o = ctx.outputs[j];
    // An op that returned one of its inputs: give the output its own identity in the graph.
    for (size_t i = 0; i < ctx.num_inputs(); ++i)
      if (ctx.in(i).defined() && ctx.in(i).impl() == o.impl()) {
        o = Tensor::make(o.storage(), o.dtype(), o.shape(), o.strides(), o.offset());
        break;
      }
    int32_t id = g_.add_value(str_cat(n.name, op.n_outputs > 1 || op.variadic_output ? str_cat(":", j) : ""),
                              o.dtype(), dims_of(o));
    ids_[o.impl()] = id;
    keep_.push_back(o);
    n.outputs.push_back(id);
  }
  g_.nodes.push_back(std::move(n));
}

Graph Tracer::finish(const std::vector<Tensor>& outputs, const std::vector<std::string>& names, bool dynamic_batch) {
  if (names.size() != outputs.size())
    throw Error(ErrorCode::InvalidArgument, str_cat("trace: ", outputs.size(), " outputs but ", names.size(), " names"));
  for (size_t i = 0; i < outputs.size(); ++i) {
    auto it = ids_.find(outputs[i].impl());
    if (it == ids_.end())
      throw Error(ErrorCode::InvalidArgument,
                  str_cat("trace: output '", names[i], "' was not computed from the traced inputs"));
    if (std::find(g_.outputs.begin(), g_.outputs.end(), it->second) != g_.outputs.end())
      throw Error(ErrorCode::InvalidArgument, str_cat("trace: output '", names[i], "' is given twice"));
    g_.outputs.push_back(it->second);
    g_.values[it->second].name = names[i];
  }
  // Drop nodes whose results no output needs (e.g. a max_pool2d's unused indices stay, a
  // side computation does not).
  std::vector<bool> live(g_.values.size(), false);
  for (int32_t o : g_.outputs) live[o] = true;
  std::vector<Node> kept;
  for (auto it = g_.nodes.rbegin(); it != g_.nodes.rend(); ++it) {
    bool needed = false;
    for (int32_t o : it->outputs) needed = needed || live[o];
    if (!needed) continue;
    for (int32_t i : it->inputs)
      if (i >= 0) live[i] = true;
    kept.push_back(*it);
  }
  std::reverse(kept.begin(), kept.end());
  g_.nodes = std::move(kept);
  for (auto it = g_.initializers.begin(); it != g_.initializers.end();) {
    if (!live[it->first]) it = g_.initializers.erase(it);
    else ++it;
  }
  finished_ = true;  // shape inference below runs ops: they must not be recorded
  Graph out = std::move(g_);
  out.compact();
  if (dynamic_batch) {
    for (int32_t i : out.inputs)
      if (!out.values[i].shape.empty()) out.values[i].shape[0] = -1;
    out.infer_shapes();
  }
  out.validate();
  return out;
}

}  // namespace graph
}  // namespace heron
