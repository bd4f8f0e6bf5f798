// The runtime session ([deploy]): runs a graph::Graph on a device, from several threads at once.
//
// Creation checks the graph (ops known and implemented, attribute kinds, value ids, topological
// order), resolves each node's op once, packs its attributes into the ABI's heron_attr array (the
// same unpacking heron_op_call uses), moves the initializers to the device and computes liveness:
// every intermediate value is dropped right after its last use. `run` keeps all of its state in a
// per-run value table, so one session may run on many threads concurrently.
//
// Memory plan (options.arena, on by default; HERON_ARENA=0 turns it off): the first run with a
// new input-shape signature records which allocation of each step became which intermediate
// buffer, how long each buffer (with the views of it) lives, then plans one arena for them
// (memory_plan.h) and checks the plan. Later runs with that signature check an arena out of the
// plan's pool and serve those allocations from it through a per-thread allocation hook
// (core/tensor/allocation_hook.h); model outputs and anything unplanned use the device allocator.
// See docs/design/runtime.md.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "c_api/include/heron.h"
#include "core/graph/graph.h"
#include "core/graph/passes.h"
#include "core/ops/dispatcher.h"

namespace heron {
namespace runtime {

struct SessionOptions {
  std::string device = "cpu";  // "cpu", "cuda", "cuda:1", ...
  // Intra-op threads. The pool is process-wide: > 0 sets it (heron::set_num_threads) when the
  // session is created; 0 leaves it as it is.
  int threads = 0;
  bool profile = false;  // record a per-node profile of every run (profile_json, chrome_trace_json)
  // Run the graph optimisation passes (core/graph/passes.h: batch_norm folding, conv epilogue
  // fusion) on the session's copy of the graph. Host devices only.
  bool optimize = true;
  // Place intermediates in a planned per-run arena (host devices; ignored on others for now). The
  // environment variable HERON_ARENA=0, read when the session is created, turns it off whatever
  // this says.
  bool arena = true;
  // Run the high-resolution start of the graph one sample at a time when the batch is > 1, so each
  // sample's intermediates stay in cache (see Session::run). Host devices only. The environment
  // variable HERON_MICROBATCH=0, read when the session is created, turns it off whatever this says.
  bool microbatch = true;
};

// What one profiled node execution recorded.
struct NodeProfile {
  int32_t node = 0;  // index into the graph's nodes
  int32_t sample = -1;  // micro-batched: the batch row this execution ran on; -1: the whole batch
  std::vector<std::vector<int64_t>> input_shapes, output_shapes;  // absent optional inputs: empty
  int64_t start_ns = 0, end_ns = 0;  // since the start of the run
  int64_t flops = 0;                 // matmul/linear/conv*: multiply-adds x 2; 0 for other ops
  int64_t bytes = 0;                 // bytes of the inputs + bytes of the outputs
};

struct RunProfile {
  int64_t index = 0;       // the session's run counter
  int64_t thread = 0;      // a small id of the thread that ran it
  int64_t start_ns = 0;    // since the session was created
  int64_t duration_ns = 0;
  int64_t peak_bytes = 0;  // peak bytes of live intermediates during this run
  int64_t arena_bytes = 0; // size of the arena this run used (0: none; may exceed its plan's)
  std::vector<NodeProfile> nodes;
};

struct RunStats {
  int64_t peak_bytes = 0;   // peak bytes of distinct storages made by nodes and alive at once (the arena counts whole)
  int64_t arena_bytes = 0;  // size of the arena this run used (0: none: arena off, or the run that planned it;
                            // a run may use a larger free arena than its plan needs)
};

// The memory plan of one input-shape signature, for tests and the profile.
struct ArenaInfo {
  int64_t arena_bytes = 0;    // size of the arena
  int64_t buffer_bytes = 0;   // sum of the sizes of the buffers placed in it
  int64_t buffers = 0;        // number of buffers placed in it (step outputs with their views, and scratch)
  int64_t inplace = 0;        // of which share an input's bytes (in-place)
  int64_t scratch = 0;        // of which are kernel scratch (made and destroyed within one step)
  int64_t unplanned = 0;      // intermediates left to the device allocator (escaping views, ...)
};

class Session {
 public:
  explicit Session(graph::Graph g, SessionOptions opts = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Runs the graph. inputs[i] is bound to the model input input_names[i]; every model input must
  // be given exactly once. output_names selects model outputs (empty = all, in model order).
  // Returns the outputs in the order asked for. Safe to call from several threads at once.
  std::vector<Tensor> run(const std::vector<std::string>& input_names, const std::vector<Tensor>& inputs,
                          const std::vector<std::string>& output_names = {}, RunStats* stats = nullptr) const;

  // The graph the session runs (after optimisation, when on).
  const graph::Graph& graph() const { return g_; }
  const graph::PassReport& optimization_report() const { return report_; }
  Device device() const { return device_; }
  const SessionOptions& options() const { return opts_; }
  size_t num_inputs() const { return g_.inputs.size(); }
  size_t num_outputs() const { return g_.outputs.size(); }
  const graph::Value& input(size_t i) const { return g_.values.at(static_cast<size_t>(g_.inputs.at(i))); }
  const graph::Value& output(size_t i) const { return g_.values.at(static_cast<size_t>(g_.outputs.at(i))); }

  // Peak bytes of live intermediates: of the last finished run, and the largest over all runs.
  int64_t last_peak_bytes() const { return last_peak_.load(); }
  int64_t max_peak_bytes() const { return max_peak_.load(); }
  int64_t num_runs() const { return runs_.load(); }
  // Whether runs use a planned arena, and the plan of the last run that used one (zeros if none).
  bool arena_enabled() const { return arena_on_; }
  ArenaInfo last_arena() const;

  // The recorded profile ({"format": "heron-profile", "version": 1, ...}; see docs/guide/deploy.md)
  // and the same as a Chrome trace (chrome://tracing, Perfetto). Empty runs when profiling is off.
  std::string profile_json() const;
  std::string chrome_trace_json() const;
  void clear_profile();

 private:
  struct Step {
    const OpInfo* op = nullptr;
    std::vector<heron_attr> attrs;   // points into g_.nodes[i].attrs
    std::vector<int32_t> inputs;     // value ids, -1 = absent
    std::vector<int32_t> outputs;
    std::vector<int32_t> free_after; // values whose last use is this step
    uint32_t unused_outputs = 0;     // bit k: output k is read by no step and not a model output
  };
  struct ArenaPlan;
  struct ArenaPlanner;
  struct ArenaPool;
  void check_and_plan();
  void plan_microbatch(const std::vector<int32_t>& producer, const std::vector<int32_t>& last_use);
  void freeze_weights();
  std::shared_ptr<ArenaPlan> find_plan(const std::vector<int64_t>& signature) const;
  void add_plan(std::shared_ptr<ArenaPlan> plan) const;
  std::string describe_inputs() const;

  graph::Graph g_;
  graph::PassReport report_;
  SessionOptions opts_;
  Device device_;
  std::vector<Step> steps_;
  std::vector<Tensor> init_values_;            // per value id: the initializer on the device, or undefined
  std::unordered_set<const Storage*> init_storages_;  // their storages (not counted in a run's peak memory)
  std::unordered_map<std::string, size_t> input_index_;   // model input name -> position
  std::unordered_map<std::string, size_t> output_index_;  // model output name -> position
  std::vector<char> is_output_;                // per value id
  // Micro-batching (see run and docs/design/runtime.md): steps [0, prefix_) may run one sample at a
  // time when the batch is > 1. Per prefix step and input: how a sample's run gets it (kLocal: the
  // sample's own value made in the prefix; kSliced: row i of a model input; kWhole: as is).
  enum : int8_t { kLocal = 0, kSliced = 1, kWhole = 2 };
  int32_t prefix_ = 0;
  std::vector<std::vector<int8_t>> prefix_in_kind_;
  std::vector<std::vector<int32_t>> prefix_free_;  // per prefix step: sample values dropped after it
  std::vector<char> exit_;                         // per value id: made in the prefix, read after it or a model output
  std::vector<int32_t> prefix_outer_free_;         // inputs/initializers last read in the prefix: dropped after it
  std::vector<int32_t> prefix_sliced_inputs_;      // model inputs the prefix reads by sample
  int64_t created_ns_ = 0;

  mutable std::atomic<int64_t> last_peak_{0}, max_peak_{0}, runs_{0};
  bool arena_on_ = true;
  mutable std::mutex plans_mu_;
  mutable std::vector<std::shared_ptr<ArenaPlan>> plans_;  // a few, per input-shape signature, oldest first
  mutable std::shared_ptr<ArenaPlan> last_plan_;           // guarded by plans_mu_
  std::unique_ptr<ArenaPool> pool_;                        // arenas not in use (thread-safe)
  mutable std::mutex profile_mu_;
  mutable std::vector<RunProfile> profiles_;
};

// FLOPs of one node execution (2 x multiply-adds for matmul, linear, conv1d, conv2d,
// conv_transpose2d; 0 for other ops).
int64_t estimate_flops(const char* op, const Tensor* inputs, size_t n_inputs, const Tensor* outputs, size_t n_outputs);

}  // namespace runtime
}  // namespace heron
