// Kernel signatures shared by the sort / topk implementations (impl/sort.cpp) and their
// per-device kernels.
#pragma once
#include <cstdint>

#include "core/tensor/tensor.h"

namespace heron {

// Sorts `in` along `dim` (in.dim() >= 1) into the fresh contiguous `values` (in's dtype) and
// `indices` (int64), both of in's shape but with size k along dim (k == in.size(dim) for sort).
// Order: ascending puts nan last, descending puts nan first; equal elements keep their input
// order (stable). For topk the k first elements of that order are written. Looked up by dtype.
using SortKernelFn = void (*)(const Tensor& in, const Tensor& values, const Tensor& indices, int64_t dim, int64_t k,
                              bool descending);

}  // namespace heron
