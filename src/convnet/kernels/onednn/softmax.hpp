// Layout: x, y (N, C, P) with P = H*W (P = 1 for (N, F) vectors), plain float32.
// oneDNN softmax over dim 1 with the meaning of reference/softmax.hpp (max-subtracted, y may equal x).
#pragma once

#include <array>
#include <cstdint>

#include "convnet/kernels/onednn/common.hpp"
#include "convnet/kernels/reference/softmax.hpp"

namespace convnet::kernels::onednn {

using reference::SoftmaxGeometry;

/// One softmax layer's primitives, recreated only when the shape changes.
class Softmax {
 public:
  /// y[n,c,p] = exp(x[n,c,p]) / sum_c' exp(x[n,c',p]). y may equal x.
  void forward(Engine& engine, const SoftmaxGeometry& g, const float* input, float* output);

  /// dL/dx_c = y_c (dL/dy_c - sum_c' dL/dy_c' y_c'), from the forward output y; writes or adds.
  void backward(Engine& engine, const SoftmaxGeometry& g, const float* output, const float* grad_output,
                float* grad_input, bool accumulate);

 private:
  using Key = std::array<int64_t, 4>;
  struct Primitive {
    Key key{};
    Step step;
    bool built = false;
  };
  Primitive forward_, backward_;
  Output diff_src_;
};

}  // namespace convnet::kernels::onednn
