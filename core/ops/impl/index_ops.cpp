// Indexing ops: gather, scatter, scatter_add, index_select, take_along_dim, index, index_put_,
// nonzero. Device-generic: the data movement is the device's gather / scatter kernel applied to
// restrided views (see index_kernels.h).
#include <algorithm>

#include "core/ops/impl/common.h"
#include "core/ops/impl/index_kernels.h"

namespace heron {
namespace {
using namespace ops;

Error arg_error(const char* op, const std::string& msg) { return Error(ErrorCode::InvalidArgument, str_cat(op, ": ", msg), op); }

void check_defined(const char* op, const char* what, const Tensor& t) {
  if (!t.defined()) throw Error(ErrorCode::NullHandle, str_cat(op, ": ", what, " is undefined"), op);
}

void check_index_dtype(const char* op, const char* what, const Tensor& t) {
  if (t.dtype() != DType::Int64 && t.dtype() != DType::Int32)
    throw Error(ErrorCode::TypeError,
                str_cat(op, ": ", what, " must be an int64 or int32 tensor, got ", dtype_name(t.dtype())), op);
}

// A view of t with `shape` (shape[k] <= t.size(k) where stride matters) whose stride along dim d
// is 0 (d < 0: none).
Tensor restride(const Tensor& t, const Dims& shape, int64_t d) {
  Dims st = t.strides();
  if (d >= 0) st[d] = 0;
  return Tensor::make(t.storage(), t.dtype(), shape, st, t.offset());
}

// out[o] = x[o with dim d replaced by index[o]]. index has out's shape; x has out's ndim and is
// at least as large as out in every dim but d.
void run_gather(const char* op, const Tensor& out, const Tensor& x, const Tensor& index, int64_t d, bool wrap) {
  if (out.numel() == 0) return;
  if (x.size(d) == 0)
    throw Error(ErrorCode::IndexError, str_cat(op, ": cannot index dimension ", d, " of size 0 (input shape ", x.shape().str(), ")"), op);
  IndexCheck chk{op, d, x.size(d), wrap, true};
  kernel<GatherFn>(OpId::gather, out.device(), out.dtype())(out, restride(x, out.shape(), d), index, x.stride(d), chk);
}

// ------------------------------------------------------------------ gather
HERON_IMPL(gather, GatherAttrs) {
  const char* op = "gather";
  const Tensor& x = ctx.in(0);
  const Tensor& idx = ctx.in(1);
  Device dev = common_device(op, ctx.inputs(), 2);
  check_index_dtype(op, "index", idx);
  if (x.dim() != idx.dim())
    throw arg_error(op, str_cat("index must have as many dimensions as input, but input has shape ", x.shape().str(),
                                " and index has shape ", idx.shape().str()));
  int64_t d = wrap_dim_for(op, attrs.dim, x.dim());
  bool scalar = x.dim() == 0;
  Tensor xi = scalar ? x.reshape(Dims{1}) : x;
  Tensor ii = scalar ? idx.reshape(Dims{1}) : idx;
  for (int64_t k = 0; k < xi.dim(); ++k)
    if (k != d && ii.size(k) > xi.size(k))
      throw arg_error(op, str_cat("index of shape ", idx.shape().str(), " is larger than input of shape ", x.shape().str(),
                                  " in dimension ", k, " (only dimension ", d, " may differ)"));
  Tensor out = Tensor::empty(ii.shape(), x.dtype(), dev);
  run_gather(op, out, xi, ii, d, false);
  ctx.set(scalar ? out.view(Dims{}) : out);
}

// ------------------------------------------------------------------ scatter, scatter_add
void run_scatter(OpCtx& ctx, const char* op, int kernel_op, int64_t dim, ScatterMode mode) {
  const Tensor& x = ctx.in(0);
  const Tensor& idx = ctx.in(1);
  Tensor src = ctx.in(2);
  Device dev = common_device(op, ctx.inputs(), 3);
  check_index_dtype(op, "index", idx);
  if (x.dim() != idx.dim())
    throw arg_error(op, str_cat("index must have as many dimensions as input, but input has shape ", x.shape().str(),
                                " and index has shape ", idx.shape().str()));
  if (src.dim() == 0 && x.dim() > 0) src = src.expand(idx.shape());  // a scalar source
  if (src.dim() != x.dim())
    throw arg_error(op, str_cat("src must have as many dimensions as input, but input has shape ", x.shape().str(),
                                " and src has shape ", src.shape().str()));
  int64_t d = wrap_dim_for(op, dim, x.dim());
  bool scalar = x.dim() == 0;
  Tensor ii = scalar ? idx.reshape(Dims{1}) : idx;
  Tensor si = scalar ? src.reshape(Dims{1}) : src;
  Tensor out = x.clone();
  Tensor oi = scalar ? out.view(Dims{1}) : out;
  for (int64_t k = 0; k < ii.dim(); ++k) {
    if (k != d && ii.size(k) > oi.size(k))
      throw arg_error(op, str_cat("index of shape ", idx.shape().str(), " is larger than input of shape ", x.shape().str(),
                                  " in dimension ", k, " (only dimension ", d, " may differ)"));
    if (ii.size(k) > si.size(k))
      throw arg_error(op, str_cat("index of shape ", idx.shape().str(), " is larger than src of shape ", src.shape().str(),
                                  " in dimension ", k));
  }
  if (ii.numel() > 0) {
    if (oi.size(d) == 0)
      throw Error(ErrorCode::IndexError, str_cat(op, ": cannot index dimension ", d, " of size 0 (input shape ", x.shape().str(), ")"), op);
    Tensor s = si.dtype() == x.dtype() ? si : si.to(x.dtype());
    IndexCheck chk{op, d, oi.size(d), false, true};
    kernel<ScatterFn>(kernel_op, dev, x.dtype())(restride(oi, ii.shape(), d), ii, restride(s, ii.shape(), -1), oi.stride(d),
                                                 mode, chk);
  }
  ctx.set(out);
}

HERON_IMPL(scatter, ScatterAttrs) {
  ScatterMode mode = ScatterMode::Assign;
  if (attrs.reduce) {
    if (*attrs.reduce == "add") mode = ScatterMode::Add;
    else if (*attrs.reduce == "multiply") mode = ScatterMode::Multiply;
    else throw arg_error("scatter", str_cat("reduce must be 'add' or 'multiply', got '", *attrs.reduce, "'"));
  }
  run_scatter(ctx, "scatter", OpId::scatter, attrs.dim, mode);
}

HERON_IMPL(scatter_add, ScatterAddAttrs) {
  if (ctx.in(0).dtype() == DType::Bool)
    throw Error(ErrorCode::TypeError, "scatter_add: bool tensors are not supported (use scatter with reduce='add')", "scatter_add");
  run_scatter(ctx, "scatter_add", OpId::scatter_add, attrs.dim, ScatterMode::Add);
}

// ------------------------------------------------------------------ index_select
HERON_IMPL(index_select, IndexSelectAttrs) {
  const char* op = "index_select";
  const Tensor& x = ctx.in(0);
  const Tensor& idx = ctx.in(1);
  Device dev = common_device(op, ctx.inputs(), 2);
  check_index_dtype(op, "index", idx);
  if (idx.dim() > 1) throw arg_error(op, str_cat("index must be 0-d or 1-d, got shape ", idx.shape().str()));
  int64_t d = wrap_dim_for(op, attrs.dim, x.dim());
  bool scalar = x.dim() == 0;
  Tensor xi = scalar ? x.reshape(Dims{1}) : x;
  Dims shape = xi.shape();
  shape[d] = idx.numel();
  Dims ist(shape.size(), 0);
  ist[d] = idx.dim() == 1 ? idx.stride(0) : 0;
  Tensor iv = Tensor::make(idx.storage(), idx.dtype(), shape, ist, idx.offset());
  Tensor out = Tensor::empty(shape, x.dtype(), dev);
  run_gather(op, out, xi, iv, d, false);
  ctx.set(scalar ? out.view(idx.shape()) : out);
}

// ------------------------------------------------------------------ take_along_dim
HERON_IMPL(take_along_dim, TakeAlongDimAttrs) {
  const char* op = "take_along_dim";
  const Tensor& x = ctx.in(0);
  const Tensor& idx = ctx.in(1);
  Device dev = common_device(op, ctx.inputs(), 2);
  check_index_dtype(op, "indices", idx);
  if (!attrs.dim) {
    Tensor xf = x.reshape(Dims{-1}), fi = idx.reshape(Dims{-1});
    Tensor out = Tensor::empty(fi.shape(), x.dtype(), dev);
    run_gather(op, out, xf, fi, 0, true);
    ctx.set(out);
    return;
  }
  if (x.dim() != idx.dim())
    throw arg_error(op, str_cat("indices must have as many dimensions as input, but input has shape ", x.shape().str(),
                                " and indices has shape ", idx.shape().str()));
  int64_t d = wrap_dim_for(op, *attrs.dim, x.dim());
  bool scalar = x.dim() == 0;
  Tensor xi = scalar ? x.reshape(Dims{1}) : x;
  Tensor ii = scalar ? idx.reshape(Dims{1}) : idx;
  Dims xs = xi.shape(), is = ii.shape();
  for (int64_t k = 0; k < xi.dim(); ++k) {
    if (k == d) continue;
    int64_t a = xs[k], b = is[k];
    if (a != b && a != 1 && b != 1)
      throw arg_error(op, str_cat("input of shape ", x.shape().str(), " and indices of shape ", idx.shape().str(),
                                  " cannot be broadcast together (dimension ", k, ": ", a, " vs ", b, ")"));
    xs[k] = is[k] = a == 1 ? b : a;
  }
  Tensor out = Tensor::empty(is, x.dtype(), dev);
  run_gather(op, out, xi.expand(xs), ii.expand(is), d, true);
  ctx.set(scalar ? out.view(Dims{}) : out);
}

// ------------------------------------------------------------------ index, index_put_
// Advanced indexing plan (numpy rules). The "kernel space" of the op orders dims as
// [broadcast index dims..., non-indexed dims...]; the result is laid out either the same way
// (index tensors separated by a full slice) or with the broadcast dims at the place of the first
// indexed dim (adjacent index tensors).
// The kernels then run over the result's layout (row-major in the result: the output, or the
// values of index_put_, are walked in memory order, and repeated targets are visited in numpy's
// order).
struct IndexPlan {
  Dims result;          // shape of x[indices]
  Dims kspace;          // kernel-space shape
  Tensor data_view;     // x restrided to the result's shape (stride 0 over the broadcast dims)
  Tensor offsets_view;  // validated element offsets broadcast to the result's shape
};

IndexPlan plan_index(const char* op, const Tensor& x, const Tensor* indices, size_t k, Device dev) {
  int64_t nd = x.dim();
  if (static_cast<int64_t>(k) > nd)
    throw Error(ErrorCode::IndexError, str_cat(op, ": too many indices for a tensor of dimension ", nd, " (got ", k, ")"), op);
  std::vector<int64_t> idims;
  std::vector<Tensor> its;
  Dims b;
  bool first_shape = true;
  for (size_t i = 0; i < k; ++i) {
    const Tensor& t = indices[i];
    if (!t.defined()) continue;
    if (t.dtype() != DType::Int64 && t.dtype() != DType::Int32)
      throw Error(ErrorCode::TypeError,
                  str_cat(op, ": index tensor for dimension ", i, " must be int64 or int32, got ", dtype_name(t.dtype()),
                          " (convert bool masks with nonzero first)"),
                  op);
    idims.push_back(static_cast<int64_t>(i));
    its.push_back(t);
    if (first_shape) { b = t.shape(); first_shape = false; continue; }
    Dims nb;
    try {
      nb = broadcast_shapes(b, t.shape());
    } catch (const Error&) {
      std::string shapes;
      for (const Tensor& u : its) shapes += (shapes.empty() ? "" : ", ") + u.shape().str();
      throw arg_error(op, str_cat("shape mismatch: index tensors cannot be broadcast together with shapes ", shapes));
    }
    b = nb;
  }
  bool adjacent = true;
  for (size_t j = 1; j < idims.size(); ++j)
    if (idims[j] != idims[j - 1] + 1) adjacent = false;
  int64_t first = idims.empty() ? 0 : idims[0];
  std::vector<bool> indexed(nd, false);
  for (int64_t d : idims) indexed[d] = true;

  IndexPlan p;
  // Kernel space: broadcast dims, then the other dims of x in order.
  Dims dstrides;
  for (size_t j = 0; j < b.size(); ++j) { p.kspace.push_back(b[j]); dstrides.push_back(0); }
  for (int64_t d = 0; d < nd; ++d)
    if (!indexed[d]) { p.kspace.push_back(x.size(d)); dstrides.push_back(x.stride(d)); }
  int64_t nb = static_cast<int64_t>(b.size()), nk = static_cast<int64_t>(p.kspace.size());
  // Result layout.
  int64_t pos = adjacent ? first : 0;  // where the broadcast dims go in the result
  // result dim r holds kernel dim: pre dims (kernel nb..nb+pos-1), broadcast dims, then the rest.
  for (int64_t r = 0; r < pos; ++r) p.result.push_back(p.kspace[nb + r]);
  for (int64_t j = 0; j < nb; ++j) p.result.push_back(b[j]);
  for (int64_t r = nb + pos; r < nk; ++r) p.result.push_back(p.kspace[r]);
  // Kernel dim of each result dim: pre dims, broadcast dims, then the rest.
  Dims k_of_result;
  for (int64_t r = 0; r < pos; ++r) k_of_result.push_back(nb + r);
  for (int64_t j = 0; j < nb; ++j) k_of_result.push_back(j);
  for (int64_t r = nb + pos; r < nk; ++r) k_of_result.push_back(r);

  // Offsets: validated before anything is written.
  Tensor offsets = Tensor::empty(b, DType::Int64, dev);
  if (offsets.numel() > 0) {
    std::vector<Tensor> views;
    Dims sizes, strides, dims;
    for (size_t j = 0; j < its.size(); ++j) {
      views.push_back(its[j].expand(b));
      sizes.push_back(x.size(idims[j]));
      strides.push_back(x.stride(idims[j]));
      dims.push_back(idims[j]);
    }
    kernel<IndexOffsetsFn>(OpId::index, dev, DType::Int64)(offsets, views, sizes, strides, dims, op);
  }
  Dims ostrides = contiguous_strides(b);
  for (int64_t r = nb; r < nk; ++r) ostrides.push_back(0);
  p.offsets_view = Tensor::make(offsets.storage(), DType::Int64, p.kspace, ostrides, offsets.offset()).permute(k_of_result);
  p.data_view = Tensor::make(x.storage(), x.dtype(), p.kspace, dstrides, x.offset()).permute(k_of_result);
  return p;
}

HERON_IMPL(index, IndexAttrs) {
  const char* op = "index";
  const Tensor& x = ctx.in(0);
  check_defined(op, "input", x);
  Device dev = common_device(op, ctx.inputs(), ctx.num_inputs());
  IndexPlan p = plan_index(op, x, ctx.inputs() + 1, ctx.num_inputs() - 1, dev);
  Tensor out = Tensor::empty(p.result, x.dtype(), dev);
  if (out.numel() > 0) {
    IndexCheck chk{op, 0, 0, false, false};
    kernel<GatherFn>(OpId::gather, dev, x.dtype())(out, p.data_view, p.offsets_view, 1, chk);
  }
  ctx.set(out);
}

HERON_IMPL(index_put_, IndexPut_Attrs) {
  const char* op = "index_put_";
  const Tensor& x = ctx.in(0);
  check_defined(op, "input", x);
  check_defined(op, "values", ctx.in(1));
  Device dev = common_device(op, ctx.inputs(), ctx.num_inputs());
  IndexPlan p = plan_index(op, x, ctx.inputs() + 2, ctx.num_inputs() - 2, dev);
  Tensor values = ctx.in(1);
  // Leading size-1 dims of values beyond the indexed rank are dropped (as numpy assignment does).
  while (values.dim() > static_cast<int64_t>(p.result.size()) && values.size(0) == 1) values = values.select(0, 0);
  Dims bshape;
  try {
    bshape = broadcast_shapes(values.shape(), p.result);
  } catch (const Error&) {
  }
  if (bshape != p.result)
    throw arg_error(op, str_cat("values of shape ", values.shape().str(), " cannot be broadcast to the indexed shape ",
                                p.result.str(), " (input shape ", x.shape().str(), ")"));
  if (values.dtype() != x.dtype()) values = values.to(x.dtype());
  if (values.shares_storage(x)) values = values.clone();
  if (p.result.numel() == 0) { ctx.set(x); return; }
  Tensor v = values.expand(p.result);
  IndexCheck chk{op, 0, 0, false, false};
  kernel<ScatterFn>(OpId::index_put_, dev, x.dtype())(p.data_view, p.offsets_view, v, 1,
                                                      attrs.accumulate ? ScatterMode::Add : ScatterMode::Assign, chk);
  ctx.set(x);
}

// ------------------------------------------------------------------ nonzero
HERON_IMPL(nonzero, NonzeroAttrs) {
  const Tensor& x = ctx.in(0);
  ctx.set(kernel<NonzeroFn>(OpId::nonzero, x.device(), x.dtype())(x.contiguous()));
}

}  // namespace
}  // namespace heron
