// What a layer needs to compute: the run's mode (training or inference), the kernel set, the
// random generator for dropout, and where gradients go.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <span>

#include "convnet/tensor.hpp"

namespace convnet {

namespace onednn {
class Engine;  // the oneDNN engine and stream, created once per Executor (kernels/onednn)
}

/// Which kernels run: the reference loops (the oracle) or oneDNN (the fast path).
enum class Backend { Reference, OneDnn };

/// What ReLU's backward passes on: the gradient, dL/dx = dL/dy * [y > 0]; ZFNet's deconvnet,
/// relu(dL/dy), which ignores the forward's sign; or guided backpropagation, both conditions.
/// Only the visualisations change it.
enum class ReluBackward { Gradient, Deconvnet, Guided };

struct RunContext {
  bool training = false;
  ReluBackward relu_backward = ReluBackward::Gradient;
  bool backward_follows = false;  // a backward will read this forward (training, or the visualisations'
                                  // gradients after an inference forward): keep pooling/LRN workspaces
  Backend backend = Backend::OneDnn;
  std::mt19937_64* rng = nullptr;     // dropout and drop-path masks; seeded by the caller
  onednn::Engine* engine = nullptr;   // set when backend == OneDnn
  // Set in a distributed run with synchronised batch norm: sums per-channel statistics over every
  // rank, so batch norm in training normalises with the whole global batch's mean and variance.
  std::function<void(std::span<double>)> sum_over_ranks{};
};

/// Where backward puts one input's gradient: written (accumulate = false) or added (true).
/// A null tensor means the gradient is not wanted (network inputs).
struct GradTarget {
  Tensor* tensor = nullptr;
  bool accumulate = false;
};

}  // namespace convnet
