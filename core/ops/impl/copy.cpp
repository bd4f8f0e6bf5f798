// Copies and conversions: Tensor::contiguous/clone/to/copy_from and the ops contiguous, clone,
// cast, to_device, copy_. Device-generic: the element work is the `copy_` kernel of the device.
#include "core/ops/generated/ops_gen.h"
#include "core/ops/impl/common.h"

namespace heron {

namespace {
// dst and src on the same device; src broadcasts to dst's shape; any dtypes.
void copy_same_device(const Tensor& dst, const Tensor& src) {
  if (dst.numel() == 0) return;
  using Fn = void (*)(const Tensor& dst, const Tensor& src);
  kernel<Fn>(ops::OpId::copy_, dst.device(), dst.dtype())(dst, src);
}
}  // namespace

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  Tensor out = Tensor::empty(shape(), dtype(), device());
  copy_same_device(out, *this);
  return out;
}

Tensor Tensor::to(DType dt) const {
  if (dt == dtype()) return *this;
  Tensor out = Tensor::empty(shape(), dt, device());
  copy_same_device(out, *this);
  return out;
}

Tensor Tensor::to(Device d) const {
  if (d == device()) return *this;
  Tensor src = contiguous();
  Tensor out = Tensor::empty(shape(), dtype(), d);
  size_t n = src.nbytes();
  if (n == 0) return out;
  auto& sdev = device_impl(src.device());
  auto& ddev = device_impl(d);
  if (sdev.is_host()) {
    ddev.copy_from_host(out.raw_data(), src.raw_data(), n, d.index);
  } else if (ddev.is_host()) {
    sdev.copy_to_host(out.raw_data(), src.raw_data(), n, src.device().index);
  } else {
    Tensor staging = Tensor::empty(shape(), dtype(), host_device());
    sdev.copy_to_host(staging.raw_data(), src.raw_data(), n, src.device().index);
    ddev.copy_from_host(out.raw_data(), staging.raw_data(), n, d.index);
  }
  return out;
}

void Tensor::copy_from(const Tensor& src_in) {
  // Validate broadcasting first, so a failed copy writes nothing.
  Dims b = broadcast_shapes(shape(), src_in.shape());
  if (b != shape())
    throw Error(ErrorCode::InvalidArgument,
                str_cat("copy: source of shape ", src_in.shape().str(), " cannot be broadcast to the destination's shape ", shape().str()));
  Tensor src = src_in;
  if (src.device() != device()) src = src.to(dtype()).to(device());
  // A source that overlaps the destination is copied out first.
  if (src.shares_storage(*this) && !(src.raw_data() == raw_data() && src.strides() == strides() && src.shape() == shape()))
    src = src.clone();
  copy_same_device(*this, src);
}

namespace {
using namespace ops;

HERON_IMPL(contiguous, ContiguousAttrs) { ctx.set(ctx.in(0).contiguous()); }
HERON_IMPL(clone, CloneAttrs) { ctx.set(ctx.in(0).clone()); }
HERON_IMPL(cast, CastAttrs) { ctx.set(ctx.in(0).to(attrs.dtype)); }
HERON_IMPL(to_device, ToDeviceAttrs) { ctx.set(ctx.in(0).to(DeviceRegistry::get().parse(attrs.device))); }
HERON_IMPL(copy_, Copy_Attrs) {
  Tensor dst = ctx.in(0);
  dst.copy_from(ctx.in(1));
  ctx.set(dst);
}
}  // namespace

}  // namespace heron
