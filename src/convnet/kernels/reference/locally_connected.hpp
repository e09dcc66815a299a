// Layout: x (N, C, H, W), w (H2, W2, K, C/groups, F_h, F_w), b (K, H2, W2), y (N, K, H2, W2).
// Reference locally connected layer (DeepFace): a convolution with unshared weights, one OIHW filter
// bank and one bias per output position. Geometry as conv2d (the layer uses groups = dilation = 1).
#pragma once

#include <cstdint>

#include "convnet/kernels/reference/contract.hpp"
#include "convnet/kernels/reference/conv_geometry.hpp"
#include "convnet/kernels/reference/nullable.hpp"

namespace convnet::kernels::reference {

/// y[n,k,i,j] = b[k,i,j] + sum_{c,p,q} w[i,j,k,c,p,q] * x[n, c', i*S_h - P_h + p*D_h, j*S_w - P_w + q*D_w].
/// One dot product per output, innermost over the contiguous filter row.
template <class T>
void locally_connected_forward(const Conv2dGeometry& g, const T* input, const T* weight, const Nullable<T>* bias,
                               T* output) {
  require_window(g, "locally_connected_forward");
  const int64_t Cg = g.in_channels / g.groups, Kg = g.out_channels / g.groups;
  const int64_t in_plane = g.in_h * g.in_w, filter = Cg * g.kernel_h * g.kernel_w;
  for (int64_t n = 0; n < g.batch; ++n) {
    for (int64_t k = 0; k < g.out_channels; ++k) {
      for (int64_t i = 0; i < g.out_h; ++i) {
        for (int64_t j = 0; j < g.out_w; ++j) {
          const T* w = weight + ((i * g.out_w + j) * g.out_channels + k) * filter;
          T s = bias ? bias[(k * g.out_h + i) * g.out_w + j] : T(0);
          for (int64_t c = 0; c < Cg; ++c) {
            const T* x = input + (n * g.in_channels + (k / Kg) * Cg + c) * in_plane;
            for (int64_t p = 0; p < g.kernel_h; ++p) {
              const int64_t ih = i * g.stride_h - g.pad_h + p * g.dilation_h;
              if (ih < 0 || ih >= g.in_h) continue;
              for (int64_t q = 0; q < g.kernel_w; ++q) {
                const int64_t iw = j * g.stride_w - g.pad_w + q * g.dilation_w;
                if (iw < 0 || iw >= g.in_w) continue;
                s += w[(c * g.kernel_h + p) * g.kernel_w + q] * x[ih * g.in_w + iw];
              }
            }
          }
          output[((n * g.out_channels + k) * g.out_h + i) * g.out_w + j] = s;
        }
      }
    }
  }
}

/// Gradients of locally_connected_forward; null pointers are not wanted; accumulate adds instead of overwriting.
template <class T>
void locally_connected_backward(const Conv2dGeometry& g, const T* input, const T* weight, const T* grad_output,
                                Nullable<T>* grad_input, Nullable<T>* grad_weight, Nullable<T>* grad_bias,
                                bool accumulate) {
  // db[k,i,j] = sum_n dy[n,k,i,j];  dw[i,j,k,c,p,q] = sum_n dy[n,k,i,j] x[n,c',ih,iw];  dx[n,c',ih,iw] += dy w
  require_window(g, "locally_connected_backward");
  const int64_t Cg = g.in_channels / g.groups, Kg = g.out_channels / g.groups;
  const int64_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w, filter = Cg * g.kernel_h * g.kernel_w;
  auto store = [accumulate](T& dst, T value) { dst = accumulate ? dst + value : value; };
  auto dy_at = [&](int64_t n, int64_t k, int64_t i, int64_t j) {
    return grad_output[(n * g.out_channels + k) * out_plane + i * g.out_w + j];
  };

  if (grad_bias) {
    for (int64_t k = 0; k < g.out_channels; ++k) {
      for (int64_t o = 0; o < out_plane; ++o) {
        T s = 0;
        for (int64_t n = 0; n < g.batch; ++n) s += grad_output[(n * g.out_channels + k) * out_plane + o];
        store(grad_bias[k * out_plane + o], s);
      }
    }
  }

  if (grad_weight) {
    for (int64_t i = 0; i < g.out_h; ++i) {
      for (int64_t j = 0; j < g.out_w; ++j) {
        for (int64_t k = 0; k < g.out_channels; ++k) {
          T* dw = grad_weight + ((i * g.out_w + j) * g.out_channels + k) * filter;
          for (int64_t c = 0; c < Cg; ++c) {
            for (int64_t p = 0; p < g.kernel_h; ++p) {
              const int64_t ih = i * g.stride_h - g.pad_h + p * g.dilation_h;
              for (int64_t q = 0; q < g.kernel_w; ++q) {
                const int64_t iw = j * g.stride_w - g.pad_w + q * g.dilation_w;
                T s = 0;  // stays 0 for taps in the padding
                if (ih >= 0 && ih < g.in_h && iw >= 0 && iw < g.in_w) {
                  for (int64_t n = 0; n < g.batch; ++n) {
                    const T* x = input + (n * g.in_channels + (k / Kg) * Cg + c) * in_plane;
                    s += dy_at(n, k, i, j) * x[ih * g.in_w + iw];
                  }
                }
                store(dw[(c * g.kernel_h + p) * g.kernel_w + q], s);
              }
            }
          }
        }
      }
    }
  }

  if (grad_input) {
    if (!accumulate) {
      for (int64_t e = 0; e < g.batch * g.in_channels * in_plane; ++e) grad_input[e] = T(0);
    }
    for (int64_t n = 0; n < g.batch; ++n) {
      for (int64_t k = 0; k < g.out_channels; ++k) {
        for (int64_t i = 0; i < g.out_h; ++i) {
          for (int64_t j = 0; j < g.out_w; ++j) {
            const T d = dy_at(n, k, i, j);
            const T* w = weight + ((i * g.out_w + j) * g.out_channels + k) * filter;
            for (int64_t c = 0; c < Cg; ++c) {
              T* dx = grad_input + (n * g.in_channels + (k / Kg) * Cg + c) * in_plane;
              for (int64_t p = 0; p < g.kernel_h; ++p) {
                const int64_t ih = i * g.stride_h - g.pad_h + p * g.dilation_h;
                if (ih < 0 || ih >= g.in_h) continue;
                for (int64_t q = 0; q < g.kernel_w; ++q) {
                  const int64_t iw = j * g.stride_w - g.pad_w + q * g.dilation_w;
                  if (iw < 0 || iw >= g.in_w) continue;
                  dx[ih * g.in_w + iw] += w[(c * g.kernel_h + p) * g.kernel_w + q] * d;
                }
              }
            }
          }
        }
      }
    }
  }
}

}  // namespace convnet::kernels::reference
