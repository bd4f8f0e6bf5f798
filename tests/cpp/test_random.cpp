// Random ops on Philox: closed forms, determinism across thread counts, the default generator,
// rough statistics and errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>
#include <vector>

#include "core/ops/generated/ops_gen.h"
#include "core/tensor/tensor.h"
#include "core/util/philox.h"
#include "core/util/thread_pool.h"

using namespace heron;
namespace o = heron::ops;

namespace {

std::vector<double> vals(const Tensor& t) {
  Tensor c = t.to(DType::Float64).contiguous();
  return std::vector<double>(c.data<double>(), c.data<double>() + c.numel());
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

template <typename F>
ErrorCode code_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  return ErrorCode::Ok;
}

o::RandAttrs rand_attrs(Dims size, DType dt, std::optional<int64_t> seed, double low = 0.0, double high = 1.0) {
  o::RandAttrs a;
  a.size = size;
  a.dtype = dt;
  a.seed = seed;
  a.low = low;
  a.high = high;
  return a;
}

// Restores the thread count at the end of a test.
struct ThreadGuard {
  int saved = get_num_threads();
  ~ThreadGuard() { set_num_threads(saved); }
};

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}
double variance(const std::vector<double>& v) {
  double m = mean(v), s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return s / static_cast<double>(v.size());
}

}  // namespace

TEST(Random, PhiloxKnownAnswers) {
  // Known-answer vectors of Philox4x32-10 (Salmon et al., SC'11; the Random123 distribution).
  using W = std::array<uint32_t, 4>;
  EXPECT_EQ(philox4x32({0, 0, 0, 0}, {0, 0}), (W{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}));
  EXPECT_EQ(philox4x32({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu}),
            (W{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}));
  EXPECT_EQ(philox4x32({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u}),
            (W{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}));
}

TEST(Random, PhiloxClosedForm) {
  Tensor r = o::rand(rand_attrs(Dims{10}, DType::Float32, 1234));
  for (int64_t i = 0; i < 10; ++i) {
    auto w = philox_block(1234, static_cast<uint64_t>(i / 4));
    EXPECT_EQ(r.data<float>()[i], u32_to_unit_float(w[i % 4])) << i;
  }
  Tensor d = o::rand(rand_attrs(Dims{5}, DType::Float64, 99));
  for (int64_t i = 0; i < 5; ++i) {
    auto w = philox_block(99, static_cast<uint64_t>(i / 2));
    uint64_t x = (static_cast<uint64_t>(w[2 * (i % 2)]) << 32) | w[2 * (i % 2) + 1];
    EXPECT_EQ(d.data<double>()[i], u64_to_unit_double(x)) << i;
  }
  o::RandintAttrs ri;
  ri.low = -5;
  ri.high = 7;
  ri.size = Dims{6};
  ri.seed = 3;
  Tensor k = o::randint(ri);
  EXPECT_EQ(k.dtype(), DType::Int64);
  for (int64_t i = 0; i < 6; ++i) {
    auto w = philox_block(3, static_cast<uint64_t>(i / 2));
    uint64_t x = (static_cast<uint64_t>(w[2 * (i % 2)]) << 32) | w[2 * (i % 2) + 1];
    EXPECT_EQ(k.data<int64_t>()[i], -5 + static_cast<int64_t>(x % 12)) << i;
  }
}

TEST(Random, SeedDeterminism) {
  for (DType dt : {DType::Float32, DType::Float64, DType::Float16, DType::BFloat16}) {
    Tensor a = o::rand(rand_attrs(Dims{3, 7}, dt, 42));
    Tensor b = o::rand(rand_attrs(Dims{3, 7}, dt, 42));
    Tensor c = o::rand(rand_attrs(Dims{3, 7}, dt, 43));
    EXPECT_TRUE(same_bytes(a, b)) << dtype_name(dt);
    EXPECT_FALSE(same_bytes(a, c)) << dtype_name(dt);
  }
  o::RandnAttrs n;
  n.size = Dims{9};
  n.seed = 7;
  EXPECT_TRUE(same_bytes(o::randn(n), o::randn(n)));
  o::RandpermAttrs p;
  p.n = 50;
  p.seed = 7;
  EXPECT_TRUE(same_bytes(o::randperm(p), o::randperm(p)));
}

TEST(Random, ThreadCountIndependent) {
  ThreadGuard guard;
  const int64_t n = 300001;  // large enough to be split over the pool, not a multiple of a block
  auto run_all = [&] {
    std::vector<Tensor> out;
    for (DType dt : {DType::Float32, DType::Float64, DType::Float16, DType::BFloat16})
      out.push_back(o::rand(rand_attrs(Dims{n}, dt, 11, -2.0, 3.0)));
    o::RandnAttrs rn;
    rn.size = Dims{n};
    rn.seed = 12;
    out.push_back(o::randn(rn));
    o::RandintAttrs ri;
    ri.high = 1000;
    ri.size = Dims{n};
    ri.seed = 13;
    out.push_back(o::randint(ri));
    o::FullAttrs fa;
    fa.size = Dims{n};
    fa.fill_value = Scalar(0.3);
    out.push_back(o::bernoulli(o::full(fa), {int64_t{14}}));
    // The default generator, reseeded.
    Generator::default_generator().manual_seed(77);
    out.push_back(o::rand(rand_attrs(Dims{n}, DType::Float32, std::nullopt)));
    return out;
  };
  set_num_threads(1);
  auto one = run_all();
  for (int t : {2, 3, 4}) {
    set_num_threads(t);
    auto many = run_all();
    ASSERT_EQ(one.size(), many.size());
    for (size_t i = 0; i < one.size(); ++i) EXPECT_TRUE(same_bytes(one[i], many[i])) << "op " << i << ", threads " << t;
  }
}

TEST(Random, DefaultGenerator) {
  Generator& g = Generator::default_generator();
  g.manual_seed(5);
  Tensor a = o::rand(rand_attrs(Dims{8}, DType::Float32, std::nullopt));
  Tensor b = o::rand(rand_attrs(Dims{8}, DType::Float32, std::nullopt));
  EXPECT_FALSE(same_bytes(a, b));  // consecutive calls draw disjoint streams
  g.manual_seed(5);
  EXPECT_TRUE(same_bytes(a, o::rand(rand_attrs(Dims{8}, DType::Float32, std::nullopt))));
  // A seed attribute leaves the default generator alone.
  g.manual_seed(5);
  o::rand(rand_attrs(Dims{8}, DType::Float32, 123));
  EXPECT_TRUE(same_bytes(a, o::rand(rand_attrs(Dims{8}, DType::Float32, std::nullopt))));
  // Without a seed, (seed, 0) is the stream of manual_seed(seed).
  g.manual_seed(123);
  EXPECT_TRUE(same_bytes(o::rand(rand_attrs(Dims{8}, DType::Float32, std::nullopt)),
                         o::rand(rand_attrs(Dims{8}, DType::Float32, 123))));
}

TEST(Random, Statistics) {
  const int64_t n = 200000;
  auto u = vals(o::rand(rand_attrs(Dims{n}, DType::Float32, 1)));
  EXPECT_NEAR(mean(u), 0.5, 0.01);
  EXPECT_NEAR(variance(u), 1.0 / 12, 0.005);
  auto r = vals(o::rand(rand_attrs(Dims{n}, DType::Float64, 2, 2.0, 5.0)));
  EXPECT_GE(*std::min_element(r.begin(), r.end()), 2.0);
  EXPECT_LT(*std::max_element(r.begin(), r.end()), 5.0);
  for (DType dt : {DType::Float16, DType::BFloat16}) {
    auto h = vals(o::rand(rand_attrs(Dims{n}, dt, 3)));
    EXPECT_LT(*std::max_element(h.begin(), h.end()), 1.0) << dtype_name(dt);
    EXPECT_GE(*std::min_element(h.begin(), h.end()), 0.0) << dtype_name(dt);
    EXPECT_NEAR(mean(h), 0.5, 0.02) << dtype_name(dt);
  }
  o::RandnAttrs rn;
  rn.size = Dims{n};
  rn.mean = 3.0;
  rn.std = 2.0;
  rn.seed = 4;
  auto z = vals(o::randn(rn));
  EXPECT_NEAR(mean(z), 3.0, 0.03);
  EXPECT_NEAR(std::sqrt(variance(z)), 2.0, 0.03);
  o::RandintAttrs ri;
  ri.low = -3;
  ri.high = 4;
  ri.size = Dims{n};
  ri.dtype = DType::Int8;
  ri.seed = 5;
  auto k = vals(o::randint(ri));
  std::set<double> seen(k.begin(), k.end());
  EXPECT_EQ(seen, (std::set<double>{-3, -2, -1, 0, 1, 2, 3}));
  o::FullAttrs fa;
  fa.size = Dims{n};
  fa.fill_value = Scalar(0.25);
  auto b = vals(o::bernoulli(o::full(fa), {int64_t{6}}));
  EXPECT_NEAR(mean(b), 0.25, 0.01);
  fa.fill_value = Scalar(int64_t{0});
  fa.dtype = DType::Float64;
  auto b0 = vals(o::bernoulli(o::full(fa), {int64_t{6}}));
  EXPECT_EQ(*std::max_element(b0.begin(), b0.end()), 0.0);
  fa.fill_value = Scalar(int64_t{1});
  auto b1 = vals(o::bernoulli(o::full(fa), {int64_t{6}}));
  EXPECT_EQ(*std::min_element(b1.begin(), b1.end()), 1.0);
  o::RandpermAttrs p;
  p.n = 1000;
  p.seed = 8;
  auto perm = vals(o::randperm(p));
  std::vector<double> sorted = perm;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(sorted[i], i);
  EXPECT_NE(perm, sorted);
  p.n = 0;
  EXPECT_EQ(o::randperm(p).numel(), 0);
  p.n = 100;
  p.dtype = DType::Int8;
  EXPECT_EQ(o::randperm(p).dtype(), DType::Int8);
}

TEST(Random, Errors) {
  EXPECT_EQ(code_of([] { o::rand(rand_attrs(Dims{2}, DType::Int32, 1)); }), ErrorCode::TypeError);
  EXPECT_EQ(code_of([] { o::rand(rand_attrs(Dims{2}, DType::Float32, 1, 2.0, 1.0)); }), ErrorCode::InvalidArgument);
  EXPECT_EQ(code_of([] { o::rand(rand_attrs(Dims{-2}, DType::Float32, 1)); }), ErrorCode::InvalidArgument);
  o::RandnAttrs rn;
  rn.size = Dims{2};
  rn.std = -1.0;
  EXPECT_EQ(code_of([&] { o::randn(rn); }), ErrorCode::InvalidArgument);
  o::RandintAttrs ri;
  ri.low = 3;
  ri.high = 3;
  ri.size = Dims{2};
  EXPECT_EQ(code_of([&] { o::randint(ri); }), ErrorCode::InvalidArgument);
  ri.low = 0;
  ri.high = 1000;
  ri.dtype = DType::Int8;
  EXPECT_EQ(code_of([&] { o::randint(ri); }), ErrorCode::InvalidArgument);
  o::FullAttrs fa;
  fa.size = Dims{3};
  fa.fill_value = Scalar(1.5);
  EXPECT_EQ(code_of([&] { o::bernoulli(o::full(fa)); }), ErrorCode::InvalidArgument);
  fa.fill_value = Scalar(NAN);
  EXPECT_EQ(code_of([&] { o::bernoulli(o::full(fa)); }), ErrorCode::InvalidArgument);
  fa.fill_value = Scalar(int64_t{1});
  EXPECT_EQ(code_of([&] { o::bernoulli(o::full(fa)); }), ErrorCode::TypeError);  // int64 probabilities
  o::RandpermAttrs p;
  p.n = -1;
  EXPECT_EQ(code_of([&] { o::randperm(p); }), ErrorCode::InvalidArgument);
  p.n = 200;
  p.dtype = DType::Int8;
  EXPECT_EQ(code_of([&] { o::randperm(p); }), ErrorCode::InvalidArgument);
  p.n = 3;
  p.dtype = DType::Float32;
  EXPECT_EQ(code_of([&] { o::randperm(p); }), ErrorCode::TypeError);
}
