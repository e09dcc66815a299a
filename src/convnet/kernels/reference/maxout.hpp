// Layout: x (N, C, P) with P = H*W (P = 1 for (N, F) vectors); y, argmax (N, C/K, P).
// Reference maxout (Goodfellow et al. 2013): output channel j is the max over the K consecutive
// input channels j*K .. j*K + K-1, at each position; the argmax routes the gradient back.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace convnet::kernels::reference {

struct MaxoutGeometry {
  int64_t batch = 1;
  int64_t channels = 2;  // input channels C, a multiple of pieces
  int64_t pieces = 2;    // K >= 2
  int64_t positions = 1;
};

/// y[n, j, p] = max_k x[n, j*K + k, p]; argmax holds the flat index into x of the chosen element
/// (ties keep the first piece, NaN propagates).
template <class T>
void maxout_forward(const MaxoutGeometry& g, const T* x, T* y, int64_t* argmax) {
  const int64_t out_channels = g.channels / g.pieces;
  const int64_t P = g.positions;
  for (int64_t n = 0; n < g.batch; ++n) {
    for (int64_t j = 0; j < out_channels; ++j) {
      for (int64_t p = 0; p < P; ++p) {
        int64_t best = (n * g.channels + j * g.pieces) * P + p;
        for (int64_t k = 1; k < g.pieces; ++k) {
          const int64_t i = (n * g.channels + j * g.pieces + k) * P + p;
          if (x[i] > x[best] || std::isnan(x[i])) best = i;
        }
        const int64_t o = (n * out_channels + j) * P + p;
        y[o] = x[best];
        argmax[o] = best;
      }
    }
  }
}

/// dL/dx[argmax[o]] = dL/dy[o]; the other K-1 pieces get 0.
template <class T>
void maxout_backward(const MaxoutGeometry& g, const int64_t* argmax, const T* dy, T* dx, bool accumulate) {
  if (!accumulate) std::fill(dx, dx + g.batch * g.channels * g.positions, T(0));
  const int64_t out_size = g.batch * (g.channels / g.pieces) * g.positions;
  for (int64_t o = 0; o < out_size; ++o) dx[argmax[o]] += dy[o];
}

}  // namespace convnet::kernels::reference
