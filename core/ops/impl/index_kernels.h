// Kernel signatures shared by the indexing / movement op implementations (impl/index_ops.cpp,
// impl/shape_ops.cpp) and their per-device kernels (kernels/<device>/index_kernels.cpp).
//
// The gather/scatter kernels work on *restrided views*: the implementation builds a view of the
// data tensor with the iteration shape, whose stride along the indexed dim is 0, and the kernel
// adds index * stride (in elements) per element. One gather kernel thus serves gather,
// index_select, take_along_dim and index; one scatter kernel serves scatter, scatter_add and
// index_put_.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor/tensor.h"

namespace heron {

// How a kernel checks the indices it reads. With check == false the indices are element offsets
// that were validated before (they may be negative for negative-stride views).
struct IndexCheck {
  const char* op = "";  // for error messages
  int64_t dim = 0;      // for error messages
  int64_t size = 0;     // valid indices are [0, size), or [-size, size) with wrap
  bool wrap = false;    // negative indices count from the end (numpy) instead of being an error
  bool check = true;
};

// Reduction of scatter kernels.
enum class ScatterMode : int32_t { Assign = 0, Add = 1, Multiply = 2 };

// out[o] = src[o + index[o] * stride]  (o a position of out's shape; src and index have out's
// shape, any strides; index is int32 or int64). Registered per dtype of out (== src) under
// OpId::gather. Throws IndexError (naming op, index, dim, size) for an index out of range.
using GatherFn = void (*)(const Tensor& out, const Tensor& src, const Tensor& index, int64_t stride,
                          const IndexCheck& chk);

// dst[o + index[o] * stride] (op)= src[o]. dst, index and src share one shape; src has dst's dtype.
// Runs in order (repeated indices: the last write wins / contributions accumulate). Registered
// per dtype under OpId::scatter (all), OpId::scatter_add (numeric) and OpId::index_put_ (all).
using ScatterFn = void (*)(const Tensor& dst, const Tensor& index, const Tensor& src, int64_t stride,
                           ScatterMode mode, const IndexCheck& chk);

// offsets (int64, contiguous) = sum_j wrap(indices[j]) * strides[j], where every indices[j] has
// offsets' shape (broadcast views) and is checked against sizes[j] (negative indices wrap; out of
// range -> IndexError naming dims[j]). Writes nothing but offsets. Registered under
// (OpId::index, Int64).
using IndexOffsetsFn = void (*)(const Tensor& offsets, const std::vector<Tensor>& indices, const Dims& sizes,
                                const Dims& strides, const Dims& dims, const char* op);

// The (count, ndim) int64 indices of the non-zero elements of a contiguous input, on its device.
// Registered per input dtype under OpId::nonzero.
using NonzeroFn = Tensor (*)(const Tensor& input);

// out = tril/triu of a contiguous input (same shape, >= 2 dims): keeps (r, c) with
// c - r <= diagonal (lower) or c - r >= diagonal (upper), zeroes the rest. Registered per dtype
// under OpId::tril (used by both ops).
using TriFn = void (*)(const Tensor& out, const Tensor& input, int64_t diagonal, bool upper);

// ---------------------------------------------------------------- helpers of the implementations
// wrap_dim with the op's name in the message.
inline int64_t wrap_dim_for(const char* op, int64_t d, int64_t ndim) {
  try {
    return wrap_dim(d, ndim);
  } catch (const Error& e) {
    throw Error(e.code(), str_cat(op, ": ", e.what()), op);
  }
}

}  // namespace heron
