// Helpers shared by op implementations.
#pragma once
#include <algorithm>
#include <vector>

#include "core/ops/dispatcher.h"
#include "core/ops/generated/ops_gen.h"

namespace heron {

// Normalizes a list of dims (negative allowed) against ndim; sorted, unique check with a clear error.
inline std::vector<bool> dims_mask(const char* op, const Dims& dims, int64_t ndim) {
  std::vector<bool> mask(std::max<int64_t>(ndim, 1), false);
  for (int64_t d : dims) {
    int64_t w = wrap_dim(d, ndim);
    if (mask[w]) throw Error(ErrorCode::InvalidArgument, str_cat(op, ": dim ", d, " appears more than once in ", dims.str()));
    mask[w] = true;
  }
  return mask;
}

// Creates the output of a host-or-device op on `device`.
inline Tensor new_output(const Dims& shape, DType dtype, Device device) { return Tensor::empty(shape, dtype, device); }

// The device for creation ops: none -> host.
inline Device creation_device(const std::optional<std::string>& dev) {
  return dev ? DeviceRegistry::get().parse(*dev) : host_device();
}

}  // namespace heron
