// A whole training step through the C++ API (conv2d, batch_norm, relu, max_pool2d, dropout,
// linear, layer_norm, cross_entropy, backward, clip_grad_norm_, adam_step_), so that the training
// kernels also run under AddressSanitizer/UBSan; the loss must go down over a few steps.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "core/autograd/autograd.h"
#include "core/ops/generated/ops_gen.h"
#include "core/tensor/tensor.h"

using namespace heron;
namespace O = heron::ops;
namespace A = heron::autograd;

namespace {
Tensor randn(const Dims& shape, uint32_t seed, double scale) {
  Tensor t = Tensor::empty(shape, DType::Float32, host_device());
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.f, static_cast<float>(scale));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(g);
  return t;
}
Tensor param(const Dims& shape, uint32_t seed, double scale) {
  Tensor t = randn(shape, seed, scale);
  A::set_requires_grad(t, true);
  return t;
}
Tensor filled(const Dims& shape, float v) {
  Tensor t = Tensor::empty(shape, DType::Float32, host_device());
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = v;
  return t;
}
}  // namespace

TEST(TrainingStep, ConvNetLossDecreasesUnderAdam) {
  const int64_t N = 8;
  Tensor x = randn({N, 1, 12, 12}, 1, 1.0);
  Tensor y = Tensor::empty({N}, DType::Int64, host_device());
  for (int64_t i = 0; i < N; ++i) y.data<int64_t>()[i] = i % 3;
  std::vector<Tensor> params = {param({4, 1, 3, 3}, 2, 0.3), param({4}, 3, 0.1), param({4}, 4, 0.1),
                                param({4}, 5, 0.1), param({3, 4 * 5 * 5}, 6, 0.1), param({3}, 7, 0.1),
                                param({3}, 8, 0.1), param({3}, 9, 0.1)};
  Tensor rm = filled({4}, 0.f), rv = filled({4}, 1.f);
  std::vector<Tensor> m1, m2;
  for (auto& p : params) {
    m1.push_back(filled(p.shape(), 0.f));
    m2.push_back(filled(p.shape(), 0.f));
  }
  double first = 0, last = 0;
  for (int step = 1; step <= 8; ++step) {
    O::Conv2dAttrs ca;
    ca.padding = Dims{1, 1};
    Tensor h = O::conv2d(x, params[0], params[1], ca);
    O::BatchNormAttrs ba;
    ba.training = true;
    h = O::batch_norm(h, params[2], params[3], rm, rv, ba)[0];
    h = O::relu(h);
    O::MaxPool2dAttrs pa;
    pa.kernel_size = Dims{2, 2};
    h = O::max_pool2d(h, pa)[0];              // (N, 4, 6, 6)
    O::AvgPool2dAttrs aa;
    aa.kernel_size = Dims{2, 2};
    aa.stride = Dims{1, 1};
    h = O::avg_pool2d(h, aa);                 // (N, 4, 5, 5)
    O::DropoutAttrs da;
    da.p = 0.1;
    h = O::dropout(h, da)[0];
    h = O::flatten(h, O::FlattenAttrs{1, -1});
    h = O::linear(h, params[4], params[5]);
    O::LayerNormAttrs la;
    la.normalized_shape = Dims{3};
    h = O::layer_norm(h, params[6], params[7], la)[0];
    Tensor loss = O::cross_entropy(h, y, Tensor());
    double l = loss.to(DType::Float64).data<double>()[0];
    if (step == 1) first = l;
    last = l;
    for (auto& p : params) A::set_grad(p, Tensor());
    A::backward({loss}, {Tensor()}, false);
    A::NoGradGuard ng;
    std::vector<Tensor> grads, all;
    for (auto& p : params) {
      ASSERT_TRUE(A::grad(p).defined());
      grads.push_back(A::grad(p));
    }
    O::ClipGradNorm_Attrs cg;
    cg.max_norm = 5.0;
    O::clip_grad_norm_(grads, cg);
    for (auto* group : {&params, &grads, &m1, &m2})
      for (auto& t : *group) all.push_back(t);
    O::AdamStep_Attrs ad;
    ad.lr = 0.05;
    ad.step = step;
    O::adam_step_(all, ad);
  }
  EXPECT_LT(last, first);
}
