// Shared-memory rings for ranks on one host (internal).
//
// One ring per direction of a peer pair: a POSIX shared-memory segment holding a single-producer,
// single-consumer byte ring. The bytes are the same frame stream the TCP connection would carry
// (wire.h headers and payloads), so the Communicator's receive state machine parses them as it
// parses a socket's. Wake-ups go over the pair's TCP connection, which stays open: a one-byte
// doorbell, sent only when the other side said it is about to sleep (a flag in the segment, checked
// Dekker-style with sequentially consistent atomics), so a busy receiver costs the sender no
// system call. The TCP connection also keeps reporting a dead peer (EOF / reset), so faults are
// detected exactly as without shared memory.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "heron_commnet/status.h"

namespace heron_commnet {
namespace shm {

constexpr uint32_t kRingMagic = 0x48434e52;  // "HCNR"
constexpr uint32_t kRingVersion = 1;

struct RingHeader {
  uint32_t magic;
  uint32_t version;
  uint64_t capacity;  // a power of two
  alignas(64) std::atomic<uint64_t> head;  // bytes written so far (producer)
  alignas(64) std::atomic<uint64_t> tail;  // bytes consumed so far (consumer)
  alignas(64) std::atomic<uint32_t> consumer_waiting;  // 1: the consumer sleeps until a doorbell
  std::atomic<uint32_t> producer_waiting;               // 1: the producer waits for free space
};

class Ring {
 public:
  /// Creates and maps a new segment `name` ("/..."), capacity bytes of ring (a power of two).
  static Status create(const std::string& name, size_t capacity, std::unique_ptr<Ring>* out);
  /// Maps an existing segment and checks its header (magic, version, size).
  static Status open(const std::string& name, std::unique_ptr<Ring>* out);
  /// Removes the name (the mappings stay valid). Harmless when already removed.
  static void unlink(const std::string& name);
  ~Ring();
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  // producer side
  /// Copies as much of the gather list as fits; returns the bytes written (0 when full).
  size_t write(const iovec* iov, int n, Status* err);
  size_t free_space(Status* err) const;
  // consumer side
  /// Bytes ready to read; a corrupt header (head behind tail or beyond capacity) is an error.
  size_t available(Status* err) const;
  /// Copies up to n ready bytes to dst and releases their space; returns the count.
  size_t read(void* dst, size_t n, Status* err);

  RingHeader* header() const { return hdr_; }
  const std::string& name() const { return name_; }

 private:
  Ring() = default;
  RingHeader* hdr_ = nullptr;
  uint8_t* data_ = nullptr;
  size_t cap_ = 0;
  size_t map_size_ = 0;
  std::string name_;
};

/// Whether this build has the shared-memory transport (POSIX shm + mmap: Linux).
bool available();

}  // namespace shm
}  // namespace heron_commnet
