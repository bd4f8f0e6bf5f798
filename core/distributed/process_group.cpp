#include "core/distributed/process_group.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "core/device/device.h"
#include "core/distributed/local_arena.h"
#include "core/util/error.h"
#include "heron_commnet/commnet.h"

namespace heron {
namespace distributed {

namespace cn = heron_commnet;

struct World {
  std::unique_ptr<cn::Store> store;  // kept: rank 0 serves the TCP store for the others
  std::unique_ptr<cn::Communicator> comm;
  std::mutex mu;
  bool destroyed = false;
  int64_t timeout_ms = 0;
};

namespace {

[[noreturn]] void throw_status(const cn::Status& st, const std::string& what) {
  std::string msg = str_cat(what, ": ", st.to_string());
  if (st.code() == cn::ErrorCode::kBadRank) throw Error(ErrorCode::IndexError, msg, "distributed");
  if (st.code() == cn::ErrorCode::kInvalidArgument) throw Error(ErrorCode::InvalidArgument, msg, "distributed");
  throw CommError(st.code() == cn::ErrorCode::kTimeout || st.code() == cn::ErrorCode::kRendezvous, msg);
}

bool starts_with(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

template <typename T, typename F>
void combine(T* d, const T* s, size_t n, F f) {
  for (size_t i = 0; i < n; ++i) d[i] = f(d[i], s[i]);
}

template <typename T>
void reduce_typed(T* d, const T* s, size_t n, ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum:
    case ReduceOp::Avg: combine(d, s, n, [](T a, T b) { return static_cast<T>(a + b); }); break;
    case ReduceOp::Product: combine(d, s, n, [](T a, T b) { return static_cast<T>(a * b); }); break;
    case ReduceOp::Min: combine(d, s, n, [](T a, T b) { return b < a ? b : a; }); break;
    case ReduceOp::Max: combine(d, s, n, [](T a, T b) { return b > a ? b : a; }); break;
  }
}

template <typename H>
void reduce_16bit(H* d, const H* s, size_t n, ReduceOp op) {
  // Through float32, one element at a time (rounded once per step, as other libraries do).
  for (size_t i = 0; i < n; ++i) {
    float a = static_cast<float>(d[i]), b = static_cast<float>(s[i]), r = a;
    switch (op) {
      case ReduceOp::Sum:
      case ReduceOp::Avg: r = a + b; break;
      case ReduceOp::Product: r = a * b; break;
      case ReduceOp::Min: r = (b < a || std::isnan(b)) ? b : a; break;
      case ReduceOp::Max: r = (b > a || std::isnan(b)) ? b : a; break;
    }
    d[i] = H(r);
  }
}

template <typename T>
void reduce_float(T* d, const T* s, size_t n, ReduceOp op) {
  if (op == ReduceOp::Min) {
    combine(d, s, n, [](T a, T b) { return (b < a || std::isnan(b)) ? b : a; });  // NaN propagates
  } else if (op == ReduceOp::Max) {
    combine(d, s, n, [](T a, T b) { return (b > a || std::isnan(b)) ? b : a; });
  } else {
    reduce_typed(d, s, n, op);
  }
}

void divide(void* p, size_t n, DType dt, double by) {
  switch (dt) {
    case DType::Float32: { auto* f = static_cast<float*>(p); for (size_t i = 0; i < n; ++i) f[i] = static_cast<float>(f[i] / by); break; }
    case DType::Float64: { auto* f = static_cast<double*>(p); for (size_t i = 0; i < n; ++i) f[i] /= by; break; }
    case DType::Float16: { auto* f = static_cast<Half*>(p); for (size_t i = 0; i < n; ++i) f[i] = Half(static_cast<float>(static_cast<float>(f[i]) / by)); break; }
    case DType::BFloat16: { auto* f = static_cast<BFloat16*>(p); for (size_t i = 0; i < n; ++i) f[i] = BFloat16(static_cast<float>(static_cast<float>(f[i]) / by)); break; }
    default: throw Error(ErrorCode::TypeError, str_cat("ReduceOp.AVG needs a floating dtype, got ", dtype_name(dt)), "distributed");
  }
}

void check_tensor(const Tensor& t, const char* fn, const char* what, bool output) {
  if (!t.defined()) throw Error(ErrorCode::NullHandle, str_cat(fn, ": ", what, " is undefined"), "distributed");
  if (!device_impl(t.device()).is_host())
    throw Error(ErrorCode::NotImplemented, str_cat(fn, ": ", what, " is on ", device_str(t.device()), "; collectives work on CPU tensors"), "distributed");
  if (output && !t.is_contiguous())
    throw Error(ErrorCode::InvalidArgument, str_cat(fn, ": ", what, " must be contiguous (it is written in place)"), "distributed");
}

}  // namespace

void reduce_into(void* dst, const void* src, size_t n, DType dt, ReduceOp op) {
  switch (dt) {
    case DType::Float32: reduce_float(static_cast<float*>(dst), static_cast<const float*>(src), n, op); break;
    case DType::Float64: reduce_float(static_cast<double*>(dst), static_cast<const double*>(src), n, op); break;
    case DType::Float16: reduce_16bit(static_cast<Half*>(dst), static_cast<const Half*>(src), n, op); break;
    case DType::BFloat16: reduce_16bit(static_cast<BFloat16*>(dst), static_cast<const BFloat16*>(src), n, op); break;
    case DType::Int8: reduce_typed(static_cast<int8_t*>(dst), static_cast<const int8_t*>(src), n, op); break;
    case DType::UInt8: reduce_typed(static_cast<uint8_t*>(dst), static_cast<const uint8_t*>(src), n, op); break;
    case DType::Int32: reduce_typed(static_cast<int32_t*>(dst), static_cast<const int32_t*>(src), n, op); break;
    case DType::Int64: reduce_typed(static_cast<int64_t*>(dst), static_cast<const int64_t*>(src), n, op); break;
    case DType::Bool: {
      // Sum and Max are "any", Product and Min "all" (bytes normalized to 0/1).
      auto* d = static_cast<uint8_t*>(dst);
      auto* s = static_cast<const uint8_t*>(src);
      bool any = op == ReduceOp::Sum || op == ReduceOp::Max || op == ReduceOp::Avg;
      for (size_t i = 0; i < n; ++i) d[i] = any ? ((d[i] | s[i]) != 0) : ((d[i] != 0) & (s[i] != 0));
      break;
    }
  }
}

// ---------------------------------------------------------------- construction
ProcessGroup::ProcessGroup(std::shared_ptr<World> world, std::vector<int> ranks, int rank, uint32_t id)
    : world_(std::move(world)), ranks_(std::move(ranks)), rank_(rank), id_(id) {}

ProcessGroup::~ProcessGroup() = default;

std::shared_ptr<ProcessGroup> ProcessGroup::init(const std::string& method_in, int rank, int world_size, int64_t timeout_ms) {
  HERON_CHECK_ARG(timeout_ms > 0, "init_process_group: the timeout must be positive, got ", timeout_ms, " ms");
  std::string method = method_in.empty() ? "env://" : method_in;
  auto world = std::make_shared<World>();
  world->timeout_ms = timeout_ms;
  cn::Options opt;
  opt.timeout = std::chrono::milliseconds(timeout_ms);
  std::chrono::milliseconds to(timeout_ms);
  cn::Status st;
  if (starts_with(method, "env://")) {
    // RANK / WORLD_SIZE from the environment unless given.
    if (rank >= 0) setenv("RANK", std::to_string(rank).c_str(), 1);
    if (world_size >= 0) setenv("WORLD_SIZE", std::to_string(world_size).c_str(), 1);
    cn::EnvRendezvous env;
    st = cn::store_from_env(to, &env);
    if (!st.ok()) throw_status(st, "init_process_group(env://)");
    rank = env.rank;
    world_size = env.world_size;
    world->store = std::move(env.store);
  } else if (starts_with(method, "tcp://")) {
    HERON_CHECK_ARG(rank >= 0 && world_size > 0, "init_process_group(", method, "): rank and world_size are required");
    std::string hp = method.substr(6), host;
    size_t colon = hp.rfind(':');
    HERON_CHECK_ARG(colon != std::string::npos, "init_process_group: '", method, "' is not tcp://host:port");
    host = hp.substr(0, colon);
    long port = std::strtol(hp.c_str() + colon + 1, nullptr, 10);
    HERON_CHECK_ARG(port > 0 && port < 65536, "init_process_group: bad port in '", method, "'");
    std::unique_ptr<cn::TcpStore> s;
    st = cn::TcpStore::create(host, static_cast<uint16_t>(port), rank == 0, to, &s);
    if (!st.ok()) throw_status(st, "init_process_group(" + method + ")");
    world->store = std::move(s);
  } else if (starts_with(method, "file://")) {
    HERON_CHECK_ARG(rank >= 0 && world_size > 0, "init_process_group(", method, "): rank and world_size are required");
    world->store = std::make_unique<cn::FileStore>(method.substr(7));
  } else {
    throw Error(ErrorCode::InvalidArgument,
                str_cat("init_process_group: unknown init_method '", method, "' (expected env://, tcp://host:port or file:///path)"),
                "distributed");
  }
  HERON_CHECK_INDEX(world_size > 0 && rank >= 0 && rank < world_size, "init_process_group: rank ", rank,
                    " is out of range for world size ", world_size);
  st = cn::Communicator::create(rank, world_size, world->store.get(), opt, &world->comm);
  if (!st.ok()) throw_status(st, "init_process_group");
  std::vector<int> ranks(world_size);
  for (int i = 0; i < world_size; ++i) ranks[i] = i;
  return std::make_shared<ProcessGroup>(world, std::move(ranks), rank, 0);
}

std::shared_ptr<ProcessGroup> ProcessGroup::new_group(const std::vector<int>& ranks) {
  check_usable("new_group");
  for (size_t i = 0; i < ranks.size(); ++i) {
    HERON_CHECK_INDEX(ranks[i] >= 0 && ranks[i] < size(), "new_group: rank ", ranks[i], " is out of range for a group of ", size());
    HERON_CHECK_ARG(i == 0 || ranks[i] > ranks[i - 1], "new_group: ranks must be ascending and distinct");
  }
  HERON_CHECK_ARG(!ranks.empty(), "new_group: no ranks");
  // Ids are derived from the parent's id and a per-parent counter: deterministic when every member
  // creates subgroups in the same order.
  uint32_t id = (id_ * 31u + (++subgroups_)) & 0xFFFFu;
  if (id == 0) id = 1;
  std::vector<int> global;
  int me = -1;
  for (size_t i = 0; i < ranks.size(); ++i) {
    global.push_back(ranks_[ranks[i]]);
    if (ranks[i] == rank_) me = static_cast<int>(i);
  }
  return std::make_shared<ProcessGroup>(world_, std::move(global), me, id);
}

int ProcessGroup::global_rank(int r) const {
  HERON_CHECK_INDEX(r >= 0 && r < size(), "rank ", r, " is out of range for a group of ", size());
  return ranks_[r];
}

void ProcessGroup::destroy() {
  std::lock_guard<std::mutex> lk(world_->mu);
  if (world_->destroyed) return;
  if (id_ != 0) return;  // subgroups own nothing
  world_->destroyed = true;
  // A peer blocked in the shared arena would not notice an orderly close (only a lost connection
  // aborts the communicator): tell it through the segment.
  if (arena_) arena_->abandon();
  if (world_->comm) world_->comm->close();
  world_->comm.reset();
  world_->store.reset();
}

bool ProcessGroup::destroyed() const {
  std::lock_guard<std::mutex> lk(world_->mu);
  return world_->destroyed;
}

void ProcessGroup::check_usable(const char* what) const {
  if (destroyed()) throw CommError(false, str_cat(what, ": the process group was destroyed"));
  HERON_CHECK(is_member(), InvalidArgument, what, ": this process is not a member of the group");
}

uint64_t ProcessGroup::next_tag_base() {
  // tag = group id (16 bits) | call sequence (32 bits) | step (16 bits)
  return (static_cast<uint64_t>(id_) << 48) | (static_cast<uint64_t>(++seq_) << 16);
}

// ---------------------------------------------------------------- point to point
void ProcessGroup::send_bytes(int peer, uint64_t tag, const void* p, size_t n) {
  cn::Status st = world_->comm->send(ranks_[peer], tag, p, n);
  if (!st.ok()) throw_status(st, str_cat("rank ", rank_, " sending to rank ", peer));
}

void ProcessGroup::recv_bytes(int peer, uint64_t tag, void* p, size_t n) {
  size_t got = 0;
  cn::Status st = world_->comm->recv(ranks_[peer], tag, p, n, &got);
  if (!st.ok()) throw_status(st, str_cat("rank ", rank_, " receiving from rank ", peer, " (do the tensors agree in size on every rank?)"));
  HERON_CHECK(got == n, InvalidArgument, "rank ", rank_, " received ", got, " bytes from rank ", peer, ", expected ", n,
              ": the tensors differ in size across ranks");
}

void ProcessGroup::sendrecv(int to, uint64_t stag, const void* sp, size_t sn, int from, uint64_t rtag, void* rp, size_t rn) {
  cn::Request r = world_->comm->irecv(ranks_[from], rtag, rp, rn);
  cn::Request s = world_->comm->isend(ranks_[to], stag, sp, sn);
  cn::Status ss = s.wait();
  cn::Status rs = r.wait();
  if (!ss.ok()) throw_status(ss, str_cat("rank ", rank_, " sending to rank ", to));
  if (!rs.ok()) throw_status(rs, str_cat("rank ", rank_, " receiving from rank ", from, " (do the tensors agree in size on every rank?)"));
  HERON_CHECK(r.bytes() == rn, InvalidArgument, "rank ", rank_, " received ", r.bytes(), " bytes from rank ", from,
              ", expected ", rn, ": the tensors differ in size across ranks");
}

void ProcessGroup::send(const Tensor& t, int dst, int tag) {
  check_usable("send");
  check_tensor(t, "send", "tensor", false);
  HERON_CHECK_INDEX(dst >= 0 && dst < size() && dst != rank_, "send: bad destination rank ", dst);
  HERON_CHECK_ARG(tag >= 0, "send: tag must be >= 0");
  Tensor c = t.contiguous();
  send_bytes(dst, (uint64_t(0xFFFF) << 48) | (static_cast<uint64_t>(id_) << 32) | static_cast<uint32_t>(tag), c.raw_data(), c.nbytes());
}

void ProcessGroup::recv(const Tensor& t, int src, int tag) {
  check_usable("recv");
  check_tensor(t, "recv", "tensor", true);
  HERON_CHECK_INDEX(src >= 0 && src < size() && src != rank_, "recv: bad source rank ", src);
  HERON_CHECK_ARG(tag >= 0, "recv: tag must be >= 0");
  recv_bytes(src, (uint64_t(0xFFFF) << 48) | (static_cast<uint64_t>(id_) << 32) | static_cast<uint32_t>(tag), t.raw_data(), t.nbytes());
}

// ---------------------------------------------------------------- algorithms
// Ring reduce-scatter over blocks (counts[i] elements of block i, in order): afterwards block
// rank holds the reduction of every rank's block rank. Transfers are split in segments so that the
// reduction of one overlaps the arrival of the next.
void ProcessGroup::ring_reduce_scatter(uint8_t* buf, const std::vector<size_t>& counts, DType dt, ReduceOp op, uint64_t tag) {
  const int n = size();
  const size_t item = itemsize(dt);
  std::vector<size_t> off(n + 1, 0);
  for (int i = 0; i < n; ++i) off[i + 1] = off[i] + counts[i];
  size_t maxc = *std::max_element(counts.begin(), counts.end());
  std::vector<uint8_t> scratch(maxc * item);
  const int right = (rank_ + 1) % n, left = (rank_ - 1 + n) % n;
  const size_t seg_elems = std::max<size_t>(1, (1u << 20) / item);
  for (int step = 0; step < n - 1; ++step) {
    int sb = (rank_ - step - 1 + 2 * n) % n;  // block sent
    int rb = (rank_ - step - 2 + 2 * n) % n;  // block received and reduced
    size_t rcount = counts[rb], scount = counts[sb];
    size_t nseg = std::max<size_t>(1, (std::max(rcount, scount) + seg_elems - 1) / seg_elems);
    std::vector<cn::Request> rr, ss;
    for (size_t k = 0; k < nseg; ++k) {
      size_t a = std::min(rcount, k * seg_elems), b = std::min(rcount, (k + 1) * seg_elems);
      rr.push_back(world_->comm->irecv(ranks_[left], tag + step * 64 + (k % 64), scratch.data() + a * item, (b - a) * item));
    }
    for (size_t k = 0; k < nseg; ++k) {
      size_t a = std::min(scount, k * seg_elems), b = std::min(scount, (k + 1) * seg_elems);
      ss.push_back(world_->comm->isend(ranks_[right], tag + step * 64 + (k % 64), buf + (off[sb] + a) * item, (b - a) * item));
    }
    for (size_t k = 0; k < nseg; ++k) {
      size_t a = std::min(rcount, k * seg_elems), b = std::min(rcount, (k + 1) * seg_elems);
      cn::Status st = rr[k].wait();
      if (!st.ok()) throw_status(st, str_cat("all_reduce: rank ", rank_, " receiving from rank ", left));
      HERON_CHECK(rr[k].bytes() == (b - a) * item, InvalidArgument, "rank ", rank_, " received ", rr[k].bytes(), " bytes from rank ",
                  left, ", expected ", (b - a) * item, ": the tensors differ in size across ranks");
      reduce_into(buf + (off[rb] + a) * item, scratch.data() + a * item, b - a, dt, op);
    }
    for (auto& s : ss) {
      cn::Status st = s.wait();
      if (!st.ok()) throw_status(st, str_cat("all_reduce: rank ", rank_, " sending to rank ", right));
    }
  }
}

// Ring all-gather: block i (counts[i] elements) starts on rank i and ends on every rank.
void ProcessGroup::ring_all_gather(uint8_t* buf, const std::vector<size_t>& counts, size_t item, uint64_t tag) {
  const int n = size();
  std::vector<size_t> off(n + 1, 0);
  for (int i = 0; i < n; ++i) off[i + 1] = off[i] + counts[i];
  const int right = (rank_ + 1) % n, left = (rank_ - 1 + n) % n;
  for (int step = 0; step < n - 1; ++step) {
    int sb = (rank_ - step + n) % n;
    int rb = (rank_ - step - 1 + n) % n;
    sendrecv(right, tag + step, buf + off[sb] * item, counts[sb] * item, left, tag + step, buf + off[rb] * item, counts[rb] * item);
  }
}

// Recursive doubling (latency-optimal); a non-power-of-two world first folds the extra ranks in.
void ProcessGroup::recursive_doubling(uint8_t* buf, size_t count, DType dt, ReduceOp op, uint64_t tag) {
  const int n = size();
  const size_t bytes = count * itemsize(dt);
  int p = 1;
  while (p * 2 <= n) p *= 2;
  std::vector<uint8_t> scratch(bytes);
  const int extra = n - p;
  // Ranks p..n-1 hand their data to rank - p and wait for the result.
  if (rank_ >= p) {
    send_bytes(rank_ - p, tag, buf, bytes);
    recv_bytes(rank_ - p, tag + 1, buf, bytes);
    return;
  }
  if (rank_ < extra) {
    recv_bytes(rank_ + p, tag, scratch.data(), bytes);
    reduce_into(buf, scratch.data(), count, dt, op);
  }
  int step = 2;
  for (int mask = 1; mask < p; mask <<= 1, ++step) {
    int partner = rank_ ^ mask;
    sendrecv(partner, tag + step, buf, bytes, partner, tag + step, scratch.data(), bytes);
    // Combine in rank order so every rank computes bit-identical results (matters for floats).
    if (partner < rank_) {
      reduce_into(scratch.data(), buf, count, dt, op);
      if (bytes) std::memcpy(buf, scratch.data(), bytes);
    } else {
      reduce_into(buf, scratch.data(), count, dt, op);
    }
  }
  if (rank_ < extra) send_bytes(rank_ + p, tag + 1, buf, bytes);
}

bool ProcessGroup::use_arena() {
  if (arena_state_ >= 0) return arena_state_ == 1 && !arena_->broken();
  // Decided once per group, collectively: every member must take the same path. A MIN over the
  // group of [every other member's frames travel over shared-memory rings (same host, /dev/shm
  // usable), this rank may read every other member's memory directly (cross-memory attach)].
  const int n = size();
  const char* env = std::getenv("HERON_DIST_ARENA");
  uint8_t ok[2] = {static_cast<uint8_t>(!(env && std::string(env) == "0") && n >= 2 && n <= LocalArena::kMaxRanks), 1};
  for (int r = 0; r < n; ++r) {
    if (r == rank_) continue;
    if (std::strcmp(world_->comm->transport(ranks_[r]), "shm") != 0) ok[0] = 0;
    if (!world_->comm->can_read_direct(ranks_[r])) ok[1] = 0;
  }
  recursive_doubling(ok, 2, DType::UInt8, ReduceOp::Min, next_tag_base());
  if (!ok[0]) {
    arena_state_ = 0;
    return false;
  }
  // Group rank 0 creates the segment and sends its name; the others map it; a MIN says whether all
  // did. The name is removed once every member has mapped it (or failed to).
  char name[64] = {0};
  std::string created;
  std::unique_ptr<LocalArena> a;
  uint64_t tag = next_tag_base();
  if (rank_ == 0) {
    cn::Status st = LocalArena::create(n, 0, &created, &a);
    if (st.ok() && created.size() < sizeof(name)) std::memcpy(name, created.c_str(), created.size());
    for (int r = 1; r < n; ++r) send_bytes(r, tag, name, sizeof(name));
  } else {
    recv_bytes(0, tag, name, sizeof(name));
    name[sizeof(name) - 1] = 0;
    if (name[0]) {
      cn::Status st = LocalArena::open(name, n, rank_, &a);
      if (!st.ok()) a.reset();
    }
  }
  uint8_t mapped = a != nullptr;
  recursive_doubling(&mapped, 1, DType::UInt8, ReduceOp::Min, next_tag_base());
  if (!created.empty()) LocalArena::unlink(created);
  if (!mapped) {
    arena_state_ = 0;
    return false;
  }
  arena_ = std::move(a);
  arena_->set_direct(ok[1] != 0);
  arena_state_ = 1;
  return true;
}

bool ProcessGroup::use_direct(size_t bytes) {
  if (bytes < kDirectMin || size() < 2) return false;
  if (direct_ < 0) {
    // Decided once per group, collectively (every rank must take the same path): 1 when this rank
    // can read every other member directly, then a MIN over the group.
    const char* env = std::getenv("HERON_DIST_DIRECT");
    uint8_t ok = !(env && std::string(env) == "0");
    for (int r = 0; r < size() && ok; ++r)
      if (r != rank_ && !world_->comm->can_read_direct(ranks_[r])) ok = 0;
    recursive_doubling(&ok, 1, DType::UInt8, ReduceOp::Min, next_tag_base());
    direct_ = ok;
  }
  return direct_ == 1;
}

void ProcessGroup::direct_ring(uint8_t* buf, const std::vector<size_t>& counts, DType dt, ReduceOp op, bool reduce,
                               uint64_t tag) {
  const int n = size();
  const size_t item = itemsize(dt);
  std::vector<size_t> off(n + 1, 0);
  for (int i = 0; i < n; ++i) off[i + 1] = off[i] + counts[i];
  const int right = (rank_ + 1) % n, left = (rank_ - 1 + n) % n;
  const size_t seg = std::max<size_t>(item, ((256u << 10) / item) * item);
  std::vector<uint8_t> scratch(reduce ? std::min(seg, *std::max_element(counts.begin(), counts.end()) * item) : 0);
  for (int step = 0; step < n - 1; ++step) {
    // Reduce-scatter: send block r-s-1, pull and reduce block r-s-2. All-gather: r-s and r-s-1.
    int sb = reduce ? (rank_ - step - 1 + 2 * n) % n : (rank_ - step + 2 * n) % n;
    int rb = (sb - 1 + n) % n;
    uint64_t my_addr = reinterpret_cast<uintptr_t>(buf + off[sb] * item), left_addr = 0;
    uint64_t ack = 0, ack_in = 0;
    uint64_t t = tag + static_cast<uint64_t>(step) * 2;
    sendrecv(right, t, &my_addr, 8, left, t, &left_addr, 8);
    size_t bytes = counts[rb] * item;
    uint8_t* dst = buf + off[rb] * item;
    for (size_t a = 0; a < bytes; a += seg) {
      size_t len = std::min(seg, bytes - a);
      cn::Status st = world_->comm->read_direct(ranks_[left], left_addr + a, reduce ? scratch.data() : dst + a, len);
      if (!st.ok()) throw_status(st, str_cat("all_reduce: rank ", rank_, " reading rank ", left, "'s block"));
      if (reduce) reduce_into(dst + a, scratch.data(), len / item, dt, op);
    }
    // Tell the left neighbour its block is read; wait until the right one has read ours.
    sendrecv(left, t + 1, &ack, 8, right, t + 1, &ack_in, 8);
  }
}

// Two ranks on one host: three 8-byte exchanges (addresses; "my half is reduced and I am done
// reading yours"; "done") around two direct reads, instead of two per ring step.
void ProcessGroup::direct_pair(uint8_t* buf, const std::vector<size_t>& counts, DType dt, ReduceOp op, uint64_t tag) {
  const int peer = 1 - rank_;
  const size_t item = itemsize(dt);
  const size_t off[2] = {0, counts[0] * item};
  const size_t seg = std::max<size_t>(item, ((256u << 10) / item) * item);
  uint64_t base = reinterpret_cast<uintptr_t>(buf), peer_base = 0, token = 0, token_in = 0;
  sendrecv(peer, tag, &base, 8, peer, tag, &peer_base, 8);
  const size_t mine = counts[rank_] * item;
  std::vector<uint8_t> scratch(std::min(seg, std::max<size_t>(mine, 1)));
  for (size_t a = 0; a < mine; a += seg) {
    size_t len = std::min(seg, mine - a);
    cn::Status st = world_->comm->read_direct(ranks_[peer], peer_base + off[rank_] + a, scratch.data(), len);
    if (!st.ok()) throw_status(st, str_cat("all_reduce: rank ", rank_, " reading rank ", peer));
    reduce_into(buf + off[rank_] + a, scratch.data(), len / item, dt, op);
  }
  sendrecv(peer, tag + 1, &token, 8, peer, tag + 1, &token_in, 8);
  cn::Status st = world_->comm->read_direct(ranks_[peer], peer_base + off[peer], buf + off[peer], counts[peer] * item);
  if (!st.ok()) throw_status(st, str_cat("all_reduce: rank ", rank_, " reading rank ", peer));
  sendrecv(peer, tag + 2, &token, 8, peer, tag + 2, &token_in, 8);
}

// ---------------------------------------------------------------- collectives
void ProcessGroup::all_reduce(const Tensor& t, ReduceOp op) {
  check_usable("all_reduce");
  check_tensor(t, "all_reduce", "tensor", true);
  if (op == ReduceOp::Avg) HERON_CHECK_TYPE(is_floating(t.dtype()), "all_reduce: ReduceOp.AVG needs a floating dtype, got ", dtype_name(t.dtype()));
  uint64_t tag = next_tag_base();
  const int n = size();
  if (n == 1) return;
  const size_t count = static_cast<size_t>(t.numel());
  auto* buf = static_cast<uint8_t*>(t.raw_data());
  if (count * itemsize(t.dtype()) >= kArenaMin && use_arena()) {
    // After a failure in the arena (every member's call failed: a mismatch, a timeout, a lost peer)
    // use_arena() is false and later calls take the message path, which reports a lost peer itself.
    cn::Status st = arena_->all_reduce(buf, count, t.dtype(), op, ranks_, world_->comm.get(), std::chrono::milliseconds(world_->timeout_ms));
    if (!st.ok()) throw_status(st, "all_reduce");
  } else if (count * itemsize(t.dtype()) <= kRecursiveDoublingMax || count < static_cast<size_t>(n)) {
    recursive_doubling(buf, count, t.dtype(), op, tag);
  } else {
    std::vector<size_t> counts(n);
    for (int i = 0; i < n; ++i) counts[i] = count / n + (static_cast<size_t>(i) < count % n ? 1 : 0);
    if (use_direct(count * itemsize(t.dtype()))) {
      tag = next_tag_base();  // use_direct may have used the previous one
      if (n == 2) {
        direct_pair(buf, counts, t.dtype(), op, tag);
      } else {
        direct_ring(buf, counts, t.dtype(), op, true, tag);
        direct_ring(buf, counts, t.dtype(), op, false, tag + 0x8000);
      }
    } else {
      ring_reduce_scatter(buf, counts, t.dtype(), op, tag);
      ring_all_gather(buf, counts, itemsize(t.dtype()), tag + 0x8000);
    }
  }
  if (op == ReduceOp::Avg) divide(buf, count, t.dtype(), n);
}

void ProcessGroup::broadcast(const Tensor& t, int src) {
  check_usable("broadcast");
  check_tensor(t, "broadcast", "tensor", true);
  HERON_CHECK_INDEX(src >= 0 && src < size(), "broadcast: source rank ", src, " is out of range for a group of ", size());
  uint64_t tag = next_tag_base();
  const int n = size();
  const int vr = (rank_ - src + n) % n;  // rank relative to the source
  // Binomial tree: receive from the parent, then send to children.
  int mask = 1;
  while (mask < n) {
    if (vr & mask) {
      recv_bytes((vr - mask + src) % n, tag, t.raw_data(), t.nbytes());
      break;
    }
    mask <<= 1;
  }
  mask >>= 1;
  for (; mask > 0; mask >>= 1)
    if (vr + mask < n) send_bytes((vr + mask + src) % n, tag, t.raw_data(), t.nbytes());
}

void ProcessGroup::reduce(const Tensor& t, int dst, ReduceOp op) {
  check_usable("reduce");
  check_tensor(t, "reduce", "tensor", true);
  HERON_CHECK_INDEX(dst >= 0 && dst < size(), "reduce: destination rank ", dst, " is out of range for a group of ", size());
  if (op == ReduceOp::Avg) HERON_CHECK_TYPE(is_floating(t.dtype()), "reduce: ReduceOp.AVG needs a floating dtype, got ", dtype_name(t.dtype()));
  uint64_t tag = next_tag_base();
  const int n = size();
  const int vr = (rank_ - dst + n) % n;
  const size_t count = static_cast<size_t>(t.numel());
  // Binomial tree toward dst; non-root ranks reduce into a copy (their tensor stays unchanged).
  std::vector<uint8_t> acc(t.nbytes()), scratch(t.nbytes());
  if (t.nbytes()) std::memcpy(acc.data(), t.raw_data(), t.nbytes());
  for (int mask = 1; mask < n; mask <<= 1) {
    if (vr & mask) {
      send_bytes((vr - mask + dst) % n, tag, acc.data(), acc.size());
      break;
    }
    if (vr + mask < n) {
      recv_bytes((vr + mask + dst) % n, tag, scratch.data(), scratch.size());
      reduce_into(acc.data(), scratch.data(), count, t.dtype(), op);
    }
  }
  if (rank_ == dst) {
    if (op == ReduceOp::Avg) divide(acc.data(), count, t.dtype(), n);
    if (t.nbytes()) std::memcpy(t.raw_data(), acc.data(), t.nbytes());
  }
}

namespace {
void check_list(const std::vector<Tensor>& ts, int n, const Tensor& like, const char* fn, const char* what, bool output) {
  HERON_CHECK_ARG(static_cast<int>(ts.size()) == n, fn, ": ", what, " has ", ts.size(), " tensors; the group has ", n, " ranks");
  for (const Tensor& t : ts) {
    check_tensor(t, fn, what, output);
    HERON_CHECK_TYPE(t.dtype() == like.dtype(), fn, ": ", what, " mixes dtypes (", dtype_name(t.dtype()), " and ", dtype_name(like.dtype()), ")");
    HERON_CHECK_ARG(t.numel() == like.numel(), fn, ": every tensor of ", what, " must have ", like.numel(), " elements, one has ", t.numel());
  }
}
}  // namespace

void ProcessGroup::all_gather(const std::vector<Tensor>& outs, const Tensor& in) {
  check_usable("all_gather");
  check_tensor(in, "all_gather", "input", false);
  check_list(outs, size(), in, "all_gather", "tensor_list", true);
  uint64_t tag = next_tag_base();
  const int n = size();
  const size_t bytes = in.nbytes();
  std::vector<uint8_t> buf(bytes * n);
  Tensor c = in.contiguous();
  if (bytes) std::memcpy(buf.data() + bytes * rank_, c.raw_data(), bytes);
  ring_all_gather(buf.data(), std::vector<size_t>(n, bytes), 1, tag);
  for (int i = 0; i < n; ++i)
    if (bytes) std::memcpy(outs[i].raw_data(), buf.data() + bytes * i, bytes);
}

void ProcessGroup::reduce_scatter(const Tensor& out, const std::vector<Tensor>& ins, ReduceOp op) {
  check_usable("reduce_scatter");
  check_tensor(out, "reduce_scatter", "output", true);
  check_list(ins, size(), out, "reduce_scatter", "input_list", false);
  if (op == ReduceOp::Avg) HERON_CHECK_TYPE(is_floating(out.dtype()), "reduce_scatter: ReduceOp.AVG needs a floating dtype, got ", dtype_name(out.dtype()));
  uint64_t tag = next_tag_base();
  const int n = size();
  const size_t bytes = out.nbytes(), count = static_cast<size_t>(out.numel());
  std::vector<uint8_t> buf(bytes * n);
  for (int i = 0; i < n; ++i) {
    Tensor c = ins[i].contiguous();
    if (bytes) std::memcpy(buf.data() + bytes * i, c.raw_data(), bytes);
  }
  if (n > 1) ring_reduce_scatter(buf.data(), std::vector<size_t>(n, count), out.dtype(), op, tag);
  if (op == ReduceOp::Avg) divide(buf.data() + bytes * rank_, count, out.dtype(), n);
  if (bytes) std::memcpy(out.raw_data(), buf.data() + bytes * rank_, bytes);
}

void ProcessGroup::all_to_all(const std::vector<Tensor>& outs, const std::vector<Tensor>& ins) {
  check_usable("all_to_all");
  const int n = size();
  HERON_CHECK_ARG(static_cast<int>(ins.size()) == n && static_cast<int>(outs.size()) == n, "all_to_all: needs ", n,
                  " input and output tensors, got ", ins.size(), " and ", outs.size());
  for (int i = 0; i < n; ++i) {
    check_tensor(ins[i], "all_to_all", "input_tensor_list", false);
    check_tensor(outs[i], "all_to_all", "output_tensor_list", true);
    HERON_CHECK_TYPE(ins[i].dtype() == outs[i].dtype(), "all_to_all: input and output dtypes differ");
  }
  uint64_t tag = next_tag_base();
  std::vector<Tensor> cins;
  for (auto& t : ins) cins.push_back(t.contiguous());
  HERON_CHECK_ARG(cins[rank_].nbytes() == outs[rank_].nbytes(), "all_to_all: input ", rank_, " and output ", rank_, " differ in size");
  if (cins[rank_].nbytes()) std::memcpy(outs[rank_].raw_data(), cins[rank_].raw_data(), cins[rank_].nbytes());
  for (int i = 1; i < n; ++i) {
    int to = (rank_ + i) % n, from = (rank_ - i + n) % n;
    sendrecv(to, tag, cins[to].raw_data(), cins[to].nbytes(), from, tag, outs[from].raw_data(), outs[from].nbytes());
  }
}

void ProcessGroup::barrier() {
  check_usable("barrier");
  uint64_t tag = next_tag_base();
  const int n = size();
  // Dissemination barrier: log2(n) rounds of empty messages.
  char dummy = 0;
  for (int k = 1, step = 0; k < n; k <<= 1, ++step)
    sendrecv((rank_ + k) % n, tag + step, &dummy, 0, (rank_ - k + n) % n, tag + step, &dummy, 0);
}

}  // namespace distributed
}  // namespace heron
