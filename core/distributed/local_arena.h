// heron::distributed -- the same-host all-reduce arena (internal).
//
// When every member of a group runs on one host (CommNet's shared-memory transport between every
// pair), the group maps one shared-memory segment holding a control line per rank (the address of
// the rank's tensor, the call's size/dtype/op, and monotonic 32-bit counters) and two 1 MiB slots
// per rank. Up to kCopyMaxBytes an all-reduce goes through the slots (copy mode): window by window,
// each rank copies the other ranks' shares of its tensor into its slot, reduces its own share
// reading the peers' slots, publishes the result in its slot and copies the peers' results out.
// Larger ones, when every member may read the others' memory (Linux cross-memory attach), pull the
// peers' shares straight from their tensors (direct mode). The counters are polled by the calling
// thread itself (a bounded spin, then a futex wait in short slices): no CommNet I/O-thread
// hand-off and no TCP doorbell per step. Every wait is bounded by the operation's deadline;
// between slices it checks the communicator's health (a dead peer's connection aborts the
// communicator) and the segment's abort word (set by a rank that failed, so the others fail at
// once instead of waiting for the timeout).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/distributed/process_group.h"
#include "core/tensor/tensor.h"
#include "heron_commnet/commnet.h"

namespace heron {
namespace distributed {

class LocalArena {
 public:
  static constexpr uint32_t kMagic = 0x414c4448;  // "HDLA"
  static constexpr uint32_t kVersion = 1;
  static constexpr int kMaxRanks = 8;
  /// Copy mode: bytes of one slot (a window of the tensor); each rank has two. Small enough that a
  /// window's copies stay in cache, large enough that a 1 MiB all-reduce is one window.
  static constexpr size_t kSlotBytes = size_t(1) << 20;
  /// Copy mode: bytes of one pipelined chunk of each rank's share of a window.
  static constexpr size_t kChunkBytes = size_t(128) << 10;
  /// Messages up to this size use copy mode; larger ones direct mode when every member may read
  /// the others' memory.
  static constexpr size_t kCopyMaxBytes = size_t(16) << 20;
  /// Direct mode: bytes pulled from a peer per read while reducing (kept in cache).
  static constexpr size_t kDirectChunkBytes = size_t(256) << 10;

  /// Creates and maps a new segment for `nranks` ranks under a fresh name (written to *name).
  static heron_commnet::Status create(int nranks, int rank, std::string* name, std::unique_ptr<LocalArena>* out);
  /// Maps the segment `name` created by another member; checks its header.
  static heron_commnet::Status open(const std::string& name, int nranks, int rank, std::unique_ptr<LocalArena>* out);
  /// Removes the name (the mappings stay valid).
  static void unlink(const std::string& name);
  ~LocalArena();
  LocalArena(const LocalArena&) = delete;
  LocalArena& operator=(const LocalArena&) = delete;

  /// All-reduces `count` elements at buf in place. Every member calls it with the same count, dtype
  /// and op (a mismatch is kInvalidArgument on the ranks that see it). `global` maps group ranks to
  /// the communicator's ranks (for direct reads); `comm` is polled for health.
  /// After a failure the arena stays unusable (broken()) and the other ranks fail promptly.
  heron_commnet::Status all_reduce(uint8_t* buf, size_t count, DType dt, ReduceOp op, const std::vector<int>& global,
                                   heron_commnet::Communicator* comm, std::chrono::milliseconds timeout);
  bool broken() const { return broken_; }
  /// This rank leaves (its group is destroyed): a peer still waiting on it fails at once.
  void abandon();
  /// Whether every member may read every other's memory (decided collectively by the caller).
  void set_direct(bool on) { direct_ = on; }

 private:
  struct Control;
  struct Header;
  LocalArena() = default;
  Control* ctl(int r) const;
  uint8_t* slot(int r, int half) const;
  heron_commnet::Status check_peer(int q, size_t count, DType dt, ReduceOp op, heron_commnet::Communicator* comm,
                                   std::chrono::steady_clock::time_point deadline, uint64_t* addr);
  heron_commnet::Status copy_all_reduce(uint8_t* buf, size_t count, DType dt, ReduceOp op, heron_commnet::Communicator* comm,
                                        std::chrono::steady_clock::time_point deadline);
  heron_commnet::Status direct_all_reduce(uint8_t* buf, size_t count, DType dt, ReduceOp op, const std::vector<int>& global,
                                          heron_commnet::Communicator* comm, std::chrono::steady_clock::time_point deadline);
  void publish(std::atomic<uint32_t>* c, uint32_t v, bool phase_end);
  heron_commnet::Status wait(int owner, std::atomic<uint32_t>* c, uint32_t target, uint32_t phase_end,
                             heron_commnet::Communicator* comm,
                             std::chrono::steady_clock::time_point deadline, const char* what);
  heron_commnet::Status fail(heron_commnet::Status st);

  Header* hdr_ = nullptr;
  uint8_t* data_ = nullptr;
  size_t map_size_ = 0;
  size_t slot_bytes_ = kSlotBytes;
  int n_ = 0;
  int rank_ = 0;
  bool broken_ = false;
  bool direct_ = false;
  uint32_t calls_ = 0;  // calls made; `posted` and the direct-mode counters of call s reach s
  uint32_t base_ = 0;   // copy mode: the chunk counters' value after the last window
  uint32_t hist_[2] = {0, 0};  // copy mode: base_ after the last window that used each half
  uint64_t window_ = 0;
  std::vector<uint8_t> scratch_;
};

}  // namespace distributed
}  // namespace heron
