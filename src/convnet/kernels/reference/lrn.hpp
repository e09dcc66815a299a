// Layout: x, y, scale (N, C, P) with P = H*W (P = 1 for (N, C) vectors).
// Reference local response normalisation across channels with PyTorch's LocalResponseNorm
// semantics: b_c = a_c / s_c^beta, s_c = k + alpha/size * sum of a_c'^2 over the window of channels
// c - size/2 .. c + (size-1)/2 (integer division; channels outside [0, C) count as zeros).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace convnet::kernels::reference {

/// Shapes and hyperparameters of one LRN call (defaults: AlexNet's, as LocalResponseNormOptions).
struct LrnGeometry {
  int64_t batch = 1;
  int64_t channels = 1;
  int64_t positions = 1;
  int64_t size = 5;
  double alpha = 1e-4;
  double beta = 0.75;
  double k = 2.0;
};

/// y = x * scale^-beta; scale (saved for the backward) = k + alpha/size * windowed sum of x^2.
template <class T>
void lrn_forward(const LrnGeometry& g, const T* x, T* y, T* scale) {
  const int64_t C = g.channels;
  const int64_t P = g.positions;
  const T alpha_over_size = static_cast<T>(g.alpha / static_cast<double>(g.size));
  for (int64_t n = 0; n < g.batch; ++n) {
    for (int64_t c = 0; c < C; ++c) {
      const int64_t first = std::max<int64_t>(c - g.size / 2, 0);
      const int64_t last = std::min<int64_t>(c + (g.size - 1) / 2, C - 1);
      for (int64_t p = 0; p < P; ++p) {
        T sum = 0;
        for (int64_t j = first; j <= last; ++j) {
          const T v = x[(n * C + j) * P + p];
          sum += v * v;
        }
        const int64_t i = (n * C + c) * P + p;
        scale[i] = static_cast<T>(g.k) + alpha_over_size * sum;
        y[i] = x[i] * std::pow(scale[i], static_cast<T>(-g.beta));
      }
    }
  }
}

/// dL/dx_j = dL/dy_j * s_j^-beta - 2*alpha*beta/size * x_j * sum_{c: j in window(c)} dL/dy_c * x_c * s_c^(-beta-1)
template <class T>
void lrn_backward(const LrnGeometry& g, const T* x, const T* scale, const T* dy, T* dx, bool accumulate) {
  const int64_t C = g.channels;
  const int64_t P = g.positions;
  const T beta = static_cast<T>(g.beta);
  const T factor = static_cast<T>(2.0 * g.alpha * g.beta / static_cast<double>(g.size));
  for (int64_t n = 0; n < g.batch; ++n) {
    for (int64_t j = 0; j < C; ++j) {
      // Channel j is in the window of channels c = j - (size-1)/2 .. j + size/2.
      const int64_t first = std::max<int64_t>(j - (g.size - 1) / 2, 0);
      const int64_t last = std::min<int64_t>(j + g.size / 2, C - 1);
      for (int64_t p = 0; p < P; ++p) {
        T cross = 0;
        for (int64_t c = first; c <= last; ++c) {
          const int64_t i = (n * C + c) * P + p;
          cross += dy[i] * x[i] * std::pow(scale[i], -beta - T(1));
        }
        const int64_t i = (n * C + j) * P + p;
        const T v = dy[i] * std::pow(scale[i], -beta) - factor * x[i] * cross;
        dx[i] = accumulate ? dx[i] + v : v;
      }
    }
  }
}

}  // namespace convnet::kernels::reference
