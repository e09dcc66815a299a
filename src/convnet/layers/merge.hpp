// Layers that combine named tensors: elementwise Add (residual connections) and Mul
// (squeeze-and-excitation gating), and channel Concat (Inception, DenseNet).
#pragma once

#include <limits>
#include <memory>

#include "convnet/layer.hpp"
#include "convnet/layer_args.hpp"

namespace convnet {

/// Elementwise sum of 2 or more inputs of one shape. The parser also creates it for `residual`.
class Add final : public Layer {
 public:
  Add() = default;
  static std::unique_ptr<Layer> from_args(LayerArgs& args);
  static constexpr const char* kUsage = "NAME add INPUT INPUT [INPUT ...]";

  [[nodiscard]] std::string kind() const override { return "add"; }
  [[nodiscard]] int min_inputs() const override { return 2; }
  [[nodiscard]] int max_inputs() const override { return std::numeric_limits<int>::max(); }
  [[nodiscard]] Shape output_shape(std::span<const Shape> inputs) const override;
  void forward(const RunContext& ctx, Inputs inputs, Params params, Tensor& output) override;
  void backward(const RunContext& ctx, Inputs inputs, const Tensor& output, const Tensor& grad_output, Params params,
                Params grad_params, GradTargets grad_inputs) override;
};

/// Elementwise product of 2 or more inputs of one shape.
class Mul final : public Layer {
 public:
  Mul() = default;
  static std::unique_ptr<Layer> from_args(LayerArgs& args);
  static constexpr const char* kUsage = "NAME mul INPUT INPUT [INPUT ...]";

  [[nodiscard]] std::string kind() const override { return "mul"; }
  [[nodiscard]] int min_inputs() const override { return 2; }
  [[nodiscard]] int max_inputs() const override { return std::numeric_limits<int>::max(); }
  [[nodiscard]] Shape output_shape(std::span<const Shape> inputs) const override;
  void forward(const RunContext& ctx, Inputs inputs, Params params, Tensor& output) override;
  void backward(const RunContext& ctx, Inputs inputs, const Tensor& output, const Tensor& grad_output, Params params,
                Params grad_params, GradTargets grad_inputs) override;
};

/// Concatenation along dim 0 (channels) of 2 or more inputs with equal H and W (or of vectors).
/// The parser also creates it for `concat` and `dense` structures.
class Concat final : public Layer {
 public:
  Concat() = default;
  static std::unique_ptr<Layer> from_args(LayerArgs& args);
  static constexpr const char* kUsage = "NAME concat INPUT INPUT [INPUT ...]";

  [[nodiscard]] std::string kind() const override { return "concat"; }
  [[nodiscard]] int min_inputs() const override { return 2; }
  [[nodiscard]] int max_inputs() const override { return std::numeric_limits<int>::max(); }
  [[nodiscard]] Shape output_shape(std::span<const Shape> inputs) const override;
  void forward(const RunContext& ctx, Inputs inputs, Params params, Tensor& output) override;
  void backward(const RunContext& ctx, Inputs inputs, const Tensor& output, const Tensor& grad_output, Params params,
                Params grad_params, GradTargets grad_inputs) override;
  [[nodiscard]] std::vector<Formula> explain(std::span<const Shape> inputs, const Shape& output) const override;
};

}  // namespace convnet
