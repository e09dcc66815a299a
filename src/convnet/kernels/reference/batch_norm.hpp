// Layout: x, y (N, C, P) with P = H*W (P = 1 for (N, C)); gamma, beta, running and saved stats (C).
// Reference batch normalisation (BatchNorm2d on volumes, BatchNorm1d on vectors): per channel,
// y = gamma * (x - mean) / sqrt(var + eps) + beta, with batch statistics over N, H, W in training
// and running statistics at inference, updated like PyTorch (the running variance is unbiased).
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

namespace convnet::kernels::reference {

struct BatchNormGeometry {
  int64_t batch = 1;
  int64_t channels = 1;
  int64_t positions = 1;  // H*W, or 1 for vectors
};

/// Training forward. mean and biased variance over the m = N*P values of each channel normalise x;
/// running_mean = (1 - momentum) * running_mean + momentum * mean and running_var likewise with the
/// unbiased variance var * m/(m-1) (the layer guarantees m > 1). Saves mean and 1/sqrt(var + eps)
/// for the backward. y may equal x.
template <class T>
void batch_norm_forward_training(const BatchNormGeometry& g, T eps, T momentum, const T* x, const T* gamma,
                                 const T* beta, T* y, T* running_mean, T* running_var, T* saved_mean,
                                 T* saved_inv_std) {
  const int64_t C = g.channels;
  const int64_t P = g.positions;
  const int64_t m = g.batch * P;
  for (int64_t c = 0; c < C; ++c) {
    T sum = 0;
    for (int64_t n = 0; n < g.batch; ++n) {
      for (int64_t p = 0; p < P; ++p) sum += x[(n * C + c) * P + p];
    }
    const T mean = sum / static_cast<T>(m);
    T squares = 0;
    for (int64_t n = 0; n < g.batch; ++n) {
      for (int64_t p = 0; p < P; ++p) {
        const T d = x[(n * C + c) * P + p] - mean;
        squares += d * d;
      }
    }
    const T var = squares / static_cast<T>(m);
    const T inv_std = T(1) / std::sqrt(var + eps);
    saved_mean[c] = mean;
    saved_inv_std[c] = inv_std;
    const T unbiased = m > 1 ? squares / static_cast<T>(m - 1) : var;
    running_mean[c] = (T(1) - momentum) * running_mean[c] + momentum * mean;
    running_var[c] = (T(1) - momentum) * running_var[c] + momentum * unbiased;
    for (int64_t n = 0; n < g.batch; ++n) {
      for (int64_t p = 0; p < P; ++p) {
        const int64_t i = (n * C + c) * P + p;
        y[i] = gamma[c] * (x[i] - mean) * inv_std + beta[c];
      }
    }
  }
}

/// Inference forward: y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta. y may equal x.
template <class T>
void batch_norm_forward_inference(const BatchNormGeometry& g, T eps, const T* x, const T* gamma, const T* beta,
                                  const T* running_mean, const T* running_var, T* y) {
  const int64_t C = g.channels;
  const int64_t P = g.positions;
  for (int64_t c = 0; c < C; ++c) {
    const T a = gamma[c] / std::sqrt(running_var[c] + eps);
    for (int64_t n = 0; n < g.batch; ++n) {
      for (int64_t p = 0; p < P; ++p) {
        const int64_t i = (n * C + c) * P + p;
        y[i] = a * (x[i] - running_mean[c]) + beta[c];
      }
    }
  }
}

/// Training-mode backward through the batch statistics, with xhat = (x - mean) * inv_std:
/// dL/dbeta = sum dy, dL/dgamma = sum dy * xhat, dL/dx = gamma * inv_std / m * (m * dy - dL/dbeta - xhat * dL/dgamma)
/// Any of dx, dgamma, dbeta may be null (not wanted); T is deduced from the other arguments.
template <class T>
void batch_norm_backward(const BatchNormGeometry& g, const T* x, const T* gamma, const T* saved_mean,
                         const T* saved_inv_std, const T* dy, std::type_identity_t<T>* dx,
                         std::type_identity_t<T>* dgamma, std::type_identity_t<T>* dbeta, bool accumulate) {
  const int64_t C = g.channels;
  const int64_t P = g.positions;
  const int64_t m = g.batch * P;
  for (int64_t c = 0; c < C; ++c) {
    const T mean = saved_mean[c];
    const T inv_std = saved_inv_std[c];
    T sum_dy = 0;
    T sum_dy_xhat = 0;
    for (int64_t n = 0; n < g.batch; ++n) {
      for (int64_t p = 0; p < P; ++p) {
        const int64_t i = (n * C + c) * P + p;
        sum_dy += dy[i];
        sum_dy_xhat += dy[i] * (x[i] - mean) * inv_std;
      }
    }
    if (dgamma != nullptr) dgamma[c] = accumulate ? dgamma[c] + sum_dy_xhat : sum_dy_xhat;
    if (dbeta != nullptr) dbeta[c] = accumulate ? dbeta[c] + sum_dy : sum_dy;
    if (dx == nullptr) continue;
    const T a = gamma[c] * inv_std / static_cast<T>(m);
    for (int64_t n = 0; n < g.batch; ++n) {
      for (int64_t p = 0; p < P; ++p) {
        const int64_t i = (n * C + c) * P + p;
        const T xhat = (x[i] - mean) * inv_std;
        const T v = a * (static_cast<T>(m) * dy[i] - sum_dy - xhat * sum_dy_xhat);
        dx[i] = accumulate ? dx[i] + v : v;
      }
    }
  }
}

/// Inference-mode backward (the statistics are constants), with inv_std = 1 / sqrt(running_var + eps):
/// dL/dbeta = sum dy, dL/dgamma = sum dy * (x - running_mean) * inv_std, dL/dx = gamma * inv_std * dy
template <class T>
void batch_norm_backward_inference(const BatchNormGeometry& g, T eps, const T* x, const T* gamma,
                                   const T* running_mean, const T* running_var, const T* dy,
                                   std::type_identity_t<T>* dx, std::type_identity_t<T>* dgamma,
                                   std::type_identity_t<T>* dbeta, bool accumulate) {
  const int64_t C = g.channels;
  const int64_t P = g.positions;
  for (int64_t c = 0; c < C; ++c) {
    const T inv_std = T(1) / std::sqrt(running_var[c] + eps);
    T sum_dy = 0;
    T sum_dy_xhat = 0;
    for (int64_t n = 0; n < g.batch; ++n) {
      for (int64_t p = 0; p < P; ++p) {
        const int64_t i = (n * C + c) * P + p;
        sum_dy += dy[i];
        sum_dy_xhat += dy[i] * (x[i] - running_mean[c]) * inv_std;
        if (dx != nullptr) dx[i] = accumulate ? dx[i] + gamma[c] * inv_std * dy[i] : gamma[c] * inv_std * dy[i];
      }
    }
    if (dgamma != nullptr) dgamma[c] = accumulate ? dgamma[c] + sum_dy_xhat : sum_dy_xhat;
    if (dbeta != nullptr) dbeta[c] = accumulate ? dbeta[c] + sum_dy : sum_dy;
  }
}

}  // namespace convnet::kernels::reference
