// .heron model files: a FlatBuffers schema (core/graph/heron_model.fbs), versioned, with weights
// 64-byte aligned so that a file can be memory-mapped and its weights used in place.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/graph/graph.h"

namespace heron {
namespace graph {

// Current format version written by save_model; load_model accepts versions <= this.
constexpr uint32_t kModelFormatVersion = 1;

// Serializes g (its initializers included). Throws on graphs that do not validate.
std::vector<uint8_t> save_model(const Graph& g);
void save_model_file(const Graph& g, const std::string& path);

// Parses and verifies untrusted bytes: the FlatBuffers verifier, then semantic checks (format
// version, op known, attribute kinds, shapes consistent with initializer data, offsets in range,
// Graph::validate). Errors name what is wrong and where (node, attribute, byte offset).
// load_model copies the weights; load_model_file memory-maps the file and its initializers
// point into the mapping (kept alive by the tensors).
Graph load_model(const uint8_t* data, size_t size);
Graph load_model_file(const std::string& path);

}  // namespace graph
}  // namespace heron
