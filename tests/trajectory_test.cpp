// Training numerics against PyTorch and by hand: one SGD step with momentum and weight decay
// computed by hand, Adam's first step, and LeNet-5's first 10 training losses from a golden file.
#include <gtest/gtest.h>

#include <cmath>

#include "convnet/error.hpp"
#include "convnet/executor.hpp"
#include "convnet/loss.hpp"
#include "convnet/model/model.hpp"
#include "convnet/train/optimizer.hpp"
#include "convnet/train/schedule.hpp"
#include "support/golden.hpp"

namespace convnet {
namespace {

// One parameter tensor w with gradient g, updated like torch.optim does.
struct OneParameter {
  Tensor value{std::vector<int64_t>{2}};
  Tensor grad{std::vector<int64_t>{2}};
  ParamSpec spec{"w", {2}};
  std::vector<NamedParameter> list() { return {{"w", &value, &grad, &spec}}; }
};

TEST(Sgd, StepWithMomentumAndWeightDecayMatchesHandComputation) {
  OneParameter p;
  p.value[0] = 1.0f;
  p.value[1] = -2.0f;
  p.grad[0] = 0.5f;
  p.grad[1] = 0.25f;
  Sgd sgd({.momentum = 0.9, .weight_decay = 0.1});
  auto params = p.list();
  sgd.step(params, 0.1);
  // d = g + 0.1 w = (0.6, 0.05); first step v = d; w -= 0.1 v -> (0.94, -2.005)
  EXPECT_FLOAT_EQ(p.value[0], 0.94f);
  EXPECT_FLOAT_EQ(p.value[1], -2.005f);
  sgd.step(params, 0.1);
  // d = (0.5 + 0.094, 0.25 - 0.2005) = (0.594, 0.0495); v = 0.9 v + d = (1.134, 0.0945); w -= 0.1 v
  EXPECT_NEAR(p.value[0], 0.94f - 0.1134f, 1e-6);
  EXPECT_NEAR(p.value[1], -2.005f - 0.00945f, 1e-6);
}

TEST(Sgd, NesterovLooksAhead) {
  OneParameter p;
  p.value[0] = 1.0f;
  p.grad[0] = 1.0f;
  Sgd sgd({.momentum = 0.5, .nesterov = true, .weight_decay = 0.0});
  auto params = p.list();
  sgd.step(params, 1.0);
  // v = d = 1; update d + 0.5 v = 1.5
  EXPECT_FLOAT_EQ(p.value[0], -0.5f);
}

TEST(Adam, FirstStepMovesEachWeightByTheLearningRate) {
  OneParameter p;
  p.value[0] = 1.0f;
  p.value[1] = 1.0f;
  p.grad[0] = 3.0f;
  p.grad[1] = -0.001f;
  Adam adam({.kind = "adam", .weight_decay = 0.0});
  auto params = p.list();
  adam.step(params, 0.01);
  // m_hat = g, v_hat = g^2: the step is lr * g / (|g| + eps) = +-lr.
  EXPECT_NEAR(p.value[0], 0.99f, 1e-6);
  EXPECT_NEAR(p.value[1], 1.01f, 1e-5);
}

TEST(Schedule, StepPlateauAndCosine) {
  Schedule step(parse_schedule("step:2"), 0.1, 10);
  EXPECT_DOUBLE_EQ(step.lr(1.5), 0.1);
  EXPECT_NEAR(step.lr(2.0), 0.01, 1e-12);
  EXPECT_NEAR(step.lr(5.0), 0.001, 1e-12);
  Schedule plateau(parse_schedule("plateau:2"), 0.1, 10);
  plateau.end_epoch(0.5);
  plateau.end_epoch(0.5);
  EXPECT_DOUBLE_EQ(plateau.lr(2), 0.1);
  plateau.end_epoch(0.4);  // second epoch without improvement: divide by 10
  EXPECT_NEAR(plateau.lr(3), 0.01, 1e-12);
  Schedule cosine(parse_schedule("cosine"), 0.1, 10);
  EXPECT_NEAR(cosine.lr(5), 0.05, 1e-12);
  EXPECT_THROW((void)parse_schedule("sometimes"), Error);
}

class LeNet5Trajectory : public ::testing::TestWithParam<Backend> {};

TEST_P(LeNet5Trajectory, FirstTenLossesMatchPyTorch) {
  const testing::Fixture f("lenet5_trajectory.safetensors");
  Net net = load_model("lenet5");
  Executor executor(net, {.backend = GetParam()});
  std::vector<NamedParameter> params = executor.named_parameters();
  // The fixture's initial values: element i of tensor t with fan-in n is sin(1.7 i + 0.3 t) / sqrt(n).
  for (size_t t = 0; t < params.size(); ++t) {
    const bool is_bias = params[t].spec->is_bias;
    const ParamSpec& weight_spec = is_bias ? *params[t - 1].spec : *params[t].spec;
    const double fan_in = static_cast<double>(weight_spec.numel() / weight_spec.dims[0]);
    for (int64_t i = 0; i < params[t].value->numel(); ++i) {
      (*params[t].value)[i] = static_cast<float>(std::sin(1.7 * static_cast<double>(i) + 0.3 * static_cast<double>(t)) /
                                                 std::sqrt(fan_in));
    }
  }
  const std::vector<float> input_values = f.values("input");
  Tensor input({8, 1, 28, 28});
  std::copy(input_values.begin(), input_values.end(), input.data());
  std::vector<int64_t> labels;
  for (float v : f.values("labels")) labels.push_back(static_cast<int64_t>(v));
  const std::vector<float> expected = f.values("losses");
  Sgd sgd({.momentum = 0.9, .weight_decay = 5e-4});
  Tensor grad;
  for (size_t step = 0; step < expected.size(); ++step) {
    const double loss = softmax_cross_entropy(executor.forward(input, true), labels, grad);
    // float32 training against float64 PyTorch: differences grow slowly over steps; 2e-5 relative
    // is ~20x the worst seen and far below the 1e-3 change per step, so a wrong update fails.
    EXPECT_NEAR(loss, expected[step], 2e-5 * expected[step]) << "step " << step;
    executor.zero_grad();
    executor.backward(grad);
    sgd.step(params, 0.01);
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, LeNet5Trajectory, ::testing::Values(Backend::Reference, Backend::OneDnn),
                         [](const auto& info) { return info.param == Backend::Reference ? "Reference" : "OneDnn"; });

}  // namespace
}  // namespace convnet
