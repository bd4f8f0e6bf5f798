// Weak stand-ins for core/graph/model_io.h until the .heron reader/writer (core/graph/model_io.cpp)
// is linked: they fail with NotImplemented. A strong definition in the same link replaces them, so
// this file can be deleted once model_io.cpp is merged.
#include "core/graph/model_io.h"

namespace heron {
namespace graph {

namespace {
[[noreturn]] void missing(const char* fn) {
  throw Error(ErrorCode::NotImplemented, str_cat(fn, ": .heron model files are not available in this build (model_io.cpp is missing)"));
}
}  // namespace

__attribute__((weak)) std::vector<uint8_t> save_model(const Graph&) { missing("save_model"); }
__attribute__((weak)) void save_model_file(const Graph&, const std::string&) { missing("save_model_file"); }
__attribute__((weak)) Graph load_model(const uint8_t*, size_t) { missing("load_model"); }
__attribute__((weak)) Graph load_model_file(const std::string&) { missing("load_model_file"); }

}  // namespace graph
}  // namespace heron
