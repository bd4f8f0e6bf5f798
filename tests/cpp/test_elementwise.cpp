// Elementwise ops: values against closed forms, broadcasting, PyTorch type promotion, strided
// inputs, the SIMD routines of every ISA, and errors.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/ops/generated/ops_gen.h"
#include "core/ops/kernels/cpu/vec_math.h"
#include "core/tensor/tensor.h"

using namespace heron;
namespace O = heron::ops;

namespace {

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
Tensor i64(const std::vector<double>& v) { return vec1(DType::Int64, v); }
// A Python number as the frontends pass it: a 0-d wrapped tensor (float64/int64/bool).
Tensor wrapped(double v, DType dt = DType::Float64) {
  Tensor t = make(Dims{}, dt, {v});
  t.set_wrapped_number(true);
  return t;
}
Tensor zero_d(double v, DType dt) { return make(Dims{}, dt, {v}); }

std::vector<double> vals(const Tensor& t0) {
  Tensor t = t0.contiguous();
  std::vector<double> out(static_cast<size_t>(t.numel()));
  visit_dtype(t.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* p = t.data<T>();
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<double>(static_cast<opmath_t<T>>(p[i]));
  });
  return out;
}

void expect_vals(const Tensor& t, const std::vector<double>& want, double tol = 0.0) {
  auto got = vals(t);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    if (std::isnan(want[i])) {
      EXPECT_TRUE(std::isnan(got[i])) << "at " << i;
    } else if (std::isinf(want[i])) {
      EXPECT_EQ(got[i], want[i]) << "at " << i;
    } else {
      EXPECT_NEAR(got[i], want[i], tol * std::max(1.0, std::fabs(want[i]))) << "at " << i;
    }
  }
}

ErrorCode code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  return ErrorCode::Ok;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

double ulps(float got, double want) {
  float w = static_cast<float>(want);
  if (std::isnan(want)) return std::isnan(got) ? 0 : 1e9;
  if (std::isinf(w)) return got == w ? 0 : 1e9;
  double a = std::fabs(static_cast<double>(w));
  double u = a < 1.17549435e-38 ? 1.40129846e-45 : static_cast<double>(std::nextafter(static_cast<float>(a), INFINITY)) - a;
  return std::fabs(static_cast<double>(got) - want) / u;
}

const DType kFloatTypes[] = {DType::Float32, DType::Float64, DType::Float16, DType::BFloat16};
const DType kAllTypes[] = {DType::Float32, DType::Float64, DType::Float16, DType::BFloat16, DType::Int8,
                           DType::UInt8,   DType::Int32,   DType::Int64,   DType::Bool};

double tol_for(DType dt) {
  switch (dt) {
    case DType::Float32: return 2e-6;
    case DType::Float64: return 1e-14;
    case DType::Float16: return 2e-3;
    case DType::BFloat16: return 1.6e-2;
    default: return 0.0;
  }
}

}  // namespace

// ------------------------------------------------------------------ unary
TEST(Elementwise, UnaryFloatClosedForms) {
  const std::vector<double> x = {0.25, 0.5, 1.0, 1.5, 2.0, 3.0};
  struct Case { const char* name; Tensor (*op)(const Tensor&); double (*ref)(double); };
  const Case cases[] = {
      {"exp", [](const Tensor& t) { return O::exp(t); }, [](double v) { return std::exp(v); }},
      {"expm1", [](const Tensor& t) { return O::expm1(t); }, [](double v) { return std::expm1(v); }},
      {"log", [](const Tensor& t) { return O::log(t); }, [](double v) { return std::log(v); }},
      {"log1p", [](const Tensor& t) { return O::log1p(t); }, [](double v) { return std::log1p(v); }},
      {"log2", [](const Tensor& t) { return O::log2(t); }, [](double v) { return std::log2(v); }},
      {"sqrt", [](const Tensor& t) { return O::sqrt(t); }, [](double v) { return std::sqrt(v); }},
      {"rsqrt", [](const Tensor& t) { return O::rsqrt(t); }, [](double v) { return 1 / std::sqrt(v); }},
      {"sin", [](const Tensor& t) { return O::sin(t); }, [](double v) { return std::sin(v); }},
      {"cos", [](const Tensor& t) { return O::cos(t); }, [](double v) { return std::cos(v); }},
      {"tan", [](const Tensor& t) { return O::tan(t); }, [](double v) { return std::tan(v); }},
      {"tanh", [](const Tensor& t) { return O::tanh(t); }, [](double v) { return std::tanh(v); }},
      {"sigmoid", [](const Tensor& t) { return O::sigmoid(t); }, [](double v) { return 1 / (1 + std::exp(-v)); }},
      {"silu", [](const Tensor& t) { return O::silu(t); }, [](double v) { return v / (1 + std::exp(-v)); }},
      {"erf", [](const Tensor& t) { return O::erf(t); }, [](double v) { return std::erf(v); }},
      {"reciprocal", [](const Tensor& t) { return O::reciprocal(t); }, [](double v) { return 1 / v; }},
      {"gelu", [](const Tensor& t) { return O::gelu(t); }, [](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); }},
      {"softplus", [](const Tensor& t) { return O::softplus(t); }, [](double v) { return std::log1p(std::exp(v)); }},
  };
  for (const auto& c : cases) {
    std::vector<double> want;
    for (double v : x) want.push_back(c.ref(v));
    for (DType dt : kFloatTypes) {
      // Inputs rounded to the dtype are exact here (all are short binary fractions).
      Tensor y = c.op(vec1(dt, x));
      EXPECT_EQ(y.dtype(), dt) << c.name;
      SCOPED_TRACE(std::string(c.name) + " " + dtype_name(dt));
      expect_vals(y, want, 2 * tol_for(dt));
    }
    // Integer and bool inputs compute in float32.
    Tensor yi = c.op(vec1(DType::Int32, {1, 2, 3}));
    EXPECT_EQ(yi.dtype(), DType::Float32) << c.name;
    expect_vals(yi, {c.ref(1), c.ref(2), c.ref(3)}, 2e-6);
    EXPECT_EQ(c.op(vec1(DType::Bool, {1, 0})).dtype(), DType::Float32) << c.name;
  }
}

TEST(Elementwise, GeluTanhAndSoftplusParams) {
  Tensor x = f32({-2, -0.5, 0, 0.5, 2});
  Tensor y = O::gelu(x, O::GeluAttrs{"tanh"});
  std::vector<double> want;
  for (double v : vals(x)) want.push_back(0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))));
  expect_vals(y, want, 2e-6);
  Tensor s = O::softplus(f32({-1, 1, 5, 30}), O::SoftplusAttrs{2.0, 4.0});
  // beta*x > threshold gives x.
  expect_vals(s, {std::log1p(std::exp(-2.0)) / 2, std::log1p(std::exp(2.0)) / 2, 5, 30}, 2e-6);
}

TEST(Elementwise, ExpSpecialValuesAndAccuracy) {
  const double inf = INFINITY;
  Tensor x = f32({0, -0.0, 1, -1, 88.72, 88.8, 100, -87.3, -100, -104, -200, inf, -inf, NAN});
  Tensor y = O::exp(x);
  auto got = vals(y);
  auto xs = vals(x);
  for (size_t i = 0; i < xs.size(); ++i) {
    double want = std::exp(xs[i]);
    EXPECT_LE(ulps(static_cast<float>(got[i]), want), 2.0) << "exp(" << xs[i] << ") = " << got[i];
  }
  EXPECT_EQ(got[0], 1.0);
  EXPECT_TRUE(std::isinf(got[5]));
  EXPECT_EQ(got[10], 0.0);
  EXPECT_EQ(got[12], 0.0);
  EXPECT_TRUE(std::isnan(got[13]));
}

TEST(Elementwise, SimdRoutinesEveryIsa) {
  // A sweep over the float range (every 4099th bit pattern), through each ISA's build.
  std::vector<float> x;
  for (uint64_t b = 0; b < 0x100000000ull; b += 4099) {
    uint32_t u = static_cast<uint32_t>(b);
    float f;
    std::memcpy(&f, &u, 4);
    x.push_back(f);
  }
  std::vector<float> y(x.size());
  using namespace heron::cpu::vec;
  Isa saved = active_isa();
  for (int isa = 0; isa <= static_cast<int>(best_isa()); ++isa) {
    set_isa(static_cast<Isa>(isa));
    SCOPED_TRACE(isa_name(active_isa()));
    struct R { void (*f)(float*, const float*, int64_t); double (*ref)(double); double max_ulps; const char* name; };
    const R rs[] = {
        {exp_f32, [](double v) { return std::exp(v); }, 2.0, "exp"},
        {sigmoid_f32, [](double v) { return 1 / (1 + std::exp(-v)); }, 4.0, "sigmoid"},
        {tanh_f32, [](double v) { return std::tanh(v); }, 4.0, "tanh"},
        {silu_f32, [](double v) { return v / (1 + std::exp(-v)); }, 4.0, "silu"},
    };
    for (const auto& r : rs) {
      r.f(y.data(), x.data(), static_cast<int64_t>(x.size()));
      double worst = 0;
      float at = 0;
      for (size_t i = 0; i < x.size(); ++i) {
        double want = r.ref(x[i]);
        if (std::fabs(want) < 1e-37 && !std::isnan(want)) {  // subnormal results: absolute check
          EXPECT_LE(std::fabs(y[i] - want), 1e-37) << r.name << " at " << x[i];
          continue;
        }
        if (std::string(r.name) == "silu" && x[i] < -87.0f) {  // x * (a subnormal sigmoid): few bits left
          EXPECT_LE(std::fabs(y[i] - want), 1e-3 * std::fabs(want)) << r.name << " at " << x[i];
          continue;
        }
        double e = ulps(y[i], want);
        if (e > worst) { worst = e; at = x[i]; }
      }
      EXPECT_LE(worst, r.max_ulps) << r.name << " worst at " << at;
    }
    // Odd lengths exercise the tails; binary kernels with scalar operands.
    std::vector<float> a(37), b(37), o(37);
    for (int i = 0; i < 37; ++i) { a[i] = 0.5f * i - 3; b[i] = 1.25f + i; }
    binary_f32(BinOp::Sub, o.data(), a.data(), 1, b.data(), 1, 37, 2.0f);
    for (int i = 0; i < 37; ++i) EXPECT_EQ(o[i], a[i] - b[i] * 2.0f);
    binary_f32(BinOp::Div, o.data(), a.data(), 0, b.data(), 1, 37, 1.0f);
    for (int i = 0; i < 37; ++i) EXPECT_EQ(o[i], a[0] / b[i]);
    std::vector<double> ad(37), bd(37), od(37);
    for (int i = 0; i < 37; ++i) { ad[i] = 0.5 * i - 3; bd[i] = 1.25 + i; }
    binary_f64(BinOp::Mul, od.data(), ad.data(), 1, bd.data(), 0, 37, 1.0);
    for (int i = 0; i < 37; ++i) EXPECT_EQ(od[i], ad[i] * bd[0]);
  }
  set_isa(saved);
}

TEST(Elementwise, UnarySameDtype) {
  for (DType dt : {DType::Float32, DType::Float64, DType::Float16, DType::BFloat16, DType::Int8, DType::Int32, DType::Int64}) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = vec1(dt, {-3, -1, 0, 2, 5});
    EXPECT_EQ(O::neg(x).dtype(), dt);
    expect_vals(O::neg(x), {3, 1, 0, -2, -5});
    expect_vals(O::abs(x), {3, 1, 0, 2, 5});
    expect_vals(O::sign(x), {-1, -1, 0, 1, 1});
    expect_vals(O::square(x), {9, 1, 0, 4, 25});
    expect_vals(O::relu(x), {0, 0, 0, 2, 5});
    expect_vals(O::floor(x), {-3, -1, 0, 2, 5});
    EXPECT_EQ(O::floor(x).dtype(), dt);
  }
  // Wrapping integer arithmetic, uint8 negation.
  expect_vals(O::neg(vec1(DType::UInt8, {1, 0, 255})), {255, 0, 1});
  expect_vals(O::abs(vec1(DType::Int8, {-128, -5})), {-128, 5});
  expect_vals(O::square(vec1(DType::Int8, {16})), {0});
  // bool: sign is the identity, square gives int64 (like PyTorch).
  expect_vals(O::sign(vec1(DType::Bool, {1, 0})), {1, 0});
  Tensor sq = O::square(vec1(DType::Bool, {1, 0}));
  EXPECT_EQ(sq.dtype(), DType::Int64);
  expect_vals(sq, {1, 0});
  // nan handling
  expect_vals(O::sign(f32({NAN, -0.0})), {NAN, 0});
  expect_vals(O::relu(f32({NAN, -1})), {NAN, 0});
  expect_vals(O::bitwise_not(vec1(DType::Int32, {0, 5, -1})), {-1, -6, 0});
  expect_vals(O::bitwise_not(vec1(DType::UInt8, {0, 5})), {255, 250});
  expect_vals(O::bitwise_not(vec1(DType::Bool, {1, 0})), {0, 1});
}

TEST(Elementwise, Rounding) {
  Tensor x = f32({0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 1.7, -1.7});
  expect_vals(O::round(x), {0, 2, 2, -0.0, -2, -2, 2, -2});
  expect_vals(O::floor(x), {0, 1, 2, -1, -2, -3, 1, -2});
  expect_vals(O::ceil(x), {1, 2, 3, -0.0, -1, -2, 2, -1});
  expect_vals(O::trunc(x), {0, 1, 2, 0, -1, -2, 1, -1});
  expect_vals(O::round(vec1(DType::Float64, {1.2345, -2.675, 0.125}), O::RoundAttrs{2}), {1.23, -2.68, 0.12}, 1e-12);
  expect_vals(O::round(vec1(DType::Float64, {1234.5, 1250, 1350, -1250}), O::RoundAttrs{-2}), {1200, 1200, 1400, -1200}, 1e-12);
  // Integers: unchanged, except negative decimals (half to even on the multiple).
  Tensor xi = vec1(DType::Int32, {15, 25, -15, 14, 7});
  Tensor r0 = O::round(xi);
  EXPECT_EQ(r0.dtype(), DType::Int32);
  EXPECT_FALSE(r0.shares_storage(xi));
  expect_vals(r0, {15, 25, -15, 14, 7});
  expect_vals(O::round(xi, O::RoundAttrs{-1}), {20, 20, -20, 10, 10});
  expect_vals(O::floor(xi), {15, 25, -15, 14, 7});
  EXPECT_EQ(code_of([] { O::floor(vec1(DType::Bool, {1})); }), ErrorCode::TypeError);
}

TEST(Elementwise, Predicates) {
  Tensor x = f32({0, INFINITY, -INFINITY, NAN, 2});
  Tensor n = O::isnan(x);
  EXPECT_EQ(n.dtype(), DType::Bool);
  expect_vals(n, {0, 0, 0, 1, 0});
  expect_vals(O::isinf(x), {0, 1, 1, 0, 0});
  expect_vals(O::isfinite(x), {1, 0, 0, 0, 1});
  expect_vals(O::logical_not(x), {1, 0, 0, 0, 0});
  for (DType dt : kAllTypes) {
    Tensor t = vec1(dt, {0, 1});
    expect_vals(O::isnan(t), {0, 0});
    expect_vals(O::isfinite(t), {1, 1});
    expect_vals(O::logical_not(t), {1, 0});
  }
}

TEST(Elementwise, UnaryStridedAndLarge) {
  // A transposed (non-contiguous) input.
  std::vector<double> v(12);
  for (int i = 0; i < 12; ++i) v[i] = 0.1 * i - 0.5;
  Tensor x = make(Dims{3, 4}, DType::Float32, v).transpose(0, 1);
  ASSERT_FALSE(x.is_contiguous());
  Tensor y = O::exp(x);
  EXPECT_EQ(y.shape(), (Dims{4, 3}));
  auto xv = vals(x);
  std::vector<double> want;
  for (double a : xv) want.push_back(std::exp(a));
  expect_vals(y, want, 2e-7);
  // Large enough to be split over the thread pool, with a strided slice.
  const int64_t n = 300001;
  std::vector<double> big(n);
  for (int64_t i = 0; i < n; ++i) big[i] = std::sin(0.001 * i) * 20;
  Tensor bx = f32(big);
  for (auto* op : {+[](const Tensor& t) { return O::exp(t); }, +[](const Tensor& t) { return O::tanh(t); },
                   +[](const Tensor& t) { return O::sigmoid(t); }}) {
    Tensor by = op(bx);
    Tensor bs = op(bx.slice(0, 1, INT64_MAX, 3));
    auto full = vals(by), sl = vals(bs);
    ASSERT_EQ(static_cast<int64_t>(sl.size()), (n - 1 + 2) / 3);
    for (size_t i = 0; i < sl.size(); ++i) ASSERT_EQ(sl[i], full[1 + 3 * i]) << i;
  }
}

// ------------------------------------------------------------------ binary
TEST(Elementwise, BinaryArithmetic) {
  for (DType dt : {DType::Float32, DType::Float64, DType::Float16, DType::BFloat16, DType::Int8, DType::Int32, DType::Int64, DType::UInt8}) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor a = vec1(dt, {1, 6, 9, 12});
    Tensor b = vec1(dt, {2, 3, 4, 5});
    EXPECT_EQ(O::add(a, b).dtype(), dt);
    expect_vals(O::add(a, b), {3, 9, 13, 17});
    expect_vals(O::add(a, b, O::AddAttrs{Scalar(int64_t{2})}), {5, 12, 17, 22});
    expect_vals(O::sub(b, a), dt == DType::UInt8 ? std::vector<double>{1, 253, 251, 249} : std::vector<double>{1, -3, -5, -7});
    expect_vals(O::mul(a, b), {2, 18, 36, 60});
    expect_vals(O::maximum(a, vec1(dt, {3, 3, 3, 30})), {3, 6, 9, 30});
    expect_vals(O::minimum(a, vec1(dt, {3, 3, 3, 30})), {1, 3, 3, 12});
    expect_vals(O::pow(a, vec1(dt, {3, 2, 1, 0})), {1, 36, 9, 1});
    Tensor d = O::div(a, b);
    EXPECT_EQ(d.dtype(), is_floating(dt) ? dt : DType::Float32);
    expect_vals(d, {0.5, 2, 2.25, 2.4}, tol_for(d.dtype()));
    Tensor dt_ = O::div(a, b, O::DivAttrs{std::string("trunc")});
    EXPECT_EQ(dt_.dtype(), dt);
    expect_vals(dt_, {0, 2, 2, 2});
    expect_vals(O::floor_divide(a, b), {0, 2, 2, 2});
    expect_vals(O::remainder(a, b), {1, 0, 1, 2});
  }
  // Float alpha with float inputs.
  expect_vals(O::add(f32({1, 2}), f32({1, 1}), O::AddAttrs{Scalar(0.5)}), {1.5, 2.5});
  expect_vals(O::sub(f32({1, 2}), f32({1, 1}), O::SubAttrs{Scalar(0.5)}), {0.5, 1.5});
  // bool arithmetic
  Tensor t = vec1(DType::Bool, {1, 1, 0, 0}), f = vec1(DType::Bool, {1, 0, 1, 0});
  EXPECT_EQ(O::add(t, f).dtype(), DType::Bool);
  expect_vals(O::add(t, f), {1, 1, 1, 0});
  expect_vals(O::mul(t, f), {1, 0, 0, 0});
  expect_vals(O::maximum(t, f), {1, 1, 1, 0});
  expect_vals(O::minimum(t, f), {1, 0, 0, 0});
  EXPECT_EQ(O::div(t, f).dtype(), DType::Float32);
}

TEST(Elementwise, DivisionSigns) {
  // Python semantics: floor division and remainder take the sign of the divisor.
  std::vector<double> a = {7, -7, 7, -7, 0}, b = {2, 2, -2, -2, 3};
  for (DType dt : {DType::Int8, DType::Int32, DType::Int64, DType::Float32, DType::Float64, DType::Float16}) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = vec1(dt, a), y = vec1(dt, b);
    expect_vals(O::floor_divide(x, y), {3, -4, -4, 3, 0});
    expect_vals(O::div(x, y, O::DivAttrs{std::string("floor")}), {3, -4, -4, 3, 0});
    expect_vals(O::div(x, y, O::DivAttrs{std::string("trunc")}), {3, -3, -3, 3, 0});
    expect_vals(O::remainder(x, y), {1, 1, -1, -1, 0});
  }
  // Floats: fractional remainders, division by zero gives inf/nan.
  expect_vals(O::remainder(f32({5.5, -5.5}), f32({2, 2})), {1.5, 0.5});
  expect_vals(O::floor_divide(f32({1, -1, 0}), f32({0, 0, 0})), {INFINITY, -INFINITY, NAN});
  expect_vals(O::remainder(f32({1}), f32({0})), {NAN});
  expect_vals(O::div(f32({1, -1}), f32({0, 0})), {INFINITY, -INFINITY});
  // INT_MIN / -1 wraps instead of trapping.
  Tensor m = vec1(DType::Int32, {-2147483648.0}), n1 = vec1(DType::Int32, {-1});
  expect_vals(O::div(m, n1, O::DivAttrs{std::string("trunc")}), {-2147483648.0});
  expect_vals(O::remainder(m, n1), {0});
  Tensor m64 = vec1(DType::Int64, {0}), n64 = vec1(DType::Int64, {-1});
  m64.data<int64_t>()[0] = INT64_MIN;
  EXPECT_EQ(O::floor_divide(m64, n64).data<int64_t>()[0], INT64_MIN);
}

TEST(Elementwise, IntegerDivisionByZeroRaises) {
  Tensor a = vec1(DType::Int32, {1, 2, 3}), b = vec1(DType::Int32, {1, 0, 1});
  for (auto f : std::vector<std::function<void()>>{
           [&] { O::div(a, b, O::DivAttrs{std::string("trunc")}); },
           [&] { O::div(a, b, O::DivAttrs{std::string("floor")}); },
           [&] { O::floor_divide(a, b); },
           [&] { O::remainder(a, b); },
           [&] { O::floor_divide(a, wrapped(0, DType::Int64)); }}) {
    EXPECT_EQ(code_of(f), ErrorCode::InvalidArgument);
  }
  EXPECT_EQ(message_of([&] { O::div(a, b, O::DivAttrs{std::string("trunc")}); }), "div: integer division by zero");
  // Large inputs: the error comes out of the thread pool; the inputs are untouched.
  std::vector<double> big(200000, 3.0);
  Tensor x = vec1(DType::Int64, big), y = vec1(DType::Int64, big);
  y.data<int64_t>()[150000] = 0;
  EXPECT_EQ(code_of([&] { O::remainder(x, y); }), ErrorCode::InvalidArgument);
  EXPECT_EQ(x.data<int64_t>()[150000], 3);
  EXPECT_EQ(y.data<int64_t>()[150000], 0);
  // True division of integers by zero is float division.
  expect_vals(O::div(a, b), {1, INFINITY, 3});
}

TEST(Elementwise, PowRules) {
  expect_vals(O::pow(vec1(DType::Int64, {2, -3, 0}), wrapped(3, DType::Int64)), {8, -27, 0});
  EXPECT_EQ(O::pow(vec1(DType::Int64, {2}), wrapped(3, DType::Int64)).dtype(), DType::Int64);
  EXPECT_EQ(code_of([] { O::pow(vec1(DType::Int32, {2}), wrapped(-1, DType::Int64)); }), ErrorCode::InvalidArgument);
  EXPECT_EQ(code_of([] { O::pow(vec1(DType::Int32, {2, 2}), vec1(DType::Int32, {1, -2})); }), ErrorCode::InvalidArgument);
  // Float exponent of an integer tensor: float32.
  Tensor r = O::pow(vec1(DType::Int32, {4, 9}), wrapped(0.5));
  EXPECT_EQ(r.dtype(), DType::Float32);
  expect_vals(r, {2, 3});
  expect_vals(O::pow(f32({2, 4}), f32({-1, 0.5})), {0.5, 2});
  // bool tensor ** int -> int64 (PyTorch's category rule); bool ** bool is unsupported.
  EXPECT_EQ(O::pow(vec1(DType::Bool, {1, 0}), wrapped(2, DType::Int64)).dtype(), DType::Int64);
  EXPECT_EQ(code_of([] { O::pow(vec1(DType::Bool, {1}), vec1(DType::Bool, {1})); }), ErrorCode::TypeError);
}

TEST(Elementwise, MaximumMinimumNan) {
  Tensor a = f32({1, NAN, 3}), b = f32({NAN, 2, 1});
  expect_vals(O::maximum(a, b), {NAN, NAN, 3});
  expect_vals(O::minimum(a, b), {NAN, NAN, 1});
  expect_vals(O::atan2(f32({1, -1, 0}), f32({1, -1, -1})), {std::atan2(1.0, 1.0), std::atan2(-1.0, -1.0), M_PI}, 2e-7);
  EXPECT_EQ(O::atan2(vec1(DType::Int32, {1}), vec1(DType::Int32, {1})).dtype(), DType::Float32);
}

TEST(Elementwise, Promotion) {
  struct Case { DType a; bool a_wrapped; DType b; bool b_wrapped; DType want; };
  const Case cases[] = {
      {DType::Int32, false, DType::Float32, false, DType::Float32},
      {DType::UInt8, false, DType::Int8, false, DType::Int32},
      {DType::Bool, false, DType::Bool, false, DType::Bool},
      {DType::Bool, false, DType::UInt8, false, DType::UInt8},
      {DType::Float16, false, DType::Float64, true, DType::Float16},   // float16 tensor + 2.0
      {DType::BFloat16, false, DType::Float64, true, DType::BFloat16},
      {DType::Int64, false, DType::Float64, true, DType::Float32},     // int tensor + 2.5
      {DType::Int8, false, DType::Int64, true, DType::Int8},           // int8 tensor + 2
      {DType::Bool, false, DType::Int64, true, DType::Int64},          // bool tensor + 2
      {DType::Float16, false, DType::Float32, false, DType::Float32},
      {DType::Float16, false, DType::BFloat16, false, DType::Float32},
  };
  for (const auto& c : cases) {
    Tensor a = c.a_wrapped ? wrapped(1, c.a) : vec1(c.a, {1, 0});
    Tensor b = c.b_wrapped ? wrapped(1, c.b) : vec1(c.b, {1, 1});
    SCOPED_TRACE(std::string(dtype_name(c.a)) + " + " + dtype_name(c.b));
    Tensor s = O::add(a, b);
    EXPECT_EQ(s.dtype(), c.want);
    EXPECT_EQ(O::mul(b, a).dtype(), c.want);
    EXPECT_EQ(O::maximum(a, b).dtype(), c.want);
    EXPECT_EQ(O::eq(a, b).dtype(), DType::Bool);
  }
  // A 0-d tensor does not upcast a dimensioned one of the same category, but does across categories.
  EXPECT_EQ(O::add(vec1(DType::Float32, {1}), zero_d(1, DType::Float64)).dtype(), DType::Float32);
  EXPECT_EQ(O::add(vec1(DType::Int32, {1}), zero_d(1, DType::Int64)).dtype(), DType::Int32);
  EXPECT_EQ(O::add(vec1(DType::Int32, {1}), zero_d(1.5, DType::Float64)).dtype(), DType::Float64);
  // Values: the wrapped scalar is cast to the result dtype.
  expect_vals(O::add(vec1(DType::Float16, {1, 2}), wrapped(0.5)), {1.5, 2.5});
  expect_vals(O::mul(vec1(DType::Int64, {3, 4}), wrapped(0.5)), {1.5, 2});
  expect_vals(O::sub(wrapped(10, DType::Int64), vec1(DType::Int32, {3, 4})), {7, 6});
  // Comparisons compute in the promoted dtype.
  expect_vals(O::lt(vec1(DType::Int32, {1, 2, 3}), wrapped(2.5)), {1, 1, 0});
  expect_vals(O::eq(vec1(DType::UInt8, {1, 2}), vec1(DType::Int8, {1, -2})), {1, 0});
}

TEST(Elementwise, AlphaRules) {
  EXPECT_EQ(code_of([] { O::add(vec1(DType::Int32, {1}), vec1(DType::Int32, {1}), O::AddAttrs{Scalar(0.5)}); }), ErrorCode::TypeError);
  EXPECT_EQ(code_of([] { O::add(f32({1}), f32({1}), O::AddAttrs{Scalar::from_bool(true)}); }), ErrorCode::TypeError);
  expect_vals(O::add(vec1(DType::Bool, {0}), vec1(DType::Bool, {1}), O::AddAttrs{Scalar::from_bool(true)}), {1});
}

TEST(Elementwise, ComparisonsAndLogic) {
  Tensor a = f32({1, 2, 3, NAN}), b = f32({3, 2, 1, NAN});
  expect_vals(O::eq(a, b), {0, 1, 0, 0});
  expect_vals(O::ne(a, b), {1, 0, 1, 1});
  expect_vals(O::lt(a, b), {1, 0, 0, 0});
  expect_vals(O::le(a, b), {1, 1, 0, 0});
  expect_vals(O::gt(a, b), {0, 0, 1, 0});
  expect_vals(O::ge(a, b), {0, 1, 1, 0});
  for (DType dt : kAllTypes) {
    Tensor x = vec1(dt, {0, 0, 1, 1}), y = vec1(dt, {0, 1, 0, 1});
    SCOPED_TRACE(dtype_name(dt));
    Tensor r = O::logical_and(x, y);
    EXPECT_EQ(r.dtype(), DType::Bool);
    expect_vals(r, {0, 0, 0, 1});
    expect_vals(O::logical_or(x, y), {0, 1, 1, 1});
    expect_vals(O::logical_xor(x, y), {0, 1, 1, 0});
    expect_vals(O::lt(x, y), {0, 1, 0, 0});
  }
  // nan is truthy
  expect_vals(O::logical_and(f32({NAN, 0.5}), f32({1, 1})), {1, 1});
  expect_vals(O::logical_or(f32({0.5}), vec1(DType::Int64, {0})), {1});
}

TEST(Elementwise, Bitwise) {
  Tensor a = vec1(DType::Int32, {12, -1, 5}), b = vec1(DType::Int32, {10, 3, 0});
  expect_vals(O::bitwise_and(a, b), {8, 3, 0});
  expect_vals(O::bitwise_or(a, b), {14, -1, 5});
  expect_vals(O::bitwise_xor(a, b), {6, -4, 5});
  expect_vals(O::bitwise_and(vec1(DType::Bool, {1, 1, 0}), vec1(DType::Bool, {1, 0, 0})), {1, 0, 0});
  EXPECT_EQ(O::bitwise_or(vec1(DType::Bool, {1}), vec1(DType::UInt8, {2})).dtype(), DType::UInt8);
  expect_vals(O::bitwise_left_shift(vec1(DType::Int32, {1, 1, 3, 1}), vec1(DType::Int32, {4, 31, 1, 40})), {16, -2147483648.0, 6, 0});
  expect_vals(O::bitwise_right_shift(vec1(DType::Int32, {-16, 16, -1, 5}), vec1(DType::Int32, {2, 2, 40, 40})), {-4, 4, -1, 0});
  expect_vals(O::bitwise_left_shift(vec1(DType::Int8, {1}), vec1(DType::Int8, {7})), {-128});
  expect_vals(O::bitwise_right_shift(vec1(DType::UInt8, {255}), vec1(DType::UInt8, {4})), {15});
  EXPECT_EQ(code_of([] { O::bitwise_and(f32({1}), vec1(DType::Int32, {1})); }), ErrorCode::TypeError);
  EXPECT_EQ(code_of([] { O::bitwise_xor(vec1(DType::Int32, {1}), wrapped(1.0)); }), ErrorCode::TypeError);
  EXPECT_EQ(code_of([] { O::bitwise_left_shift(vec1(DType::Bool, {1}), vec1(DType::Bool, {1})); }), ErrorCode::TypeError);
  EXPECT_EQ(code_of([] { O::bitwise_not(f32({1})); }), ErrorCode::TypeError);
}

TEST(Elementwise, Broadcasting) {
  Tensor a = make(Dims{3, 1}, DType::Float32, {1, 2, 3});
  Tensor b = make(Dims{1, 4}, DType::Float32, {10, 20, 30, 40});
  Tensor c = O::add(a, b);
  EXPECT_EQ(c.shape(), (Dims{3, 4}));
  expect_vals(c, {11, 21, 31, 41, 12, 22, 32, 42, 13, 23, 33, 43});
  // Different ranks, a 0-d operand, an empty dim.
  Tensor d = O::mul(make(Dims{2, 1, 3}, DType::Int32, {1, 2, 3, 4, 5, 6}), make(Dims{2, 1}, DType::Int32, {1, -1}));
  EXPECT_EQ(d.shape(), (Dims{2, 2, 3}));
  expect_vals(d, {1, 2, 3, -1, -2, -3, 4, 5, 6, -4, -5, -6});
  Tensor e = O::sub(zero_d(5, DType::Float64), vec1(DType::Float64, {1, 2}));
  expect_vals(e, {4, 3});
  Tensor z = O::add(make(Dims{0, 3}, DType::Float32, {}), make(Dims{1, 3}, DType::Float32, {1, 2, 3}));
  EXPECT_EQ(z.shape(), (Dims{0, 3}));
  Tensor s = O::add(zero_d(1, DType::Float32), zero_d(2, DType::Float32));
  EXPECT_EQ(s.dim(), 0);
  expect_vals(s, {3});
  // Mismatch: InvalidArgument naming the op.
  std::string msg = message_of([] { O::add(f32({1, 2, 3}), f32({1, 2})); });
  EXPECT_NE(msg.find("add"), std::string::npos) << msg;
  EXPECT_EQ(code_of([] { O::add(f32({1, 2, 3}), f32({1, 2})); }), ErrorCode::InvalidArgument);
}

TEST(Elementwise, StridedBinary) {
  std::vector<double> v(24);
  for (int i = 0; i < 24; ++i) v[i] = i;
  Tensor base = make(Dims{4, 6}, DType::Float32, v);
  Tensor t = base.transpose(0, 1);            // (6, 4) non-contiguous
  Tensor s = base.slice(1, 0, 6, 2);          // (4, 3) strided
  Tensor r = O::add(t, t);
  auto tv = vals(t);
  std::vector<double> want;
  for (double x : tv) want.push_back(2 * x);
  expect_vals(r, want);
  Tensor q = O::mul(s, make(Dims{3}, DType::Float32, {1, 10, 100}));
  expect_vals(q, {0, 20, 400, 6, 80, 1000, 12, 140, 1600, 18, 200, 2200});
  // Large strided + broadcast (thread pool path), float64 and int32 (generic loops).
  const int64_t rows = 700, cols = 300;
  std::vector<double> big(rows * cols);
  for (int64_t i = 0; i < rows * cols; ++i) big[i] = static_cast<double>(i % 1000) - 500;
  for (DType dt : {DType::Float32, DType::Float64, DType::Int32}) {
    Tensor m = make(Dims{rows, cols}, dt, big);
    Tensor mt = m.transpose(0, 1);  // (cols, rows)
    Tensor row = make(Dims{rows}, dt, std::vector<double>(rows, 3));
    Tensor out = O::sub(mt, row);
    auto ov = vals(out);
    for (int64_t i = 0; i < cols; i += 37)
      for (int64_t j = 0; j < rows; j += 41) ASSERT_EQ(ov[i * rows + j], big[j * cols + i] - 3);
  }
}

TEST(Elementwise, LargeContiguousMatchesScalar) {
  const int64_t n = 1 << 18;
  std::vector<double> a(n), b(n);
  for (int64_t i = 0; i < n; ++i) { a[i] = std::sin(i * 0.01) * 3; b[i] = std::cos(i * 0.003) + 2; }
  Tensor x = f32(a), y = f32(b);
  Tensor s = O::add(x, y), d = O::div(x, y), m = O::mul(x, wrapped(3.0)), r = O::sub(wrapped(1.0), y);
  const float* xs = x.data<float>();
  const float* ys = y.data<float>();
  for (int64_t i = 0; i < n; i += 7) {
    ASSERT_EQ(s.data<float>()[i], xs[i] + ys[i]);
    ASSERT_EQ(d.data<float>()[i], xs[i] / ys[i]);
    ASSERT_EQ(m.data<float>()[i], xs[i] * 3.0f);
    ASSERT_EQ(r.data<float>()[i], 1.0f - ys[i]);
  }
}

// ------------------------------------------------------------------ where / clamp / masked_fill
TEST(Elementwise, Where) {
  Tensor c = make(Dims{2, 1}, DType::Bool, {1, 0});
  Tensor a = make(Dims{1, 3}, DType::Int32, {1, 2, 3});
  Tensor w = O::where(c, a, wrapped(0.5));
  EXPECT_EQ(w.shape(), (Dims{2, 3}));
  EXPECT_EQ(w.dtype(), DType::Float32);
  expect_vals(w, {1, 2, 3, 0.5, 0.5, 0.5});
  Tensor w2 = O::where(vec1(DType::Bool, {1, 0, 1}), vec1(DType::Int64, {1, 2, 3}), vec1(DType::Int8, {-1, -2, -3}));
  EXPECT_EQ(w2.dtype(), DType::Int64);
  expect_vals(w2, {1, -2, 3});
  for (DType dt : kAllTypes) {
    Tensor r = O::where(vec1(DType::Bool, {0, 1}), vec1(dt, {1, 1}), vec1(dt, {0, 0}));
    EXPECT_EQ(r.dtype(), dt);
    expect_vals(r, {0, 1});
  }
  EXPECT_EQ(code_of([] { O::where(vec1(DType::Int32, {1}), f32({1}), f32({2})); }), ErrorCode::TypeError);
  EXPECT_EQ(code_of([] { O::where(vec1(DType::Bool, {1, 0, 1}), f32({1, 2}), f32({2})); }), ErrorCode::InvalidArgument);
}

TEST(Elementwise, Clamp) {
  Tensor x = f32({-2, 0.5, 3, NAN});
  O::ClampAttrs both;
  both.min = Scalar(0.0);
  both.max = Scalar(int64_t{1});
  expect_vals(O::clamp(x, both), {0, 0.5, 1, NAN});
  O::ClampAttrs lo;
  lo.min = Scalar(0.0);
  expect_vals(O::clamp(x, lo), {0, 0.5, 3, NAN});
  // Integer tensor, integer bounds: stays integer; float bound: float32.
  Tensor xi = vec1(DType::Int32, {-5, 0, 5});
  O::ClampAttrs ib;
  ib.min = Scalar(int64_t{-1});
  ib.max = Scalar(int64_t{2});
  Tensor ci = O::clamp(xi, ib);
  EXPECT_EQ(ci.dtype(), DType::Int32);
  expect_vals(ci, {-1, 0, 2});
  O::ClampAttrs fb;
  fb.max = Scalar(0.5);
  Tensor cf = O::clamp(xi, fb);
  EXPECT_EQ(cf.dtype(), DType::Float32);
  expect_vals(cf, {-5, 0, 0.5});
  // Bounds beyond uint8's range act as no bound; min > max gives max.
  O::ClampAttrs wide;
  wide.min = Scalar(int64_t{-10});
  wide.max = Scalar(int64_t{1000});
  expect_vals(O::clamp(vec1(DType::UInt8, {0, 255}), wide), {0, 255});
  O::ClampAttrs inv;
  inv.min = Scalar(int64_t{5});
  inv.max = Scalar(int64_t{1});
  expect_vals(O::clamp(f32({0, 3, 9}), inv), {1, 1, 1});
  O::ClampAttrs nanb;
  nanb.min = Scalar(static_cast<double>(NAN));
  expect_vals(O::clamp(f32({1}), nanb), {NAN});
  EXPECT_EQ(code_of([&] { O::clamp(x); }), ErrorCode::InvalidArgument);
  EXPECT_EQ(code_of([&] { O::clamp(vec1(DType::Bool, {1}), both); }), ErrorCode::TypeError);
}

TEST(Elementwise, MaskedFill) {
  Tensor x = make(Dims{2, 3}, DType::Float32, {1, 2, 3, 4, 5, 6});
  Tensor m = make(Dims{3}, DType::Bool, {1, 0, 1});
  Tensor y = O::masked_fill(x, m, O::MaskedFillAttrs{Scalar(-1.5)});
  EXPECT_EQ(y.dtype(), DType::Float32);
  expect_vals(y, {-1.5, 2, -1.5, -1.5, 5, -1.5});
  expect_vals(x, {1, 2, 3, 4, 5, 6});  // input untouched
  Tensor yi = O::masked_fill(vec1(DType::Int64, {1, 2}), vec1(DType::Bool, {0, 1}), O::MaskedFillAttrs{Scalar(int64_t{7})});
  EXPECT_EQ(yi.dtype(), DType::Int64);
  expect_vals(yi, {1, 7});
  expect_vals(O::masked_fill(x.transpose(0, 1), make(Dims{3, 1}, DType::Bool, {0, 1, 0}), O::MaskedFillAttrs{Scalar(0.0)}),
              {1, 4, 0, 0, 3, 6});
  EXPECT_EQ(code_of([&] { O::masked_fill(x, vec1(DType::Int32, {1, 0, 1}), O::MaskedFillAttrs{Scalar(0.0)}); }), ErrorCode::TypeError);
  // The mask must broadcast to the input's shape (not the other way round).
  EXPECT_EQ(code_of([&] { O::masked_fill(f32({1, 2, 3}), make(Dims{2, 3}, DType::Bool, {1, 0, 1, 0, 1, 0}), O::MaskedFillAttrs{Scalar(0.0)}); }),
            ErrorCode::InvalidArgument);
}

// ------------------------------------------------------------------ errors
TEST(Elementwise, TypeErrors) {
  Tensor b = vec1(DType::Bool, {1, 0});
  EXPECT_EQ(code_of([&] { O::neg(b); }), ErrorCode::TypeError);
  EXPECT_EQ(code_of([&] { O::abs(b); }), ErrorCode::TypeError);
  EXPECT_EQ(code_of([&] { O::relu(b); }), ErrorCode::TypeError);
  EXPECT_EQ(code_of([&] { O::sub(b, b); }), ErrorCode::TypeError);
  EXPECT_EQ(code_of([&] { O::sub(f32({1, 2}), b); }), ErrorCode::TypeError);
  EXPECT_EQ(code_of([&] { O::floor_divide(b, b); }), ErrorCode::TypeError);
  EXPECT_EQ(code_of([&] { O::remainder(b, b); }), ErrorCode::TypeError);
  EXPECT_EQ(code_of([&] { O::div(b, b, O::DivAttrs{std::string("floor")}); }), ErrorCode::TypeError);
  EXPECT_EQ(code_of([&] { O::add(Tensor(), b); }), ErrorCode::NullHandle);
}

TEST(Elementwise, OutputsAreFreshTensors) {
  Tensor x = f32({1, 2, 3});
  for (const Tensor& y : {O::exp(x), O::neg(x), O::add(x, wrapped(0.0)), O::clamp(x, O::ClampAttrs{Scalar(0.0), std::nullopt}),
                          O::floor(x), O::round(vec1(DType::Int32, {1}))}) {
    EXPECT_FALSE(y.shares_storage(x));
    EXPECT_TRUE(y.is_contiguous());
    EXPECT_FALSE(y.is_wrapped_number());
  }
  Tensor xi = vec1(DType::Int32, {1, 2});
  Tensor e = O::exp(xi);  // computed in place on a fresh float32 copy
  expect_vals(xi, {1, 2});
  expect_vals(e, {std::exp(1.0), std::exp(2.0)}, 2e-7);
}
