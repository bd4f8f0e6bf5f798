// Joining, splitting and movement ops: concat, stack, split, chunk, flip, roll, tril, triu, pad.
// Device-generic: most are views plus Tensor::copy_from (the device's copy_ kernel) and the fill
// kernel; tril/triu have their own kernel.
#include <algorithm>
#include <climits>

#include "core/ops/impl/common.h"
#include "core/ops/impl/creation_kernels.h"
#include "core/ops/impl/index_kernels.h"

namespace heron {
namespace {
using namespace ops;

Error arg_error(const char* op, const std::string& msg) { return Error(ErrorCode::InvalidArgument, str_cat(op, ": ", msg), op); }

void check_defined(const char* op, const Tensor* ts, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (!ts[i].defined()) throw Error(ErrorCode::NullHandle, str_cat(op, ": tensor at position ", i, " is undefined"), op);
}

// The view of t with the order of elements along dim d reversed.
Tensor reversed(const Tensor& t, int64_t d) { return t.slice(d, INT64_MAX, INT64_MIN, -1); }

// ------------------------------------------------------------------ concat / stack
HERON_IMPL(concat, ConcatAttrs) {
  const char* op = "concat";
  size_t n = ctx.num_inputs();
  if (n == 0) throw arg_error(op, "expected a non-empty list of tensors");
  check_defined(op, ctx.inputs(), n);
  Device dev = common_device(op, ctx.inputs(), n);
  const Tensor& t0 = ctx.in(0);
  int64_t nd = t0.dim();
  DType dt = t0.dtype();
  for (size_t i = 0; i < n; ++i) {
    const Tensor& t = ctx.in(i);
    if (t.dim() == 0) throw arg_error(op, str_cat("zero-dimensional tensor (at position ", i, ") cannot be concatenated"));
    if (t.dim() != nd)
      throw arg_error(op, str_cat("tensors must have the same number of dimensions, but tensor 0 has shape ", t0.shape().str(),
                                  " and tensor ", i, " has shape ", t.shape().str()));
    dt = promote_types(dt, t.dtype());
  }
  int64_t d = wrap_dim_for(op, attrs.dim, nd);
  Dims shape = t0.shape();
  int64_t total = 0;
  for (size_t i = 0; i < n; ++i) {
    const Tensor& t = ctx.in(i);
    for (int64_t k = 0; k < nd; ++k)
      if (k != d && t.size(k) != shape[k])
        throw arg_error(op, str_cat("sizes of tensors must match except in dimension ", d, ": tensor 0 has shape ",
                                    t0.shape().str(), " but tensor ", i, " has shape ", t.shape().str(), " (dimension ", k, ")"));
    total += t.size(d);
  }
  shape[d] = total;
  Tensor out = Tensor::empty(shape, dt, dev);
  int64_t off = 0;
  for (size_t i = 0; i < n; ++i) {
    const Tensor& t = ctx.in(i);
    int64_t len = t.size(d);
    if (len > 0 && t.numel() > 0) out.slice(d, off, off + len, 1).copy_from(t);
    off += len;
  }
  ctx.set(out);
}

HERON_IMPL(stack, StackAttrs) {
  const char* op = "stack";
  size_t n = ctx.num_inputs();
  if (n == 0) throw arg_error(op, "expected a non-empty list of tensors");
  check_defined(op, ctx.inputs(), n);
  Device dev = common_device(op, ctx.inputs(), n);
  const Tensor& t0 = ctx.in(0);
  DType dt = t0.dtype();
  for (size_t i = 0; i < n; ++i) {
    if (ctx.in(i).shape() != t0.shape())
      throw arg_error(op, str_cat("expects each tensor to be equal size, but got ", t0.shape().str(), " at entry 0 and ",
                                  ctx.in(i).shape().str(), " at entry ", i));
    dt = promote_types(dt, ctx.in(i).dtype());
  }
  int64_t d = wrap_dim_for(op, attrs.dim, t0.dim() + 1);
  Dims shape = t0.shape();
  shape.insert(d, static_cast<int64_t>(n));
  Tensor out = Tensor::empty(shape, dt, dev);
  if (out.numel() > 0)
    for (size_t i = 0; i < n; ++i) out.select(d, static_cast<int64_t>(i)).copy_from(ctx.in(i));
  ctx.set(out);
}

// ------------------------------------------------------------------ split / chunk
void split_by_size(OpCtx& ctx, const Tensor& x, int64_t d, int64_t s) {
  int64_t len = x.size(d);
  if (len == 0) { ctx.set(x.slice(d, 0, 0, 1)); return; }
  for (int64_t off = 0; off < len; off += s) ctx.set(x.slice(d, off, std::min(off + s, len), 1));
}

HERON_IMPL(split, SplitAttrs) {
  const char* op = "split";
  const Tensor& x = ctx.in(0);
  if (x.dim() == 0) throw arg_error(op, "expects at least a 1-dimensional tensor");
  int64_t d = wrap_dim_for(op, attrs.dim, x.dim());
  if (attrs.split_size.has_value() == attrs.sizes.has_value())
    throw arg_error(op, "give exactly one of split_size and sizes");
  int64_t len = x.size(d);
  if (attrs.split_size) {
    int64_t s = *attrs.split_size;
    if (s < 0 || (s == 0 && len > 0))
      throw arg_error(op, str_cat("split_size must be positive, got ", s, " (dimension ", d, " has size ", len, ")"));
    split_by_size(ctx, x, d, s);
    return;
  }
  const Dims& sizes = *attrs.sizes;
  int64_t sum = 0;
  for (int64_t s : sizes) {
    if (s < 0) throw arg_error(op, str_cat("sizes ", sizes.str(), " contain a negative size"));
    sum += s;
  }
  if (sum != len)
    throw arg_error(op, str_cat("sizes ", sizes.str(), " sum to ", sum, ", but dimension ", d, " of the input ", x.shape().str(),
                                " has size ", len));
  int64_t off = 0;
  for (int64_t s : sizes) {
    ctx.set(x.slice(d, off, off + s, 1));
    off += s;
  }
}

HERON_IMPL(chunk, ChunkAttrs) {
  const char* op = "chunk";
  const Tensor& x = ctx.in(0);
  if (x.dim() == 0) throw arg_error(op, "expects at least a 1-dimensional tensor");
  if (attrs.chunks < 1) throw arg_error(op, str_cat("chunks must be at least 1, got ", attrs.chunks));
  int64_t d = wrap_dim_for(op, attrs.dim, x.dim());
  int64_t len = x.size(d);
  if (len == 0) {  // like torch.chunk: `chunks` empty pieces
    for (int64_t i = 0; i < attrs.chunks; ++i) ctx.set(x.slice(d, 0, 0, 1));
    return;
  }
  split_by_size(ctx, x, d, (len + attrs.chunks - 1) / attrs.chunks);
}

// ------------------------------------------------------------------ flip / roll
HERON_IMPL(flip, FlipAttrs) {
  const Tensor& x = ctx.in(0);
  std::vector<bool> mask = dims_mask("flip", attrs.dims, x.dim());
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor view = x;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (mask[d]) view = reversed(view, d);
  out.copy_from(view);
  ctx.set(out);
}

// A new tensor: t rolled by s along d.
Tensor roll1(const Tensor& t, int64_t d, int64_t s) {
  Tensor out = Tensor::empty(t.shape(), t.dtype(), t.device());
  if (t.numel() == 0) return out;
  if (t.dim() == 0) { out.copy_from(t); return out; }
  int64_t n = t.size(d);
  s = ((s % n) + n) % n;
  if (s == 0) { out.copy_from(t); return out; }
  out.slice(d, s, n, 1).copy_from(t.slice(d, 0, n - s, 1));
  out.slice(d, 0, s, 1).copy_from(t.slice(d, n - s, n, 1));
  return out;
}

HERON_IMPL(roll, RollAttrs) {
  const char* op = "roll";
  const Tensor& x = ctx.in(0);
  if (!attrs.dims) {
    if (attrs.shifts.size() != 1)
      throw arg_error(op, str_cat("without dims, shifts must have exactly one entry, got ", attrs.shifts.str()));
    ctx.set(roll1(x.reshape(Dims{-1}), 0, attrs.shifts[0]).view(x.shape()));
    return;
  }
  const Dims& dims = *attrs.dims;
  if (dims.size() != attrs.shifts.size())
    throw arg_error(op, str_cat("shifts ", attrs.shifts.str(), " and dims ", dims.str(), " must have the same length"));
  Dims wrapped;
  for (int64_t d : dims) wrapped.push_back(wrap_dim_for(op, d, x.dim()));
  if (dims.empty()) { ctx.set(x.clone()); return; }
  Tensor cur = x;
  for (size_t k = 0; k < dims.size(); ++k) cur = roll1(cur, wrapped[k], attrs.shifts[k]);
  ctx.set(cur);
}

// ------------------------------------------------------------------ tril / triu
void tri(OpCtx& ctx, const char* op, int64_t diagonal, bool upper) {
  const Tensor& x = ctx.in(0);
  if (x.dim() < 2) throw arg_error(op, str_cat("input must have at least 2 dimensions, got shape ", x.shape().str()));
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (out.numel() > 0) kernel<TriFn>(OpId::tril, x.device(), x.dtype())(out, x.contiguous(), diagonal, upper);
  ctx.set(out);
}
HERON_IMPL(tril, TrilAttrs) { tri(ctx, "tril", attrs.diagonal, false); }
HERON_IMPL(triu, TriuAttrs) { tri(ctx, "triu", attrs.diagonal, true); }

// ------------------------------------------------------------------ pad
HERON_IMPL(pad, PadAttrs) {
  const char* op = "pad";
  const Tensor& x = ctx.in(0);
  const Dims& pad = attrs.pad;
  const std::string& mode = attrs.mode;
  if (mode != "constant" && mode != "reflect" && mode != "replicate")
    throw arg_error(op, str_cat("mode must be one of 'constant', 'reflect', 'replicate', got '", mode, "'"));
  if (pad.size() % 2 != 0) throw arg_error(op, str_cat("pad ", pad.str(), " must have an even length"));
  int64_t np = static_cast<int64_t>(pad.size() / 2);
  int64_t nd = x.dim();
  if (np > nd)
    throw arg_error(op, str_cat("pad ", pad.str(), " pads ", np, " dimensions, but the input of shape ", x.shape().str(),
                                " has only ", nd));
  Dims shape = x.shape();
  // Per padded dim: the cropped source range and its place in the output.
  Tensor src = x;
  std::vector<int64_t> pdim(np), left(np), right(np), center(np);
  for (int64_t i = 0; i < np; ++i) {
    int64_t d = nd - 1 - i;
    int64_t l = pad[2 * i], r = pad[2 * i + 1], size = x.size(d);
    int64_t c = size - std::max<int64_t>(0, -l) - std::max<int64_t>(0, -r);
    if (c < 0 || size + l + r < 0)
      throw arg_error(op, str_cat("padding (", l, ", ", r, ") of dimension ", d, " (size ", size,
                                  ") crops more than the dimension has"));
    pdim[i] = d;
    left[i] = std::max<int64_t>(0, l);
    right[i] = std::max<int64_t>(0, r);
    center[i] = c;
    if (mode == "reflect" && (left[i] > 0 || right[i] > 0) && (left[i] >= c || right[i] >= c))
      throw arg_error(op, str_cat("reflect padding (", l, ", ", r, ") must be smaller than the size ", c, " of dimension ", d,
                                  " (input shape ", x.shape().str(), ")"));
    if (mode == "replicate" && (left[i] > 0 || right[i] > 0) && c == 0)
      throw arg_error(op, str_cat("replicate padding (", l, ", ", r, ") of dimension ", d, " needs a non-empty dimension"));
    shape[d] = c + left[i] + right[i];
    src = src.slice(d, std::max<int64_t>(0, -l), std::max<int64_t>(0, -l) + c, 1);
  }
  Tensor out = Tensor::empty(shape, x.dtype(), x.device());
  if (out.numel() == 0) { ctx.set(out); return; }
  if (mode == "constant") fill_tensor(out, Scalar(attrs.value));
  Tensor dst = out;
  for (int64_t i = 0; i < np; ++i) dst = dst.slice(pdim[i], left[i], left[i] + center[i], 1);
  if (dst.numel() > 0) dst.copy_from(src);
  if (mode != "constant") {
    // Fill the bands dim by dim, over the full extent of the other dims: bands of dims handled
    // later are overwritten when their turn comes, so corners come out right.
    for (int64_t i = 0; i < np; ++i) {
      int64_t d = pdim[i], L = left[i], R = right[i], C1 = left[i] + center[i];
      if (mode == "replicate") {
        if (L > 0) out.slice(d, 0, L, 1).copy_from(out.slice(d, L, L + 1, 1));
        if (R > 0) out.slice(d, C1, C1 + R, 1).copy_from(out.slice(d, C1 - 1, C1, 1));
      } else {
        if (L > 0) out.slice(d, 0, L, 1).copy_from(reversed(out.slice(d, L + 1, 2 * L + 1, 1), d));
        if (R > 0) out.slice(d, C1, C1 + R, 1).copy_from(reversed(out.slice(d, C1 - 1 - R, C1 - 1, 1), d));
      }
    }
  }
  ctx.set(out);
}

}  // namespace
}  // namespace heron
