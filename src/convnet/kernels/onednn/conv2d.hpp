// Layout: x (N, C, H, W), w (K, C/groups, F_h, F_w), b (K), y (N, K, H2, W2), all plain float32.
// oneDNN 2-D convolution with the meaning of reference/conv2d.hpp (stride, zero padding, dilation,
// groups). oneDNN picks its own activation / weight formats (format_tag::any); the caller's plain
// buffers are reordered at the boundary on every call. Direct algorithm only (no Winograd).
#pragma once

#include <array>
#include <cstdint>

#include "convnet/kernels/onednn/common.hpp"
#include "convnet/kernels/reference/conv_geometry.hpp"

namespace convnet::kernels::onednn {

using reference::Conv2dGeometry;

/// One conv layer's primitives, created on first use and again only when the geometry (or bias
/// presence, or engine) changes.
class Conv2d {
 public:
  /// y = conv(x, w) + b; bias may be null.
  void forward(Engine& engine, const Conv2dGeometry& g, const float* input, const float* weight, const float* bias,
               float* output);

  /// dL/dx = conv_transpose(dL/dy, w); writes or adds into grad_input.
  void backward_data(Engine& engine, const Conv2dGeometry& g, const float* weight, const float* grad_output,
                     float* grad_input, bool accumulate);

  /// dL/dw = sum_n dL/dy (x) x,  dL/db = sum_{n,i,j} dL/dy; either may be null; writes or adds.
  void backward_weights(Engine& engine, const Conv2dGeometry& g, const float* input, const float* grad_output,
                        float* grad_weight, float* grad_bias, bool accumulate);

  /// Both of the above, as reference::conv2d_backward (null pointers: not wanted).
  void backward(Engine& engine, const Conv2dGeometry& g, const float* input, const float* weight,
                const float* grad_output, float* grad_input, float* grad_weight, float* grad_bias, bool accumulate);

 private:
  using Key = std::array<int64_t, 18>;
  Key forward_key_{}, backward_data_key_{}, backward_weights_key_{};
  WeightsForward forward_;
  WeightsBackwardData backward_data_;
  WeightsBackwardWeights backward_weights_;
  bool has_forward_ = false, has_backward_data_ = false, has_backward_weights_ = false;
};

}  // namespace convnet::kernels::onednn
