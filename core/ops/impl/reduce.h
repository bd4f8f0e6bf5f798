// Kernel signatures shared by the reduction, scan and softmax implementations (impl/reduce.cpp)
// and their per-device kernels.
#pragma once
#include <cstdint>

#include "core/tensor/tensor.h"

namespace heron {

// A reduction of `in` over the dims where mask[d] != 0 (mask has one entry per input dim, or a
// single entry for a 0-d input). `out` is a fresh contiguous tensor whose elements are the kept
// dims in order (its shape is either the keepdim shape or the squeezed one: same layout).
// Kernels are looked up by the input's dtype; the output dtype is fixed by the op:
//   sum, prod:        float -> same dtype; int and bool -> int64
//   mean, var, std, logsumexp, amax, amin: same dtype as the input
//   argmax, argmin:   int64 (index along the reduced dims, flattened in row-major order)
//   all, any:         bool
// The impl guarantees that the reduction is well defined (amax/argmax of nothing is an error
// raised before the kernel); reductions over zero elements give the identity (sum 0, prod 1,
// mean/var nan, logsumexp -inf, all true, any false).
struct ReduceArgs {
  Tensor in;
  Tensor out;
  Dims mask;
  double correction = 0.0;  // var / std
};
using ReduceKernelFn = void (*)(const ReduceArgs& args);

// Inclusive scan (cumsum, cumprod) of `in` along `dim` into the fresh contiguous `out` of the same
// shape. Kernels are looked up by the input's dtype; out is that dtype for floats, int64 for
// integer and bool inputs.
using ScanKernelFn = void (*)(const Tensor& in, const Tensor& out, int64_t dim);

// softmax / log_softmax of a floating `in` along `dim` into the fresh contiguous `out` (same
// shape and dtype). Looked up by dtype.
using SoftmaxKernelFn = void (*)(const Tensor& in, const Tensor& out, int64_t dim, bool log);

}  // namespace heron
