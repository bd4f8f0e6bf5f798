// Graph optimisation passes that a session runs on its own copy of a model's graph (never on the
// model or its file). They read and rewrite weights; each preserves the graph's results up to
// float rounding (see docs/design/runtime.md for the exact patterns).
#pragma once
#include <string>
#include <vector>

#include "core/graph/graph.h"

namespace heron {
namespace graph {

struct PassReport {
  int folded_batch_norms = 0;  // batch_norm (eval) folded into the preceding convolution
  int fused_residuals = 0;     // add(conv, r) -> conv2d_fused(..., residual=r)
  int fused_activations = 0;   // relu / clamp after a convolution -> its clamp
  std::string str() const;
};

// Folds eval-mode batch_norm into a preceding conv2d whose output feeds only it: w' = w * s,
// b' = (b - mean) * s + beta with s = gamma / sqrt(var + eps), computed in float64 from
// initializers (new initializers; the originals are dropped when nothing else uses them).
int fold_batch_norm(Graph& g);
// Rewrites conv2d (float32 / float64) followed by add (alpha 1, same shape) and/or relu / clamp
// into conv2d_fused, whose epilogue applies them while the output is in registers.
int fuse_conv_epilogue(Graph& g, PassReport& r);

// Every pass above, then drops the unused values and initializers.
PassReport optimize(Graph& g);

}  // namespace graph
}  // namespace heron
