// Aligned, contiguous, row-major tensors (NCHW for activations, OIHW for conv weights).
// BasicTensor<double> exists for gradient checks; the runtime uses Tensor = BasicTensor<float>.
// A tensor owns its memory, or is a view (Tensor::view) of memory someone else owns: a plan's arena
// or the parameter store. Copying a view makes an owning copy.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "convnet/checked.hpp"

namespace convnet {

/// Bytes held by all tensors now, and the most ever held since the last reset (for memory tests).
struct TensorMemoryStats {
  int64_t current_bytes = 0;
  int64_t peak_bytes = 0;
};
[[nodiscard]] TensorMemoryStats tensor_memory_stats();
void reset_tensor_peak();

namespace detail {
void* aligned_allocate(int64_t bytes);          // 64-byte aligned (one AVX-512 register)
void aligned_free(void* pointer, int64_t bytes);
}  // namespace detail

template <class T>
class BasicTensor {
 public:
  BasicTensor() = default;
  /// A zero-filled tensor of the given dimensions.
  explicit BasicTensor(std::vector<int64_t> dims) : dims_(std::move(dims)) {
    numel_ = checked_product(dims_, "tensor element count");
    data_ = static_cast<T*>(detail::aligned_allocate(checked_mul(numel_, static_cast<int64_t>(sizeof(T)), "tensor bytes")));
    owned_ = true;
    if (numel_ > 0) std::memset(static_cast<void*>(data_), 0, static_cast<size_t>(numel_) * sizeof(T));
  }
  /// An owning copy; a copy of an empty tensor is empty.
  BasicTensor(const BasicTensor& other) {
    if (other.empty()) return;
    BasicTensor copy(other.dims_);
    if (copy.numel_ > 0) {
      std::memcpy(static_cast<void*>(copy.data_), other.data_, static_cast<size_t>(copy.numel_) * sizeof(T));
    }
    swap(copy);
  }
  BasicTensor(BasicTensor&& other) noexcept { swap(other); }
  BasicTensor& operator=(BasicTensor other) noexcept {
    swap(other);
    return *this;
  }
  ~BasicTensor() {
    if (owned_) detail::aligned_free(data_, numel_ * static_cast<int64_t>(sizeof(T)));
  }
  /// A tensor of `dims` over `data`, which the caller keeps alive (and owns) for the view's life.
  [[nodiscard]] static BasicTensor view(T* data, std::vector<int64_t> dims) {
    BasicTensor out;
    out.numel_ = checked_product(dims, "tensor element count");
    out.dims_ = std::move(dims);
    out.data_ = data;
    return out;
  }
  [[nodiscard]] bool is_view() const { return data_ != nullptr && !owned_; }

  [[nodiscard]] const std::vector<int64_t>& dims() const { return dims_; }
  [[nodiscard]] int64_t dim(size_t i) const { return dims_[i]; }
  [[nodiscard]] int64_t numel() const { return numel_; }
  [[nodiscard]] bool empty() const { return data_ == nullptr; }
  [[nodiscard]] T* data() { return data_; }
  [[nodiscard]] const T* data() const { return data_; }
  [[nodiscard]] T& operator[](int64_t i) { return data_[i]; }
  [[nodiscard]] const T& operator[](int64_t i) const { return data_[i]; }
  [[nodiscard]] std::span<T> span() { return {data_, static_cast<size_t>(numel_)}; }
  [[nodiscard]] std::span<const T> span() const { return {data_, static_cast<size_t>(numel_)}; }

  void fill(T value) {
    for (int64_t i = 0; i < numel_; ++i) data_[i] = value;
  }
  /// Same data, other dimensions of the same element count.
  void reshape(std::vector<int64_t> dims) { dims_ = std::move(dims); }

 private:
  void swap(BasicTensor& other) noexcept {
    std::swap(dims_, other.dims_);
    std::swap(numel_, other.numel_);
    std::swap(data_, other.data_);
    std::swap(owned_, other.owned_);
  }

  std::vector<int64_t> dims_;
  int64_t numel_ = 0;
  T* data_ = nullptr;
  bool owned_ = false;  // false for views and empty tensors
};

using Tensor = BasicTensor<float>;

}  // namespace convnet
