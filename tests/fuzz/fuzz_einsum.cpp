// Fuzz target for the einsum equation parser and path optimizer (untrusted input: equations come
// from users). Any byte string must either parse or throw heron::Error; what parses is bound to
// shapes derived from the input and planned greedily and optimally; nothing crashes, hangs or
// produces an inconsistent plan. libFuzzer entry point; linked with fuzz_driver.cpp as the
// standalone target heron_fuzz_einsum, run briefly by ctest.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/ops/impl/einsum_plan.h"
#include "core/util/error.h"

using namespace heron;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  einsum::Equation eq;
  try {
    eq = einsum::parse(text);
  } catch (const Error& e) {
    // Every parse error carries the caret line.
    if (std::string(e.what()).find('^') == std::string::npos) __builtin_trap();
    return 0;
  }
  // Shapes from the input bytes: each term's letters, plus 0-2 '...' dims; sizes 0-3 (mostly per label).
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < size; ++i) h = (h ^ data[i]) * 16777619u;
  if (eq.inputs.size() > 24) return 0;
  std::vector<Dims> shapes;
  for (const einsum::Term& t : eq.inputs) {
    Dims s;
    for (const einsum::Item& it : t.items) {
      if (it.label >= 0) {
        h = h * 1103515245u + 12345u;
        int64_t sz = (h >> 16) % 17 == 0 ? 1 : 1 + it.label % 3;
        if ((h >> 8) % 53 == 0) sz = 0;
        s.push_back(sz);
      } else {
        h = h * 1103515245u + 12345u;
        for (uint32_t k = 0; k < (h >> 16) % 3; ++k) s.push_back(2);
      }
    }
    shapes.push_back(s);
  }
  try {
    einsum::Bound b = einsum::bind(eq, shapes);
    auto eff = einsum::effective_labels(b, shapes);
    for (int l : b.out)
      if (l < 0 || l >= b.n_labels) __builtin_trap();
    for (einsum::Strategy st : {einsum::Strategy::Greedy, einsum::Strategy::Optimal, einsum::Strategy::None}) {
      if (st == einsum::Strategy::Optimal && eq.inputs.size() > 8) continue;
      einsum::Path p = einsum::plan_path(eff, b.out, b.size, st, std::nullopt, std::nullopt, text);
      size_t expect = eq.inputs.size() > 1 ? eq.inputs.size() - 1 : 0;
      if (p.steps.size() != expect) __builtin_trap();
      size_t live = eq.inputs.size();
      for (const auto& s : p.steps) {
        if (s.a < 0 || s.b <= s.a || static_cast<size_t>(s.b) >= live) __builtin_trap();
        --live;
      }
    }
  } catch (const Error&) {
  }
  return 0;
}
