// Layout: add/mul any shape (n elements each); concat input i (N, C_i, P), y (N, sum C_i, P), P = H*W or 1.
// Reference merge kernels: elementwise add (residual connections) and multiply (gating) of
// same-shaped inputs, and concatenation along the channels (Inception, DenseNet) with its slicing
// backward. Inputs are spans of pointers; a null gradient pointer means "not wanted".
#pragma once

#include <cstdint>
#include <span>
#include <type_traits>

namespace convnet::kernels::reference {

/// Pointer lists, not used for deducing T (deduced from y or dy), so a std::vector converts.
template <class T>
using MergeInputs = std::type_identity_t<std::span<const T* const>>;
template <class T>
using MergeGrads = std::type_identity_t<std::span<T* const>>;

/// y = x_0 + x_1 + ... ; y may equal any input.
template <class T>
void add_forward(int64_t n, MergeInputs<T> inputs, T* y) {
  for (int64_t i = 0; i < n; ++i) {
    T sum = 0;
    for (const T* x : inputs) sum += x[i];
    y[i] = sum;
  }
}

/// dL/dx_k = dL/dy for every input k
template <class T>
void add_backward(int64_t n, const T* dy, MergeGrads<T> grads, bool accumulate) {
  for (T* dx : grads) {
    if (dx == nullptr) continue;
    for (int64_t i = 0; i < n; ++i) dx[i] = accumulate ? dx[i] + dy[i] : dy[i];
  }
}

/// y = x_0 * x_1 * ... ; y may equal any input.
template <class T>
void mul_forward(int64_t n, MergeInputs<T> inputs, T* y) {
  for (int64_t i = 0; i < n; ++i) {
    T product = 1;
    for (const T* x : inputs) product *= x[i];
    y[i] = product;
  }
}

/// dL/dx_k = dL/dy * product of the other inputs (for two inputs: dL/dx_0 = dL/dy * x_1)
/// Computed without division, so zeros in the inputs are fine. No grad may alias an input.
template <class T>
void mul_backward(int64_t n, MergeInputs<T> inputs, const T* dy, MergeGrads<T> grads,
                  bool accumulate) {
  for (size_t k = 0; k < grads.size(); ++k) {
    T* dx = grads[k];
    if (dx == nullptr) continue;
    for (int64_t i = 0; i < n; ++i) {
      T v = dy[i];
      for (size_t j = 0; j < inputs.size(); ++j) {
        if (j != k) v *= inputs[j][i];
      }
      dx[i] = accumulate ? dx[i] + v : v;
    }
  }
}

/// Concatenation along dim 1: input i contributes channels[i] channels of `positions` each.
struct ConcatGeometry {
  int64_t batch = 1;
  int64_t positions = 1;              // H*W, or 1 for (N, F) vectors
  std::span<const int64_t> channels;  // C_i of each input
};

/// y[n, offset_i + c, p] = x_i[n, c, p], offset_i = C_0 + ... + C_{i-1}
template <class T>
void concat_forward(const ConcatGeometry& g, MergeInputs<T> inputs, T* y) {
  int64_t total = 0;
  for (int64_t c : g.channels) total += c;
  for (int64_t n = 0; n < g.batch; ++n) {
    int64_t offset = 0;
    for (size_t k = 0; k < inputs.size(); ++k) {
      const int64_t block = g.channels[k] * g.positions;  // one sample's slice of input k
      const T* src = inputs[k] + n * block;
      T* dst = y + (n * total + offset) * g.positions;
      for (int64_t i = 0; i < block; ++i) dst[i] = src[i];
      offset += g.channels[k];
    }
  }
}

/// dL/dx_i[n, c, p] = dL/dy[n, offset_i + c, p]
template <class T>
void concat_backward(const ConcatGeometry& g, const T* dy, MergeGrads<T> grads, bool accumulate) {
  int64_t total = 0;
  for (int64_t c : g.channels) total += c;
  for (int64_t n = 0; n < g.batch; ++n) {
    int64_t offset = 0;
    for (size_t k = 0; k < grads.size(); ++k) {
      const int64_t block = g.channels[k] * g.positions;
      if (grads[k] != nullptr) {
        const T* src = dy + (n * total + offset) * g.positions;
        T* dst = grads[k] + n * block;
        for (int64_t i = 0; i < block; ++i) dst[i] = accumulate ? dst[i] + src[i] : src[i];
      }
      offset += g.channels[k];
    }
  }
}

}  // namespace convnet::kernels::reference
