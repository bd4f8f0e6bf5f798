#include "core/io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/ops/dispatcher.h"  // host_device()

namespace heron {
namespace io {

namespace {
void release_mapping(void* ctx) { delete static_cast<std::shared_ptr<const MappedFile>*>(ctx); }
}  // namespace

std::shared_ptr<const MappedFile> MappedFile::open(const std::string& path, const char* who,
                                                   void (*reject)(const std::string& what, const std::string& msg)) {
  const std::string what = str_cat("'", path, "'");
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(ErrorCode::Runtime, str_cat(who, ": cannot open ", what, ": ", std::strerror(errno)));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    throw Error(ErrorCode::Runtime, str_cat(who, ": cannot stat ", what, ": ", std::strerror(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    reject(what, "not a regular file");
  }
  std::shared_ptr<MappedFile> m(new MappedFile());
  m->len_ = static_cast<size_t>(st.st_size);
  if (m->len_ > 0) {
    void* addr = mmap(nullptr, m->len_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    int err = errno;
    ::close(fd);
    if (addr == MAP_FAILED) throw Error(ErrorCode::Runtime, str_cat(who, ": cannot map ", what, ": ", std::strerror(err)));
    m->addr_ = addr;
  } else {
    ::close(fd);
  }
  return m;
}

MappedFile::~MappedFile() {
  if (addr_) munmap(addr_, len_);
}

Ref<Storage> MappedFile::storage(const void* p, size_t n) const {
  auto* ctx = new std::shared_ptr<const MappedFile>(shared_from_this());
  try {
    return make_ref<Storage>(const_cast<void*>(p), n, host_device(), &release_mapping, ctx);
  } catch (...) {
    delete ctx;
    throw;
  }
}

}  // namespace io
}  // namespace heron
