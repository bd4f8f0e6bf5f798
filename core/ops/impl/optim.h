// Fused optimizer ops: the function-pointer types agreed between impl/optim.cpp and the kernels.
#pragma once
#include <cstdint>
#include <vector>

#include "core/ops/impl/common.h"

namespace heron {

// One same-dtype parameter group handed to a fused optimizer kernel. ptr[s][i] is the contiguous
// data of slot s (param, grad, then the optimizer's states) of parameter i; a slot the options do
// not use is an empty vector. All tensors of parameter i have numel[i] elements.
struct OptimGroup {
  std::vector<std::vector<void*>> ptr;
  std::vector<int64_t> numel;
  bool has(size_t slot) const { return slot < ptr.size() && !ptr[slot].empty(); }
};

using SgdStepKernelFn = void (*)(const OptimGroup&, const ops::SgdStep_Attrs&);
using AdamStepKernelFn = void (*)(const OptimGroup&, const ops::AdamStep_Attrs&);
using RmspropStepKernelFn = void (*)(const OptimGroup&, const ops::RmspropStep_Attrs&);
using AdagradStepKernelFn = void (*)(const OptimGroup&, const ops::AdagradStep_Attrs&);

// clip_grad_norm_ registers one of these per dtype (the registry stores a pointer to it).
struct ClipGradNormKernels {
  // The p-norm of n contiguous elements (p = inf: max |x|, -inf: min |x|, 0: count of non-zeros).
  double (*norm)(const void* data, int64_t n, double p);
  // data[i] *= coef for n contiguous elements.
  void (*scale)(void* data, int64_t n, double coef);
};

}  // namespace heron
