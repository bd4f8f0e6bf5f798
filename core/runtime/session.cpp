#include "core/runtime/session.h"

#include <cstdlib>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/autograd/autograd.h"
#include "core/device/device.h"
#include "core/util/thread_pool.h"

namespace heron {
namespace runtime {

namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) r += ", ";
    r += s[i] < 0 ? std::string("?") : std::to_string(s[i]);
  }
  return r + "]";
}

const char* attr_kind_name(graph::AttrValue::Kind k) {
  switch (k) {
    case graph::AttrValue::Default: return "default";
    case graph::AttrValue::None: return "none";
    case graph::AttrValue::Int: return "int";
    case graph::AttrValue::Float: return "float";
    case graph::AttrValue::Bool: return "bool";
    case graph::AttrValue::String: return "string";
    case graph::AttrValue::Ints: return "ints";
    case graph::AttrValue::Floats: return "floats";
    case graph::AttrValue::Dtype: return "dtype";
  }
  return "unknown";
}

// Whether the dispatcher's unpacking accepts an attribute of kind k for type t (mirrors get_* in
// core/ops/dispatcher.cpp).
bool kind_fits(AttrType t, graph::AttrValue::Kind k) {
  using K = graph::AttrValue;
  switch (t) {
    case AttrType::Int: return k == K::Int || k == K::Bool || k == K::Float;
    case AttrType::Float: return k == K::Float || k == K::Int;
    case AttrType::Bool: return k == K::Bool || k == K::Int;
    case AttrType::Scalar: return k == K::Int || k == K::Float || k == K::Bool;
    case AttrType::String: return k == K::String;
    case AttrType::Device: return k == K::String;
    case AttrType::Ints: return k == K::Ints || k == K::Int;
    case AttrType::Floats: return k == K::Floats || k == K::Float || k == K::Ints;
    case AttrType::DType: return k == K::Dtype;
  }
  return false;
}

heron_attr to_abi(const graph::AttrValue& v) {
  heron_attr a{};
  switch (v.kind) {
    case graph::AttrValue::Default: a.kind = HERON_ATTR_DEFAULT; break;
    case graph::AttrValue::None: a.kind = HERON_ATTR_NONE; break;
    case graph::AttrValue::Int: a.kind = HERON_ATTR_INT; a.i = v.i; break;
    case graph::AttrValue::Float: a.kind = HERON_ATTR_FLOAT; a.f = v.f; break;
    case graph::AttrValue::Bool: a.kind = HERON_ATTR_BOOL; a.i = v.i != 0; break;
    case graph::AttrValue::String: a.kind = HERON_ATTR_STRING; a.i = static_cast<int64_t>(v.s.size()); a.p = v.s.data(); break;
    case graph::AttrValue::Ints: a.kind = HERON_ATTR_INTS; a.i = static_cast<int64_t>(v.ints.size()); a.p = v.ints.data(); break;
    case graph::AttrValue::Floats: a.kind = HERON_ATTR_FLOATS; a.i = static_cast<int64_t>(v.floats.size()); a.p = v.floats.data(); break;
    case graph::AttrValue::Dtype: a.kind = HERON_ATTR_DTYPE; a.i = v.i; break;
  }
  return a;
}

int64_t small_thread_id() {
  static std::atomic<int64_t> next{0};
  thread_local int64_t id = next.fetch_add(1);
  return id;
}

// Per-run accounting of the bytes held by node outputs: distinct storages, counted once each
// however many values view them; storages of model inputs and initializers are not counted. The
// tracker holds a reference to each counted storage, and a storage counts as freed only when that
// reference is the last one left (so the figure is what is really alive, not what the plan says).
class MemoryTracker {
 public:
  void external(const Tensor& t) {
    if (t.defined()) entries_[t.storage().get()].count = -1;
  }
  void add(const Tensor& t) {
    if (!t.defined()) return;
    Entry& e = entries_[t.storage().get()];
    if (e.count < 0) return;
    if (e.count++ == 0) {
      e.ref = t.storage();
      live_ += static_cast<int64_t>(t.storage()->nbytes());
      peak_ = std::max(peak_, live_);
    }
  }
  // Called after the run dropped its reference to a value viewing storage s.
  void drop(const Storage* s) {
    if (!s) return;
    auto it = entries_.find(s);
    if (it == entries_.end() || it->second.count < 0) return;
    if (--it->second.count == 0) {
      if (it->second.ref->refcount() == 1) live_ -= static_cast<int64_t>(s->nbytes());  // else still held elsewhere
      entries_.erase(it);
    }
  }
  int64_t peak() const { return peak_; }
 private:
  struct Entry {
    int64_t count = 0;
    Ref<Storage> ref;
  };
  std::unordered_map<const Storage*, Entry> entries_;
  int64_t live_ = 0, peak_ = 0;
};

}  // namespace

int64_t estimate_flops(const char* op, const Tensor* in, size_t n_in, const Tensor* out, size_t n_out) {
  if (n_out == 0 || !out[0].defined()) return 0;
  const int64_t on = out[0].numel();
  auto has = [&](size_t i, int64_t dims) { return n_in > i && in[i].defined() && in[i].dim() == dims; };
  if (!std::strcmp(op, "matmul") && n_in >= 2 && in[0].defined() && in[0].dim() >= 1) {
    return 2 * on * in[0].size(-1);
  }
  if (!std::strcmp(op, "linear") && has(1, 2)) {
    int64_t f = 2 * on * in[1].size(1);
    if (n_in > 2 && in[2].defined()) f += on;
    return f;
  }
  if ((!std::strcmp(op, "conv2d") || !std::strcmp(op, "conv2d_fused")) && has(1, 4)) {
    int64_t f = 2 * on * in[1].size(1) * in[1].size(2) * in[1].size(3);
    if (n_in > 2 && in[2].defined()) f += on;
    return f;
  }
  if (!std::strcmp(op, "conv1d") && has(1, 3)) {
    int64_t f = 2 * on * in[1].size(1) * in[1].size(2);
    if (n_in > 2 && in[2].defined()) f += on;
    return f;
  }
  if (!std::strcmp(op, "conv_transpose2d") && has(0, 4) && has(1, 4)) {
    // Every input element meets C_out/groups x kh x kw weights.
    int64_t f = 2 * in[0].numel() * in[1].size(1) * in[1].size(2) * in[1].size(3);
    if (n_in > 2 && in[2].defined()) f += on;
    return f;
  }
  return 0;
}

Session::Session(graph::Graph g, SessionOptions opts) : g_(std::move(g)), opts_(std::move(opts)) {
  created_ns_ = now_ns();
  device_ = DeviceRegistry::get().parse(opts_.device);
  if (opts_.threads < 0)
    throw Error(ErrorCode::InvalidArgument, str_cat("session: threads must be >= 0 (0 = keep the current pool), got ", opts_.threads));
  check_and_plan();  // checks the graph as given (the passes assume a well-formed one)
  if (opts_.optimize && device_impl(device_).is_host() && !std::getenv("HERON_NO_GRAPH_OPT")) {
    report_ = graph::optimize(g_);
    check_and_plan();
  }
  freeze_weights();
  if (opts_.threads > 0 && opts_.threads != get_num_threads()) set_num_threads(opts_.threads);
}

void Session::freeze_weights() {
  // Convolution weights on the host become the session's own frozen copies (kept packed for the
  // micro-kernel after the first run); weights the passes made are frozen already.
  if (device_impl(device_).is_host()) {
    for (const graph::Node& node : g_.nodes) {
      if ((node.op != "conv2d" && node.op != "conv2d_fused") || node.inputs.size() < 2 || node.inputs[1] < 0) continue;
      Tensor& w = init_values_[node.inputs[1]];
      if (!w.defined() || w.storage()->frozen()) continue;
      Tensor copy = w.clone();
      copy.storage()->freeze();
      w = copy;
    }
  }
}

void Session::check_and_plan() {
  steps_.clear();
  input_index_.clear();
  output_index_.clear();
  const int32_t nv = static_cast<int32_t>(g_.values.size());
  auto check_id = [&](int32_t id, const std::string& where) {
    if (id < 0 || id >= nv)
      throw Error(ErrorCode::InvalidArgument, str_cat("session: ", where, " refers to value ", id, ", out of range [0, ", nv, ")"));
  };
  std::vector<int32_t> producer(static_cast<size_t>(nv), -2);  // -2 undefined, -1 input/initializer, else node
  for (size_t i = 0; i < g_.inputs.size(); ++i) {
    int32_t v = g_.inputs[i];
    check_id(v, str_cat("model input ", i));
    if (producer[v] != -2) throw Error(ErrorCode::InvalidArgument, str_cat("session: value '", g_.values[v].name, "' is a model input twice"));
    producer[v] = -1;
    const std::string& name = g_.values[v].name;
    if (!input_index_.emplace(name, i).second)
      throw Error(ErrorCode::InvalidArgument, str_cat("session: two model inputs are named '", name, "'"));
  }
  init_values_.assign(static_cast<size_t>(nv), Tensor());
  for (const auto& [v, t] : g_.initializers) {
    check_id(v, "an initializer");
    if (producer[v] != -2)
      throw Error(ErrorCode::InvalidArgument, str_cat("session: initializer '", g_.values[v].name, "' is also a model input"));
    if (!t.defined()) throw Error(ErrorCode::InvalidArgument, str_cat("session: initializer '", g_.values[v].name, "' has no tensor"));
    const auto& val = g_.values[v];
    if (t.dtype() != val.dtype || t.shape().vec() != val.shape)
      throw Error(ErrorCode::InvalidArgument,
                  str_cat("session: initializer '", val.name, "' is ", dtype_name(t.dtype()), t.shape().str(), " but its value is declared ",
                          dtype_name(val.dtype), shape_str(val.shape)));
    producer[v] = -1;
    init_values_[v] = t.device() == device_ ? t : t.to(device_);
    if (val.wrapped_number) {  // a captured host number: its own handle, flagged, so promotion matches eager
      Tensor w = Tensor::make(init_values_[v].storage(), init_values_[v].dtype(), init_values_[v].shape(),
                              init_values_[v].strides(), init_values_[v].offset());
      w.set_wrapped_number(true);
      init_values_[v] = w;
    }
  }
  std::vector<int32_t> last_use(static_cast<size_t>(nv), -1);
  std::unordered_map<std::string, size_t> node_names;
  steps_.resize(g_.nodes.size());
  for (size_t n = 0; n < g_.nodes.size(); ++n) {
    const graph::Node& node = g_.nodes[n];
    const std::string where = str_cat("node '", node.name, "' (", node.op, ")");
    if (!node_names.emplace(node.name, n).second) throw Error(ErrorCode::InvalidArgument, str_cat("session: two nodes are named '", node.name, "'"));
    const OpInfo* op = find_op(node.op);
    if (!op) throw Error(ErrorCode::NotFound, str_cat("session: ", where, ": unknown op '", node.op, "'"));
    if (!get_impl(op->id)) throw Error(ErrorCode::NotImplemented, str_cat("session: ", where, ": op not implemented in this build"), op->name);
    size_t fixed = static_cast<size_t>(op->n_inputs);
    if (op->variadic_input ? node.inputs.size() < fixed : node.inputs.size() != fixed)
      throw Error(ErrorCode::InvalidArgument, str_cat("session: ", where, ": expected ", op->variadic_input ? "at least " : "", fixed,
                                                      " inputs, the node has ", node.inputs.size()));
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      int32_t v = node.inputs[k];
      if (v == -1) {
        if (!op->input_optional[k < fixed ? k : fixed])
          throw Error(ErrorCode::InvalidArgument, str_cat("session: ", where, ": input ", k, " is required but absent"));
        continue;
      }
      check_id(v, str_cat(where, " input ", k));
      if (producer[v] == -2)
        throw Error(ErrorCode::InvalidArgument, str_cat("session: ", where, ": input ", k, " '", g_.values[v].name,
                                                        "' is used before it is defined (nodes must be in topological order)"));
      last_use[v] = static_cast<int32_t>(n);
    }
    if (!op->variadic_output && node.outputs.size() != static_cast<size_t>(op->n_outputs))
      throw Error(ErrorCode::InvalidArgument, str_cat("session: ", where, ": the op has ", op->n_outputs, " outputs, the node lists ", node.outputs.size()));
    for (int32_t v : node.outputs) {
      check_id(v, str_cat(where, " output"));
      if (producer[v] != -2) throw Error(ErrorCode::InvalidArgument, str_cat("session: ", where, ": value '", g_.values[v].name, "' is defined twice"));
      producer[v] = static_cast<int32_t>(n);
      last_use[v] = static_cast<int32_t>(n);  // an unused output dies right after its node
    }
    if (node.attrs.size() > static_cast<size_t>(op->n_attrs))
      throw Error(ErrorCode::InvalidArgument, str_cat("session: ", where, ": ", node.attrs.size(), " attributes, the op has ", op->n_attrs));
    Step& s = steps_[n];
    s.op = op;
    s.inputs = node.inputs;
    s.outputs = node.outputs;
    for (size_t k = 0; k < node.attrs.size(); ++k) {
      const AttrInfo& ai = op->attrs[k];
      auto kind = node.attrs[k].kind;
      bool ok = kind == graph::AttrValue::Default ? (ai.has_default || ai.optional)
                : kind == graph::AttrValue::None  ? ai.optional
                                                  : kind_fits(ai.type, kind);
      if (!ok)
        throw Error(ErrorCode::TypeError, str_cat("session: ", where, ": attribute '", ai.name, "' cannot be ", attr_kind_name(kind)), op->name);
      s.attrs.push_back(to_abi(node.attrs[k]));
    }
  }
  is_output_.assign(static_cast<size_t>(nv), 0);
  for (size_t i = 0; i < g_.outputs.size(); ++i) {
    int32_t v = g_.outputs[i];
    check_id(v, str_cat("model output ", i));
    if (producer[v] == -2) throw Error(ErrorCode::InvalidArgument, str_cat("session: model output '", g_.values[v].name, "' is never computed"));
    is_output_[v] = 1;
    output_index_.emplace(g_.values[v].name, i);
  }
  for (int32_t v = 0; v < nv; ++v)
    if (last_use[v] >= 0 && !is_output_[v] && producer[v] >= 0) steps_[last_use[v]].free_after.push_back(v);
  // Inputs and initializers: the run drops its own reference after the last use too (the caller's
  // and the session's references keep them alive).
  for (int32_t v = 0; v < nv; ++v)
    if (last_use[v] >= 0 && !is_output_[v] && producer[v] == -1) steps_[last_use[v]].free_after.push_back(v);
}

std::string Session::describe_inputs() const {
  std::string r;
  for (size_t i = 0; i < g_.inputs.size(); ++i) {
    const auto& v = g_.values[g_.inputs[i]];
    if (i) r += ", ";
    r += str_cat("'", v.name, "': ", dtype_name(v.dtype), shape_str(v.shape));
  }
  return r.empty() ? "no inputs" : r;
}

std::vector<Tensor> Session::run(const std::vector<std::string>& input_names, const std::vector<Tensor>& inputs,
                                 const std::vector<std::string>& output_names, RunStats* stats) const {
  if (input_names.size() != inputs.size())
    throw Error(ErrorCode::InvalidArgument, str_cat("run: ", input_names.size(), " input names for ", inputs.size(), " tensors"));
  const int64_t t0 = now_ns();
  std::vector<Tensor> vals(init_values_);
  MemoryTracker mem;
  for (const Tensor& t : init_values_) mem.external(t);
  std::vector<char> bound(g_.inputs.size(), 0);
  for (size_t i = 0; i < inputs.size(); ++i) {
    auto it = input_index_.find(input_names[i]);
    if (it == input_index_.end())
      throw Error(ErrorCode::NotFound, str_cat("run: the model has no input named '", input_names[i], "'; it expects ", describe_inputs()));
    if (bound[it->second]) throw Error(ErrorCode::InvalidArgument, str_cat("run: input '", input_names[i], "' is given twice"));
    bound[it->second] = 1;
    const graph::Value& want = g_.values[g_.inputs[it->second]];
    const Tensor& t = inputs[i];
    if (!t.defined()) throw Error(ErrorCode::NullHandle, str_cat("run: input '", want.name, "' is NULL"));
    if (t.dtype() != want.dtype)
      throw Error(ErrorCode::TypeError, str_cat("run: input '", want.name, "' must be ", dtype_name(want.dtype), shape_str(want.shape), ", got ",
                                                dtype_name(t.dtype()), t.shape().str(), "; the model expects ", describe_inputs()));
    bool shape_ok = static_cast<size_t>(t.dim()) == want.shape.size();
    for (size_t d = 0; shape_ok && d < want.shape.size(); ++d) shape_ok = want.shape[d] < 0 || want.shape[d] == t.shape()[d];
    if (!shape_ok)
      throw Error(ErrorCode::InvalidArgument, str_cat("run: input '", want.name, "' must have shape ", shape_str(want.shape), " (? = any size), got ",
                                                      t.shape().str(), "; the model expects ", describe_inputs()));
    vals[g_.inputs[it->second]] = t.device() == device_ ? t : t.to(device_);
    mem.external(vals[g_.inputs[it->second]]);
  }
  for (size_t i = 0; i < bound.size(); ++i)
    if (!bound[i]) throw Error(ErrorCode::InvalidArgument, str_cat("run: missing input '", g_.values[g_.inputs[i]].name, "'; the model expects ", describe_inputs()));
  std::vector<size_t> out_pos;
  if (output_names.empty()) {
    for (size_t i = 0; i < g_.outputs.size(); ++i) out_pos.push_back(i);
  } else {
    for (const auto& name : output_names) {
      auto it = output_index_.find(name);
      if (it == output_index_.end()) {
        std::string list;
        for (size_t i = 0; i < g_.outputs.size(); ++i) list += str_cat(i ? ", '" : "'", g_.values[g_.outputs[i]].name, "'");
        throw Error(ErrorCode::NotFound, str_cat("run: the model has no output named '", name, "'; its outputs are ", list));
      }
      out_pos.push_back(it->second);
    }
  }

  const bool profile = opts_.profile;
  const bool host = device_impl(device_).is_host();
  RunProfile prof;
  if (profile) prof.nodes.reserve(steps_.size());
  autograd::NoGradGuard no_grad;
  std::vector<Tensor> ins;
  for (size_t n = 0; n < steps_.size(); ++n) {
    const Step& s = steps_[n];
    ins.clear();
    for (int32_t v : s.inputs) ins.push_back(v >= 0 ? vals[v] : Tensor());
    OpCtx ctx(s.op, ins.data(), ins.size());
    const int64_t start = profile ? now_ns() - t0 : 0;
    try {
      s.op->invoke(ctx, s.attrs.data(), s.attrs.size());
      if (ctx.outputs.size() != s.outputs.size())
        throw Error(ErrorCode::Runtime, str_cat("the op produced ", ctx.outputs.size(), " outputs, the node lists ", s.outputs.size()));
      if (profile && !host) device_impl(device_).synchronize(device_.index);
    } catch (const Error& e) {
      const auto& node = g_.nodes[n];
      throw Error(e.code(), str_cat("run: node '", node.name, "' (", node.op, "): ", e.what()), s.op->name);
    }
    if (profile) {
      NodeProfile np;
      np.node = static_cast<int32_t>(n);
      np.start_ns = start;
      np.end_ns = now_ns() - t0;
      for (const Tensor& t : ins) {
        np.input_shapes.push_back(t.defined() ? t.shape().vec() : std::vector<int64_t>{});
        if (t.defined()) np.bytes += static_cast<int64_t>(t.nbytes());
      }
      std::vector<Tensor> outs;
      for (size_t k = 0; k < ctx.outputs.size(); ++k) {
        const Tensor& t = ctx.outputs[k];
        np.output_shapes.push_back(t.defined() ? t.shape().vec() : std::vector<int64_t>{});
        if (t.defined()) np.bytes += static_cast<int64_t>(t.nbytes());
        outs.push_back(t);
      }
      np.flops = estimate_flops(s.op->name, ins.data(), ins.size(), outs.data(), outs.size());
      prof.nodes.push_back(std::move(np));
    }
    for (size_t k = 0; k < s.outputs.size(); ++k) {
      vals[s.outputs[k]] = std::move(ctx.outputs[k]);
      mem.add(vals[s.outputs[k]]);
    }
    ins.clear();
    for (int32_t v : s.free_after) {
      const Storage* st = vals[v].defined() ? vals[v].storage().get() : nullptr;
      vals[v] = Tensor();
      mem.drop(st);
    }
  }
  std::vector<Tensor> result;
  result.reserve(out_pos.size());
  for (size_t p : out_pos) result.push_back(vals[g_.outputs[p]]);
  vals.clear();

  const int64_t peak = mem.peak();
  last_peak_.store(peak);
  int64_t m = max_peak_.load();
  while (peak > m && !max_peak_.compare_exchange_weak(m, peak)) {}
  int64_t index = runs_.fetch_add(1);
  if (stats) stats->peak_bytes = peak;
  if (profile) {
    prof.index = index;
    prof.thread = small_thread_id();
    prof.start_ns = t0 - created_ns_;
    prof.duration_ns = now_ns() - t0;
    prof.peak_bytes = peak;
    std::lock_guard<std::mutex> lock(profile_mu_);
    profiles_.push_back(std::move(prof));
  }
  return result;
}

void Session::clear_profile() {
  std::lock_guard<std::mutex> lock(profile_mu_);
  profiles_.clear();
}

std::string Session::profile_json() const {
  using json = nlohmann::ordered_json;
  json j;
  j["format"] = "heron-profile";
  j["version"] = 1;
  json sess;
  sess["device"] = DeviceRegistry::get().to_string(device_);
  sess["threads"] = get_num_threads();
  sess["nodes"] = g_.nodes.size();
  sess["values"] = g_.values.size();
  int64_t init_bytes = 0;
  for (const Tensor& t : init_values_)
    if (t.defined()) init_bytes += static_cast<int64_t>(t.nbytes());
  sess["initializer_bytes"] = init_bytes;
  sess["arena_bytes"] = 0;  // no arena: intermediates are allocated per op and freed after their last use
  sess["peak_bytes"] = max_peak_.load();
  sess["runs"] = runs_.load();
  j["session"] = sess;
  json runs = json::array();
  {
    std::lock_guard<std::mutex> lock(profile_mu_);
    for (const RunProfile& r : profiles_) {
      json jr;
      jr["index"] = r.index;
      jr["thread"] = r.thread;
      jr["start_ns"] = r.start_ns;
      jr["duration_ns"] = r.duration_ns;
      jr["peak_bytes"] = r.peak_bytes;
      json nodes = json::array();
      for (const NodeProfile& np : r.nodes) {
        const auto& node = g_.nodes[static_cast<size_t>(np.node)];
        nodes.push_back({{"name", node.name}, {"op", node.op}, {"input_shapes", np.input_shapes}, {"output_shapes", np.output_shapes},
                         {"start_ns", np.start_ns}, {"end_ns", np.end_ns}, {"flops", np.flops}, {"bytes", np.bytes}});
      }
      jr["nodes"] = std::move(nodes);
      runs.push_back(std::move(jr));
    }
  }
  j["runs"] = std::move(runs);
  return j.dump();
}

std::string Session::chrome_trace_json() const {
  using json = nlohmann::ordered_json;
  json events = json::array();
  {
    std::lock_guard<std::mutex> lock(profile_mu_);
    for (const RunProfile& r : profiles_) {
      const double base_us = static_cast<double>(r.start_ns) / 1000.0;
      events.push_back({{"name", str_cat("run ", r.index)}, {"cat", "run"}, {"ph", "X"}, {"ts", base_us},
                        {"dur", static_cast<double>(r.duration_ns) / 1000.0}, {"pid", 1}, {"tid", r.thread},
                        {"args", {{"peak_bytes", r.peak_bytes}}}});
      for (const NodeProfile& np : r.nodes) {
        const auto& node = g_.nodes[static_cast<size_t>(np.node)];
        events.push_back({{"name", node.name}, {"cat", node.op}, {"ph", "X"}, {"ts", base_us + static_cast<double>(np.start_ns) / 1000.0},
                          {"dur", static_cast<double>(np.end_ns - np.start_ns) / 1000.0}, {"pid", 1}, {"tid", r.thread},
                          {"args", {{"op", node.op}, {"input_shapes", np.input_shapes}, {"output_shapes", np.output_shapes},
                                    {"flops", np.flops}, {"bytes", np.bytes}}}});
      }
    }
  }
  json j;
  j["traceEvents"] = std::move(events);
  j["displayTimeUnit"] = "ms";
  j["otherData"] = {{"format", "heron-chrome-trace"}, {"version", 1}};
  return j.dump();
}

}  // namespace runtime
}  // namespace heron
