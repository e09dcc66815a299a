// The float reference kernels against PyTorch's float64 answers (tests/golden/*.safetensors from
// tests/golden/generate.py), one test per layer kind over all of its fixture cases.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "convnet/kernels/reference/activation.hpp"
#include "convnet/kernels/reference/batch_norm.hpp"
#include "convnet/kernels/reference/conv2d.hpp"
#include "convnet/kernels/reference/linear.hpp"
#include "convnet/kernels/reference/lrn.hpp"
#include "convnet/kernels/reference/pool2d.hpp"
#include "convnet/kernels/reference/softmax.hpp"
#include "support/golden.hpp"

namespace convnet {
namespace {

namespace ref = kernels::reference;
using testing::expect_tensor_near;
using testing::Fixture;
using testing::Tolerance;
using Floats = std::vector<float>;

// Inputs and weights are O(1) and the fixtures are float64 maths rounded once to float32, so every
// tolerance below bounds float32 rounding in the kernel's own arithmetic; each leaves a 15-30x margin
// over the worst difference seen (in parentheses).

// Sums of up to ~100 products of O(1) values in float32 (1.4e-6 on a grad_weight of 3.4).
constexpr Tolerance kSums{.abs = 1e-5, .rel = 1e-5};
// Elementwise maths (exp, expm1, tanh, one division): a few ulps of results below ~3 (6e-8).
constexpr Tolerance kElementwise{.abs = 1e-6, .rel = 1e-6};
// Pooling: a max is exact; an average or a gradient adds at most 9 values (1.2e-7).
constexpr Tolerance kPool{.abs = 1e-6, .rel = 1e-6};
// LRN: pow() of a scale near k and a windowed sum of 5 squares of inputs up to 20 (9.5e-7 on 8.1).
constexpr Tolerance kLrn{.abs = 1e-6, .rel = 1e-5};
// Batch norm: means and variances over 5..18 values, then the backward's cancelling sums (4e-7).
constexpr Tolerance kBatchNorm{.abs = 1e-5, .rel = 1e-5};

Floats poisoned(size_t n) { return Floats(n, std::numeric_limits<float>::quiet_NaN()); }

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int64_t opt(const std::map<std::string, std::vector<double>>& options, const std::string& key, size_t i = 0) {
  return static_cast<int64_t>(options.at(key).at(i));
}

TEST(GoldenLayers, Conv2d) {
  const Fixture f("conv2d.safetensors");
  for (const std::string c : {"basic", "stride_pad", "rect", "dilation", "groups", "depthwise", "nobias"}) {
    SCOPED_TRACE("case " + c);
    const auto o = f.options(c);
    const auto& xs = f.shape(c + ".input");
    const auto& ws = f.shape(c + ".weight");
    const auto& ys = f.shape(c + ".output");
    const ref::Conv2dGeometry g{.batch = xs[0], .in_channels = xs[1], .in_h = xs[2], .in_w = xs[3],
                                .out_channels = ys[1], .out_h = ys[2], .out_w = ys[3], .kernel_h = ws[2],
                                .kernel_w = ws[3], .stride_h = opt(o, "stride"), .stride_w = opt(o, "stride", 1),
                                .pad_h = opt(o, "pad"), .pad_w = opt(o, "pad", 1), .dilation_h = opt(o, "dilation"),
                                .dilation_w = opt(o, "dilation", 1), .groups = opt(o, "groups")};
    const bool bias = opt(o, "bias") != 0;
    const float* b = bias ? f.values(c + ".bias").data() : nullptr;
    const Floats& x = f.values(c + ".input");
    const Floats& w = f.values(c + ".weight");

    Floats y = poisoned(static_cast<size_t>(numel(ys)));
    ref::conv2d_forward<float>(g, x.data(), w.data(), b, y.data());
    expect_tensor_near(y, f.values(c + ".output"), kSums, "output");

    Floats dx = poisoned(x.size()), dw = poisoned(w.size()), db = poisoned(bias ? static_cast<size_t>(ys[1]) : 0);
    ref::conv2d_backward<float>(g, x.data(), w.data(), f.values(c + ".grad_output").data(), dx.data(), dw.data(),
                                bias ? db.data() : nullptr, false);
    expect_tensor_near(dx, f.values(c + ".grad_input"), kSums, "grad_input");
    expect_tensor_near(dw, f.values(c + ".grad_weight"), kSums, "grad_weight");
    if (bias) expect_tensor_near(db, f.values(c + ".grad_bias"), kSums, "grad_bias");
  }
}

TEST(GoldenLayers, Linear) {
  const Fixture f("linear.safetensors");
  for (const std::string c : {"basic", "nobias"}) {
    SCOPED_TRACE("case " + c);
    const bool bias = opt(f.options(c), "bias") != 0;
    const auto& ws = f.shape(c + ".weight");
    const int64_t batch = f.shape(c + ".input")[0], out = ws[0], in = ws[1];
    const float* b = bias ? f.values(c + ".bias").data() : nullptr;
    const Floats& x = f.values(c + ".input");
    const Floats& w = f.values(c + ".weight");

    Floats y = poisoned(static_cast<size_t>(batch * out));
    ref::linear_forward<float>(batch, in, out, x.data(), w.data(), b, y.data());
    expect_tensor_near(y, f.values(c + ".output"), kSums, "output");

    Floats dx = poisoned(x.size()), dw = poisoned(w.size()), db = poisoned(bias ? static_cast<size_t>(out) : 0);
    ref::linear_backward<float>(batch, in, out, x.data(), w.data(), f.values(c + ".grad_output").data(), dx.data(),
                                dw.data(), bias ? db.data() : nullptr, false);
    expect_tensor_near(dx, f.values(c + ".grad_input"), kSums, "grad_input");
    expect_tensor_near(dw, f.values(c + ".grad_weight"), kSums, "grad_weight");
    if (bias) expect_tensor_near(db, f.values(c + ".grad_bias"), kSums, "grad_bias");
  }
}

TEST(GoldenLayers, Pool2d) {
  const Fixture f("pool2d.safetensors");
  for (const std::string kind : {"max", "avg"}) {
    for (const std::string shape : {"basic", "ceil", "pad", "ceil_pad", "rect"}) {
      const std::string c = kind + "_" + shape;
      SCOPED_TRACE("case " + c);
      ASSERT_EQ(f.option_word(c, "kind"), kind);
      const auto o = f.options(c);
      const auto& xs = f.shape(c + ".input");
      const auto& ys = f.shape(c + ".output");
      const ref::Pool2dGeometry g{.batch = xs[0], .channels = xs[1], .in_h = xs[2], .in_w = xs[3], .out_h = ys[2],
                                  .out_w = ys[3], .kernel_h = opt(o, "kernel"), .kernel_w = opt(o, "kernel", 1),
                                  .stride_h = opt(o, "stride"), .stride_w = opt(o, "stride", 1),
                                  .pad_h = opt(o, "pad"), .pad_w = opt(o, "pad", 1)};
      const Floats& x = f.values(c + ".input");
      Floats y = poisoned(static_cast<size_t>(numel(ys))), dx = poisoned(x.size());
      const Floats& dy = f.values(c + ".grad_output");
      if (kind == "max") {
        std::vector<int64_t> argmax(y.size(), -1);
        ref::max_pool2d_forward<float>(g, x.data(), y.data(), argmax.data());
        ref::max_pool2d_backward<float>(g, argmax.data(), dy.data(), dx.data(), false);
      } else {
        ref::avg_pool2d_forward<float>(g, x.data(), y.data());
        ref::avg_pool2d_backward<float>(g, dy.data(), dx.data(), false);
      }
      expect_tensor_near(y, f.values(c + ".output"), kPool, "output");
      expect_tensor_near(dx, f.values(c + ".grad_input"), kPool, "grad_input");
    }
  }
}

TEST(GoldenLayers, LocalResponseNorm) {
  const Fixture f("lrn.safetensors");
  for (const std::string c : {"alexnet", "strong", "even"}) {
    SCOPED_TRACE("case " + c);
    const auto o = f.options(c);
    const auto& xs = f.shape(c + ".input");
    const ref::LrnGeometry g{.batch = xs[0], .channels = xs[1], .positions = xs[2] * xs[3], .size = opt(o, "size"),
                             .alpha = o.at("alpha")[0], .beta = o.at("beta")[0], .k = o.at("k")[0]};
    const Floats& x = f.values(c + ".input");
    Floats y = poisoned(x.size()), scale = poisoned(x.size()), dx = poisoned(x.size());
    ref::lrn_forward<float>(g, x.data(), y.data(), scale.data());
    ref::lrn_backward<float>(g, x.data(), scale.data(), f.values(c + ".grad_output").data(), dx.data(), false);
    expect_tensor_near(y, f.values(c + ".output"), kLrn, "output");
    expect_tensor_near(dx, f.values(c + ".grad_input"), kLrn, "grad_input");
  }
}

TEST(GoldenLayers, BatchNormTraining) {
  const Fixture f("batch_norm.safetensors");
  for (const std::string c : {"volume", "vector"}) {
    SCOPED_TRACE("case " + c);
    const auto o = f.options(c);
    const auto& xs = f.shape(c + ".input");
    const ref::BatchNormGeometry g{.batch = xs[0], .channels = xs[1], .positions = numel(xs) / (xs[0] * xs[1])};
    const auto eps = static_cast<float>(o.at("eps")[0]);
    const auto momentum = static_cast<float>(o.at("momentum")[0]);
    const Floats& x = f.values(c + ".input");
    const Floats& gamma = f.values(c + ".weight");
    Floats running_mean = f.copy(c + ".running_mean"), running_var = f.copy(c + ".running_var");
    Floats y = poisoned(x.size()), mean = poisoned(gamma.size()), inv_std = poisoned(gamma.size());
    ref::batch_norm_forward_training<float>(g, eps, momentum, x.data(), gamma.data(), f.values(c + ".bias").data(),
                                            y.data(), running_mean.data(), running_var.data(), mean.data(),
                                            inv_std.data());
    expect_tensor_near(y, f.values(c + ".output"), kBatchNorm, "output");
    expect_tensor_near(running_mean, f.values(c + ".running_mean_after"), kBatchNorm, "running_mean");
    expect_tensor_near(running_var, f.values(c + ".running_var_after"), kBatchNorm, "running_var (unbiased)");

    Floats dx = poisoned(x.size()), dgamma = poisoned(gamma.size()), dbeta = poisoned(gamma.size());
    ref::batch_norm_backward<float>(g, x.data(), gamma.data(), mean.data(), inv_std.data(),
                                    f.values(c + ".grad_output").data(), dx.data(), dgamma.data(), dbeta.data(),
                                    false);
    expect_tensor_near(dx, f.values(c + ".grad_input"), kBatchNorm, "grad_input");
    expect_tensor_near(dgamma, f.values(c + ".grad_weight"), kBatchNorm, "grad_weight");
    expect_tensor_near(dbeta, f.values(c + ".grad_bias"), kBatchNorm, "grad_bias");
  }
}

TEST(GoldenLayers, Activations) {
  const Fixture f("activation.safetensors");
  const Floats& x = f.values("input");
  const Floats& dy = f.values("grad_output");
  const auto n = static_cast<int64_t>(x.size());
  for (const std::string c : {"relu", "leaky", "leaky_default", "elu", "elu_half", "sigmoid", "tanh"}) {
    SCOPED_TRACE("case " + c);
    const std::string kind = f.option_word(c, "kind");
    const auto o = f.options(c);
    Floats y = poisoned(x.size()), dx = poisoned(x.size());
    if (kind == "relu") {
      ref::relu_forward<float>(n, x.data(), y.data());
      ref::relu_backward<float>(n, y.data(), dy.data(), dx.data(), false);
    } else if (kind == "leaky") {
      const auto slope = static_cast<float>(o.at("slope")[0]);
      ref::leaky_relu_forward<float>(n, slope, x.data(), y.data());
      ref::leaky_relu_backward<float>(n, slope, y.data(), dy.data(), dx.data(), false);
    } else if (kind == "elu") {
      const auto alpha = static_cast<float>(o.at("alpha")[0]);
      ref::elu_forward<float>(n, alpha, x.data(), y.data());
      ref::elu_backward<float>(n, alpha, y.data(), dy.data(), dx.data(), false);
    } else if (kind == "sigmoid") {
      ref::sigmoid_forward<float>(n, x.data(), y.data());
      ref::sigmoid_backward<float>(n, y.data(), dy.data(), dx.data(), false);
    } else {
      ASSERT_EQ(kind, "tanh");
      ref::tanh_forward<float>(n, x.data(), y.data());
      ref::tanh_backward<float>(n, y.data(), dy.data(), dx.data(), false);
    }
    expect_tensor_near(y, f.values(c + ".output"), kElementwise, "output");
    expect_tensor_near(dx, f.values(c + ".grad_input"), kElementwise, "grad_input");
  }
}

TEST(GoldenLayers, Softmax) {
  const Fixture f("softmax.safetensors");
  for (const std::string c : {"vector", "volume"}) {
    SCOPED_TRACE("case " + c);
    const auto& xs = f.shape(c + ".input");
    const ref::SoftmaxGeometry g{.batch = xs[0], .channels = xs[1], .positions = numel(xs) / (xs[0] * xs[1])};
    const Floats& x = f.values(c + ".input");
    Floats y = poisoned(x.size()), dx = poisoned(x.size());
    ref::softmax_forward<float>(g, x.data(), y.data());
    ref::softmax_backward<float>(g, y.data(), f.values(c + ".grad_output").data(), dx.data(), false);
    expect_tensor_near(y, f.values(c + ".output"), kElementwise, "output");
    expect_tensor_near(dx, f.values(c + ".grad_input"), kElementwise, "grad_input");
  }
}

TEST(GoldenLayers, SoftmaxCrossEntropy) {
  const Fixture f("cross_entropy.safetensors");
  for (const std::string c : {"basic", "large"}) {
    SCOPED_TRACE("case " + c);
    const auto& shape = f.shape(c + ".logits");
    const Floats& logits = f.values(c + ".logits");
    const std::vector<int64_t> labels = f.labels(c + ".labels");
    Floats probabilities = poisoned(logits.size()), grad = poisoned(logits.size());
    const float loss =
        ref::softmax_cross_entropy_forward<float>(shape[0], shape[1], logits.data(), labels.data(), probabilities.data());
    ref::softmax_cross_entropy_backward<float>(shape[0], shape[1], probabilities.data(), labels.data(), 1.0f,
                                               grad.data(), false);
    // The loss sums N log-sum-exps of logits up to 50 in size: relative float32 rounding.
    expect_tensor_near(Floats{loss}, f.values(c + ".loss"), {.abs = 1e-6, .rel = 1e-6}, "loss");
    expect_tensor_near(grad, f.values(c + ".grad_logits"), kElementwise, "grad_logits");
  }
}

}  // namespace
}  // namespace convnet
