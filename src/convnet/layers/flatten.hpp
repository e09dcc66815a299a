// Flatten: (C, H, W) -> (C*H*W), torch.flatten(x, 1). A view of the same memory, so in place.
#pragma once

#include <memory>

#include "convnet/layer.hpp"
#include "convnet/layer_args.hpp"

namespace convnet {

class Flatten final : public Layer {
 public:
  Flatten() = default;
  static std::unique_ptr<Layer> from_args(LayerArgs& args);
  static constexpr const char* kUsage = "flatten";

  [[nodiscard]] std::string kind() const override { return "flatten"; }
  [[nodiscard]] Shape output_shape(std::span<const Shape> inputs) const override;
  void forward(const RunContext& ctx, Inputs inputs, Params params, Tensor& output) override;
  void backward(const RunContext& ctx, Inputs inputs, const Tensor& output, const Tensor& grad_output, Params params,
                Params grad_params, GradTargets grad_inputs) override;
  [[nodiscard]] bool in_place() const override { return true; }
  [[nodiscard]] std::vector<Formula> explain(std::span<const Shape> inputs, const Shape& output) const override;
};

}  // namespace convnet
