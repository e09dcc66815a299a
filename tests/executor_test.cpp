// Graph execution: the notes' gate example, gradients through fan-outs checked by finite
// differences, the inference memory plan, and weights saved and loaded as safetensors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <cstring>
#include <unistd.h>

#include "convnet/error.hpp"
#include "convnet/executor.hpp"
#include "convnet/io/safetensors.hpp"
#include "convnet/loss.hpp"
#include "convnet/model/model.hpp"

namespace convnet {
namespace {

Tensor random_tensor(std::vector<int64_t> dims, unsigned seed, float scale = 1.0f) {
  Tensor t(std::move(dims));
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  for (float& v : t.span()) v = normal(rng);
  return t;
}

TEST(Executor, GateExampleOfTheNotes) {
  // f = (x + y) * z at x = -2, y = 5, z = -4.
  Net net = load_model_text("network gate\ninput x 1\ninput y 1\ninput z 1\nq add x y\nf mul q z\n", "gate.cnet");
  Executor executor(net, {.backend = Backend::Reference});
  Tensor x({1, 1}), y({1, 1}), z({1, 1});
  x[0] = -2;
  y[0] = 5;
  z[0] = -4;
  const Tensor* inputs[] = {&x, &y, &z};
  EXPECT_FLOAT_EQ(executor.forward(inputs, true)[0], -12.0f);
  executor.set_input_gradients(true);
  Tensor one({1, 1});
  one[0] = 1;
  executor.backward(one);
  EXPECT_FLOAT_EQ(executor.input_gradient(0)[0], -4.0f);  // df/dx = z
  EXPECT_FLOAT_EQ(executor.input_gradient(1)[0], -4.0f);  // df/dy = z
  EXPECT_FLOAT_EQ(executor.input_gradient(2)[0], 3.0f);   // df/dz = x + y
}

// A net whose tensors fan out (residual, concat branches, a dense layer and a tensor read twice).
const char* kFanOut = R"(network fanout
input 3x6x6
stem conv 4 3x3 pad 1
     tanh
residual
  conv 4 3x3 pad 1
  tanh
end
concat
  conv 2 1x1
  sequential
    conv 2 3x3 pad 1
    sigmoid
  end
  avgpool 3x3 stride 1 pad 1
end
dense
  conv 3 1x1
  elu
end
pool globalavgpool
fc fc 5
)";

TEST(Executor, GradientsThroughFanOutsMatchFiniteDifferences) {
  Net net = load_model_text(kFanOut, "fanout.cnet");
  Executor executor(net, {.backend = Backend::Reference, .seed = 3});
  Tensor input = random_tensor({2, 3, 6, 6}, 5);
  const std::vector<int64_t> labels{1, 4};
  Tensor grad;
  auto loss_at = [&] { return softmax_cross_entropy(executor.forward(input, true), labels, grad); };
  (void)loss_at();
  executor.zero_grad();
  executor.set_input_gradients(true);
  executor.backward(grad);
  const Tensor input_grad = executor.input_gradient(0);

  // Float central differences: eps 1e-2 keeps rounding (~1e-7/eps) well below the truncation
  // error (~eps^2), so 2% relative agreement (or 2e-4 absolute for tiny values) is a real check.
  constexpr float kEps = 1e-2f;
  auto check = [&](Tensor& value, const Tensor& analytic, const std::string& what) {
    for (int64_t i = 0; i < value.numel(); i += std::max<int64_t>(1, value.numel() / 17)) {
      const float saved = value[i];
      value[i] = saved + kEps;
      const double plus = loss_at();
      value[i] = saved - kEps;
      const double minus = loss_at();
      value[i] = saved;
      const double numeric = (plus - minus) / (2 * kEps);
      EXPECT_NEAR(analytic[i], numeric, 2e-4 + 0.02 * std::fabs(numeric)) << what << " element " << i;
    }
  };
  check(input, input_grad, "input");
  for (NamedParameter& p : executor.named_parameters()) {
    if (p.grad != nullptr) check(*p.value, Tensor(*p.grad), p.name);
  }
}

TEST(Executor, GradientsAccumulateAcrossBackwardCalls) {
  Net net = load_model_text(kFanOut, "fanout.cnet");
  Executor executor(net, {.backend = Backend::Reference, .seed = 3});
  const Tensor input = random_tensor({2, 3, 6, 6}, 5);
  const std::vector<int64_t> labels{0, 2};
  Tensor grad;
  executor.zero_grad();
  (void)softmax_cross_entropy(executor.forward(input, true), labels, grad);
  executor.backward(grad);
  const Tensor once = *executor.named_parameters().front().grad;
  (void)softmax_cross_entropy(executor.forward(input, true), labels, grad);
  executor.backward(grad);
  const Tensor& twice = *executor.named_parameters().front().grad;
  for (int64_t i = 0; i < once.numel(); ++i) EXPECT_NEAR(twice[i], 2 * once[i], 1e-6f + 1e-5f * std::fabs(once[i]));
}

TEST(Executor, InferencePeakMemoryIsParametersPlusTheLargestLiveSet) {
  Net net = load_model("vgg11", {.input_shape = Shape{3, 32, 32}});
  Executor executor(net, {.backend = Backend::Reference});
  const int64_t batch = 2;
  const Tensor input = random_tensor({batch, 3, 32, 32}, 1);

  // The plan's bound: at each step the live activations are the outputs still to be read.
  const auto& nodes = net.nodes();
  std::vector<size_t> last_reader(nodes.size(), 0);
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (int j : nodes[i].inputs) last_reader[static_cast<size_t>(j)] = i;
  }
  int64_t largest_live = 0;
  int64_t all_activations = 0;
  for (size_t step = 1; step < nodes.size(); ++step) {
    int64_t live = nodes[step].output.numel();
    for (size_t j = 1; j < step; ++j) {
      if (last_reader[j] >= step) live += nodes[j].output.numel();
    }
    largest_live = std::max(largest_live, live);
    all_activations += nodes[step].output.numel();
  }
  const int64_t largest_live_bytes = largest_live * batch * 4;
  (void)executor.forward(input, false);  // first run: allocations settle
  const int64_t before = tensor_memory_stats().current_bytes;
  reset_tensor_peak();
  (void)executor.forward(input, false);
  const int64_t peak = tensor_memory_stats().peak_bytes - before;
  // `before` holds the parameters and the previous output; the new peak adds at most the live set.
  EXPECT_LE(peak, largest_live_bytes);
  EXPECT_LT(largest_live_bytes, all_activations * batch * 4 / 2);  // far below keeping everything
}

class WeightsFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("convnet_weights_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(WeightsFile, SavedWeightsLoadBackExactly) {
  Net net = load_model("lenet5");
  Executor a(net, {.backend = Backend::Reference, .seed = 1});
  Executor b(net, {.backend = Backend::Reference, .seed = 2});
  const std::string path = (dir_ / "lenet5.safetensors").string();
  save_weights(a, path);
  load_weights(b, path);
  auto pa = a.named_parameters();
  auto pb = b.named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_EQ(pa[i].name, pb[i].name);
    EXPECT_EQ(0, std::memcmp(pa[i].value->data(), pb[i].value->data(), static_cast<size_t>(pa[i].value->numel()) * 4));
  }
}

TEST_F(WeightsFile, WeightsOfAnotherNetworkReportEveryMismatchAndChangeNothing) {
  Net lenet = load_model("lenet5");
  Net other = load_model_text("network other\ninput 1x28x28\nc1 conv 8 5x5 pad 2\nextra fc 10\n", "other.cnet");
  Executor source(other, {.backend = Backend::Reference, .seed = 1});
  Executor target(lenet, {.backend = Backend::Reference, .seed = 2});
  const std::string path = (dir_ / "other.safetensors").string();
  save_weights(source, path);
  const Tensor before = *target.named_parameters().front().value;
  try {
    load_weights(target, path);
    FAIL() << "loading another network's weights must fail";
  } catch (const IoError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("'c1.weight' has shape [8, 1, 5, 5], expected [6, 1, 5, 5]"), std::string::npos) << message;
    EXPECT_NE(message.find("missing 'c3.weight'"), std::string::npos) << message;
    EXPECT_NE(message.find("unexpected 'extra.weight'"), std::string::npos) << message;
  }
  EXPECT_EQ(0, std::memcmp(before.data(), target.named_parameters().front().value->data(), before.numel() * 4));
}

TEST_F(WeightsFile, TruncatedOrCorruptedFilesAreClearErrors) {
  Net net = load_model("lenet5");
  Executor executor(net, {.backend = Backend::Reference});
  const std::string path = (dir_ / "w.safetensors").string();
  save_weights(executor, path);
  const auto size = std::filesystem::file_size(path);
  std::filesystem::resize_file(path, size - 100);
  EXPECT_THROW(load_weights(executor, path), IoError);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << "\x10\x00\x00\x00\x00\x00\x00\x00{not json at all";
  EXPECT_THROW(load_weights(executor, path), IoError);
  EXPECT_THROW(load_weights(executor, (dir_ / "missing.safetensors").string()), IoError);
}

TEST(Executor, WrongInputShapeIsAClearError) {
  Net net = load_model("lenet5");
  Executor executor(net, {.backend = Backend::Reference});
  const Tensor wrong({2, 3, 28, 28});
  try {
    (void)executor.forward(wrong, false);
    FAIL();
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("must be 2x1x28x28"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace convnet
