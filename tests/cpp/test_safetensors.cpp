// safetensors in the core: round trip through buffers and files, the reference layout, zero-copy
// file loading, and rejection of malformed headers.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "core/io/safetensors.h"
#include "core/ops/dispatcher.h"

using namespace heron;

namespace {
Tensor filled(const Dims& shape, DType dt, double start) {
  Tensor t = Tensor::empty(shape, dt, host_device());
  visit_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<T>()[i] = convert<T>(start + static_cast<double>(i));
  });
  return t;
}

std::string with_header(const std::string& header, const std::string& data = "") {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

void expect_load_error(const std::string& bytes, const std::string& fragment) {
  try {
    io::load_safetensors_buffer(bytes.data(), bytes.size(), "corpus");
    FAIL() << "expected an error containing '" << fragment << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("corpus"), std::string::npos) << e.what();
  }
}
}  // namespace

TEST(Safetensors, BufferRoundTripKeepsValuesAndOrder) {
  io::TensorMap m;
  m.set("b", filled(Dims{2, 3}, DType::Float32, 1.0));
  m.set("a", filled(Dims{4}, DType::Int64, -2.0));
  m.set("c", filled(Dims{}, DType::Float64, 0.5));
  m.set("e", filled(Dims{0, 2}, DType::Bool, 0.0));
  std::map<std::string, std::string> md{{"format", "pt"}};
  std::string bytes = io::save_safetensors_buffer(m, &md);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  io::TensorMap back = io::load_safetensors_buffer(bytes.data(), bytes.size());
  ASSERT_EQ(back.size(), 4u);
  EXPECT_EQ(back.key(0), "a");
  EXPECT_EQ(back.key(3), "e");
  EXPECT_EQ(back.metadata.at("format"), "pt");
  const Tensor* b = back.find("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->dtype(), DType::Float32);
  EXPECT_EQ(b->shape(), (Dims{2, 3}));
  EXPECT_EQ(b->data<float>()[5], 6.0f);
  EXPECT_EQ(back.find("a")->data<int64_t>()[0], -2);
  EXPECT_EQ(back.find("c")->dim(), 0);
  EXPECT_EQ(back.find("e")->numel(), 0);
  EXPECT_EQ(back.find("zz"), nullptr);
}

TEST(Safetensors, ReferenceLayoutAndPadding) {
  io::TensorMap m;
  m.set("x", filled(Dims{1}, DType::UInt8, 3.0));
  m.set("y", filled(Dims{1}, DType::Float64, 3.0));
  std::string bytes = io::save_safetensors_buffer(m, nullptr);
  const std::string header =
      R"({"y":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},"x":{"dtype":"U8","shape":[1],"data_offsets":[8,9]}})";
  std::string padded = header + std::string((8 - header.size() % 8) % 8, ' ');
  EXPECT_EQ(bytes.substr(8, padded.size()), padded);
  EXPECT_EQ(bytes.size(), 8 + padded.size() + 9);
}

TEST(Safetensors, FileLoadIsZeroCopyAndOutlivesTheMap) {
  io::TensorMap m;
  m.set("w", filled(Dims{256}, DType::Float32, 0.0));
  std::string path = ::testing::TempDir() + "heron_st_test.safetensors";
  io::save_safetensors_file(path, m, nullptr);
  Tensor w;
  {
    io::TensorMap back = io::load_safetensors_file(path);
    w = *back.find("w");
    EXPECT_TRUE(w.storage()->external());  // wraps the mapping
  }
  std::remove(path.c_str());
  EXPECT_EQ(w.data<float>()[255], 255.0f);
  w.data<float>()[0] = 42.0f;  // private mapping: writable
  EXPECT_EQ(w.data<float>()[0], 42.0f);
}

TEST(Safetensors, RejectsMalformedInput) {
  const std::string f4(16, '\0');
  expect_load_error("", "too few");
  expect_load_error(with_header("{}").substr(0, 9), "runs past the end");
  expect_load_error(with_header("{oops}"), "not valid JSON");
  expect_load_error(with_header(R"({"w":{"dtype":"Q8","shape":[4],"data_offsets":[0,16]}})", f4), "unknown or unsupported dtype 'Q8'");
  expect_load_error(with_header(R"({"w":{"dtype":"F32","shape":[5],"data_offsets":[0,16]}})", f4), "needs 20 bytes");
  expect_load_error(with_header(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", f4),
                    "overlap");
  expect_load_error(with_header(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", f4), "cover 8 bytes");
  expect_load_error(with_header(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", f4),
                    "more than once");
  std::string huge(8, '\xff');
  expect_load_error(huge + "{}", "larger than the limit");
  try {
    io::load_safetensors_file("/nonexistent/heron.safetensors");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/heron.safetensors"), std::string::npos);
  }
}
