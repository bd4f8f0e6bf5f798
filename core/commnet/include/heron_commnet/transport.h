// heron_commnet/transport.h -- the transport layer under the Communicator.
//
// A transport moves frames (wire.h) between two ranks. CommNet has TCP byte streams, multiplexed
// by a Poller (epoll on Linux, poll() everywhere: selected at run time with Options::poller or
// HERON_COMMNET_POLLER, and at compile time with COMMNET_WITH_EPOLL), and, for ranks on one host,
// shared-memory rings carrying the same frame stream (the TCP connection then only carries
// doorbells and reports a dead peer; Options::shared_memory, HERON_COMMNET_SHM=0).
//
// Adding a transport (RDMA with ibverbs, shared memory) means providing, per peer, a Link:
//   - a reliable, ordered channel for frames: send a header plus payload segments (gather list),
//     receive headers and deliver each payload into the destination the engine names
//     (a posted receive buffer, a read's local region) -- see Communicator's receive state machine;
//   - memory registration hooks: register_memory() would also register the region with the device
//     (ibv_reg_mr) and publish its rkey with the token, so that a READ_REQ can be served by an RDMA
//     READ issued by the reader instead of a READ_RESP frame sent by the owner (the pull protocol
//     stays the same at the API: a token, an offset, a length, a completion);
//   - readiness notification integrated with the I/O threads (a completion channel's fd can be
//     registered with the Poller like a socket).
// Everything above the Link -- matching, timeouts, ordered read streams, error propagation -- is
// transport-independent.
#pragma once

#include <memory>
#include <string>

#include "heron_commnet/status.h"

namespace heron_commnet {

/// An I/O multiplexer over file descriptors. Thread-safe: add/modify/remove may be called from any
/// thread while another waits; a waiting thread sees the change (poll() backend: through wakeup()).
class Poller {
 public:
  struct Event {
    void* ctx = nullptr;
    bool readable = false;
    bool writable = false;
    bool error = false;  ///< hang-up or socket error (reading will tell which)
  };
  virtual ~Poller() = default;
  virtual const char* name() const = 0;
  virtual Status add(int fd, void* ctx, bool want_read, bool want_write) = 0;
  virtual Status modify(int fd, void* ctx, bool want_read, bool want_write) = 0;
  virtual Status remove(int fd) = 0;
  /// Waits up to timeout_ms (-1: no limit) for events; returns how many were written, 0 on timeout
  /// or wakeup, -1 on a fatal error.
  virtual int wait(Event* events, int max_events, int timeout_ms) = 0;
  /// Makes a concurrent wait() return.
  virtual void wakeup() = 0;
};

/// "epoll" (Linux), "poll" (POSIX), or "" for the best available. Null with a Status on failure.
std::unique_ptr<Poller> make_poller(const std::string& name, Status* status);

/// Whether this build has the epoll backend.
bool have_epoll();

}  // namespace heron_commnet
