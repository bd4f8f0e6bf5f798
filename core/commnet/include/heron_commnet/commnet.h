// heron_commnet/commnet.h -- the CommNet communicator: ranks, registered memory, one-sided reads,
// tagged two-sided messages, actor-style handlers; every operation has a timeout and every failure
// reaches the caller.
//
// Threading: all methods are thread-safe. Completion callbacks and message handlers run on a CommNet
// I/O thread (or on the calling thread when an operation completes at once); they must not block
// for long and must not wait on another CommNet operation.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "heron_commnet/status.h"
#include "heron_commnet/store.h"
#include "heron_commnet/wire.h"

namespace heron_commnet {

namespace detail {
struct Op;
class Engine;
}  // namespace detail

/// Library version "major.minor.patch".
const char* version();

/// Removes POSIX shared-memory segments named "/<prefix><pid>-..." whose creating process <pid>
/// no longer exists. Segments are unlinked as soon as every member has mapped them, so only a
/// process killed in that window leaves one behind; the shared-memory transport and the
/// distributed layer's arena sweep their own prefix each time they create segments. Returns how
/// many were removed (0 where there is no /dev/shm).
int remove_stale_segments(const std::string& prefix);

struct Options {
  /// I/O threads that multiplex the peer connections (each connection belongs to one of them).
  int io_threads = 2;
  /// The default timeout of every operation, and of the rendezvous.
  std::chrono::milliseconds timeout{60000};
  /// "epoll", "poll", or "" for the best available; the environment variable HERON_COMMNET_POLLER
  /// overrides an empty value.
  std::string poller;
  /// Where this rank listens for its peers, and the address it publishes to them.
  std::string listen_host = "127.0.0.1";
  std::string advertise_host;  ///< empty: listen_host
  /// The largest message payload accepted from a peer (bigger ones are a protocol error).
  uint64_t max_message_bytes = uint64_t(1) << 34;
  /// When a peer is lost (died, garbage, timeout mid-message), abort the communicator: every
  /// pending and future operation fails and every other rank is told (ABORT frames), so no rank
  /// waits for a message that will not come. When false, only operations on that peer fail.
  bool fail_fast = true;
  /// Store keys are "<prefix>/..." so several communicators can share one store.
  std::string store_prefix = "commnet";
  /// How long close() lets peers finish reading (their BYE) before the sockets close.
  std::chrono::milliseconds close_linger{2000};
  /// Testing only: the wire version this rank claims in its handshake.
  uint16_t wire_version = kWireVersion;
  /// Ranks on one host exchange frames through shared-memory rings (one per direction, TCP stays
  /// for wake-ups and failure detection); false, or HERON_COMMNET_SHM=0 on either rank, keeps TCP.
  bool shared_memory = true;
  /// Bytes of each shared-memory ring (a power of two).
  size_t shm_ring_bytes = size_t(4) << 20;
};

/// Completion callback: the outcome and the number of bytes moved.
using Callback = std::function<void(const Status& status, size_t bytes)>;
/// Actor-style handler: called for each message with its tag; the payload is moved in.
using Handler = std::function<void(int source, uint64_t tag, std::vector<uint8_t>&& payload)>;

/// A handle on an operation in flight (copyable; all copies share the operation).
class Request {
 public:
  Request() = default;
  /// Blocks until the operation completes, fails or times out; returns its outcome.
  Status wait();
  /// Whether the operation has finished (successfully or not).
  bool test() const;
  /// The outcome so far (kOk while pending).
  Status status() const;
  /// Bytes moved (the received message's size for receives).
  size_t bytes() const;
  /// The received message of recv_message-style requests (moves it out).
  std::vector<uint8_t> take_message();
  bool valid() const { return op_ != nullptr; }

 private:
  friend class detail::Engine;
  explicit Request(std::shared_ptr<detail::Op> op) : op_(std::move(op)) {}
  std::shared_ptr<detail::Op> op_;
};

/// Use the communicator's default timeout.
constexpr std::chrono::milliseconds kDefaultTimeout{0};

class Communicator {
 public:
  /// Connects `world_size` ranks through `store` (kept only during create). Fails with
  /// kRendezvous and a message naming the missing ranks when not all arrive within options.timeout.
  static Status create(int rank, int world_size, Store* store, const Options& options,
                       std::unique_ptr<Communicator>* out);
  /// The same, with rank, world size and a TcpStore from the environment (MASTER_ADDR, MASTER_PORT,
  /// RANK, WORLD_SIZE; see store_from_env).
  static Status create_from_env(const Options& options, std::unique_ptr<Communicator>* out);
  /// Closes (see close()).
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const;
  int world_size() const;
  /// The I/O multiplexer in use ("epoll" or "poll").
  const char* poller_name() const;
  /// How frames to and from `peer` travel: "shm" (shared-memory rings, same host) or "tcp"; "" for
  /// this rank itself or an out-of-range rank.
  const char* transport(int peer) const;

  // ---- registered memory (the pull protocol)
  /// Registers [data, data + size); peers may read it by token until unregistered.
  Status register_memory(void* data, size_t size, uint64_t* token);
  /// Unregisters; waits (at most the default timeout) until no reply still reads from the region.
  Status unregister_memory(uint64_t token);

  /// A new ordered read stream: reads issued on one stream complete (callbacks and all) in issue
  /// order. Stream 0 always exists.
  int create_read_stream();
  /// One-sided read: copies `length` bytes at `remote_offset` of `peer`'s region `remote_token` to
  /// `local_offset` of this rank's region `local_token`. The peer's application is not involved.
  /// Errors: kUnknownToken, kOutOfRange (either side), kBadRank, kTimeout, kPeerGone.
  Request read(int peer, uint64_t remote_token, uint64_t remote_offset, uint64_t local_token, uint64_t local_offset,
               size_t length, Callback callback = {}, int stream = 0,
               std::chrono::milliseconds timeout = kDefaultTimeout);

  // ---- same-host direct reads (shared memory through the kernel)
  /// Whether `peer` runs on this host and this process may read its memory directly (Linux
  /// cross-memory attach, probed when connecting). HERON_COMMNET_DIRECT=0 turns it off.
  bool can_read_direct(int peer) const;
  /// Same-host fast path of the pull protocol: copies `length` bytes at `remote_address` in `peer`'s
  /// address space (an address the peer sent, kept valid until the reader says it is done) to
  /// `local`, one copy made by the kernel. kInvalidArgument when !can_read_direct(peer); kIo when
  /// the range is not mapped in the peer (never a crash).
  Status read_direct(int peer, uint64_t remote_address, void* local, size_t length);

  // ---- two-sided tagged messages (per peer and tag, messages match receives in order)
  /// Sends data[0, size) (kept alive by the caller until completion: when the bytes are handed
  /// to the transport).
  Request isend(int peer, uint64_t tag, const void* data, size_t size, Callback callback = {},
                std::chrono::milliseconds timeout = kDefaultTimeout);
  /// Receives a message of at most `capacity` bytes into data (a larger one fails the receive
  /// with kInvalidArgument and is dropped).
  Request irecv(int peer, uint64_t tag, void* data, size_t capacity, Callback callback = {},
                std::chrono::milliseconds timeout = kDefaultTimeout);
  /// Receives a message of any size (Request::take_message()).
  Request irecv_message(int peer, uint64_t tag, Callback callback = {},
                        std::chrono::milliseconds timeout = kDefaultTimeout);
  /// Blocking forms.
  Status send(int peer, uint64_t tag, const void* data, size_t size, std::chrono::milliseconds timeout = kDefaultTimeout);
  Status recv(int peer, uint64_t tag, void* data, size_t capacity, size_t* received = nullptr,
              std::chrono::milliseconds timeout = kDefaultTimeout);
  Status recv_message(int peer, uint64_t tag, std::vector<uint8_t>* message,
                      std::chrono::milliseconds timeout = kDefaultTimeout);

  // ---- actors
  /// Every message with this tag (from any peer) goes to `handler` instead of receives, including
  /// ones that arrived before. An empty handler removes it.
  Status set_handler(uint64_t tag, Handler handler);

  // ---- health
  /// kOk, or why the communicator is unusable (aborted, closed).
  Status health() const;
  /// Fails every pending and future operation with `reason` here and tells every peer.
  void abort(const std::string& reason);
  /// Orderly shutdown: tells peers (BYE), lets queued sends finish, stops the I/O threads; pending
  /// operations fail with kClosed. Idempotent.
  Status close();

 private:
  explicit Communicator(std::unique_ptr<detail::Engine> engine);
  std::unique_ptr<detail::Engine> engine_;
  std::unique_ptr<Store> owned_store_;
};

}  // namespace heron_commnet
