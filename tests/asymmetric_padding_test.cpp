// Asymmetric padding (`pad P pad_end E`) for conv and maxpool, and the padchannels layer: shapes,
// printing back, the formulas, errors, and values on the reference kernels and on oneDNN (compiled
// plans, which derive the bottom/right padding from the output size, and layer by layer).
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "convnet/analysis/summary.hpp"
#include "convnet/error.hpp"
#include "convnet/executor.hpp"
#include "convnet/kernels/reference/pad_channels.hpp"
#include "convnet/model/model.hpp"
#include "support/gradcheck.hpp"

namespace convnet {
namespace {

Tensor random_tensor(std::vector<int64_t> dims, unsigned seed) {
  Tensor t(std::move(dims));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (float& v : t.span()) v = uniform(rng);
  return t;
}

std::string error_of(const std::string& text) {
  try {
    (void)load_model_text(text, "pad.cnet");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Runs `net` on `x` with the given backend (and, on oneDNN, with or without a compiled plan).
Tensor run(Net& net, const Tensor& x, Backend backend, bool plan = true, uint64_t seed = 5) {
  Executor executor(net, {.backend = backend, .seed = seed, .plan_inference = plan});
  return executor.forward(x, false);
}

TEST(AsymmetricPadding, ShapesFormulasAndPrintingBack) {
  const std::string text =
      "network t\ninput 3x13x13\np maxpool 2x2 stride 1 pad_end 1\nc conv 4 3x3 pad 1 pad_end 0\n"
      "d conv 4 3x3 pad 0 pad_end 1x2\ns conv 4 3x3 pad 1 pad_end 1\n";
  const Net net = load_model_text(text, "pad.cnet");
  EXPECT_EQ(net.node(net.find("p")).output.volume_string(), "13x13x3");
  EXPECT_EQ(net.node(net.find("c")).output.volume_string(), "12x12x4");  // (13 - 3 + 1 + 0)/1 + 1
  EXPECT_EQ(net.node(net.find("d")).output.volume_string(), "11x12x4");  // 13 - 3 + 1 (+ 2 on the width)
  EXPECT_EQ(net.node(net.find("p")).layer->args(), "2x2 stride 1 pad_end 1");
  EXPECT_EQ(net.node(net.find("c")).layer->args(), "4 3x3 pad 1 pad_end 0");
  EXPECT_EQ(net.node(net.find("d")).layer->args(), "4 3x3 pad_end 1x2");
  EXPECT_EQ(net.node(net.find("s")).layer->args(), "4 3x3 pad 1");  // pad_end equal to pad is symmetric
  const std::string printed = model::print(model::parse(text, "pad.cnet"));
  EXPECT_NE(printed.find("p maxpool 2x2 stride 1 pad_end 1\n"), std::string::npos) << printed;
  EXPECT_EQ(model::print(model::parse(printed, "again.cnet")), printed);

  const std::string explained = explain_layer(net, "c");
  EXPECT_NE(explained.find("W2 = (W1 - F + P_begin + P_end)/S + 1"), std::string::npos) << explained;
  EXPECT_NE(explained.find("(13 - 3 + 1 + 0)/1 + 1 = 12"), std::string::npos) << explained;
}

TEST(AsymmetricPadding, ErrorsShowBothSides) {
  EXPECT_EQ(error_of("network t\ninput 3x14x14\np maxpool 2x2 stride 2 pad_end 1\n"),
            "pad.cnet:3:1: p (maxpool): (14 - 2 + 0 + 1)/2 + 1 = 7.50 — a 2x2 pooling window at stride 2 does not "
            "fit a 14x14 input; try stride 1, or 'round floor' / 'round ceil' if the architecture relies on rounding");
  EXPECT_EQ(error_of("network t\ninput 3x2x2\nc conv 1 5x5 pad 0 pad_end 2\n"),
            "pad.cnet:3:1: c (conv): a 5x5 filter (spanning 5) does not fit a 2x2 input padded by 0 and 2: "
            "(2 - 5 + 0 + 2)/1 + 1 < 1; use a smaller window or more padding");
  EXPECT_EQ(error_of("network t\ninput 3x8x8\np maxpool 2x2 pad_end 2\n"),
            "pad.cnet:3:1: p (maxpool): padding 2x2 is more than half the 2x2 pooling window (PyTorch requires pad "
            "<= 1x1)");
  // Average pooling's divisor would need both sides in the compiled plan: refused at the line.
  EXPECT_EQ(error_of("network t\ninput 3x8x8\np avgpool 2x2 stride 1 pad_end 1\n"),
            "pad.cnet:3:24: avgpool: unexpected 'pad_end' (usage: avgpool KxK [stride S] [pad P] [round "
            "floor|ceil|exact])");
}

TEST(AsymmetricPadding, MaxPoolMatchesAHandLoopOnEveryPath) {
  // Darknet's 2x2 stride-1 max pooling: the window at the last row and column reads one row of padding.
  Net net = load_model_text("network t\ninput 2x5x4\np maxpool 2x2 stride 1 pad_end 1\n", "pad.cnet");
  const Tensor x = random_tensor({2, 2, 5, 4}, 1);
  Tensor expected({2, 2, 5, 4});
  for (int64_t plane = 0; plane < 4; ++plane) {
    for (int64_t h = 0; h < 5; ++h) {
      for (int64_t w = 0; w < 4; ++w) {
        float best = x[(plane * 5 + h) * 4 + w];
        for (int64_t dh = 0; dh < 2; ++dh) {
          for (int64_t dw = 0; dw < 2; ++dw) {
            if (h + dh < 5 && w + dw < 4) best = std::max(best, x[(plane * 5 + h + dh) * 4 + w + dw]);
          }
        }
        expected[(plane * 5 + h) * 4 + w] = best;
      }
    }
  }
  for (const Tensor& y :
       {run(net, x, Backend::Reference), run(net, x, Backend::OneDnn), run(net, x, Backend::OneDnn, false)}) {
    ASSERT_EQ(y.dims(), expected.dims());
    for (int64_t i = 0; i < y.numel(); ++i) EXPECT_EQ(y[i], expected[i]) << i;
  }
}

TEST(AsymmetricPadding, ConvWithTopLeftPaddingIsTheSymmetricConvCropped) {
  // pad 1 pad_end 0 reads the same windows as pad 1 on both sides, without the last row and column.
  Net asym = load_model_text("network t\ninput 3x7x6\nc conv 5 3x3 stride 1 pad 1 pad_end 0\n", "pad.cnet");
  Net sym = load_model_text("network t\ninput 3x7x6\nc conv 5 3x3 stride 1 pad 1\n", "pad.cnet");
  const Tensor x = random_tensor({2, 3, 7, 6}, 2);
  const Tensor full = run(sym, x, Backend::Reference);  // same seed: same weights
  for (const Tensor& y :
       {run(asym, x, Backend::Reference), run(asym, x, Backend::OneDnn), run(asym, x, Backend::OneDnn, false)}) {
    ASSERT_EQ(y.dims(), (std::vector<int64_t>{2, 5, 6, 5}));
    for (int64_t plane = 0; plane < 10; ++plane) {
      for (int64_t h = 0; h < 6; ++h) {
        for (int64_t w = 0; w < 5; ++w) {
          EXPECT_NEAR(y[(plane * 6 + h) * 5 + w], full[(plane * 7 + h) * 6 + w], 1e-5f);
        }
      }
    }
  }
}

TEST(AsymmetricPadding, TrainingPlanGradientsMatchTheReference) {
  const char* text =
      "network t\ninput 3x10x10\nc conv 4 3x3 stride 2 pad 0 pad_end 1\nr relu\n"
      "p maxpool 2x2 stride 1 pad_end 1\nf fc 3\n";
  Net net_ref = load_model_text(text, "pad.cnet");
  Net net_dnn = load_model_text(text, "pad.cnet");
  Executor ref(net_ref, {.backend = Backend::Reference, .seed = 3});
  Executor dnn(net_dnn, {.backend = Backend::OneDnn, .seed = 3});
  const Tensor x = random_tensor({2, 3, 10, 10}, 4);
  const Tensor y_ref = ref.forward(x, true);
  const Tensor y_dnn = dnn.forward(x, true);
  for (int64_t i = 0; i < y_ref.numel(); ++i) EXPECT_NEAR(y_dnn[i], y_ref[i], 1e-4f);
  const Tensor dy = random_tensor(y_ref.dims(), 5);
  ref.zero_grad();
  dnn.zero_grad();
  ref.backward(dy);
  dnn.backward(dy);
  const std::vector<NamedParameter> a = ref.named_parameters();
  const std::vector<NamedParameter> b = dnn.named_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t p = 0; p < a.size(); ++p) {
    ASSERT_EQ(a[p].name, b[p].name);
    if (a[p].grad == nullptr) continue;
    for (int64_t i = 0; i < a[p].grad->numel(); ++i) {
      EXPECT_NEAR((*b[p].grad)[i], (*a[p].grad)[i], 1e-4f) << a[p].name << " " << i;
    }
  }
}

TEST(PadChannels, ShapesValuesAndErrors) {
  Net net = load_model_text("network t\ninput 2x3x3\nq padchannels 5\n", "pad.cnet");
  EXPECT_EQ(net.node(net.output()).output.volume_string(), "3x3x5");
  EXPECT_EQ(net.node(net.output()).layer->args(), "5");
  const Tensor x = random_tensor({2, 2, 3, 3}, 6);
  for (const Tensor& y : {run(net, x, Backend::Reference), run(net, x, Backend::OneDnn)}) {
    ASSERT_EQ(y.dims(), (std::vector<int64_t>{2, 5, 3, 3}));
    for (int64_t n = 0; n < 2; ++n) {
      for (int64_t i = 0; i < 45; ++i) EXPECT_EQ(y[n * 45 + i], i < 18 ? x[n * 18 + i] : 0.0f);
    }
  }
  EXPECT_EQ(error_of("network t\ninput 8x3x3\nq padchannels 5\n"),
            "pad.cnet:3:1: q (padchannels): padchannels 5 cannot shrink an input of depth 8");
  EXPECT_EQ(load_model_text("network t\ninput 6\nq padchannels 9\n", "pad.cnet").node(1).output.volume_string(), "9");
}

TEST(PadChannels, GradientCheck) {
  const kernels::reference::PadChannelsGeometry g{2, 3, 5, 4};
  testing::expect_gradients_match(
      [&](const testing::Buffers& v) {
        std::vector<double> y(static_cast<size_t>(g.batch * g.out_channels * g.positions));
        kernels::reference::pad_channels_forward(g, v[0].data(), y.data());
        return y;
      },
      [&](const testing::Buffers&, const std::vector<double>& dy, testing::Buffers& grads, bool accumulate) {
        kernels::reference::pad_channels_backward(g, dy.data(), grads[0].data(), accumulate);
      },
      {std::vector<double>(static_cast<size_t>(g.batch * g.in_channels * g.positions), 0.5)});
}

}  // namespace
}  // namespace convnet
