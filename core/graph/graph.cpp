// Graph IR: validation, compaction, the text form, a reference executor and shape inference.
#include "core/graph/graph.h"

#include <algorithm>
#include <cstring>
#include <sstream>

#include "c_api/include/heron.h"
#include "core/autograd/autograd.h"
#include "core/ops/dispatcher.h"

namespace heron {
namespace graph {

namespace {
const char* attr_type_name(AttrType t) {
  switch (t) {
    case AttrType::Int: return "int";
    case AttrType::Float: return "float";
    case AttrType::Bool: return "bool";
    case AttrType::Scalar: return "scalar";
    case AttrType::String: return "string";
    case AttrType::Ints: return "ints";
    case AttrType::Floats: return "floats";
    case AttrType::DType: return "dtype";
    case AttrType::Device: return "device";
  }
  return "?";
}
bool kind_fits(AttrType t, AttrValue::Kind k) {
  switch (t) {
    case AttrType::Int: return k == AttrValue::Int || k == AttrValue::Bool;
    case AttrType::Float: return k == AttrValue::Float || k == AttrValue::Int;
    case AttrType::Bool: return k == AttrValue::Bool || k == AttrValue::Int;
    case AttrType::Scalar: return k == AttrValue::Int || k == AttrValue::Float || k == AttrValue::Bool;
    case AttrType::String: case AttrType::Device: return k == AttrValue::String;
    case AttrType::Ints: return k == AttrValue::Ints || k == AttrValue::Int;
    case AttrType::Floats: return k == AttrValue::Floats || k == AttrValue::Float || k == AttrValue::Ints;
    case AttrType::DType: return k == AttrValue::Dtype;
  }
  return false;
}
std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + (s[i] < 0 ? std::string("N") : std::to_string(s[i]));
  return r + "]";
}
std::string attr_str(const AttrValue& a) {
  std::ostringstream o;
  switch (a.kind) {
    case AttrValue::Default: return "default";
    case AttrValue::None: return "none";
    case AttrValue::Int: o << a.i; break;
    case AttrValue::Float: o << a.f; break;
    case AttrValue::Bool: return a.i ? "true" : "false";
    case AttrValue::String: return "'" + a.s + "'";
    case AttrValue::Ints: return shape_str(a.ints);
    case AttrValue::Floats:
      o << "[";
      for (size_t i = 0; i < a.floats.size(); ++i) o << (i ? ", " : "") << a.floats[i];
      o << "]";
      break;
    case AttrValue::Dtype: return dtype_name(static_cast<DType>(a.i));
  }
  return o.str();
}
}  // namespace

void Graph::validate() const {
  const int32_t nv = static_cast<int32_t>(values.size());
  auto check_id = [&](int32_t id, const std::string& where) {
    if (id < 0 || id >= nv)
      throw Error(ErrorCode::InvalidArgument, str_cat("graph: ", where, " refers to value ", id, ", but the graph has ", nv,
                                                      " values"));
  };
  std::vector<int> defined(values.size(), 0);
  for (int32_t i : inputs) {
    check_id(i, "an input");
    if (defined[i]++) throw Error(ErrorCode::InvalidArgument, str_cat("graph: value '", values[i].name, "' is defined twice"));
  }
  for (auto& kv : initializers) {
    check_id(kv.first, "an initializer");
    const Value& v = values[kv.first];
    if (defined[kv.first]++)
      throw Error(ErrorCode::InvalidArgument, str_cat("graph: value '", v.name, "' is defined twice"));
    const Tensor& t = kv.second;
    if (!t.defined()) throw Error(ErrorCode::InvalidArgument, str_cat("graph: initializer '", v.name, "' has no data"));
    if (t.dtype() != v.dtype || std::vector<int64_t>(t.shape().begin(), t.shape().end()) != v.shape)
      throw Error(ErrorCode::InvalidArgument,
                  str_cat("graph: initializer '", v.name, "' holds ", dtype_name(t.dtype()), t.shape().str(),
                          " but its value says ", dtype_name(v.dtype), shape_str(v.shape)));
  }
  for (const Node& n : nodes) {
    const OpInfo* op = find_op(n.op);
    if (!op) throw Error(ErrorCode::InvalidArgument, str_cat("graph: node '", n.name, "' uses unknown op '", n.op, "'"));
    const size_t fixed = static_cast<size_t>(op->n_inputs);
    if (n.inputs.size() < fixed || (!op->variadic_input && n.inputs.size() != fixed))
      throw Error(ErrorCode::InvalidArgument, str_cat("graph: node '", n.name, "' (", n.op, ") has ", n.inputs.size(),
                                                      " inputs, the op takes ", fixed, op->variadic_input ? " or more" : ""));
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      int32_t id = n.inputs[i];
      bool opt = op->input_optional[std::min(i, fixed)];
      if (id == -1) {
        if (!opt) throw Error(ErrorCode::InvalidArgument, str_cat("graph: node '", n.name, "' lacks its required input ", i));
        continue;
      }
      check_id(id, str_cat("node '", n.name, "' input ", i));
      if (!defined[id])
        throw Error(ErrorCode::InvalidArgument,
                    str_cat("graph: node '", n.name, "' uses value '", values[id].name,
                            "' before it is defined (nodes must be in topological order; cycles are not allowed)"));
    }
    if (n.attrs.size() != static_cast<size_t>(op->n_attrs))
      throw Error(ErrorCode::InvalidArgument, str_cat("graph: node '", n.name, "' has ", n.attrs.size(),
                                                      " attributes, op ", n.op, " has ", op->n_attrs));
    for (int a = 0; a < op->n_attrs; ++a) {
      const AttrInfo& ai = op->attrs[a];
      const AttrValue& av = n.attrs[a];
      bool ok = kind_fits(ai.type, av.kind) || (av.kind == AttrValue::None && ai.optional) ||
                (av.kind == AttrValue::Default && ai.has_default);
      if (!ok)
        throw Error(ErrorCode::InvalidArgument,
                    str_cat("graph: node '", n.name, "' attribute '", ai.name, "' expects ", attr_type_name(ai.type),
                            ", got kind ", static_cast<int>(av.kind)));
    }
    if (!op->variadic_output && n.outputs.size() != static_cast<size_t>(op->n_outputs))
      throw Error(ErrorCode::InvalidArgument, str_cat("graph: node '", n.name, "' has ", n.outputs.size(),
                                                      " outputs, op ", n.op, " has ", op->n_outputs));
    for (int32_t o : n.outputs) {
      check_id(o, str_cat("node '", n.name, "' output"));
      if (defined[o]++) throw Error(ErrorCode::InvalidArgument, str_cat("graph: value '", values[o].name, "' is defined twice"));
    }
  }
  for (int32_t o : outputs) {
    check_id(o, "an output");
    if (!defined[o]) throw Error(ErrorCode::InvalidArgument, str_cat("graph: output '", values[o].name, "' is never computed"));
  }
  if (outputs.empty()) throw Error(ErrorCode::InvalidArgument, "graph: no outputs");
}

void Graph::compact() {
  std::vector<int32_t> remap(values.size(), -1);
  std::vector<Value> vals;
  auto use = [&](int32_t id) {
    if (id < 0) return id;
    if (remap[id] < 0) {
      remap[id] = static_cast<int32_t>(vals.size());
      vals.push_back(values[id]);
    }
    return remap[id];
  };
  for (int32_t& i : inputs) i = use(i);
  std::map<int32_t, Tensor> inits;
  for (auto& kv : initializers) inits[use(kv.first)] = kv.second;
  for (Node& n : nodes) {
    for (int32_t& i : n.inputs) i = use(i);
    for (int32_t& o : n.outputs) o = use(o);
  }
  for (int32_t& o : outputs) o = use(o);
  values = std::move(vals);
  initializers = std::move(inits);
}

std::string Graph::to_text() const {
  std::ostringstream o;
  auto vname = [&](int32_t id) { return id < 0 ? std::string("none") : "%" + values[id].name; };
  auto vtype = [&](int32_t id) { return std::string(dtype_name(values[id].dtype)) + shape_str(values[id].shape); };
  o << "graph(";
  for (size_t i = 0; i < inputs.size(); ++i) o << (i ? ", " : "") << vname(inputs[i]) << ": " << vtype(inputs[i]);
  o << ") {\n";
  for (auto& kv : initializers) o << "  " << vname(kv.first) << " : " << vtype(kv.first) << " = <initializer>\n";
  for (const Node& n : nodes) {
    const OpInfo* op = find_op(n.op);
    o << "  ";
    for (size_t j = 0; j < n.outputs.size(); ++j) o << (j ? ", " : "") << vname(n.outputs[j]);
    o << " = " << n.op << "(";
    for (size_t i = 0; i < n.inputs.size(); ++i) o << (i ? ", " : "") << vname(n.inputs[i]);
    for (size_t a = 0; a < n.attrs.size(); ++a)
      o << (a == 0 ? "; " : ", ") << (op && a < static_cast<size_t>(op->n_attrs) ? op->attrs[a].name : "?") << "="
        << attr_str(n.attrs[a]);
    o << ") :";
    for (int32_t out : n.outputs) o << " " << vtype(out);
    o << "\n";
  }
  o << "  return ";
  for (size_t i = 0; i < outputs.size(); ++i) o << (i ? ", " : "") << vname(outputs[i]);
  o << "\n}\n";
  return o.str();
}

static std::vector<heron_attr> to_abi_attrs(const std::vector<AttrValue>& attrs) {
  std::vector<heron_attr> out(attrs.size());
  for (size_t i = 0; i < attrs.size(); ++i) {
    const AttrValue& a = attrs[i];
    heron_attr& h = out[i];
    h.kind = a.kind;
    h.reserved = 0;
    h.i = a.i;
    h.f = a.f;
    h.p = nullptr;
    if (a.kind == AttrValue::String) { h.p = a.s.data(); h.i = static_cast<int64_t>(a.s.size()); }
    if (a.kind == AttrValue::Ints) { h.p = a.ints.data(); h.i = static_cast<int64_t>(a.ints.size()); }
    if (a.kind == AttrValue::Floats) { h.p = a.floats.data(); h.i = static_cast<int64_t>(a.floats.size()); }
  }
  return out;
}

std::vector<Tensor> execute(const Graph& g, const std::vector<Tensor>& inputs) {
  if (inputs.size() != g.inputs.size())
    throw Error(ErrorCode::InvalidArgument, str_cat("graph: expected ", g.inputs.size(), " inputs, got ", inputs.size()));
  autograd::NoGradGuard ng;
  std::vector<Tensor> vals(g.values.size());
  for (size_t i = 0; i < inputs.size(); ++i) vals[g.inputs[i]] = inputs[i];
  for (auto& kv : g.initializers) {
    vals[kv.first] = kv.second;
    if (g.values[kv.first].wrapped_number) vals[kv.first] = kv.second, vals[kv.first].set_wrapped_number(true);
  }
  for (const Node& n : g.nodes) {
    const OpInfo* op = find_op(n.op);
    std::vector<Tensor> ins;
    for (int32_t id : n.inputs) ins.push_back(id >= 0 ? vals[id] : Tensor());
    std::vector<heron_attr> attrs = to_abi_attrs(n.attrs);
    OpCtx ctx(op, ins.data(), ins.size());
    op->invoke(ctx, attrs.data(), attrs.size());
    if (ctx.outputs.size() != n.outputs.size())
      throw Error(ErrorCode::Runtime, str_cat("graph: node '", n.name, "' produced ", ctx.outputs.size(), " outputs, expected ",
                                              n.outputs.size()));
    for (size_t j = 0; j < n.outputs.size(); ++j) vals[n.outputs[j]] = ctx.outputs[j];
  }
  std::vector<Tensor> outs;
  for (int32_t o : g.outputs) outs.push_back(vals[o]);
  return outs;
}

void Graph::infer_shapes() {
  // Run the graph on zero inputs at two sizes of every symbolic dim: dims that follow it are
  // symbolic, the others are fixed.
  auto run_with = [&](int64_t sym) {
    std::vector<Tensor> ins;
    for (int32_t i : inputs) {
      Dims s;
      for (int64_t d : values[i].shape) s.push_back(d < 0 ? sym : d);
      Tensor t = Tensor::empty(s, values[i].dtype, DeviceRegistry::get().host());
      if (t.nbytes()) std::memset(t.raw_data(), 0, t.nbytes());
      ins.push_back(t);
    }
    autograd::NoGradGuard ng;
    std::vector<Tensor> vals(values.size());
    for (size_t k = 0; k < ins.size(); ++k) vals[inputs[k]] = ins[k];
    for (auto& kv : initializers) {
      vals[kv.first] = kv.second;
      if (values[kv.first].wrapped_number) vals[kv.first].set_wrapped_number(true);
    }
    for (const Node& n : nodes) {
      const OpInfo* op = find_op(n.op);
      if (!op) throw Error(ErrorCode::InvalidArgument, str_cat("graph: node '", n.name, "' uses unknown op '", n.op, "'"));
      std::vector<Tensor> in;
      for (int32_t id : n.inputs) in.push_back(id >= 0 ? vals.at(id) : Tensor());
      std::vector<heron_attr> attrs = to_abi_attrs(n.attrs);
      OpCtx ctx(op, in.data(), in.size());
      try {
        op->invoke(ctx, attrs.data(), attrs.size());
      } catch (const Error& e) {
        throw Error(e.code(), str_cat("shape inference: node '", n.name, "' (", n.op, "): ", e.what()), n.op);
      }
      for (size_t j = 0; j < n.outputs.size() && j < ctx.outputs.size(); ++j) vals[n.outputs[j]] = ctx.outputs[j];
    }
    std::vector<std::vector<int64_t>> shapes(values.size());
    for (size_t v = 0; v < values.size(); ++v)
      if (vals[v].defined()) shapes[v] = std::vector<int64_t>(vals[v].shape().begin(), vals[v].shape().end());
    return std::make_pair(shapes, vals);
  };
  auto a = run_with(2);
  auto b = run_with(3);
  for (size_t v = 0; v < values.size(); ++v) {
    if (initializers.count(static_cast<int32_t>(v))) continue;
    if (std::find(inputs.begin(), inputs.end(), static_cast<int32_t>(v)) != inputs.end()) continue;
    const auto& sa = a.first[v];
    const auto& sb = b.first[v];
    if (!a.second[v].defined()) continue;
    values[v].dtype = a.second[v].dtype();
    std::vector<int64_t> s = sa;
    for (size_t d = 0; d < s.size() && d < sb.size(); ++d)
      if (sa[d] != sb[d]) s[d] = -1;
    values[v].shape = s;
  }
}

}  // namespace graph
}  // namespace heron
