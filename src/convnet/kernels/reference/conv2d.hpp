// Layout: x (N, C, H, W), w (K, C/groups, F_h, F_w), b (K), y (N, K, H2, W2); c' = group(k) * C/groups + c.
// Reference 2-D convolution (cross-correlation, as in PyTorch and Caffe) with zero padding, dilation
// and groups: the definition of the conv layer and the oracle for the fast kernels.
#pragma once

#include <cstdint>

#include "convnet/kernels/reference/contract.hpp"
#include "convnet/kernels/reference/conv_geometry.hpp"
#include "convnet/kernels/reference/nullable.hpp"

namespace convnet::kernels::reference {

/// y[n,k,i,j] = b[k] + sum_{c,p,q} w[k,c,p,q] * x[n, c', i*S_h - P_h + p*D_h, j*S_w - P_w + q*D_w].
/// Loops accumulate whole output rows (innermost j is contiguous in y).
template <class T>
void conv2d_forward(const Conv2dGeometry& g, const T* input, const T* weight, const Nullable<T>* bias, T* output) {
  require_window(g, "conv2d_forward");
  const int64_t Cg = g.in_channels / g.groups, Kg = g.out_channels / g.groups;
  const int64_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w;
  for (int64_t n = 0; n < g.batch; ++n) {
    for (int64_t k = 0; k < g.out_channels; ++k) {
      T* y = output + (n * g.out_channels + k) * out_plane;
      const T b = bias ? bias[k] : T(0);
      for (int64_t o = 0; o < out_plane; ++o) y[o] = b;
      for (int64_t c = 0; c < Cg; ++c) {
        const T* x = input + (n * g.in_channels + (k / Kg) * Cg + c) * in_plane;
        const T* w = weight + (k * Cg + c) * g.kernel_h * g.kernel_w;
        for (int64_t p = 0; p < g.kernel_h; ++p) {
          const TapRange rows = tap_range(g.out_h, g.in_h, g.stride_h, p * g.dilation_h - g.pad_h);
          for (int64_t q = 0; q < g.kernel_w; ++q) {
            const TapRange cols = tap_range(g.out_w, g.in_w, g.stride_w, q * g.dilation_w - g.pad_w);
            const T wv = w[p * g.kernel_w + q];
            for (int64_t i = rows.begin; i < rows.end; ++i) {
              const T* xr = x + (i * g.stride_h + rows.offset) * g.in_w;
              T* yr = y + i * g.out_w;
              for (int64_t j = cols.begin; j < cols.end; ++j) yr[j] += wv * xr[j * g.stride_w + cols.offset];
            }
          }
        }
      }
    }
  }
}

/// Gradients of conv2d_forward; null pointers are not wanted; accumulate adds instead of overwriting.
template <class T>
void conv2d_backward(const Conv2dGeometry& g, const T* input, const T* weight, const T* grad_output,
                     Nullable<T>* grad_input, Nullable<T>* grad_weight, Nullable<T>* grad_bias, bool accumulate) {
  // db[k] = sum_{n,i,j} dy[n,k,i,j];  dw[k,c,p,q] = sum_{n,i,j} dy[n,k,i,j] x[n,c',ih,iw];  dx[n,c',ih,iw] += dy w
  require_window(g, "conv2d_backward");
  const int64_t Cg = g.in_channels / g.groups, Kg = g.out_channels / g.groups;
  const int64_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w, taps = g.kernel_h * g.kernel_w;
  auto store = [accumulate](T& dst, T value) { dst = accumulate ? dst + value : value; };

  if (grad_bias) {
    for (int64_t k = 0; k < g.out_channels; ++k) {
      T s = 0;
      for (int64_t n = 0; n < g.batch; ++n) {
        const T* dy = grad_output + (n * g.out_channels + k) * out_plane;
        for (int64_t o = 0; o < out_plane; ++o) s += dy[o];
      }
      store(grad_bias[k], s);
    }
  }

  if (grad_weight) {
    for (int64_t k = 0; k < g.out_channels; ++k) {
      for (int64_t c = 0; c < Cg; ++c) {
        for (int64_t p = 0; p < g.kernel_h; ++p) {
          const TapRange rows = tap_range(g.out_h, g.in_h, g.stride_h, p * g.dilation_h - g.pad_h);
          for (int64_t q = 0; q < g.kernel_w; ++q) {
            const TapRange cols = tap_range(g.out_w, g.in_w, g.stride_w, q * g.dilation_w - g.pad_w);
            T s = 0;
            for (int64_t n = 0; n < g.batch; ++n) {
              const T* x = input + (n * g.in_channels + (k / Kg) * Cg + c) * in_plane;
              const T* dy = grad_output + (n * g.out_channels + k) * out_plane;
              for (int64_t i = rows.begin; i < rows.end; ++i) {
                const T* xr = x + (i * g.stride_h + rows.offset) * g.in_w;
                const T* dyr = dy + i * g.out_w;
                for (int64_t j = cols.begin; j < cols.end; ++j) s += dyr[j] * xr[j * g.stride_w + cols.offset];
              }
            }
            store(grad_weight[((k * Cg + c) * g.kernel_h + p) * g.kernel_w + q], s);
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
        const T* dy = grad_output + (n * g.out_channels + k) * out_plane;
        for (int64_t c = 0; c < Cg; ++c) {
          T* dx = grad_input + (n * g.in_channels + (k / Kg) * Cg + c) * in_plane;
          const T* w = weight + (k * Cg + c) * taps;
          for (int64_t p = 0; p < g.kernel_h; ++p) {
            const TapRange rows = tap_range(g.out_h, g.in_h, g.stride_h, p * g.dilation_h - g.pad_h);
            for (int64_t q = 0; q < g.kernel_w; ++q) {
              const TapRange cols = tap_range(g.out_w, g.in_w, g.stride_w, q * g.dilation_w - g.pad_w);
              const T wv = w[p * g.kernel_w + q];
              for (int64_t i = rows.begin; i < rows.end; ++i) {
                T* dxr = dx + (i * g.stride_h + rows.offset) * g.in_w;
                const T* dyr = dy + i * g.out_w;
                for (int64_t j = cols.begin; j < cols.end; ++j) dxr[j * g.stride_w + cols.offset] += wv * dyr[j];
              }
            }
          }
        }
      }
    }
  }
}

}  // namespace convnet::kernels::reference
