// Fuzz target for the .heron model reader (untrusted input): any byte string either loads or throws
// heron::Error; it never crashes, hangs or reads out of bounds. Whatever loads must save and load
// back to an equal graph, and the optimisation passes keep a valid graph valid. libFuzzer entry point; linked with fuzz_driver.cpp (target
// heron_fuzz_model, run by ctest on tests/fuzz/corpus_model) or with clang -fsanitize=fuzzer.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/graph/model_io.h"
#include "core/graph/passes.h"

namespace {
bool same(const heron::graph::Graph& a, const heron::graph::Graph& b) {
  if (a.values.size() != b.values.size() || a.nodes.size() != b.nodes.size() || a.inputs != b.inputs || a.outputs != b.outputs ||
      a.initializers.size() != b.initializers.size())
    return false;
  for (size_t i = 0; i < a.values.size(); ++i)
    if (a.values[i].name != b.values[i].name || a.values[i].dtype != b.values[i].dtype || a.values[i].shape != b.values[i].shape) return false;
  for (size_t k = 0; k < a.nodes.size(); ++k) {
    const auto &x = a.nodes[k], &y = b.nodes[k];
    if (x.name != y.name || x.op != y.op || x.inputs != y.inputs || x.outputs != y.outputs || x.attrs.size() != y.attrs.size()) return false;
    for (size_t j = 0; j < x.attrs.size(); ++j) {
      const auto &p = x.attrs[j], &q = y.attrs[j];
      // Bitwise for floats: NaN attributes must survive too.
      if (p.kind != q.kind || p.i != q.i || std::memcmp(&p.f, &q.f, sizeof(double)) != 0 || p.s != q.s || p.ints != q.ints ||
          p.floats.size() != q.floats.size() || (!p.floats.empty() && std::memcmp(p.floats.data(), q.floats.data(), p.floats.size() * sizeof(double)) != 0))
        return false;
    }
  }
  for (auto ia = a.initializers.begin(), ib = b.initializers.begin(); ia != a.initializers.end(); ++ia, ++ib) {
    if (ia->first != ib->first || ia->second.nbytes() != ib->second.nbytes()) return false;
    if (ia->second.nbytes() && std::memcmp(ia->second.raw_data(), ib->second.raw_data(), ia->second.nbytes()) != 0) return false;
  }
  return true;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  heron::graph::Graph g;
  try {
    g = heron::graph::load_model(data, size);
  } catch (const heron::Error&) {
    return 0;
  }
  // A graph that loads is valid: it must save, and load back equal.
  try {
    std::vector<uint8_t> again = heron::graph::save_model(g);
    heron::graph::Graph g2 = heron::graph::load_model(again.data(), again.size());
    if (!same(g, g2)) __builtin_trap();
  } catch (const heron::Error&) {
    __builtin_trap();
  }
  // The session's optimisation passes on a graph that validates must give a graph that validates.
  bool valid = true;
  try {
    g.validate();
  } catch (const heron::Error&) {
    valid = false;
  }
  if (valid) {
    try {
      heron::graph::optimize(g);
      g.validate();
    } catch (const heron::Error&) {
      __builtin_trap();
    }
  }
  return 0;
}
