// The C ABI of named tensor maps and safetensors (heron.h, section "named tensor maps and
// safetensors"). Every entry point catches everything: no exception crosses.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <nlohmann/json.hpp>
#include <string>

#include "c_api/include/heron.h"
#include "c_api/src/internal.h"
#include "core/io/safetensors.h"
#include "core/util/refcount.h"

using namespace heron;

struct heron_tensor_map {
  static constexpr uint64_t kLiveMagic = 0x48455230544d4150ULL;  // "HER0TMAP"
  uint64_t magic = kLiveMagic;
  io::TensorMap map;
  std::string metadata_json;  // scratch for heron_tensor_map_metadata_json
  capi::LiveCount live;
  ~heron_tensor_map() { magic = 0; }
};

namespace {
using capi::give;
using capi::null_arg;

heron_tensor_map* live_map(const heron_tensor_map* m, const char* fn) {
  if (!m) null_arg(fn, "map");
  if (m->magic != heron_tensor_map::kLiveMagic)
    throw Error(ErrorCode::NullHandle, str_cat(fn, ": map is not a live tensor map handle (already released?)"));
  return const_cast<heron_tensor_map*>(m);
}


std::map<std::string, std::string> parse_metadata(const char* json, const char* fn) {
  nlohmann::json j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    throw Error(ErrorCode::InvalidArgument, str_cat(fn, ": metadata must be a JSON object of strings, got '", json, "'"));
  std::map<std::string, std::string> out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it.value().is_string())
      throw Error(ErrorCode::InvalidArgument, str_cat(fn, ": metadata value of '", it.key(), "' is not a string"));
    out[it.key()] = it.value().get<std::string>();
  }
  return out;
}

heron_tensor_map* new_map(io::TensorMap&& m) {
  auto* h = new heron_tensor_map();
  h->map = std::move(m);
  return h;
}

std::string save_bytes(const heron_tensor_map* h, const char* metadata_json, const char* fn) {
  const auto* m = live_map(h, fn);
  if (metadata_json) {
    auto md = parse_metadata(metadata_json, fn);
    return io::save_safetensors_buffer(m->map, &md);
  }
  return io::save_safetensors_buffer(m->map, m->map.metadata.empty() ? nullptr : &m->map.metadata);
}

}  // namespace

extern "C" {

heron_status heron_tensor_map_create(heron_tensor_map** out) {
  HERON_CAPI_TRY
  if (!out) null_arg("tensor_map_create", "out");
  *out = new heron_tensor_map();
  return HERON_OK;
  HERON_CAPI_CATCH
}

void heron_tensor_map_release(heron_tensor_map* map) {
  if (!map || map->magic != heron_tensor_map::kLiveMagic) return;
  delete map;
}

heron_status heron_tensor_map_size(const heron_tensor_map* map, size_t* out) {
  HERON_CAPI_TRY
  const auto* m = live_map(map, "tensor_map_size");
  if (!out) null_arg("tensor_map_size", "out");
  *out = m->map.size();
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_tensor_map_key(const heron_tensor_map* map, size_t i, const char** out) {
  HERON_CAPI_TRY
  const auto* m = live_map(map, "tensor_map_key");
  if (!out) null_arg("tensor_map_key", "out");
  if (i >= m->map.size())
    throw Error(ErrorCode::IndexError, str_cat("tensor_map_key: index ", i, " is out of range for a map of ", m->map.size(), " tensors"));
  *out = m->map.key(i).c_str();
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_tensor_map_tensor(const heron_tensor_map* map, size_t i, heron_tensor** out) {
  HERON_CAPI_TRY
  const auto* m = live_map(map, "tensor_map_tensor");
  if (!out) null_arg("tensor_map_tensor", "out");
  if (i >= m->map.size())
    throw Error(ErrorCode::IndexError, str_cat("tensor_map_tensor: index ", i, " is out of range for a map of ", m->map.size(), " tensors"));
  *out = give(m->map.tensor(i));
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_tensor_map_get(const heron_tensor_map* map, const char* name, heron_tensor** out) {
  HERON_CAPI_TRY
  const auto* m = live_map(map, "tensor_map_get");
  if (!name) null_arg("tensor_map_get", "name");
  if (!out) null_arg("tensor_map_get", "out");
  const Tensor* t = m->map.find(name);
  if (!t) throw Error(ErrorCode::NotFound, str_cat("tensor_map_get: no tensor named '", name, "' in the map"));
  *out = give(*t);
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_tensor_map_set(heron_tensor_map* map, const char* name, heron_tensor* t) {
  HERON_CAPI_TRY
  auto* m = live_map(map, "tensor_map_set");
  if (!name) null_arg("tensor_map_set", "name");
  Tensor x = capi::borrow_tensor(t, "tensor_map_set", "tensor");
  m->map.set(name, x);
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_tensor_map_metadata_json(const heron_tensor_map* map, const char** out) {
  HERON_CAPI_TRY
  auto* m = live_map(map, "tensor_map_metadata_json");
  if (!out) null_arg("tensor_map_metadata_json", "out");
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : m->map.metadata) j[k] = v;
  m->metadata_json = j.dump();
  *out = m->metadata_json.c_str();
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_tensor_map_set_metadata_json(heron_tensor_map* map, const char* metadata_json) {
  HERON_CAPI_TRY
  auto* m = live_map(map, "tensor_map_set_metadata_json");
  if (!metadata_json) m->map.metadata.clear();
  else m->map.metadata = parse_metadata(metadata_json, "tensor_map_set_metadata_json");
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_safetensors_load_file(const char* path, heron_tensor_map** out) {
  HERON_CAPI_TRY
  if (!path) null_arg("safetensors_load_file", "path");
  if (!out) null_arg("safetensors_load_file", "out");
  *out = new_map(io::load_safetensors_file(path));
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_safetensors_load_buffer(const void* data, size_t len, heron_tensor_map** out) {
  HERON_CAPI_TRY
  if (!data && len) null_arg("safetensors_load_buffer", "data");
  if (!out) null_arg("safetensors_load_buffer", "out");
  *out = new_map(io::load_safetensors_buffer(data, len, "<buffer>"));
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_safetensors_save_file(const char* path, const heron_tensor_map* map, const char* metadata_json) {
  HERON_CAPI_TRY
  if (!path) null_arg("safetensors_save_file", "path");
  std::string bytes = save_bytes(map, metadata_json, "safetensors_save_file");
  FILE* f = std::fopen(path, "wb");
  if (!f) throw Error(ErrorCode::Runtime, str_cat("safetensors: cannot open '", path, "' for writing: ", std::strerror(errno)));
  size_t w = std::fwrite(bytes.data(), 1, bytes.size(), f);
  bool ok = std::fclose(f) == 0 && w == bytes.size();
  if (!ok) throw Error(ErrorCode::Runtime, str_cat("safetensors: writing '", path, "' failed: ", std::strerror(errno)));
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_safetensors_save_buffer(const heron_tensor_map* map, const char* metadata_json, uint8_t** out_bytes, size_t* out_len) {
  HERON_CAPI_TRY
  if (!out_bytes) null_arg("safetensors_save_buffer", "out_bytes");
  if (!out_len) null_arg("safetensors_save_buffer", "out_len");
  std::string bytes = save_bytes(map, metadata_json, "safetensors_save_buffer");
  auto* buf = static_cast<uint8_t*>(std::malloc(bytes.size() ? bytes.size() : 1));
  if (!buf) throw std::bad_alloc();
  std::memcpy(buf, bytes.data(), bytes.size());
  *out_bytes = buf;
  *out_len = bytes.size();
  return HERON_OK;
  HERON_CAPI_CATCH
}

void heron_safetensors_free_buffer(uint8_t* bytes) { std::free(bytes); }

}  // extern "C"
