// Reference kernels for local response normalisation and batch normalisation: hand-computed
// forwards (PyTorch's LRN window, the running-statistics update) and gradient checks in double.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "convnet/kernels/reference/batch_norm.hpp"
#include "convnet/kernels/reference/lrn.hpp"
#include "support/gradcheck.hpp"

namespace convnet {
namespace {

namespace ref = kernels::reference;
using testing::Buffers;
using testing::expect_gradients_match;
using Vec = std::vector<double>;

// ---------------------------------------------------------------------------------------------
// Local response normalisation

TEST(NormKernelLrn, ForwardByHandOddSize) {
  // size 3 (window c-1 .. c+1), alpha 3 (alpha/size = 1), beta 1, k 1, x = (1, 2, 3):
  // s0 = 1 + 1 + 4 = 6, s1 = 1 + 1 + 4 + 9 = 15, s2 = 1 + 4 + 9 = 14.
  const ref::LrnGeometry g{.batch = 1, .channels = 3, .positions = 1, .size = 3, .alpha = 3, .beta = 1, .k = 1};
  const Vec x = {1, 2, 3};
  Vec y(3), scale(3);
  ref::lrn_forward(g, x.data(), y.data(), scale.data());
  EXPECT_EQ(scale, (Vec{6, 15, 14}));
  EXPECT_DOUBLE_EQ(y[0], 1.0 / 6);
  EXPECT_DOUBLE_EQ(y[1], 2.0 / 15);
  EXPECT_DOUBLE_EQ(y[2], 3.0 / 14);
}

TEST(NormKernelLrn, ForwardByHandEvenSizeUsesPyTorchsAsymmetricWindow) {
  // size 2: size/2 = 1 channel before, (size-1)/2 = 0 after. alpha 2 (alpha/size = 1), beta 1,
  // k 1, on two positions: position 0 has x = (1, 2, 3), position 1 has x = (0, 1, 0).
  // Position 0: s = (1 + 1, 1 + 1 + 4, 1 + 4 + 9) = (2, 6, 14). Position 1: (1, 2, 2).
  const ref::LrnGeometry g{.batch = 1, .channels = 3, .positions = 2, .size = 2, .alpha = 2, .beta = 1, .k = 1};
  const Vec x = {1, 0, 2, 1, 3, 0};  // (C, P) = channel-major
  Vec y(6), scale(6);
  ref::lrn_forward(g, x.data(), y.data(), scale.data());
  EXPECT_EQ(scale, (Vec{2, 1, 6, 2, 14, 2}));
  EXPECT_DOUBLE_EQ(y[0], 0.5);
  EXPECT_DOUBLE_EQ(y[2], 2.0 / 6);
  EXPECT_DOUBLE_EQ(y[3], 0.5);
  EXPECT_DOUBLE_EQ(y[4], 3.0 / 14);
  // AlexNet's defaults (size 5, alpha 1e-4, beta 0.75, k 2) on one channel of value 10:
  // s = 2 + 1e-4/5 * 100 = 2.002, y = 10 / 2.002^0.75.
  const ref::LrnGeometry alexnet{.batch = 1, .channels = 1, .positions = 1};
  const Vec one = {10};
  Vec out(1), s(1);
  ref::lrn_forward(alexnet, one.data(), out.data(), s.data());
  EXPECT_DOUBLE_EQ(s[0], 2.002);
  EXPECT_DOUBLE_EQ(out[0], 10 / std::pow(2.002, 0.75));
}

TEST(NormKernelLrn, Gradients) {
  const std::vector<ref::LrnGeometry> cases = {
      {.batch = 2, .channels = 7, .positions = 3, .size = 5, .alpha = 0.5, .beta = 0.75, .k = 2},
      {.batch = 1, .channels = 5, .positions = 1, .size = 4, .alpha = 1.0, .beta = 0.6, .k = 1},  // even size
      {.batch = 2, .channels = 3, .positions = 2, .size = 7, .alpha = 2.0, .beta = 1.2, .k = 1},  // size > C
      {.batch = 1, .channels = 2, .positions = 13, .size = 1, .alpha = 1.0, .beta = 0.75, .k = 1},
  };
  for (const ref::LrnGeometry& g : cases) {
    SCOPED_TRACE(g.size);
    const auto n = static_cast<size_t>(g.batch * g.channels * g.positions);
    auto forward = [&](const Buffers& v) {
      Vec y(n), scale(n);
      ref::lrn_forward(g, v[0].data(), y.data(), scale.data());
      return y;
    };
    auto backward = [&](const Buffers& v, const Vec& dy, Buffers& grads, bool accumulate) {
      Vec y(n), scale(n);
      ref::lrn_forward(g, v[0].data(), y.data(), scale.data());
      ref::lrn_backward(g, v[0].data(), scale.data(), dy.data(), grads[0].data(), accumulate);
    };
    expect_gradients_match(forward, backward, {testing::random_values(n, 50, -2, 2)});
  }
}

// ---------------------------------------------------------------------------------------------
// Batch normalisation

TEST(NormKernelBatchNorm, TrainingForwardAndRunningStatsByHand) {
  // (N=2, C=1, H=1, W=2), x = (1, 2 | 3, 6): mean 3, squared deviations 4 + 1 + 0 + 9 = 14,
  // biased var 14/4 = 3.5, unbiased 14/3. eps 0.5: inv_std = 1/sqrt(4) = 0.5.
  // gamma 2, beta 1: y = 2 * (x - 3) * 0.5 + 1 = x - 2.
  const ref::BatchNormGeometry g{.batch = 2, .channels = 1, .positions = 2};
  const Vec x = {1, 2, 3, 6};
  const Vec gamma = {2}, beta = {1};
  Vec y(4), running_mean = {0}, running_var = {1}, mean(1), inv_std(1);
  ref::batch_norm_forward_training(g, 0.5, 0.1, x.data(), gamma.data(), beta.data(), y.data(), running_mean.data(),
                                   running_var.data(), mean.data(), inv_std.data());
  EXPECT_EQ(y, (Vec{-1, 0, 1, 4}));
  EXPECT_EQ(mean[0], 3);
  EXPECT_EQ(inv_std[0], 0.5);
  // running_mean = 0.9 * 0 + 0.1 * 3 = 0.3; running_var = 0.9 * 1 + 0.1 * 14/3 = 1.3666...
  EXPECT_DOUBLE_EQ(running_mean[0], 0.3);
  EXPECT_DOUBLE_EQ(running_var[0], 0.9 + 1.4 / 3);
  // Inference with the batch's own statistics (mean 3, var 3.5) reproduces the training output.
  const Vec rm = {3}, rv = {3.5};
  Vec z(4);
  ref::batch_norm_forward_inference(g, 0.5, x.data(), gamma.data(), beta.data(), rm.data(), rv.data(), z.data());
  EXPECT_EQ(z, y);
}

TEST(NormKernelBatchNorm, VectorsNormalisePerFeature) {
  // (N=2, C=2): feature 0 has (1, 3), mean 2, var 1; feature 1 has (10, 30), mean 20, var 100.
  // eps 0, gamma 1, beta 0: both become (-1, 1).
  const ref::BatchNormGeometry g{.batch = 2, .channels = 2, .positions = 1};
  const Vec x = {1, 10, 3, 30};
  const Vec gamma = {1, 1}, beta = {0, 0};
  Vec y(4), rm = {0, 0}, rv = {1, 1}, mean(2), inv_std(2);
  ref::batch_norm_forward_training(g, 0.0, 0.1, x.data(), gamma.data(), beta.data(), y.data(), rm.data(), rv.data(),
                                   mean.data(), inv_std.data());
  EXPECT_EQ(y, (Vec{-1, -1, 1, 1}));
  EXPECT_EQ(mean, (Vec{2, 20}));
  EXPECT_DOUBLE_EQ(inv_std[1], 0.1);
  // Unbiased variances 2 and 200: running_var = 0.9 + 0.2 and 0.9 + 20.
  EXPECT_DOUBLE_EQ(rv[0], 1.1);
  EXPECT_DOUBLE_EQ(rv[1], 20.9);
}

TEST(NormKernelBatchNorm, TrainingGradientsForInputGammaAndBeta) {
  for (const ref::BatchNormGeometry g : {ref::BatchNormGeometry{2, 3, 5}, ref::BatchNormGeometry{3, 4, 1},
                                         ref::BatchNormGeometry{1, 2, 7}, ref::BatchNormGeometry{2, 1, 1}}) {
    SCOPED_TRACE(::testing::Message() << g.batch << "x" << g.channels << "x" << g.positions);
    const auto n = static_cast<size_t>(g.batch * g.channels * g.positions);
    const auto c = static_cast<size_t>(g.channels);
    auto forward = [&](const Buffers& v) {
      Vec y(n), rm(c, 0), rv(c, 1), mean(c), inv_std(c);
      ref::batch_norm_forward_training(g, 1e-5, 0.1, v[0].data(), v[1].data(), v[2].data(), y.data(), rm.data(),
                                       rv.data(), mean.data(), inv_std.data());
      return y;
    };
    auto backward = [&](const Buffers& v, const Vec& dy, Buffers& grads, bool accumulate) {
      Vec y(n), rm(c, 0), rv(c, 1), mean(c), inv_std(c);
      ref::batch_norm_forward_training(g, 1e-5, 0.1, v[0].data(), v[1].data(), v[2].data(), y.data(), rm.data(),
                                       rv.data(), mean.data(), inv_std.data());
      ref::batch_norm_backward(g, v[0].data(), v[1].data(), mean.data(), inv_std.data(), dy.data(), grads[0].data(),
                               grads[1].data(), grads[2].data(), accumulate);
    };
    expect_gradients_match(forward, backward,
                           {testing::random_values(n, 60, -2, 2), testing::random_values(c, 61, 0.5, 1.5),
                            testing::random_values(c, 62)});
  }
}

TEST(NormKernelBatchNorm, BackwardSkipsNullGradients) {
  const ref::BatchNormGeometry g{.batch = 2, .channels = 2, .positions = 3};
  const Vec x = testing::random_values(12, 70), dy = testing::random_values(12, 71);
  const Vec gamma = {0.7, 1.3}, beta = {0.1, -0.2};
  Vec y(12), rm(2), rv(2), mean(2), inv_std(2);
  ref::batch_norm_forward_training(g, 1e-5, 0.1, x.data(), gamma.data(), beta.data(), y.data(), rm.data(), rv.data(),
                                   mean.data(), inv_std.data());
  Vec dx_all(12), dgamma(2), dbeta(2), dx_only(12);
  ref::batch_norm_backward(g, x.data(), gamma.data(), mean.data(), inv_std.data(), dy.data(), dx_all.data(),
                           dgamma.data(), dbeta.data(), false);
  ref::batch_norm_backward(g, x.data(), gamma.data(), mean.data(), inv_std.data(), dy.data(), dx_only.data(),
                                   nullptr, nullptr, false);
  EXPECT_EQ(dx_only, dx_all);
  // The gradient of a normalised channel sums to zero (a shift of x changes nothing).
  for (int64_t ch = 0; ch < 2; ++ch) {
    double sum = 0;
    for (int64_t nn = 0; nn < 2; ++nn) {
      for (int64_t p = 0; p < 3; ++p) sum += dx_all[static_cast<size_t>((nn * 2 + ch) * 3 + p)];
    }
    EXPECT_NEAR(sum, 0, 1e-12);
  }
}

}  // namespace
}  // namespace convnet
