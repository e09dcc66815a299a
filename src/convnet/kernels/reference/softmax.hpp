// Layout: x, y (N, C, P) with P = H*W (P = 1 for vectors); logits, probabilities (N, F); labels (N).
// Reference softmax over dim 1 (the features of (N, F), the channels of (N, C, H, W) at each
// position, as PyTorch's softmax(x, dim=1)), numerically stable by subtracting the max, and the
// fused softmax + cross-entropy loss (mean over the batch) of a classifier head.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace convnet::kernels::reference {

/// Softmax over `channels` at each of `positions` (H*W, or 1) of every sample.
struct SoftmaxGeometry {
  int64_t batch = 1;
  int64_t channels = 1;
  int64_t positions = 1;
};

/// y[n, c, p] = exp(x[n, c, p] - m) / sum_c' exp(x[n, c', p] - m), m = max_c' x[n, c', p]
/// y may equal x.
template <class T>
void softmax_forward(const SoftmaxGeometry& g, const T* x, T* y) {
  const int64_t C = g.channels;
  const int64_t P = g.positions;
  for (int64_t n = 0; n < g.batch; ++n) {
    for (int64_t p = 0; p < P; ++p) {
      const int64_t base = n * C * P + p;
      T m = x[base];
      for (int64_t c = 1; c < C; ++c) m = std::max(m, x[base + c * P]);
      T sum = 0;
      for (int64_t c = 0; c < C; ++c) {
        y[base + c * P] = std::exp(x[base + c * P] - m);
        sum += y[base + c * P];
      }
      for (int64_t c = 0; c < C; ++c) y[base + c * P] /= sum;
    }
  }
}

/// dL/dx_c = y_c * (dL/dy_c - sum_c' dL/dy_c' * y_c'), from the forward output y
template <class T>
void softmax_backward(const SoftmaxGeometry& g, const T* y, const T* dy, T* dx, bool accumulate) {
  const int64_t C = g.channels;
  const int64_t P = g.positions;
  for (int64_t n = 0; n < g.batch; ++n) {
    for (int64_t p = 0; p < P; ++p) {
      const int64_t base = n * C * P + p;
      T dot = 0;
      for (int64_t c = 0; c < C; ++c) dot += dy[base + c * P] * y[base + c * P];
      for (int64_t c = 0; c < C; ++c) {
        const int64_t i = base + c * P;
        const T v = y[i] * (dy[i] - dot);
        dx[i] = accumulate ? dx[i] + v : v;
      }
    }
  }
}

/// Softmax of (N, F) logits into `probabilities`, and returns the mean cross-entropy
/// loss = -1/N * sum_n log p[n, label_n], with log p computed stably as x - m - log(sum exp(x - m)).
template <class T>
T softmax_cross_entropy_forward(int64_t batch, int64_t features, const T* logits, const int64_t* labels,
                                T* probabilities) {
  T loss = 0;
  for (int64_t n = 0; n < batch; ++n) {
    const T* x = logits + n * features;
    T* prob = probabilities + n * features;
    T m = x[0];
    for (int64_t f = 1; f < features; ++f) m = std::max(m, x[f]);
    T sum = 0;
    for (int64_t f = 0; f < features; ++f) {
      prob[f] = std::exp(x[f] - m);
      sum += prob[f];
    }
    for (int64_t f = 0; f < features; ++f) prob[f] /= sum;
    loss -= x[labels[n]] - m - std::log(sum);
  }
  return loss / static_cast<T>(batch);
}

/// dL/dlogits = dL/dloss * (p - onehot(label)) / N
template <class T>
void softmax_cross_entropy_backward(int64_t batch, int64_t features, const T* probabilities, const int64_t* labels,
                                    T grad_loss, T* grad_logits, bool accumulate) {
  const T scale = grad_loss / static_cast<T>(batch);
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t f = 0; f < features; ++f) {
      const int64_t i = n * features + f;
      const T v = scale * (probabilities[i] - (f == labels[n] ? T(1) : T(0)));
      grad_logits[i] = accumulate ? grad_logits[i] + v : v;
    }
  }
}

}  // namespace convnet::kernels::reference
