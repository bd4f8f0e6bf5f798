// Reductions, scans, softmax, sort and topk: closed forms, a reference reducer over random data
// (every axis combination, keepdim, permuted / sliced inputs), dtype rules and errors.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <vector>

#include "core/ops/generated/ops_gen.h"
#include "core/tensor/tensor.h"
#include "core/util/thread_pool.h"

using namespace heron;
namespace O = heron::ops;

namespace {

const double kNan = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

Tensor make(const Dims& shape, DType dt, const std::vector<double>& v) {
  Tensor t = Tensor::empty(shape, dt, host_device());
  EXPECT_EQ(static_cast<int64_t>(v.size()), t.numel());
  visit_dtype(dt, [&](auto z) {
    using T = decltype(z);
    T* p = t.data<T>();
    for (size_t i = 0; i < v.size(); ++i) p[i] = convert<T>(v[i]);
  });
  return t;
}
Tensor vec1(DType dt, const std::vector<double>& v) { return make(Dims{static_cast<int64_t>(v.size())}, dt, v); }
Tensor f32(const std::vector<double>& v) { return vec1(DType::Float32, v); }

Tensor random(const Dims& shape, DType dt, uint32_t seed, double lo = -3, double hi = 3) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> v(static_cast<size_t>(shape.numel()));
  for (auto& x : v) x = is_floating(dt) ? u(g) : std::floor(u(g));
  if (dt == DType::Bool)
    for (auto& x : v) x = x > 0 ? 1 : 0;
  return make(shape, dt, v);
}

// Values in logical (row-major) order, whatever the strides.
std::vector<double> vals(const Tensor& t) {
  std::vector<double> out(static_cast<size_t>(t.numel()));
  const int64_t nd = t.dim();
  visit_dtype(t.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* p = t.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      int64_t rem = i, off = 0;
      for (int64_t d = nd - 1; d >= 0; --d) {
        off += (rem % t.shape()[d]) * t.strides()[d];
        rem /= t.shape()[d];
      }
      out[i] = static_cast<double>(static_cast<opmath_t<T>>(p[off]));
    }
  });
  return out;
}

void expect_vals(const Tensor& t, const std::vector<double>& want, double rtol = 0.0, double atol = 0.0) {
  auto got = vals(t);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    if (std::isnan(want[i])) EXPECT_TRUE(std::isnan(got[i])) << "at " << i << " got " << got[i];
    else if (std::isinf(want[i])) EXPECT_EQ(got[i], want[i]) << "at " << i;
    else EXPECT_NEAR(got[i], want[i], atol + rtol * std::fabs(want[i])) << "at " << i;
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

// Reference reduction in double over the dims in mask: f(acc, value) from init.
std::vector<double> ref_reduce(const Tensor& x, const std::vector<bool>& mask, double init,
                               const std::function<double(double, double)>& f, Dims* out_shape = nullptr) {
  auto v = vals(x);
  const int64_t nd = x.dim();
  Dims osh;
  for (int64_t d = 0; d < nd; ++d)
    if (!mask[d]) osh.push_back(x.shape()[d]);
  std::vector<double> out(static_cast<size_t>(osh.numel()), init);
  for (int64_t i = 0; i < x.numel(); ++i) {
    int64_t rem = i, o = 0, mul = 1;
    for (int64_t d = nd - 1; d >= 0; --d) {
      int64_t id = rem % x.shape()[d];
      rem /= x.shape()[d];
      if (!mask[d]) { o += id * mul; mul *= x.shape()[d]; }
    }
    out[o] = f(out[o], v[i]);
  }
  if (out_shape) *out_shape = osh;
  return out;
}

Dims mask_dims(const std::vector<bool>& m) {
  Dims d;
  for (size_t i = 0; i < m.size(); ++i)
    if (m[i]) d.push_back(static_cast<int64_t>(i));
  return d;
}

}  // namespace

// ------------------------------------------------------------------ sum / mean / prod
TEST(Reduce, SumClosedForms) {
  Tensor x = make(Dims{2, 3}, DType::Float32, {0, 1, 2, 3, 4, 5});
  expect_vals(O::sum(x, {}), {15});
  expect_vals(O::sum(x, {Dims{0}}), {3, 5, 7});
  expect_vals(O::sum(x, {Dims{1}}), {3, 12});
  expect_vals(O::sum(x, {Dims{-1}, true}), {3, 12});
  EXPECT_EQ(O::sum(x, {Dims{-1}, true}).shape(), (Dims{2, 1}));
  EXPECT_EQ(O::sum(x, {Dims{0, 1}}).shape(), Dims{});
  EXPECT_EQ(O::sum(x, {std::nullopt, true}).shape(), (Dims{1, 1}));
  expect_vals(O::sum(x.transpose(0, 1), {Dims{1}}), {3, 5, 7});
  EXPECT_EQ(O::sum(x, {}).dtype(), DType::Float32);
}

TEST(Reduce, SumDtypes) {
  Tensor b = vec1(DType::Bool, {1, 0, 1, 1});
  Tensor s = O::sum(b, {});
  EXPECT_EQ(s.dtype(), DType::Int64);
  expect_vals(s, {3});
  Tensor i8 = vec1(DType::Int8, {100, 100, 100});
  EXPECT_EQ(O::sum(i8, {}).dtype(), DType::Int64);
  expect_vals(O::sum(i8, {}), {300});
  // dtype= casts first: int8 wraps like two's complement.
  Tensor w = O::sum(i8, {std::nullopt, false, DType::Int8});
  EXPECT_EQ(w.dtype(), DType::Int8);
  expect_vals(w, {44});
  Tensor f = O::sum(vec1(DType::Int32, {1, 2}), {std::nullopt, false, DType::Float64});
  EXPECT_EQ(f.dtype(), DType::Float64);
  expect_vals(f, {3});
  Tensor h = O::sum(vec1(DType::Float16, {1, 2, 3.5}), {});
  EXPECT_EQ(h.dtype(), DType::Float16);
  expect_vals(h, {6.5});
  expect_vals(O::prod(vec1(DType::Int32, {2, 3, 4}), {}), {24});
  EXPECT_EQ(O::prod(vec1(DType::UInt8, {2, 3}), {}).dtype(), DType::Int64);
  expect_vals(O::prod(vec1(DType::Bool, {1, 1}), {}), {1});
}

TEST(Reduce, EmptyIdentities) {
  Tensor e = Tensor::empty(Dims{0, 3}, DType::Float32, host_device());
  expect_vals(O::sum(e, {Dims{0}}), {0, 0, 0});
  expect_vals(O::prod(e, {Dims{0}}), {1, 1, 1});
  expect_vals(O::mean(e, {Dims{0}}), {kNan, kNan, kNan});
  expect_vals(O::logsumexp(e, {Dims{0}}), {-kInf, -kInf, -kInf});
  expect_vals(O::all(e, {}), {1});
  expect_vals(O::any(e, {}), {0});
  EXPECT_EQ(O::sum(e, {Dims{1}}).shape(), Dims{0});
  EXPECT_EQ(O::amax(e, {Dims{1}}).shape(), Dims{0});  // nothing reduced over an empty dim
  EXPECT_EQ(code_of([&] { O::amax(e, {Dims{0}}); }), ErrorCode::InvalidArgument);
  EXPECT_EQ(code_of([&] { O::amin(e, {}); }), ErrorCode::InvalidArgument);
  EXPECT_EQ(code_of([&] { O::argmax(e, {}); }), ErrorCode::InvalidArgument);
  EXPECT_EQ(code_of([&] { O::argmin(e, {0}); }), ErrorCode::InvalidArgument);
}

TEST(Reduce, PairwiseSumIsAccurate) {
  // 20M ones: a naive float32 accumulator stops at 2^24.
  const int64_t n = 20000000;
  Tensor x = Tensor::empty(Dims{n}, DType::Float32, host_device());
  std::fill_n(x.data<float>(), n, 1.0f);
  EXPECT_EQ(vals(O::sum(x, {}))[0], static_cast<double>(n));
  EXPECT_EQ(vals(O::mean(x, {}))[0], 1.0);
  // The same along an outer dim (rows layout) and a middle dim.
  Tensor y = x.view(Dims{n / 4, 4});
  expect_vals(O::sum(y, {Dims{0}}), {n / 4.0, n / 4.0, n / 4.0, n / 4.0});
  Tensor z = x.view(Dims{2, n / 8, 4});
  expect_vals(O::sum(z, {Dims{1}}), std::vector<double>(8, n / 8.0));
  std::fill_n(x.data<float>(), n, 0.1f);
  EXPECT_NEAR(vals(O::sum(x, {}))[0], n * static_cast<double>(0.1f), n * 1e-7);
}

TEST(Reduce, MeanRules) {
  std::string msg;
  EXPECT_EQ(code_of([] { O::mean(vec1(DType::Int64, {1, 2}), {}); }, &msg), ErrorCode::TypeError);
  EXPECT_NE(msg.find("mean(): could not infer output dtype"), std::string::npos) << msg;
  EXPECT_EQ(code_of([] { O::mean(vec1(DType::Int64, {1, 2}), {std::nullopt, false, DType::Int32}); }), ErrorCode::TypeError);
  Tensor m = O::mean(vec1(DType::Int64, {1, 2}), {std::nullopt, false, DType::Float64});
  EXPECT_EQ(m.dtype(), DType::Float64);
  expect_vals(m, {1.5});
  expect_vals(O::mean(make(Dims{2, 2}, DType::BFloat16, {1, 2, 3, 5}), {Dims{0}}), {2, 3.5});
}

// Random data against the double reference: all axis subsets of a 4-d tensor, contiguous,
// permuted and sliced, for sum / mean / amax / amin / prod / all / any.
TEST(Reduce, RandomAxesLayouts) {
  Tensor base = random(Dims{3, 4, 5, 6}, DType::Float64, 1);
  std::vector<Tensor> inputs = {base, base.permute(Dims{2, 0, 3, 1}), base.slice(3, 0, 6, 2), base.slice(1, 3, INT64_MIN, -1)};
  for (const Tensor& x : inputs) {
    for (int bits = 0; bits < 16; ++bits) {
      std::vector<bool> mask(4);
      for (int d = 0; d < 4; ++d) mask[d] = (bits >> d) & 1;
      if (bits == 0) continue;  // an empty dim list reduces everything (PyTorch)
      Dims dims = mask_dims(mask);
      Dims osh;
      auto s = ref_reduce(x, mask, 0, [](double a, double v) { return a + v; }, &osh);
      Tensor got = O::sum(x, {dims});
      EXPECT_EQ(got.shape(), osh);
      expect_vals(got, s, 1e-12, 1e-12);
      int64_t cnt = x.numel() / std::max<int64_t>(osh.numel(), 1);
      std::vector<double> mean = s;
      for (auto& v : mean) v /= cnt;
      expect_vals(O::mean(x, {dims, true}), mean, 1e-12, 1e-12);
      expect_vals(O::amax(x, {dims}), ref_reduce(x, mask, -kInf, [](double a, double v) { return std::max(a, v); }));
      expect_vals(O::amin(x, {dims}), ref_reduce(x, mask, kInf, [](double a, double v) { return std::min(a, v); }));
      expect_vals(O::prod(x, {dims}), ref_reduce(x, mask, 1, [](double a, double v) { return a * v; }), 1e-10, 1e-300);
      expect_vals(O::any(x, {dims}), ref_reduce(x, mask, 0, [](double a, double v) { return (a != 0 || v != 0) ? 1 : 0; }));
      // var (population) through the reference two-pass
      std::vector<double> sq = ref_reduce(x, mask, 0, [](double a, double v) { return a + v * v; });
      std::vector<double> var(sq.size());
      for (size_t i = 0; i < sq.size(); ++i) var[i] = (sq[i] - s[i] * s[i] / cnt) / (cnt - 1);
      expect_vals(O::var(x, {dims}), var, 1e-9, 1e-12);
    }
  }
}

TEST(Reduce, IntegerAndHalfDtypesAgainstReference) {
  for (DType dt : {DType::Int8, DType::UInt8, DType::Int32, DType::Int64, DType::Float16, DType::BFloat16, DType::Float32, DType::Bool}) {
    Tensor x = random(Dims{5, 7, 9}, dt, 7, dt == DType::UInt8 ? 0 : -4, 4).permute(Dims{1, 2, 0});
    for (int bits = 1; bits < 8; ++bits) {
      std::vector<bool> mask{bool(bits & 1), bool(bits & 2), bool(bits & 4)};
      Dims dims = mask_dims(mask);
      auto s = ref_reduce(x, mask, 0, [](double a, double v) { return a + v; });
      Tensor got = O::sum(x, {dims});
      EXPECT_EQ(got.dtype(), is_floating(dt) ? dt : DType::Int64);
      expect_vals(got, s, dt == DType::BFloat16 ? 1e-2 : dt == DType::Float16 ? 2e-3 : 1e-6, 0.5);
      expect_vals(O::amax(x, {dims}), ref_reduce(x, mask, -kInf, [](double a, double v) { return std::max(a, v); }));
      expect_vals(O::all(x, {dims}), ref_reduce(x, mask, 1, [](double a, double v) { return (a != 0 && v != 0) ? 1 : 0; }));
      expect_vals(O::any(x, {dims}), ref_reduce(x, mask, 0, [](double a, double v) { return (a != 0 || v != 0) ? 1 : 0; }));
    }
  }
}

TEST(Reduce, ParallelBigReductionsMatchSerial) {
  // Results must not depend on the thread count.
  Tensor x = random(Dims{300, 1000}, DType::Float32, 3);
  int saved = get_num_threads();
  std::vector<std::vector<double>> res[2];
  for (int t : {1, 2}) {
    set_num_threads(t);
    auto& r = res[t - 1];
    r.push_back(vals(O::sum(x, {})));
    r.push_back(vals(O::sum(x, {Dims{0}})));
    r.push_back(vals(O::sum(x, {Dims{1}})));
    r.push_back(vals(O::var(x, {Dims{0}})));
    r.push_back(vals(O::logsumexp(x, {})));
    r.push_back(vals(O::argmax(x, {})));
    r.push_back(vals(O::sum(x.transpose(0, 1), {Dims{1}})));
  }
  set_num_threads(saved);
  for (size_t i = 0; i < res[0].size(); ++i) EXPECT_EQ(res[0][i], res[1][i]) << "case " << i;
  auto ref = ref_reduce(x, {true, true}, 0, [](double a, double v) { return a + v; });
  EXPECT_NEAR(res[0][0][0], ref[0], 1e-2);
}

// ------------------------------------------------------------------ amax / argmax
TEST(Reduce, ExtremaNan) {
  Tensor x = f32({1, kNan, 3, 0});
  expect_vals(O::amax(x, {}), {kNan});
  expect_vals(O::amin(x, {}), {kNan});
  expect_vals(O::argmax(x, {}), {1});
  expect_vals(O::argmin(x, {}), {1});
  expect_vals(O::argmax(f32({1, 5, 5, 2}), {}), {1});  // first occurrence
  expect_vals(O::argmin(f32({3, 1, 2, 1}), {}), {1});
  expect_vals(O::amax(vec1(DType::Bool, {0, 1}), {}), {1});
  expect_vals(O::amin(vec1(DType::Bool, {0, 1}), {}), {0});
  expect_vals(O::amax(vec1(DType::Int8, {-128, -5}), {}), {-5});
  EXPECT_EQ(O::amax(vec1(DType::Int8, {1}), {}).dtype(), DType::Int8);
  EXPECT_EQ(code_of([] { O::argmax(vec1(DType::Bool, {0, 1}), {}); }), ErrorCode::TypeError);
}

TEST(Reduce, ArgmaxLayouts) {
  Tensor x = random(Dims{4, 5, 6}, DType::Float32, 11);
  auto v = vals(x);
  for (const Tensor& t : {x, x.permute(Dims{2, 0, 1}), x.slice(2, 5, INT64_MIN, -2)}) {
    auto tv = vals(t);
    // dim none: flat index in logical order
    int64_t best = 0;
    for (size_t i = 1; i < tv.size(); ++i)
      if (tv[i] > tv[best]) best = static_cast<int64_t>(i);
    Tensor a = O::argmax(t, {});
    EXPECT_EQ(a.dtype(), DType::Int64);
    EXPECT_EQ(a.shape(), Dims{});
    expect_vals(a, {static_cast<double>(best)});
    EXPECT_EQ(O::argmax(t, {std::nullopt, true}).shape(), (Dims{1, 1, 1}));
    for (int64_t d = 0; d < 3; ++d) {
      Tensor r = O::argmax(t, {d, true});
      Tensor rn = O::argmin(t, {d});
      Dims sh = t.shape();
      sh[d] = 1;
      EXPECT_EQ(r.shape(), sh);
      // check against a direct scan
      auto rv = vals(r), rnv = vals(rn);
      Dims osh = sh;
      for (int64_t o = 0; o < osh.numel(); ++o) {
        int64_t rem = o;
        Dims idx(3);
        for (int64_t k = 2; k >= 0; --k) { idx[k] = rem % osh[k]; rem /= osh[k]; }
        double bv = -kInf, wv = kInf;
        int64_t bi = -1, wi = -1;
        for (int64_t i = 0; i < t.shape()[d]; ++i) {
          idx[d] = i;
          int64_t flat = (idx[0] * t.shape()[1] + idx[1]) * t.shape()[2] + idx[2];
          if (tv[flat] > bv) { bv = tv[flat]; bi = i; }
          if (tv[flat] < wv) { wv = tv[flat]; wi = i; }
        }
        EXPECT_EQ(rv[o], bi);
        EXPECT_EQ(rnv[o], wi);
      }
    }
  }
}

// ------------------------------------------------------------------ var / std / logsumexp
TEST(Reduce, VarStd) {
  Tensor x = f32({1, 2, 3, 4});
  expect_vals(O::var(x, {}), {5.0 / 3}, 1e-6);
  expect_vals(O::var(x, {std::nullopt, 0.0}), {1.25}, 1e-6);
  expect_vals(O::std(x, {std::nullopt, 0.0}), {std::sqrt(1.25)}, 1e-6);
  expect_vals(O::var(f32({7}), {}), {kNan});  // one element, correction 1
  expect_vals(O::var(f32({7}), {std::nullopt, 0.0}), {0});
  // large offset: float64 must stay exact-ish
  Tensor big = vec1(DType::Float64, {1e9 + 1, 1e9 + 2, 1e9 + 3, 1e9 + 4});
  expect_vals(O::var(big, {}), {5.0 / 3}, 1e-9);
  Tensor bigf = Tensor::empty(Dims{100000}, DType::Float32, host_device());
  for (int64_t i = 0; i < 100000; ++i) bigf.data<float>()[i] = 1000.0f + (i % 2 ? 1.0f : -1.0f);
  expect_vals(O::var(bigf, {std::nullopt, 0.0}), {1.0}, 1e-4);
  expect_vals(O::var(bigf.view(Dims{50000, 2}), {Dims{0}, 0.0}), {0.0, 0.0}, 0, 1e-4);
  expect_vals(O::var(bigf.view(Dims{2, 50000}), {Dims{1}, 0.0}), {1.0, 1.0}, 1e-4);
  EXPECT_EQ(code_of([] { O::var(vec1(DType::Int32, {1, 2}), {}); }), ErrorCode::TypeError);
  EXPECT_EQ(code_of([] { O::std(vec1(DType::Bool, {1, 0}), {}); }), ErrorCode::TypeError);
}

TEST(Reduce, Logsumexp) {
  expect_vals(O::logsumexp(f32({0, 0}), {}), {std::log(2.0)}, 1e-6);
  expect_vals(O::logsumexp(f32({1000, 1000}), {}), {1000 + std::log(2.0)}, 1e-6);
  expect_vals(O::logsumexp(f32({-kInf, -kInf}), {}), {-kInf});
  expect_vals(O::logsumexp(f32({kInf, 1}), {}), {kInf});
  expect_vals(O::logsumexp(f32({kInf, kInf}), {}), {kInf});
  expect_vals(O::logsumexp(f32({kNan, 1}), {}), {kNan});
  expect_vals(O::logsumexp(f32({-kInf, 0}), {}), {0});
  Tensor r = O::logsumexp(vec1(DType::Int64, {0, 0}), {});
  EXPECT_EQ(r.dtype(), DType::Float32);
  Tensor x = random(Dims{6, 7}, DType::Float64, 5);
  auto e = ref_reduce(x, {true, false}, 0, [](double a, double v) { return a + std::exp(v); });
  for (auto& v : e) v = std::log(v);
  expect_vals(O::logsumexp(x, {Dims{0}}), e, 1e-12);
}

TEST(Reduce, ZeroDimInput) {
  Tensor s = make(Dims{}, DType::Float32, {4});
  expect_vals(O::sum(s, {}), {4});
  expect_vals(O::sum(s, {Dims{0}}), {4});
  expect_vals(O::sum(s, {Dims{-1}, true}), {4});
  EXPECT_EQ(O::sum(s, {Dims{0}, true}).shape(), Dims{});
  expect_vals(O::argmax(s, {}), {0});
  expect_vals(O::argmax(s, {0}), {0});
  EXPECT_EQ(code_of([&] { O::sum(s, {Dims{1}}); }), ErrorCode::IndexError);
  EXPECT_EQ(code_of([&] { O::sum(f32({1, 2}), {Dims{0, 0}}); }), ErrorCode::InvalidArgument);
  EXPECT_EQ(code_of([&] { O::sum(f32({1, 2}), {Dims{2}}); }), ErrorCode::IndexError);
}

// ------------------------------------------------------------------ scans
TEST(Scan, CumsumCumprod) {
  Tensor x = make(Dims{2, 3}, DType::Float32, {1, 2, 3, 4, 5, 6});
  expect_vals(O::cumsum(x, {1}), {1, 3, 6, 4, 9, 15});
  expect_vals(O::cumsum(x, {0}), {1, 2, 3, 5, 7, 9});
  expect_vals(O::cumsum(x.transpose(0, 1), {0}), {1, 4, 3, 9, 6, 15});
  expect_vals(O::cumprod(x, {-1}), {1, 2, 6, 4, 20, 120});
  Tensor b = O::cumsum(vec1(DType::Bool, {1, 1, 0, 1}), {0});
  EXPECT_EQ(b.dtype(), DType::Int64);
  expect_vals(b, {1, 2, 2, 3});
  Tensor i = O::cumsum(vec1(DType::Int8, {100, 100}), {0, DType::Int8});
  EXPECT_EQ(i.dtype(), DType::Int8);
  expect_vals(i, {100, -56});
  expect_vals(O::cumsum(make(Dims{}, DType::Float32, {3}), {0}), {3});
  EXPECT_EQ(code_of([&] { O::cumsum(x, {2}); }), ErrorCode::IndexError);
  Tensor big = random(Dims{70, 300}, DType::Float64, 9);
  Tensor c = O::cumsum(big, {0});
  auto bv = vals(big), cv = vals(c);
  std::vector<double> acc(300, 0);
  for (int r = 0; r < 70; ++r)
    for (int j = 0; j < 300; ++j) {
      acc[j] += bv[r * 300 + j];
      EXPECT_NEAR(cv[r * 300 + j], acc[j], 1e-9);
    }
}

// ------------------------------------------------------------------ softmax
TEST(Softmax, Basic) {
  Tensor x = make(Dims{2, 3}, DType::Float32, {1, 2, 3, 1000, 1000, 1000});
  auto s = vals(O::softmax(x, {1}));
  double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  std::vector<double> want{std::exp(1.0) / z, std::exp(2.0) / z, std::exp(3.0) / z, 1.0 / 3, 1.0 / 3, 1.0 / 3};
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(s[i], want[i], 1e-6);
  auto ls = vals(O::log_softmax(x, {-1}));
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(ls[i], std::log(want[i]), 1e-5);
  // along dim 0 (rows layout) of a transposed view
  auto s0 = vals(O::softmax(x.transpose(0, 1), {1}));
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(s0[2 * i] + s0[2 * i + 1], 1.0, 1e-6);
  std::string msg;
  EXPECT_EQ(code_of([] { O::softmax(vec1(DType::Int64, {1, 2}), {0}); }, &msg), ErrorCode::TypeError);
  Tensor d = O::softmax(vec1(DType::Int64, {1, 1}), {0, DType::Float64});
  EXPECT_EQ(d.dtype(), DType::Float64);
  expect_vals(d, {0.5, 0.5}, 1e-12);
  Tensor h = O::softmax(vec1(DType::BFloat16, {0, 0, 0, 0}), {0});
  EXPECT_EQ(h.dtype(), DType::BFloat16);
  expect_vals(h, {0.25, 0.25, 0.25, 0.25});
  expect_vals(O::softmax(f32({kNan, 1}), {0}), {kNan, kNan});
}

// ------------------------------------------------------------------ sort / topk
TEST(Sort, ValuesIndicesNanStable) {
  Tensor x = f32({3, kNan, 1, 3, -kInf, 2});
  auto r = O::sort(x, {});
  expect_vals(r[0], {-kInf, 1, 2, 3, 3, kNan});
  expect_vals(r[1], {4, 2, 5, 0, 3, 1});
  EXPECT_EQ(r[1].dtype(), DType::Int64);
  auto d = O::sort(x, {0, true});
  expect_vals(d[0], {kNan, 3, 3, 2, 1, -kInf});
  expect_vals(d[1], {1, 0, 3, 5, 2, 4});
  Tensor m = make(Dims{2, 3}, DType::Int32, {3, 1, 2, 0, 5, -1});
  auto c = O::sort(m, {0});
  expect_vals(c[0], {0, 1, -1, 3, 5, 2});
  expect_vals(c[1], {1, 0, 1, 0, 1, 0});
  auto t = O::sort(m.transpose(0, 1), {1, true});
  expect_vals(t[0], {3, 0, 5, 1, 2, -1});
  EXPECT_EQ(code_of([] { O::sort(vec1(DType::Bool, {1, 0}), {}); }), ErrorCode::TypeError);
}

TEST(Sort, Topk) {
  Tensor x = f32({1, 5, 3, 5, kNan, 0});
  auto r = O::topk(x, {2});
  expect_vals(r[0], {kNan, 5});
  expect_vals(r[1], {4, 1});
  auto s = O::topk(x, {3, -1, false});
  expect_vals(s[0], {0, 1, 3});
  expect_vals(s[1], {5, 0, 2});
  EXPECT_EQ(O::topk(x, {0})[0].shape(), Dims{0});
  std::string msg;
  EXPECT_EQ(code_of([&] { O::topk(x, {7}); }, &msg), ErrorCode::InvalidArgument);
  EXPECT_NE(msg.find("out of range"), std::string::npos);
  EXPECT_EQ(code_of([&] { O::topk(x, {-1}); }), ErrorCode::InvalidArgument);
  Tensor m = make(Dims{2, 3}, DType::Int64, {3, 1, 2, 0, 5, -1});
  auto t = O::topk(m, {1, 0});
  EXPECT_EQ(t[0].shape(), (Dims{1, 3}));
  expect_vals(t[0], {3, 5, 2});
  expect_vals(t[1], {0, 1, 0});
}
