// safetensors reader and writer. See safetensors.h for the format and the guarantees.
#include "core/io/safetensors.h"

#include "core/io/mapped_file.h"


#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "core/ops/dispatcher.h"  // host_device()
#include "core/util/error.h"

namespace heron {
namespace io {

// ------------------------------------------------------------------ TensorMap
namespace {
auto lower(std::vector<std::pair<std::string, Tensor>>& v, const std::string& name) {
  return std::lower_bound(v.begin(), v.end(), name, [](const auto& a, const std::string& b) { return a.first < b; });
}
}  // namespace

const Tensor* TensorMap::find(const std::string& name) const {
  auto& v = const_cast<std::vector<std::pair<std::string, Tensor>>&>(items_);
  auto it = lower(v, name);
  return it != v.end() && it->first == name ? &it->second : nullptr;
}

void TensorMap::set(const std::string& name, Tensor t) {
  if (!t.defined()) throw Error(ErrorCode::InvalidArgument, str_cat("tensor map: the tensor for '", name, "' is undefined"));
  auto it = lower(items_, name);
  if (it != items_.end() && it->first == name) it->second = std::move(t);
  else items_.emplace(it, name, std::move(t));
}

bool TensorMap::erase(const std::string& name) {
  auto it = lower(items_, name);
  if (it == items_.end() || it->first != name) return false;
  items_.erase(it);
  return true;
}

// ------------------------------------------------------------------ dtypes
const char* safetensors_dtype_name(DType dt) {
  switch (dt) {
    case DType::Float32: return "F32";
    case DType::Float64: return "F64";
    case DType::Float16: return "F16";
    case DType::BFloat16: return "BF16";
    case DType::Int8: return "I8";
    case DType::UInt8: return "U8";
    case DType::Int32: return "I32";
    case DType::Int64: return "I64";
    case DType::Bool: return "BOOL";
  }
  return "?";
}

bool safetensors_parse_dtype(const std::string& s, DType* out) {
  static const std::pair<const char*, DType> table[] = {
      {"F32", DType::Float32}, {"F64", DType::Float64}, {"F16", DType::Float16}, {"BF16", DType::BFloat16}, {"I8", DType::Int8},
      {"U8", DType::UInt8},    {"I32", DType::Int32},   {"I64", DType::Int64},   {"BOOL", DType::Bool}};
  for (const auto& [name, dt] : table)
    if (s == name) {
      *out = dt;
      return true;
    }
  return false;
}

namespace {

// The reference implementation's dtype order (its enum order); data is laid out by descending rank.
int dtype_rank(DType dt) {
  switch (dt) {
    case DType::Bool: return 0;
    case DType::UInt8: return 1;
    case DType::Int8: return 2;
    case DType::Float16: return 3;
    case DType::BFloat16: return 4;
    case DType::Int32: return 5;
    case DType::Float32: return 6;
    case DType::Float64: return 7;
    case DType::Int64: return 8;
  }
  return -1;
}

// Messages quote names and JSON from untrusted input: bytes that are not valid UTF-8 become \xNN so
// that every binding can decode the message.
std::string valid_utf8(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    unsigned char c = p[i];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    bool ok = len > 0 && i + len <= n && !(len == 2 && c < 0xc2);
    for (size_t k = 1; ok && k < len; ++k) ok = (p[i + k] & 0xc0) == 0x80;
    if (ok && len == 3) {
      unsigned cp = ((c & 0x0fu) << 12) | ((p[i + 1] & 0x3fu) << 6) | (p[i + 2] & 0x3fu);
      ok = cp >= 0x800 && (cp < 0xd800 || cp > 0xdfff);
    }
    if (ok && len == 4) {
      unsigned cp = ((c & 0x07u) << 18) | ((p[i + 1] & 0x3fu) << 12) | ((p[i + 2] & 0x3fu) << 6) | (p[i + 3] & 0x3fu);
      ok = cp >= 0x10000 && cp <= 0x10ffff;
    }
    if (ok && len == 1 && c < 0x20 && c != '\n' && c != '\t') ok = false;  // control bytes are escaped too
    if (ok) {
      out.append(s, i, len);
      i += len;
    } else {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
      i += 1;
    }
  }
  return out;
}

[[noreturn]] void fail(const std::string& what, const std::string& msg) {
  throw Error(ErrorCode::InvalidArgument, valid_utf8(str_cat("safetensors: ", what, ": ", msg)));
}

uint64_t read_le64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

struct Entry {
  std::string name;
  DType dtype;
  Dims shape;
  uint64_t begin, end;
};

// Parses and verifies the header of a complete file image [data, data + len). Returns the entries
// sorted by name and fills metadata; *data_start is the byte offset of the byte buffer.
std::vector<Entry> parse_header(const unsigned char* data, size_t len, const std::string& what,
                                std::map<std::string, std::string>* metadata, size_t* data_start) {
  if (len < 8) fail(what, str_cat("the input has ", len, " bytes, too few for the 8-byte header length"));
  const uint64_t n = read_le64(data);
  if (n > kSafetensorsMaxHeader)
    fail(what, str_cat("the header length ", n, " is larger than the limit of ", kSafetensorsMaxHeader, " bytes"));
  if (n > len - 8)
    fail(what, str_cat("the header length ", n, " runs past the end of the input (", len - 8, " bytes follow the length)"));
  if (n < 2 || data[8] != '{') fail(what, "the header is not a JSON object (it must start with '{')");
  const char* h = reinterpret_cast<const char*>(data + 8);
  // Top-level keys are collected to detect duplicates, which JSON parsers silently merge.
  std::set<std::string> seen;
  std::string dup;
  nlohmann::json::parser_callback_t cb = [&](int depth, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) {
    if (ev == nlohmann::json::parse_event_t::key && depth == 1 && parsed.is_string()) {
      const auto& k = parsed.get_ref<const std::string&>();
      if (!seen.insert(k).second && dup.empty()) dup = k;
    }
    return true;
  };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(h, h + n, cb, /*allow_exceptions=*/true);
  } catch (const nlohmann::json::exception& e) {
    fail(what, str_cat("the header is not valid JSON: ", e.what()));
  }
  if (!j.is_object()) fail(what, "the header is not a JSON object");
  if (!dup.empty()) fail(what, str_cat("tensor '", dup, "' appears more than once in the header"));
  const uint64_t buf_len = len - 8 - n;
  std::vector<Entry> entries;
  entries.reserve(j.size());
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const auto& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) fail(what, "__metadata__ must be an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) fail(what, str_cat("__metadata__ value of '", m.key(), "' is not a string"));
        if (metadata) (*metadata)[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string tw = str_cat("tensor '", name, "'");
    if (!v.is_object()) fail(what, str_cat(tw, ": the entry is not an object"));
    auto dt_it = v.find("dtype");
    auto sh_it = v.find("shape");
    auto of_it = v.find("data_offsets");
    if (dt_it == v.end() || sh_it == v.end() || of_it == v.end())
      fail(what, str_cat(tw, ": the entry needs the fields dtype, shape and data_offsets"));
    if (!dt_it->is_string()) fail(what, str_cat(tw, ": dtype is not a string"));
    Entry e;
    e.name = name;
    const std::string dts = dt_it->get<std::string>();
    if (!safetensors_parse_dtype(dts, &e.dtype))
      fail(what, str_cat(tw, ": unknown or unsupported dtype '", dts, "' (supported: F32 F64 F16 BF16 I8 U8 I32 I64 BOOL)"));
    if (!sh_it->is_array()) fail(what, str_cat(tw, ": shape is not an array"));
    if (sh_it->size() > 64) fail(what, str_cat(tw, ": shape has ", sh_it->size(), " dims, more than 64"));
    uint64_t numel = 1;
    bool overflow = false;
    for (const auto& d : *sh_it) {
      if (!d.is_number_unsigned()) fail(what, str_cat(tw, ": shape ", sh_it->dump(), " has an entry that is not a non-negative integer"));
      uint64_t dv = d.get<uint64_t>();
      if (dv > static_cast<uint64_t>(INT64_MAX)) overflow = true;
      if (__builtin_mul_overflow(numel, dv, &numel)) overflow = true;
      e.shape.push_back(static_cast<int64_t>(dv));
    }
    uint64_t nbytes = 0;
    if (overflow || numel > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(numel, itemsize(e.dtype), &nbytes))
      fail(what, str_cat(tw, ": shape ", sh_it->dump(), " has too many elements"));
    if (!of_it->is_array() || of_it->size() != 2 || !(*of_it)[0].is_number_unsigned() || !(*of_it)[1].is_number_unsigned())
      fail(what, str_cat(tw, ": data_offsets must be two non-negative integers [begin, end], got ", of_it->dump()));
    e.begin = (*of_it)[0].get<uint64_t>();
    e.end = (*of_it)[1].get<uint64_t>();
    if (e.begin > e.end) fail(what, str_cat(tw, ": data_offsets [", e.begin, ", ", e.end, "] end before they begin"));
    if (e.end > buf_len)
      fail(what, str_cat(tw, ": data_offsets [", e.begin, ", ", e.end, "] run past the end of the byte buffer (", buf_len, " bytes)"));
    if (e.end - e.begin != nbytes)
      fail(what, str_cat(tw, ": shape ", sh_it->dump(), " of dtype ", dts, " needs ", nbytes, " bytes but data_offsets [", e.begin, ", ",
                         e.end, "] span ", e.end - e.begin));
    entries.push_back(std::move(e));
  }
  // The byte ranges must tile the buffer exactly: no gaps, no overlaps, nothing left over.
  std::vector<const Entry*> by_off;
  for (const auto& e : entries) by_off.push_back(&e);
  std::sort(by_off.begin(), by_off.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t pos = 0;
  for (const Entry* e : by_off) {
    if (e->begin < pos)
      fail(what, str_cat("tensor '", e->name, "': data_offsets [", e->begin, ", ", e->end, "] overlap the previous tensor's data (which ends at ",
                         pos, ")"));
    if (e->begin > pos)
      fail(what, str_cat("tensor '", e->name, "': data_offsets [", e->begin, ", ", e->end, "] leave a gap of ", e->begin - pos,
                         " bytes before them (the data must be contiguous)"));
    pos = e->end;
  }
  if (pos != buf_len)
    fail(what, str_cat("the tensors cover ", pos, " bytes but the byte buffer has ", buf_len, " (trailing bytes not described by the header)"));
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });
  *data_start = static_cast<size_t>(8 + n);
  return entries;
}

Tensor copy_out(const unsigned char* src, const Entry& e) {
  Tensor t = Tensor::empty(e.shape, e.dtype, host_device());
  if (e.end > e.begin) std::memcpy(t.raw_data(), src, static_cast<size_t>(e.end - e.begin));
  return t;
}


}  // namespace

TensorMap load_safetensors_buffer(const void* data, size_t len, const std::string& what) {
  if (!data && len) fail(what, "the buffer is NULL");
  const auto* p = static_cast<const unsigned char*>(data);
  TensorMap out;
  size_t start = 0;
  std::vector<Entry> entries = parse_header(p, len, what, &out.metadata, &start);
  for (const Entry& e : entries) out.set(e.name, copy_out(p + start + e.begin, e));
  return out;
}

TensorMap load_safetensors_file(const std::string& path) {
  auto file = MappedFile::open(path, "safetensors", &fail);
  const std::string what = str_cat("'", path, "'");
  const size_t len = file->size();
  if (len < 8) fail(what, str_cat("the file has ", len, " bytes, too few for the 8-byte header length"));
  const auto* base = static_cast<const unsigned char*>(file->data());
  TensorMap out;
  size_t start = 0;
  std::vector<Entry> entries = parse_header(base, len, what, &out.metadata, &start);
  for (const Entry& e : entries) {
    const unsigned char* src = base + start + e.begin;
    const size_t nbytes = static_cast<size_t>(e.end - e.begin);
    if (nbytes == 0 || reinterpret_cast<uintptr_t>(src) % itemsize(e.dtype) != 0) {
      out.set(e.name, copy_out(src, e));  // empty, or misaligned for its dtype: a copy
      continue;
    }
    out.set(e.name, Tensor::make(file->storage(src, nbytes), e.dtype, e.shape, contiguous_strides(e.shape), 0));
  }
  return out;
}

std::string save_safetensors_buffer(const TensorMap& map, const std::map<std::string, std::string>* metadata) {
  struct Item {
    const std::string* name;
    Tensor t;
  };
  std::vector<Item> items;
  items.reserve(map.size());
  for (const auto& [name, t0] : map.items()) {
    if (name == "__metadata__") fail("save", "the name '__metadata__' is reserved for the metadata");
    Tensor t = t0.device() == host_device() ? t0 : t0.to(host_device());
    items.push_back({&name, t.contiguous()});
  }
  std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    int ra = dtype_rank(a.t.dtype()), rb = dtype_rank(b.t.dtype());
    return ra != rb ? ra > rb : *a.name < *b.name;
  });
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (metadata) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : *metadata) m[k] = v;
    header["__metadata__"] = std::move(m);
  }
  uint64_t off = 0;
  for (const Item& it : items) {
    nlohmann::ordered_json info = nlohmann::ordered_json::object();
    info["dtype"] = safetensors_dtype_name(it.t.dtype());
    nlohmann::ordered_json shape = nlohmann::ordered_json::array();
    for (int64_t d : it.t.shape()) shape.push_back(static_cast<uint64_t>(d));
    info["shape"] = std::move(shape);
    const uint64_t nb = it.t.nbytes();
    info["data_offsets"] = nlohmann::ordered_json::array({off, off + nb});
    header[*it.name] = std::move(info);
    off += nb;
  }
  std::string h;
  try {
    h = header.dump();
  } catch (const nlohmann::json::exception& e) {
    fail("save", str_cat("cannot encode the header (names and metadata must be valid UTF-8): ", e.what()));
  }
  h.append((8 - h.size() % 8) % 8, ' ');
  std::string out;
  out.reserve(8 + h.size() + off);
  uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out += h;
  for (const Item& it : items)
    if (it.t.nbytes()) out.append(static_cast<const char*>(it.t.raw_data()), it.t.nbytes());
  return out;
}

void save_safetensors_file(const std::string& path, const TensorMap& map, const std::map<std::string, std::string>* metadata) {
  std::string bytes = save_safetensors_buffer(map, metadata);
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw Error(ErrorCode::Runtime, str_cat("safetensors: cannot open '", path, "' for writing: ", std::strerror(errno)));
  size_t w = std::fwrite(bytes.data(), 1, bytes.size(), f);
  int err = errno;
  if (std::fclose(f) != 0 && w == bytes.size()) err = errno, w = 0;
  if (w != bytes.size()) throw Error(ErrorCode::Runtime, str_cat("safetensors: writing '", path, "' failed: ", std::strerror(err)));
}

}  // namespace io
}  // namespace heron
