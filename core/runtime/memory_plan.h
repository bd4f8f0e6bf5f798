// The memory planner of the runtime ([deploy]): places buffers with known sizes and lifetimes in
// one arena so that buffers alive at the same time never share a byte, and buffers whose lifetimes
// are disjoint reuse the same bytes. A pure function (no tensors, no devices), so it is tested on
// its own; check_plan is the independent checker that the session's tests and debug runs use.
//
// Lifetimes are inclusive step ranges [first, last]: a buffer made by step 3 and read for the last
// time by step 7 is [3, 7]. Two buffers conflict when their ranges intersect (a step's inputs and
// its outputs are alive together), except for an in-place pair (see Buffer::inplace_of).
//
// Algorithm: greedy by size with best fit (the "greedy by size" offset planner of TFLite and the
// idea behind onnxruntime's reuse of freed blocks): buffers in decreasing size order, each put in the
// smallest gap between the already placed buffers whose lifetimes intersect its own that fits it,
// else above the highest of them. See docs/design/runtime.md.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace heron {
namespace runtime {

struct PlanBuffer {
  int64_t size = 0;    // bytes (>= 0)
  int32_t first = 0;   // step that makes it
  int32_t last = 0;    // last step that reads it (>= first)
  // Index of a buffer whose bytes this one may take over (in-place): honoured only when that
  // buffer has the same size, dies at this buffer's first step (its last == this first) and was
  // made before it (its first < this first), and no other buffer claimed it first; else ignored.
  int32_t inplace_of = -1;
};

struct MemoryPlan {
  std::vector<int64_t> offsets;   // per buffer, multiple of `alignment`
  int64_t arena_bytes = 0;        // bytes the arena needs (a multiple of `alignment`)
  std::vector<char> inplace;      // per buffer: 1 when it took over buffer inplace_of's bytes
};

// Plans offsets for `buffers`. alignment must be a power of two. Throws heron::Error
// (InvalidArgument) on a negative size, a last < first or a bad alignment.
MemoryPlan plan_memory(const std::vector<PlanBuffer>& buffers, int64_t alignment = 64);

// The plan checker: returns "" when `plan` is valid for `buffers`, else a description of the first
// violation: an offset that is not aligned, a buffer that does not fit in arena_bytes, or two
// buffers whose lifetimes intersect and whose byte ranges intersect (allowed only for an in-place
// pair marked in plan.inplace, at the same offset, with the conditions of PlanBuffer::inplace_of).
std::string check_plan(const std::vector<PlanBuffer>& buffers, const MemoryPlan& plan, int64_t alignment = 64);

}  // namespace runtime
}  // namespace heron
