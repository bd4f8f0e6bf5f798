// Autograd: tape-based reverse mode recorded by the dispatcher (see docs/design/autograd.md).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor/tensor.h"

namespace heron {
class OpCtx;
namespace autograd {

class Node;

// Called with the leaf once its .grad is final for the current backward() (see
// add_post_accumulate_grad_hook).
using PostAccumulateGradHook = std::function<void(const Tensor& leaf)>;

// Per-tensor autograd state, kept in TensorImpl::autograd_meta.
struct AutogradMeta {
  bool requires_grad = false;
  bool retains_grad = false;
  Tensor grad;
  std::shared_ptr<Node> grad_fn;        // set for results of recorded ops (non-leaves)
  uint32_t output_nr = 0;               // which output of grad_fn this tensor is
  std::weak_ptr<Node> grad_accumulator;  // leaves: the node that accumulates into `grad`
  std::vector<std::pair<int64_t, PostAccumulateGradHook>> post_accumulate_hooks;  // leaves only
};

AutogradMeta* meta(const Tensor& t);            // nullptr when the tensor never took part in autograd
AutogradMeta& ensure_meta(const Tensor& t);
inline bool requires_grad(const Tensor& t) {
  if (!t.defined()) return false;
  auto* m = static_cast<AutogradMeta*>(t.impl()->autograd_meta.get());
  return m && m->requires_grad;
}
void set_requires_grad(const Tensor& t, bool v);  // leaves only; floating dtypes only
bool is_leaf(const Tensor& t);
Tensor grad(const Tensor& t);                     // undefined when none
void set_grad(const Tensor& t, const Tensor& g);  // undefined g clears; shape/dtype/device checked
const char* grad_fn_name(const Tensor& t);        // nullptr for leaves
void retain_grad(const Tensor& t);
// Post-accumulate-grad hooks (leaves that require grad): during backward(), after the engine has
// accumulated this backward's gradient into the leaf's .grad (the leaf's accumulator node runs once,
// when every gradient flowing into it has arrived), the hooks run in registration order on the
// thread running backward(). They do not run for autograd::grad() (which leaves .grad alone) nor for
// a leaf that received no gradient. A hook that throws aborts the backward pass with its error.
// Returns an id for remove_post_accumulate_grad_hook (which returns false for an unknown id).
int64_t add_post_accumulate_grad_hook(const Tensor& leaf, PostAccumulateGradHook hook);
bool remove_post_accumulate_grad_hook(const Tensor& leaf, int64_t id);
// A new tensor sharing t's data, outside the graph.
Tensor detach(const Tensor& t);
// A new TensorImpl over the same storage and geometry, with no autograd state.
Tensor alias(const Tensor& t);

// Grad mode and anomaly mode are thread-local, like PyTorch's.
bool grad_mode();
void set_grad_mode(bool enabled);
bool anomaly_mode();
void set_anomaly_mode(bool enabled);
struct NoGradGuard {
  bool prev;
  NoGradGuard() : prev(grad_mode()) { set_grad_mode(false); }
  ~NoGradGuard() { set_grad_mode(prev); }
};

// Storage version counters: bumped by in-place ops; saved tensors check them at backward.
uint32_t version(const Tensor& t);
void bump_version(const Tensor& t);

// Called by the dispatcher.
inline bool any_requires_grad(const Tensor* ts, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (requires_grad(ts[i])) return true;
  return false;
}
void check_inplace(int op_id, const OpCtx& ctx);     // throws when an in-place op would break the graph
void record(int op_id, OpCtx& ctx, const void* attrs);  // attaches a node to ctx's outputs
void check_anomaly_forward(int op_id, const OpCtx& ctx);

// Reverse mode. `grads[i]` may be undefined for a scalar root (then 1).
void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, bool retain_graph);
// Gradients of roots w.r.t. inputs, without touching .grad. Undefined where an input is unused
// (an error unless allow_unused).
std::vector<Tensor> grad(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads,
                         const std::vector<Tensor>& inputs, bool retain_graph, bool allow_unused);

// ---------------------------------------------------------------- formulas (generated)
struct GradCtx {
  const std::vector<Tensor>& inputs;   // saved inputs (undefined when the formula does not use one)
  const std::vector<Tensor>& results;  // saved outputs (empty when unused)
  std::vector<Tensor>& grads;          // one per output; zeros where an output received none
  const void* attrs;
  const std::vector<bool>& needs;      // per (flattened) input
  const std::vector<Dims>& in_shapes;
  const std::vector<DType>& in_dtypes;
  const std::vector<Device>& in_devices;
  size_t n_fixed;                      // fixed inputs; the rest are the variadic list
};
struct GradFormula {
  // Writes one gradient per flattened input into out (sized by the engine; leave undefined for none).
  void (*backward)(GradCtx& g, std::vector<Tensor>& out);
  std::shared_ptr<void> (*copy_attrs)(const void* attrs);
  uint64_t save_inputs;  // bit i: save fixed input i; bit 63: save the variadic list
  bool save_results;
};
// nullptr for ops that are not differentiable.
const GradFormula* formula(int op_id);

}  // namespace autograd
}  // namespace heron
