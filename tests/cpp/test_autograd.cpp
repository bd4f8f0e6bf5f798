// Autograd engine in the core: recording through the typed C++ API, backward against closed forms,
// graph lifetime (no cycles: every tensor is freed), retain_graph, grad(), thread-local grad mode.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "core/autograd/autograd.h"
#include "core/ops/generated/ops_gen.h"
#include "core/tensor/tensor.h"

using namespace heron;
namespace O = heron::ops;
namespace A = heron::autograd;

namespace {
Tensor vec(const std::vector<double>& v) {
  Tensor t = Tensor::empty(Dims{static_cast<int64_t>(v.size())}, DType::Float64, host_device());
  for (size_t i = 0; i < v.size(); ++i) t.data<double>()[i] = v[i];
  return t;
}
double at(const Tensor& t, int64_t i) { return t.contiguous().data<double>()[i]; }
}  // namespace

TEST(Autograd, ChainRuleMatchesClosedForm) {
  Tensor x = vec({0.5, -1.0, 2.0});
  A::set_requires_grad(x, true);
  // y = sum(exp(x) * x)  ->  dy/dx = exp(x) * (1 + x)
  Tensor y = O::sum(O::mul(O::exp(x), x));
  EXPECT_STREQ(A::grad_fn_name(y), "SumBackward");
  A::backward({y}, {Tensor()}, false);
  Tensor g = A::grad(x);
  ASSERT_TRUE(g.defined());
  for (int i = 0; i < 3; ++i) {
    double xv = at(x, i);
    EXPECT_NEAR(at(g, i), std::exp(xv) * (1 + xv), 1e-12);
  }
}

TEST(Autograd, GraphIsFreedWithItsTensors) {
  int64_t before = live_handle_counter().load();
  {
    Tensor x = vec({1, 2, 3});
    A::set_requires_grad(x, true);
    Tensor y = O::sum(O::mul(O::exp(x), O::sin(x)));
    A::backward({y}, {Tensor()}, false);
  }
  EXPECT_EQ(live_handle_counter().load(), before);
  {
    Tensor x = vec({1, 2, 3});
    A::set_requires_grad(x, true);
    Tensor y = O::sum(O::mul(x, x));  // graph never run
  }
  EXPECT_EQ(live_handle_counter().load(), before);
}

TEST(Autograd, RetainGraphAndSecondBackwardError) {
  Tensor x = vec({1, 2});
  A::set_requires_grad(x, true);
  Tensor y = O::sum(O::square(x));
  A::backward({y}, {Tensor()}, true);
  A::backward({y}, {Tensor()}, false);
  EXPECT_DOUBLE_EQ(at(A::grad(x), 1), 8.0);
  try {
    A::backward({y}, {Tensor()}, false);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("second time"), std::string::npos);
  }
}

TEST(Autograd, GradDoesNotAccumulate) {
  Tensor a = vec({1, 2}), b = vec({3, 4});
  A::set_requires_grad(a, true);
  A::set_requires_grad(b, true);
  Tensor y = O::sum(O::mul(a, b));
  auto gs = A::grad({y}, {Tensor()}, {a, b}, false, false);
  EXPECT_DOUBLE_EQ(at(gs[0], 0), 3.0);
  EXPECT_DOUBLE_EQ(at(gs[1], 1), 2.0);
  EXPECT_FALSE(A::grad(a).defined());
}

TEST(Autograd, PostAccumulateGradHooksSeeTheFinalGradientOnce) {
  int64_t before = live_handle_counter().load();
  {
    Tensor x = vec({1.0, -2.0}), w = vec({3.0, 0.5});
    A::set_requires_grad(x, true);
    A::set_requires_grad(w, true);
    std::vector<std::string> order;
    std::vector<double> seen;
    // x is used twice: y = sum(x * w + x * x)  ->  dy/dx = w + 2x, dy/dw = x
    A::add_post_accumulate_grad_hook(x, [&](const Tensor& leaf) {
      order.push_back("x");
      seen.push_back(at(A::grad(leaf), 0));
      seen.push_back(at(A::grad(leaf), 1));
    });
    int64_t wid = A::add_post_accumulate_grad_hook(w, [&](const Tensor&) { order.push_back("w"); });
    Tensor y = O::sum(O::add(O::mul(x, w), O::mul(x, x)));
    A::backward({y}, {Tensor()}, false);
    ASSERT_EQ(order.size(), 2u);
    EXPECT_EQ(std::count(order.begin(), order.end(), "x"), 1);
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_DOUBLE_EQ(seen[0], 3.0 + 2.0);
    EXPECT_DOUBLE_EQ(seen[1], 0.5 - 4.0);
    // grad() leaves .grad alone and runs no hook; removal works once
    A::grad({O::sum(O::mul(x, w))}, {Tensor()}, {x}, false, false);
    EXPECT_EQ(order.size(), 2u);
    EXPECT_TRUE(A::remove_post_accumulate_grad_hook(w, wid));
    EXPECT_FALSE(A::remove_post_accumulate_grad_hook(w, wid));
    A::backward({O::sum(O::mul(x, w))}, {Tensor()}, false);
    EXPECT_EQ(order.size(), 3u);
    EXPECT_EQ(order.back(), "x");
    // a throwing hook aborts backward with its error
    A::add_post_accumulate_grad_hook(w, [](const Tensor&) { throw Error(ErrorCode::Runtime, "hook says no"); });
    try {
      A::backward({O::sum(O::mul(x, w))}, {Tensor()}, false);
      FAIL() << "expected an error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("hook says no"), std::string::npos);
    }
    // only leaves that require grad
    EXPECT_THROW(A::add_post_accumulate_grad_hook(O::mul(x, w), [](const Tensor&) {}), Error);
    EXPECT_THROW(A::add_post_accumulate_grad_hook(vec({1.0}), [](const Tensor&) {}), Error);
  }
  EXPECT_EQ(live_handle_counter().load(), before);  // hooks die with their leaf
}

TEST(Autograd, GradModeIsThreadLocalAndNoGradStopsRecording) {
  Tensor x = vec({1});
  A::set_requires_grad(x, true);
  {
    A::NoGradGuard ng;
    EXPECT_FALSE(A::requires_grad(O::mul(x, x)));
    bool other = false;
    std::thread t([&] { other = A::grad_mode(); });
    t.join();
    EXPECT_TRUE(other);
  }
  EXPECT_TRUE(A::requires_grad(O::mul(x, x)));
}

TEST(Autograd, OpReturningItsInputGetsItsOwnHistory) {
  Tensor x = vec({1, 2});
  A::set_requires_grad(x, true);
  Tensor c = O::contiguous(x);  // the impl returns x itself
  EXPECT_NE(c.impl(), x.impl());
  EXPECT_TRUE(A::is_leaf(x));
  A::backward({O::sum(c)}, {Tensor()}, false);
  EXPECT_DOUBLE_EQ(at(A::grad(x), 0), 1.0);
}

TEST(Autograd, InPlaceOnRequiresGradIsAnError) {
  Tensor x = vec({1, 2});
  A::set_requires_grad(x, true);
  EXPECT_THROW(O::copy_(x, vec({0, 0})), Error);
  Tensor y = O::exp(x);
  {
    A::NoGradGuard ng;
    O::copy_(y, vec({0, 0}));  // bumps the version of a tensor saved by exp's node
  }
  EXPECT_THROW(A::backward({O::sum(y)}, {Tensor()}, false), Error);
}
