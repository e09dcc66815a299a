// Layout: any shape, a flat buffer of n float32 elements.
// oneDNN pointwise activations with the meaning of reference/activation.hpp: forward may run in
// place (y == x); every backward takes the forward OUTPUT y (oneDNN's *_use_dst_for_bwd
// algorithms), so it works after an in-place forward.
#pragma once

#include <array>
#include <cstdint>

#include "convnet/kernels/onednn/common.hpp"

namespace convnet::kernels::onednn {

enum class EltwiseKind {
  Relu,       // y = max(0, x)
  LeakyRelu,  // y = x > 0 ? x : alpha x   (alpha = slope >= 0)
  Elu,        // y = x > 0 ? x : alpha (exp(x) - 1)   (alpha > 0)
  Sigmoid,    // y = 1 / (1 + exp(-x))
  Tanh,       // y = tanh(x)
};

/// One activation layer's primitives, recreated only when kind, alpha or n changes.
class Eltwise {
 public:
  /// y = f(x); alpha is the slope (LeakyRelu) or alpha (Elu), ignored otherwise. y may equal x.
  void forward(Engine& engine, EltwiseKind kind, float alpha, int64_t n, const float* input, float* output);

  /// dL/dx = dL/dy * f'(x) written in terms of y; writes or adds. grad_input may equal grad_output
  /// when accumulate is false.
  void backward(Engine& engine, EltwiseKind kind, float alpha, int64_t n, const float* output,
                const float* grad_output, float* grad_input, bool accumulate);

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
