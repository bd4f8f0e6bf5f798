#include "core/runtime/memory_plan.h"

#include <algorithm>
#include <numeric>

#include "core/util/error.h"

namespace heron {
namespace runtime {

namespace {

int64_t align_up(int64_t n, int64_t a) { return (n + a - 1) & ~(a - 1); }

bool valid_inplace(const std::vector<PlanBuffer>& b, size_t j) {
  const int32_t i = b[j].inplace_of;
  if (i < 0 || static_cast<size_t>(i) >= b.size() || static_cast<size_t>(i) == j) return false;
  const PlanBuffer& src = b[static_cast<size_t>(i)];
  return src.size == b[j].size && src.last == b[j].first && src.first < b[j].first;
}

}  // namespace

MemoryPlan plan_memory(const std::vector<PlanBuffer>& buffers, int64_t alignment) {
  if (alignment <= 0 || (alignment & (alignment - 1)))
    throw Error(ErrorCode::InvalidArgument, str_cat("plan_memory: alignment must be a power of two, got ", alignment));
  const size_t n = buffers.size();
  for (size_t i = 0; i < n; ++i) {
    if (buffers[i].size < 0) throw Error(ErrorCode::InvalidArgument, str_cat("plan_memory: buffer ", i, " has size ", buffers[i].size));
    if (buffers[i].last < buffers[i].first)
      throw Error(ErrorCode::InvalidArgument,
                  str_cat("plan_memory: buffer ", i, " dies (step ", buffers[i].last, ") before it is made (step ", buffers[i].first, ")"));
  }
  MemoryPlan plan;
  plan.offsets.assign(n, 0);
  plan.inplace.assign(n, 0);

  // In-place chains: a buffer that takes over another's bytes joins its group. Claims are decided
  // in order of the claimant's first step, so a chain a -> b -> c forms whatever the index order.
  std::vector<size_t> group(n);
  std::iota(group.begin(), group.end(), 0);
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return buffers[a].first < buffers[b].first; });
  std::vector<char> claimed(n, 0);
  for (size_t j : order) {
    if (!valid_inplace(buffers, j)) continue;
    const size_t i = static_cast<size_t>(buffers[j].inplace_of);
    if (claimed[i]) continue;
    claimed[i] = 1;
    plan.inplace[j] = 1;
    group[j] = group[i];  // i's first step is earlier, so its group root is already final
  }
  struct Group {
    int64_t size = 0;
    int32_t first = 0, last = 0;
    int64_t offset = -1;
  };
  std::vector<Group> groups(n);
  std::vector<char> is_root(n, 0);
  for (size_t i = 0; i < n; ++i) {
    size_t r = group[i];
    if (r == i) {
      is_root[i] = 1;
      groups[i] = {align_up(buffers[i].size, alignment), buffers[i].first, buffers[i].last, -1};
    }
  }
  for (size_t i = 0; i < n; ++i) {
    if (is_root[i]) continue;
    Group& g = groups[group[i]];
    g.first = std::min(g.first, buffers[i].first);
    g.last = std::max(g.last, buffers[i].last);
  }
  std::vector<size_t> roots;
  for (size_t i = 0; i < n; ++i)
    if (is_root[i]) roots.push_back(i);
  std::stable_sort(roots.begin(), roots.end(), [&](size_t a, size_t b) {
    if (groups[a].size != groups[b].size) return groups[a].size > groups[b].size;
    return groups[a].first < groups[b].first;
  });
  std::vector<size_t> placed, overlapping;
  for (size_t r : roots) {
    Group& g = groups[r];
    if (g.size == 0) { g.offset = 0; continue; }
    overlapping.clear();
    for (size_t p : placed)
      if (groups[p].first <= g.last && g.first <= groups[p].last) overlapping.push_back(p);
    std::sort(overlapping.begin(), overlapping.end(), [&](size_t a, size_t b) { return groups[a].offset < groups[b].offset; });
    int64_t best = -1, best_gap = 0, end = 0;
    for (size_t p : overlapping) {
      const int64_t gap = groups[p].offset - end;
      if (gap >= g.size && (best < 0 || gap < best_gap)) {
        best = end;
        best_gap = gap;
      }
      end = std::max(end, groups[p].offset + groups[p].size);
    }
    g.offset = best >= 0 ? best : end;
    plan.arena_bytes = std::max(plan.arena_bytes, g.offset + g.size);
    placed.push_back(r);
  }
  for (size_t i = 0; i < n; ++i) plan.offsets[i] = groups[group[i]].offset;
  return plan;
}

std::string check_plan(const std::vector<PlanBuffer>& b, const MemoryPlan& plan, int64_t alignment) {
  const size_t n = b.size();
  if (alignment <= 0 || (alignment & (alignment - 1))) return str_cat("alignment ", alignment, " is not a power of two");
  if (plan.offsets.size() != n) return str_cat("the plan has ", plan.offsets.size(), " offsets for ", n, " buffers");
  if (!plan.inplace.empty() && plan.inplace.size() != n) return str_cat("the plan has ", plan.inplace.size(), " in-place flags for ", n, " buffers");
  auto inplace = [&](size_t j) { return !plan.inplace.empty() && plan.inplace[j]; };
  for (size_t i = 0; i < n; ++i) {
    const int64_t o = plan.offsets[i];
    if (o < 0 || o % alignment) return str_cat("buffer ", i, ": offset ", o, " is not a non-negative multiple of ", alignment);
    if (b[i].size < 0 || b[i].last < b[i].first) return str_cat("buffer ", i, ": bad size or lifetime");
    if (o + b[i].size > plan.arena_bytes)
      return str_cat("buffer ", i, ": [", o, ", ", o + b[i].size, ") does not fit in the arena of ", plan.arena_bytes, " bytes");
    if (inplace(i) && !valid_inplace(b, i)) return str_cat("buffer ", i, ": marked in-place of buffer ", b[i].inplace_of, " but not eligible");
  }
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = i + 1; j < n; ++j) {
      if (b[i].size == 0 || b[j].size == 0) continue;
      const bool live_together = b[i].first <= b[j].last && b[j].first <= b[i].last;
      const bool share_bytes = plan.offsets[i] < plan.offsets[j] + b[j].size && plan.offsets[j] < plan.offsets[i] + b[i].size;
      if (!live_together || !share_bytes) continue;
      const bool pair = plan.offsets[i] == plan.offsets[j] &&
                        ((inplace(j) && b[j].inplace_of == static_cast<int32_t>(i)) || (inplace(i) && b[i].inplace_of == static_cast<int32_t>(j)));
      if (!pair)
        return str_cat("buffers ", i, " (steps ", b[i].first, "..", b[i].last, ", bytes ", plan.offsets[i], "..", plan.offsets[i] + b[i].size, ") and ", j,
                       " (steps ", b[j].first, "..", b[j].last, ", bytes ", plan.offsets[j], "..", plan.offsets[j] + b[j].size,
                       ") are alive together and share bytes");
    }
  }
  return "";
}

}  // namespace runtime
}  // namespace heron
