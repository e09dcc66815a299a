// Layout: x (N, C, in_h, in_w), y (N, C, out_h, out_w), plain float32 NCHW.
// oneDNN max and average pooling with the meaning of reference/pool2d.hpp: padding never wins a max;
// the average divides by the window clipped to input + padding (count_include_pad=True), including
// windows that ceil rounding pushes past the padded border (oneDNN divides those by the full window;
// the kernel rescales the affected border rows / columns).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "convnet/kernels/onednn/common.hpp"
#include "convnet/kernels/reference/pool2d.hpp"

namespace convnet::kernels::onednn {

using reference::Pool2dGeometry;

namespace detail {

/// The primitives of one pooling algorithm, cached per geometry (and training flag for forward).
class Pool2dPrimitives {
 public:
  explicit Pool2dPrimitives(dnnl::algorithm algorithm) : algorithm_(algorithm) {}
  void forward(Engine& engine, const Pool2dGeometry& g, bool training, const float* input, float* output);
  void backward(Engine& engine, const Pool2dGeometry& g, const float* grad_output, float* grad_input,
                bool accumulate);

 private:
  using Key = std::array<int64_t, 14>;
  struct Forward {
    Key key{};
    Step step;
    Input src;
    Output dst;
  };
  struct Backward {
    Key key{};
    Step step;
    Input diff_dst;
    Output diff_src;
  };
  void update_correction(Engine& engine, const Pool2dGeometry& g);

  dnnl::algorithm algorithm_;
  Forward forward_;
  Backward backward_;
  bool has_forward_ = false, has_backward_ = false;
  dnnl::memory workspace_;       // max pooling: where each output's max came from (training forward)
  Key workspace_key_{};          // the geometry the workspace belongs to
  bool has_workspace_ = false;
  // Average pooling: per output row / column, full window / divisor of reference (1 almost everywhere).
  std::vector<float> factor_h_, factor_w_, scaled_grad_;
  Key correction_key_{};
  bool corrected_ = false, has_correction_ = false;
};

}  // namespace detail

/// Max pooling. A training forward keeps oneDNN's workspace (the argmax) inside the object for
/// backward; an inference forward keeps none.
class MaxPool2d {
 public:
  /// y = max over the window (padding is -infinity).
  void forward(Engine& engine, const Pool2dGeometry& g, bool training, const float* input, float* output) {
    impl_.forward(engine, g, training, input, output);
  }
  /// dL/dx[argmax(o)] += dL/dy[o]; needs the last forward to have been a training forward of g.
  void backward(Engine& engine, const Pool2dGeometry& g, const float* grad_output, float* grad_input,
                bool accumulate) {
    impl_.backward(engine, g, grad_output, grad_input, accumulate);
  }

 private:
  detail::Pool2dPrimitives impl_{dnnl::algorithm::pooling_max};
};

/// Average pooling with zero padding counted in the divisor.
class AvgPool2d {
 public:
  /// y = sum of the window's inputs / (window clipped to input + padding)
  void forward(Engine& engine, const Pool2dGeometry& g, const float* input, float* output) {
    impl_.forward(engine, g, false, input, output);
  }
  /// dL/dx[i] = sum over windows o containing i of dL/dy[o] / divisor(o)
  void backward(Engine& engine, const Pool2dGeometry& g, const float* grad_output, float* grad_input,
                bool accumulate) {
    impl_.backward(engine, g, grad_output, grad_input, accumulate);
  }

 private:
  detail::Pool2dPrimitives impl_{dnnl::algorithm::pooling_avg_include_padding};
};

}  // namespace convnet::kernels::onednn
