// einsum: the equation parser, its binding to operand shapes, and the contraction-path optimizer.
// Device-free (no tensor data is touched); the execution is core/ops/impl/einsum.cpp. The grammar
// and the optimizer are described in docs/design/einsum.md.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor/tensor.h"

namespace heron {
namespace einsum {

constexpr int kNumLetters = 52;  // 'A'-'Z' are labels 0-25, 'a'-'z' 26-51 (numpy's sublist numbering)
constexpr int kMaxLabels = 128;  // letters + broadcast (ellipsis) dims

// One item of a term: a letter label or an ellipsis, with its position in the equation (for carets).
struct Item {
  int label = -1;  // 0..51; -1 for an ellipsis
  size_t pos = 0;
};
struct Term {
  std::vector<Item> items;
  size_t pos = 0;  // where the term starts (for errors about the whole term)
  bool has_ellipsis() const {
    for (const Item& it : items)
      if (it.label < 0) return true;
    return false;
  }
};

// The parsed equation, independent of shapes.
struct Equation {
  std::string text;
  std::vector<Term> inputs;
  bool explicit_output = false;
  Term output;  // valid when explicit_output
};

// Parses an equation (grammar in docs/design/einsum.md). Throws heron::Error (InvalidArgument) whose
// message shows the equation with a caret under the offending character.
Equation parse(const std::string& equation);

// The message `what` followed by the equation and a caret under position pos.
std::string caret_message(const std::string& equation, size_t pos, const std::string& what);

// An equation bound to operand shapes: every operand dim named by a label id (letters 0..51,
// broadcast dims 52.. aligned to the right across operands), the label sizes (after size-1
// broadcasting) and the output labels.
struct Bound {
  std::vector<std::vector<int>> labels;  // per operand, per dim (repeats = diagonals)
  std::vector<int> out;                  // output labels, in order
  std::vector<int64_t> size;             // per label id (0 for unused ids)
  int n_labels = 0;                      // ids in use are < n_labels
  std::string normalized;                // the equation with explicit output and '...' dims named
};
Bound bind(const Equation& eq, const std::vector<Dims>& shapes);

// The labels each operand contributes to the contraction: its distinct labels minus those of size-1
// dims that broadcast against a larger size (constant along that label).
std::vector<std::vector<int>> effective_labels(const Bound& b, const std::vector<Dims>& shapes);

enum class Strategy { None, Greedy, Optimal, Auto };
Strategy parse_strategy(const std::string& s);

struct StepInfo {
  int a = 0, b = 0;            // positions in the current operand list (numpy's path convention)
  double flops = 0;            // multiply-adds of this contraction
  double size = 0;             // elements of its result
  int scaling = 0;             // labels taking part (numpy's "scaling")
  std::vector<int> labels;     // labels of its result
};
struct Path {
  std::vector<StepInfo> steps;
  double naive_flops = 0;       // one sum of products over every label
  double flops = 0;             // total of the steps (+ single-operand reductions)
  double largest = 0;           // largest intermediate (elements)
  int naive_scaling = 0;        // labels in use
};

// Plans the pairwise contraction order for operands with label sets `ops` (effective labels), the
// output labels and label sizes. memory_limit (elements) bounds every intermediate except the
// final result. `explicit_path` (numpy's format flattened: each step's length then its positions)
// is validated and costed instead of searching.
Path plan_path(const std::vector<std::vector<int>>& ops, const std::vector<int>& out, const std::vector<int64_t>& size,
               Strategy strategy, std::optional<int64_t> memory_limit, const std::optional<Dims>& explicit_path,
               const std::string& equation);

// Everything the executor needs, cached by (equation, shapes, optimize, memory limit, path).
struct Plan {
  Bound bound;
  std::vector<std::vector<int>> eff;  // effective labels per operand
  Path path;
};
std::shared_ptr<const Plan> get_plan(const std::string& equation, const std::vector<Dims>& shapes, const std::string& optimize,
                                     std::optional<int64_t> memory_limit, const std::optional<Dims>& explicit_path);
void clear_plan_cache();
size_t plan_cache_size();

}  // namespace einsum
}  // namespace heron
