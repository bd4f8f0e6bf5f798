// Work splitting shared by the CPU convolution kernels (conv_kernels.cpp, conv_gemm.cpp).
#pragma once
#include <atomic>
#include <cstdlib>
#include <cstdint>

#include "core/util/thread_pool.h"

namespace heron {
namespace cpu {

inline bool affine_split_enabled() {
  static const bool on = [] { const char* e = std::getenv("HERON_SPLIT_AFFINE"); return !(e && e[0] == '0'); }();
  return on;
}

// Runs fn(part, item, item + 1) for every item, over `parts` pool tasks that pull items from a
// shared counter: a thread that is descheduled (the machine is shared) does not hold the others
// back as a static split would. `part` is unique among concurrently running tasks (per-part
// accumulators).
//
// Each part starts on its own contiguous range of items (in order, so what an item prefetches for
// the next one is for itself, and neighbouring items' data stay in one core's cache) and, when it
// runs out, takes items from the other ranges' counters: the balance of a shared counter without
// interleaving the items of two threads.
template <typename F>
void split_items(int64_t items, int64_t parts, F fn) {
  if (parts <= 1) {
    for (int64_t i = 0; i < items; ++i) fn(0, i, i + 1);
    return;
  }
  constexpr int64_t kMaxRanges = 64;
  if (parts > kMaxRanges || !affine_split_enabled()) {
    std::atomic<int64_t> next{0};
    parallel_for(0, parts, 1, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p)
        for (int64_t i = next.fetch_add(1); i < items; i = next.fetch_add(1)) fn(p, i, i + 1);
    });
    return;
  }
  struct alignas(64) Counter {
    std::atomic<int64_t> next;
  };
  Counter c[kMaxRanges];
  for (int64_t q = 0; q < parts; ++q) c[q].next.store(items * q / parts, std::memory_order_relaxed);
  parallel_for(0, parts, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p)
      for (int64_t k = 0; k < parts; ++k) {  // own range first, then the others'
        const int64_t q = (p + k) % parts, end = items * (q + 1) / parts;
        for (int64_t i = c[q].next.fetch_add(1); i < end; i = c[q].next.fetch_add(1)) fn(p, i, i + 1);
      }
  });
}

// Deterministic split for reductions: items go to `parts` contiguous chunks fixed by the shape
// alone (never by the thread count or by timing), each chunk accumulates into its own buffer
// and the buffers are summed in order, so a gradient is bitwise the same at any thread count.
constexpr int64_t kReduceParts = 8;
template <typename F>
void split_items_fixed(int64_t items, int64_t parts, F fn) {
  parallel_for(0, parts, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t i0 = items * p / parts, i1 = items * (p + 1) / parts;
      for (int64_t i = i0; i < i1; ++i) fn(p, i, i + 1);
    }
  });
}

}  // namespace cpu
}  // namespace heron
