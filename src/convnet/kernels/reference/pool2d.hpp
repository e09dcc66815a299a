// Layout: x (N, C, in_h, in_w), y and argmax (N, C, out_h, out_w), all contiguous NCHW.
// Reference pooling: max and average pooling over a 2-D window, and global average pooling.
// Windows follow PyTorch: zero padding counts in the average's divisor (count_include_pad=True),
// and a window that ceil rounding pushes past the padded border is clipped there.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "convnet/kernels/reference/contract.hpp"

namespace convnet::kernels::reference {

/// One pooling call's shapes; the layer has already computed out_h, out_w (window.hpp).
struct Pool2dGeometry {
  int64_t batch = 1;
  int64_t channels = 1;
  int64_t in_h = 1;
  int64_t in_w = 1;
  int64_t out_h = 1;
  int64_t out_w = 1;
  int64_t kernel_h = 1;
  int64_t kernel_w = 1;
  int64_t stride_h = 1;
  int64_t stride_w = 1;
  int64_t pad_h = 0;
  int64_t pad_w = 0;
};

/// Max pooling. argmax[o] is the flat index into x (over the whole N*C*in_h*in_w buffer) of the
/// element output o took; padding is -infinity, so it is never chosen. Ties keep the first.
template <class T>
void max_pool2d_forward(const Pool2dGeometry& g, const T* x, T* y, int64_t* argmax) {
  // The first and the last window of each axis overlap the input (so every window does).
  require(g.stride_h >= 1 && g.stride_w >= 1 && g.kernel_h > g.pad_h && g.kernel_w > g.pad_w &&
              (g.out_h - 1) * g.stride_h - g.pad_h < g.in_h && (g.out_w - 1) * g.stride_w - g.pad_w < g.in_w,
          "max_pool2d_forward", "every pooling window overlaps the input");
  for (int64_t plane = 0; plane < g.batch * g.channels; ++plane) {
    const T* xp = x + plane * g.in_h * g.in_w;
    for (int64_t oh = 0; oh < g.out_h; ++oh) {
      const int64_t h0 = std::max<int64_t>(oh * g.stride_h - g.pad_h, 0);
      const int64_t h1 = std::min(oh * g.stride_h - g.pad_h + g.kernel_h, g.in_h);
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        const int64_t w0 = std::max<int64_t>(ow * g.stride_w - g.pad_w, 0);
        const int64_t w1 = std::min(ow * g.stride_w - g.pad_w + g.kernel_w, g.in_w);
        int64_t best = h0 * g.in_w + w0;  // the layer guarantees every window touches the input
        for (int64_t h = h0; h < h1; ++h) {
          for (int64_t w = w0; w < w1; ++w) {
            const T v = xp[h * g.in_w + w];
            if (v > xp[best] || std::isnan(v)) best = h * g.in_w + w;  // NaN propagates, as in PyTorch
          }
        }
        const int64_t o = (plane * g.out_h + oh) * g.out_w + ow;
        y[o] = xp[best];
        argmax[o] = plane * g.in_h * g.in_w + best;
      }
    }
  }
}

/// dL/dx[argmax[o]] += dL/dy[o]; every other x gets 0.
template <class T>
void max_pool2d_backward(const Pool2dGeometry& g, const int64_t* argmax, const T* dy, T* dx, bool accumulate) {
  const int64_t in_size = g.batch * g.channels * g.in_h * g.in_w;
  const int64_t out_size = g.batch * g.channels * g.out_h * g.out_w;
  if (!accumulate) std::fill(dx, dx + in_size, T(0));
  for (int64_t o = 0; o < out_size; ++o) dx[argmax[o]] += dy[o];
}

/// The window's first and one-past-last row for output row `o`, clipped to the input, and the
/// divisor extent: the window clipped to input + padding (PyTorch's count_include_pad=True).
struct AvgWindow1d {
  int64_t begin;
  int64_t end;
  int64_t extent;
};

inline AvgWindow1d avg_window_1d(int64_t o, int64_t stride, int64_t pad, int64_t kernel, int64_t in) {
  const int64_t start = o * stride - pad;
  const int64_t stop = std::min(start + kernel, in + pad);
  return {std::max<int64_t>(start, 0), std::min(stop, in), stop - start};
}

/// Average pooling: y = sum of the window's input cells / (window area clipped to input + padding).
template <class T>
void avg_pool2d_forward(const Pool2dGeometry& g, const T* x, T* y) {
  for (int64_t plane = 0; plane < g.batch * g.channels; ++plane) {
    const T* xp = x + plane * g.in_h * g.in_w;
    for (int64_t oh = 0; oh < g.out_h; ++oh) {
      const AvgWindow1d wh = avg_window_1d(oh, g.stride_h, g.pad_h, g.kernel_h, g.in_h);
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        const AvgWindow1d ww = avg_window_1d(ow, g.stride_w, g.pad_w, g.kernel_w, g.in_w);
        T sum = 0;
        for (int64_t h = wh.begin; h < wh.end; ++h) {
          for (int64_t w = ww.begin; w < ww.end; ++w) sum += xp[h * g.in_w + w];
        }
        y[(plane * g.out_h + oh) * g.out_w + ow] = sum / static_cast<T>(wh.extent * ww.extent);
      }
    }
  }
}

/// dL/dx[i] = sum over windows o containing i of dL/dy[o] / divisor(o)
template <class T>
void avg_pool2d_backward(const Pool2dGeometry& g, const T* dy, T* dx, bool accumulate) {
  if (!accumulate) std::fill(dx, dx + g.batch * g.channels * g.in_h * g.in_w, T(0));
  for (int64_t plane = 0; plane < g.batch * g.channels; ++plane) {
    T* dxp = dx + plane * g.in_h * g.in_w;
    for (int64_t oh = 0; oh < g.out_h; ++oh) {
      const AvgWindow1d wh = avg_window_1d(oh, g.stride_h, g.pad_h, g.kernel_h, g.in_h);
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        const AvgWindow1d ww = avg_window_1d(ow, g.stride_w, g.pad_w, g.kernel_w, g.in_w);
        const T share = dy[(plane * g.out_h + oh) * g.out_w + ow] / static_cast<T>(wh.extent * ww.extent);
        for (int64_t h = wh.begin; h < wh.end; ++h) {
          for (int64_t w = ww.begin; w < ww.end; ++w) dxp[h * g.in_w + w] += share;
        }
      }
    }
  }
}

/// Global average pooling: (N, C, H, W) -> (N, C), y[n, c] = mean over the H x W plane.
struct GlobalPoolGeometry {
  int64_t batch = 1;
  int64_t channels = 1;
  int64_t height = 1;
  int64_t width = 1;
};

template <class T>
void global_avg_pool2d_forward(const GlobalPoolGeometry& g, const T* x, T* y) {
  const int64_t area = g.height * g.width;
  for (int64_t plane = 0; plane < g.batch * g.channels; ++plane) {
    T sum = 0;
    for (int64_t i = 0; i < area; ++i) sum += x[plane * area + i];
    y[plane] = sum / static_cast<T>(area);
  }
}

/// dL/dx[n, c, h, w] = dL/dy[n, c] / (H * W)
template <class T>
void global_avg_pool2d_backward(const GlobalPoolGeometry& g, const T* dy, T* dx, bool accumulate) {
  const int64_t area = g.height * g.width;
  for (int64_t plane = 0; plane < g.batch * g.channels; ++plane) {
    const T share = dy[plane] / static_cast<T>(area);
    for (int64_t i = 0; i < area; ++i) {
      T& d = dx[plane * area + i];
      d = accumulate ? d + share : share;
    }
  }
}

}  // namespace convnet::kernels::reference
