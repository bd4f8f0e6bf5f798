#include <gtest/gtest.h>

#include "core/ops/generated/ops_gen.h"
#include "core/tensor/tensor.h"

using namespace heron;

namespace {
Tensor arange_f32(int64_t n) {
  Tensor t = Tensor::empty(Dims{n}, DType::Float32, host_device());
  for (int64_t i = 0; i < n; ++i) t.data<float>()[i] = static_cast<float>(i);
  return t;
}
}  // namespace

TEST(Dims, InlineAndHeap) {
  Dims d{1, 2, 3};
  EXPECT_EQ(d.size(), 3u);
  EXPECT_EQ(d.numel(), 6);
  for (int i = 0; i < 10; ++i) d.push_back(1);
  EXPECT_EQ(d.size(), 13u);
  Dims e = d;
  EXPECT_EQ(e, d);
  d.erase(0);
  EXPECT_EQ(d[0], 2);
  d.insert(0, 7);
  EXPECT_EQ(d[0], 7);
}

TEST(DType, Promotion) {
  EXPECT_EQ(promote_types(DType::Int32, DType::Float16), DType::Float16);
  EXPECT_EQ(promote_types(DType::UInt8, DType::Int8), DType::Int32);
  EXPECT_EQ(promote_types(DType::Bool, DType::UInt8), DType::UInt8);
  EXPECT_EQ(promote_types(DType::Float16, DType::BFloat16), DType::Float32);
  EXPECT_EQ(promote_types(DType::Int64, DType::Float32), DType::Float32);
}

TEST(DType, HalfRoundTrip) {
  for (float f : {0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f, 0.1f}) {
    float back = Half(f);
    EXPECT_NEAR(back, f, std::abs(f) * 1e-3 + 1e-7) << f;
  }
  EXPECT_TRUE(std::isinf(static_cast<float>(Half(1e6f))));
  EXPECT_TRUE(std::isnan(static_cast<float>(Half(NAN))));
  EXPECT_EQ(static_cast<float>(BFloat16(1.0f)), 1.0f);
  EXPECT_EQ(static_cast<float>(BFloat16(3.0f)), 3.0f);
}

TEST(Tensor, ViewsShareStorage) {
  Tensor t = arange_f32(24).reshape(Dims{2, 3, 4});
  Tensor p = t.permute(Dims{2, 0, 1});
  EXPECT_TRUE(p.shares_storage(t));
  EXPECT_FALSE(p.is_contiguous());
  EXPECT_EQ(p.shape(), (Dims{4, 2, 3}));
  Tensor s = t.slice(2, 3, INT64_MIN, -2);  // [3::-2] -> indices 3, 1
  EXPECT_EQ(s.shape(), (Dims{2, 3, 2}));
  EXPECT_EQ(*static_cast<float*>(s.raw_data()), 3.0f);
  Tensor c = p.contiguous();
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_FALSE(c.shares_storage(t));
  // c[i][j][k] = t[j][k][i]
  EXPECT_EQ(c.data<float>()[1 * 6 + 1 * 3 + 2], t.data<float>()[1 * 12 + 2 * 4 + 1]);
}

TEST(Tensor, ExpandAndBroadcast) {
  Tensor t = arange_f32(3).reshape(Dims{3, 1});
  Tensor e = t.expand(Dims{2, 3, 4});
  EXPECT_EQ(e.strides(), (Dims{0, 1, 0}));
  EXPECT_THROW(t.expand(Dims{2, 4}), Error);
  EXPECT_EQ(broadcast_shapes(Dims{3, 1}, Dims{4}), (Dims{3, 4}));
  EXPECT_THROW(broadcast_shapes(Dims{3}, Dims{4}), Error);
}

TEST(Tensor, ViewVsReshape) {
  Tensor t = arange_f32(6).reshape(Dims{2, 3}).transpose(0, 1);
  EXPECT_THROW(t.view(Dims{6}), Error);
  Tensor r = t.reshape(Dims{6});
  EXPECT_FALSE(r.shares_storage(t));
  EXPECT_EQ(r.data<float>()[1], 3.0f);
}

TEST(Tensor, AsStridedBounds) {
  Tensor t = arange_f32(6);
  EXPECT_NO_THROW(t.as_strided(Dims{2, 2}, Dims{1, 2}, 1));
  EXPECT_THROW(t.as_strided(Dims{2, 4}, Dims{4, 1}, 0), Error);
}

TEST(Tensor, CastAndCopy) {
  Tensor t = arange_f32(4);
  Tensor i = t.to(DType::Int32);
  EXPECT_EQ(i.data<int32_t>()[3], 3);
  Tensor h = t.to(DType::Float16);
  EXPECT_EQ(static_cast<float>(h.data<Half>()[2]), 2.0f);
  Tensor z = Tensor::empty(Dims{2, 4}, DType::Float64, host_device());
  z.copy_from(t);
  EXPECT_EQ(z.data<double>()[7], 3.0);
}

TEST(ResultType, PyTorchTiers) {
  Tensor i32 = Tensor::empty(Dims{2}, DType::Int32, host_device());
  Tensor f16 = Tensor::empty(Dims{2}, DType::Float16, host_device());
  Tensor f64s = Tensor::empty(Dims{}, DType::Float64, host_device());
  Tensor wf = Tensor::empty(Dims{}, DType::Float64, host_device());
  wf.set_wrapped_number(true);
  Tensor wi = Tensor::empty(Dims{}, DType::Int64, host_device());
  wi.set_wrapped_number(true);
  EXPECT_EQ(result_type(i32, wf), DType::Float32);
  EXPECT_EQ(result_type(f16, wf), DType::Float16);
  EXPECT_EQ(result_type(i32, wi), DType::Int32);
  EXPECT_EQ(result_type(f16, f64s), DType::Float16);
  EXPECT_EQ(result_type(i32, f64s), DType::Float64);
}
