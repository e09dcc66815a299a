// int8 inference plans against the quantization they promise (engine/quantization.hpp): a
// convolution equals the integer arithmetic on quantized input and weights to within one step of
// its output's scale (the output scale multiplies in f32, so a value at a rounding tie may go
// either way), logits stay f32, and whole nets stay within a bound set by their number of
// quantized layers. Also the scales themselves, calibration, and the quantize command.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "convnet/cpu_features.hpp"
#include "convnet/engine/plan.hpp"
#include "convnet/engine/quantization.hpp"
#include "convnet/executor.hpp"
#include "convnet/kernels/onednn/engine.hpp"
#include "convnet/model/model.hpp"
#include "convnet/train/quantize.hpp"
#include "support/cli.hpp"
#include "support/plan_checks.hpp"
#include "support/train_data.hpp"

namespace convnet {
namespace {

PlanOptions int8_options(int64_t batch, std::vector<ActivationRange> ranges) {
  PlanOptions o;
  o.batch = batch;
  o.dtype = DType::Int8;
  o.emulate = true;  // correctness everywhere; speed is bench's business
  o.ranges = std::move(ranges);
  return o;
}

double round_even(double v) { return std::nearbyint(v); }

TEST(Quantization, ScalesOfAHandMadeTensor) {
  // Two output channels of four weights: the largest magnitude maps to 127; a zero channel keeps
  // scale 1; rounding is to nearest even, and nothing reaches -128.
  const float w[] = {0.5F, -2.0F, 1.0F, 0.0F, 0.0F, 0.0F, 0.0F, 0.0F};
  const std::vector<float> s = weight_scales(w, 2, 4);
  ASSERT_EQ(s.size(), 2U);
  EXPECT_FLOAT_EQ(s[0], 2.0F / 127);
  EXPECT_FLOAT_EQ(s[1], 1.0F);
  EXPECT_EQ(quantize_weight(-2.0F, s[0]), -127);
  EXPECT_EQ(quantize_weight(0.5F, s[0]), 32);  // 31.75
  EXPECT_EQ(quantize_weight(1.0F, s[0]), 64);  // 63.5: the even neighbour
  EXPECT_EQ(quantize_weight(-5.0F, s[0]), -127);
  EXPECT_FLOAT_EQ(activation_scale({0.0F, 5.1F}), 5.1F / 255);  // never negative: u8
  EXPECT_TRUE(quantized_unsigned({0.0F, 5.1F}));
  EXPECT_FLOAT_EQ(activation_scale({-6.35F, 2.0F}), 6.35F / 127);  // s8
  EXPECT_FALSE(quantized_unsigned({-6.35F, 2.0F}));
  EXPECT_FLOAT_EQ(activation_scale({0.0F, 0.0F}), 1.0F);
}

TEST(Quantization, CalibrationRecordsEveryNodesRange) {
  Net net = load_model_text("network r\ninput 2x3x3\nc conv 2 1x1\nr relu\n", "r.cnet");
  Executor ex(net, {.seed = 1});
  auto& store = ex.parameter_store();
  Tensor& w = store.values(1)[0];  // (2, 2, 1, 1): y0 = x0 - 2 x1, y1 = 2 x1
  w[0] = 1;
  w[1] = -2;
  w[2] = 0;
  w[3] = 2;
  for (float& b : store.values(1)[1].span()) b = 0;
  ex.parameters_changed();
  Tensor input({1, 2, 3, 3});
  for (int64_t i = 0; i < 9; ++i) {
    input[i] = static_cast<float>(i);          // x0 = 0..8
    input[9 + i] = static_cast<float>(i % 3);  // x1 = 0, 1, 2
  }
  std::vector<ActivationRange> ranges;
  observe_ranges(ex, input, ranges);
  ASSERT_EQ(ranges.size(), 3U);
  EXPECT_EQ(ranges[0].min, 0.0F);
  EXPECT_EQ(ranges[0].max, 8.0F);
  EXPECT_EQ(ranges[1].min, -2.0F);  // y0 = i - 2 (i mod 3): 0, -1, -2, 3, 2, 1, 6, 5, 4; y1 = 0, 2, 4
  EXPECT_EQ(ranges[1].max, 6.0F);
  EXPECT_EQ(ranges[2].min, 0.0F);
  EXPECT_EQ(ranges[2].max, 6.0F);
  Tensor more({1, 2, 3, 3});
  more[0] = -20;
  observe_ranges(ex, more, ranges);
  EXPECT_EQ(ranges[0].min, -20.0F);  // widened
  EXPECT_EQ(ranges[0].max, 8.0F);    // kept
}

TEST(PlanInt8, ConvolutionEqualsTheIntegerArithmeticWithinOneStep) {
  if (!cpu_features().avx2) GTEST_SKIP() << "oneDNN's int8 kernels need AVX2: " << cpu_features().describe();
  Net net = load_model_text("network one\ninput 6x9x9\nc conv 8 3x3 stride 2 pad 1 groups 2\nr relu\n", "one.cnet");
  Executor ex(net, {.seed = 3});
  auto& store = ex.parameter_store();
  for (float& b : store.values(1)[1].span()) b = 0.1F * b + 0.05F;
  const Tensor input = random_tensor({2, 6, 9, 9}, 4);
  std::vector<ActivationRange> ranges;
  observe_ranges(ex, input, ranges);
  onednn::Engine engine;
  PlanOptions o = int8_options(2, ranges);
  o.taps = {"c"};
  Plan plan(net, store, engine, o);
  const Tensor* inputs[] = {&input};
  const Tensor out = plan.forward(inputs);
  const Tensor conv = plan.tap("c");  // (2, 8, 5, 5), dequantized

  const float s_x = activation_scale(ranges[0]);
  const float s_y = activation_scale(ranges[1]);
  ASSERT_FALSE(quantized_unsigned(ranges[1]));
  const Tensor& w = store.values(1)[0];  // (8, 3, 3, 3)
  const Tensor& bias = store.values(1)[1];
  const std::vector<float> s_w = weight_scales(w.data(), 8, 27);
  int64_t exact = 0, total = 0;
  for (int64_t n = 0; n < 2; ++n) {
    for (int64_t k = 0; k < 8; ++k) {
      for (int64_t i = 0; i < 5; ++i) {
        for (int64_t j = 0; j < 5; ++j) {
          int64_t acc = 0;
          for (int64_t c = 0; c < 3; ++c) {
            for (int64_t dy = 0; dy < 3; ++dy) {
              for (int64_t dx = 0; dx < 3; ++dx) {
                const int64_t y = i * 2 - 1 + dy, x = j * 2 - 1 + dx;
                if (y < 0 || y >= 9 || x < 0 || x >= 9) continue;
                const float xv = input[((n * 6 + k / 4 * 3 + c) * 9 + y) * 9 + x];
                const auto x_q = static_cast<int64_t>(std::clamp(round_even(xv / s_x), -128.0, 127.0));
                acc += x_q * quantize_weight(w[((k * 3 + c) * 3 + dy) * 3 + dx], s_w[static_cast<size_t>(k)]);
              }
            }
          }
          const double real =
              static_cast<double>(s_x) * s_w[static_cast<size_t>(k)] * static_cast<double>(acc) + bias[k];
          const double expected = s_y * std::clamp(round_even(real / s_y), -128.0, 127.0);
          const int64_t at = ((n * 8 + k) * 5 + i) * 5 + j;
          EXPECT_LE(std::fabs(conv[at] - expected), 1.001 * s_y) << at;
          exact += std::fabs(conv[at] - expected) < 1e-3 * s_y;
          EXPECT_EQ(out[at], std::max(conv[at], 0.0F)) << "the ReLU of the quantized value, exactly";
          ++total;
        }
      }
    }
  }
  EXPECT_EQ(total, 2 * 8 * 5 * 5);
  EXPECT_GE(exact, total * 95 / 100) << "ties are rare: nearly every value is the exact quantized one";
}

TEST(PlanInt8, LogitsAreF32AndWithinTheScalesOfTheExactSum) {
  if (!cpu_features().avx2) GTEST_SKIP() << "oneDNN's int8 kernels need AVX2: " << cpu_features().describe();
  Net net = load_model_text("network logits\ninput 40\nfc 7\n", "logits.cnet");
  Executor ex(net, {.seed = 5});
  const Tensor input = random_tensor({3, 40}, 6);
  std::vector<ActivationRange> ranges;
  observe_ranges(ex, input, ranges);
  onednn::Engine engine;
  Plan plan(net, ex.parameter_store(), engine, int8_options(3, ranges));
  const Tensor* inputs[] = {&input};
  const Tensor& out = plan.forward(inputs);
  const Tensor& w = ex.parameter_store().values(1)[0];  // (7, 40)
  const Tensor& b = ex.parameter_store().values(1)[1];
  const float s_x = activation_scale(ranges[0]);
  const std::vector<float> s_w = weight_scales(w.data(), 7, 40);
  for (int64_t n = 0; n < 3; ++n) {
    for (int64_t k = 0; k < 7; ++k) {
      int64_t acc = 0;
      for (int64_t i = 0; i < 40; ++i) {
        acc += static_cast<int64_t>(std::clamp(round_even(input[n * 40 + i] / s_x), -128.0, 127.0)) *
               quantize_weight(w[k * 40 + i], s_w[static_cast<size_t>(k)]);
      }
      const double expected = static_cast<double>(s_x) * s_w[static_cast<size_t>(k)] * static_cast<double>(acc) + b[k];
      EXPECT_NEAR(out[n * 7 + k], expected, 1e-5 * (std::fabs(expected) + 1)) << n << "," << k;
    }
  }
}

}  // namespace
}  // namespace convnet

namespace convnet {
namespace {

// Whole nets: int8 against the f32 reference kernels, ranges calibrated on the same input. Each
// quantized tensor is off by at most half a step, 1/254 of its range for s8 (1/510 for u8), and
// each layer with weights adds its input's and its weights' rounding: about 2/254 of the scale per
// layer, adding up like a random walk over L layers, so the logits are asserted within
// 4 sqrt(L) / 127 of their scale (measured on these nets: at most 0.45 of that). Poisoning dead
// memory changes no bit.
class PlanInt8Nets : public ::testing::TestWithParam<PrecisionCase> {};

TEST_P(PlanInt8Nets, StayWithinTheQuantizationBoundOfTheReference) {
  if (!cpu_features().avx2) GTEST_SKIP() << "oneDNN's int8 kernels need AVX2: " << cpu_features().describe();
  Net net = load_precision_case(GetParam());
  const Tensor input = random_batch(net, 3);
  const Tensor expected = reference_output(net, input);

  Executor planned(net, {.seed = 7});
  randomize_batch_norms(planned, 11);
  std::vector<ActivationRange> ranges;
  observe_ranges(planned, input, ranges);
  onednn::Engine engine;
  const Tensor* inputs[] = {&input};
  Plan plan(net, planned.parameter_store(), engine, int8_options(2, ranges));
  const Tensor got = plan.forward(inputs);
  int layers = 0;
  for (const Node& node : net.nodes()) layers += node.params.empty() ? 0 : 1;
  const double error = relative_error(got, expected);
  EXPECT_LT(error, 4.0 * std::sqrt(layers) / 127) << net.name() << ": " << layers << " layers with parameters";
  EXPECT_GT(error, 0.0) << net.name() << ": int8 arithmetic cannot be exact here";

  PlanOptions poisoned = int8_options(2, ranges);
  poisoned.poison_dead = true;
  Plan checked(net, planned.parameter_store(), engine, poisoned);
  const Tensor again = checked.forward(inputs);
  EXPECT_EQ(std::memcmp(again.data(), got.data(), static_cast<size_t>(got.numel()) * 4), 0) << net.name();
}

INSTANTIATE_TEST_SUITE_P(Nets, PlanInt8Nets, ::testing::ValuesIn(precision_cases()),
                         [](const auto& info) { return precision_case_name(info.param); });

}  // namespace
}  // namespace convnet
