// The C ABI of heron::distributed (heron_dist_*): process groups and collectives.
#include <vector>

#include "c_api/src/internal.h"
#include "core/distributed/process_group.h"

using namespace heron;

struct heron_process_group {
  static constexpr uint64_t kLiveMagic = 0x48455230444953ULL;  // "HER0DIS"
  uint64_t magic = kLiveMagic;
  std::shared_ptr<distributed::ProcessGroup> pg;
  capi::LiveCount live;
  ~heron_process_group() { magic = 0; }
};

#undef HERON_CAPI_CATCH
// CommError carries the finer ABI status (HERON_ERR_COMM / HERON_ERR_TIMEOUT).
#define HERON_CAPI_CATCH                                                                          \
  }                                                                                               \
  catch (const distributed::CommError& ex) {                                                      \
    return heron_internal_set_error(ex.abi_status(), ex.what(), ex.op().c_str());                 \
  }                                                                                               \
  catch (...) { return ::heron::capi::fail_current(); }

namespace {

distributed::ProcessGroup& live_group(const heron_process_group* g, const char* fn) {
  if (!g) capi::null_arg(fn, "group");
  if (g->magic != heron_process_group::kLiveMagic)
    throw Error(ErrorCode::NullHandle, str_cat(fn, ": group is not a live process-group handle (already released?)"));
  return *g->pg;
}

distributed::ReduceOp reduce_op(int32_t op, const char* fn) {
  if (op < HERON_REDUCE_SUM || op > HERON_REDUCE_AVG)
    throw Error(ErrorCode::InvalidArgument, str_cat(fn, ": unknown reduce op ", op, " (HERON_REDUCE_SUM..HERON_REDUCE_AVG)"));
  return static_cast<distributed::ReduceOp>(op);
}

std::vector<Tensor> tensor_list(heron_tensor* const* ts, size_t n, const char* fn, const char* what) {
  if (!ts && n) capi::null_arg(fn, what);
  std::vector<Tensor> out;
  for (size_t i = 0; i < n; ++i) out.push_back(capi::borrow_tensor(ts[i], fn, str_cat(what, "[", i, "]")));
  return out;
}

}  // namespace

extern "C" {

heron_status heron_dist_init(const char* init_method, int32_t rank, int32_t world_size, int64_t timeout_ms,
                             heron_process_group** out) {
  HERON_CAPI_TRY
  if (!out) capi::null_arg("heron_dist_init", "out");
  auto pg = distributed::ProcessGroup::init(init_method ? init_method : "env://", rank, world_size, timeout_ms);
  auto* h = new heron_process_group();
  h->pg = std::move(pg);
  *out = h;
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_dist_new_group(heron_process_group* group, const int32_t* ranks, int32_t n, heron_process_group** out) {
  HERON_CAPI_TRY
  auto& g = live_group(group, "heron_dist_new_group");
  if (!out) capi::null_arg("heron_dist_new_group", "out");
  if (!ranks && n) capi::null_arg("heron_dist_new_group", "ranks");
  if (n < 0) throw Error(ErrorCode::InvalidArgument, "heron_dist_new_group: n < 0");
  std::vector<int> rs(ranks, ranks + n);
  auto sub = g.new_group(rs);
  auto* h = new heron_process_group();
  h->pg = std::move(sub);
  *out = h;
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_dist_rank(const heron_process_group* group, int32_t* out) {
  HERON_CAPI_TRY
  auto& g = live_group(group, "heron_dist_rank");
  if (!out) capi::null_arg("heron_dist_rank", "out");
  *out = g.rank();
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_dist_size(const heron_process_group* group, int32_t* out) {
  HERON_CAPI_TRY
  auto& g = live_group(group, "heron_dist_size");
  if (!out) capi::null_arg("heron_dist_size", "out");
  *out = g.size();
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_dist_destroy(heron_process_group* group) {
  HERON_CAPI_TRY
  live_group(group, "heron_dist_destroy").destroy();
  return HERON_OK;
  HERON_CAPI_CATCH
}

void heron_dist_release(heron_process_group* group) {
  if (!group || group->magic != heron_process_group::kLiveMagic) return;
  try {
    delete group;
  } catch (...) {
  }
}

heron_status heron_dist_all_reduce(heron_process_group* group, heron_tensor* tensor, int32_t op) {
  HERON_CAPI_TRY
  auto& g = live_group(group, "heron_dist_all_reduce");
  g.all_reduce(capi::borrow_tensor(tensor, "heron_dist_all_reduce", "tensor"), reduce_op(op, "heron_dist_all_reduce"));
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_dist_broadcast(heron_process_group* group, heron_tensor* tensor, int32_t src) {
  HERON_CAPI_TRY
  auto& g = live_group(group, "heron_dist_broadcast");
  g.broadcast(capi::borrow_tensor(tensor, "heron_dist_broadcast", "tensor"), src);
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_dist_reduce(heron_process_group* group, heron_tensor* tensor, int32_t dst, int32_t op) {
  HERON_CAPI_TRY
  auto& g = live_group(group, "heron_dist_reduce");
  g.reduce(capi::borrow_tensor(tensor, "heron_dist_reduce", "tensor"), dst, reduce_op(op, "heron_dist_reduce"));
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_dist_all_gather(heron_process_group* group, heron_tensor* const* outputs, size_t n_outputs, heron_tensor* input) {
  HERON_CAPI_TRY
  auto& g = live_group(group, "heron_dist_all_gather");
  g.all_gather(tensor_list(outputs, n_outputs, "heron_dist_all_gather", "outputs"),
               capi::borrow_tensor(input, "heron_dist_all_gather", "input"));
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_dist_reduce_scatter(heron_process_group* group, heron_tensor* output, heron_tensor* const* inputs,
                                       size_t n_inputs, int32_t op) {
  HERON_CAPI_TRY
  auto& g = live_group(group, "heron_dist_reduce_scatter");
  g.reduce_scatter(capi::borrow_tensor(output, "heron_dist_reduce_scatter", "output"),
                   tensor_list(inputs, n_inputs, "heron_dist_reduce_scatter", "inputs"), reduce_op(op, "heron_dist_reduce_scatter"));
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_dist_all_to_all(heron_process_group* group, heron_tensor* const* outputs, size_t n_outputs,
                                   heron_tensor* const* inputs, size_t n_inputs) {
  HERON_CAPI_TRY
  auto& g = live_group(group, "heron_dist_all_to_all");
  g.all_to_all(tensor_list(outputs, n_outputs, "heron_dist_all_to_all", "outputs"),
               tensor_list(inputs, n_inputs, "heron_dist_all_to_all", "inputs"));
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_dist_barrier(heron_process_group* group) {
  HERON_CAPI_TRY
  live_group(group, "heron_dist_barrier").barrier();
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_dist_send(heron_process_group* group, heron_tensor* tensor, int32_t dst, int32_t tag) {
  HERON_CAPI_TRY
  auto& g = live_group(group, "heron_dist_send");
  g.send(capi::borrow_tensor(tensor, "heron_dist_send", "tensor"), dst, tag);
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_dist_recv(heron_process_group* group, heron_tensor* tensor, int32_t src, int32_t tag) {
  HERON_CAPI_TRY
  auto& g = live_group(group, "heron_dist_recv");
  g.recv(capi::borrow_tensor(tensor, "heron_dist_recv", "tensor"), src, tag);
  return HERON_OK;
  HERON_CAPI_CATCH
}

}  // extern "C"
