// .heron model files: writer and verifying reader. The layout is described in heron_model.fbs.
//
// Loading treats the bytes as untrusted: the FlatBuffers verifier (bounded depth and table count)
// runs on the FlatBuffer, every field read afterwards is checked (codes, ids, shapes, offsets), the
// total amount of data read is bounded by the size of the FlatBuffer (so that tables or vectors
// referenced many times cannot blow up the work), and the resulting graph goes through the same
// semantic checks that save_model applies before writing.
#include "core/graph/model_io.h"

#include "core/io/mapped_file.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <set>

#include "core/graph/heron_model_generated.h"
#include "core/ops/dispatcher.h"
#include "core/util/error.h"

namespace heron {
namespace graph {

namespace {

constexpr size_t kAlign = 64;                       // initializer alignment, relative to the file start
constexpr size_t kMaxDims = 64;                     // dims of a value or initializer
constexpr size_t kMaxString = size_t{1} << 16;      // names and string attributes (the ABI's limit)
constexpr size_t kMaxList = size_t{1} << 24;        // ints / floats attributes (the ABI's limit)
constexpr size_t kMaxNodeInputs = 4096;             // the ABI's limit for one op call
constexpr size_t kMaxNodeOutputs = 4096;
constexpr int32_t kUndefined = -1;                  // definition table entries (see check_graph)
constexpr int32_t kByInput = -2;
constexpr int32_t kByInitializer = -3;

// ------------------------------------------------------------------ messages
// Names and strings come from untrusted input: bytes that are not valid UTF-8, and control bytes,
// are written as \xNN so that every binding can decode the message.
bool next_utf8(const unsigned char* p, size_t n, size_t i, size_t* len) {
  unsigned char c = p[i];
  size_t l = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
  bool ok = l > 0 && i + l <= n && !(l == 2 && c < 0xc2);
  for (size_t k = 1; ok && k < l; ++k) ok = (p[i + k] & 0xc0) == 0x80;
  if (ok && l == 3) {
    unsigned cp = ((c & 0x0fu) << 12) | ((p[i + 1] & 0x3fu) << 6) | (p[i + 2] & 0x3fu);
    ok = cp >= 0x800 && (cp < 0xd800 || cp > 0xdfff);
  }
  if (ok && l == 4) {
    unsigned cp = ((c & 0x07u) << 18) | ((p[i + 1] & 0x3fu) << 12) | ((p[i + 2] & 0x3fu) << 6) | (p[i + 3] & 0x3fu);
    ok = cp >= 0x10000 && cp <= 0x10ffff;
  }
  *len = l;
  return ok;
}

bool valid_utf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  for (size_t i = 0, l = 0; i < s.size(); i += l)
    if (!next_utf8(p, s.size(), i, &l)) return false;
  return true;
}

std::string esc(const std::string& s) {
  const size_t kShown = 200;
  std::string out;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = std::min(s.size(), kShown);
  for (size_t i = 0; i < n;) {
    size_t l = 0;
    bool ok = next_utf8(p, n, i, &l) && !(l == 1 && p[i] < 0x20);
    if (ok) {
      out.append(s, i, l);
      i += l;
    } else {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[p[i] >> 4];
      out += hex[p[i] & 15];
      i += 1;
    }
  }
  if (s.size() > kShown) out += str_cat("... (", s.size(), " bytes)");
  return out;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += str_cat(i ? ", " : "", s[i]);
  return out + "]";
}

std::string dtype_str(DType dt) {
  return dtype_valid(static_cast<int32_t>(dt)) ? std::string(dtype_name(dt)) : str_cat("<dtype code ", static_cast<int32_t>(dt), ">");
}

const char* kind_name(int32_t k) {
  switch (k) {
    case AttrValue::Default: return "default";
    case AttrValue::None: return "none";
    case AttrValue::Int: return "int";
    case AttrValue::Float: return "float";
    case AttrValue::Bool: return "bool";
    case AttrValue::String: return "string";
    case AttrValue::Ints: return "ints";
    case AttrValue::Floats: return "floats";
    case AttrValue::Dtype: return "dtype";
  }
  return "unknown";
}

const char* attr_type_name(AttrType t) {
  switch (t) {
    case AttrType::Int: return "int";
    case AttrType::Float: return "float";
    case AttrType::Bool: return "bool";
    case AttrType::Scalar: return "a number (int, float or bool)";
    case AttrType::String: return "string";
    case AttrType::Ints: return "ints";
    case AttrType::Floats: return "floats";
    case AttrType::DType: return "dtype";
    case AttrType::Device: return "a device string";
  }
  return "?";
}

// "heron model '<path>': " or "heron model: " (buffers; `what` is empty).
[[noreturn]] void fail(const std::string& what, const std::string& msg) {
  throw Error(ErrorCode::InvalidArgument, what.empty() ? str_cat("heron model: ", msg) : str_cat("heron model ", what, ": ", msg));
}

std::string value_ref(const Graph& g, int32_t id) {
  return str_cat("value ", id, " '", esc(g.values[static_cast<size_t>(id)].name), "'");
}
std::string node_ref(const Graph& g, size_t k) {
  const Node& n = g.nodes[k];
  return str_cat("node ", k, " '", esc(n.name), "' (", esc(n.op), ")");
}

// numel * itemsize of a concrete shape; false on overflow (beyond int64) or a negative dim.
bool shape_nbytes(const std::vector<int64_t>& shape, DType dt, uint64_t* out) {
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return false;
    if (__builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) return false;
  }
  if (__builtin_mul_overflow(n, static_cast<uint64_t>(itemsize(dt)), &n)) return false;
  if (n > static_cast<uint64_t>(INT64_MAX)) return false;
  *out = n;
  return true;
}

uint64_t align_up(uint64_t x) { return (x + kAlign - 1) / kAlign * kAlign; }

// ------------------------------------------------------------------ attribute kinds
// Whether an attribute value fits its schema type. Mirrors the ABI's unpacking (dispatcher.cpp,
// detail::get_*), so that a graph that verifies runs through heron_op_call without a kind error.
// Returns an empty string when it fits, else what is wrong.
std::string attr_mismatch(const AttrInfo& info, const AttrValue& v) {
  const int32_t k = v.kind;
  if (k == AttrValue::Default)
    return info.has_default ? std::string() : "is required (it has no default) but the value is 'default'";
  if (k == AttrValue::None) return info.optional ? std::string() : str_cat("cannot be none (expected ", attr_type_name(info.type), ")");
  if (k == AttrValue::Bool && v.i != 0 && v.i != 1) return str_cat("is a bool with value ", v.i, " (must be 0 or 1)");
  if (k == AttrValue::String && v.s.size() > kMaxString) return str_cat("is a string of ", v.s.size(), " bytes (more than ", kMaxString, ")");
  if (k == AttrValue::String && !valid_utf8(v.s)) return "is a string that is not valid UTF-8";
  if (k == AttrValue::Ints && v.ints.size() > kMaxList) return str_cat("has ", v.ints.size(), " ints (more than ", kMaxList, ")");
  if (k == AttrValue::Floats && v.floats.size() > kMaxList) return str_cat("has ", v.floats.size(), " floats (more than ", kMaxList, ")");
  if (k == AttrValue::Dtype && !dtype_valid(static_cast<int32_t>(v.i >= INT32_MIN && v.i <= INT32_MAX ? v.i : -1)))
    return str_cat("has unknown dtype code ", v.i);
  bool ok = false;
  switch (info.type) {
    case AttrType::Int:
      ok = k == AttrValue::Int || k == AttrValue::Bool ||
           (k == AttrValue::Float && std::isfinite(v.f) && v.f == std::floor(v.f) && std::fabs(v.f) < 9.007199254740992e15);
      break;
    case AttrType::Float: ok = k == AttrValue::Float || k == AttrValue::Int; break;
    case AttrType::Bool: ok = k == AttrValue::Bool || (k == AttrValue::Int && (v.i == 0 || v.i == 1)); break;
    case AttrType::Scalar: ok = k == AttrValue::Int || k == AttrValue::Float || k == AttrValue::Bool; break;
    case AttrType::String:
    case AttrType::Device: ok = k == AttrValue::String; break;
    case AttrType::Ints: ok = k == AttrValue::Ints || k == AttrValue::Int; break;
    case AttrType::Floats: ok = k == AttrValue::Floats || k == AttrValue::Float || k == AttrValue::Ints; break;
    case AttrType::DType: ok = k == AttrValue::Dtype; break;
  }
  if (ok) return std::string();
  if (k < AttrValue::Default || k > AttrValue::Dtype) return str_cat("has unknown kind ", k);
  return str_cat("expects ", attr_type_name(info.type), ", got ", kind_name(k));
}

// ------------------------------------------------------------------ graph checks
// The structural and semantic checks every saved or loaded graph passes. `what` names the file in
// messages (empty for buffers and for saving).
void check_graph(const Graph& g, const std::string& what) {
  const size_t nv = g.values.size();
  if (nv > static_cast<size_t>(INT32_MAX)) fail(what, str_cat("the graph has ", nv, " values (ids are int32)"));
  auto in_range = [&](int32_t id) { return id >= 0 && static_cast<size_t>(id) < nv; };

  // Values: names, dtypes, shapes.
  for (size_t i = 0; i < nv; ++i) {
    const Value& v = g.values[i];
    auto vr = [&] { return value_ref(g, static_cast<int32_t>(i)); };
    if (v.name.size() > kMaxString) fail(what, str_cat(vr(), ": the name has ", v.name.size(), " bytes (more than ", kMaxString, ")"));
    if (!valid_utf8(v.name)) fail(what, str_cat(vr(), ": the name is not valid UTF-8"));
    if (!dtype_valid(static_cast<int32_t>(v.dtype))) fail(what, str_cat(vr(), ": unknown dtype code ", static_cast<int32_t>(v.dtype)));
    if (v.shape.size() > kMaxDims) fail(what, str_cat(vr(), ": the shape has ", v.shape.size(), " dims (more than ", kMaxDims, ")"));
    std::vector<int64_t> concrete;
    for (int64_t d : v.shape) {
      if (d < -1) fail(what, str_cat(vr(), ": shape ", shape_str(v.shape), " has the entry ", d, " (dims are >= 0, or -1 for a symbolic dim)"));
      if (d >= 0) concrete.push_back(d);
    }
    uint64_t nb = 0;
    if (!shape_nbytes(concrete, v.dtype, &nb))
      fail(what, str_cat(vr(), ": shape ", shape_str(v.shape), " of ", dtype_str(v.dtype), " has too many elements"));
  }

  // Who defines each value: a graph input, an initializer or a node (its index), never two of them.
  std::vector<int32_t> def(nv, kUndefined);
  auto def_str = [&](int32_t d) {
    return d == kByInput ? std::string("a graph input") : d == kByInitializer ? std::string("an initializer") : str_cat("an output of ", node_ref(g, static_cast<size_t>(d)));
  };
  std::set<std::string> input_names;
  for (size_t j = 0; j < g.inputs.size(); ++j) {
    int32_t id = g.inputs[j];
    if (!in_range(id)) fail(what, str_cat("graph input ", j, " refers to value ", id, ", out of range (the graph has ", nv, " values)"));
    if (def[static_cast<size_t>(id)] != kUndefined) fail(what, str_cat("graph input ", j, ": ", value_ref(g, id), " is listed twice as a graph input"));
    if (!input_names.insert(g.values[static_cast<size_t>(id)].name).second)
      fail(what, str_cat("graph input ", j, ": ", value_ref(g, id), " has the same name as another graph input"));
    def[static_cast<size_t>(id)] = kByInput;
  }
  for (const auto& [id, t] : g.initializers) {
    if (!in_range(id)) fail(what, str_cat("an initializer is bound to value ", id, ", out of range (the graph has ", nv, " values)"));
    const Value& v = g.values[static_cast<size_t>(id)];
    auto vr = [&] { return str_cat("initializer for ", value_ref(g, id)); };
    if (def[static_cast<size_t>(id)] != kUndefined) fail(what, str_cat(vr(), ": the value is also ", def_str(def[static_cast<size_t>(id)])));
    def[static_cast<size_t>(id)] = kByInitializer;
    if (!t.defined()) fail(what, str_cat(vr(), ": the tensor is undefined"));
    if (t.dtype() != v.dtype) fail(what, str_cat(vr(), ": the tensor is ", dtype_str(t.dtype()), " but the value is ", dtype_str(v.dtype)));
    std::vector<int64_t> ts(t.shape().data(), t.shape().data() + t.shape().size());
    if (ts != v.shape) fail(what, str_cat(vr(), ": the tensor has shape ", shape_str(ts), " but the value has shape ", shape_str(v.shape)));
  }

  // Nodes: op known, input/output counts, attributes; every output defined once.
  std::map<std::string, size_t> node_names;
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const Node& n = g.nodes[k];
    if (n.name.size() > kMaxString || !valid_utf8(n.name)) fail(what, str_cat("node ", k, ": the name is not valid UTF-8 or too long"));
    const OpInfo* op = find_op(n.op);
    if (!op) fail(what, str_cat("node ", k, " '", esc(n.name), "': unknown op '", esc(n.op), "'"));
    auto nr = [&] { return node_ref(g, k); };
    if (!n.name.empty()) {
      auto [it, fresh] = node_names.emplace(n.name, k);
      if (!fresh) fail(what, str_cat(nr(), ": the name is also the name of node ", it->second));
    }
    const size_t fixed = static_cast<size_t>(op->n_inputs);
    const size_t ni = n.inputs.size();
    if (op->variadic_input ? ni < fixed : ni != fixed)
      fail(what, str_cat(nr(), ": expected ", op->variadic_input ? "at least " : "", fixed, " input", fixed == 1 ? "" : "s", ", got ", ni));
    if (ni > kMaxNodeInputs) fail(what, str_cat(nr(), ": ", ni, " inputs (more than ", kMaxNodeInputs, ")"));
    const size_t fixed_out = static_cast<size_t>(op->n_outputs);
    const size_t no = n.outputs.size();
    if (op->variadic_output ? no < fixed_out : no != fixed_out)
      fail(what, str_cat(nr(), ": expected ", op->variadic_output ? "at least " : "", fixed_out, " output", fixed_out == 1 ? "" : "s", ", got ", no));
    if (no > kMaxNodeOutputs) fail(what, str_cat(nr(), ": ", no, " outputs (more than ", kMaxNodeOutputs, ")"));
    if (n.attrs.size() != static_cast<size_t>(op->n_attrs))
      fail(what, str_cat(nr(), ": ", n.attrs.size(), " attributes, but the op has ", op->n_attrs));
    for (int a = 0; a < op->n_attrs; ++a) {
      std::string bad = attr_mismatch(op->attrs[a], n.attrs[static_cast<size_t>(a)]);
      if (!bad.empty()) fail(what, str_cat(nr(), ": attribute ", a, " '", op->attrs[a].name, "' ", bad));
    }
    for (size_t j = 0; j < no; ++j) {
      int32_t id = n.outputs[j];
      if (!in_range(id)) fail(what, str_cat(nr(), ": output ", j, " refers to value ", id, ", out of range (the graph has ", nv, " values)"));
      int32_t& d = def[static_cast<size_t>(id)];
      if (d != kUndefined) fail(what, str_cat(nr(), ": output ", j, " is ", value_ref(g, id), ", which is already ", def_str(d), " (a value is defined once)"));
      d = static_cast<int32_t>(k);
    }
  }

  // Topological order: every input is defined before the node that uses it (so there is no cycle).
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const Node& n = g.nodes[k];
    const OpInfo* op = find_op(n.op);
    const size_t fixed = static_cast<size_t>(op->n_inputs);
    for (size_t j = 0; j < n.inputs.size(); ++j) {
      int32_t id = n.inputs[j];
      if (id == -1) {
        if (!op->input_optional[j < fixed ? j : fixed]) fail(what, str_cat(node_ref(g, k), ": input ", j, " is absent (-1) but it is not optional"));
        continue;
      }
      if (!in_range(id)) fail(what, str_cat(node_ref(g, k), ": input ", j, " refers to value ", id, ", out of range (the graph has ", nv, " values)"));
      int32_t d = def[static_cast<size_t>(id)];
      if (d == kUndefined) fail(what, str_cat(node_ref(g, k), ": input ", j, " is ", value_ref(g, id), ", which nothing defines (not a graph input, an initializer or a node output)"));
      if (d >= 0 && static_cast<size_t>(d) >= k)
        fail(what, str_cat(node_ref(g, k), ": input ", j, " is ", value_ref(g, id), ", ", def_str(d),
                           static_cast<size_t>(d) == k ? " itself" : ", which comes later",
                           ": the nodes are not in topological order (or form a cycle)"));
    }
  }
  for (size_t j = 0; j < g.outputs.size(); ++j) {
    int32_t id = g.outputs[j];
    if (!in_range(id)) fail(what, str_cat("graph output ", j, " refers to value ", id, ", out of range (the graph has ", nv, " values)"));
    if (def[static_cast<size_t>(id)] == kUndefined) fail(what, str_cat("graph output ", j, " is ", value_ref(g, id), ", which nothing defines"));
  }
}

// ------------------------------------------------------------------ writing
fb::DType to_fb(DType dt) { return static_cast<fb::DType>(static_cast<int32_t>(dt)); }

struct Planned {
  flatbuffers::FlatBufferBuilder fbb{4096};
  std::vector<std::pair<uint64_t, Tensor>> weights;  // blob offset, contiguous host tensor
  uint64_t blob_start = 0;                           // file offset of the blob
  uint64_t blob_size = 0;
};

// Validates g and builds the FlatBuffer; the weights are laid out but not copied.
void plan(const Graph& g, Planned* p) {
  check_graph(g, std::string());
  auto& fbb = p->fbb;
  std::vector<flatbuffers::Offset<fb::Value>> values;
  values.reserve(g.values.size());
  for (const Value& v : g.values) {
    auto name = fbb.CreateString(v.name);
    auto shape = fbb.CreateVector(v.shape);
    values.push_back(fb::CreateValue(fbb, name, to_fb(v.dtype), shape, v.wrapped_number));
  }
  std::vector<flatbuffers::Offset<fb::Node>> nodes;
  nodes.reserve(g.nodes.size());
  for (const Node& n : g.nodes) {
    std::vector<flatbuffers::Offset<fb::Attr>> attrs;
    attrs.reserve(n.attrs.size());
    for (const AttrValue& a : n.attrs) {
      auto s = a.kind == AttrValue::String || !a.s.empty() ? fbb.CreateString(a.s) : flatbuffers::Offset<flatbuffers::String>();
      auto ints = a.kind == AttrValue::Ints || !a.ints.empty() ? fbb.CreateVector(a.ints) : flatbuffers::Offset<flatbuffers::Vector<int64_t>>();
      auto floats =
          a.kind == AttrValue::Floats || !a.floats.empty() ? fbb.CreateVector(a.floats) : flatbuffers::Offset<flatbuffers::Vector<double>>();
      attrs.push_back(fb::CreateAttr(fbb, static_cast<fb::AttrKind>(a.kind), a.i, a.f, s, ints, floats));
    }
    auto name = fbb.CreateString(n.name);
    auto op = fbb.CreateString(n.op);
    auto ins = fbb.CreateVector(n.inputs);
    auto outs = fbb.CreateVector(n.outputs);
    auto av = fbb.CreateVector(attrs);
    nodes.push_back(fb::CreateNode(fbb, name, op, ins, outs, av));
  }
  std::vector<flatbuffers::Offset<fb::Initializer>> inits;
  uint64_t off = 0;
  for (const auto& [id, t0] : g.initializers) {
    Tensor t = t0.device() == host_device() ? t0 : t0.to(host_device());
    t = t.contiguous();
    const uint64_t nb = t.nbytes();
    off = align_up(off);
    const Value& v = g.values[static_cast<size_t>(id)];
    auto shape = fbb.CreateVector(v.shape);
    inits.push_back(fb::CreateInitializer(fbb, id, to_fb(v.dtype), shape, off, nb));
    p->weights.emplace_back(off, std::move(t));
    off += nb;
  }
  p->blob_size = off;
  auto producer = fbb.CreateString(std::string("heron ") + HERON_VERSION_STRING);
  auto vv = fbb.CreateVector(values);
  auto nvv = fbb.CreateVector(nodes);
  auto gi = fbb.CreateVector(g.inputs);
  auto go = fbb.CreateVector(g.outputs);
  auto iv = fbb.CreateVector(inits);
  auto root = fb::CreateModel(fbb, kModelFormatVersion, producer, vv, nvv, gi, go, iv, off);
  fb::FinishSizePrefixedModelBuffer(fbb, root);
  p->blob_start = align_up(fbb.GetSize());
}

// Emits the file through write(data, n).
template <typename Write>
void emit(const Planned& p, Write&& write) {
  static const char zeros[kAlign] = {};
  const uint64_t fb_size = p.fbb.GetSize();
  write(p.fbb.GetBufferPointer(), fb_size);
  write(zeros, p.blob_start - fb_size);
  uint64_t pos = 0;
  for (const auto& [off, t] : p.weights) {
    write(zeros, off - pos);
    if (t.nbytes()) write(t.raw_data(), t.nbytes());
    pos = off + t.nbytes();
  }
}

// ------------------------------------------------------------------ reading

// Bounds the data read out of the FlatBuffer: without shared tables or vectors, the strings,
// vectors and tables of a buffer of N bytes hold fewer than N bytes; a buffer that references the
// same data many times to make the reader copy more is rejected.
class Budget {
 public:
  Budget(uint64_t n, const std::string& what) : left_(n), what_(what) {}
  void take(uint64_t bytes) {
    if (bytes > left_)
      fail(what_, "the FlatBuffer references more data than it holds (shared tables or vectors): not a file this library writes");
    left_ -= bytes;
  }
 private:
  uint64_t left_;
  const std::string& what_;
};

std::string read_string(const flatbuffers::String* s, Budget& b) {
  if (!s) return std::string();
  b.take(s->size() + 4);
  return std::string(s->c_str(), s->size());
}

// The verifier checks a vector's length field for 4-byte alignment but not its 8-byte elements:
// they are copied out bytewise (FlatBuffers data is little-endian, as are the hosts we build for).
template <typename T, typename U>
std::vector<T> read_vector(const flatbuffers::Vector<U>* v, Budget& b) {
  static_assert(FLATBUFFERS_LITTLEENDIAN, "the .heron reader assumes a little-endian host");
  if (!v) return {};
  b.take(static_cast<uint64_t>(v->size()) * sizeof(U) + 4);
  std::vector<T> out(v->size());
  const uint8_t* p = v->Data();
  for (flatbuffers::uoffset_t i = 0; i < v->size(); ++i) {
    U x;
    std::memcpy(&x, p + static_cast<size_t>(i) * sizeof(U), sizeof(U));
    out[i] = static_cast<T>(x);
  }
  return out;
}

uint32_t read_le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}

// Parses and verifies a complete file image [data, data + size). With a mapping, initializers wrap
// the image (which must be the mapping); without, they are copies.
Graph parse(const uint8_t* data, size_t size, const std::string& what, const io::MappedFile* mapping) {
  if (!data && size) fail(what, "the buffer is NULL");
  constexpr size_t kHeader = 12;  // size prefix, root offset, identifier
  if (size < kHeader) fail(what, str_cat("the input has ", size, " bytes, too few for a .heron header (", kHeader, ")"));
  if (std::memcmp(data + 8, fb::ModelIdentifier(), 4) != 0)
    fail(what, str_cat("wrong file identifier '", esc(std::string(reinterpret_cast<const char*>(data + 8), 4)), "' at byte 8 (expected '",
                       fb::ModelIdentifier(), "'): not a .heron model file"));
  const uint64_t n = read_le32(data);
  if (n > size - 4) fail(what, str_cat("the FlatBuffer size ", n, " (bytes 0..3) runs past the end of the input (", size - 4, " bytes follow)"));
  const uint64_t fb_span = 4 + n;
  if (fb_span >= FLATBUFFERS_MAX_BUFFER_SIZE) fail(what, str_cat("the FlatBuffer size ", n, " is larger than FlatBuffers allows"));

  // The verifier and the accessors need the FlatBuffer 8-byte aligned: copy it if it is not.
  std::vector<uint64_t> aligned;
  const uint8_t* fbp = data;
  if (reinterpret_cast<uintptr_t>(data) % 8 != 0) {
    aligned.resize((fb_span + 7) / 8);
    std::memcpy(aligned.data(), data, fb_span);
    fbp = reinterpret_cast<const uint8_t*>(aligned.data());
  }
  flatbuffers::Verifier::Options vopt;
  vopt.max_depth = 8;                                                    // Model > Node > Attr
  vopt.max_tables = static_cast<flatbuffers::uoffset_t>(fb_span / 4 + 16);  // a table takes >= 4 bytes
  flatbuffers::Verifier verifier(fbp, fb_span, vopt);
  if (!fb::VerifySizePrefixedModelBuffer(verifier))
    fail(what, str_cat("the FlatBuffer (bytes 0..", fb_span, ") fails verification: the file is corrupt or truncated"));
  const fb::Model* m = fb::GetSizePrefixedModel(fbp);
  if (m->format_version() > kModelFormatVersion)
    fail(what, str_cat("format version ", m->format_version(), " is newer than this library reads (version ", kModelFormatVersion,
                       "): upgrade heron to load it"));
  if (m->format_version() == 0) fail(what, "format version 0 is not a valid version");

  Budget budget(fb_span, what);
  Graph g;
  // Values.
  if (const auto* vs = m->values()) {
    budget.take(static_cast<uint64_t>(vs->size()) * 8);
    g.values.reserve(vs->size());
    for (flatbuffers::uoffset_t i = 0; i < vs->size(); ++i) {
      const fb::Value* v = vs->Get(i);
      Value out;
      out.name = read_string(v->name(), budget);
      int32_t code = static_cast<int32_t>(v->dtype());
      if (!dtype_valid(code)) fail(what, str_cat("value ", i, " '", esc(out.name), "': unknown dtype code ", code));
      out.dtype = static_cast<DType>(code);
      if (v->shape() && v->shape()->size() > kMaxDims)
        fail(what, str_cat("value ", i, " '", esc(out.name), "': the shape has ", v->shape()->size(), " dims (more than ", kMaxDims, ")"));
      out.shape = read_vector<int64_t>(v->shape(), budget);
      out.wrapped_number = v->wrapped_number();
      g.values.push_back(std::move(out));
    }
  }
  // Nodes.
  if (const auto* ns = m->nodes()) {
    budget.take(static_cast<uint64_t>(ns->size()) * 8);
    g.nodes.reserve(ns->size());
    for (flatbuffers::uoffset_t k = 0; k < ns->size(); ++k) {
      const fb::Node* n = ns->Get(k);
      Node out;
      out.name = read_string(n->name(), budget);
      out.op = read_string(n->op(), budget);
      auto nr = [&] { return str_cat("node ", k, " '", esc(out.name), "' (", esc(out.op), ")"); };
      const OpInfo* op = find_op(out.op);
      if (!op) fail(what, str_cat("node ", k, " '", esc(out.name), "': unknown op '", esc(out.op), "'"));
      if (n->inputs() && n->inputs()->size() > kMaxNodeInputs)
        fail(what, str_cat(nr(), ": ", n->inputs()->size(), " inputs (more than ", kMaxNodeInputs, ")"));
      if (n->outputs() && n->outputs()->size() > kMaxNodeOutputs)
        fail(what, str_cat(nr(), ": ", n->outputs()->size(), " outputs (more than ", kMaxNodeOutputs, ")"));
      out.inputs = read_vector<int32_t>(n->inputs(), budget);
      out.outputs = read_vector<int32_t>(n->outputs(), budget);
      const size_t na = n->attrs() ? n->attrs()->size() : 0;
      if (na > static_cast<size_t>(op->n_attrs)) fail(what, str_cat(nr(), ": ", na, " attributes, but the op has ", op->n_attrs));
      for (size_t a = 0; a < na; ++a) {
        const fb::Attr* at = n->attrs()->Get(static_cast<flatbuffers::uoffset_t>(a));
        budget.take(8);
        AttrValue v;
        int32_t kind = static_cast<int32_t>(at->kind());
        if (kind < AttrValue::Default || kind > AttrValue::Dtype)
          fail(what, str_cat(nr(), ": attribute ", a, " '", op->attrs[a].name, "' has unknown kind ", kind));
        v.kind = static_cast<AttrValue::Kind>(kind);
        v.i = at->i();
        v.f = at->f();
        if (at->s() && at->s()->size() > kMaxString)
          fail(what, str_cat(nr(), ": attribute ", a, " '", op->attrs[a].name, "' is a string of ", at->s()->size(), " bytes (more than ", kMaxString, ")"));
        if (at->ints() && at->ints()->size() > kMaxList)
          fail(what, str_cat(nr(), ": attribute ", a, " '", op->attrs[a].name, "' has ", at->ints()->size(), " ints (more than ", kMaxList, ")"));
        if (at->floats() && at->floats()->size() > kMaxList)
          fail(what, str_cat(nr(), ": attribute ", a, " '", op->attrs[a].name, "' has ", at->floats()->size(), " floats (more than ", kMaxList, ")"));
        v.s = read_string(at->s(), budget);
        v.ints = read_vector<int64_t>(at->ints(), budget);
        v.floats = read_vector<double>(at->floats(), budget);
        out.attrs.push_back(std::move(v));
      }
      // A file written before the op gained trailing attributes: they take their defaults.
      for (size_t a = na; a < static_cast<size_t>(op->n_attrs); ++a) {
        if (!op->attrs[a].has_default)
          fail(what, str_cat(nr(), ": ", na, " attributes, but the op has ", op->n_attrs, " and attribute ", a, " '", op->attrs[a].name,
                             "' has no default"));
        out.attrs.push_back(AttrValue{});
      }
      g.nodes.push_back(std::move(out));
    }
  }
  g.inputs = read_vector<int32_t>(m->inputs(), budget);
  g.outputs = read_vector<int32_t>(m->outputs(), budget);

  // The weights blob: from the first 64-byte boundary after the FlatBuffer to the end of the file.
  const uint64_t blob_start = align_up(fb_span);
  const uint64_t blob_size = m->weights_size();
  if (blob_start > size)
    fail(what, str_cat("the input ends at byte ", size, ", before the weights blob, which starts at byte ", blob_start, " (truncated)"));
  if (size - blob_start != blob_size)
    fail(what, str_cat("the weights blob (from byte ", blob_start, ") has ", size - blob_start, " bytes, but the model says ", blob_size,
                       size - blob_start < blob_size ? " (truncated)" : " (trailing bytes)"));
  struct Span {
    uint64_t begin, end;
    int32_t id;
  };
  std::vector<Span> spans;
  if (const auto* is = m->initializers()) {
    budget.take(static_cast<uint64_t>(is->size()) * 8);
    const size_t nv = g.values.size();
    for (flatbuffers::uoffset_t j = 0; j < is->size(); ++j) {
      const fb::Initializer* in = is->Get(j);
      const int32_t id = in->value();
      if (id < 0 || static_cast<size_t>(id) >= nv)
        fail(what, str_cat("initializer ", j, " is bound to value ", id, ", out of range (the graph has ", nv, " values)"));
      const Value& v = g.values[static_cast<size_t>(id)];
      auto ir = [&] { return str_cat("initializer ", j, " (", value_ref(g, id), ")"); };
      if (g.initializers.count(id)) fail(what, str_cat(ir(), ": the value has another initializer"));
      int32_t code = static_cast<int32_t>(in->dtype());
      if (!dtype_valid(code)) fail(what, str_cat(ir(), ": unknown dtype code ", code));
      const DType dt = static_cast<DType>(code);
      if (dt != v.dtype) fail(what, str_cat(ir(), ": dtype ", dtype_name(dt), " differs from the value's dtype ", dtype_str(v.dtype)));
      if (in->shape() && in->shape()->size() > kMaxDims)
        fail(what, str_cat(ir(), ": the shape has ", in->shape()->size(), " dims (more than ", kMaxDims, ")"));
      std::vector<int64_t> shape = read_vector<int64_t>(in->shape(), budget);
      if (shape != v.shape) fail(what, str_cat(ir(), ": shape ", shape_str(shape), " differs from the value's shape ", shape_str(v.shape)));
      uint64_t nbytes = 0;
      if (!shape_nbytes(shape, dt, &nbytes))
        fail(what, str_cat(ir(), ": shape ", shape_str(shape), " of ", dtype_name(dt), " is not a concrete shape of a size that fits in memory"));
      const uint64_t off = in->offset(), len = in->length();
      if (len != nbytes)
        fail(what, str_cat(ir(), ": length ", len, " bytes, but shape ", shape_str(shape), " of ", dtype_name(dt), " needs ", nbytes));
      if (off % kAlign != 0) fail(what, str_cat(ir(), ": offset ", off, " is not a multiple of ", kAlign));
      if (len > blob_size || off > blob_size - len)
        fail(what, str_cat(ir(), ": bytes [", off, ", ", off, " + ", len, ") run past the end of the weights blob (", blob_size, " bytes)"));
      if (len) spans.push_back({off, off + len, id});
      // Storage: a view of the mapping, or a copy (buffers, and empty tensors).
      const uint8_t* src = data + blob_start + off;
      Tensor t;
      if (mapping && len > 0) {
        Dims d(shape);
        t = Tensor::make(mapping->storage(src, static_cast<size_t>(len)), dt, d, contiguous_strides(d), 0);
      } else {
        t = Tensor::empty(Dims(shape), dt, host_device());
        if (len) std::memcpy(t.raw_data(), src, static_cast<size_t>(len));
      }
      g.initializers.emplace(id, std::move(t));
    }
  }
  // Initializers may not share bytes (in-place updates of one would change another).
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
  for (size_t j = 1; j < spans.size(); ++j)
    if (spans[j - 1].end > spans[j].begin)
      fail(what, str_cat("the initializers of ", value_ref(g, spans[j - 1].id), " and ", value_ref(g, spans[j].id), " overlap in the weights blob (bytes [",
                         spans[j].begin, ", ", spans[j - 1].end, "))"));

  check_graph(g, what);
  return g;
}

}  // namespace

std::vector<uint8_t> save_model(const Graph& g) {
  Planned p;
  plan(g, &p);
  std::vector<uint8_t> out;
  out.reserve(static_cast<size_t>(p.blob_start + p.blob_size));
  emit(p, [&](const void* d, uint64_t n) {
    const auto* b = static_cast<const uint8_t*>(d);
    out.insert(out.end(), b, b + n);
  });
  return out;
}

void save_model_file(const Graph& g, const std::string& path) {
  Planned p;
  plan(g, &p);
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw Error(ErrorCode::Runtime, str_cat("heron model: cannot open '", path, "' for writing: ", std::strerror(errno)));
  bool ok = true;
  int err = 0;
  emit(p, [&](const void* d, uint64_t n) {
    if (ok && n && std::fwrite(d, 1, static_cast<size_t>(n), f) != n) ok = false, err = errno;
  });
  if (std::fclose(f) != 0 && ok) ok = false, err = errno;
  if (!ok) throw Error(ErrorCode::Runtime, str_cat("heron model: writing '", path, "' failed: ", std::strerror(err)));
}

Graph load_model(const uint8_t* data, size_t size) { return parse(data, size, std::string(), nullptr); }

Graph load_model_file(const std::string& path) {
  auto file = io::MappedFile::open(path, "heron model", &fail);
  const std::string what = str_cat("'", path, "'");
  if (file->size() == 0) fail(what, "the file is empty");
  return parse(file->data(), file->size(), what, file.get());
}

}  // namespace graph
}  // namespace heron
