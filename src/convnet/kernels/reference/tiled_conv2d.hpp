// Layout: x (N, C, H, W), w (T, T, K, C/groups, F_h, F_w), b (K), y (N, K, H2, W2); bank (i mod T, j mod T).
// Reference tiled convolution (Le et al. 2010): a convolution whose output at (i, j) uses filter bank
// (i mod T, j mod T) of a T x T grid of OIHW weights. Same summation order as conv2d, so T = 1 matches it bit for bit.
#pragma once

#include <cstdint>

#include "convnet/kernels/reference/contract.hpp"
#include "convnet/kernels/reference/conv_geometry.hpp"
#include "convnet/kernels/reference/nullable.hpp"

namespace convnet::kernels::reference {

/// The first o >= begin with o mod tile = residue: the outputs of one bank row or column.
[[nodiscard]] inline int64_t first_congruent(int64_t begin, int64_t residue, int64_t tile) {
  return begin + ((residue - begin % tile) + tile) % tile;
}

/// y[n,k,i,j] = b[k] + sum_{c,p,q} w[i%T, j%T, k,c,p,q] * x[n, c', i*S_h - P_h + p*D_h, j*S_w - P_w + q*D_w].
template <class T>
void tiled_conv2d_forward(const Conv2dGeometry& g, int64_t tile, const T* input, const T* weight,
                          const Nullable<T>* bias, T* output) {
  require_window(g, "tiled_conv2d_forward");
  require(tile >= 1, "tiled_conv2d_forward", "tile >= 1");
  const int64_t Cg = g.in_channels / g.groups, Kg = g.out_channels / g.groups;
  const int64_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w;
  const int64_t bank = g.out_channels * Cg * g.kernel_h * g.kernel_w;  // elements per filter bank
  for (int64_t n = 0; n < g.batch; ++n) {
    for (int64_t k = 0; k < g.out_channels; ++k) {
      T* y = output + (n * g.out_channels + k) * out_plane;
      const T bk = bias ? bias[k] : T(0);
      for (int64_t o = 0; o < out_plane; ++o) y[o] = bk;
      for (int64_t c = 0; c < Cg; ++c) {
        const T* x = input + (n * g.in_channels + (k / Kg) * Cg + c) * in_plane;
        for (int64_t p = 0; p < g.kernel_h; ++p) {
          const TapRange rows = tap_range(g.out_h, g.in_h, g.stride_h, p * g.dilation_h - g.pad_h);
          for (int64_t q = 0; q < g.kernel_w; ++q) {
            const TapRange cols = tap_range(g.out_w, g.in_w, g.stride_w, q * g.dilation_w - g.pad_w);
            const int64_t tap = ((k * Cg + c) * g.kernel_h + p) * g.kernel_w + q;
            for (int64_t i = rows.begin; i < rows.end; ++i) {
              const T* xr = x + (i * g.stride_h + rows.offset) * g.in_w;
              T* yr = y + i * g.out_w;
              for (int64_t b = 0; b < tile; ++b) {  // columns j = b (mod T) use bank (i % T, b)
                const T wv = weight[((i % tile) * tile + b) * bank + tap];
                for (int64_t j = first_congruent(cols.begin, b, tile); j < cols.end; j += tile) {
                  yr[j] += wv * xr[j * g.stride_w + cols.offset];
                }
              }
            }
          }
        }
      }
    }
  }
}

/// Gradients of tiled_conv2d_forward; null pointers are not wanted; accumulate adds instead of overwriting.
template <class T>
void tiled_conv2d_backward(const Conv2dGeometry& g, int64_t tile, const T* input, const T* weight,
                           const T* grad_output, Nullable<T>* grad_input, Nullable<T>* grad_weight,
                           Nullable<T>* grad_bias, bool accumulate) {
  // dw[a,b,k,c,p,q] = sum_{n, i%T=a, j%T=b} dy[n,k,i,j] x[n,c',ih,iw];  db[k] = sum dy;  dx[n,c',ih,iw] += dy w
  require_window(g, "tiled_conv2d_backward");
  require(tile >= 1, "tiled_conv2d_backward", "tile >= 1");
  const int64_t Cg = g.in_channels / g.groups, Kg = g.out_channels / g.groups;
  const int64_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w;
  const int64_t bank = g.out_channels * Cg * g.kernel_h * g.kernel_w;
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
    for (int64_t a = 0; a < tile; ++a) {
      for (int64_t b = 0; b < tile; ++b) {
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
                  for (int64_t i = first_congruent(rows.begin, a, tile); i < rows.end; i += tile) {
                    const T* xr = x + (i * g.stride_h + rows.offset) * g.in_w;
                    const T* dyr = dy + i * g.out_w;
                    for (int64_t j = first_congruent(cols.begin, b, tile); j < cols.end; j += tile) {
                      s += dyr[j] * xr[j * g.stride_w + cols.offset];
                    }
                  }
                }
                store(grad_weight[(a * tile + b) * bank + ((k * Cg + c) * g.kernel_h + p) * g.kernel_w + q], s);
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
        const T* dy = grad_output + (n * g.out_channels + k) * out_plane;
        for (int64_t c = 0; c < Cg; ++c) {
          T* dx = grad_input + (n * g.in_channels + (k / Kg) * Cg + c) * in_plane;
          for (int64_t p = 0; p < g.kernel_h; ++p) {
            const TapRange rows = tap_range(g.out_h, g.in_h, g.stride_h, p * g.dilation_h - g.pad_h);
            for (int64_t q = 0; q < g.kernel_w; ++q) {
              const TapRange cols = tap_range(g.out_w, g.in_w, g.stride_w, q * g.dilation_w - g.pad_w);
              const int64_t tap = ((k * Cg + c) * g.kernel_h + p) * g.kernel_w + q;
              for (int64_t i = rows.begin; i < rows.end; ++i) {
                T* dxr = dx + (i * g.stride_h + rows.offset) * g.in_w;
                const T* dyr = dy + i * g.out_w;
                for (int64_t b = 0; b < tile; ++b) {
                  const T wv = weight[((i % tile) * tile + b) * bank + tap];
                  for (int64_t j = first_congruent(cols.begin, b, tile); j < cols.end; j += tile) {
                    dxr[j * g.stride_w + cols.offset] += wv * dyr[j];
                  }
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
