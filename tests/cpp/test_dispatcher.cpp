#include <gtest/gtest.h>

#include <string>

#include "core/ops/dispatcher.h"
#include "core/ops/generated/ops_gen.h"

using namespace heron;

TEST(Dispatcher, EveryOpOfTheSchemaHasAnImplementation) {
  std::string missing;
  for (int i = 0; i < num_ops(); ++i)
    if (!get_impl(i)) missing += std::string(" ") + op_by_id(i)->name;
  EXPECT_TRUE(missing.empty()) << "ops without an implementation:" << missing;
}

TEST(Dispatcher, FindOp) {
  ASSERT_NE(find_op("add"), nullptr);
  EXPECT_EQ(find_op("add")->id, ops::OpId::add);
  EXPECT_EQ(find_op("no_such_op"), nullptr);
  EXPECT_NE(std::string(ops_schema_json()).find("\"name\":\"matmul\""), std::string::npos);
}

TEST(Dispatcher, MissingKernelNamesOpDeviceDtype) {
  try {
    get_kernel(ops::OpId::add, host_device(), DType::Float32);  // exists once elementwise lands
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::NotImplemented);
  }
  try {
    get_kernel(ops::OpId::reshape, host_device(), DType::Float32);  // a view op has no kernel
    FAIL() << "expected NotImplemented";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::NotImplemented);
    EXPECT_NE(std::string(e.what()).find("reshape"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("float32"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("cpu"), std::string::npos);
  }
}

TEST(Dispatcher, TypedCppApi) {
  Tensor t = Tensor::empty(Dims{2, 3}, DType::Float32, host_device());
  Tensor r = ops::reshape(t, {Dims{3, 2}});
  EXPECT_EQ(r.shape(), (Dims{3, 2}));
  EXPECT_TRUE(r.shares_storage(t));
  Tensor tr = ops::transpose(t, {0, 1});
  EXPECT_EQ(tr.shape(), (Dims{3, 2}));
  EXPECT_THROW(ops::transpose(t, {0, 5}), Error);
}
