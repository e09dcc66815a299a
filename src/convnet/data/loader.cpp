// BatchLoader: seeded shuffling, per-sample augmentation from splitmix64-derived generators
// (independent of thread timing and of where a run starts), and a prefetching worker thread.
#include "convnet/data/loader.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

#include "convnet/error.hpp"

namespace convnet {
namespace {

constexpr uint64_t kShuffleStream = 0x73687566666c65ULL;  // "shuffle"
constexpr uint64_t kAugmentStream = 0x6175676d656e74ULL;  // "augment"

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/// A SplitMix64 stream with its own distributions: the standard library's distributions differ
/// between implementations, and runs must be reproducible everywhere.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    state_ += 0x9e3779b97f4a7c15ULL;
    uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, n), unbiased (rejection of the short top range).
  uint64_t below(uint64_t n) {
    const uint64_t threshold = (0 - n) % n;
    for (;;) {
      const uint64_t r = next();
      if (r >= threshold) return r % n;
    }
  }
  /// Uniform in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }
  /// Standard normal (Box-Muller, one value per pair).
  double normal() {
    const double u1 = 1.0 - uniform();  // (0, 1]
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }

 private:
  uint64_t state_;
};

// ImageNet's RGB covariance eigen-decomposition (pixels in [0, 1]), as in fb.resnet.torch and the
// PyTorch ports of AlexNet's lighting noise. Column i of kEigenvectors is eigenvector i.
constexpr float kEigenvalues[3] = {0.2175f, 0.0188f, 0.0045f};
constexpr float kEigenvectors[3][3] = {
    {-0.5675f, 0.7192f, 0.4009f},
    {-0.5808f, -0.0045f, -0.8140f},
    {-0.5836f, -0.6948f, 0.4203f},
};

}  // namespace

uint64_t seed_combine(uint64_t hash, uint64_t value) { return splitmix64(hash ^ splitmix64(value)); }

void crop_with_padding(float* image, const Shape& shape, int64_t padding, int64_t dy, int64_t dx) {
  if (padding < 0 || dy < 0 || dx < 0 || dy > 2 * padding || dx > 2 * padding)
    throw Error("crop offset (" + std::to_string(dy) + ", " + std::to_string(dx) + ") is outside [0, " +
                std::to_string(2 * padding) + "]");
  if (padding == 0) return;
  const int64_t channels = shape.channels(), height = shape.height(), width = shape.width();
  const std::vector<float> source(image, image + shape.numel());
  for (int64_t c = 0; c < channels; ++c) {
    const float* in = source.data() + c * height * width;
    float* out = image + c * height * width;
    for (int64_t y = 0; y < height; ++y) {
      const int64_t sy = y + dy - padding;
      for (int64_t x = 0; x < width; ++x) {
        const int64_t sx = x + dx - padding;
        const bool inside = sy >= 0 && sy < height && sx >= 0 && sx < width;
        out[y * width + x] = inside ? in[sy * width + sx] : 0.0f;
      }
    }
  }
}

void flip_horizontal(float* image, const Shape& shape) {
  const int64_t rows = shape.channels() * shape.height(), width = shape.width();
  for (int64_t r = 0; r < rows; ++r) std::reverse(image + r * width, image + (r + 1) * width);
}

void add_pca_lighting(float* image, const Shape& shape, const float alpha[3], const std::vector<float>& std) {
  if (shape.channels() != 3) throw ShapeError("PCA lighting needs 3-channel images, not " + shape.chw_string());
  if (!std.empty() && std.size() != 3) throw ShapeError("PCA lighting needs 3 std values");
  const int64_t plane = shape.height() * shape.width();
  for (int64_t c = 0; c < 3; ++c) {
    float shift = 0.0f;
    for (int i = 0; i < 3; ++i) shift += kEigenvectors[c][i] * alpha[i] * kEigenvalues[i];
    if (!std.empty()) shift /= std[c];
    float* channel = image + c * plane;
    for (int64_t p = 0; p < plane; ++p) channel[p] += shift;
  }
}

BatchLoader::BatchLoader(const Dataset& data, const Normalization& norm, LoaderOptions options, int64_t epoch,
                         int64_t first_batch)
    : data_(data), norm_(norm), options_(options), epoch_(epoch), batches_(0), position_(first_batch),
      produced_(first_batch) {
  if (options_.batch_size <= 0)
    throw Error("batch size must be positive, not " + std::to_string(options_.batch_size));
  if (options_.augment.crop_padding < 0)
    throw Error("crop padding must not be negative, not " + std::to_string(options_.augment.crop_padding));
  const bool spatial = options_.augment.crop_padding > 0 || options_.augment.horizontal_flip;
  if (spatial && !data_.image_shape.is_volume())
    throw ShapeError("cropping and flipping need (C, H, W) images, not " + data_.image_shape.chw_string());
  if (static_cast<int64_t>(data_.pixels.size()) != data_.size() * data_.image_size())
    throw Error("dataset '" + data_.name + "' has " + std::to_string(data_.pixels.size()) + " pixels for " +
                std::to_string(data_.size()) + " images of " + std::to_string(data_.image_size()));
  check_normalization(norm_, data_.image_shape);
  options_.prefetch = std::max(options_.prefetch, 1);
  if (options_.parts < 1 || options_.part_begin < 0 || options_.part_begin >= options_.part_end ||
      options_.part_end > options_.parts)
    throw Error("batch pieces [" + std::to_string(options_.part_begin) + ", " + std::to_string(options_.part_end) +
                ") of " + std::to_string(options_.parts) + " are not a range of pieces");

  const int64_t n = data_.size();
  batches_ = options_.drop_last ? n / options_.batch_size : (n + options_.batch_size - 1) / options_.batch_size;
  if (first_batch < 0 || first_batch > batches_)
    throw Error("first batch " + std::to_string(first_batch) + " is outside the epoch's " +
                std::to_string(batches_) + " batches");

  order_.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order_[i] = i;
  if (options_.shuffle) {
    Rng rng(seed_combine(seed_combine(options_.seed, kShuffleStream), static_cast<uint64_t>(epoch_)));
    for (int64_t i = n - 1; i > 0; --i)
      std::swap(order_[i], order_[static_cast<int64_t>(rng.below(static_cast<uint64_t>(i + 1)))]);
  }
  worker_ = std::thread(&BatchLoader::produce, this);  // last: nothing may throw after it starts
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  if (worker_.joinable()) worker_.join();
}

int64_t BatchLoader::batches_per_epoch() const { return batches_; }

bool BatchLoader::next(Tensor& images, std::vector<int64_t>& labels) {
  if (position_ >= batches_) return false;
  Batch batch;
  {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return !ready_.empty() || error_ != nullptr; });
    if (ready_.empty()) std::rethrow_exception(error_);
    batch = std::move(ready_.front());
    ready_.pop_front();
  }
  changed_.notify_all();
  ++position_;
  images = std::move(batch.images);
  labels = std::move(batch.labels);
  return true;
}

void BatchLoader::produce() {
  try {
    for (int64_t index = produced_; index < batches_; ++index) {
      {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [this] { return stop_ || static_cast<int64_t>(ready_.size()) < options_.prefetch; });
        if (stop_) return;
      }
      Batch batch = make_batch(index);
      {
        std::lock_guard lock(mutex_);
        ready_.push_back(std::move(batch));
        produced_ = index + 1;
      }
      changed_.notify_all();
    }
  } catch (...) {
    {
      std::lock_guard lock(mutex_);
      error_ = std::current_exception();
    }
    changed_.notify_all();
  }
}

BatchLoader::Batch BatchLoader::make_batch(int64_t batch_index) const {
  const int64_t batch_start = batch_index * options_.batch_size;
  const int64_t batch_count = std::min(options_.batch_size, data_.size() - batch_start);
  const int64_t start = batch_start + piece_start(batch_count, options_.part_begin, options_.parts);
  const int64_t count = piece_start(batch_count, options_.part_end, options_.parts) -
                        piece_start(batch_count, options_.part_begin, options_.parts);
  const int64_t size = data_.image_size();
  const Shape& shape = data_.image_shape;
  std::vector<int64_t> dims{count};
  dims.insert(dims.end(), shape.dims().begin(), shape.dims().end());
  Batch batch{Tensor(dims), std::vector<int64_t>(static_cast<size_t>(count))};

  const AugmentOptions& augment = options_.augment;
  const bool lighting = augment.pca_lighting > 0.0f && shape.channels() == 3;
  const bool augmenting = augment.crop_padding > 0 || augment.horizontal_flip || lighting;
  static const std::vector<float> no_std;
  const std::vector<float>& lighting_std = norm_.mode == Normalization::Mode::None ? no_std : norm_.std;
  const uint64_t epoch_seed = seed_combine(seed_combine(options_.seed, kAugmentStream), static_cast<uint64_t>(epoch_));
  for (int64_t i = 0; i < count; ++i) {
    const int64_t sample = order_[start + i];
    float* image = batch.images.data() + i * size;
    normalized_image(data_, sample, norm_, image);
    batch.labels[i] = data_.labels[sample];
    if (!augmenting) continue;
    Rng rng(seed_combine(epoch_seed, static_cast<uint64_t>(sample)));
    if (augment.crop_padding > 0) {
      const auto range = static_cast<uint64_t>(2 * augment.crop_padding + 1);
      const auto dy = static_cast<int64_t>(rng.below(range));
      const auto dx = static_cast<int64_t>(rng.below(range));
      crop_with_padding(image, shape, augment.crop_padding, dy, dx);
    }
    if (augment.horizontal_flip && (rng.next() >> 63) != 0) flip_horizontal(image, shape);
    if (lighting) {
      float alpha[3];
      for (float& a : alpha) a = static_cast<float>(rng.normal() * augment.pca_lighting);
      add_pca_lighting(image, shape, alpha, lighting_std);
    }
  }
  return batch;
}

}  // namespace convnet
