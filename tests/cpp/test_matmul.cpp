// matmul: numpy shape semantics, every dtype against a double reference, strided / transposed /
// broadcast operands (passed to BLAS in place or packed), tiny and BLAS-sized products, errors.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "core/ops/generated/ops_gen.h"
#include "core/tensor/tensor.h"
#include "core/util/thread_pool.h"

using namespace heron;
namespace O = heron::ops;

namespace {

Tensor make(const Dims& shape, DType dt, const std::vector<double>& v) {
  Tensor t = Tensor::empty(shape, dt, host_device());
  visit_dtype(dt, [&](auto z) {
    using T = decltype(z);
    T* p = t.data<T>();
    for (size_t i = 0; i < v.size(); ++i) p[i] = convert<T>(v[i]);
  });
  return t;
}

Tensor random(const Dims& shape, DType dt, uint32_t seed) {
  std::mt19937 g(seed);
  std::uniform_int_distribution<int> u(-4, 4);
  std::uniform_real_distribution<double> f(-1, 1);
  std::vector<double> v(static_cast<size_t>(shape.numel()));
  for (auto& x : v) x = is_floating(dt) ? f(g) : u(g);
  if (dt == DType::UInt8)
    for (auto& x : v) x = std::fabs(x);
  return make(shape, dt, v);
}

double at(const Tensor& t, const Dims& idx) {
  int64_t off = 0;
  for (size_t d = 0; d < idx.size(); ++d) off += idx[d] * t.strides()[d];
  return visit_dtype(t.dtype(), [&](auto z) {
    using T = decltype(z);
    return static_cast<double>(static_cast<opmath_t<T>>(t.data<T>()[off]));
  });
}

// Reference for a [..., m, k] @ [..., k, n] (same batch dims), in double.
void check_matmul(const Tensor& a, const Tensor& b, double tol) {
  Tensor c = O::matmul(a, b);
  const int64_t nd = a.dim();
  const int64_t m = a.shape()[nd - 2], k = a.shape()[nd - 1], n = b.shape()[nd - 1];
  ASSERT_EQ(c.dim(), nd);
  int64_t nb = c.numel() / std::max<int64_t>(m * n, 1);
  for (int64_t t = 0; t < nb; ++t) {
    Dims bi(nd - 2);
    int64_t rem = t;
    for (int64_t d = nd - 3; d >= 0; --d) { bi[d] = rem % c.shape()[d]; rem /= c.shape()[d]; }
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t p = 0; p < k; ++p) {
          Dims ia = bi, ib = bi;
          ia.push_back(i), ia.push_back(p);
          ib.push_back(p), ib.push_back(j);
          s += at(a, ia) * at(b, ib);
        }
        if (!is_floating(c.dtype())) s = at(make(Dims{}, c.dtype(), {s}), Dims{});  // integers wrap
        Dims ic = bi;
        ic.push_back(i), ic.push_back(j);
        ASSERT_NEAR(at(c, ic), s, tol * (1 + std::fabs(s))) << "batch " << t << " at " << i << "," << j;
      }
  }
}

ErrorCode code_of(const std::function<void()>& f, std::string* msg = nullptr) {
  try {
    f();
  } catch (const Error& e) {
    if (msg) *msg = e.what();
    return e.code();
  }
  return ErrorCode::Ok;
}

}  // namespace

TEST(Matmul, ShapesNumpySemantics) {
  Tensor v3 = random(Dims{3}, DType::Float32, 1);
  Tensor m34 = random(Dims{3, 4}, DType::Float32, 2);
  Tensor m23 = random(Dims{2, 3}, DType::Float32, 3);
  EXPECT_EQ(O::matmul(v3, v3).shape(), Dims{});
  EXPECT_EQ(O::matmul(v3, m34).shape(), Dims{4});
  EXPECT_EQ(O::matmul(m23, v3).shape(), Dims{2});
  EXPECT_EQ(O::matmul(m23, m34).shape(), (Dims{2, 4}));
  Tensor b534 = random(Dims{5, 3, 4}, DType::Float32, 4);
  EXPECT_EQ(O::matmul(m23, b534).shape(), (Dims{5, 2, 4}));
  EXPECT_EQ(O::matmul(v3, b534).shape(), (Dims{5, 4}));
  Tensor b7123 = random(Dims{7, 1, 2, 3}, DType::Float32, 5);
  EXPECT_EQ(O::matmul(b7123, b534).shape(), (Dims{7, 5, 2, 4}));
  EXPECT_EQ(O::matmul(b534.transpose(1, 2), v3).shape(), (Dims{5, 4}));
  // dot product value
  Tensor x = make(Dims{3}, DType::Float64, {1, 2, 3});
  EXPECT_EQ(at(O::matmul(x, x), Dims{}), 14.0);
}

TEST(Matmul, Errors) {
  std::string msg;
  EXPECT_EQ(code_of([] { O::matmul(random(Dims{2, 3}, DType::Float32, 1), random(Dims{4, 5}, DType::Float32, 2)); }, &msg),
            ErrorCode::InvalidArgument);
  EXPECT_EQ(msg, "matmul: shapes [2, 3] and [4, 5] are not aligned (3 != 4)");
  EXPECT_EQ(code_of([] { O::matmul(random(Dims{3}, DType::Float32, 1), random(Dims{4}, DType::Float32, 2)); }), ErrorCode::InvalidArgument);
  EXPECT_EQ(code_of([] { O::matmul(random(Dims{2, 2, 3}, DType::Float32, 1), random(Dims{3, 3, 1}, DType::Float32, 2)); }, &msg),
            ErrorCode::InvalidArgument);
  EXPECT_NE(msg.find("[2, 2, 3]"), std::string::npos);
  EXPECT_EQ(code_of([] { O::matmul(make(Dims{}, DType::Float32, {1}), random(Dims{3}, DType::Float32, 2)); }), ErrorCode::InvalidArgument);
  EXPECT_EQ(code_of([] { O::matmul(make(Dims{2, 2}, DType::Bool, {1, 0, 0, 1}), make(Dims{2, 2}, DType::Bool, {1, 0, 0, 1})); }),
            ErrorCode::TypeError);
}

TEST(Matmul, AllDtypesAgainstReference) {
  for (DType dt : {DType::Float32, DType::Float64, DType::Float16, DType::BFloat16, DType::Int8, DType::UInt8, DType::Int32, DType::Int64}) {
    double tol = dt == DType::BFloat16 ? 3e-2 : dt == DType::Float16 ? 3e-3 : dt == DType::Float32 ? 1e-5 : 1e-12;
    for (auto [m, k, n] : {std::tuple<int64_t, int64_t, int64_t>{3, 4, 5}, {1, 7, 9}, {9, 7, 1}, {1, 6, 1}, {40, 50, 30}, {70, 3, 80}}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + std::to_string(m) + "x" + std::to_string(k) + "x" + std::to_string(n));
      Tensor a = random(Dims{m, k}, dt, 10), b = random(Dims{k, n}, dt, 11);
      if (!is_floating(dt)) tol = 0;
      check_matmul(a, b, tol);
      // transposed operands (column-major in memory)
      Tensor at_ = random(Dims{k, m}, dt, 12).transpose(0, 1), bt = random(Dims{n, k}, dt, 13).transpose(0, 1);
      check_matmul(at_, bt, tol);
      // sliced operands (neither row- nor column-contiguous)
      Tensor as = random(Dims{m, 2 * k}, dt, 14).slice(1, 0, 2 * k, 2), bs = random(Dims{2 * k, n}, dt, 15).slice(0, 1, 2 * k, 2);
      check_matmul(as, bs, tol);
    }
  }
}

TEST(Matmul, BatchedAndBroadcast) {
  for (DType dt : {DType::Float32, DType::Float64, DType::Float16, DType::Int32}) {
    double tol = dt == DType::Float16 ? 3e-3 : dt == DType::Float32 ? 1e-5 : 1e-12;
    Tensor a = random(Dims{4, 6, 5}, dt, 20);
    Tensor b = random(Dims{5, 7}, dt, 21).expand(Dims{4, 5, 7});
    check_matmul(a, b, tol);
    check_matmul(a.transpose(1, 2).transpose(1, 2), random(Dims{4, 7, 5}, dt, 22).transpose(1, 2), tol);
    Tensor big_a = random(Dims{3, 80, 90}, dt, 23), big_b = random(Dims{3, 90, 70}, dt, 24);
    check_matmul(big_a, big_b, tol * 10);
    check_matmul(big_a, big_b.slice(0, 2, INT64_MIN, -1), tol * 10);
  }
}

TEST(Matmul, ZeroSizes) {
  Tensor c = O::matmul(random(Dims{3, 0}, DType::Float32, 1), random(Dims{0, 4}, DType::Float32, 2));
  EXPECT_EQ(c.shape(), (Dims{3, 4}));
  for (int64_t i = 0; i < 12; ++i) EXPECT_EQ(c.data<float>()[i], 0.0f);
  Tensor ci = O::matmul(random(Dims{2, 0}, DType::Int64, 1), random(Dims{0, 2}, DType::Int64, 2));
  for (int64_t i = 0; i < 4; ++i) EXPECT_EQ(ci.data<int64_t>()[i], 0);
  EXPECT_EQ(O::matmul(random(Dims{0, 3}, DType::Float32, 1), random(Dims{3, 4}, DType::Float32, 2)).shape(), (Dims{0, 4}));
  EXPECT_EQ(O::matmul(random(Dims{0, 2, 3}, DType::Float32, 1), random(Dims{3, 4}, DType::Float32, 2)).shape(), (Dims{0, 2, 4}));
}

TEST(Matmul, MixedDtypesPromote) {
  Tensor c = O::matmul(random(Dims{2, 3}, DType::Int32, 1), random(Dims{3, 2}, DType::Float64, 2));
  EXPECT_EQ(c.dtype(), DType::Float64);
}

TEST(Matmul, ThreadCountDoesNotChangeResults) {
  Tensor a = random(Dims{200, 300}, DType::Float64, 1), b = random(Dims{300, 100}, DType::Float64, 2);
  int saved = get_num_threads();
  set_num_threads(1);
  Tensor c1 = O::matmul(a, b);
  set_num_threads(2);
  Tensor c2 = O::matmul(a, b);
  set_num_threads(saved);
  for (int64_t i = 0; i < c1.numel(); ++i) ASSERT_NEAR(c1.data<double>()[i], c2.data<double>()[i], 1e-12);
}
