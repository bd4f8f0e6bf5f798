// Kernel signatures shared by the elementwise op implementations (impl/elementwise.cpp) and the
// per-device kernels (kernels/<device>/unary_kernels.cpp, binary_kernels.cpp, ...).
//
// Conventions: the implementation has already validated everything, promoted dtypes and moved
// every operand to one device; `out` is a fresh contiguous tensor of the op's result shape that
// aliases no input, except where noted (unary kernels may run in place on an input the
// implementation made itself). Kernels are registered per *compute* dtype: every tensor input has
// that dtype (the implementation casts), and `out` has it too, except for the ops whose result is
// bool (predicates, comparisons, logical ops; registered by input dtype). Inputs broadcast to
// out's shape. A kernel may throw heron::Error (integer division by zero, negative integer
// powers); the implementation then discards `out`, so a failed op changes nothing.
#pragma once
#include "core/ops/dispatcher.h"

namespace heron {
namespace ew {

// Parameters of the parameterised elementwise ops (unused fields are ignored).
struct Params {
  const char* op = "";   // op name for error messages
  Scalar alpha;          // add/sub: multiplier of `other`
  int rounding = 0;      // div: 0 none (true division), 1 trunc, 2 floor
  int approximate = 0;   // gelu: 0 erf form, 1 tanh form
  double beta = 1.0;     // softplus
  double threshold = 20.0;
  int64_t decimals = 0;  // round
  bool has_min = false, has_max = false;  // clamp
  Scalar min, max;
};

enum Rounding : int { kNoRounding = 0, kTrunc = 1, kFloor = 2 };

// out = f(in).  `in` and `out` may be the same tensor (elementwise in place, same layout).
using UnaryKernel = void (*)(const Tensor& out, const Tensor& in, const Params& p);
// out = f(a, b).
using BinaryKernel = void (*)(const Tensor& out, const Tensor& a, const Tensor& b, const Params& p);
// where: out = cond ? a : b; cond is bool; registered per dtype of a/b/out.
using WhereKernel = void (*)(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b);
// masked_fill: out = mask ? value : in; mask is bool; registered per dtype of in/out.
using MaskedFillKernel = void (*)(const Tensor& out, const Tensor& in, const Tensor& mask, const Scalar& value);

}  // namespace ew
}  // namespace heron
