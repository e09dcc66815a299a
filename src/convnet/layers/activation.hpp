// Elementwise activations (ReLU, LeakyReLU, ELU, Sigmoid, Tanh) and Softmax. The activations keep
// the shape, own no parameters and can run in place; Softmax normalises over dim 0 (channels).
#pragma once

#include <memory>

#include "convnet/kernels/onednn/eltwise.hpp"
#include "convnet/kernels/onednn/softmax.hpp"
#include "convnet/layer.hpp"
#include "convnet/layer_args.hpp"

namespace convnet {

/// max(0, x).
class ReLU final : public Layer {
 public:
  ReLU() = default;
  static std::unique_ptr<Layer> from_args(LayerArgs& args);
  static constexpr const char* kUsage = "relu";

  [[nodiscard]] std::string kind() const override { return "relu"; }
  [[nodiscard]] Shape output_shape(std::span<const Shape> inputs) const override;
  void forward(const RunContext& ctx, Inputs inputs, Params params, Tensor& output) override;
  void backward(const RunContext& ctx, Inputs inputs, const Tensor& output, const Tensor& grad_output, Params params,
                Params grad_params, GradTargets grad_inputs) override;
  [[nodiscard]] bool in_place() const override { return true; }
 private:
  kernels::onednn::Eltwise onednn_;
};

struct LeakyReLUOptions {
  double negative_slope = 0.01;
};

/// max(0, x) + slope * min(0, x).
class LeakyReLU final : public Layer {
 public:
  explicit LeakyReLU(LeakyReLUOptions options) : options_(options) {}
  static std::unique_ptr<Layer> from_args(LayerArgs& args);
  static constexpr const char* kUsage = "leakyrelu [slope 0.01]";

  [[nodiscard]] std::string kind() const override { return "leakyrelu"; }
  [[nodiscard]] std::string args() const override;
  [[nodiscard]] Shape output_shape(std::span<const Shape> inputs) const override;
  void forward(const RunContext& ctx, Inputs inputs, Params params, Tensor& output) override;
  void backward(const RunContext& ctx, Inputs inputs, const Tensor& output, const Tensor& grad_output, Params params,
                Params grad_params, GradTargets grad_inputs) override;
  [[nodiscard]] bool in_place() const override { return true; }
  [[nodiscard]] const LeakyReLUOptions& options() const { return options_; }

 private:
  LeakyReLUOptions options_;
  kernels::onednn::Eltwise onednn_;
};

struct ELUOptions {
  double alpha = 1.0;
};

/// x for x > 0, alpha * (exp(x) - 1) otherwise.
class ELU final : public Layer {
 public:
  explicit ELU(ELUOptions options) : options_(options) {}
  static std::unique_ptr<Layer> from_args(LayerArgs& args);
  static constexpr const char* kUsage = "elu [alpha 1.0]";

  [[nodiscard]] std::string kind() const override { return "elu"; }
  [[nodiscard]] std::string args() const override;
  [[nodiscard]] Shape output_shape(std::span<const Shape> inputs) const override;
  void forward(const RunContext& ctx, Inputs inputs, Params params, Tensor& output) override;
  void backward(const RunContext& ctx, Inputs inputs, const Tensor& output, const Tensor& grad_output, Params params,
                Params grad_params, GradTargets grad_inputs) override;
  [[nodiscard]] bool in_place() const override { return true; }
  [[nodiscard]] const ELUOptions& options() const { return options_; }

 private:
  ELUOptions options_;
  kernels::onednn::Eltwise onednn_;
};

/// 1 / (1 + exp(-x)).
class Sigmoid final : public Layer {
 public:
  Sigmoid() = default;
  static std::unique_ptr<Layer> from_args(LayerArgs& args);
  static constexpr const char* kUsage = "sigmoid";

  [[nodiscard]] std::string kind() const override { return "sigmoid"; }
  [[nodiscard]] Shape output_shape(std::span<const Shape> inputs) const override;
  void forward(const RunContext& ctx, Inputs inputs, Params params, Tensor& output) override;
  void backward(const RunContext& ctx, Inputs inputs, const Tensor& output, const Tensor& grad_output, Params params,
                Params grad_params, GradTargets grad_inputs) override;
  [[nodiscard]] bool in_place() const override { return true; }
 private:
  kernels::onednn::Eltwise onednn_;
};

/// tanh(x).
class Tanh final : public Layer {
 public:
  Tanh() = default;
  static std::unique_ptr<Layer> from_args(LayerArgs& args);
  static constexpr const char* kUsage = "tanh";

  [[nodiscard]] std::string kind() const override { return "tanh"; }
  [[nodiscard]] Shape output_shape(std::span<const Shape> inputs) const override;
  void forward(const RunContext& ctx, Inputs inputs, Params params, Tensor& output) override;
  void backward(const RunContext& ctx, Inputs inputs, const Tensor& output, const Tensor& grad_output, Params params,
                Params grad_params, GradTargets grad_inputs) override;
  [[nodiscard]] bool in_place() const override { return true; }
 private:
  kernels::onednn::Eltwise onednn_;
};

/// exp(x_i) / sum_j exp(x_j) over dim 0 (the class scores of a vector; channels of a volume).
class Softmax final : public Layer {
 public:
  Softmax() = default;
  static std::unique_ptr<Layer> from_args(LayerArgs& args);
  static constexpr const char* kUsage = "softmax";

  [[nodiscard]] std::string kind() const override { return "softmax"; }
  [[nodiscard]] Shape output_shape(std::span<const Shape> inputs) const override;
  void forward(const RunContext& ctx, Inputs inputs, Params params, Tensor& output) override;
  void backward(const RunContext& ctx, Inputs inputs, const Tensor& output, const Tensor& grad_output, Params params,
                Params grad_params, GradTargets grad_inputs) override;
 private:
  kernels::onednn::Softmax onednn_;
};

}  // namespace convnet
