// The memory planner (core/runtime/memory_plan.h) and its checker. The plans of random interval
// sets are verified twice: by check_plan and by an independent byte-occupancy oracle written here
// (every step marks the bytes of the buffers alive at it; no byte may be marked twice). Broken
// plans must be rejected by check_plan.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "core/runtime/memory_plan.h"
#include "core/util/error.h"

using heron::runtime::check_plan;
using heron::runtime::MemoryPlan;
using heron::runtime::plan_memory;
using heron::runtime::PlanBuffer;

namespace {

// The oracle: "" when no byte is used by two buffers alive at one step (in-place pairs excepted),
// offsets are aligned and everything fits; sizes are in units of `unit` bytes to keep it small.
std::string occupancy_oracle(const std::vector<PlanBuffer>& b, const MemoryPlan& p, int64_t alignment) {
  int32_t steps = 0;
  for (const auto& x : b) steps = std::max(steps, x.last + 1);
  for (size_t i = 0; i < b.size(); ++i) {
    if (p.offsets[i] % alignment) return "unaligned";
    if (p.offsets[i] + b[i].size > p.arena_bytes) return "does not fit";
  }
  for (int32_t s = 0; s < steps; ++s) {
    std::vector<int32_t> owner(static_cast<size_t>(p.arena_bytes), -1);
    for (size_t i = 0; i < b.size(); ++i) {
      if (b[i].first > s || b[i].last < s) continue;
      for (int64_t k = p.offsets[i]; k < p.offsets[i] + b[i].size; ++k) {
        int32_t& o = owner[static_cast<size_t>(k)];
        if (o >= 0) {
          const auto& j = b[static_cast<size_t>(o)];
          const bool pair = (p.inplace[i] && b[i].inplace_of == o && j.last == b[i].first) ||
                            (p.inplace[static_cast<size_t>(o)] && j.inplace_of == static_cast<int32_t>(i) && b[i].last == j.first);
          if (!pair) return "bytes shared by live buffers at step " + std::to_string(s);
        }
        o = static_cast<int32_t>(i);
      }
    }
  }
  return "";
}

// The most bytes alive at one step: no valid plan without in-place can use less.
int64_t live_lower_bound(const std::vector<PlanBuffer>& b, int64_t alignment) {
  int32_t steps = 0;
  for (const auto& x : b) steps = std::max(steps, x.last + 1);
  int64_t best = 0;
  for (int32_t s = 0; s < steps; ++s) {
    int64_t sum = 0;
    for (const auto& x : b)
      if (x.first <= s && s <= x.last) sum += (x.size + alignment - 1) / alignment * alignment;
    best = std::max(best, sum);
  }
  return best;
}

std::vector<PlanBuffer> random_buffers(std::mt19937& g, int n, int steps, int64_t max_size, bool inplace_hints) {
  std::uniform_int_distribution<int64_t> size(0, max_size);
  std::uniform_int_distribution<int32_t> first(0, steps - 1), len(0, 12);
  std::vector<PlanBuffer> b(static_cast<size_t>(n));
  for (auto& x : b) {
    x.size = size(g);
    x.first = first(g);
    x.last = std::min(steps - 1, x.first + len(g));
  }
  if (inplace_hints) {  // some valid hints (a buffer dying where another starts, same size), some invalid
    std::uniform_int_distribution<int> pick(0, n - 1);
    for (int k = 0; k < n / 3; ++k) {
      int i = pick(g), j = pick(g);
      if (i == j) continue;
      if (k % 2 == 0 && b[static_cast<size_t>(i)].first < b[static_cast<size_t>(i)].last) {
        b[static_cast<size_t>(j)].size = b[static_cast<size_t>(i)].size;
        b[static_cast<size_t>(j)].first = b[static_cast<size_t>(i)].last;
        b[static_cast<size_t>(j)].last = std::min(steps - 1, b[static_cast<size_t>(j)].first + len(g));
      }
      b[static_cast<size_t>(j)].inplace_of = i;
    }
  }
  return b;
}

}  // namespace

TEST(MemoryPlan, RandomIntervalSetsGiveValidPlans) {
  std::mt19937 g(1234);
  for (int trial = 0; trial < 200; ++trial) {
    const bool hints = trial % 2 == 1;
    auto b = random_buffers(g, 1 + trial % 60, 40, 2000, hints);
    MemoryPlan p = plan_memory(b, 64);
    ASSERT_EQ(check_plan(b, p, 64), "") << "trial " << trial;
    ASSERT_EQ(occupancy_oracle(b, p, 64), "") << "trial " << trial;
    int64_t sum = 0;
    for (const auto& x : b) sum += (x.size + 63) / 64 * 64;
    EXPECT_LE(p.arena_bytes, sum);
    if (!hints) EXPECT_GE(p.arena_bytes, live_lower_bound(b, 64));
    for (size_t i = 0; i < b.size(); ++i)
      if (p.inplace[i]) EXPECT_EQ(p.offsets[i], p.offsets[static_cast<size_t>(b[i].inplace_of)]);
  }
}

TEST(MemoryPlan, DisjointLifetimesShareOneBlock) {
  std::vector<PlanBuffer> b = {{1000, 0, 1}, {3000, 2, 3}, {64, 4, 4}, {2048, 5, 9}};
  MemoryPlan p = plan_memory(b);
  EXPECT_EQ(p.arena_bytes, 3008);  // the largest, rounded up to 64
  for (int64_t o : p.offsets) EXPECT_EQ(o, 0);
  EXPECT_EQ(check_plan(b, p), "");
}

TEST(MemoryPlan, ChainOfLiveBuffersIsPacked) {
  // a -> b -> c -> d, each read only by the next step: two alive at a time.
  std::vector<PlanBuffer> b = {{4096, 0, 1}, {4096, 1, 2}, {4096, 2, 3}, {4096, 3, 4}};
  MemoryPlan p = plan_memory(b);
  EXPECT_EQ(p.arena_bytes, 2 * 4096);
  EXPECT_EQ(check_plan(b, p), "");
  EXPECT_EQ(occupancy_oracle(b, p, 64), "");
}

TEST(MemoryPlan, InPlaceChainsShareTheirInputsBytes) {
  std::vector<PlanBuffer> b = {{4096, 0, 1}, {4096, 1, 2, 0}, {4096, 2, 3, 1}, {4096, 3, 4, 2}};
  MemoryPlan p = plan_memory(b);
  EXPECT_EQ(p.arena_bytes, 4096);
  EXPECT_EQ(p.inplace, (std::vector<char>{0, 1, 1, 1}));
  EXPECT_EQ(check_plan(b, p), "");
  EXPECT_EQ(occupancy_oracle(b, p, 64), "");
}

TEST(MemoryPlan, IneligibleInPlaceHintsAreIgnored) {
  std::vector<PlanBuffer> b = {
      {4096, 0, 2},     // 0
      {4096, 1, 3, 0},  // 1: 0 is still read at step 2: not eligible
      {2048, 2, 3, 0},  // 2: other size
      {4096, 3, 4, 3},  // 3: itself
  };
  MemoryPlan p = plan_memory(b);
  EXPECT_EQ(p.inplace, (std::vector<char>(4, 0)));
  EXPECT_EQ(check_plan(b, p), "");
  EXPECT_EQ(occupancy_oracle(b, p, 64), "");
  // Two claims on one buffer: only one is honoured.
  std::vector<PlanBuffer> c = {{4096, 0, 1}, {4096, 1, 2, 0}, {4096, 1, 2, 0}};
  MemoryPlan q = plan_memory(c);
  EXPECT_EQ(q.inplace[1] + q.inplace[2], 1);
  EXPECT_EQ(check_plan(c, q), "");
  EXPECT_EQ(q.arena_bytes, 2 * 4096);
}

TEST(MemoryPlan, CheckerRejectsBrokenPlans) {
  std::mt19937 g(99);
  int rejected_overlap = 0;
  for (int trial = 0; trial < 50; ++trial) {
    auto b = random_buffers(g, 30, 20, 5000, false);
    MemoryPlan p = plan_memory(b);
    ASSERT_EQ(check_plan(b, p), "");
    // Move one buffer onto another it lives with: must be rejected.
    for (size_t i = 0; i < b.size(); ++i) {
      for (size_t j = 0; j < b.size(); ++j) {
        if (i == j || b[i].size == 0 || b[j].size == 0) continue;
        if (b[i].first > b[j].last || b[j].first > b[i].last) continue;
        MemoryPlan broken = p;
        broken.offsets[j] = broken.offsets[i];
        broken.arena_bytes = std::max(broken.arena_bytes, broken.offsets[j] + b[j].size + 64);
        EXPECT_NE(check_plan(b, broken), "") << "trial " << trial << ": " << i << " on " << j;
        EXPECT_NE(occupancy_oracle(b, broken, 64), "");
        ++rejected_overlap;
        i = j = b.size();  // one per trial
      }
    }
    // Too small an arena.
    MemoryPlan small = p;
    small.arena_bytes -= 64;
    if (p.arena_bytes > 0) EXPECT_NE(check_plan(b, small), "");
    // A misaligned offset.
    MemoryPlan mis = p;
    mis.offsets[0] += 8;
    mis.arena_bytes += 64;
    EXPECT_NE(check_plan(b, mis), "");
  }
  EXPECT_GT(rejected_overlap, 40);
  // An in-place flag on an ineligible pair is rejected too.
  std::vector<PlanBuffer> b = {{4096, 0, 2}, {4096, 1, 3, 0}};
  MemoryPlan p;
  p.offsets = {0, 0};
  p.arena_bytes = 4096;
  p.inplace = {0, 1};
  EXPECT_NE(check_plan(b, p), "");
}

TEST(MemoryPlan, BadInputsAreClearErrors) {
  EXPECT_THROW(plan_memory({{-1, 0, 0}}), heron::Error);
  EXPECT_THROW(plan_memory({{10, 3, 2}}), heron::Error);
  EXPECT_THROW(plan_memory({{10, 0, 0}}, 48), heron::Error);
  EXPECT_EQ(plan_memory({}).arena_bytes, 0);
}
