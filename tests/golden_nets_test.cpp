// Whole networks against PyTorch: each fixture's model text is built and run in training mode with
// the fixture's parameters on the reference kernels, on oneDNN layer by layer (input gradients
// wanted) and through a oneDNN training plan; logits, loss, input and parameter gradients and the
// running statistics must match.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "convnet/executor.hpp"
#include "convnet/kernels/reference/softmax.hpp"
#include "convnet/model/model.hpp"
#include "support/golden.hpp"

namespace convnet {
namespace {

namespace ref = kernels::reference;
using testing::expect_tensor_near;
using testing::Fixture;
using testing::Tolerance;

// The fixtures are float64 maths; the nets run in float32 through sums of up to 400 terms (LeNet's c5)
// and batch norm's cancelling backward. Worst seen over both backends: 2.4e-7 on ResNet logits (~0.5) and
// 2.1e-7 on a ResNet conv gradient entry of 3e-5 (16% of its tolerance); everything else under 5%.
// oneDNN sums in other orders, hence no tighter.
constexpr Tolerance kLogits{.abs = 1e-5, .rel = 1e-4};
// Gradients are ~1e-2 in size; batch norm's backward subtracts terms of that size, so the absolute
// part dominates for small entries.
constexpr Tolerance kGradients{.abs = 1e-6, .rel = 1e-3};

bool is_result(const std::string& name) {
  return name == "input" || name == "labels" || name == "logits" || name == "loss" || name.starts_with("grad.") ||
         name.starts_with("after.");
}

enum class Path { Reference, OneDnnLayers, OneDnnPlan };

void run_golden_net(const std::string& file, Path path) {
  const Backend backend = path == Path::Reference ? Backend::Reference : Backend::OneDnn;
  const Fixture f(file);
  Net net = load_model_text(f.metadata("model"), f.metadata("file"));
  Executor executor(net, {.backend = backend, .seed = 1});

  // Parameters and running statistics by name; every trainable parameter must come from the fixture,
  // and every fixture tensor that is not a result must be a parameter (catches naming differences).
  std::set<std::string> loaded;
  for (const NamedParameter& p : executor.named_parameters()) {
    if (!f.has(p.name)) {
      if (p.grad != nullptr) ADD_FAILURE() << file << " has no parameter '" << p.name << "'";
      continue;
    }
    const StoredTensor& stored = f.tensor(p.name);
    ASSERT_EQ(stored.shape, p.value->dims()) << p.name;
    std::copy(stored.values.begin(), stored.values.end(), p.value->data());
    loaded.insert(p.name);
  }
  for (const auto& [name, tensor] : f.tensors()) {
    if (!is_result(name)) {
      EXPECT_TRUE(loaded.contains(name)) << file << ": '" << name << "' is no parameter of the net";
    }
  }

  Tensor input(f.shape("input"));
  std::copy(f.values("input").begin(), f.values("input").end(), input.data());
  executor.set_input_gradients(path != Path::OneDnnPlan);  // a plan computes no input gradient
  executor.zero_grad();
  const Tensor& logits = executor.forward(input, /*training=*/true);
  ASSERT_EQ(executor.last_plan() != nullptr, path == Path::OneDnnPlan);
  ASSERT_EQ(logits.dims(), f.shape("logits"));
  expect_tensor_near(logits.span(), f.values("logits"), kLogits, "logits");

  // Mean softmax cross-entropy over the batch, and its gradient with respect to the logits.
  const int64_t batch = logits.dim(0), classes = logits.dim(1);
  const std::vector<int64_t> labels = f.labels("labels");
  std::vector<float> probabilities(static_cast<size_t>(batch * classes));
  const float loss = ref::softmax_cross_entropy_forward<float>(batch, classes, logits.data(), labels.data(),
                                                               probabilities.data());
  expect_tensor_near(std::vector<float>{loss}, f.values("loss"), kLogits, "loss");
  Tensor grad_logits(logits.dims());
  ref::softmax_cross_entropy_backward<float>(batch, classes, probabilities.data(), labels.data(), 1.0f,
                                             grad_logits.data(), false);

  executor.backward(grad_logits);
  if (path != Path::OneDnnPlan) {
    expect_tensor_near(executor.input_gradient(0).span(), f.values("grad.input"), kGradients, "grad.input");
  }
  int compared = 0;
  for (const NamedParameter& p : executor.named_parameters()) {
    if (p.grad != nullptr) {
      expect_tensor_near(p.grad->span(), f.values("grad." + p.name), kGradients, "grad." + p.name);
      ++compared;
    } else if (f.has("after." + p.name)) {
      // Running statistics after one training step: momentum 0.1 of the batch mean / unbiased variance.
      expect_tensor_near(p.value->span(), f.values("after." + p.name), kLogits, "after." + p.name);
    }
  }
  EXPECT_GT(compared, 0);
}

TEST(GoldenNets, LeNet5Reference) { run_golden_net("lenet5.safetensors", Path::Reference); }
TEST(GoldenNets, LeNet5OneDnn) { run_golden_net("lenet5.safetensors", Path::OneDnnLayers); }
TEST(GoldenNets, LeNet5Plan) { run_golden_net("lenet5.safetensors", Path::OneDnnPlan); }
TEST(GoldenNets, ResNetSmallReference) { run_golden_net("resnet_small.safetensors", Path::Reference); }
TEST(GoldenNets, ResNetSmallOneDnn) { run_golden_net("resnet_small.safetensors", Path::OneDnnLayers); }
TEST(GoldenNets, ResNetSmallPlan) { run_golden_net("resnet_small.safetensors", Path::OneDnnPlan); }
TEST(GoldenNets, InceptionReference) { run_golden_net("inception_small.safetensors", Path::Reference); }
TEST(GoldenNets, InceptionOneDnn) { run_golden_net("inception_small.safetensors", Path::OneDnnLayers); }
TEST(GoldenNets, InceptionPlan) { run_golden_net("inception_small.safetensors", Path::OneDnnPlan); }
TEST(GoldenNets, DenseBlockReference) { run_golden_net("dense_small.safetensors", Path::Reference); }
TEST(GoldenNets, DenseBlockOneDnn) { run_golden_net("dense_small.safetensors", Path::OneDnnLayers); }
TEST(GoldenNets, DenseBlockPlan) { run_golden_net("dense_small.safetensors", Path::OneDnnPlan); }

}  // namespace
}  // namespace convnet
