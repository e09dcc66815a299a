// Layout: x (N, C, H, W) -> y (N, K, H2, W2) through an F_h x F_w window.
// Geometry of a 2-D sliding-window kernel (convolution, locally connected, tiled), shared with the
// oneDNN kernels, and the range of outputs whose tap lands inside the input.
#pragma once

#include <algorithm>
#include <cstdint>

namespace convnet::kernels::reference {

/// Input (batch, in_channels, in_h, in_w), output (batch, out_channels, out_h, out_w), as PyTorch's
/// Conv2d: stride, zero padding on both sides, dilation and groups. The layer computes out_h/out_w
/// (floor, ceil or exact rounding); taps past the input and its padding read zero.
struct Conv2dGeometry {
  int64_t batch, in_channels, in_h, in_w, out_channels, out_h, out_w, kernel_h, kernel_w, stride_h, stride_w, pad_h,
      pad_w, dilation_h = 1, dilation_w = 1, groups = 1;
};

/// Outputs o in [begin, end) whose input index o * stride + offset lies in [0, in); the others
/// read zero padding. offset = p * dilation - pad for kernel tap p.
struct TapRange {
  int64_t begin, end, offset;
};

[[nodiscard]] inline TapRange tap_range(int64_t out, int64_t in, int64_t stride, int64_t offset) {
  const int64_t begin = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  const int64_t end = std::min(out, offset >= in ? 0 : (in - 1 - offset) / stride + 1);
  return {std::min(begin, end), end, offset};
}

}  // namespace convnet::kernels::reference
