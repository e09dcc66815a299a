// Regularisers that are the identity at inference: Dropout (zeroes each element with probability
// p in training) and DropPath (stochastic depth: drops a whole residual branch per sample).
#pragma once

#include <memory>

#include "convnet/layer.hpp"
#include "convnet/layer_args.hpp"

namespace convnet {

struct DropoutOptions {
  double p = 0.5;  // in [0, 1)
};

class Dropout final : public Layer {
 public:
  explicit Dropout(DropoutOptions options = {}) : options_(options) {}
  static std::unique_ptr<Layer> from_args(LayerArgs& args);
  static constexpr const char* kUsage = "dropout [p 0.5]";

  [[nodiscard]] std::string kind() const override { return "dropout"; }
  [[nodiscard]] std::string args() const override;
  [[nodiscard]] Shape output_shape(std::span<const Shape> inputs) const override;
  void forward(const RunContext& ctx, Inputs inputs, Params params, Tensor& output) override;
  void backward(const RunContext& ctx, Inputs inputs, const Tensor& output, const Tensor& grad_output, Params params,
                Params grad_params, GradTargets grad_inputs) override;
  [[nodiscard]] bool in_place() const override { return true; }
  [[nodiscard]] const DropoutOptions& options() const { return options_; }

 private:
  DropoutOptions options_;
  std::vector<uint8_t> mask_;  // (N, ...): 1 where the value was kept
};

struct DropPathOptions {
  double p = 0.0;  // in [0, 1)
};

class DropPath final : public Layer {
 public:
  explicit DropPath(DropPathOptions options) : options_(options) {}
  static std::unique_ptr<Layer> from_args(LayerArgs& args);
  static constexpr const char* kUsage = "droppath P";

  [[nodiscard]] std::string kind() const override { return "droppath"; }
  [[nodiscard]] std::string args() const override;
  [[nodiscard]] Shape output_shape(std::span<const Shape> inputs) const override;
  void forward(const RunContext& ctx, Inputs inputs, Params params, Tensor& output) override;
  void backward(const RunContext& ctx, Inputs inputs, const Tensor& output, const Tensor& grad_output, Params params,
                Params grad_params, GradTargets grad_inputs) override;
  [[nodiscard]] bool in_place() const override { return true; }
  [[nodiscard]] const DropPathOptions& options() const { return options_; }

 private:
  DropPathOptions options_;
  std::vector<uint8_t> mask_;  // (N): 1 where the sample's branch was kept
};

}  // namespace convnet
