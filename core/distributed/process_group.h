// heron::distributed -- process groups and collectives over CommNet (core/commnet).
//
// A ProcessGroup is a set of ranks sharing one CommNet communicator (the "world"); subgroups made
// with new_group() reuse the world's connections with their own tag space. Collectives work on CPU
// tensors of every dtype; outputs are written in place and must be contiguous. Every call is
// collective: all members call it in the same order with tensors of the same size and dtype.
// Failures (a rank gone, a timeout) raise CommError on every rank instead of hanging; sizes that
// differ across ranks raise heron::Error(InvalidArgument).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor/tensor.h"
#include "core/util/error.h"

namespace heron {
namespace distributed {

enum class ReduceOp : int32_t { Sum = 0, Product = 1, Min = 2, Max = 3, Avg = 4 };

/// A communication failure (peer gone, protocol, aborted group) or a timeout. Its ErrorCode is
/// Runtime; abi_status() is the finer C ABI status (HERON_ERR_COMM = 12, HERON_ERR_TIMEOUT = 13).
class CommError : public Error {
 public:
  CommError(bool timeout, std::string msg) : Error(ErrorCode::Runtime, std::move(msg), "distributed"), timeout_(timeout) {}
  bool timeout() const { return timeout_; }
  int abi_status() const { return timeout_ ? 13 : 12; }

 private:
  bool timeout_;
};

struct World;
class LocalArena;

class ProcessGroup {
 public:
  /// Joins the world. init_method: "env://" (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE; a rank or
  /// world size >= 0 given here wins), "tcp://host:port" (rank 0 hosts the store), or
  /// "file:///path" (a file every rank can see, not left over from an earlier run).
  static std::shared_ptr<ProcessGroup> init(const std::string& init_method, int rank, int world_size, int64_t timeout_ms);

  /// A subgroup of this group's members (group ranks, ascending, no duplicates). Collective over
  /// this group: every member calls it, in the same order; non-members get a group whose
  /// is_member() is false.
  std::shared_ptr<ProcessGroup> new_group(const std::vector<int>& ranks);

  int rank() const { return rank_; }  ///< this process's rank in the group (-1 if not a member)
  int size() const { return static_cast<int>(ranks_.size()); }
  bool is_member() const { return rank_ >= 0; }
  /// Whether large all-reduces of this group go through the same-host shared arena (decided on
  /// the first all-reduce of at least kArenaMin bytes; for tests and diagnostics).
  bool uses_arena() const { return arena_state_ == 1; }
  int global_rank(int group_rank) const;

  void all_reduce(const Tensor& t, ReduceOp op);
  void broadcast(const Tensor& t, int src);
  void reduce(const Tensor& t, int dst, ReduceOp op);
  void all_gather(const std::vector<Tensor>& outs, const Tensor& in);
  void reduce_scatter(const Tensor& out, const std::vector<Tensor>& ins, ReduceOp op);
  void all_to_all(const std::vector<Tensor>& outs, const std::vector<Tensor>& ins);
  void barrier();
  void send(const Tensor& t, int dst, int tag);
  void recv(const Tensor& t, int src, int tag);

  /// Leaves the world (the world group only; subgroups just stop being usable). Idempotent.
  void destroy();
  bool destroyed() const;

  /// Messages of at most this many bytes use recursive doubling in all_reduce; larger ones the ring.
  static constexpr size_t kRecursiveDoublingMax = 64 * 1024;
  /// Rings of at least this many bytes on one host use direct reads (HERON_DIST_DIRECT=0: never).
  static constexpr size_t kDirectMin = 256 * 1024;

  /// Ranks of one host all-reduce messages of at least this many bytes through a shared segment
  /// (local_arena.h) when every member is on this host (HERON_DIST_ARENA=0: never).
  static constexpr size_t kArenaMin = 1;

  ProcessGroup(std::shared_ptr<World> world, std::vector<int> ranks, int rank, uint32_t id);
  ~ProcessGroup();

 private:
  uint64_t next_tag_base();
  void check_usable(const char* what) const;
  void send_bytes(int peer, uint64_t tag, const void* p, size_t n);
  void recv_bytes(int peer, uint64_t tag, void* p, size_t n);
  void sendrecv(int to, uint64_t stag, const void* sp, size_t sn, int from, uint64_t rtag, void* rp, size_t rn);
  void ring_reduce_scatter(uint8_t* buf, const std::vector<size_t>& counts, DType dt, ReduceOp op, uint64_t tag);
  void ring_all_gather(uint8_t* buf, const std::vector<size_t>& counts, size_t item, uint64_t tag);
  void recursive_doubling(uint8_t* buf, size_t count, DType dt, ReduceOp op, uint64_t tag);
  // Same-host rings: each rank pulls its left neighbour's block with CommNet's direct read (one
  // copy by the kernel) instead of receiving it over TCP; an 8-byte address and an 8-byte
  // acknowledgement per step keep the buffers valid.
  bool use_direct(size_t bytes);
  // Same-host all-reduce through a shared segment; decided and set up collectively on first use.
  bool use_arena();
  void direct_ring(uint8_t* buf, const std::vector<size_t>& counts, DType dt, ReduceOp op, bool reduce, uint64_t tag);
  void direct_pair(uint8_t* buf, const std::vector<size_t>& counts, DType dt, ReduceOp op, uint64_t tag);

  std::shared_ptr<World> world_;
  std::vector<int> ranks_;  // global ranks of the members
  int rank_;
  uint32_t id_;
  uint32_t seq_ = 0;
  uint32_t subgroups_ = 0;
  int direct_ = -1;  // -1: not decided yet; 0/1: every member can read every other directly
  int arena_state_ = -1;  // -1: not decided yet; 0: not used; 1: arena_ is mapped
  std::unique_ptr<LocalArena> arena_;
};

/// dst[i] = dst[i] (op) src[i] for n elements of dtype dt (Avg reduces as Sum).
void reduce_into(void* dst, const void* src, size_t n, DType dt, ReduceOp op);

}  // namespace distributed
}  // namespace heron
