// .heron model files: round trips through buffers and memory-mapped files, the 64-byte alignment of
// the weights, and rejection (a heron::Error naming what and where, never a crash) of malformed
// input: truncations, random bytes, wrong identifier, newer versions, bad offsets, unknown ops,
// wrong attribute kinds, huge shapes, cycles. Malformed files are made by editing a good one through
// the FlatBuffers object API (the generated header lives in the build tree).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <unistd.h>

#include "core/graph/heron_model_generated.h"
#include "core/graph/model_io.h"
#include "core/ops/dispatcher.h"

using namespace heron;
using graph::AttrValue;
using graph::Graph;
using graph::Node;

namespace {

Tensor filled(const Dims& shape, DType dt, double start) {
  Tensor t = Tensor::empty(shape, dt, host_device());
  visit_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<T>()[i] = convert<T>(start + 0.25 * static_cast<double>(i));
  });
  return t;
}

AttrValue a_default() { return AttrValue{}; }
AttrValue a_none() { AttrValue a; a.kind = AttrValue::None; return a; }
AttrValue a_int(int64_t v) { AttrValue a; a.kind = AttrValue::Int; a.i = v; return a; }
AttrValue a_float(double v) { AttrValue a; a.kind = AttrValue::Float; a.f = v; return a; }
AttrValue a_bool(bool v) { AttrValue a; a.kind = AttrValue::Bool; a.i = v; return a; }
AttrValue a_string(std::string v) { AttrValue a; a.kind = AttrValue::String; a.s = std::move(v); return a; }
AttrValue a_ints(std::vector<int64_t> v) { AttrValue a; a.kind = AttrValue::Ints; a.ints = std::move(v); return a; }
AttrValue a_floats(std::vector<double> v) { AttrValue a; a.kind = AttrValue::Floats; a.floats = std::move(v); return a; }
AttrValue a_dtype(DType d) { AttrValue a; a.kind = AttrValue::Dtype; a.i = static_cast<int64_t>(d); return a; }

// A small graph touching every attribute kind, an absent optional input, a variadic input list,
// several initializer dtypes (an empty one and a scalar included) and a symbolic batch dim.
Graph small_graph() {
  Graph g;
  int32_t x = g.add_value("x", DType::Float32, {-1, 3, 8, 8});
  int32_t w = g.add_value("conv.weight", DType::Float32, {4, 3, 3, 3});
  int32_t y = g.add_value("y", DType::Float32, {-1, 4, 8, 8});
  int32_t r = g.add_value("r", DType::Float32, {-1, 4, 8, 8});
  int32_t c = g.add_value("c", DType::Float32, {-1, 8, 8, 8});
  int32_t s = g.add_value("s", DType::Float32, {-1, 1, 1, 1});
  int32_t f = g.add_value("f", DType::Float64, {2});
  int32_t w64 = g.add_value("w64", DType::Float64, {5});
  int32_t idx = g.add_value("idx", DType::Int64, {3});
  int32_t msk = g.add_value("mask", DType::Bool, {7});
  int32_t emp = g.add_value("empty", DType::Float32, {0, 3});
  int32_t sc = g.add_value("scalar", DType::Float32, {});
  g.inputs = {x};
  g.nodes.push_back(Node{"conv_0", "conv2d", {x, w, -1}, {y},
                         {a_ints({1, 1}), a_ints({1, 1}), a_default(), a_int(1), a_bool(false)}});
  g.nodes.push_back(Node{"relu_1", "relu", {y}, {r}, {}});
  g.nodes.push_back(Node{"concat_2", "concat", {r, r}, {c}, {a_int(1)}});
  g.nodes.push_back(Node{"sum_3", "sum", {c}, {s}, {a_ints({1, 2, 3}), a_bool(true), a_none()}});
  g.nodes.push_back(Node{"full_4", "full", {}, {f}, {a_ints({2}), a_float(0.5), a_dtype(DType::Float64), a_string("cpu")}});
  g.outputs = {s, f, c};
  g.initializers[w] = filled(Dims{4, 3, 3, 3}, DType::Float32, -3.0);
  g.initializers[w64] = filled(Dims{5}, DType::Float64, 1.0);
  g.initializers[idx] = filled(Dims{3}, DType::Int64, 7.0);
  g.initializers[msk] = filled(Dims{7}, DType::Bool, 0.0);
  g.initializers[emp] = Tensor::empty(Dims{0, 3}, DType::Float32, host_device());
  g.initializers[sc] = filled(Dims{}, DType::Float32, 2.5);
  return g;
}

std::vector<int64_t> shape_of(const Tensor& t) { return std::vector<int64_t>(t.shape().data(), t.shape().data() + t.shape().size()); }

void expect_same(const Graph& a, const Graph& b) {
  ASSERT_EQ(a.values.size(), b.values.size());
  for (size_t i = 0; i < a.values.size(); ++i) {
    EXPECT_EQ(a.values[i].name, b.values[i].name);
    EXPECT_EQ(a.values[i].dtype, b.values[i].dtype);
    EXPECT_EQ(a.values[i].shape, b.values[i].shape);
  }
  ASSERT_EQ(a.nodes.size(), b.nodes.size());
  for (size_t k = 0; k < a.nodes.size(); ++k) {
    EXPECT_EQ(a.nodes[k].name, b.nodes[k].name);
    EXPECT_EQ(a.nodes[k].op, b.nodes[k].op);
    EXPECT_EQ(a.nodes[k].inputs, b.nodes[k].inputs);
    EXPECT_EQ(a.nodes[k].outputs, b.nodes[k].outputs);
    ASSERT_EQ(a.nodes[k].attrs.size(), b.nodes[k].attrs.size());
    for (size_t j = 0; j < a.nodes[k].attrs.size(); ++j) EXPECT_TRUE(a.nodes[k].attrs[j] == b.nodes[k].attrs[j]) << "node " << k << " attr " << j;
  }
  EXPECT_EQ(a.inputs, b.inputs);
  EXPECT_EQ(a.outputs, b.outputs);
  ASSERT_EQ(a.initializers.size(), b.initializers.size());
  for (const auto& [id, t] : a.initializers) {
    auto it = b.initializers.find(id);
    ASSERT_NE(it, b.initializers.end()) << "initializer " << id;
    const Tensor& u = it->second;
    EXPECT_EQ(t.dtype(), u.dtype());
    EXPECT_EQ(shape_of(t), shape_of(u));
    ASSERT_EQ(t.nbytes(), u.nbytes());
    Tensor tc = t.contiguous();
    if (t.nbytes()) EXPECT_EQ(std::memcmp(tc.raw_data(), u.raw_data(), t.nbytes()), 0) << "initializer " << id;
  }
}

std::string temp_path(const char* tag) {
  return str_cat(::testing::TempDir(), "heron_model_", tag, "_", ::getpid(), ".heron");
}

// A file split into its FlatBuffer (unpacked, editable) and its weights blob.
struct Parts {
  std::unique_ptr<fb::ModelT> m;
  std::vector<uint8_t> blob;
};

size_t blob_start_of(const std::vector<uint8_t>& bytes) {
  uint32_t n = 0;
  std::memcpy(&n, bytes.data(), 4);
  return (4 + static_cast<size_t>(n) + 63) / 64 * 64;
}

Parts unpack(const std::vector<uint8_t>& bytes) {
  Parts p;
  p.m.reset(fb::GetSizePrefixedModel(bytes.data())->UnPack());
  p.blob.assign(bytes.begin() + static_cast<std::ptrdiff_t>(blob_start_of(bytes)), bytes.end());
  return p;
}

// Packs the parts back; weights_size is kept as the ModelT says (tests set it on purpose).
std::vector<uint8_t> pack(const Parts& p) {
  flatbuffers::FlatBufferBuilder fbb;
  fb::FinishSizePrefixedModelBuffer(fbb, fb::Model::Pack(fbb, p.m.get()));
  std::vector<uint8_t> out(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
  out.resize((out.size() + 63) / 64 * 64, 0);
  out.insert(out.end(), p.blob.begin(), p.blob.end());
  return out;
}

void expect_load_error(const std::vector<uint8_t>& bytes, const std::vector<std::string>& fragments) {
  try {
    graph::load_model(bytes.data(), bytes.size());
    ADD_FAILURE() << "expected an error containing '" << fragments.at(0) << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::InvalidArgument) << e.what();
    for (const auto& f : fragments) EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << "'" << f << "' not in: " << e.what();
  }
}

// Edits a good file and expects the load to fail naming each fragment.
template <typename Edit>
void expect_edit_rejected(Edit&& edit, const std::vector<std::string>& fragments) {
  Parts p = unpack(graph::save_model(small_graph()));
  edit(p);
  expect_load_error(pack(p), fragments);
}

int node_index(const Parts& p, const std::string& name) {
  for (size_t k = 0; k < p.m->nodes.size(); ++k)
    if (p.m->nodes[k]->name == name) return static_cast<int>(k);
  return -1;
}

}  // namespace

// ------------------------------------------------------------------ round trips
TEST(ModelIO, BufferRoundTripIsEqual) {
  Graph g = small_graph();
  std::vector<uint8_t> bytes = graph::save_model(g);
  Graph back = graph::load_model(bytes.data(), bytes.size());
  expect_same(g, back);
  // Saving again gives the same bytes (the format is deterministic).
  EXPECT_EQ(graph::save_model(back), bytes);
}

TEST(ModelIO, LoadFromUnalignedBuffer) {
  Graph g = small_graph();
  std::vector<uint8_t> bytes = graph::save_model(g);
  std::vector<uint8_t> shifted(bytes.size() + 3);
  std::memcpy(shifted.data() + 3, bytes.data(), bytes.size());
  expect_same(g, graph::load_model(shifted.data() + 3, bytes.size()));
}

TEST(ModelIO, FileRoundTripMapsTheWeights) {
  Graph g = small_graph();
  const std::string path = temp_path("rt");
  graph::save_model_file(g, path);
  {
    std::ifstream f(path, std::ios::binary);
    std::vector<uint8_t> on_disk((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    EXPECT_EQ(on_disk, graph::save_model(g));
  }
  Graph back = graph::load_model_file(path);
  expect_same(g, back);
  for (const auto& [id, t] : back.initializers) {
    if (t.nbytes() == 0) continue;
    EXPECT_TRUE(t.storage()->external()) << "initializer " << id << " should wrap the mapping";
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % 64, 0u) << "initializer " << id;
  }
  // The mapping is private: writing a loaded weight does not change the file.
  Tensor w = back.initializers.at(1);
  w.data<float>()[0] = 1234.5f;
  Graph again = graph::load_model_file(path);
  EXPECT_EQ(again.initializers.at(1).data<float>()[0], g.initializers.at(1).data<float>()[0]);
  // The weights outlive the graph (the tensors keep the mapping).
  Tensor keep = again.initializers.at(7);
  again = Graph();
  EXPECT_EQ(keep.data<double>()[4], 2.0);
  std::remove(path.c_str());
}

TEST(ModelIO, EveryInitializerIs64ByteAlignedInTheFile) {
  Graph g = small_graph();
  // Odd sizes before each tensor: alignment padding is needed between all of them.
  int32_t odd = g.add_value("odd", DType::UInt8, {13});
  g.initializers[odd] = filled(Dims{13}, DType::UInt8, 1.0);
  std::vector<uint8_t> bytes = graph::save_model(g);
  const fb::Model* m = fb::GetSizePrefixedModel(bytes.data());
  EXPECT_EQ(m->format_version(), graph::kModelFormatVersion);
  EXPECT_TRUE(fb::SizePrefixedModelBufferHasIdentifier(bytes.data()));
  EXPECT_EQ(std::memcmp(bytes.data() + 8, "HRN1", 4), 0);
  const size_t start = blob_start_of(bytes);
  EXPECT_EQ(start % 64, 0u);
  EXPECT_EQ(bytes.size(), start + m->weights_size());
  ASSERT_EQ(m->initializers()->size(), g.initializers.size());
  for (const fb::Initializer* in : *m->initializers()) {
    EXPECT_EQ((start + in->offset()) % 64, 0u) << "initializer for value " << in->value();
    const Tensor& t = g.initializers.at(in->value());
    ASSERT_EQ(in->length(), t.nbytes());
    if (t.nbytes()) EXPECT_EQ(std::memcmp(bytes.data() + start + in->offset(), t.raw_data(), t.nbytes()), 0);
  }
}

TEST(ModelIO, NonContiguousInitializersAreSavedRowMajor) {
  Graph g;
  int32_t a = g.add_value("a", DType::Float32, {3, 2});
  g.outputs = {a};
  Tensor t = filled(Dims{2, 3}, DType::Float32, 0.0).permute(Dims{1, 0});
  g.initializers[a] = t;
  std::vector<uint8_t> bytes = graph::save_model(g);
  Graph back = graph::load_model(bytes.data(), bytes.size());
  const float* p = back.initializers.at(a).data<float>();
  // t[i][j] = source[j][i] = 0.25 * (3 * j + i)
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 2; ++j) EXPECT_EQ(p[i * 2 + j], 0.25f * static_cast<float>(3 * j + i));
}

TEST(ModelIO, EmptyGraphRoundTrips) {
  Graph g;
  std::vector<uint8_t> bytes = graph::save_model(g);
  Graph back = graph::load_model(bytes.data(), bytes.size());
  EXPECT_TRUE(back.values.empty());
  EXPECT_TRUE(back.nodes.empty());
}

TEST(ModelIO, MissingTrailingAttributesTakeTheirDefaults) {
  // A file written before an op gained attributes: they load as 'default'.
  Parts p = unpack(graph::save_model(small_graph()));
  p.m->nodes[node_index(p, "concat_2")]->attrs.clear();
  std::vector<uint8_t> bytes = pack(p);
  Graph back = graph::load_model(bytes.data(), bytes.size());
  ASSERT_EQ(back.nodes[2].attrs.size(), 1u);
  EXPECT_EQ(back.nodes[2].attrs[0].kind, AttrValue::Default);
  // ... but required attributes cannot be missing.
  expect_edit_rejected([](Parts& q) { q.m->nodes[node_index(q, "full_4")]->attrs.clear(); },
                       {"node 4 'full_4' (full)", "attribute 0 'size'", "no default"});
}

// ------------------------------------------------------------------ saving checks first
TEST(ModelIO, SaveRejectsInvalidGraphs) {
  auto expect_save_error = [](const Graph& g, const std::string& fragment) {
    try {
      graph::save_model(g);
      ADD_FAILURE() << "expected an error containing '" << fragment << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  Graph g = small_graph();
  g.nodes[1].op = "no_such_op";
  expect_save_error(g, "unknown op 'no_such_op'");
  g = small_graph();
  g.nodes[0].attrs[3] = a_string("one");
  expect_save_error(g, "attribute 3 'groups' expects int, got string");
  g = small_graph();
  g.initializers[1] = filled(Dims{4, 3, 3, 3}, DType::Float64, 0.0);
  expect_save_error(g, "the tensor is float64 but the value is float32");
  g = small_graph();
  g.initializers[1] = filled(Dims{4, 3, 3}, DType::Float32, 0.0);
  expect_save_error(g, "shape [4, 3, 3]");
  g = small_graph();
  std::swap(g.nodes[1], g.nodes[2]);
  expect_save_error(g, "not in topological order");
  g = small_graph();
  g.values[0].name = "bad\xff";
  expect_save_error(g, "not valid UTF-8");
  g = small_graph();
  g.initializers[0] = filled(Dims{1, 3, 8, 8}, DType::Float32, 0.0);  // x is an input
  expect_save_error(g, "also a graph input");
  // The failed saves wrote nothing to a file.
  const std::string path = temp_path("bad");
  EXPECT_THROW(graph::save_model_file(g, path), Error);
  EXPECT_FALSE(std::ifstream(path).good());
}

// ------------------------------------------------------------------ malformed input
TEST(ModelIO, EveryTruncationIsAnError) {
  Graph g;  // small, so that every length can be tried
  int32_t x = g.add_value("x", DType::Float32, {-1, 4});
  int32_t w = g.add_value("w", DType::Float32, {4});
  int32_t y = g.add_value("y", DType::Float32, {-1, 4});
  g.inputs = {x};
  g.nodes.push_back(Node{"add_0", "add", {x, w}, {y}, {a_int(2)}});
  g.outputs = {y};
  g.initializers[w] = filled(Dims{4}, DType::Float32, 1.0);
  std::vector<uint8_t> bytes = graph::save_model(g);
  for (size_t n = 0; n < bytes.size(); ++n) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_THROW(graph::load_model(cut.data(), cut.size()), Error) << "truncated to " << n << " of " << bytes.size() << " bytes";
  }
  std::vector<uint8_t> longer = bytes;
  longer.push_back(0);
  expect_load_error(longer, {"trailing bytes"});
  std::vector<uint8_t> shorter(bytes.begin(), bytes.end() - 1);
  expect_load_error(shorter, {"truncated"});
  // A truncated file, through the mmap path.
  const std::string path = temp_path("trunc");
  {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size() - 5));
  }
  try {
    graph::load_model_file(path);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  std::remove(path.c_str());
  EXPECT_THROW(graph::load_model_file(path), Error);  // missing file
  EXPECT_THROW(graph::load_model(nullptr, 0), Error);
  EXPECT_THROW(graph::load_model(nullptr, 100), Error);
}

TEST(ModelIO, RandomBytesAreAnError) {
  std::mt19937_64 rng(7);
  std::vector<uint8_t> good = graph::save_model(small_graph());
  for (int it = 0; it < 3000; ++it) {
    std::vector<uint8_t> b(static_cast<size_t>(rng() % 600));
    for (auto& c : b) c = static_cast<uint8_t>(rng());
    if (it % 2 && b.size() >= 12) {  // a plausible header: the size prefix and the identifier
      uint32_t n = static_cast<uint32_t>(b.size() - 4 - rng() % 8);
      std::memcpy(b.data(), &n, 4);
      std::memcpy(b.data() + 8, "HRN1", 4);
    }
    EXPECT_THROW(graph::load_model(b.data(), b.size()), Error) << "iteration " << it;
  }
  // Random byte flips of a good file: an error or a valid graph, never a crash.
  for (int it = 0; it < 3000; ++it) {
    std::vector<uint8_t> b = good;
    for (int k = 0; k < 1 + static_cast<int>(rng() % 3); ++k) b[rng() % b.size()] ^= static_cast<uint8_t>(1 + rng() % 255);
    try {
      Graph g = graph::load_model(b.data(), b.size());
      std::vector<uint8_t> again = graph::save_model(g);  // what loads is valid
      graph::load_model(again.data(), again.size());
    } catch (const Error&) {
    }
  }
}

TEST(ModelIO, WrongIdentifier) {
  std::vector<uint8_t> bytes = graph::save_model(small_graph());
  std::memcpy(bytes.data() + 8, "ONNX", 4);
  expect_load_error(bytes, {"wrong file identifier 'ONNX'", "expected 'HRN1'"});
  std::vector<uint8_t> st = {8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};  // a safetensors file
  expect_load_error(st, {"not a .heron model file"});
}

TEST(ModelIO, NewerVersionNamesBothVersions) {
  expect_edit_rejected([](Parts& p) { p.m->format_version = graph::kModelFormatVersion + 1; },
                       {str_cat("format version ", graph::kModelFormatVersion + 1), str_cat("(version ", graph::kModelFormatVersion, ")")});
  expect_edit_rejected([](Parts& p) { p.m->format_version = 0; }, {"format version 0"});
}

TEST(ModelIO, BadOffsetsAndLengths) {
  auto init_of = [](Parts& p, int32_t value) -> fb::InitializerT& {
    for (auto& in : p.m->initializers)
      if (in->value == value) return *in;
    throw std::runtime_error("no initializer");
  };
  expect_edit_rejected([&](Parts& p) { init_of(p, 1).offset += 8; }, {"initializer 0", "value 1 'conv.weight'", "offset", "multiple of 64"});
  expect_edit_rejected([&](Parts& p) { init_of(p, 1).offset = (p.m->weights_size + 63) / 64 * 64; },
                       {"value 1 'conv.weight'", "run past the end of the weights blob"});
  expect_edit_rejected([&](Parts& p) { init_of(p, 1).offset = UINT64_MAX - 63; }, {"run past the end of the weights blob"});
  expect_edit_rejected([&](Parts& p) { init_of(p, 1).length = 100; }, {"length 100 bytes", "needs 432"});
  expect_edit_rejected([&](Parts& p) { init_of(p, 7).offset = init_of(p, 1).offset; }, {"overlap"});
  expect_edit_rejected([&](Parts& p) { p.m->weights_size += 64; }, {"weights blob", "truncated"});
  expect_edit_rejected([&](Parts& p) { p.blob.resize(p.blob.size() + 64); }, {"trailing bytes"});
  expect_edit_rejected([&](Parts& p) { init_of(p, 1).value = 99; }, {"initializer 0 is bound to value 99, out of range"});
  expect_edit_rejected([&](Parts& p) { init_of(p, 7).value = 1; }, {"another initializer"});
  expect_edit_rejected([&](Parts& p) { init_of(p, 1).dtype = fb::DType_Float64; }, {"dtype float64 differs from the value's dtype float32"});
  expect_edit_rejected([&](Parts& p) { init_of(p, 1).dtype = static_cast<fb::DType>(42); }, {"unknown dtype code 42"});
  expect_edit_rejected([&](Parts& p) { init_of(p, 1).shape = {4, 3, 9}; }, {"shape [4, 3, 9] differs"});
}

TEST(ModelIO, UnknownOp) {
  expect_edit_rejected([](Parts& p) { p.m->nodes[1]->op = "relu_v2"; }, {"node 1 'relu_1'", "unknown op 'relu_v2'"});
  expect_edit_rejected([](Parts& p) { p.m->nodes[1]->op = std::string("re\xc3\x28lu\x01", 7); }, {"unknown op 're\\xc3(lu\\x01'"});
}

TEST(ModelIO, WrongAttributeKinds) {
  auto attr = [](Parts& p, const char* node, size_t a) -> fb::AttrT& { return *p.m->nodes[node_index(p, node)]->attrs[a]; };
  expect_edit_rejected([&](Parts& p) { attr(p, "conv_0", 0).kind = fb::AttrKind_String; },
                       {"node 0 'conv_0' (conv2d)", "attribute 0 'stride' expects ints, got string"});
  expect_edit_rejected([&](Parts& p) { attr(p, "conv_0", 3).kind = fb::AttrKind_Float, attr(p, "conv_0", 3).f = 1.5; },
                       {"attribute 3 'groups' expects int, got float"});
  expect_edit_rejected([&](Parts& p) { attr(p, "conv_0", 4).i = 2; }, {"attribute 4 'same_padding' is a bool with value 2"});
  expect_edit_rejected([&](Parts& p) { attr(p, "conv_0", 1).kind = fb::AttrKind_None; }, {"attribute 1 'padding' cannot be none"});
  expect_edit_rejected([&](Parts& p) { attr(p, "full_4", 1).kind = fb::AttrKind_Default; },
                       {"attribute 1 'fill_value' is required"});
  expect_edit_rejected([&](Parts& p) { attr(p, "full_4", 2).i = 9; }, {"attribute 2 'dtype' has unknown dtype code 9"});
  expect_edit_rejected([&](Parts& p) { attr(p, "full_4", 3).kind = fb::AttrKind_Int; }, {"attribute 3 'device' expects a device string, got int"});
  expect_edit_rejected([&](Parts& p) { attr(p, "full_4", 3).kind = static_cast<fb::AttrKind>(77); }, {"attribute 3 'device' has unknown kind 77"});
  expect_edit_rejected([&](Parts& p) { p.m->nodes[1]->attrs.push_back(std::make_unique<fb::AttrT>()); },
                       {"node 1 'relu_1' (relu)", "1 attributes, but the op has 0"});
  // Kinds the ABI converts are accepted, as heron_op_call accepts them.
  Parts p = unpack(graph::save_model(small_graph()));
  attr(p, "conv_0", 3).kind = fb::AttrKind_Float;
  attr(p, "conv_0", 3).f = 1.0;  // an integral float for an int
  attr(p, "full_4", 1).kind = fb::AttrKind_Bool;
  attr(p, "full_4", 1).i = 1;  // a bool for a scalar
  std::vector<uint8_t> bytes = pack(p);
  Graph g = graph::load_model(bytes.data(), bytes.size());
  EXPECT_EQ(g.nodes[0].attrs[3].kind, AttrValue::Float);
}

TEST(ModelIO, HugeAndBadShapes) {
  auto value = [](Parts& p, const char* name) -> fb::ValueT& {
    for (auto& v : p.m->values)
      if (v->name == name) return *v;
    throw std::runtime_error("no value");
  };
  // An initializer whose element count overflows: rejected before anything is allocated.
  expect_edit_rejected(
      [&](Parts& p) {
        value(p, "w64").shape = {int64_t{1} << 40, int64_t{1} << 40};
        for (auto& in : p.m->initializers)
          if (in->value == 7) in->shape = value(p, "w64").shape, in->length = 0;
      },
      {"value 7 'w64'", "[1099511627776, 1099511627776]"});
  expect_edit_rejected(
      [&](Parts& p) {
        value(p, "w64").shape = {int64_t{1} << 28};
        for (auto& in : p.m->initializers)
          if (in->value == 7) in->shape = value(p, "w64").shape, in->length = uint64_t{8} << 28;
      },
      {"run past the end of the weights blob"});
  expect_edit_rejected([&](Parts& p) { value(p, "y").shape = {INT64_MAX, INT64_MAX}; }, {"value 2 'y'", "too many elements"});
  expect_edit_rejected([&](Parts& p) { value(p, "y").shape = {-5, 4}; }, {"value 2 'y'", "the entry -5"});
  expect_edit_rejected([&](Parts& p) { value(p, "y").shape.assign(65, 1); }, {"value 2 'y'", "65 dims"});
  expect_edit_rejected([&](Parts& p) { value(p, "y").dtype = static_cast<fb::DType>(-3); }, {"value 2 'y'", "unknown dtype code -3"});
  // An initializer cannot have a symbolic dim.
  expect_edit_rejected(
      [&](Parts& p) {
        value(p, "w64").shape = {-1};
        for (auto& in : p.m->initializers)
          if (in->value == 7) in->shape = {-1};
      },
      {"value 7 'w64'", "not a concrete shape"});
}

TEST(ModelIO, CyclesAndOrder) {
  // relu_1 reads concat_2's output and concat_2 reads relu_1's: a cycle.
  expect_edit_rejected([](Parts& p) { p.m->nodes[1]->inputs = {4}; }, {"node 1 'relu_1' (relu)", "value 4 'c'", "topological order"});
  // A node reading its own output.
  expect_edit_rejected([](Parts& p) { p.m->nodes[1]->inputs = {3}; }, {"node 1 'relu_1' (relu)", "value 3 'r'", "itself"});
  // Nodes swapped: not in topological order.
  expect_edit_rejected([](Parts& p) { std::swap(p.m->nodes[1], p.m->nodes[2]); }, {"topological order"});
}

TEST(ModelIO, BadIdsAndDefinitions) {
  expect_edit_rejected([](Parts& p) { p.m->nodes[1]->inputs = {1000}; }, {"node 1 'relu_1' (relu)", "input 0 refers to value 1000, out of range"});
  expect_edit_rejected([](Parts& p) { p.m->nodes[1]->inputs = {-1}; }, {"input 0 is absent (-1) but it is not optional"});
  expect_edit_rejected([](Parts& p) { p.m->nodes[1]->inputs = {-7}; }, {"input 0 refers to value -7"});
  expect_edit_rejected([](Parts& p) { p.m->nodes[1]->outputs = {2}; }, {"node 1 'relu_1' (relu)", "value 2 'y'", "already an output of node 0"});
  expect_edit_rejected([](Parts& p) { p.m->nodes[1]->outputs = {0}; }, {"value 0 'x'", "already a graph input"});
  expect_edit_rejected([](Parts& p) { p.m->nodes[1]->outputs = {1}; }, {"value 1 'conv.weight'", "already an initializer"});
  expect_edit_rejected([](Parts& p) { p.m->nodes[1]->outputs = {3, 5}; }, {"expected 1 output, got 2"});
  expect_edit_rejected([](Parts& p) { p.m->nodes[1]->inputs = {2, 2}; }, {"expected 1 input, got 2"});
  auto add_ghost = [](Parts& p) {  // a value that nothing defines: value 12
    p.m->values.push_back(std::make_unique<fb::ValueT>());
    p.m->values.back()->name = "ghost";
  };
  expect_edit_rejected([&](Parts& p) { add_ghost(p); p.m->nodes[1]->inputs = {12}; }, {"input 0 is value 12 'ghost'", "nothing defines"});
  expect_edit_rejected([](Parts& p) { p.m->outputs.push_back(10000); }, {"graph output 3 refers to value 10000"});
  expect_edit_rejected([&](Parts& p) { add_ghost(p); p.m->outputs.push_back(12); }, {"graph output 3 is value 12 'ghost', which nothing defines"});
  expect_edit_rejected([](Parts& p) { p.m->inputs.push_back(0); }, {"graph input 1", "listed twice"});
  expect_edit_rejected([](Parts& p) { p.m->inputs.push_back(-1); }, {"graph input 1 refers to value -1"});
  expect_edit_rejected([](Parts& p) { p.m->inputs.push_back(6); p.m->values[6]->name = "x"; }, {"same name as another graph input"});
  expect_edit_rejected([](Parts& p) { p.m->nodes[2]->name = "relu_1"; }, {"node 2 'relu_1' (concat)", "also the name of node 1"});
}

TEST(ModelIO, SharedDataCannotMultiplyTheWork) {
  // A FlatBuffer whose node list repeats one node with a large input list many times: the verifier
  // accepts it, the reader must refuse to copy more data than the buffer holds.
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<int32_t> ins(4000, 0);
  auto node = fb::CreateNode(fbb, fbb.CreateString("n"), fbb.CreateString("concat"), fbb.CreateVector(ins), fbb.CreateVector(std::vector<int32_t>{1}));
  std::vector<flatbuffers::Offset<fb::Node>> nodes(20000, node);
  std::vector<flatbuffers::Offset<fb::Value>> values = {fb::CreateValue(fbb, fbb.CreateString("a")), fb::CreateValue(fbb, fbb.CreateString("b"))};
  auto vv = fbb.CreateVector(values);
  auto nv = fbb.CreateVector(nodes);
  auto root = fb::CreateModel(fbb, 1, 0, vv, nv, fbb.CreateVector(std::vector<int32_t>{0}));
  fb::FinishSizePrefixedModelBuffer(fbb, root);
  std::vector<uint8_t> bytes(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
  bytes.resize((bytes.size() + 63) / 64 * 64, 0);
  expect_load_error(bytes, {"references more data than it holds"});
}

// Writes the fuzz seed corpus (tests/fuzz/corpus_model):
//   HERON_MODEL_CORPUS=tests/fuzz/corpus_model build/heron_tests --gtest_also_run_disabled_tests \
//       --gtest_filter='ModelIO.DISABLED_WriteSeedCorpus'
TEST(ModelIO, DISABLED_WriteSeedCorpus) {
  const char* dir = std::getenv("HERON_MODEL_CORPUS");
  ASSERT_NE(dir, nullptr) << "set HERON_MODEL_CORPUS to the corpus folder";
  auto write = [&](const char* name, const std::vector<uint8_t>& bytes) {
    std::ofstream f(str_cat(dir, "/", name), std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  };
  write("small.heron", graph::save_model(small_graph()));
  write("empty.heron", graph::save_model(Graph()));
  Graph add;
  int32_t x = add.add_value("x", DType::Float32, {-1, 4});
  int32_t w = add.add_value("w", DType::Float32, {4});
  int32_t y = add.add_value("y", DType::Float32, {-1, 4});
  add.inputs = {x};
  add.nodes.push_back(Node{"add_0", "add", {x, w}, {y}, {a_int(2)}});
  add.outputs = {y};
  add.initializers[w] = filled(Dims{4}, DType::Float32, 1.0);
  write("add.heron", graph::save_model(add));
  Graph split;  // variadic outputs, a chain, float lists
  int32_t a = split.add_value("a", DType::Float64, {6, 2});
  int32_t p0 = split.add_value("p0", DType::Float64, {3, 2});
  int32_t p1 = split.add_value("p1", DType::Float64, {3, 2});
  int32_t q = split.add_value("q", DType::Float64, {3, 2});
  split.inputs = {a};
  split.nodes.push_back(Node{"split_0", "split", {a}, {p0, p1}, {a_int(3), a_none(), a_int(0)}});
  split.nodes.push_back(Node{"mul_1", "mul", {p0, p1}, {q}, {}});
  split.outputs = {q, p1};
  write("split.heron", graph::save_model(split));
}
