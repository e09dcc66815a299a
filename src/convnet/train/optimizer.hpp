// Optimisers with PyTorch's update rules: SGD with momentum (optionally Nesterov) and L2 weight
// decay, and Adam. Their state (momentum buffers, moments, step count) is saved in checkpoints.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "convnet/executor.hpp"

namespace convnet {

struct OptimizerOptions {
  std::string kind = "sgd";     // "sgd" or "adam"
  double momentum = 0.9;        // SGD
  bool nesterov = false;        // SGD
  double weight_decay = 5e-4;   // L2: adds weight_decay * w to every gradient (PyTorch's rule)
  double beta1 = 0.9;           // Adam
  double beta2 = 0.999;         // Adam
  double eps = 1e-8;            // Adam
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  /// Updates every learnable parameter from its gradient with learning rate `lr`.
  virtual void step(std::vector<NamedParameter>& params, double lr) = 0;
  /// State tensors by name ("momentum.conv1.weight") for checkpoints, and the step count.
  [[nodiscard]] std::map<std::string, Tensor*> state();
  /// Puts back a state tensor saved from state() (when resuming).
  void restore(const std::string& name, Tensor value) { buffers_[name] = std::move(value); }
  [[nodiscard]] int64_t steps() const { return steps_; }
  void set_steps(int64_t steps) { steps_ = steps; }

 protected:
  Tensor& buffer(const std::string& kind, const NamedParameter& p);
  std::map<std::string, Tensor> buffers_;
  int64_t steps_ = 0;
};

/// Makes the optimiser `options.kind`; throws SpecError for an unknown kind.
[[nodiscard]] std::unique_ptr<Optimizer> make_optimizer(const OptimizerOptions& options);

/// v = momentum * v + (g + wd * w); w -= lr * v  (Nesterov: w -= lr * (g + wd * w + momentum * v)).
class Sgd final : public Optimizer {
 public:
  explicit Sgd(const OptimizerOptions& options) : options_(options) {}
  void step(std::vector<NamedParameter>& params, double lr) override;

 private:
  OptimizerOptions options_;
};

/// m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; w -= lr * m_hat / (sqrt(v_hat) + eps).
class Adam final : public Optimizer {
 public:
  explicit Adam(const OptimizerOptions& options) : options_(options) {}
  void step(std::vector<NamedParameter>& params, double lr) override;

 private:
  OptimizerOptions options_;
};

}  // namespace convnet
