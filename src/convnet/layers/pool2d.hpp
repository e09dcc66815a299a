// Pooling: MaxPool2d and AvgPool2d over F x F windows (stride defaults to F), and
// GlobalAvgPool2d (torchvision's AdaptiveAvgPool2d((1, 1))). No parameters, no MACs.
#pragma once

#include <memory>

#include "convnet/kernels/onednn/pool2d.hpp"
#include "convnet/layer.hpp"
#include "convnet/layer_args.hpp"
#include "convnet/layers/window.hpp"

namespace convnet {

/// Options of MaxPool2d and AvgPool2d: the window; stride equals the kernel unless given.
struct Pool2dOptions {
  Window window;  // dilation stays 1
};

class MaxPool2d final : public Layer {
 public:
  explicit MaxPool2d(Pool2dOptions options) : options_(options) {}
  static std::unique_ptr<Layer> from_args(LayerArgs& args);
  static constexpr const char* kUsage = "maxpool KxK [stride S] [pad P] [pad_end P] [round floor|ceil|exact]";

  [[nodiscard]] std::string kind() const override { return "maxpool"; }
  [[nodiscard]] std::string args() const override;
  [[nodiscard]] Shape output_shape(std::span<const Shape> inputs) const override;
  void forward(const RunContext& ctx, Inputs inputs, Params params, Tensor& output) override;
  void backward(const RunContext& ctx, Inputs inputs, const Tensor& output, const Tensor& grad_output, Params params,
                Params grad_params, GradTargets grad_inputs) override;
  [[nodiscard]] ReceptiveField receptive_field(const ReceptiveField& input) const override;
  [[nodiscard]] std::vector<Formula> explain(std::span<const Shape> inputs, const Shape& output) const override;
  [[nodiscard]] const Pool2dOptions& options() const { return options_; }

 private:
  Pool2dOptions options_;
  std::vector<int64_t> argmax_;  // (N, C, H2, W2): flat input index of each maximum, for backward
  kernels::onednn::MaxPool2d onednn_;  // keeps the training workspace
};

/// Average pooling. Like PyTorch's default (count_include_pad=True), zero padding counts in the
/// divisor: a corner window of a padded input averages over F*F cells, some of them zeros.
class AvgPool2d final : public Layer {
 public:
  explicit AvgPool2d(Pool2dOptions options) : options_(options) {}
  static std::unique_ptr<Layer> from_args(LayerArgs& args);
  static constexpr const char* kUsage = "avgpool KxK [stride S] [pad P] [round floor|ceil|exact]";

  [[nodiscard]] std::string kind() const override { return "avgpool"; }
  [[nodiscard]] std::string args() const override;
  [[nodiscard]] Shape output_shape(std::span<const Shape> inputs) const override;
  void forward(const RunContext& ctx, Inputs inputs, Params params, Tensor& output) override;
  void backward(const RunContext& ctx, Inputs inputs, const Tensor& output, const Tensor& grad_output, Params params,
                Params grad_params, GradTargets grad_inputs) override;
  [[nodiscard]] ReceptiveField receptive_field(const ReceptiveField& input) const override;
  [[nodiscard]] std::vector<Formula> explain(std::span<const Shape> inputs, const Shape& output) const override;
  [[nodiscard]] const Pool2dOptions& options() const { return options_; }

 private:
  Pool2dOptions options_;
  kernels::onednn::AvgPool2d onednn_;
};

/// Average over the whole H x W plane: (C, H, W) -> (C, 1, 1). Each output sees the whole input.
class GlobalAvgPool2d final : public Layer {
 public:
  GlobalAvgPool2d() = default;
  static std::unique_ptr<Layer> from_args(LayerArgs& args);
  static constexpr const char* kUsage = "globalavgpool";

  [[nodiscard]] std::string kind() const override { return "globalavgpool"; }
  [[nodiscard]] Shape output_shape(std::span<const Shape> inputs) const override;
  void forward(const RunContext& ctx, Inputs inputs, Params params, Tensor& output) override;
  void backward(const RunContext& ctx, Inputs inputs, const Tensor& output, const Tensor& grad_output, Params params,
                Params grad_params, GradTargets grad_inputs) override;
  [[nodiscard]] ReceptiveField receptive_field(const ReceptiveField& input) const override;
  [[nodiscard]] std::vector<Formula> explain(std::span<const Shape> inputs, const Shape& output) const override;
};

}  // namespace convnet
