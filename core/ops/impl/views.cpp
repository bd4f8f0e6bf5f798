// View ops: metadata only, device-generic, no kernels.
#include "core/ops/impl/common.h"

namespace heron {
namespace {
using namespace ops;

HERON_IMPL(reshape, ReshapeAttrs) { ctx.set(ctx.in(0).reshape(attrs.shape)); }
HERON_IMPL(view, ViewAttrs) { ctx.set(ctx.in(0).view(attrs.shape)); }
HERON_IMPL(permute, PermuteAttrs) { ctx.set(ctx.in(0).permute(attrs.dims)); }
HERON_IMPL(transpose, TransposeAttrs) { ctx.set(ctx.in(0).transpose(attrs.dim0, attrs.dim1)); }
HERON_IMPL(slice, SliceAttrs) {
  ctx.set(ctx.in(0).slice(attrs.dim, attrs.start ? *attrs.start : (attrs.step > 0 ? INT64_MIN : INT64_MAX),
                          attrs.end ? *attrs.end : (attrs.step > 0 ? INT64_MAX : INT64_MIN), attrs.step));
}
HERON_IMPL(select, SelectAttrs) { ctx.set(ctx.in(0).select(attrs.dim, attrs.index)); }
HERON_IMPL(expand, ExpandAttrs) { ctx.set(ctx.in(0).expand(attrs.size)); }
HERON_IMPL(broadcast_to, BroadcastToAttrs) {
  for (int64_t s : attrs.shape)
    if (s < 0) throw Error(ErrorCode::InvalidArgument, str_cat("broadcast_to: negative size in shape ", attrs.shape.str()));
  Dims b = broadcast_shapes(ctx.in(0).shape(), attrs.shape);
  if (b != attrs.shape)
    throw Error(ErrorCode::InvalidArgument,
                str_cat("broadcast_to: input of shape ", ctx.in(0).shape().str(), " cannot be broadcast to ", attrs.shape.str()));
  ctx.set(ctx.in(0).expand(attrs.shape));
}
HERON_IMPL(squeeze, SqueezeAttrs) { ctx.set(attrs.dim ? ctx.in(0).squeeze(*attrs.dim) : ctx.in(0).squeeze()); }
HERON_IMPL(unsqueeze, UnsqueezeAttrs) { ctx.set(ctx.in(0).unsqueeze(attrs.dim)); }
HERON_IMPL(flatten, FlattenAttrs) { ctx.set(ctx.in(0).flatten(attrs.start_dim, attrs.end_dim)); }
HERON_IMPL(as_strided, AsStridedAttrs) {
  ctx.set(ctx.in(0).as_strided(attrs.size, attrs.stride, attrs.storage_offset ? *attrs.storage_offset : ctx.in(0).offset()));
}

}  // namespace
}  // namespace heron
