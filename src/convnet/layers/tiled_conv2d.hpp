// TiledConv2d: a convolution with T x T filter banks tiled over the output (Le et al. 2010): the
// output at (i, j) uses bank (i mod T, j mod T). T = 1 is an ordinary convolution.
#pragma once

#include <memory>

#include "convnet/layer.hpp"
#include "convnet/layer_args.hpp"
#include "convnet/layers/window.hpp"

namespace convnet {

struct TiledConv2dOptions {
  int64_t out_channels = 1;
  Window window;  // dilation stays 1
  int64_t tile = 1;
  bool bias = true;
  Init init = Init::KaimingNormal;
};

class TiledConv2d final : public Layer {
 public:
  explicit TiledConv2d(TiledConv2dOptions options) : options_(options) {}
  static std::unique_ptr<Layer> from_args(LayerArgs& args);
  static constexpr const char* kUsage =
      "tiled OUT_CHANNELS KxK tile T [stride S] [pad P] [bias true|false] [round floor|ceil|exact]";

  [[nodiscard]] std::string kind() const override { return "tiled"; }
  [[nodiscard]] std::string args() const override;
  [[nodiscard]] Shape output_shape(std::span<const Shape> inputs) const override;
  void forward(const RunContext& ctx, Inputs inputs, Params params, Tensor& output) override;
  void backward(const RunContext& ctx, Inputs inputs, const Tensor& output, const Tensor& grad_output, Params params,
                Params grad_params, GradTargets grad_inputs) override;
  [[nodiscard]] std::vector<ParamSpec> parameters(std::span<const Shape> inputs) const override;
  [[nodiscard]] int64_t macs(std::span<const Shape> inputs, const Shape& output) const override;
  [[nodiscard]] ReceptiveField receptive_field(const ReceptiveField& input) const override;
  [[nodiscard]] std::vector<Formula> explain(std::span<const Shape> inputs, const Shape& output) const override;
  [[nodiscard]] const TiledConv2dOptions& options() const { return options_; }

 private:
  TiledConv2dOptions options_;
};

}  // namespace convnet
