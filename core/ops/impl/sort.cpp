// sort and topk. Device-generic: validation and shapes here, the element work is the device's
// kernel (impl/sort.h).
#include "core/ops/impl/sort.h"

#include "core/ops/impl/common.h"

namespace heron {
namespace {
using namespace ops;

void check_sortable(const char* op, DType t) {
  if (t == DType::Bool)
    throw Error(ErrorCode::TypeError, str_cat(op, ": bool input is not supported (cast it to an integer dtype first)"), op);
}

// Runs the kernel on x viewed as at least 1-d; values/indices get `shape` (x's with dim -> k).
void run_sort(OpCtx& ctx, int op_id, const Tensor& x0, int64_t dim_in, int64_t k, bool descending, const char* op) {
  Device dev = common_device(op, &x0, 1);
  check_sortable(op, x0.dtype());
  int64_t dim = wrap_dim(dim_in, x0.dim());
  auto fn = kernel<SortKernelFn>(op_id, dev, x0.dtype());
  Tensor x = x0.dim() == 0 ? x0.reshape(Dims{1}) : x0;
  int64_t size = x.shape()[dim];
  if (k < 0 || k > size)
    throw Error(ErrorCode::InvalidArgument,
                str_cat(op, ": k (", k, ") is out of range for dim ", dim_in, " of size ", size, " (need 0 <= k <= ", size, ")"), op);
  Dims shape = x.shape();
  shape[dim] = k;
  Tensor values = Tensor::empty(shape, x.dtype(), dev);
  Tensor indices = Tensor::empty(shape, DType::Int64, dev);
  if (values.numel() > 0) fn(x, values, indices, dim, k, descending);
  if (x0.dim() == 0 && k == 1) {
    values = values.view(Dims{});
    indices = indices.view(Dims{});
  }
  ctx.set(values);
  ctx.set(indices);
}

// Always stable (the `stable` flag is accepted for compatibility).
HERON_IMPL(sort, SortAttrs) {
  const Tensor& x = ctx.in(0);
  int64_t size = x.dim() == 0 ? 1 : x.shape()[wrap_dim(attrs.dim, x.dim())];
  run_sort(ctx, OpId::sort, x, attrs.dim, size, attrs.descending, "sort");
}

// Ties keep the input order; the result is always sorted (`sorted` false allows any order).
HERON_IMPL(topk, TopkAttrs) { run_sort(ctx, OpId::topk, ctx.in(0), attrs.dim, attrs.k, attrs.largest, "topk"); }

}  // namespace
}  // namespace heron
