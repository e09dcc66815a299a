// Builds a small CNN with the C++ NetBuilder and trains it with SGD on generated images: class c
// is a bright 4x4 square at one of four corners of a noisy 12x12 image. Prints the loss and the
// accuracy on fresh images every 25 steps; exits 1 if it has not learnt (above 90%) by the end.
#include <cstdio>
#include <memory>
#include <random>
#include <vector>

#include "convnet/executor.hpp"
#include "convnet/layers/activation.hpp"
#include "convnet/layers/conv2d.hpp"
#include "convnet/layers/flatten.hpp"
#include "convnet/layers/linear.hpp"
#include "convnet/layers/pool2d.hpp"
#include "convnet/loss.hpp"
#include "convnet/net.hpp"
#include "convnet/train/optimizer.hpp"

using namespace convnet;

namespace {

constexpr int64_t kSide = 12;
constexpr int64_t kClasses = 4;

/// A batch (n, 1, 12, 12) and its labels.
void make_batch(std::mt19937& rng, int64_t n, Tensor& images, std::vector<int64_t>& labels) {
  std::normal_distribution<float> noise(0.0F, 1.0F);
  std::uniform_int_distribution<int64_t> pick(0, kClasses - 1);
  images = Tensor({n, 1, kSide, kSide});
  labels.assign(static_cast<size_t>(n), 0);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = pick(rng);
    labels[static_cast<size_t>(i)] = c;
    const int64_t top = c / 2 == 0 ? 1 : 7, left = c % 2 == 0 ? 1 : 7;
    for (int64_t y = 0; y < kSide; ++y) {
      for (int64_t x = 0; x < kSide; ++x) {
        const bool square = y >= top && y < top + 4 && x >= left && x < left + 4;
        images[(i * kSide + y) * kSide + x] = (square ? 1.0F : 0.0F) + noise(rng);
      }
    }
  }
}

}  // namespace

int main() {
  try {
    NetBuilder b("corners");
    b.input("input", Shape({1, kSide, kSide}));
    Conv2dOptions conv{.out_channels = 8};
    conv.window.kernel = {3, 3};
    conv.window.padding = {1, 1};
    b.add("conv1", std::make_unique<Conv2d>(conv));  // 8 x 12 x 12
    b.add("relu1", std::make_unique<ReLU>());
    Pool2dOptions pool;
    pool.window.kernel = pool.window.stride = {2, 2};
    b.add("pool1", std::make_unique<MaxPool2d>(pool));  // 8 x 6 x 6
    b.add("flatten", std::make_unique<Flatten>());      // 288
    b.add("fc", std::make_unique<Linear>(LinearOptions{.out_features = kClasses}));
    Net net = std::move(b).build();

    Executor executor(net, {.seed = 1});
    std::unique_ptr<Optimizer> sgd = make_optimizer({.kind = "sgd", .momentum = 0.9, .weight_decay = 0.0});
    std::vector<NamedParameter> params = executor.named_parameters();
    std::mt19937 rng(7);
    Tensor images, grad_logits;
    std::vector<int64_t> labels;
    double accuracy = 0;
    for (int step = 1; step <= 100; ++step) {
      make_batch(rng, 32, images, labels);
      const Tensor& logits = executor.forward(images, true);
      executor.zero_grad();
      const double loss = softmax_cross_entropy(logits, labels, grad_logits);
      executor.backward(grad_logits);
      sgd->step(params, 0.01);
      executor.parameters_changed();
      if (step % 25 == 0) {
        make_batch(rng, 256, images, labels);
        const Tensor& out = executor.forward(images, false);
        int64_t correct = 0;
        for (int64_t i = 0; i < 256; ++i) {
          int64_t best = 0;
          for (int64_t k = 1; k < kClasses; ++k) best = out[i * kClasses + k] > out[i * kClasses + best] ? k : best;
          correct += best == labels[static_cast<size_t>(i)];
        }
        accuracy = static_cast<double>(correct) / 256.0;
        std::printf("step %d: training loss %.4f, accuracy on 256 new images %.1f%%\n", step, loss, 100 * accuracy);
      }
    }
    return accuracy > 0.9 ? 0 : 1;
  } catch (const Error& e) {
    std::fprintf(stderr, "train_builder: %s\n", e.what());
    return 1;
  }
}
