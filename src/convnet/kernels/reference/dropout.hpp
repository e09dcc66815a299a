// Layout: dropout x, y, mask any shape (n elements); drop path x, y (N, S) with S = C*H*W, mask (N).
// Reference inverted dropout and drop path (stochastic depth). Training forward draws a keep mask
// from a caller-provided generator and scales what it keeps by 1/(1 - p), so inference is the
// identity; the *_apply functions replay a given mask (for tests and recomputation).
#pragma once

#include <cstdint>

namespace convnet::kernels::reference {

/// A uniform draw in [0, 1) from any UniformRandomBitGenerator (std::mt19937, std::mt19937_64),
/// computed here rather than by std::uniform_real_distribution so masks match across standard libraries.
template <class Rng>
double uniform_01(Rng& rng) {
  const double range = static_cast<double>(Rng::max() - Rng::min()) + 1.0;
  return static_cast<double>(rng() - Rng::min()) / range;
}

/// y = x * mask / (1 - p) for a given mask (1 keep, 0 drop). y may equal x.
template <class T>
void dropout_apply(int64_t n, T p, const uint8_t* mask, const T* x, T* y) {
  const T keep_scale = T(1) / (T(1) - p);
  for (int64_t i = 0; i < n; ++i) y[i] = mask[i] != 0 ? x[i] * keep_scale : T(0);
}

/// One keep-or-drop draw: true with probability 1 - p.
template <class T, class Rng>
bool keep(Rng& rng, T p) {
  return uniform_01(rng) >= static_cast<double>(p);
}

/// Training forward: mask[i] = 1 with probability 1 - p (one draw per element, in order), then
/// dropout_apply. Deterministic for a given generator state. y may equal x.
template <class T, class Rng>
void dropout_forward(int64_t n, T p, const T* x, T* y, uint8_t* mask, Rng& rng) {
  for (int64_t i = 0; i < n; ++i) mask[i] = keep(rng, p) ? 1 : 0;
  dropout_apply(n, p, mask, x, y);
}

/// The same draws as dropout_forward (per element) or drop_path_forward (per sample), as the
/// factor each value is multiplied by: 1/(1 - p) where kept, 0 where dropped.
template <class T, class Rng>
void dropout_scales(int64_t n, T p, T* scale, Rng& rng) {
  const T keep_scale = T(1) / (T(1) - p);
  for (int64_t i = 0; i < n; ++i) scale[i] = keep(rng, p) ? keep_scale : T(0);
}

/// dL/dx = dL/dy * mask / (1 - p)
template <class T>
void dropout_backward(int64_t n, T p, const uint8_t* mask, const T* dy, T* dx, bool accumulate) {
  const T keep_scale = T(1) / (T(1) - p);
  for (int64_t i = 0; i < n; ++i) {
    const T v = mask[i] != 0 ? dy[i] * keep_scale : T(0);
    dx[i] = accumulate ? dx[i] + v : v;
  }
}

/// Drop path over `batch` samples of `sample_size` elements each.
struct DropPathGeometry {
  int64_t batch = 1;
  int64_t sample_size = 1;  // C*H*W, or F
};

/// y[n] = x[n] * mask[n] / (1 - p) for a given per-sample mask. y may equal x.
template <class T>
void drop_path_apply(const DropPathGeometry& g, T p, const uint8_t* mask, const T* x, T* y) {
  const T keep_scale = T(1) / (T(1) - p);
  for (int64_t n = 0; n < g.batch; ++n) {
    const T s = mask[n] != 0 ? keep_scale : T(0);
    for (int64_t i = 0; i < g.sample_size; ++i) y[n * g.sample_size + i] = x[n * g.sample_size + i] * s;
  }
}

/// Training forward: mask[n] = 1 with probability 1 - p (one draw per sample), then drop_path_apply.
template <class T, class Rng>
void drop_path_forward(const DropPathGeometry& g, T p, const T* x, T* y, uint8_t* mask, Rng& rng) {
  for (int64_t n = 0; n < g.batch; ++n) mask[n] = keep(rng, p) ? 1 : 0;
  drop_path_apply(g, p, mask, x, y);
}

/// dL/dx[n] = dL/dy[n] * mask[n] / (1 - p)
template <class T>
void drop_path_backward(const DropPathGeometry& g, T p, const uint8_t* mask, const T* dy, T* dx, bool accumulate) {
  const T keep_scale = T(1) / (T(1) - p);
  for (int64_t n = 0; n < g.batch; ++n) {
    const T s = mask[n] != 0 ? keep_scale : T(0);
    for (int64_t i = 0; i < g.sample_size; ++i) {
      const int64_t j = n * g.sample_size + i;
      const T v = dy[j] * s;
      dx[j] = accumulate ? dx[j] + v : v;
    }
  }
}

}  // namespace convnet::kernels::reference
