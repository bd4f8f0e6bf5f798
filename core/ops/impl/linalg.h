// Kernel signatures shared by the linear-algebra implementations (impl/linalg.cpp) and their
// per-device kernels.
#pragma once
#include "core/tensor/tensor.h"

namespace heron {

// Batched matrix product out[..., m, n] = a[..., m, k] @ b[..., k, n]. a, b and out have the same
// ndim (>= 2), the same batch dims and the same dtype (the kernel's); a and b may be any strided
// views (including stride-0 broadcast batch dims); out is fresh and contiguous. k may be 0 (out
// is then zeros).
using MatmulKernelFn = void (*)(const Tensor& a, const Tensor& b, const Tensor& out);

}  // namespace heron
