// LocallyConnected2d: like Conv2d but with unshared weights, a separate K x F x F x D1 filter bank
// at every output position (DeepFace's "locally connected" layers). No groups or dilation.
#pragma once

#include <memory>

#include "convnet/layer.hpp"
#include "convnet/layer_args.hpp"
#include "convnet/layers/window.hpp"

namespace convnet {

struct LocallyConnected2dOptions {
  int64_t out_channels = 1;
  Window window;  // dilation stays 1
  bool bias = true;
  Init init = Init::KaimingNormal;
};

class LocallyConnected2d final : public Layer {
 public:
  explicit LocallyConnected2d(LocallyConnected2dOptions options) : options_(options) {}
  static std::unique_ptr<Layer> from_args(LayerArgs& args);
  static constexpr const char* kUsage =
      "local OUT_CHANNELS KxK [stride S] [pad P] [bias true|false] [round floor|ceil|exact]";

  [[nodiscard]] std::string kind() const override { return "local"; }
  [[nodiscard]] std::string args() const override;
  [[nodiscard]] Shape output_shape(std::span<const Shape> inputs) const override;
  void forward(const RunContext& ctx, Inputs inputs, Params params, Tensor& output) override;
  void backward(const RunContext& ctx, Inputs inputs, const Tensor& output, const Tensor& grad_output, Params params,
                Params grad_params, GradTargets grad_inputs) override;
  [[nodiscard]] std::vector<ParamSpec> parameters(std::span<const Shape> inputs) const override;
  [[nodiscard]] int64_t macs(std::span<const Shape> inputs, const Shape& output) const override;
  [[nodiscard]] ReceptiveField receptive_field(const ReceptiveField& input) const override;
  [[nodiscard]] std::vector<Formula> explain(std::span<const Shape> inputs, const Shape& output) const override;
  [[nodiscard]] const LocallyConnected2dOptions& options() const { return options_; }

 private:
  LocallyConnected2dOptions options_;
};

}  // namespace convnet
