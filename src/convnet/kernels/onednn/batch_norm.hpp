// Layout: x, y (N, C, P) with P = H*W (P = 1 for (N, C)), plain float32; gamma, beta, running and
// saved statistics (C).
// oneDNN batch normalisation with the meaning of reference/batch_norm.hpp: batch statistics in
// training (running statistics updated like PyTorch: momentum, unbiased running variance),
// running statistics at inference, and the training-mode backward.
#pragma once

#include <array>
#include <cstdint>

#include "convnet/kernels/onednn/common.hpp"
#include "convnet/kernels/reference/batch_norm.hpp"

namespace convnet::kernels::onednn {

using reference::BatchNormGeometry;

/// running = (1 - momentum) running + momentum batch statistic, per channel, with the running
/// variance unbiased (var m/(m-1)) from the batch's biased `var` over m = N*P values, as PyTorch.
void update_running_stats(const float* mean, const float* var, int64_t channels, int64_t m, float momentum,
                          float* running_mean, float* running_var);

/// One batch-norm layer's primitives, recreated only when the shape or eps changes. The saved
/// statistics have the reference's meaning (batch mean, 1/sqrt(var + eps)) so either backend's
/// backward can follow either forward.
class BatchNorm {
 public:
  /// y = gamma (x - mean) / sqrt(var + eps) + beta with the batch's mean and biased var;
  /// running_mean = (1 - momentum) running_mean + momentum mean, running_var likewise with the
  /// unbiased var * m/(m-1), m = N*P. y may equal x.
  void forward_training(Engine& engine, const BatchNormGeometry& g, float eps, float momentum, const float* input,
                        const float* gamma, const float* beta, float* output, float* running_mean,
                        float* running_var, float* saved_mean, float* saved_inv_std);

  /// y = gamma (x - running_mean) / sqrt(running_var + eps) + beta. y may equal x.
  void forward_inference(Engine& engine, const BatchNormGeometry& g, float eps, const float* input,
                         const float* gamma, const float* beta, const float* running_mean,
                         const float* running_var, float* output);

  /// dL/dbeta = sum dy, dL/dgamma = sum dy xhat, dL/dx = gamma inv_std / m (m dy - dL/dbeta - xhat dL/dgamma);
  /// eps must be the forward's. Any of grad_input, grad_gamma, grad_beta may be null.
  void backward(Engine& engine, const BatchNormGeometry& g, float eps, const float* input, const float* gamma,
                const float* saved_mean, const float* saved_inv_std, const float* grad_output, float* grad_input,
                float* grad_gamma, float* grad_beta, bool accumulate);

 private:
  using Key = std::array<int64_t, 6>;
  struct Primitive {
    Key key{};
    Step step;
    bool built = false;
  };
  void bind_channels(Engine& engine, const BatchNormGeometry& g);

  Primitive training_, inference_, backward_;
  Output diff_src_;
  // Unbound (C) memories for the caller's per-channel buffers, and internal (C) buffers.
  dnnl::memory scale_, shift_, mean_, variance_, variance_internal_, diff_scale_, diff_shift_,
      unused_shift_;
  int64_t channels_ = -1;
  int64_t channels_engine_ = 0;
};

}  // namespace convnet::kernels::onednn
