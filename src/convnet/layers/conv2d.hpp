// Conv2d: K filters of F x F (x D1/groups) slid over the input at stride S with padding P;
// optional dilation and groups (AlexNet's two-GPU towers are groups = 2).
#pragma once

#include <memory>

#include "convnet/kernels/onednn/conv2d.hpp"
#include "convnet/layer.hpp"
#include "convnet/layer_args.hpp"
#include "convnet/layers/window.hpp"

namespace convnet {

struct Conv2dOptions {
  int64_t out_channels = 1;
  Window window;
  int64_t groups = 1;
  bool bias = true;
  Init init = Init::KaimingNormal;
};

class Conv2d final : public Layer {
 public:
  explicit Conv2d(Conv2dOptions options) : options_(options) {}
  static std::unique_ptr<Layer> from_args(LayerArgs& args);
  static constexpr const char* kUsage =
      "conv OUT_CHANNELS KxK [stride S] [pad P] [pad_end P] [dilation D] [groups G] [bias true|false] "
      "[round floor|ceil|exact] [init kaiming|xavier|gaussian|zeros]";

  [[nodiscard]] std::string kind() const override { return "conv"; }
  [[nodiscard]] std::string args() const override;
  [[nodiscard]] Shape output_shape(std::span<const Shape> inputs) const override;
  void forward(const RunContext& ctx, Inputs inputs, Params params, Tensor& output) override;
  void backward(const RunContext& ctx, Inputs inputs, const Tensor& output, const Tensor& grad_output, Params params,
                Params grad_params, GradTargets grad_inputs) override;
  [[nodiscard]] std::vector<ParamSpec> parameters(std::span<const Shape> inputs) const override;
  [[nodiscard]] int64_t macs(std::span<const Shape> inputs, const Shape& output) const override;
  [[nodiscard]] ReceptiveField receptive_field(const ReceptiveField& input) const override;
  [[nodiscard]] std::vector<Formula> explain(std::span<const Shape> inputs, const Shape& output) const override;
  [[nodiscard]] const Conv2dOptions& options() const { return options_; }

 private:
  Conv2dOptions options_;
  kernels::onednn::Conv2d onednn_;  // cached oneDNN primitives
};

}  // namespace convnet
