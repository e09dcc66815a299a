// Layout: x (N, I), w (O, I), b (O), y (N, O); a volume input is flattened to I = C*H*W.
// Reference fully connected layer (Caffe's InnerProduct, PyTorch's Linear): y = x w^T + b.
#pragma once

#include <cstdint>

#include "convnet/kernels/reference/nullable.hpp"

namespace convnet::kernels::reference {

/// y[n,o] = b[o] + sum_i w[o,i] * x[n,i]; innermost i is contiguous in both x and w.
template <class T>
void linear_forward(int64_t batch, int64_t in_features, int64_t out_features, const T* input, const T* weight,
                    const Nullable<T>* bias, T* output) {
  for (int64_t n = 0; n < batch; ++n) {
    const T* x = input + n * in_features;
    for (int64_t o = 0; o < out_features; ++o) {
      const T* w = weight + o * in_features;
      T s = bias ? bias[o] : T(0);
      for (int64_t i = 0; i < in_features; ++i) s += w[i] * x[i];
      output[n * out_features + o] = s;
    }
  }
}

/// Gradients of linear_forward; null pointers are not wanted; accumulate adds instead of overwriting.
template <class T>
void linear_backward(int64_t batch, int64_t in_features, int64_t out_features, const T* input, const T* weight,
                     const T* grad_output, Nullable<T>* grad_input, Nullable<T>* grad_weight,
                     Nullable<T>* grad_bias, bool accumulate) {
  // dx = dy w;  dw = dy^T x;  db[o] = sum_n dy[n,o]
  if (grad_bias) {
    for (int64_t o = 0; o < out_features; ++o) {
      T s = 0;
      for (int64_t n = 0; n < batch; ++n) s += grad_output[n * out_features + o];
      grad_bias[o] = accumulate ? grad_bias[o] + s : s;
    }
  }
  if (grad_weight) {
    if (!accumulate) {
      for (int64_t e = 0; e < out_features * in_features; ++e) grad_weight[e] = T(0);
    }
    for (int64_t o = 0; o < out_features; ++o) {
      T* dw = grad_weight + o * in_features;
      for (int64_t n = 0; n < batch; ++n) {
        const T d = grad_output[n * out_features + o];
        const T* x = input + n * in_features;
        for (int64_t i = 0; i < in_features; ++i) dw[i] += d * x[i];
      }
    }
  }
  if (grad_input) {
    if (!accumulate) {
      for (int64_t e = 0; e < batch * in_features; ++e) grad_input[e] = T(0);
    }
    for (int64_t n = 0; n < batch; ++n) {
      T* dx = grad_input + n * in_features;
      for (int64_t o = 0; o < out_features; ++o) {
        const T d = grad_output[n * out_features + o];
        const T* w = weight + o * in_features;
        for (int64_t i = 0; i < in_features; ++i) dx[i] += d * w[i];
      }
    }
  }
}

}  // namespace convnet::kernels::reference
