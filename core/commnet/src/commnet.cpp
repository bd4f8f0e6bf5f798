// The CommNet engine: connections over the TCP transport, I/O threads, matching, timeouts, errors.
#include "heron_commnet/commnet.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <sstream>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "heron_commnet/transport.h"
#include "net.h"
#include "shm.h"

#ifndef COMMNET_VERSION_STRING
#define COMMNET_VERSION_STRING "0.1.0"
#endif

namespace heron_commnet {

const char* version() { return COMMNET_VERSION_STRING; }

using net::Clock;
using std::chrono::milliseconds;

namespace detail {

enum class OpKind { kSend, kRecv, kRecvMessage, kRead };
enum OpState : int { kPending = 0, kClaimed = 1, kDone = 2 };

struct Region {
  uint64_t token = 0;
  uint8_t* data = nullptr;
  size_t size = 0;
};

struct Stream;
class Engine;

struct Op {
  OpKind kind;
  int peer = -1;
  uint64_t tag = 0;
  uint8_t* buf = nullptr;
  size_t cap = 0;
  uint64_t id = 0;  // reads
  Clock::time_point deadline;
  milliseconds timeout{0};
  Callback cb;
  std::shared_ptr<Stream> stream;
  std::shared_ptr<Region> pin;  // the local region of a read
  std::vector<uint8_t> msg;     // kRecvMessage
  Engine* engine = nullptr;     // set while the op is in flight on a connection
  bool truncated = false;

  mutable std::mutex mu;
  std::condition_variable cv;
  int state = kPending;
  Status status;
  size_t bytes = 0;
  // the timer entry (guarded by the engine's timer mutex)
  bool has_timer = false;
  std::multimap<Clock::time_point, std::weak_ptr<Op>>::iterator timer_it;
};

struct Stream {
  std::mutex mu;
  std::deque<std::shared_ptr<Op>> q;
  bool delivering = false;
};

struct OutFrame {
  uint8_t hdr[kHeaderSize];
  const uint8_t* data = nullptr;
  size_t len = 0;
  size_t sent = 0;  // header + payload bytes written
  std::shared_ptr<Op> op;
  std::shared_ptr<Region> pin;
  std::vector<uint8_t> owned;
  size_t total() const { return kHeaderSize + len; }
};

struct Loop;

struct Conn {
  int peer = -1;
  int fd = -1;
  Loop* loop = nullptr;
  std::atomic<bool> failed{false};
  std::atomic<bool> bye{false};  // the peer said BYE
  std::atomic<bool> eof{false};
  // send side (send_mu)
  std::mutex send_mu;
  std::deque<OutFrame> q;
  bool want_write = false;
  std::condition_variable drained;
  Status fail_status;  // set once failed (send_mu)
  bool taken = false;  // a waiting caller drives this connection itself (send_mu)
  std::mutex recv_mu;  // the receive state machine below
  // receive side (owner loop thread only)
  std::vector<uint8_t> in;
  size_t in_start = 0, in_end = 0;
  bool in_payload = false;
  FrameHeader cur;
  uint8_t* dst = nullptr;  // payload destination; null: discard
  uint64_t need = 0, got = 0;
  std::shared_ptr<Op> claimed;
  std::vector<uint8_t> tmp;  // unexpected message / handler / error text
  enum class Sink { kOp, kTmp, kDiscard } sink = Sink::kDiscard;
  // Same host: the frame streams go through shared-memory rings (tx: ours to the peer, rx: the
  // peer's to us); the socket then carries only one-byte doorbells (and reports the peer's death).
  std::unique_ptr<shm::Ring> tx, rx;
};

struct Loop {
  std::unique_ptr<Poller> poller;
  std::thread thread;
};

struct Unexpected {
  uint64_t tag;
  std::vector<uint8_t> data;
};

class Engine {
 public:
  Engine(int rank, int world, const Options& opt) : rank_(rank), world_(world), opt_(opt) {
    conns_.resize(world);
    posted_.resize(world);
    unexpected_.resize(world);
    peer_status_.resize(world);
    direct_pid_.assign(world, 0);
    streams_.push_back(std::make_shared<Stream>());
  }
  ~Engine() { close(); }

  Status connect_mesh(Store* store);
  Status start();
  Status close();

  int rank_, world_;
  Options opt_;
  std::string poller_name_ = "?";

  // ---- ops
  Request isend(int peer, uint64_t tag, const void* data, size_t n, Callback cb, milliseconds to);
  Request irecv(OpKind kind, int peer, uint64_t tag, void* data, size_t cap, Callback cb, milliseconds to);
  Request read(int peer, uint64_t rtok, uint64_t roff, uint64_t ltok, uint64_t loff, size_t len, Callback cb, int stream,
               milliseconds to);
  Status register_memory(void* data, size_t size, uint64_t* token);
  Status unregister_memory(uint64_t token);
  int create_read_stream();
  Status set_handler(uint64_t tag, Handler h);
  Status health() const {
    std::lock_guard<std::mutex> lk(state_mu_);
    return global_status_;
  }
  void abort(const Status& why, bool broadcast);

  static Request make_request(std::shared_ptr<Op> op) { return Request(std::move(op)); }

 private:
  std::shared_ptr<Op> new_op(OpKind kind, int peer, uint64_t tag, Callback cb, milliseconds to) {
    auto op = std::make_shared<Op>();
    op->engine = this;
    op->kind = kind;
    op->peer = peer;
    op->tag = tag;
    op->cb = std::move(cb);
    op->timeout = to.count() > 0 ? to : opt_.timeout;
    op->deadline = Clock::now() + op->timeout;
    return op;
  }
  void complete(const std::shared_ptr<Op>& op, Status st, size_t bytes);
  void deliver_stream(const std::shared_ptr<Stream>& s);
  Request failed_request(const std::shared_ptr<Op>& op, Status st) {
    complete(op, std::move(st), 0);
    return Request(op);
  }
  Status check_peer(int peer, const char* what) const;
  Status peer_unusable(int peer);  // non-OK when ops on peer must fail at once

  // send path
  void enqueue(Conn* c, OutFrame&& f);
  void flush_locked(Conn* c, std::vector<std::pair<std::shared_ptr<Op>, size_t>>* done, Status* err);
  void on_writable(Conn* c);
  // The I/O thread's interest in c (send_mu held): none while a caller drives it.
  void update_interest(Conn* c) {
    if (c->failed) return;
    c->loop->poller->modify(c->fd, c, !c->taken, c->want_write && !c->taken);
  }
 public:
  Status wait_op(const std::shared_ptr<Op>& op);
 private:

  // receive path (owner thread)
  // Reads and processes what the socket has; returns early once *until (if given) is done.
  void on_readable(Conn* c, const Op* until = nullptr);
  bool process_input(Conn* c, Status* err);
  Status begin_frame(Conn* c, const FrameHeader& h);
  void end_frame(Conn* c);
  void serve_read(Conn* c, const FrameHeader& h);

  // failures
  void conn_error(Conn* c, const Status& st);  // owner thread
  void fail_connection(Conn* c, const Status& st);
  void fail_peer_ops(int peer, const Status& st, bool overwrite, std::vector<std::shared_ptr<Op>>* fail);

  // timers
  void timer_loop();
  void add_timer(const std::shared_ptr<Op>& op);
  void expire(const std::shared_ptr<Op>& op);

  void loop_main(Loop* l);
  Status handshake_connect(int fd, int peer, Clock::time_point dl);
  Status handshake_accept(int fd, Clock::time_point dl, int* peer);
  uint64_t session_hash() const { return fnv1a32(reinterpret_cast<const uint8_t*>(opt_.store_prefix.data()), opt_.store_prefix.size()); }

  // same-host direct reads
  void probe_direct(Store* store, Clock::time_point dl);
  // same-host shared-memory rings
  void setup_shm(Store* store, Clock::time_point dl);
  void on_readable_shm(Conn* c, const Op* until);
  bool consume_ring(Conn* c, bool* progressed, Status* err);
  static void doorbell(Conn* c);
  // Before this side stops reading c: ask for doorbells, and have the I/O thread come back at once
  // if bytes are already there.
  static void settle_shm(Conn* c) {
    c->rx->header()->consumer_waiting.store(1, std::memory_order_seq_cst);
    if (ring_has_data(c) && c->loop) c->loop->poller->wakeup();
  }
  static bool ring_has_data(Conn* c) {
    Status e;
    return c->rx && c->rx->available(&e) > 0;
  }
 public:
  const char* transport(int peer) const {
    if (peer < 0 || peer >= world_ || !conns_[peer]) return "";
    return conns_[peer]->tx ? "shm" : "tcp";
  }
 private:
 public:
  Status read_direct(int peer, uint64_t addr, void* local, size_t n);
  bool can_read_direct(int peer) const { return peer >= 0 && peer < world_ && direct_pid_[peer] > 0; }
 private:
  std::vector<long> direct_pid_;
  uint64_t probe_nonce_ = 0;
  std::string shm_record_;  // "v1 host/boot id" when this rank offers shared memory

  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<std::unique_ptr<Loop>> loops_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> started_{false};
  std::atomic<bool> closed_{false};
  std::atomic<bool> closing_{false};

  mutable std::mutex state_mu_;
  Status global_status_;  // non-OK once aborted/closed

  // matching (match_mu_)
  std::mutex match_mu_;
  std::vector<std::deque<std::shared_ptr<Op>>> posted_;
  std::vector<std::deque<Unexpected>> unexpected_;
  std::vector<Status> peer_status_;  // non-OK: the peer is gone
  std::unordered_map<uint64_t, std::shared_ptr<Handler>> handlers_;

  // reads (read_mu_)
  std::mutex read_mu_;
  std::unordered_map<uint64_t, std::shared_ptr<Op>> reads_;
  uint64_t next_read_id_ = 1;
  std::vector<std::shared_ptr<Stream>> streams_;

  // regions
  std::mutex region_mu_;
  std::condition_variable region_cv_;
  std::unordered_map<uint64_t, std::shared_ptr<Region>> regions_;
  uint64_t next_token_ = 0;

  // timers
  std::mutex timer_mu_;
  std::condition_variable timer_cv_;
  std::multimap<Clock::time_point, std::weak_ptr<Op>> timers_;
  std::thread timer_thread_;
  bool timer_stop_ = false;
  Clock::time_point timer_wake_at_ = Clock::time_point::max();  // when the timer thread wakes next
};

// ---------------------------------------------------------------- completion
void Engine::complete(const std::shared_ptr<Op>& op, Status st, size_t bytes) {
  {
    std::lock_guard<std::mutex> lk(op->mu);
    if (op->state == kDone) return;
    op->state = kDone;
    op->status = std::move(st);
    op->bytes = bytes;
    op->pin.reset();  // the local region may be unregistered now
    op->engine = nullptr;
  }
  {
    std::lock_guard<std::mutex> lk(timer_mu_);
    if (op->has_timer) {
      timers_.erase(op->timer_it);
      op->has_timer = false;
    }
  }
  op->cv.notify_all();
  if (op->stream) {
    deliver_stream(op->stream);
    return;
  }
  if (op->cb) {
    Status s;
    size_t b;
    {
      std::lock_guard<std::mutex> lk(op->mu);
      s = op->status;
      b = op->bytes;
    }
    op->cb(s, b);
  }
}

void Engine::deliver_stream(const std::shared_ptr<Stream>& s) {
  std::unique_lock<std::mutex> lk(s->mu);
  if (s->delivering) return;  // the delivering thread will see our op
  s->delivering = true;
  for (;;) {
    if (s->q.empty()) break;
    std::shared_ptr<Op> front = s->q.front();
    Status st;
    size_t b;
    {
      std::lock_guard<std::mutex> olk(front->mu);
      if (front->state != kDone) break;
      st = front->status;
      b = front->bytes;
    }
    s->q.pop_front();
    lk.unlock();
    if (front->cb) front->cb(st, b);
    lk.lock();
  }
  s->delivering = false;
}

// ---------------------------------------------------------------- checks
Status Engine::check_peer(int peer, const char* what) const {
  if (peer < 0 || peer >= world_)
    return Status(ErrorCode::kBadRank, std::string(what) + ": rank " + std::to_string(peer) + " is out of range [0, " +
                                           std::to_string(world_) + ")");
  if (peer == rank_)
    return Status(ErrorCode::kBadRank, std::string(what) + ": rank " + std::to_string(peer) + " is this rank itself");
  return Status::OK();
}

Status Engine::peer_unusable(int peer) {
  {
    std::lock_guard<std::mutex> lk(state_mu_);
    if (!global_status_.ok()) return global_status_;
  }
  if (!started_) return Status(ErrorCode::kClosed, "the communicator is not connected");
  return Status::OK();
}

// ---------------------------------------------------------------- timers
void Engine::add_timer(const std::shared_ptr<Op>& op) {
  bool wake;
  {
    std::lock_guard<std::mutex> lk(timer_mu_);
    {
      std::lock_guard<std::mutex> olk(op->mu);
      if (op->state == kDone) return;
    }
    wake = op->deadline < timer_wake_at_;
    op->timer_it = timers_.emplace(op->deadline, op);
    op->has_timer = true;
  }
  if (wake) timer_cv_.notify_one();
}

void Engine::timer_loop() {
  std::unique_lock<std::mutex> lk(timer_mu_);
  // The thread ticks at least every 100 ms, so adding an operation whose deadline is later than
  // the next tick needs no wakeup (most operations).
  const auto tick = milliseconds(100);
  while (!timer_stop_) {
    auto now0 = Clock::now();
    auto first = timers_.empty() ? Clock::time_point::max() : timers_.begin()->first;
    if (now0 < first) {
      timer_wake_at_ = std::min(first, now0 + tick);
      timer_cv_.wait_until(lk, timer_wake_at_);
      timer_wake_at_ = Clock::time_point::min();
      continue;
    }
    std::vector<std::shared_ptr<Op>> due;
    auto now = Clock::now();
    while (!timers_.empty() && timers_.begin()->first <= now) {
      if (auto op = timers_.begin()->second.lock()) {
        op->has_timer = false;
        due.push_back(std::move(op));
      }
      timers_.erase(timers_.begin());
    }
    lk.unlock();
    for (auto& op : due) expire(op);
    lk.lock();
  }
}

void Engine::expire(const std::shared_ptr<Op>& op) {
  {
    std::lock_guard<std::mutex> lk(op->mu);
    if (op->state == kDone) return;
  }
  auto msg = [&](const char* what) {
    return std::string(what) + " rank " + std::to_string(op->peer) +
           (op->kind == OpKind::kRead ? "" : " tag " + std::to_string(op->tag)) + " timed out after " +
           std::to_string(op->timeout.count()) + " ms (rank " + std::to_string(rank_) + ")";
  };
  Conn* c = (op->peer >= 0 && op->peer < world_) ? conns_[op->peer].get() : nullptr;
  bool stalled = false;
  if (op->kind == OpKind::kSend) {
    if (!c) return;
    bool removed = false;
    {
      std::lock_guard<std::mutex> lk(c->send_mu);
      for (auto it = c->q.begin(); it != c->q.end(); ++it) {
        if (it->op != op) continue;
        if (it->sent == 0) {
          c->q.erase(it);
          removed = true;
        } else {
          stalled = true;
        }
        break;
      }
    }
    if (removed) complete(op, Status(ErrorCode::kTimeout, msg("send to")), 0);
  } else if (op->kind == OpKind::kRead) {
    bool removed = false;
    {
      std::lock_guard<std::mutex> lk(read_mu_);
      auto it = reads_.find(op->id);
      std::lock_guard<std::mutex> olk(op->mu);
      if (it != reads_.end() && op->state == kPending) {
        reads_.erase(it);
        removed = true;
      } else if (op->state == kClaimed) {
        stalled = true;
      }
    }
    if (removed) complete(op, Status(ErrorCode::kTimeout, msg("read from")), 0);
  } else {
    bool removed = false;
    {
      std::lock_guard<std::mutex> lk(match_mu_);
      auto& dq = posted_[op->peer];
      std::lock_guard<std::mutex> olk(op->mu);
      if (op->state == kPending) {
        auto it = std::find(dq.begin(), dq.end(), op);
        if (it != dq.end()) dq.erase(it);
        removed = true;
      } else if (op->state == kClaimed) {
        stalled = true;
      }
    }
    if (removed) complete(op, Status(ErrorCode::kTimeout, msg("recv from")), 0);
  }
  if (stalled && c) {
    // Data of this operation is mid-transfer and the peer stopped: the connection is unusable.
    fail_connection(c, Status(ErrorCode::kTimeout, msg(op->kind == OpKind::kSend ? "send to" : "transfer from") +
                                                       " in the middle of a message: connection dropped"));
  }
}

// ---------------------------------------------------------------- send path
void Engine::enqueue(Conn* c, OutFrame&& f) {
  std::vector<std::pair<std::shared_ptr<Op>, size_t>> done;
  Status err;
  std::shared_ptr<Op> fail_op;
  {
    std::lock_guard<std::mutex> lk(c->send_mu);
    if (c->failed) {
      fail_op = f.op;
    } else {
      c->q.push_back(std::move(f));
      if (!c->want_write) flush_locked(c, &done, &err);
    }
  }
  if (fail_op) complete(fail_op, Status(ErrorCode::kPeerGone, "rank " + std::to_string(c->peer) + " is gone"), 0);
  for (auto& d : done) complete(d.first, Status::OK(), d.second);
  if (!err.ok()) fail_connection(c, err);
}

void Engine::flush_locked(Conn* c, std::vector<std::pair<std::shared_ptr<Op>, size_t>>* done, Status* err) {
  constexpr int kMaxIov = 64;
  bool wrote = false;
  while (!c->q.empty()) {
    iovec iov[kMaxIov];
    int n = 0;
    for (auto it = c->q.begin(); it != c->q.end() && n + 2 <= kMaxIov; ++it) {
      if (it->sent < kHeaderSize) {
        iov[n].iov_base = it->hdr + it->sent;
        iov[n].iov_len = kHeaderSize - it->sent;
        ++n;
        if (it->len) {
          iov[n].iov_base = const_cast<uint8_t*>(it->data);
          iov[n].iov_len = it->len;
          ++n;
        }
      } else {
        iov[n].iov_base = const_cast<uint8_t*>(it->data) + (it->sent - kHeaderSize);
        iov[n].iov_len = it->total() - it->sent;
        ++n;
      }
    }
    if (c->tx) {
      // Shared memory: copy what fits; when full, ask the consumer for a doorbell once it frees space.
      size_t w = c->tx->write(iov, n, err);
      if (!err->ok()) return;
      if (w == 0) {
        c->tx->header()->producer_waiting.store(1, std::memory_order_seq_cst);
        if (c->tx->free_space(err) > 0 && err->ok()) continue;  // freed meanwhile
        if (wrote) doorbell(c);
        return;  // the consumer's doorbell makes on_readable_shm flush again
      }
      wrote = true;
      size_t left = w;
      while (left > 0 && !c->q.empty()) {
        OutFrame& f = c->q.front();
        size_t take = std::min(left, f.total() - f.sent);
        f.sent += take;
        left -= take;
        if (f.sent == f.total()) {
          if (f.op) done->emplace_back(std::move(f.op), f.len);
          c->q.pop_front();
        }
      }
      continue;
    }
    msghdr mh{};
    mh.msg_iov = iov;
    mh.msg_iovlen = n;
#ifdef MSG_NOSIGNAL
    ssize_t w = ::sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
#else
    ssize_t w = ::sendmsg(c->fd, &mh, MSG_DONTWAIT);
#endif
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (!c->want_write) {
          c->want_write = true;
          update_interest(c);
        }
        return;
      }
      *err = Status(ErrorCode::kPeerGone, "sending to rank " + std::to_string(c->peer) + " failed: " + net::errno_string(errno));
      return;
    }
    size_t left = static_cast<size_t>(w);
    while (left > 0 && !c->q.empty()) {
      OutFrame& f = c->q.front();
      size_t take = std::min(left, f.total() - f.sent);
      f.sent += take;
      left -= take;
      if (f.sent == f.total()) {
        if (f.op) done->emplace_back(std::move(f.op), f.len);
        c->q.pop_front();
      }
    }
  }
  if (wrote) doorbell(c);
  if (c->want_write) {
    c->want_write = false;
    update_interest(c);
  }
  c->drained.notify_all();
}

// Wakes the peer if it said it sleeps (consumer_waiting), over the TCP connection. A full socket
// buffer means doorbells are already pending; a broken one is reported by the receive side.
void Engine::doorbell(Conn* c) {
  if (!c->tx) return;
  if (c->tx->header()->consumer_waiting.exchange(0, std::memory_order_seq_cst) != 1) return;
  const char b = 1;
#ifdef MSG_NOSIGNAL
  (void)::send(c->fd, &b, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
#else
  (void)::send(c->fd, &b, 1, MSG_DONTWAIT);
#endif
}

// ---------------------------------------------------------------- receive path, shared memory
// Moves ring bytes into the receive state machine (large payloads straight to their destination).
// *progressed: some bytes were consumed. False (with *err) on a protocol error.
bool Engine::consume_ring(Conn* c, bool* progressed, Status* err) {
  constexpr size_t kDirect = 64 * 1024;
  *progressed = false;
  for (int round = 0; round < 16; ++round) {
    size_t avail = c->rx->available(err);
    if (!err->ok()) return false;
    if (avail == 0) break;
    size_t got;
    if (c->in_payload && c->in_start == c->in_end && c->sink != Conn::Sink::kDiscard && c->need - c->got >= kDirect) {
      got = c->rx->read(c->dst + c->got, static_cast<size_t>(std::min<uint64_t>(avail, c->need - c->got)), err);
      if (!err->ok()) return false;
      c->got += got;
      if (c->got == c->need) end_frame(c);
    } else {
      if (c->in_start == c->in_end) c->in_start = c->in_end = 0;
      if (c->in_end == c->in.size()) {
        std::memmove(c->in.data(), c->in.data() + c->in_start, c->in_end - c->in_start);
        c->in_end -= c->in_start;
        c->in_start = 0;
      }
      got = c->rx->read(c->in.data() + c->in_end, c->in.size() - c->in_end, err);
      if (!err->ok()) return false;
      c->in_end += got;
      if (!process_input(c, err)) return false;
    }
    if (got == 0) break;
    *progressed = true;
    // The producer may wait for the space just freed.
    if (c->rx->header()->producer_waiting.exchange(0, std::memory_order_seq_cst) == 1) {
      const char b = 1;
#ifdef MSG_NOSIGNAL
      (void)::send(c->fd, &b, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
#else
      (void)::send(c->fd, &b, 1, MSG_DONTWAIT);
#endif
    }
  }
  return true;
}

void Engine::on_readable_shm(Conn* c, const Op* until) {
  auto until_done = [until] {
    if (!until) return false;
    std::lock_guard<std::mutex> lk(until->mu);
    return until->state == kDone;
  };
  if (c->failed) {
    Status why;
    {
      std::lock_guard<std::mutex> lk(c->send_mu);
      why = c->fail_status;
    }
    conn_error(c, why);
    return;
  }
  // Doorbells (their content does not matter), or the end of the connection.
  bool eof = false;
  for (;;) {
    char buf[256];
    ssize_t r = ::recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
    if (r > 0) continue;
    if (r == 0) {
      eof = true;
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    eof = true;  // reset: handled like EOF once the ring is drained
    break;
  }
  // A doorbell may mean the peer freed space in our outgoing ring: flush what waits for it first
  // (the flag that asked for this doorbell is spent, so nothing else would).
  auto flush_pending = [&] {
    bool pending;
    {
      std::lock_guard<std::mutex> lk(c->send_mu);
      pending = !c->q.empty();
    }
    if (pending) on_writable(c);
  };
  flush_pending();
  for (int round = 0; round < 64; ++round) {
    bool progressed = false;
    Status err;
    if (!consume_ring(c, &progressed, &err)) {
      conn_error(c, Status(err.code(), err.message() + " (rank " + std::to_string(c->peer) + "); connection dropped"));
      return;
    }
    if (until_done()) {
      settle_shm(c);
      return;
    }
    if (progressed) continue;
    // Going to sleep: say so, then look again (the producer checks the flag after writing).
    c->rx->header()->consumer_waiting.store(1, std::memory_order_seq_cst);
    if (!ring_has_data(c)) break;
    c->rx->header()->consumer_waiting.store(0, std::memory_order_seq_cst);
  }
  settle_shm(c);
  flush_pending();
  if (eof && !ring_has_data(c)) {
    c->eof = true;
    if (c->bye && !c->in_payload) {
      conn_error(c, Status(ErrorCode::kPeerGone, "rank " + std::to_string(c->peer) + " closed its communicator"));
    } else {
      conn_error(c, Status(ErrorCode::kPeerGone, "rank " + std::to_string(c->peer) + " closed the connection (process exited or was killed?)"));
    }
  }
}

void Engine::on_writable(Conn* c) {
  std::vector<std::pair<std::shared_ptr<Op>, size_t>> done;
  Status err;
  {
    std::lock_guard<std::mutex> lk(c->send_mu);
    if (c->failed) return;
    c->want_write = false;  // flush re-arms if needed
    flush_locked(c, &done, &err);
  }
  for (auto& d : done) complete(d.first, Status::OK(), d.second);
  if (!err.ok()) fail_connection(c, err);
}

// ---------------------------------------------------------------- receive path
void Engine::on_readable(Conn* c, const Op* until) {
  auto until_done = [until] {
    if (!until) return false;
    std::lock_guard<std::mutex> lk(until->mu);
    return until->state == kDone;
  };
  if (c->rx) {
    on_readable_shm(c, until);
    return;
  }
  constexpr size_t kDirect = 64 * 1024;
  if (c->failed) {
    Status why;
    {
      std::lock_guard<std::mutex> lk(c->send_mu);
      why = c->fail_status;
    }
    conn_error(c, why);
    return;
  }
  for (int round = 0; round < 64; ++round) {
    // Large payload bytes go straight to their destination.
    if (c->in_payload && c->in_start == c->in_end && c->sink != Conn::Sink::kDiscard && c->need - c->got >= kDirect) {
      ssize_t r = ::recv(c->fd, c->dst + c->got, c->need - c->got, MSG_DONTWAIT);
      if (r > 0) {
        c->got += static_cast<uint64_t>(r);
        if (c->got == c->need) end_frame(c);
        if (until_done()) return;
        continue;
      }
      if (r == 0) {
        conn_error(c, Status(ErrorCode::kPeerGone, "rank " + std::to_string(c->peer) + " closed the connection in the middle of a message"));
        return;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      conn_error(c, Status(ErrorCode::kPeerGone, "receiving from rank " + std::to_string(c->peer) + " failed: " + net::errno_string(errno)));
      return;
    }
    if (c->in_start == c->in_end) c->in_start = c->in_end = 0;
    if (c->in_end == c->in.size()) {
      std::memmove(c->in.data(), c->in.data() + c->in_start, c->in_end - c->in_start);
      c->in_end -= c->in_start;
      c->in_start = 0;
    }
    ssize_t r = ::recv(c->fd, c->in.data() + c->in_end, c->in.size() - c->in_end, MSG_DONTWAIT);
    if (r > 0) {
      c->in_end += static_cast<size_t>(r);
      Status err;
      if (!process_input(c, &err)) {
        conn_error(c, err);
        return;
      }
      if (until_done()) return;
      continue;
    }
    if (r == 0) {
      c->eof = true;
      if (c->bye && !c->in_payload) {
        conn_error(c, Status(ErrorCode::kPeerGone, "rank " + std::to_string(c->peer) + " closed its communicator"));
      } else {
        conn_error(c, Status(ErrorCode::kPeerGone, "rank " + std::to_string(c->peer) + " closed the connection (process exited or was killed?)"));
      }
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    conn_error(c, Status(ErrorCode::kPeerGone, "receiving from rank " + std::to_string(c->peer) + " failed: " + net::errno_string(errno)));
    return;
  }
}

bool Engine::process_input(Conn* c, Status* err) {
  for (;;) {
    size_t avail = c->in_end - c->in_start;
    if (c->in_payload) {
      if (avail == 0) return true;
      size_t take = static_cast<size_t>(std::min<uint64_t>(avail, c->need - c->got));
      if (c->sink != Conn::Sink::kDiscard) std::memcpy(c->dst + c->got, c->in.data() + c->in_start, take);
      c->got += take;
      c->in_start += take;
      if (c->got == c->need) end_frame(c);
      continue;
    }
    if (avail < kHeaderSize) return true;
    const uint8_t* p = c->in.data() + c->in_start;
    FrameHeader h;
    DecodeResult dr = decode_header(p, opt_.max_message_bytes, &h);
    if (dr != DecodeResult::kOk) {
      *err = Status(dr == DecodeResult::kBadVersion ? ErrorCode::kVersionMismatch : ErrorCode::kProtocol,
                    "malformed frame from rank " + std::to_string(c->peer) + ": " + describe_decode_error(dr, p, opt_.max_message_bytes) +
                        "; connection dropped");
      return false;
    }
    c->in_start += kHeaderSize;
    if (h.src_rank != static_cast<uint32_t>(c->peer)) {
      *err = Status(ErrorCode::kProtocol, "frame on rank " + std::to_string(c->peer) + "'s connection claims to come from rank " +
                                              std::to_string(h.src_rank) + "; connection dropped");
      return false;
    }
    Status st = begin_frame(c, h);
    if (!st.ok()) {
      *err = st;
      return false;
    }
  }
}

Status Engine::begin_frame(Conn* c, const FrameHeader& h) {
  c->cur = h;
  c->got = 0;
  c->need = frame_has_payload(h.type) ? h.length : 0;
  c->dst = nullptr;
  c->sink = Conn::Sink::kDiscard;
  c->claimed.reset();
  c->tmp.clear();
  switch (h.type) {
    case FrameType::kHello:
      return Status(ErrorCode::kProtocol, "unexpected HELLO from rank " + std::to_string(c->peer) + " after the handshake");
    case FrameType::kMessage: {
      std::lock_guard<std::mutex> lk(match_mu_);
      if (!handlers_.count(h.tag)) {
        auto& dq = posted_[c->peer];
        for (auto it = dq.begin(); it != dq.end(); ++it) {
          if ((*it)->tag != h.tag) continue;
          std::shared_ptr<Op> op = *it;
          dq.erase(it);
          std::lock_guard<std::mutex> olk(op->mu);
          op->state = kClaimed;
          c->claimed = op;
          if (op->kind == OpKind::kRecvMessage) {
            op->msg.resize(h.length);
            c->dst = op->msg.data();
            c->sink = Conn::Sink::kOp;
          } else if (h.length > op->cap) {
            op->truncated = true;
            c->sink = Conn::Sink::kDiscard;
          } else {
            c->dst = op->buf;
            c->sink = Conn::Sink::kOp;
          }
          break;
        }
      }
      if (!c->claimed) {
        c->tmp.resize(h.length);
        c->dst = c->tmp.data();
        c->sink = Conn::Sink::kTmp;
      }
      break;
    }
    case FrameType::kReadReq:
      serve_read(c, h);
      break;
    case FrameType::kReadResp: {
      std::lock_guard<std::mutex> lk(read_mu_);
      auto it = reads_.find(h.id);
      if (it != reads_.end()) {
        std::shared_ptr<Op> op = it->second;
        if (op->peer != c->peer || op->cap != h.length)
          return Status(ErrorCode::kProtocol, "READ_RESP from rank " + std::to_string(c->peer) + " for read " +
                                                  std::to_string(h.id) + " has " + std::to_string(h.length) +
                                                  " bytes, " + std::to_string(op->cap) + " were asked");
        reads_.erase(it);
        std::lock_guard<std::mutex> olk(op->mu);
        op->state = kClaimed;
        c->claimed = op;
        c->dst = op->buf;
        c->sink = Conn::Sink::kOp;
      }  // else: the read timed out; drop the data
      break;
    }
    case FrameType::kReadErr:
    case FrameType::kAbort:
      if (h.length > (1u << 20))
        return Status(ErrorCode::kProtocol, std::string(frame_type_name(h.type)) + " message of " + std::to_string(h.length) + " bytes");
      c->tmp.resize(h.length);
      c->dst = c->tmp.data();
      c->sink = Conn::Sink::kTmp;
      break;
    case FrameType::kBye:
      break;
  }
  c->in_payload = true;
  if (c->need == 0) end_frame(c);
  return Status::OK();
}

void Engine::end_frame(Conn* c) {
  c->in_payload = false;
  const FrameHeader h = c->cur;
  std::shared_ptr<Op> op = std::move(c->claimed);
  c->claimed.reset();
  switch (h.type) {
    case FrameType::kMessage: {
      if (op) {
        if (op->truncated)
          complete(op, Status(ErrorCode::kInvalidArgument, "message from rank " + std::to_string(c->peer) + " tag " +
                                                               std::to_string(h.tag) + " has " + std::to_string(h.length) +
                                                               " bytes; the receive buffer holds " + std::to_string(op->cap)),
                   0);
        else
          complete(op, Status::OK(), h.length);
        return;
      }
      std::shared_ptr<Handler> handler;
      std::shared_ptr<Op> late;
      {
        std::lock_guard<std::mutex> lk(match_mu_);
        auto hit = handlers_.find(h.tag);
        if (hit != handlers_.end()) {
          handler = hit->second;
        } else {
          // A receive posted while the message was arriving matches it now (keeps the order).
          auto& dq = posted_[c->peer];
          for (auto it = dq.begin(); it != dq.end(); ++it) {
            if ((*it)->tag != h.tag) continue;
            late = *it;
            dq.erase(it);
            std::lock_guard<std::mutex> olk(late->mu);
            late->state = kClaimed;
            break;
          }
          if (!late) unexpected_[c->peer].push_back(Unexpected{h.tag, std::move(c->tmp)});
        }
      }
      if (handler) {
        (*handler)(c->peer, h.tag, std::move(c->tmp));
      } else if (late) {
        if (late->kind == OpKind::kRecvMessage) {
          late->msg = std::move(c->tmp);
          complete(late, Status::OK(), h.length);
        } else if (h.length > late->cap) {
          complete(late, Status(ErrorCode::kInvalidArgument, "message from rank " + std::to_string(c->peer) + " tag " +
                                                                 std::to_string(h.tag) + " has " + std::to_string(h.length) +
                                                                 " bytes; the receive buffer holds " + std::to_string(late->cap)),
                   0);
        } else {
          if (h.length) std::memcpy(late->buf, c->tmp.data(), h.length);
          complete(late, Status::OK(), h.length);
        }
      }
      c->tmp.clear();
      return;
    }
    case FrameType::kReadResp:
      if (op) complete(op, Status::OK(), h.length);
      return;
    case FrameType::kReadErr: {
      std::shared_ptr<Op> rop;
      {
        std::lock_guard<std::mutex> lk(read_mu_);
        auto it = reads_.find(h.id);
        if (it != reads_.end()) {
          rop = it->second;
          reads_.erase(it);
        }
      }
      ErrorCode code = (h.tag >= 1 && h.tag <= 12) ? static_cast<ErrorCode>(h.tag) : ErrorCode::kProtocol;
      if (rop) complete(rop, Status(code, std::string(c->tmp.begin(), c->tmp.end())), 0);
      return;
    }
    case FrameType::kAbort: {
      std::string why(c->tmp.begin(), c->tmp.end());
      abort(Status(ErrorCode::kPeerGone, "rank " + std::to_string(c->peer) + " aborted: " + why), true);
      return;
    }
    case FrameType::kBye: {
      c->bye = true;
      Status st(ErrorCode::kPeerGone, "rank " + std::to_string(c->peer) + " closed its communicator");
      std::vector<std::shared_ptr<Op>> fail;
      fail_peer_ops(c->peer, st, true, &fail);
      return;
    }
    default:
      return;
  }
}

void Engine::serve_read(Conn* c, const FrameHeader& h) {
  OutFrame f;
  FrameHeader r;
  r.src_rank = static_cast<uint32_t>(rank_);
  r.id = h.id;
  std::shared_ptr<Region> reg;
  {
    std::lock_guard<std::mutex> lk(region_mu_);
    auto it = regions_.find(h.tag);
    if (it != regions_.end()) reg = it->second;
  }
  std::string err;
  ErrorCode code = ErrorCode::kOk;
  if (!reg) {
    code = ErrorCode::kUnknownToken;
    err = "rank " + std::to_string(rank_) + " has no registered region with token " + std::to_string(h.tag);
  } else if (h.offset > reg->size || h.length > reg->size - h.offset) {
    code = ErrorCode::kOutOfRange;
    err = "read of " + std::to_string(h.length) + " bytes at offset " + std::to_string(h.offset) + " is past the end of rank " +
          std::to_string(rank_) + "'s region " + std::to_string(h.tag) + " (" + std::to_string(reg->size) + " bytes)";
  }
  if (code == ErrorCode::kOk) {
    r.type = FrameType::kReadResp;
    r.length = h.length;
    f.data = reg->data + h.offset;
    f.len = h.length;
    f.pin = reg;
  } else {
    r.type = FrameType::kReadErr;
    r.tag = static_cast<uint64_t>(code);
    f.owned.assign(err.begin(), err.end());
    f.data = f.owned.data();
    f.len = f.owned.size();
    r.length = f.len;
  }
  encode_header(r, f.hdr);
  enqueue(c, std::move(f));
}

// ---------------------------------------------------------------- failures
void Engine::conn_error(Conn* c, const Status& st) {
  if (!c->failed.load()) fail_connection(c, st);
  c->loop->poller->remove(c->fd);
  if (c->claimed) {
    std::shared_ptr<Op> op = std::move(c->claimed);
    c->claimed.reset();
    complete(op, st, 0);
  }
  c->in_payload = false;
}

void Engine::fail_connection(Conn* c, const Status& st) {
  if (c->failed.exchange(true)) return;
  ::shutdown(c->fd, SHUT_RDWR);
  bool graceful = c->bye.load();
  // Mark the whole communicator aborted before any waiter of this connection wakes up.
  if (opt_.fail_fast && !graceful && !closing_.load()) abort(st, true);
  std::vector<std::shared_ptr<Op>> fail;
  {
    std::lock_guard<std::mutex> lk(c->send_mu);
    c->fail_status = st;
    for (auto& f : c->q)
      if (f.op) fail.push_back(f.op);
    c->q.clear();
    c->drained.notify_all();
  }
  fail_peer_ops(c->peer, st, false, &fail);
}

// Records `st` as the peer's status (keeping an earlier error unless `overwrite`) and completes
// `fail` plus every receive posted for the peer and every read from it with `st`.
void Engine::fail_peer_ops(int peer, const Status& st, bool overwrite, std::vector<std::shared_ptr<Op>>* fail) {
  {
    std::lock_guard<std::mutex> lk(match_mu_);
    if (overwrite || peer_status_[peer].ok()) peer_status_[peer] = st;
    for (auto& o : posted_[peer]) fail->push_back(o);
    posted_[peer].clear();
  }
  {
    std::lock_guard<std::mutex> lk(read_mu_);
    for (auto it = reads_.begin(); it != reads_.end();) {
      if (it->second->peer == peer) {
        fail->push_back(it->second);
        it = reads_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& o : *fail) complete(o, st, 0);
}

void Engine::abort(const Status& why, bool broadcast) {
  {
    std::lock_guard<std::mutex> lk(state_mu_);
    if (!global_status_.ok()) return;
    global_status_ = why;
  }
  if (broadcast) {
    // Best effort: an ABORT frame to every live peer whose stream is at a frame boundary.
    std::string text = "rank " + std::to_string(rank_) + " aborted: " + why.to_string();
    for (auto& cp : conns_) {
      Conn* c = cp.get();
      if (!c || c->failed) continue;
      std::lock_guard<std::mutex> lk(c->send_mu);
      if (!c->q.empty() && c->q.front().sent != 0) continue;
      OutFrame f;
      FrameHeader h;
      h.type = FrameType::kAbort;
      h.src_rank = static_cast<uint32_t>(rank_);
      h.tag = static_cast<uint64_t>(why.code());
      h.length = text.size();
      encode_header(h, f.hdr);
      std::string all(reinterpret_cast<char*>(f.hdr), kHeaderSize);
      all += text;
      if (c->tx) {
        Status e;
        if (c->tx->free_space(&e) >= all.size() && e.ok()) {
          iovec v{const_cast<char*>(all.data()), all.size()};
          c->tx->write(&v, 1, &e);
          doorbell(c);
        }
        continue;
      }
      net::write_all(c->fd, all.data(), all.size(), Clock::now() + milliseconds(100));
    }
  }
  for (auto& cp : conns_)
    if (cp) fail_connection(cp.get(), why);
  std::vector<std::shared_ptr<Op>> fail;
  {
    std::lock_guard<std::mutex> lk(match_mu_);
    for (auto& dq : posted_) {
      for (auto& o : dq) fail.push_back(o);
      dq.clear();
    }
  }
  {
    std::lock_guard<std::mutex> lk(read_mu_);
    for (auto& kv : reads_) fail.push_back(kv.second);
    reads_.clear();
  }
  for (auto& o : fail) complete(o, why, 0);
}

// ---------------------------------------------------------------- I/O threads
void Engine::loop_main(Loop* l) {
  Poller::Event evs[64];
  while (!stop_.load()) {
    int n = l->poller->wait(evs, 64, 200);
    if (n < 0) {
      abort(Status(ErrorCode::kIo, "the I/O multiplexer failed: " + net::errno_string(errno)), true);
      return;
    }
    for (int i = 0; i < n; ++i) {
      Conn* c = static_cast<Conn*>(evs[i].ctx);
      if (evs[i].writable) on_writable(c);
      if (evs[i].readable || evs[i].error) {
        std::unique_lock<std::mutex> rl(c->recv_mu, std::try_to_lock);
        if (rl.owns_lock()) on_readable(c);  // else: a waiting caller is reading it
      }
    }
    // Shared-memory rings left with bytes (a waiting caller returned once it had its message).
    for (auto& cp : conns_) {
      Conn* c = cp.get();
      if (!c || c->loop != l || !c->rx || c->failed || !ring_has_data(c)) continue;
      std::unique_lock<std::mutex> rl(c->recv_mu, std::try_to_lock);
      if (rl.owns_lock()) on_readable(c);
    }
  }
}

// ---------------------------------------------------------------- handshake and mesh
Status Engine::handshake_connect(int fd, int peer, Clock::time_point dl) {
  FrameHeader h;
  h.type = FrameType::kHello;
  h.version = opt_.wire_version;
  h.src_rank = static_cast<uint32_t>(rank_);
  h.id = static_cast<uint64_t>(world_);
  h.tag = session_hash();
  uint8_t buf[kHeaderSize];
  encode_header(h, buf);
  Status st = net::write_all(fd, buf, kHeaderSize, dl);
  if (st.ok()) st = net::read_all(fd, buf, kHeaderSize, dl);
  if (!st.ok()) return Status(st.code() == ErrorCode::kTimeout ? ErrorCode::kRendezvous : st.code(),
                              "handshake with rank " + std::to_string(peer) + ": " + st.message());
  FrameHeader r;
  DecodeResult dr = decode_header(buf, 1u << 20, &r);
  if (dr == DecodeResult::kBadVersion)
    return Status(ErrorCode::kVersionMismatch, "rank " + std::to_string(peer) + " answered with " + describe_decode_error(dr, buf, 0));
  if (dr != DecodeResult::kOk)
    return Status(ErrorCode::kProtocol, "handshake with rank " + std::to_string(peer) + ": " + describe_decode_error(dr, buf, 1u << 20));
  if (r.type == FrameType::kAbort) {
    std::string why(r.length, '\0');
    if (r.length) net::read_all(fd, &why[0], r.length, dl);
    ErrorCode code = (r.tag >= 1 && r.tag <= 12) ? static_cast<ErrorCode>(r.tag) : ErrorCode::kProtocol;
    return Status(code, "rank " + std::to_string(peer) + " refused the connection: " + why);
  }
  if (r.type != FrameType::kHello || r.src_rank != static_cast<uint32_t>(peer) || r.id != static_cast<uint64_t>(world_))
    return Status(ErrorCode::kProtocol, "handshake with rank " + std::to_string(peer) + ": unexpected reply (" +
                                            frame_type_name(r.type) + " from rank " + std::to_string(r.src_rank) +
                                            ", world size " + std::to_string(r.id) + ")");
  return Status::OK();
}

Status Engine::handshake_accept(int fd, Clock::time_point dl, int* peer) {
  uint8_t buf[kHeaderSize];
  Status st = net::read_all(fd, buf, kHeaderSize, dl);
  if (!st.ok()) return Status(ErrorCode::kProtocol, "incoming connection sent no handshake: " + st.message());
  FrameHeader h;
  DecodeResult dr = decode_header(buf, 1u << 20, &h);
  auto refuse = [&](ErrorCode code, const std::string& why) {
    FrameHeader a;
    a.type = FrameType::kAbort;
    a.version = opt_.wire_version;
    a.src_rank = static_cast<uint32_t>(rank_);
    a.tag = static_cast<uint64_t>(code);
    a.length = why.size();
    uint8_t out[kHeaderSize];
    encode_header(a, out);
    std::string all(reinterpret_cast<char*>(out), kHeaderSize);
    all += why;
    net::write_all(fd, all.data(), all.size(), Clock::now() + milliseconds(200));
    return Status(code, why);
  };
  if (dr == DecodeResult::kBadVersion) {
    return refuse(ErrorCode::kVersionMismatch, "a peer connecting to rank " + std::to_string(rank_) + " speaks " +
                                                   describe_decode_error(dr, buf, 0));
  }
  if (dr != DecodeResult::kOk)
    return Status(ErrorCode::kProtocol, "incoming connection: " + describe_decode_error(dr, buf, 1u << 20));
  if (h.type != FrameType::kHello) return Status(ErrorCode::kProtocol, "incoming connection did not start with HELLO");
  if (h.version != opt_.wire_version)
    return refuse(ErrorCode::kVersionMismatch, "rank " + std::to_string(h.src_rank) + " speaks wire protocol version " +
                                                   std::to_string(h.version) + ", rank " + std::to_string(rank_) +
                                                   " speaks version " + std::to_string(opt_.wire_version));
  if (h.tag != session_hash())
    return refuse(ErrorCode::kProtocol, "connection from another job (store prefix differs)");
  if (h.id != static_cast<uint64_t>(world_))
    return refuse(ErrorCode::kProtocol, "rank " + std::to_string(h.src_rank) + " believes the world size is " +
                                            std::to_string(h.id) + ", rank " + std::to_string(rank_) + " that it is " +
                                            std::to_string(world_));
  if (h.src_rank <= static_cast<uint32_t>(rank_) || h.src_rank >= static_cast<uint32_t>(world_))
    return refuse(ErrorCode::kBadRank, "unexpected connection from rank " + std::to_string(h.src_rank));
  *peer = static_cast<int>(h.src_rank);
  FrameHeader r;
  r.type = FrameType::kHello;
  r.version = opt_.wire_version;
  r.src_rank = static_cast<uint32_t>(rank_);
  r.id = static_cast<uint64_t>(world_);
  r.tag = session_hash();
  encode_header(r, buf);
  return net::write_all(fd, buf, kHeaderSize, dl);
}

Status Engine::connect_mesh(Store* store) {
  Clock::time_point dl = Clock::now() + opt_.timeout;
  int lfd = -1;
  uint16_t port = 0;
  Status st = net::listen_tcp(opt_.listen_host, 0, std::max(16, world_), &lfd, &port);
  if (!st.ok()) return st;
  struct Closer {
    int fd;
    ~Closer() { net::close_fd(fd); }
  } closer{lfd};
  std::string host = opt_.advertise_host.empty() ? opt_.listen_host : opt_.advertise_host;
  if (host.empty() || host == "0.0.0.0" || host == "::") host = "127.0.0.1";
  const std::string key_prefix = opt_.store_prefix + "/addr/";
  st = store->set(key_prefix + std::to_string(rank_), host + ":" + std::to_string(port));
  if (!st.ok()) return st;
  // For same-host direct reads: pid, host identity and the address of a nonce a peer can probe.
  {
    std::random_device rd;
    probe_nonce_ = (static_cast<uint64_t>(rd()) << 32) ^ rd() ^ reinterpret_cast<uintptr_t>(this);
    std::ostringstream os;
    std::string bootid;
    std::ifstream bf("/proc/sys/kernel/random/boot_id");
    std::getline(bf, bootid);
    char hn[256] = {0};
    gethostname(hn, sizeof hn - 1);
    os << ::getpid() << " " << reinterpret_cast<uintptr_t>(&probe_nonce_) << " " << probe_nonce_ << " " << hn << "/"
       << (bootid.empty() ? "-" : bootid);
    st = store->set(opt_.store_prefix + "/proc/" + std::to_string(rank_), os.str());
    if (!st.ok()) return st;
    const char* shm_env = std::getenv("HERON_COMMNET_SHM");
    if (opt_.shared_memory && shm::available() && !(shm_env && std::string(shm_env) == "0") && !bootid.empty()) {
      shm_record_ = std::string("v1 ") + hn + "/" + bootid;
      st = store->set(opt_.store_prefix + "/shm/" + std::to_string(rank_), shm_record_);
      if (!st.ok()) return st;
    }
  }
  for (int j = 0; j < rank_; ++j) {
    std::string addr;
    st = store->get(key_prefix + std::to_string(j), milliseconds(std::max(1, net::ms_left(dl))), &addr);
    if (!st.ok())
      return Status(ErrorCode::kRendezvous, "rendezvous timed out after " + std::to_string(opt_.timeout.count()) +
                                                " ms on rank " + std::to_string(rank_) + ": rank " + std::to_string(j) +
                                                " never published its address (is it running?): " + st.message());
    std::string h;
    uint16_t p = 0;
    if (!net::split_host_port(addr, &h, &p))
      return Status(ErrorCode::kRendezvous, "rank " + std::to_string(j) + " published a malformed address '" + addr + "'");
    int fd = -1;
    st = net::connect_tcp(h, p, dl, &fd);
    if (!st.ok())
      return Status(ErrorCode::kRendezvous, "rank " + std::to_string(rank_) + " cannot reach rank " + std::to_string(j) +
                                                " at " + addr + ": " + st.message());
    st = handshake_connect(fd, j, dl);
    if (!st.ok()) {
      net::close_fd(fd);
      return st;
    }
    conns_[j] = std::make_unique<Conn>();
    conns_[j]->peer = j;
    conns_[j]->fd = fd;
  }
  int missing = world_ - 1 - rank_;
  while (missing > 0) {
    int fd = -1;
    st = net::accept_tcp(lfd, dl, &fd);
    if (!st.ok()) {
      std::string have, lack;
      for (int j = rank_ + 1; j < world_; ++j) (conns_[j] ? have : lack) += (conns_[j] ? have : lack).empty() ? std::to_string(j) : ", " + std::to_string(j);
      return Status(ErrorCode::kRendezvous,
                    "rendezvous timed out after " + std::to_string(opt_.timeout.count()) + " ms on rank " +
                        std::to_string(rank_) + " (world size " + std::to_string(world_) + "): no connection from rank(s) " +
                        lack + (have.empty() ? "" : " (connected: " + have + ")") + " -- did every rank start?");
    }
    int peer = -1;
    st = handshake_accept(fd, std::min(dl, Clock::now() + milliseconds(5000)), &peer);
    if (!st.ok()) {
      net::close_fd(fd);
      if (st.code() == ErrorCode::kVersionMismatch) return st;
      continue;  // a stray or garbage connection: dropped, keep waiting for the real peers
    }
    if (conns_[peer]) {
      net::close_fd(fd);
      continue;
    }
    conns_[peer] = std::make_unique<Conn>();
    conns_[peer]->peer = peer;
    conns_[peer]->fd = fd;
    --missing;
  }
  probe_direct(store, dl);
  setup_shm(store, dl);
  return Status::OK();
}

// Every peer published its record before connecting, so these gets do not wait.
void Engine::probe_direct(Store* store, Clock::time_point dl) {
#if defined(__linux__)
  const char* env = std::getenv("HERON_COMMNET_DIRECT");
  if (env && std::string(env) == "0") return;
  for (int j = 0; j < world_; ++j) {
    if (j == rank_) continue;
    std::string rec, key = opt_.store_prefix + "/proc/" + std::to_string(j);
    bool exists = false;  // a peer without a record (another implementation) just has no direct reads
    if (!store->check(key, &exists).ok() || !exists) continue;
    if (!store->get(key, milliseconds(std::max(1, std::min(1000, net::ms_left(dl)))), &rec).ok()) continue;
    std::istringstream is(rec);
    long pid = 0;
    uint64_t addr = 0, nonce = 0;
    if (!(is >> pid >> addr >> nonce) || pid <= 0) continue;
    uint64_t got = 0;
    iovec l{&got, sizeof got}, r{reinterpret_cast<void*>(addr), sizeof got};
    if (process_vm_readv(static_cast<pid_t>(pid), &l, 1, &r, 1, 0) == static_cast<ssize_t>(sizeof got) && got == nonce)
      direct_pid_[j] = pid;  // same host, same pid namespace, and permitted
  }
#else
  (void)store;
  (void)dl;
#endif
}

// Same-host peers (both published a shared-memory record with the same host and boot id) switch
// their frame streams to a pair of rings. Every rank creates its outgoing ring per such peer and
// publishes the segment's name; maps the peer's ring and removes its name at once (so a killed job
// leaves nothing in /dev/shm); says whether it succeeded; and a pair uses shared memory only when
// both sides did. Any failure falls back to TCP for that pair. Runs before the I/O threads start,
// when no frame has been sent yet.
void Engine::setup_shm(Store* store, Clock::time_point dl) {
  if (shm_record_.empty()) return;  // disabled here (Options::shared_memory, HERON_COMMNET_SHM=0)
  const std::string pre = opt_.store_prefix + "/shm/";
  auto wait_ms = [&] { return milliseconds(std::max(1, std::min(5000, net::ms_left(dl)))); };
  std::vector<int> peers;
  for (int j = 0; j < world_; ++j) {
    if (j == rank_ || !conns_[j]) continue;
    std::string rec;
    bool exists = false;
    if (!store->check(pre + std::to_string(j), &exists).ok() || !exists) continue;
    if (!store->get(pre + std::to_string(j), wait_ms(), &rec).ok() || rec != shm_record_) continue;
    peers.push_back(j);
  }
  if (peers.empty()) return;
  std::vector<std::unique_ptr<shm::Ring>> tx(world_), rx(world_);
  remove_stale_segments("heron-commnet-");  // rings of processes killed while setting up
  for (int j : peers) {
    std::ostringstream name;
    name << "/heron-commnet-" << ::getpid() << "-" << rank_ << "-" << j << "-" << std::hex << probe_nonce_;
    std::unique_ptr<shm::Ring> r;
    Status st = shm::Ring::create(name.str(), opt_.shm_ring_bytes, &r);
    if (st.ok()) tx[j] = std::move(r);
    store->set(pre + std::to_string(rank_) + "/" + std::to_string(j), st.ok() ? name.str() : std::string("-"));
  }
  for (int j : peers) {
    std::string name;
    bool ok = false;
    if (store->get(pre + std::to_string(j) + "/" + std::to_string(rank_), wait_ms(), &name).ok() && name != "-") {
      std::unique_ptr<shm::Ring> r;
      ok = shm::Ring::open(name, &r).ok() && tx[j];
      shm::Ring::unlink(name);
      if (ok) rx[j] = std::move(r);
    }
    store->set(pre + "ok/" + std::to_string(rank_) + "/" + std::to_string(j), ok ? "1" : "0");
  }
  for (int j : peers) {
    std::string theirs;
    bool both = rx[j] && store->get(pre + "ok/" + std::to_string(j) + "/" + std::to_string(rank_), wait_ms(), &theirs).ok() &&
                theirs == "1";
    if (tx[j]) shm::Ring::unlink(tx[j]->name());
    if (both) {
      conns_[j]->tx = std::move(tx[j]);
      conns_[j]->rx = std::move(rx[j]);
    }
  }
}

Status Engine::read_direct(int peer, uint64_t addr, void* local, size_t n) {
  if (!can_read_direct(peer))
    return Status(ErrorCode::kInvalidArgument, "read_direct: rank " + std::to_string(peer) + " cannot be read directly");
#if defined(__linux__)
  uint8_t* dst = static_cast<uint8_t*>(local);
  size_t done = 0;
  while (done < n) {
    size_t chunk = std::min<size_t>(n - done, size_t(1) << 30);
    iovec l{dst + done, chunk}, r{reinterpret_cast<void*>(addr + done), chunk};
    ssize_t got = process_vm_readv(static_cast<pid_t>(direct_pid_[peer]), &l, 1, &r, 1, 0);
    if (got <= 0)
      return Status(ErrorCode::kIo, "read_direct from rank " + std::to_string(peer) + " failed: " +
                                        (got < 0 ? net::errno_string(errno) : std::string("nothing read")));
    done += static_cast<size_t>(got);
  }
  return Status::OK();
#else
  return Status(ErrorCode::kInvalidArgument, "read_direct: not supported on this platform");
#endif
}

Status Engine::start() {
  std::string pname = opt_.poller;
  if (pname.empty()) {
    const char* e = std::getenv("HERON_COMMNET_POLLER");
    if (e) pname = e;
  }
  int nloops = std::max(1, std::min(opt_.io_threads, std::max(1, world_ - 1)));
  for (int i = 0; i < nloops; ++i) {
    Status st;
    auto l = std::make_unique<Loop>();
    l->poller = make_poller(pname, &st);
    if (!l->poller) return st;
    poller_name_ = l->poller->name();
    loops_.push_back(std::move(l));
  }
  int k = 0;
  for (auto& c : conns_) {
    if (!c) continue;
    net::set_nonblocking(c->fd, true);
    c->in.resize(256 * 1024);
    c->loop = loops_[k++ % nloops].get();
    Status st = c->loop->poller->add(c->fd, c.get(), true, false);
    if (!st.ok()) return st;
  }
  started_ = true;
  timer_thread_ = std::thread([this] { timer_loop(); });
  for (auto& l : loops_) {
    Loop* lp = l.get();
    l->thread = std::thread([this, lp] { loop_main(lp); });
  }
  return Status::OK();
}

Status Engine::close() {
  if (closed_.exchange(true)) return Status::OK();
  closing_ = true;
  if (started_) {
    // BYE to every live peer, then wait (bounded) for our queues to drain and the peers' BYE/EOF.
    for (auto& cp : conns_) {
      Conn* c = cp.get();
      if (!c || c->failed) continue;
      OutFrame f;
      FrameHeader h;
      h.type = FrameType::kBye;
      h.src_rank = static_cast<uint32_t>(rank_);
      encode_header(h, f.hdr);
      enqueue(c, std::move(f));
    }
    Clock::time_point dl = Clock::now() + opt_.close_linger;
    for (auto& cp : conns_) {
      Conn* c = cp.get();
      if (!c) continue;
      std::unique_lock<std::mutex> lk(c->send_mu);
      c->drained.wait_until(lk, dl, [&] { return c->failed.load() || c->q.empty(); });
      if (!c->failed) ::shutdown(c->fd, SHUT_WR);
    }
    for (auto& cp : conns_) {
      Conn* c = cp.get();
      if (!c) continue;
      while (!c->failed.load() && !c->eof.load() && Clock::now() < dl) std::this_thread::sleep_for(milliseconds(1));
    }
  }
  {
    std::lock_guard<std::mutex> lk(state_mu_);
    if (global_status_.ok()) global_status_ = Status(ErrorCode::kClosed, "the communicator of rank " + std::to_string(rank_) + " is closed");
  }
  stop_ = true;
  for (auto& l : loops_) {
    l->poller->wakeup();
    if (l->thread.joinable()) l->thread.join();
  }
  {
    std::lock_guard<std::mutex> lk(timer_mu_);
    timer_stop_ = true;
  }
  timer_cv_.notify_all();
  if (timer_thread_.joinable()) timer_thread_.join();
  Status why = health();
  for (auto& cp : conns_) {
    Conn* c = cp.get();
    if (!c) continue;
    fail_connection(c, why);
    if (c->claimed) {
      std::shared_ptr<Op> op = std::move(c->claimed);
      complete(op, why, 0);
    }
    net::close_fd(c->fd);
    c->fd = -1;
  }
  return Status::OK();
}

// ---------------------------------------------------------------- operations
Request Engine::isend(int peer, uint64_t tag, const void* data, size_t n, Callback cb, milliseconds to) {
  auto op = new_op(OpKind::kSend, peer, tag, std::move(cb), to);
  Status st = check_peer(peer, "send");
  if (st.ok() && n && !data) st = Status(ErrorCode::kInvalidArgument, "send: null buffer with a nonzero size");
  if (st.ok()) st = peer_unusable(peer);
  if (st.ok()) {
    std::lock_guard<std::mutex> lk(match_mu_);
    st = peer_status_[peer];
  }
  if (!st.ok()) return failed_request(op, st);
  OutFrame f;
  FrameHeader h;
  h.type = FrameType::kMessage;
  h.src_rank = static_cast<uint32_t>(rank_);
  h.tag = tag;
  h.length = n;
  encode_header(h, f.hdr);
  f.data = static_cast<const uint8_t*>(data);
  f.len = n;
  f.op = op;
  enqueue(conns_[peer].get(), std::move(f));
  add_timer(op);  // after: a send handed to the kernel at once needs no timer
  return Request(op);
}

Request Engine::irecv(OpKind kind, int peer, uint64_t tag, void* data, size_t cap, Callback cb, milliseconds to) {
  auto op = new_op(kind, peer, tag, std::move(cb), to);
  op->buf = static_cast<uint8_t*>(data);
  op->cap = cap;
  Status st = check_peer(peer, "recv");
  if (st.ok() && kind == OpKind::kRecv && cap && !data) st = Status(ErrorCode::kInvalidArgument, "recv: null buffer with a nonzero capacity");
  if (st.ok()) st = peer_unusable(peer);
  if (!st.ok()) return failed_request(op, st);
  std::vector<uint8_t> found;
  bool have = false;
  {
    std::lock_guard<std::mutex> lk(match_mu_);
    auto& uq = unexpected_[peer];
    for (auto it = uq.begin(); it != uq.end(); ++it) {
      if (it->tag != tag) continue;
      found = std::move(it->data);
      uq.erase(it);
      have = true;
      break;
    }
    if (!have) {
      if (!peer_status_[peer].ok()) {
        st = peer_status_[peer];
      } else {
        posted_[peer].push_back(op);
      }
    }
  }
  if (!st.ok()) return failed_request(op, st);
  if (have) {
    size_t n = found.size();
    if (kind == OpKind::kRecvMessage) {
      op->msg = std::move(found);
      complete(op, Status::OK(), n);
    } else if (n > cap) {
      complete(op, Status(ErrorCode::kInvalidArgument, "message from rank " + std::to_string(peer) + " tag " + std::to_string(tag) +
                                                           " has " + std::to_string(n) + " bytes; the receive buffer holds " +
                                                           std::to_string(cap)),
               0);
    } else {
      if (n) std::memcpy(data, found.data(), n);
      complete(op, Status::OK(), n);
    }
    return Request(op);
  }
  add_timer(op);
  return Request(op);
}

Request Engine::read(int peer, uint64_t rtok, uint64_t roff, uint64_t ltok, uint64_t loff, size_t len, Callback cb,
                     int stream, milliseconds to) {
  auto op = new_op(OpKind::kRead, peer, rtok, std::move(cb), to);
  op->cap = len;
  Status st = check_peer(peer, "read");
  std::shared_ptr<Stream> s;
  {
    std::lock_guard<std::mutex> lk(read_mu_);
    if (stream < 0 || stream >= static_cast<int>(streams_.size())) {
      if (st.ok()) st = Status(ErrorCode::kInvalidArgument, "read: no read stream " + std::to_string(stream));
    } else {
      s = streams_[stream];
    }
  }
  if (st.ok()) {
    std::lock_guard<std::mutex> lk(region_mu_);
    auto it = regions_.find(ltok);
    if (it == regions_.end()) {
      st = Status(ErrorCode::kUnknownToken, "read: no local registered region with token " + std::to_string(ltok));
    } else if (loff > it->second->size || len > it->second->size - loff) {
      st = Status(ErrorCode::kOutOfRange, "read: " + std::to_string(len) + " bytes at offset " + std::to_string(loff) +
                                              " do not fit the local region " + std::to_string(ltok) + " (" +
                                              std::to_string(it->second->size) + " bytes)");
    } else {
      op->pin = it->second;
      op->buf = it->second->data + loff;
    }
  }
  if (st.ok()) st = peer_unusable(peer);
  if (st.ok()) {
    std::lock_guard<std::mutex> lk(match_mu_);
    st = peer_status_[peer];
  }
  if (s) {
    op->stream = s;
    std::lock_guard<std::mutex> lk(s->mu);
    s->q.push_back(op);
  }
  if (!st.ok()) return failed_request(op, st);
  {
    std::lock_guard<std::mutex> lk(read_mu_);
    op->id = next_read_id_++;
    reads_[op->id] = op;
  }
  add_timer(op);
  OutFrame f;
  FrameHeader h;
  h.type = FrameType::kReadReq;
  h.src_rank = static_cast<uint32_t>(rank_);
  h.tag = rtok;
  h.offset = roff;
  h.length = len;
  h.id = op->id;
  encode_header(h, f.hdr);
  enqueue(conns_[peer].get(), std::move(f));
  return Request(op);
}

Status Engine::register_memory(void* data, size_t size, uint64_t* token) {
  if (!data && size) return Status(ErrorCode::kInvalidArgument, "register_memory: null pointer with a nonzero size");
  if (!token) return Status(ErrorCode::kInvalidArgument, "register_memory: null token pointer");
  auto r = std::make_shared<Region>();
  r->data = static_cast<uint8_t*>(data);
  r->size = size;
  std::lock_guard<std::mutex> lk(region_mu_);
  // Tokens are not guessable small integers: a counter mixed with the rank, never 0.
  r->token = (static_cast<uint64_t>(rank_) << 48) ^ (++next_token_ * 0x9E3779B97F4A7C15ull);
  if (r->token == 0) r->token = 1;
  regions_[r->token] = r;
  *token = r->token;
  return Status::OK();
}

Status Engine::unregister_memory(uint64_t token) {
  std::weak_ptr<Region> w;
  {
    std::lock_guard<std::mutex> lk(region_mu_);
    auto it = regions_.find(token);
    if (it == regions_.end())
      return Status(ErrorCode::kUnknownToken, "unregister_memory: no region with token " + std::to_string(token));
    w = it->second;
    regions_.erase(it);
  }
  // Wait until replies and local reads no longer use the memory.
  Clock::time_point dl = Clock::now() + opt_.timeout;
  while (!w.expired()) {
    if (Clock::now() >= dl)
      return Status(ErrorCode::kTimeout, "unregister_memory: the region is still in use by a transfer after " +
                                             std::to_string(opt_.timeout.count()) + " ms");
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return Status::OK();
}

int Engine::create_read_stream() {
  std::lock_guard<std::mutex> lk(read_mu_);
  streams_.push_back(std::make_shared<Stream>());
  return static_cast<int>(streams_.size() - 1);
}

Status Engine::set_handler(uint64_t tag, Handler h) {
  std::vector<std::pair<int, std::vector<uint8_t>>> backlog;
  std::shared_ptr<Handler> hp;
  {
    std::lock_guard<std::mutex> lk(match_mu_);
    if (!h) {
      handlers_.erase(tag);
      return Status::OK();
    }
    hp = std::make_shared<Handler>(std::move(h));
    handlers_[tag] = hp;
    for (int p = 0; p < world_; ++p) {
      auto& uq = unexpected_[p];
      for (auto it = uq.begin(); it != uq.end();) {
        if (it->tag == tag) {
          backlog.emplace_back(p, std::move(it->data));
          it = uq.erase(it);
        } else {
          ++it;
        }
      }
    }
  }
  for (auto& b : backlog) (*hp)(b.first, tag, std::move(b.second));
  return Status::OK();
}

// A caller waiting on an operation drives the operation's connection itself when nobody else is
// reading it: the I/O thread's interest is switched off, the caller poll()s the socket and runs the
// same receive/send code. A message then wakes one thread (the waiter), as with a plain socket,
// instead of the I/O thread and then the waiter.
Status Engine::wait_op(const std::shared_ptr<Op>& op) {
  auto done = [&] {
    std::lock_guard<std::mutex> lk(op->mu);
    return op->state == kDone;
  };
  // Receives and reads only: a send that did not complete inline is flushed by the I/O thread.
  Conn* c = (started_ && !stop_ && op->kind != OpKind::kSend && op->peer >= 0 && op->peer < world_)
                ? conns_[op->peer].get()
                : nullptr;
  if (c && !done() && !c->failed) {
    std::unique_lock<std::mutex> rl(c->recv_mu, std::try_to_lock);
    if (rl.owns_lock()) {
      {
        std::lock_guard<std::mutex> lk(c->send_mu);
        c->taken = true;
        update_interest(c);
      }
      // Bytes already buffered may hold the message.
      if (c->in_end > c->in_start) {
        Status err;
        if (!process_input(c, &err)) conn_error(c, err);
      }
      while (!done() && !c->failed && !stop_) {
        bool ww;
        {
          std::lock_guard<std::mutex> lk(c->send_mu);
          ww = c->want_write;
        }
        if (c->rx) {
          // A short bounded spin on the ring before sleeping in poll().
          bool ready = false;
          for (int i = 0; i < 2000 && !ready; ++i) ready = ring_has_data(c);
          if (ready) {
            on_readable(c, op.get());
            continue;
          }
        }
        pollfd p{c->fd, static_cast<short>(POLLIN | (ww ? POLLOUT : 0)), 0};
        int ms = std::max(1, std::min(50, net::ms_left(op->deadline) + 1));
        int n = ::poll(&p, 1, ms);
        if (n > 0 && (p.revents & POLLOUT)) on_writable(c);
        if (n > 0 && (p.revents & ~POLLOUT)) on_readable(c, op.get());
      }
      {
        std::lock_guard<std::mutex> lk(c->send_mu);
        c->taken = false;
        update_interest(c);
      }
      if (c->rx && !c->failed) settle_shm(c);  // what is left is the I/O thread's
    }
  }
  std::unique_lock<std::mutex> lk(op->mu);
  op->cv.wait(lk, [&] { return op->state == kDone; });
  return op->status;
}

}  // namespace detail

// ---------------------------------------------------------------- Request
Status Request::wait() {
  if (!op_) return Status(ErrorCode::kInvalidArgument, "wait on an empty request");
  detail::Engine* engine;
  {
    std::lock_guard<std::mutex> lk(op_->mu);
    if (op_->state == detail::kDone) return op_->status;
    engine = op_->engine;
  }
  if (engine) return engine->wait_op(op_);
  std::unique_lock<std::mutex> lk(op_->mu);
  op_->cv.wait(lk, [&] { return op_->state == detail::kDone; });
  return op_->status;
}
bool Request::test() const {
  if (!op_) return false;
  std::lock_guard<std::mutex> lk(op_->mu);
  return op_->state == detail::kDone;
}
Status Request::status() const {
  if (!op_) return Status(ErrorCode::kInvalidArgument, "empty request");
  std::lock_guard<std::mutex> lk(op_->mu);
  return op_->status;
}
size_t Request::bytes() const {
  if (!op_) return 0;
  std::lock_guard<std::mutex> lk(op_->mu);
  return op_->bytes;
}
std::vector<uint8_t> Request::take_message() {
  if (!op_) return {};
  std::lock_guard<std::mutex> lk(op_->mu);
  if (op_->state != detail::kDone) return {};
  return std::move(op_->msg);
}

// ---------------------------------------------------------------- Communicator
Communicator::Communicator(std::unique_ptr<detail::Engine> engine) : engine_(std::move(engine)) {}
Communicator::~Communicator() {
  if (engine_) engine_->close();
}

Status Communicator::create(int rank, int world_size, Store* store, const Options& options,
                            std::unique_ptr<Communicator>* out) {
  if (!out) return Status(ErrorCode::kInvalidArgument, "create: null output");
  if (world_size < 1) return Status(ErrorCode::kInvalidArgument, "world size " + std::to_string(world_size) + " < 1");
  if (rank < 0 || rank >= world_size)
    return Status(ErrorCode::kBadRank, "rank " + std::to_string(rank) + " is out of range [0, " + std::to_string(world_size) + ")");
  if (!store && world_size > 1) return Status(ErrorCode::kInvalidArgument, "create: a store is needed for world size > 1");
  if (options.timeout.count() <= 0) return Status(ErrorCode::kInvalidArgument, "create: the timeout must be positive");
  auto eng = std::make_unique<detail::Engine>(rank, world_size, options);
  if (world_size > 1) {
    Status st = eng->connect_mesh(store);
    if (!st.ok()) return st;
  }
  Status st = eng->start();
  if (!st.ok()) return st;
  out->reset(new Communicator(std::move(eng)));
  return Status::OK();
}

Status Communicator::create_from_env(const Options& options, std::unique_ptr<Communicator>* out) {
  EnvRendezvous env;
  Status st = store_from_env(options.timeout, &env);
  if (!st.ok()) return st;
  st = create(env.rank, env.world_size, env.store.get(), options, out);
  if (st.ok()) (*out)->owned_store_ = std::move(env.store);  // rank 0 keeps serving the store
  return st;
}

int Communicator::rank() const { return engine_->rank_; }
int Communicator::world_size() const { return engine_->world_; }
const char* Communicator::poller_name() const { return engine_->poller_name_.c_str(); }
const char* Communicator::transport(int peer) const { return engine_->transport(peer); }
Status Communicator::register_memory(void* data, size_t size, uint64_t* token) { return engine_->register_memory(data, size, token); }
Status Communicator::unregister_memory(uint64_t token) { return engine_->unregister_memory(token); }
int Communicator::create_read_stream() { return engine_->create_read_stream(); }
Request Communicator::read(int peer, uint64_t rt, uint64_t ro, uint64_t lt, uint64_t lo, size_t n, Callback cb, int stream,
                           milliseconds to) {
  return engine_->read(peer, rt, ro, lt, lo, n, std::move(cb), stream, to);
}
Request Communicator::isend(int peer, uint64_t tag, const void* data, size_t size, Callback cb, milliseconds to) {
  return engine_->isend(peer, tag, data, size, std::move(cb), to);
}
Request Communicator::irecv(int peer, uint64_t tag, void* data, size_t cap, Callback cb, milliseconds to) {
  return engine_->irecv(detail::OpKind::kRecv, peer, tag, data, cap, std::move(cb), to);
}
Request Communicator::irecv_message(int peer, uint64_t tag, Callback cb, milliseconds to) {
  return engine_->irecv(detail::OpKind::kRecvMessage, peer, tag, nullptr, 0, std::move(cb), to);
}
Status Communicator::send(int peer, uint64_t tag, const void* data, size_t size, milliseconds to) {
  return isend(peer, tag, data, size, {}, to).wait();
}
Status Communicator::recv(int peer, uint64_t tag, void* data, size_t cap, size_t* received, milliseconds to) {
  Request r = irecv(peer, tag, data, cap, {}, to);
  Status st = r.wait();
  if (received) *received = st.ok() ? r.bytes() : 0;
  return st;
}
Status Communicator::recv_message(int peer, uint64_t tag, std::vector<uint8_t>* message, milliseconds to) {
  Request r = irecv_message(peer, tag, {}, to);
  Status st = r.wait();
  if (st.ok() && message) *message = r.take_message();
  return st;
}
bool Communicator::can_read_direct(int peer) const { return engine_->can_read_direct(peer); }
Status Communicator::read_direct(int peer, uint64_t addr, void* local, size_t n) { return engine_->read_direct(peer, addr, local, n); }
Status Communicator::set_handler(uint64_t tag, Handler handler) { return engine_->set_handler(tag, std::move(handler)); }
Status Communicator::health() const { return engine_->health(); }
void Communicator::abort(const std::string& reason) {
  engine_->abort(Status(ErrorCode::kPeerGone, "rank " + std::to_string(engine_->rank_) + " called abort: " + reason), true);
}
Status Communicator::close() { return engine_->close(); }

}  // namespace heron_commnet
