// Layout: x (N, C, P) with P = H*W (P = 1 for (N, F) vectors); y (N, K, P) with K >= C.
// Reference channel padding: the input's channels, then K - C channels of zeros (ResNet's
// option-A shortcut, Darknet's [shortcut] from a shallower layer).
#pragma once

#include <algorithm>
#include <cstdint>

namespace convnet::kernels::reference {

struct PadChannelsGeometry {
  int64_t batch = 1;
  int64_t in_channels = 1;   // C
  int64_t out_channels = 1;  // K >= C
  int64_t positions = 1;
};

/// y[n, c, p] = x[n, c, p] for c < C, 0 for C <= c < K.
template <class T>
void pad_channels_forward(const PadChannelsGeometry& g, const T* x, T* y) {
  const int64_t copied = g.in_channels * g.positions;
  const int64_t total = g.out_channels * g.positions;
  for (int64_t n = 0; n < g.batch; ++n) {
    std::copy(x + n * copied, x + (n + 1) * copied, y + n * total);
    std::fill(y + n * total + copied, y + (n + 1) * total, T(0));
  }
}

/// dL/dx[n, c, p] = dL/dy[n, c, p] for c < C (the zero channels have no input).
template <class T>
void pad_channels_backward(const PadChannelsGeometry& g, const T* dy, T* dx, bool accumulate) {
  const int64_t copied = g.in_channels * g.positions;
  const int64_t total = g.out_channels * g.positions;
  for (int64_t n = 0; n < g.batch; ++n) {
    for (int64_t i = 0; i < copied; ++i) {
      dx[n * copied + i] = (accumulate ? dx[n * copied + i] : T(0)) + dy[n * total + i];
    }
  }
}

}  // namespace convnet::kernels::reference
