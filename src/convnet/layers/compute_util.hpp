// Small helpers the layers share when they call kernels: batch and spatial sizes of a tensor,
// optional gradient pointers, and the window geometry of a (N, C, H, W) pair.
#pragma once

#include "convnet/kernels/reference/conv_geometry.hpp"
#include "convnet/layer.hpp"
#include "convnet/layers/window.hpp"

namespace convnet {

[[nodiscard]] inline int64_t batch_of(const Tensor& t) { return t.dim(0); }
/// Elements per channel: H*W for a (N, C, H, W) tensor, 1 for (N, F).
[[nodiscard]] inline int64_t positions_of(const Tensor& t) { return t.dims().size() == 4 ? t.dim(2) * t.dim(3) : 1; }
[[nodiscard]] inline int64_t channels_of(const Tensor& t) { return t.dim(1); }

/// The i-th parameter gradient, or null when absent or not wanted.
[[nodiscard]] inline float* grad_or_null(Params grads, size_t i) {
  return i < grads.size() && grads[i] != nullptr ? grads[i]->data() : nullptr;
}
/// The input gradient's buffer, or null when not wanted.
[[nodiscard]] inline float* target_or_null(const GradTarget& target) {
  return target.tensor != nullptr ? target.tensor->data() : nullptr;
}

[[nodiscard]] inline kernels::reference::Conv2dGeometry conv_geometry(const Tensor& input, const Tensor& output,
                                                                     const Window& w, int64_t groups) {
  return {.batch = input.dim(0), .in_channels = input.dim(1), .in_h = input.dim(2), .in_w = input.dim(3),
          .out_channels = output.dim(1), .out_h = output.dim(2), .out_w = output.dim(3),
          .kernel_h = w.kernel.h, .kernel_w = w.kernel.w, .stride_h = w.stride.h, .stride_w = w.stride.w,
          .pad_h = w.padding.h, .pad_w = w.padding.w, .dilation_h = w.dilation.h, .dilation_w = w.dilation.w,
          .groups = groups};
}

}  // namespace convnet
