// Per-image tensor shapes and the small 2-D pairs (kernel, stride, padding) layers use.
// A Shape never includes the batch dimension: a volume is (C, H, W), a vector is (features).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

namespace convnet {

/// A (height, width) pair: kernel sizes, strides, paddings, dilations.
struct Size2 {
  int64_t h = 0;
  int64_t w = 0;
  bool operator==(const Size2&) const = default;
  [[nodiscard]] bool is_square() const { return h == w; }
};

/// Shape of one image's tensor, without the batch: (C, H, W) for volumes, (F) for vectors.
class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims) : dims_(dims) {}
  explicit Shape(std::vector<int64_t> dims) : dims_(std::move(dims)) {}

  [[nodiscard]] const std::vector<int64_t>& dims() const { return dims_; }
  [[nodiscard]] size_t rank() const { return dims_.size(); }
  [[nodiscard]] int64_t operator[](size_t i) const { return dims_[i]; }
  /// The element count; SizeError when it does not fit in 64 bits.
  [[nodiscard]] int64_t numel() const;
  [[nodiscard]] bool is_volume() const { return dims_.size() == 3; }
  [[nodiscard]] int64_t channels() const { return dims_.empty() ? 0 : dims_[0]; }
  [[nodiscard]] int64_t height() const { return dims_.size() == 3 ? dims_[1] : 1; }
  [[nodiscard]] int64_t width() const { return dims_.size() == 3 ? dims_[2] : 1; }
  bool operator==(const Shape&) const = default;

  /// The lecture notes' way of writing a volume: "55x55x96" (H x W x C), or "4096".
  [[nodiscard]] std::string volume_string() const;
  /// PyTorch order: "96x55x55" (C x H x W), as model files and --input write it.
  [[nodiscard]] std::string chw_string() const;

 private:
  std::vector<int64_t> dims_;
};

/// The most bytes a tensor, a network's tensors or a batch's activations may need: 2^48 (256 TiB),
/// all a 64-bit machine with 48-bit virtual addresses can map. Sizes beyond it are refused early.
inline constexpr int64_t kMaxBytes = int64_t{1} << 48;

/// Throws SizeError unless the product of `factors` float32 values fits kMaxBytes. The message reads
/// "<what> needs N float32 values (X bytes), more than ...", with N exact when it fits in 64 bits.
void check_float_bytes(std::span<const int64_t> factors, const std::string& what);
inline void check_float_bytes(std::initializer_list<int64_t> factors, const std::string& what) {
  check_float_bytes(std::span<const int64_t>(factors.begin(), factors.size()), what);
}

/// How a size that does not divide exactly is treated: an error (the default), or rounded.
enum class Rounding { Exact, Floor, Ceil };

[[nodiscard]] const char* rounding_name(Rounding rounding);

}  // namespace convnet
