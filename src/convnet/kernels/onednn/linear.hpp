// Layout: x (N, I), w (O, I), b (O), y (N, O), plain float32; a volume input is flattened to I = C*H*W.
// oneDNN inner product with the meaning of reference/linear.hpp: y = x w^T + b. Plain layouts
// throughout (oneDNN runs these as GEMMs), so no reorders.
#pragma once

#include <array>
#include <cstdint>

#include "convnet/kernels/onednn/common.hpp"

namespace convnet::kernels::onednn {

/// One fully connected layer's primitives, recreated only when the sizes (or bias presence) change.
class Linear {
 public:
  /// y[n,o] = b[o] + sum_i w[o,i] x[n,i]; bias may be null.
  void forward(Engine& engine, int64_t batch, int64_t in_features, int64_t out_features, const float* input,
               const float* weight, const float* bias, float* output);

  /// dL/dx = dL/dy w; writes or adds.
  void backward_data(Engine& engine, int64_t batch, int64_t in_features, int64_t out_features, const float* weight,
                     const float* grad_output, float* grad_input, bool accumulate);

  /// dL/dw = dL/dy^T x, dL/db = sum_n dL/dy; either may be null; writes or adds.
  void backward_weights(Engine& engine, int64_t batch, int64_t in_features, int64_t out_features,
                        const float* input, const float* grad_output, float* grad_weight, float* grad_bias,
                        bool accumulate);

  /// Both of the above, as reference::linear_backward (null pointers: not wanted).
  void backward(Engine& engine, int64_t batch, int64_t in_features, int64_t out_features, const float* input,
                const float* weight, const float* grad_output, float* grad_input, float* grad_weight,
                float* grad_bias, bool accumulate);

 private:
  using Key = std::array<int64_t, 5>;
  Key forward_key_{}, backward_data_key_{}, backward_weights_key_{};
  WeightsForward forward_;
  WeightsBackwardData backward_data_;
  WeightsBackwardWeights backward_weights_;
  bool has_forward_ = false, has_backward_data_ = false, has_backward_weights_ = false;
};

}  // namespace convnet::kernels::onednn
