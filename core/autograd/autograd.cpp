// The autograd engine: metadata, recording (called by the dispatcher) and reverse-mode execution.
#include "core/autograd/autograd.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <queue>
#include <unordered_map>

#include "core/ops/dispatcher.h"
#include "core/ops/generated/ops_gen.h"

namespace heron {
namespace autograd {

namespace {
thread_local bool t_grad_mode = true;
thread_local bool t_anomaly = false;
std::atomic<uint64_t> g_seq{0};
std::mutex g_accumulate_mutex;  // leaves shared by graphs running on several threads

bool is_float(DType d) {
  return d == DType::Float32 || d == DType::Float64 || d == DType::Float16 || d == DType::BFloat16;
}
}  // namespace

struct Edge {
  std::shared_ptr<Node> fn;
  uint32_t nr = 0;
};

class Node {
 public:
  virtual ~Node() = default;
  virtual const char* name() const = 0;
  // grads: one per output (undefined where none arrived). Returns one gradient per edge.
  virtual std::vector<Tensor> apply(std::vector<Tensor>& grads, bool retain_graph) = 0;
  virtual bool is_accumulator() const { return false; }
  struct OutMeta { Dims shape; DType dtype; Device device; };
  std::vector<Edge> next;
  std::vector<OutMeta> outs;
  // Non-leaf outputs whose .grad the user asked to keep (retain_grad).
  std::vector<std::pair<uint32_t, std::weak_ptr<void>>> retained;
  uint64_t seq = g_seq.fetch_add(1, std::memory_order_relaxed);
};

bool grad_mode() { return t_grad_mode; }
void set_grad_mode(bool e) { t_grad_mode = e; }
bool anomaly_mode() { return t_anomaly; }
void set_anomaly_mode(bool e) { t_anomaly = e; }

uint32_t version(const Tensor& t) { return t.storage()->version(); }
void bump_version(const Tensor& t) {
  if (t.defined()) t.storage()->bump_version();
}

AutogradMeta* meta(const Tensor& t) {
  return t.defined() ? static_cast<AutogradMeta*>(t.impl()->autograd_meta.get()) : nullptr;
}
AutogradMeta& ensure_meta(const Tensor& t) {
  auto& slot = t.impl()->autograd_meta;
  if (!slot) slot = std::make_shared<AutogradMeta>();
  return *static_cast<AutogradMeta*>(slot.get());
}

Tensor alias(const Tensor& t) {
  Tensor a = Tensor::make(t.storage(), t.dtype(), t.shape(), t.strides(), t.offset());
  a.set_wrapped_number(t.is_wrapped_number());
  return a;
}
Tensor detach(const Tensor& t) { return alias(t); }

void set_requires_grad(const Tensor& t, bool v) {
  AutogradMeta* m = meta(t);
  if (m && m->grad_fn) {
    if (!v)
      throw Error(ErrorCode::InvalidArgument,
                  "requires_grad can only be turned off on leaf tensors; use detach() to get a tensor outside the graph");
    return;
  }
  if (v && !is_float(t.dtype()))
    throw Error(ErrorCode::TypeError,
                str_cat("only floating-point tensors can require gradients, got dtype ", dtype_name(t.dtype())));
  if (!v && !m) return;
  ensure_meta(t).requires_grad = v;
}

bool is_leaf(const Tensor& t) {
  AutogradMeta* m = meta(t);
  return !m || !m->grad_fn;
}

Tensor grad(const Tensor& t) {
  AutogradMeta* m = meta(t);
  return m ? m->grad : Tensor();
}

void set_grad(const Tensor& t, const Tensor& g) {
  if (!g.defined()) {
    if (AutogradMeta* m = meta(t)) m->grad = Tensor();
    return;
  }
  if (g.shape() != t.shape())
    throw Error(ErrorCode::InvalidArgument,
                str_cat("assigned grad has shape ", g.shape().str(), " but the tensor has shape ", t.shape().str()));
  if (g.dtype() != t.dtype())
    throw Error(ErrorCode::TypeError, str_cat("assigned grad has dtype ", dtype_name(g.dtype()), " but the tensor has dtype ",
                                              dtype_name(t.dtype())));
  if (g.device() != t.device())
    throw Error(ErrorCode::InvalidArgument, str_cat("assigned grad is on ", device_str(g.device()), " but the tensor is on ",
                                                    device_str(t.device())));
  ensure_meta(t).grad = detach(g);
}

const char* grad_fn_name(const Tensor& t) {
  AutogradMeta* m = meta(t);
  return m && m->grad_fn ? m->grad_fn->name() : nullptr;
}

void retain_grad(const Tensor& t) {
  AutogradMeta* m = meta(t);
  if (!m || !m->requires_grad)
    throw Error(ErrorCode::InvalidArgument, "retain_grad: the tensor does not require grad");
  if (!m->grad_fn || m->retains_grad) return;  // leaves keep their grad anyway
  m->retains_grad = true;
  m->grad_fn->retained.emplace_back(m->output_nr, std::weak_ptr<void>(t.impl()->autograd_meta));
}

int64_t add_post_accumulate_grad_hook(const Tensor& leaf, PostAccumulateGradHook hook) {
  if (!leaf.defined()) throw Error(ErrorCode::NullHandle, "register_post_accumulate_grad_hook: undefined tensor");
  if (!hook) throw Error(ErrorCode::InvalidArgument, "register_post_accumulate_grad_hook: empty hook");
  AutogradMeta* m = meta(leaf);
  if (!m || !m->requires_grad || m->grad_fn)
    throw Error(ErrorCode::InvalidArgument,
                "register_post_accumulate_grad_hook: only leaf tensors that require grad accumulate gradients");
  static std::atomic<int64_t> next_id{1};
  const int64_t id = next_id++;
  m->post_accumulate_hooks.emplace_back(id, std::move(hook));
  return id;
}

bool remove_post_accumulate_grad_hook(const Tensor& leaf, int64_t id) {
  AutogradMeta* m = leaf.defined() ? meta(leaf) : nullptr;
  if (!m) return false;
  auto& hs = m->post_accumulate_hooks;
  for (auto it = hs.begin(); it != hs.end(); ++it)
    if (it->first == id) {
      hs.erase(it);
      return true;
    }
  return false;
}

// ---------------------------------------------------------------- nodes
namespace {

// Makes g usable as a tensor's own .grad: contiguous, not shared with anything else.
Tensor owned_grad(const Tensor& g) {
  if (g.is_contiguous() && g.ref()->refcount() <= 2 && g.storage()->refcount() == 1) return detach(g);
  return g.clone();
}

void accumulate_into(AutogradMeta& m, const Tensor& g) {
  std::lock_guard<std::mutex> lock(g_accumulate_mutex);
  if (!m.grad.defined()) m.grad = owned_grad(g);
  else m.grad = ops::add(m.grad, g);
}

class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(const Tensor& var) : var_(var) {
    outs.push_back({var.shape(), var.dtype(), var.device()});
  }
  const char* name() const override { return "AccumulateGrad"; }
  bool is_accumulator() const override { return true; }
  std::vector<Tensor> apply(std::vector<Tensor>& grads, bool) override {
    if (!grads[0].defined()) return {};
    AutogradMeta& m = ensure_meta(var_);
    accumulate_into(m, grads[0]);
    if (!m.post_accumulate_hooks.empty()) {
      auto hooks = m.post_accumulate_hooks;  // a hook may remove itself (or others)
      for (auto& h : hooks) h.second(var_);
    }
    return {};
  }
 private:
  Tensor var_;  // the leaf (its meta holds only a weak pointer back)
};

// Sums g over the dims it was broadcast along so it has `shape`.
Tensor sum_to(const Tensor& g, const Dims& shape, const char* op) {
  if (g.shape() == shape) return g;
  const int64_t gd = g.dim(), sd = static_cast<int64_t>(shape.size());
  if (sd > gd)
    throw Error(ErrorCode::Runtime, str_cat(op, " backward: gradient of shape ", g.shape().str(),
                                            " cannot be reduced to the input shape ", shape.str()));
  Dims dims;
  for (int64_t i = 0; i < gd; ++i) {
    int64_t si = i - (gd - sd);
    if (si < 0) dims.push_back(i);
    else if (shape[si] == 1 && g.shape()[i] != 1) dims.push_back(i);
    else if (shape[si] != g.shape()[i])
      throw Error(ErrorCode::Runtime, str_cat(op, " backward: gradient of shape ", g.shape().str(),
                                              " cannot be reduced to the input shape ", shape.str()));
  }
  Tensor r = g;
  if (!dims.empty()) {
    ops::SumAttrs a;
    a.dim = dims;
    a.keepdim = true;
    r = ops::sum(g, a);
  }
  return r.reshape(shape);
}

std::string node_name(const char* op) {
  std::string s;
  bool up = true;
  for (const char* p = op; *p; ++p) {
    if (*p == '_') { up = true; continue; }
    s += up ? static_cast<char>(std::toupper(static_cast<unsigned char>(*p))) : *p;
    up = false;
  }
  return s + "Backward";
}

// "MulBackward" for op mul, computed once per op (not per recorded node).
const char* backward_name(int op_id) {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (int i = 0; i < num_ops(); ++i) v.push_back(node_name(op_by_id(i)->name));
    return v;
  }();
  return names[static_cast<size_t>(op_id)].c_str();
}

class OpNode final : public Node {
 public:
  int op_id = 0;
  const GradFormula* f = nullptr;
  std::shared_ptr<void> attrs;
  std::vector<Tensor> saved_inputs;
  std::vector<uint32_t> input_versions;
  std::vector<Tensor> saved_results;
  std::vector<uint32_t> result_versions;
  std::vector<Dims> in_shapes;
  std::vector<DType> in_dtypes;
  std::vector<Device> in_devices;
  std::vector<bool> needs;
  size_t n_fixed = 0;
  bool released = false;
  const char* name() const override { return backward_name(op_id); }

  void check_saved(const std::vector<Tensor>& ts, const std::vector<uint32_t>& vs, const char* what) const {
    for (size_t i = 0; i < ts.size(); ++i) {
      if (ts[i].defined() && version(ts[i]) != vs[i])
        throw Error(ErrorCode::InvalidArgument,
                    str_cat("one of the tensors needed for gradient computation (", what, " ", i, " of ", name(),
                            ") was modified by an in-place operation: saved at version ", vs[i], ", now at version ",
                            version(ts[i]), ". Use an out-of-place op, or clone() the tensor before modifying it."),
                    op_by_id(op_id)->name);
    }
  }

  std::vector<Tensor> apply(std::vector<Tensor>& grads, bool retain_graph) override {
    const char* opname = op_by_id(op_id)->name;
    if (released)
      throw Error(ErrorCode::InvalidArgument,
                  str_cat("trying to backward through the graph a second time (", name(),
                          " already freed its saved tensors). Specify retain_graph=True on the first backward call "
                          "if you need to backward through the graph again."),
                  opname);
    check_saved(saved_inputs, input_versions, "input");
    check_saved(saved_results, result_versions, "output");
    for (size_t i = 0; i < grads.size(); ++i)
      if (!grads[i].defined()) grads[i] = ops::zeros(ops::ZerosAttrs{outs[i].shape, outs[i].dtype, device_str(outs[i].device)});
    GradCtx ctx{saved_inputs, saved_results, grads, attrs.get(), needs, in_shapes, in_dtypes, in_devices, n_fixed};
    std::vector<Tensor> out(needs.size());
    try {
      f->backward(ctx, out);
    } catch (Error& e) {
      throw Error(e.code(), str_cat(name(), ": ", e.what()), opname);
    }
    for (size_t i = 0; i < out.size(); ++i) {
      if (!needs[i]) { out[i] = Tensor(); continue; }
      if (!out[i].defined()) continue;
      Tensor g = out[i];
      if (g.shape() != in_shapes[i]) g = sum_to(g, in_shapes[i], opname);
      if (g.dtype() != in_dtypes[i]) g = g.to(in_dtypes[i]);
      if (g.device() != in_devices[i]) g = g.to(in_devices[i]);
      out[i] = g;
    }
    if (!retain_graph) {
      released = true;
      saved_inputs.clear();
      saved_results.clear();
      attrs.reset();
    }
    return out;
  }
};

Edge gradient_edge(const Tensor& t) {
  AutogradMeta& m = ensure_meta(t);
  if (m.grad_fn) return {m.grad_fn, m.output_nr};
  std::shared_ptr<Node> acc = m.grad_accumulator.lock();
  if (!acc) {
    acc = std::make_shared<AccumulateGrad>(t);
    m.grad_accumulator = acc;
  }
  return {acc, 0};
}


bool all_finite(const Tensor& t) {
  if (!is_float(t.dtype()) || t.numel() == 0) return true;
  NoGradGuard ng;
  Tensor r = ops::all(ops::isfinite(t)).to(host_device());
  return *r.data<bool>();
}

}  // namespace

void check_inplace(int op_id, const OpCtx& ctx) {
  const OpInfo* op = op_by_id(op_id);
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    if (!requires_grad(ctx.in(i))) continue;
    const char* what = i == 0 ? "the tensor it modifies requires grad"
                              : "one of its inputs requires grad";
    throw Error(ErrorCode::InvalidArgument,
                str_cat(op->name, ": in-place operations are not recorded by autograd, and ", what,
                        ". Use the out-of-place form (e.g. where, index, scatter, concat), or run it under no_grad() "
                        "if it must not be differentiated."),
                op->name);
  }
}

void record(int op_id, OpCtx& ctx, const void* attrs) {
  const GradFormula* f = formula(op_id);
  if (!f) return;
  const OpInfo* op = op_by_id(op_id);
  const size_t n = ctx.num_inputs();
  auto node = std::make_shared<OpNode>();
  node->op_id = op_id;
  node->f = f;
  node->attrs = f->copy_attrs(attrs);
  node->n_fixed = op->variadic_input ? static_cast<size_t>(op->n_inputs) : n;
  node->needs.resize(n);
  node->next.resize(n);
  node->in_shapes.resize(n);
  node->in_dtypes.resize(n, DType::Float32);
  node->in_devices.resize(n);
  node->saved_inputs.resize(n);
  node->input_versions.resize(n, 0);
  bool any = false;
  for (size_t i = 0; i < n; ++i) {
    const Tensor& t = ctx.in(i);
    if (!t.defined()) continue;
    node->in_shapes[i] = t.shape();
    node->in_dtypes[i] = t.dtype();
    node->in_devices[i] = t.device();
    if (requires_grad(t)) {
      node->needs[i] = true;
      node->next[i] = gradient_edge(t);
      any = true;
    }
    bool save = i < node->n_fixed ? (f->save_inputs >> i) & 1 : (f->save_inputs >> 63) & 1;
    if (save) {
      node->saved_inputs[i] = t;
      node->input_versions[i] = version(t);
    }
  }
  if (!any) return;
  bool any_float_out = false;
  for (size_t j = 0; j < ctx.outputs.size(); ++j) {
    Tensor& o = ctx.outputs[j];
    if (!o.defined()) {
      node->outs.push_back({Dims{}, DType::Float32, host_device()});
      continue;
    }
    // An op that returned one of its inputs (cast to the same dtype, contiguous of a contiguous
    // tensor): the output must be a tensor of its own to carry its own history.
    for (size_t i = 0; i < n; ++i)
      if (ctx.in(i).defined() && ctx.in(i).impl() == o.impl()) { o = alias(o); break; }
    node->outs.push_back({o.shape(), o.dtype(), o.device()});
    if (is_float(o.dtype())) any_float_out = true;
  }
  if (!any_float_out) return;
  if (f->save_results) {
    for (size_t j = 0; j < ctx.outputs.size(); ++j) {
      Tensor& o = ctx.outputs[j];
      node->saved_results.push_back(o.defined() ? alias(o) : Tensor());
      node->result_versions.push_back(o.defined() ? version(o) : 0);
    }
  }
  for (size_t j = 0; j < ctx.outputs.size(); ++j) {
    Tensor& o = ctx.outputs[j];
    if (!o.defined() || !is_float(o.dtype())) continue;
    AutogradMeta& m = ensure_meta(o);
    m.requires_grad = true;
    m.grad_fn = node;
    m.output_nr = static_cast<uint32_t>(j);
  }
}

void check_anomaly_forward(int op_id, const OpCtx& ctx) {
  for (size_t i = 0; i < ctx.num_inputs(); ++i)
    if (ctx.in(i).defined() && !all_finite(ctx.in(i))) return;  // not the first to produce it
  for (size_t j = 0; j < const_cast<OpCtx&>(ctx).outputs.size(); ++j) {
    const Tensor& o = const_cast<OpCtx&>(ctx).outputs[j];
    if (o.defined() && !all_finite(o)) {
      const char* name = op_by_id(op_id)->name;
      throw Error(ErrorCode::Runtime,
                  str_cat("anomaly detected: op '", name, "' produced nan or inf in output ", j,
                          " from finite inputs"),
                  name);
    }
  }
}

// ---------------------------------------------------------------- execution
namespace {

struct Capture {
  Node* node;
  uint32_t nr;
  size_t slot;
};

void execute(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, bool retain_graph,
             const std::vector<Capture>* captures, std::vector<Tensor>* captured, bool accumulate) {
  NoGradGuard no_grad;
  if (grads.size() != roots.size())
    throw Error(ErrorCode::InvalidArgument,
                str_cat("backward: got ", roots.size(), " tensors but ", grads.size(), " gradients"));
  std::vector<Edge> root_edges;
  std::vector<Tensor> root_grads;
  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& t = roots[i];
    if (!t.defined()) throw Error(ErrorCode::NullHandle, str_cat("backward: tensor ", i, " is undefined"));
    if (!requires_grad(t))
      throw Error(ErrorCode::InvalidArgument,
                  str_cat("backward: tensor ", i,
                          " does not require grad and has no grad_fn (was it computed under no_grad, or from "
                          "tensors that do not require grad?)"));
    Tensor g = grads[i];
    if (!g.defined()) {
      if (t.numel() != 1)
        throw Error(ErrorCode::InvalidArgument,
                    str_cat("backward: grad can be implicitly created only for scalar outputs, but tensor ", i,
                            " has shape ", t.shape().str(), "; pass a gradient of the same shape"));
      g = ops::ones_like(t);
    } else {
      if (g.shape() != t.shape())
        throw Error(ErrorCode::InvalidArgument, str_cat("backward: gradient ", i, " has shape ", g.shape().str(),
                                                        " but the tensor has shape ", t.shape().str()));
      if (g.dtype() != t.dtype()) g = g.to(t.dtype());
      if (g.device() != t.device()) g = g.to(t.device());
    }
    root_edges.push_back(gradient_edge(t));
    root_grads.push_back(g);
  }
  // Dependencies: number of edges pointing at each node from nodes reachable from the roots.
  std::unordered_map<Node*, int> deps;
  std::unordered_map<Node*, std::shared_ptr<Node>> keep;
  std::vector<Node*> stack;
  for (auto& e : root_edges)
    if (keep.emplace(e.fn.get(), e.fn).second) stack.push_back(e.fn.get());
  while (!stack.empty()) {
    Node* nd = stack.back();
    stack.pop_back();
    for (auto& e : nd->next) {
      if (!e.fn) continue;
      deps[e.fn.get()]++;
      if (keep.emplace(e.fn.get(), e.fn).second) stack.push_back(e.fn.get());
    }
  }
  std::unordered_map<Node*, std::vector<Tensor>> buffers;
  auto add_to = [&](Node* nd, uint32_t nr, const Tensor& g) {
    auto& b = buffers[nd];
    if (b.size() < nd->outs.size()) b.resize(nd->outs.size());
    if (!b[nr].defined()) b[nr] = g;
    else b[nr] = ops::add(b[nr], g);
  };
  for (size_t i = 0; i < root_edges.size(); ++i) add_to(root_edges[i].fn.get(), root_edges[i].nr, root_grads[i]);
  auto cmp = [](Node* a, Node* b) { return a->seq < b->seq; };
  std::priority_queue<Node*, std::vector<Node*>, decltype(cmp)> ready(cmp);
  for (auto& kv : keep)
    if (deps[kv.first] == 0) ready.push(kv.first);
  while (!ready.empty()) {
    Node* nd = ready.top();
    ready.pop();
    std::vector<Tensor> g = std::move(buffers[nd]);
    buffers.erase(nd);
    g.resize(nd->outs.size());
    if (captures)
      for (auto& c : *captures)
        if (c.node == nd && g[c.nr].defined()) {
          Tensor& slot = (*captured)[c.slot];
          slot = slot.defined() ? ops::add(slot, g[c.nr]) : g[c.nr];
        }
    if (accumulate) {
      for (auto& r : nd->retained) {
        auto m = r.second.lock();
        if (m && g[r.first].defined()) accumulate_into(*static_cast<AutogradMeta*>(m.get()), g[r.first]);
      }
    }
    std::vector<Tensor> out;
    if (!nd->is_accumulator() || accumulate) out = nd->apply(g, retain_graph);
    if (anomaly_mode()) {
      bool in_ok = true;
      for (auto& t : g) in_ok = in_ok && (!t.defined() || all_finite(t));
      for (size_t i = 0; in_ok && i < out.size(); ++i)
        if (out[i].defined() && !all_finite(out[i]))
          throw Error(ErrorCode::Runtime, str_cat("anomaly detected: function '", nd->name(),
                                                  "' returned nan or inf values in its gradient ", i));
    }
    for (size_t i = 0; i < nd->next.size(); ++i) {
      const Edge& e = nd->next[i];
      if (!e.fn) continue;
      if (i < out.size() && out[i].defined()) add_to(e.fn.get(), e.nr, out[i]);
      if (--deps[e.fn.get()] == 0) ready.push(e.fn.get());
    }
  }
}

}  // namespace

void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, bool retain_graph) {
  execute(roots, grads, retain_graph, nullptr, nullptr, true);
}

std::vector<Tensor> grad(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads,
                         const std::vector<Tensor>& inputs, bool retain_graph, bool allow_unused) {
  std::vector<Capture> caps;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    if (!t.defined()) throw Error(ErrorCode::NullHandle, str_cat("grad: input ", i, " is undefined"));
    if (!requires_grad(t))
      throw Error(ErrorCode::InvalidArgument, str_cat("grad: input ", i, " does not require grad"));
    Edge e = gradient_edge(t);
    caps.push_back({e.fn.get(), e.nr, i});
  }
  std::vector<Tensor> out(inputs.size());
  execute(roots, grads, retain_graph, &caps, &out, false);
  for (size_t i = 0; i < out.size(); ++i) {
    if (!out[i].defined() && !allow_unused)
      throw Error(ErrorCode::InvalidArgument,
                  str_cat("grad: input ", i,
                          " was not used to compute the outputs (pass allow_unused=True to get None for it)"));
    if (out[i].defined()) out[i] = owned_grad(out[i]);
  }
  return out;
}

}  // namespace autograd
}  // namespace heron
