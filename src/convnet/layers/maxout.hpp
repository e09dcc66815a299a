// Maxout (Goodfellow et al. 2013): the max over groups of K consecutive channels, so depth D
// becomes D/K. Works on volumes (C, H, W) and vectors (F); the channels are dim 0.
#pragma once

#include <memory>

#include "convnet/layer.hpp"
#include "convnet/layer_args.hpp"

namespace convnet {

struct MaxoutOptions {
  int64_t pieces = 2;  // K >= 2
};

class Maxout final : public Layer {
 public:
  explicit Maxout(MaxoutOptions options) : options_(options) {}
  static std::unique_ptr<Layer> from_args(LayerArgs& args);
  static constexpr const char* kUsage = "maxout PIECES";

  [[nodiscard]] std::string kind() const override { return "maxout"; }
  [[nodiscard]] std::string args() const override { return std::to_string(options_.pieces); }
  [[nodiscard]] Shape output_shape(std::span<const Shape> inputs) const override;
  void forward(const RunContext& ctx, Inputs inputs, Params params, Tensor& output) override;
  void backward(const RunContext& ctx, Inputs inputs, const Tensor& output, const Tensor& grad_output, Params params,
                Params grad_params, GradTargets grad_inputs) override;
  [[nodiscard]] std::vector<Formula> explain(std::span<const Shape> inputs, const Shape& output) const override;
  [[nodiscard]] const MaxoutOptions& options() const { return options_; }

 private:
  MaxoutOptions options_;
  std::vector<int64_t> argmax_;  // (N, C/K, ...): input channel of each maximum
};

}  // namespace convnet
