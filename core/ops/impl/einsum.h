// einsum execution, shared by the op (impl/einsum.cpp) and its gradient (autograd/grad_helpers.cpp).
#pragma once
#include <functional>
#include <vector>

#include "core/ops/impl/einsum_plan.h"

namespace heron {
namespace einsum {

// Contracts `ins` (dims named by label ids in `labels`, repeats = diagonals) into the labels `out`,
// with label sizes `size`, following `path` (planned with the operands' effective labels). Computes
// in float32 for 16-bit floats and int64 for integers and bool, and returns `result_dtype`.
Tensor execute(const std::vector<Tensor>& ins, const std::vector<std::vector<int>>& labels, const std::vector<int>& out,
               const std::vector<int64_t>& size, const Path& path, DType result_dtype);

// Gradients of einsum(equation, operands) given the output gradient `grad`: each one an einsum of
// `grad` with the other operands (diagonals written back, summed labels expanded). Undefined for
// operands where needs(i) is false.
std::vector<Tensor> backward(const Tensor& grad, const std::vector<Tensor>& operands, const std::string& equation,
                             const std::function<bool(size_t)>& needs);

}  // namespace einsum
}  // namespace heron
