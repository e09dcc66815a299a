// What a layer needs to compute: the run's mode (training or inference), the kernel set, the
// random generator for dropout, and where gradients go.
#pragma once

#include <cstdint>
#include <random>

#include "convnet/tensor.hpp"

namespace convnet {

namespace onednn {
class Engine;  // the oneDNN engine and stream, created once per Executor (kernels/onednn)
}

/// Which kernels run: the reference loops (the oracle) or oneDNN (the fast path).
enum class Backend { Reference, OneDnn };

struct RunContext {
  bool training = false;
  Backend backend = Backend::OneDnn;
  std::mt19937_64* rng = nullptr;     // dropout and drop-path masks; seeded by the caller
  onednn::Engine* engine = nullptr;   // set when backend == OneDnn
};

/// Where backward puts one input's gradient: written (accumulate = false) or added (true).
/// A null tensor means the gradient is not wanted (network inputs).
struct GradTarget {
  Tensor* tensor = nullptr;
  bool accumulate = false;
};

}  // namespace convnet
