// The safetensors format (https://github.com/huggingface/safetensors), read and written by the core:
//   8-byte little-endian header length N | N bytes of JSON header | the byte buffer.
// The header maps tensor names to {"dtype", "shape", "data_offsets": [begin, end]} (offsets into the
// byte buffer) and may hold "__metadata__" (string -> string). Supported dtypes: F32 F64 F16 BF16
// I8 U8 I32 I64 BOOL. Loading verifies everything (the input is untrusted).
#pragma once
#include <cstddef>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor/tensor.h"

namespace heron {
namespace io {

// Named tensors, kept sorted by name (names are unique), plus string metadata.
class TensorMap {
 public:
  size_t size() const { return items_.size(); }
  const std::string& key(size_t i) const { return items_.at(i).first; }
  const Tensor& tensor(size_t i) const { return items_.at(i).second; }
  // nullptr when absent.
  const Tensor* find(const std::string& name) const;
  // Inserts or replaces.
  void set(const std::string& name, Tensor t);
  bool erase(const std::string& name);
  const std::vector<std::pair<std::string, Tensor>>& items() const { return items_; }
  std::map<std::string, std::string> metadata;
 private:
  std::vector<std::pair<std::string, Tensor>> items_;
};

// Largest accepted header (as the reference implementation: 100 MB).
constexpr uint64_t kSafetensorsMaxHeader = 100000000ULL;

// Reads a file. The file is memory-mapped (private, copy-on-write) and tensors whose data is
// aligned for their dtype wrap the mapping zero-copy; the mapping lives as long as any of them.
// Errors (heron::Error, InvalidArgument; Runtime for I/O) name the file and the tensor.
TensorMap load_safetensors_file(const std::string& path);
// Parses a buffer; the tensors are copies (the buffer may be freed afterwards). `what` names the
// source in errors.
TensorMap load_safetensors_buffer(const void* data, size_t len, const std::string& what = "<buffer>");

// Serializes: tensors made contiguous and moved to the host; data ordered like the reference
// implementation (descending dtype alignment, then name); header padded with spaces to a multiple of
// 8 bytes. `metadata` is written as "__metadata__" when non-null.
std::string save_safetensors_buffer(const TensorMap& map, const std::map<std::string, std::string>* metadata);
void save_safetensors_file(const std::string& path, const TensorMap& map, const std::map<std::string, std::string>* metadata);

// The safetensors dtype string ("F32", ...) of a dtype, and back (false when unknown/unsupported).
const char* safetensors_dtype_name(DType dt);
bool safetensors_parse_dtype(const std::string& s, DType* out);

}  // namespace io
}  // namespace heron
