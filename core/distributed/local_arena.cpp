#include "core/distributed/local_arena.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <new>
#include <random>
#include <thread>

#if defined(__linux__)
#include <fcntl.h>
#include <sched.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "core/util/cpu_relax.h"
#include "core/util/error.h"

namespace heron {
namespace distributed {

namespace cn = heron_commnet;
using cn::ErrorCode;
using cn::Status;
using Clock = std::chrono::steady_clock;

struct LocalArena::Header {
  uint32_t magic;
  uint32_t version;
  uint32_t nranks;
  uint32_t reserved;
  uint64_t slot_bytes;
  // 0: healthy; else (failed rank + 1) | kind << 16 (kind 1: timeout, 2: arguments differ,
  // 3: a communication failure, 4: the rank destroyed its group).
  alignas(64) std::atomic<uint32_t> abort_word;
};

struct Desc {
  uint64_t count;
  int32_t dtype;
  int32_t op;
};

// One per rank, written only by that rank (the sleepers count also by waiters on its counters).
// Call s (1, 2, ...) raises `posted` and the direct-mode counters to s; the copy-mode counters count
// chunks and windows over all calls. addr and desc are those of the current call: every peer reads
// them before it publishes anything of that call this rank waits for, so the next call may rewrite
// them.
struct alignas(64) LocalArena::Control {
  std::atomic<uint32_t> posted;    // call s: addr and desc are valid
  std::atomic<uint32_t> sleepers;  // waiters blocked in futex on one of this line's counters
  // copy mode (chunk counters, cumulative over calls)
  std::atomic<uint32_t> copied;    // chunks of the peers' shares copied into this rank's slot
  std::atomic<uint32_t> reduced;   // chunks of this rank's share reduced (result in its slot)
  std::atomic<uint32_t> done;      // end of a window: nothing more read from the peers' slots
  // direct mode (call counters)
  std::atomic<uint32_t> d_reduced;  // call s: this rank's share of its tensor holds the result
  std::atomic<uint32_t> d_done;     // call s: this rank finished reading the peers' tensors
  uint32_t reserved;
  uint64_t addr;                   // the tensor's address in this rank's process
  Desc desc;                       // the call's size, dtype and op (checked by the peers)
};

namespace {
constexpr size_t kControlOffset = 256;
constexpr size_t kControlStride = 256;
constexpr size_t kDataOffset = 4096;
constexpr int64_t kSpinNs = 50000;  // poll (yielding) this long on a counter before blocking in futex
constexpr std::chrono::milliseconds kSlice{2};  // futex slices: health and abort checks in between
static_assert(kControlOffset + LocalArena::kMaxRanks * kControlStride <= kDataOffset, "controls overflow");

size_t segment_bytes(int n, size_t slot) { return kDataOffset + static_cast<size_t>(n) * 2 * slot; }

constexpr int kPauseSpins = 64;  // pause instructions before yielding (a pause is ~40-65 cycles on recent AMD)

inline void yield_cpu() {
#if defined(__linux__)
  ::sched_yield();
#else
  std::this_thread::yield();
#endif
}

#if defined(__linux__)
void futex_wake_all(std::atomic<uint32_t>* a) {
  ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(a), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}
void futex_wait(std::atomic<uint32_t>* a, uint32_t expected, std::chrono::nanoseconds d) {
  timespec ts;
  ts.tv_sec = static_cast<time_t>(d.count() / 1000000000);
  ts.tv_nsec = static_cast<long>(d.count() % 1000000000);
  ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(a), FUTEX_WAIT, expected, &ts, nullptr, 0);
}
#endif

std::string errno_text(int e) { return std::strerror(e); }
}  // namespace

#if defined(__linux__)
Status LocalArena::create(int nranks, int rank, std::string* name, std::unique_ptr<LocalArena>* out) {
  if (nranks < 2 || nranks > kMaxRanks) return Status(ErrorCode::kInvalidArgument, "arena: unsupported group size");
  heron_commnet::remove_stale_segments("heron-dist-");  // arenas of processes killed while setting up
  std::random_device rd;
  *name = "/heron-dist-" + std::to_string(::getpid()) + "-" + std::to_string(rd()) + std::to_string(rd() & 0xffff);
  int fd = ::shm_open(name->c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd < 0) return Status(ErrorCode::kIo, "shm_open(" + *name + "): " + errno_text(errno));
  const size_t slot = kSlotBytes;
  size_t size = segment_bytes(nranks, slot);
  // Reserve the pages now: a full /dev/shm fails here instead of a SIGBUS on first touch.
  int fe = ::posix_fallocate(fd, 0, static_cast<off_t>(size));
  if (fe != 0) {
    ::close(fd);
    ::shm_unlink(name->c_str());
    return Status(ErrorCode::kIo, "posix_fallocate(" + *name + "): " + errno_text(fe));
  }
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) {
    ::shm_unlink(name->c_str());
    return Status(ErrorCode::kIo, "mmap(" + *name + "): " + errno_text(errno));
  }
  std::unique_ptr<LocalArena> a(new LocalArena());
  a->hdr_ = new (p) Header();
  a->hdr_->magic = kMagic;
  a->hdr_->version = kVersion;
  a->hdr_->nranks = static_cast<uint32_t>(nranks);
  a->hdr_->slot_bytes = slot;
  a->slot_bytes_ = slot;
  a->hdr_->abort_word.store(0);
  for (int r = 0; r < nranks; ++r) {
    auto* c = new (static_cast<uint8_t*>(p) + kControlOffset + r * kControlStride) Control();
    c->posted.store(0);
    c->sleepers.store(0);
    c->copied.store(0);
    c->reduced.store(0);
    c->done.store(0);
    c->d_reduced.store(0);
    c->d_done.store(0);
  }
  a->data_ = static_cast<uint8_t*>(p) + kDataOffset;
  a->map_size_ = size;
  a->n_ = nranks;
  a->rank_ = rank;
  *out = std::move(a);
  return Status::OK();
}

Status LocalArena::open(const std::string& name, int nranks, int rank, std::unique_ptr<LocalArena>* out) {
  int fd = ::shm_open(name.c_str(), O_RDWR, 0600);
  if (fd < 0) return Status(ErrorCode::kIo, "shm_open(" + name + "): " + errno_text(errno));
  struct stat sb {};
  if (::fstat(fd, &sb) != 0 || static_cast<size_t>(sb.st_size) < kDataOffset) {
    ::close(fd);
    return Status(ErrorCode::kProtocol, "shared-memory arena " + name + " has the wrong size");
  }
  const size_t size = static_cast<size_t>(sb.st_size);
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) return Status(ErrorCode::kIo, "mmap(" + name + "): " + errno_text(errno));
  auto* h = static_cast<Header*>(p);
  const uint64_t slot = h->slot_bytes;
  if (h->magic != kMagic || h->version != kVersion || h->nranks != static_cast<uint32_t>(nranks) || slot < 4096 ||
      slot > (uint64_t(1) << 30) || slot % 4096 != 0 || segment_bytes(nranks, slot) != size) {
    ::munmap(p, size);
    return Status(ErrorCode::kProtocol, "shared-memory arena " + name + " has a bad header");
  }
  std::unique_ptr<LocalArena> a(new LocalArena());
  a->hdr_ = h;
  a->slot_bytes_ = static_cast<size_t>(slot);
  a->data_ = static_cast<uint8_t*>(p) + kDataOffset;
  a->map_size_ = size;
  a->n_ = nranks;
  a->rank_ = rank;
  *out = std::move(a);
  return Status::OK();
}

void LocalArena::unlink(const std::string& name) { ::shm_unlink(name.c_str()); }

LocalArena::~LocalArena() {
  if (hdr_) ::munmap(hdr_, map_size_);
}
#else
Status LocalArena::create(int, int, std::string*, std::unique_ptr<LocalArena>*) {
  return Status(ErrorCode::kInvalidArgument, "the shared-memory all-reduce needs Linux");
}
Status LocalArena::open(const std::string&, int, int, std::unique_ptr<LocalArena>*) {
  return Status(ErrorCode::kInvalidArgument, "the shared-memory all-reduce needs Linux");
}
void LocalArena::unlink(const std::string&) {}
LocalArena::~LocalArena() {}
void futex_wake_all(std::atomic<uint32_t>*) {}
void futex_wait(std::atomic<uint32_t>*, uint32_t, std::chrono::nanoseconds d) { std::this_thread::sleep_for(d); }
#endif

uint8_t* LocalArena::slot(int r, int half) const { return data_ + (static_cast<size_t>(r) * 2 + half) * slot_bytes_; }

LocalArena::Control* LocalArena::ctl(int r) const {
  static_assert(sizeof(Control) <= kControlStride, "control line grew");
  return reinterpret_cast<Control*>(reinterpret_cast<uint8_t*>(hdr_) + kControlOffset + r * kControlStride);
}

void LocalArena::publish(std::atomic<uint32_t>* c, uint32_t v, bool phase_end) {
  // Dekker with the waiters: they raise `sleepers` and then re-read the counter before sleeping.
  // Sleepers only wait for phase ends (see wait()), so only those wake them.
  c->store(v, std::memory_order_seq_cst);
  if (phase_end && ctl(rank_)->sleepers.load(std::memory_order_seq_cst) != 0) futex_wake_all(c);
}

Status LocalArena::fail(Status st) {
  if (!broken_) {
    broken_ = true;
    uint32_t kind = st.code() == ErrorCode::kTimeout           ? 1
                    : st.code() == ErrorCode::kInvalidArgument ? 2
                    : st.code() == ErrorCode::kClosed          ? 4
                                                               : 3;
    uint32_t expected = 0;
    hdr_->abort_word.compare_exchange_strong(expected, static_cast<uint32_t>(rank_ + 1) | (kind << 16));
    for (int r = 0; r < n_; ++r) {
      Control* c = ctl(r);
      for (auto* a : {&c->posted, &c->copied, &c->reduced, &c->done, &c->d_reduced, &c->d_done}) futex_wake_all(a);
    }
  }
  return st;
}

void LocalArena::abandon() { fail(Status(ErrorCode::kClosed, "the process group was destroyed")); }

namespace {
Status abort_status(uint32_t word, int me, cn::Communicator* comm) {
  int who = static_cast<int>(word & 0xffff) - 1;
  uint32_t kind = word >> 16;
  std::string base = str_cat("rank ", me, ": group rank ", who, " gave up the shared-memory all_reduce");
  if (comm) {
    Status h = comm->health();  // the root cause, when the communicator knows it (a dead peer)
    if (!h.ok()) return Status(h.code(), base + ": " + h.message());
  }
  if (kind == 1) return Status(ErrorCode::kTimeout, base + " (it timed out)");
  if (kind == 2) return Status(ErrorCode::kInvalidArgument, base + " (the tensors differ in size, dtype or op across ranks)");
  if (kind == 4) return Status(ErrorCode::kPeerGone, base + " (it destroyed the process group)");
  return Status(ErrorCode::kPeerGone, base + " (a communication failure)");
}
}  // namespace

Status LocalArena::wait(int owner, std::atomic<uint32_t>* c, uint32_t target, uint32_t phase_end, cn::Communicator* comm,
                        Clock::time_point deadline, const char* what) {
  auto reached = [&target](uint32_t v) { return static_cast<int32_t>(v - target) >= 0; };
  if (reached(c->load(std::memory_order_acquire))) return Status::OK();
  // Spin: a few microseconds of pause, then sched_yield() between checks (on a busy machine the
  // peer may be waiting for this very CPU; on an idle one yield returns at once).
  for (int i = 0; i < kPauseSpins; ++i) {
    cpu_relax();
    if (reached(c->load(std::memory_order_acquire))) return Status::OK();
  }
  const Clock::time_point spin_until = Clock::now() + std::chrono::nanoseconds(kSpinNs);
  for (;;) {
    yield_cpu();
    if (reached(c->load(std::memory_order_acquire))) return Status::OK();
    if (uint32_t w = hdr_->abort_word.load(std::memory_order_acquire)) return abort_status(w, rank_, comm);
    if (Clock::now() >= spin_until) break;
  }
  // The peer is behind: rather than sleeping once per chunk, sleep until its phase is complete (the
  // publisher wakes sleepers only at phase ends), so a descheduled peer costs one wake-up per phase.
  target = phase_end;
  std::atomic<uint32_t>& sleepers = ctl(owner)->sleepers;
  sleepers.fetch_add(1, std::memory_order_seq_cst);
  Status st;
  for (;;) {
    uint32_t v = c->load(std::memory_order_seq_cst);
    if (reached(v)) break;
    if (uint32_t w = hdr_->abort_word.load(std::memory_order_acquire)) {
      st = abort_status(w, rank_, comm);
      break;
    }
    Status h = comm->health();
    if (!h.ok()) {
      st = Status(h.code(), str_cat("rank ", rank_, " waiting for group rank ", owner, " (", what, "): ", h.message()));
      break;
    }
    Clock::time_point now = Clock::now();
    if (now >= deadline) {
      st = Status(ErrorCode::kTimeout, str_cat("rank ", rank_, " waited for group rank ", owner, " (", what,
                                               ") until the operation timed out"));
      break;
    }
    futex_wait(c, v, std::min<std::chrono::nanoseconds>(deadline - now, kSlice));
  }
  sleepers.fetch_sub(1, std::memory_order_seq_cst);
  return st;
}

Status LocalArena::check_peer(int q, size_t count, DType dt, ReduceOp op, cn::Communicator* comm,
                              Clock::time_point deadline, uint64_t* addr) {
  Status st = wait(q, &ctl(q)->posted, calls_, calls_, comm, deadline, "the start of the call");
  if (!st.ok()) return st;
  const Desc d = ctl(q)->desc;
  if (d.count != count || d.dtype != static_cast<int32_t>(dt) || d.op != static_cast<int32_t>(op))
    return Status(ErrorCode::kInvalidArgument,
                  str_cat("rank ", rank_, " all-reduces ", count, " elements of ", dtype_name(dt), " (op ", static_cast<int>(op),
                          "); group rank ", q, " ", d.count, " elements (dtype ", d.dtype, ", op ", d.op,
                          "): the tensors differ across ranks"));
  *addr = ctl(q)->addr;
  return Status::OK();
}

Status LocalArena::all_reduce(uint8_t* buf, size_t count, DType dt, ReduceOp op, const std::vector<int>& global,
                              cn::Communicator* comm, std::chrono::milliseconds timeout) {
  if (broken_) return Status(ErrorCode::kClosed, "the group's shared-memory all_reduce failed earlier; it stays unusable");
  if (uint32_t w = hdr_->abort_word.load()) return fail(abort_status(w, rank_, comm));
  const Clock::time_point deadline = Clock::now() + timeout;
  // Announce the call (both modes): this rank's tensor address, size, dtype and op. The peers read
  // them before they publish anything of this call that this rank waits for, so rewriting them at
  // the next call is safe.
  Control* me = ctl(rank_);
  me->addr = reinterpret_cast<uintptr_t>(buf);
  me->desc = Desc{count, static_cast<int32_t>(dt), static_cast<int32_t>(op)};
  publish(&me->posted, ++calls_, true);
  Status st = (direct_ && count * itemsize(dt) > kCopyMaxBytes) ? direct_all_reduce(buf, count, dt, op, global, comm, deadline)
                                                                  : copy_all_reduce(buf, count, dt, op, comm, deadline);
  return st.ok() ? st : fail(st);
}

Status LocalArena::copy_all_reduce(uint8_t* buf, size_t count, DType dt, ReduceOp op, cn::Communicator* comm,
                                   Clock::time_point deadline) {
  const int n = n_, r = rank_;
  const size_t item = itemsize(dt);
  const size_t win = slot_bytes_ / item;
  const size_t ce = std::max<size_t>(1, kChunkBytes / item);
  Control* me = ctl(r);
  bool first = true;
  size_t pc[kMaxRanks], po[kMaxRanks + 1];
  for (size_t w0 = 0; w0 < count; w0 += win) {
    const size_t W = std::min(win, count - w0);
    const int h = static_cast<int>(window_ & 1);
    po[0] = 0;
    for (int q = 0; q < n; ++q) {
      pc[q] = W / n + (static_cast<size_t>(q) < W % n ? 1 : 0);
      po[q + 1] = po[q] + pc[q];
    }
    const uint32_t K = static_cast<uint32_t>(std::max<size_t>(1, (pc[0] + ce - 1) / ce));  // pc[0] is the largest
    auto chunk = [&](int q, uint32_t i, size_t* a, size_t* b) {
      *a = std::min(pc[q], i * ce);
      *b = std::min(pc[q], (i + 1) * ce);
    };
    // This half's slot is free once every peer finished the window that last used it.
    for (int q = 0; q < n; ++q) {
      if (q == r) continue;
      Status st = wait(q, &ctl(q)->done, hist_[h], hist_[h], comm, deadline, "slot reuse");
      if (!st.ok()) return st;
    }
    uint8_t* mine = slot(r, h);
    uint8_t* in = buf + w0 * item;
    // 1. Copy the peers' shares of this rank's input into its slot.
    for (uint32_t i = 0; i < K; ++i) {
      for (int q = 0; q < n; ++q) {
        if (q == r) continue;
        size_t a, b;
        chunk(q, i, &a, &b);
        if (b > a) std::memcpy(mine + (po[q] + a) * item, in + (po[q] + a) * item, (b - a) * item);
      }
      publish(&me->copied, base_ + i + 1, i + 1 == K);
    }
    // 2. Reduce this rank's share from the peers' slots (into the caller's buffer), then publish it.
    for (uint32_t i = 0; i < K; ++i) {
      size_t a, b;
      chunk(r, i, &a, &b);
      for (int q = 0; q < n; ++q) {
        if (q == r) continue;
        if (first && i == 0) {
          uint64_t unused;
          Status st = check_peer(q, count, dt, op, comm, deadline, &unused);
          if (!st.ok()) return st;
        }
        Status st = wait(q, &ctl(q)->copied, base_ + i + 1, base_ + K, comm, deadline, "its input");
        if (!st.ok()) return st;
        if (b > a) reduce_into(in + (po[r] + a) * item, slot(q, h) + (po[r] + a) * item, b - a, dt, op);
      }
      if (b > a) std::memcpy(mine + (po[r] + a) * item, in + (po[r] + a) * item, (b - a) * item);
      publish(&me->reduced, base_ + i + 1, i + 1 == K);
    }
    // 3. Copy the peers' reduced shares out.
    for (uint32_t i = 0; i < K; ++i) {
      for (int q = 0; q < n; ++q) {
        if (q == r) continue;
        Status st = wait(q, &ctl(q)->reduced, base_ + i + 1, base_ + K, comm, deadline, "its reduced share");
        if (!st.ok()) return st;
        size_t a, b;
        chunk(q, i, &a, &b);
        if (b > a) std::memcpy(in + (po[q] + a) * item, slot(q, h) + (po[q] + a) * item, (b - a) * item);
      }
    }
    publish(&me->done, base_ + K, true);
    hist_[h] = base_ + K;
    base_ += K;
    ++window_;
    first = false;
  }
  return Status::OK();
}

Status LocalArena::direct_all_reduce(uint8_t* buf, size_t count, DType dt, ReduceOp op, const std::vector<int>& global,
                                     cn::Communicator* comm, Clock::time_point deadline) {
  const int n = n_, r = rank_;
  const uint32_t s = calls_;
  const size_t item = itemsize(dt);
  Control* me = ctl(r);
  size_t pc[kMaxRanks], po[kMaxRanks + 1];
  po[0] = 0;
  for (int q = 0; q < n; ++q) {
    pc[q] = count / n + (static_cast<size_t>(q) < count % n ? 1 : 0);
    po[q + 1] = po[q] + pc[q];
  }
  uint64_t addr[kMaxRanks] = {0};
  for (int q = 0; q < n; ++q) {
    if (q == r) continue;
    Status st = check_peer(q, count, dt, op, comm, deadline, &addr[q]);
    if (!st.ok()) return st;
  }
  // 1. Reduce this rank's share: pull it from every peer (rank order) chunk by chunk, reduce in place.
  const size_t mine = pc[r] * item;
  const size_t chunk = std::max(item, (kDirectChunkBytes / item) * item);
  if (scratch_.size() < std::min(chunk, mine)) scratch_.resize(std::min(chunk, mine));
  uint8_t* my_share = buf + po[r] * item;
  for (size_t a = 0; a < mine; a += chunk) {
    const size_t len = std::min(chunk, mine - a);
    for (int q = 0; q < n; ++q) {
      if (q == r) continue;
      Status st = comm->read_direct(global[q], addr[q] + po[r] * item + a, scratch_.data(), len);
      if (!st.ok()) return Status(st.code(), str_cat("rank ", r, " reading group rank ", q, "'s tensor: ", st.message()));
      reduce_into(my_share + a, scratch_.data(), len / item, dt, op);
    }
  }
  publish(&me->d_reduced, s, true);
  // 2. Pull the peers' reduced shares into place.
  for (int q = 0; q < n; ++q) {
    if (q == r) continue;
    Status st = wait(q, &ctl(q)->d_reduced, s, s, comm, deadline, "its reduced share");
    if (!st.ok()) return st;
    if (pc[q] == 0) continue;
    st = comm->read_direct(global[q], addr[q] + po[q] * item, buf + po[q] * item, pc[q] * item);
    if (!st.ok()) return Status(st.code(), str_cat("rank ", r, " reading group rank ", q, "'s result: ", st.message()));
  }
  // 3. This rank's tensor may change once every peer has read it.
  publish(&me->d_done, s, true);
  for (int q = 0; q < n; ++q) {
    if (q == r) continue;
    Status st = wait(q, &ctl(q)->d_done, s, s, comm, deadline, "the end of its reads");
    if (!st.ok()) return st;
  }
  return Status::OK();
}

}  // namespace distributed
}  // namespace heron
