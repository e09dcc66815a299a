// Layout: any shape, treated as a flat buffer of n elements; dx may alias dy when accumulate is false.
// Reference elementwise activations: ReLU, LeakyReLU, ELU, Sigmoid, Tanh. Forward may run in
// place (y == x). Every backward takes the forward OUTPUT y, so it works after an in-place forward;
// for ReLU and LeakyReLU (slope >= 0) passing the input x instead gives the same result.
#pragma once

#include <cmath>
#include <cstdint>

namespace convnet::kernels::reference {

namespace detail {
template <class T>
void activation_store(T& d, T value, bool accumulate) {
  d = accumulate ? d + value : value;
}
}  // namespace detail

/// y = max(0, x)
template <class T>
void relu_forward(int64_t n, const T* x, T* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : T(0);
}

/// dL/dx = dL/dy * (y > 0)
template <class T>
void relu_backward(int64_t n, const T* y, const T* dy, T* dx, bool accumulate) {
  for (int64_t i = 0; i < n; ++i) detail::activation_store(dx[i], y[i] > T(0) ? dy[i] : T(0), accumulate);
}

/// ZFNet's deconvnet rule: dL/dx = max(0, dL/dy), whatever the forward's sign
template <class T>
void relu_deconvnet_backward(int64_t n, const T* dy, T* dx, bool accumulate) {
  for (int64_t i = 0; i < n; ++i) detail::activation_store(dx[i], dy[i] > T(0) ? dy[i] : T(0), accumulate);
}

/// Guided backpropagation: dL/dx = dL/dy * (y > 0) * (dL/dy > 0)
template <class T>
void relu_guided_backward(int64_t n, const T* y, const T* dy, T* dx, bool accumulate) {
  for (int64_t i = 0; i < n; ++i) {
    detail::activation_store(dx[i], y[i] > T(0) && dy[i] > T(0) ? dy[i] : T(0), accumulate);
  }
}

/// y = x for x > 0, slope * x otherwise
template <class T>
void leaky_relu_forward(int64_t n, T slope, const T* x, T* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : slope * x[i];
}

/// dL/dx = dL/dy * (y > 0 ? 1 : slope)   (needs slope >= 0 so that y > 0 exactly when x > 0)
template <class T>
void leaky_relu_backward(int64_t n, T slope, const T* y, const T* dy, T* dx, bool accumulate) {
  for (int64_t i = 0; i < n; ++i) detail::activation_store(dx[i], y[i] > T(0) ? dy[i] : slope * dy[i], accumulate);
}

/// y = x for x > 0, alpha * (exp(x) - 1) otherwise
template <class T>
void elu_forward(int64_t n, T alpha, const T* x, T* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : alpha * std::expm1(x[i]);
}

/// dL/dx = dL/dy * (y > 0 ? 1 : y + alpha)   (alpha * exp(x) = y + alpha; needs alpha > 0)
template <class T>
void elu_backward(int64_t n, T alpha, const T* y, const T* dy, T* dx, bool accumulate) {
  for (int64_t i = 0; i < n; ++i) {
    detail::activation_store(dx[i], y[i] > T(0) ? dy[i] : dy[i] * (y[i] + alpha), accumulate);
  }
}

/// y = 1 / (1 + exp(-x)), written so that neither branch overflows
template <class T>
void sigmoid_forward(int64_t n, const T* x, T* y) {
  for (int64_t i = 0; i < n; ++i) {
    if (x[i] >= T(0)) {
      y[i] = T(1) / (T(1) + std::exp(-x[i]));
    } else {
      const T e = std::exp(x[i]);
      y[i] = e / (T(1) + e);
    }
  }
}

/// dL/dx = dL/dy * y * (1 - y)
template <class T>
void sigmoid_backward(int64_t n, const T* y, const T* dy, T* dx, bool accumulate) {
  for (int64_t i = 0; i < n; ++i) detail::activation_store(dx[i], dy[i] * y[i] * (T(1) - y[i]), accumulate);
}

/// y = tanh(x)
template <class T>
void tanh_forward(int64_t n, const T* x, T* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}

/// dL/dx = dL/dy * (1 - y^2)
template <class T>
void tanh_backward(int64_t n, const T* y, const T* dy, T* dx, bool accumulate) {
  for (int64_t i = 0; i < n; ++i) detail::activation_store(dx[i], dy[i] * (T(1) - y[i] * y[i]), accumulate);
}

}  // namespace convnet::kernels::reference
