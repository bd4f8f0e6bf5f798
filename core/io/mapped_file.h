// A file mapped into memory privately (copy-on-write: writing through a tensor that views it never
// reaches the file), shared by the storages that view it: the mapping lives as long as any of them.
// Used by the safetensors reader and the .heron model reader.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/tensor/tensor.h"

namespace heron {
namespace io {

class MappedFile : public std::enable_shared_from_this<MappedFile> {
 public:
  // Maps `path`. I/O failures throw Runtime errors "<who>: cannot open|stat|map '<path>': <reason>";
  // a path that is not a regular file is passed to reject("'<path>'", "not a regular file"), which
  // must throw (each reader words its own format errors). An empty file maps to size() == 0.
  static std::shared_ptr<const MappedFile> open(const std::string& path, const char* who,
                                                void (*reject)(const std::string& what, const std::string& msg));
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return static_cast<const uint8_t*>(addr_); }
  size_t size() const { return len_; }
  // A host storage over [p, p + n) inside the mapping that keeps the mapping alive.
  Ref<Storage> storage(const void* p, size_t n) const;

 private:
  MappedFile() = default;
  void* addr_ = nullptr;
  size_t len_ = 0;
};

}  // namespace io
}  // namespace heron
