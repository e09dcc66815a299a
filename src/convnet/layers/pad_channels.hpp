// PadChannels: appends zero channels so the depth D becomes K (PyTorch: F.pad over the channel
// dimension). With a 1x1 max pooling at stride 2 in front, it is ResNet's parameter-free
// option-A shortcut, which Darknet's [shortcut] computes between layers of different depths.
#pragma once

#include <memory>

#include "convnet/layer.hpp"
#include "convnet/layer_args.hpp"

namespace convnet {

struct PadChannelsOptions {
  int64_t channels = 1;  // K, at least the input depth
};

class PadChannels final : public Layer {
 public:
  explicit PadChannels(PadChannelsOptions options) : options_(options) {}
  static std::unique_ptr<Layer> from_args(LayerArgs& args);
  static constexpr const char* kUsage = "padchannels CHANNELS";

  [[nodiscard]] std::string kind() const override { return "padchannels"; }
  [[nodiscard]] std::string args() const override { return std::to_string(options_.channels); }
  [[nodiscard]] Shape output_shape(std::span<const Shape> inputs) const override;
  void forward(const RunContext& ctx, Inputs inputs, Params params, Tensor& output) override;
  void backward(const RunContext& ctx, Inputs inputs, const Tensor& output, const Tensor& grad_output, Params params,
                Params grad_params, GradTargets grad_inputs) override;
  [[nodiscard]] std::vector<Formula> explain(std::span<const Shape> inputs, const Shape& output) const override;
  [[nodiscard]] const PadChannelsOptions& options() const { return options_; }

 private:
  PadChannelsOptions options_;
};

}  // namespace convnet
