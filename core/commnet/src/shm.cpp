#include "shm.h"

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#if defined(__linux__)
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

#include "net.h"

namespace heron_commnet {
namespace shm {

namespace {
constexpr size_t kDataOffset = 256;  // RingHeader fits; keeps the data cache-line aligned
static_assert(sizeof(RingHeader) <= kDataOffset, "RingHeader grew");
}  // namespace

#if defined(__linux__)
bool available() { return true; }

Status Ring::create(const std::string& name, size_t capacity, std::unique_ptr<Ring>* out) {
  if (capacity == 0 || (capacity & (capacity - 1)) != 0)
    return Status(ErrorCode::kInvalidArgument, "shared-memory ring capacity must be a power of two");
  int fd = ::shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd < 0) return Status(ErrorCode::kIo, "shm_open(" + name + "): " + net::errno_string(errno));
  size_t size = kDataOffset + capacity;
  // Reserve the pages now: on a full /dev/shm, a lazily allocated page would fault (SIGBUS) on
  // first touch; this fails cleanly instead (and the pair stays on TCP).
  int fe = ::posix_fallocate(fd, 0, static_cast<off_t>(size));
  if (fe != 0) {
    Status st(ErrorCode::kIo, "posix_fallocate(" + name + "): " + net::errno_string(fe));
    ::close(fd);
    ::shm_unlink(name.c_str());
    return st;
  }
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) {
    ::shm_unlink(name.c_str());
    return Status(ErrorCode::kIo, "mmap(" + name + "): " + net::errno_string(errno));
  }
  std::unique_ptr<Ring> r(new Ring());
  r->hdr_ = new (p) RingHeader();
  r->hdr_->magic = kRingMagic;
  r->hdr_->version = kRingVersion;
  r->hdr_->capacity = capacity;
  r->hdr_->head.store(0);
  r->hdr_->tail.store(0);
  r->hdr_->consumer_waiting.store(0);
  r->hdr_->producer_waiting.store(0);
  r->data_ = static_cast<uint8_t*>(p) + kDataOffset;
  r->cap_ = capacity;
  r->map_size_ = size;
  r->name_ = name;
  *out = std::move(r);
  return Status::OK();
}

Status Ring::open(const std::string& name, std::unique_ptr<Ring>* out) {
  int fd = ::shm_open(name.c_str(), O_RDWR, 0600);
  if (fd < 0) return Status(ErrorCode::kIo, "shm_open(" + name + "): " + net::errno_string(errno));
  struct stat sb {};
  if (::fstat(fd, &sb) != 0 || sb.st_size < static_cast<off_t>(kDataOffset)) {
    ::close(fd);
    return Status(ErrorCode::kProtocol, "shared-memory segment " + name + " is too small");
  }
  size_t size = static_cast<size_t>(sb.st_size);
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) return Status(ErrorCode::kIo, "mmap(" + name + "): " + net::errno_string(errno));
  auto* h = static_cast<RingHeader*>(p);
  uint64_t cap = h->capacity;
  if (h->magic != kRingMagic || h->version != kRingVersion || cap == 0 || (cap & (cap - 1)) != 0 ||
      cap != size - kDataOffset) {
    ::munmap(p, size);
    return Status(ErrorCode::kProtocol, "shared-memory segment " + name + " has a bad header");
  }
  std::unique_ptr<Ring> r(new Ring());
  r->hdr_ = h;
  r->data_ = static_cast<uint8_t*>(p) + kDataOffset;
  r->cap_ = static_cast<size_t>(cap);
  r->map_size_ = size;
  r->name_ = name;
  *out = std::move(r);
  return Status::OK();
}

void Ring::unlink(const std::string& name) { ::shm_unlink(name.c_str()); }

}  // namespace shm

int remove_stale_segments(const std::string& prefix) {
  DIR* d = ::opendir("/dev/shm");
  if (!d) return 0;
  int removed = 0;
  while (dirent* e = ::readdir(d)) {
    const char* n = e->d_name;
    if (prefix.empty() || std::strncmp(n, prefix.c_str(), prefix.size()) != 0) continue;
    const char* p = n + prefix.size();
    char* end = nullptr;
    errno = 0;
    const long pid = std::strtol(p, &end, 10);
    if (errno != 0 || end == p || *end != '-' || pid <= 0 || pid > INT_MAX) continue;
    // Only a process that is certainly gone: ESRCH. EPERM (another user's live process) keeps it.
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
    if (::shm_unlink((std::string("/") + n).c_str()) == 0) ++removed;
  }
  ::closedir(d);
  return removed;
}

namespace shm {

Ring::~Ring() {
  if (hdr_) ::munmap(hdr_, map_size_);
}
#else
}  // namespace shm
int remove_stale_segments(const std::string&) { return 0; }
namespace shm {
bool available() { return false; }
Status Ring::create(const std::string&, size_t, std::unique_ptr<Ring>*) {
  return Status(ErrorCode::kInvalidArgument, "shared-memory rings are not supported on this platform");
}
Status Ring::open(const std::string&, std::unique_ptr<Ring>*) {
  return Status(ErrorCode::kInvalidArgument, "shared-memory rings are not supported on this platform");
}
void Ring::unlink(const std::string&) {}
Ring::~Ring() {}
#endif

size_t Ring::free_space(Status* err) const {
  uint64_t head = hdr_->head.load(std::memory_order_relaxed);  // ours
  uint64_t tail = hdr_->tail.load(std::memory_order_seq_cst);
  if (head - tail > cap_) {
    *err = Status(ErrorCode::kProtocol, "shared-memory ring corrupted (consumer position beyond the producer's)");
    return 0;
  }
  return cap_ - static_cast<size_t>(head - tail);
}

size_t Ring::write(const iovec* iov, int n, Status* err) {
  size_t room = free_space(err);
  if (!err->ok() || room == 0) return 0;
  uint64_t head = hdr_->head.load(std::memory_order_relaxed);
  size_t done = 0;
  for (int i = 0; i < n && room > 0; ++i) {
    const uint8_t* src = static_cast<const uint8_t*>(iov[i].iov_base);
    size_t len = std::min(iov[i].iov_len, room);
    size_t pos = static_cast<size_t>((head + done) & (cap_ - 1));
    size_t first = std::min(len, cap_ - pos);
    std::memcpy(data_ + pos, src, first);
    if (len > first) std::memcpy(data_, src + first, len - first);
    done += len;
    room -= len;
    if (len < iov[i].iov_len) break;
  }
  hdr_->head.store(head + done, std::memory_order_seq_cst);
  return done;
}

size_t Ring::available(Status* err) const {
  uint64_t head = hdr_->head.load(std::memory_order_seq_cst);
  uint64_t tail = hdr_->tail.load(std::memory_order_relaxed);  // ours
  if (head - tail > cap_) {
    *err = Status(ErrorCode::kProtocol, "shared-memory ring corrupted (producer position out of range)");
    return 0;
  }
  return static_cast<size_t>(head - tail);
}

size_t Ring::read(void* dst, size_t n, Status* err) {
  size_t avail = available(err);
  if (!err->ok()) return 0;
  n = std::min(n, avail);
  if (n == 0) return 0;
  uint64_t tail = hdr_->tail.load(std::memory_order_relaxed);
  size_t pos = static_cast<size_t>(tail & (cap_ - 1));
  size_t first = std::min(n, cap_ - pos);
  std::memcpy(dst, data_ + pos, first);
  if (n > first) std::memcpy(static_cast<uint8_t*>(dst) + first, data_, n - first);
  hdr_->tail.store(tail + n, std::memory_order_seq_cst);
  return n;
}

}  // namespace shm
}  // namespace heron_commnet
