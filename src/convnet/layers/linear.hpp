// Linear: a fully connected layer of N neurons (Caffe's InnerProduct). Accepts any input shape and
// flattens it, as torchvision's classifiers do after torch.flatten(x, 1).
#pragma once

#include <memory>

#include "convnet/kernels/onednn/linear.hpp"
#include "convnet/layer.hpp"
#include "convnet/layer_args.hpp"

namespace convnet {

struct LinearOptions {
  int64_t out_features = 1;
  bool bias = true;
  Init init = Init::KaimingNormal;
};

class Linear final : public Layer {
 public:
  explicit Linear(LinearOptions options) : options_(options) {}
  static std::unique_ptr<Layer> from_args(LayerArgs& args);
  static constexpr const char* kUsage = "fc OUT_FEATURES [bias true|false] [init kaiming|xavier|gaussian|zeros]";

  [[nodiscard]] std::string kind() const override { return "fc"; }
  [[nodiscard]] std::string args() const override;
  [[nodiscard]] Shape output_shape(std::span<const Shape> inputs) const override;
  void forward(const RunContext& ctx, Inputs inputs, Params params, Tensor& output) override;
  void backward(const RunContext& ctx, Inputs inputs, const Tensor& output, const Tensor& grad_output, Params params,
                Params grad_params, GradTargets grad_inputs) override;
  [[nodiscard]] std::vector<ParamSpec> parameters(std::span<const Shape> inputs) const override;
  [[nodiscard]] int64_t macs(std::span<const Shape> inputs, const Shape& output) const override;
  [[nodiscard]] ReceptiveField receptive_field(const ReceptiveField& input) const override;
  [[nodiscard]] std::vector<Formula> explain(std::span<const Shape> inputs, const Shape& output) const override;
  [[nodiscard]] const LinearOptions& options() const { return options_; }

 private:
  LinearOptions options_;
  kernels::onednn::Linear onednn_;
};

}  // namespace convnet
