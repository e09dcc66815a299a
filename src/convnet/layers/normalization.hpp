// Normalisation layers: LocalResponseNorm across channels (AlexNet) and BatchNorm (BatchNorm2d on
// volumes, BatchNorm1d on vectors). Neither changes the shape.
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>

#include "convnet/kernels/onednn/batch_norm.hpp"
#include "convnet/kernels/onednn/lrn.hpp"
#include "convnet/layer.hpp"
#include "convnet/layer_args.hpp"

namespace convnet {

/// PyTorch's LocalResponseNorm: x / (k + alpha/size * sum of x^2 over `size` neighbouring
/// channels)^beta. PyTorch defaults k to 1.0; the default here is 2, the value AlexNet (and the
/// lecture notes) use, since AlexNet is the network this layer exists for.
struct LocalResponseNormOptions {
  int64_t size = 5;
  double alpha = 1e-4;
  double beta = 0.75;
  double k = 2.0;
};

class LocalResponseNorm final : public Layer {
 public:
  explicit LocalResponseNorm(LocalResponseNormOptions options) : options_(options) {}
  static std::unique_ptr<Layer> from_args(LayerArgs& args);
  static constexpr const char* kUsage = "lrn [size 5] [alpha 1e-4] [beta 0.75] [k 2]";

  [[nodiscard]] std::string kind() const override { return "lrn"; }
  [[nodiscard]] std::string args() const override;
  [[nodiscard]] Shape output_shape(std::span<const Shape> inputs) const override;
  void forward(const RunContext& ctx, Inputs inputs, Params params, Tensor& output) override;
  void backward(const RunContext& ctx, Inputs inputs, const Tensor& output, const Tensor& grad_output, Params params,
                Params grad_params, GradTargets grad_inputs) override;
  [[nodiscard]] const LocalResponseNormOptions& options() const { return options_; }

 private:
  LocalResponseNormOptions options_;
  Tensor scale_;  // (N, C, H, W): k + alpha/size * sum x^2, saved for backward
  kernels::onednn::LocalResponseNorm onednn_;  // keeps the training workspace
};

struct BatchNormOptions {
  double eps = 1e-5;
  double momentum = 0.1;
};

/// Per-channel normalisation with a learnt scale (weight) and shift (bias), plus running
/// statistics as buffers.
class BatchNorm final : public Layer {
 public:
  explicit BatchNorm(BatchNormOptions options = {}) : options_(options) {}
  static std::unique_ptr<Layer> from_args(LayerArgs& args);
  static constexpr const char* kUsage = "batchnorm [eps 1e-5] [momentum 0.1]";

  [[nodiscard]] std::string kind() const override { return "batchnorm"; }
  [[nodiscard]] std::string args() const override;
  [[nodiscard]] Shape output_shape(std::span<const Shape> inputs) const override;
  void forward(const RunContext& ctx, Inputs inputs, Params params, Tensor& output) override;
  void backward(const RunContext& ctx, Inputs inputs, const Tensor& output, const Tensor& grad_output, Params params,
                Params grad_params, GradTargets grad_inputs) override;
  [[nodiscard]] std::vector<ParamSpec> parameters(std::span<const Shape> inputs) const override;
  [[nodiscard]] std::vector<Formula> explain(std::span<const Shape> inputs, const Shape& output) const override;
  [[nodiscard]] const BatchNormOptions& options() const { return options_; }

 private:
  BatchNormOptions options_;
  std::vector<float> saved_mean_;     // (C): batch mean of the last training forward
  std::vector<float> saved_inv_std_;  // (C): 1 / sqrt(batch variance + eps)
  std::vector<float> grad_scale_;     // (C): scratch for dL/dweight before it is added
  std::vector<float> grad_shift_;     // (C): scratch for dL/dbias
  double saved_count_ = 0;            // values per channel the statistics were taken over (all ranks)
  void forward_synchronized(const RunContext& ctx, const Tensor& input, Params params, Tensor& output);
  void backward_synchronized(const RunContext& ctx, const Tensor& input, const Tensor& grad_output, Params params,
                             Params grad_params, const GradTarget& grad_input);
  kernels::onednn::BatchNorm onednn_;
};

/// Folds inference batch norm into the conv or fc before it: per output channel k of w (outputs,
/// per_output), s = gamma / sqrt(var + eps); w' = s w; b' = s (b - mean) + beta.
inline void fold_batch_norm(float* w, float* b, int64_t outputs, int64_t per_output, const float* gamma,
                            const float* beta, const float* mean, const float* var, double eps) {
  for (int64_t k = 0; k < outputs; ++k) {
    const float s = static_cast<float>(gamma[k] / std::sqrt(static_cast<double>(var[k]) + eps));
    for (int64_t i = 0; i < per_output; ++i) w[k * per_output + i] *= s;
    b[k] = s * (b[k] - mean[k]) + beta[k];
  }
}

}  // namespace convnet
