// Mini-batches for training and evaluation: normalisation computed on the training set,
// augmentation (random crop with padding, horizontal flip, AlexNet's PCA lighting), shuffling,
// and a background thread that prepares the next batches while the current one computes.
// Every random choice derives from (seed, epoch, sample index), so a run is deterministic and
// can resume at any batch.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "convnet/data/dataset.hpp"
#include "convnet/tensor.hpp"

namespace convnet {

/// Input preprocessing stored with a model so eval/predict apply exactly what training did:
/// x = (pixel / 255 - mean) / std, with mean per pixel (a mean image, AlexNet) or per channel (VGG).
struct Normalization {
  enum class Mode { None, MeanImage, PerChannel };
  Mode mode = Mode::PerChannel;
  std::vector<float> mean{};  // (C*H*W) for MeanImage, (C) for PerChannel
  std::vector<float> std{};   // (C) when dividing by the standard deviation, else empty
  [[nodiscard]] nlohmann::json to_json() const;
  [[nodiscard]] static Normalization from_json(const nlohmann::json& j);  // throws IoError on bad content
};

/// The smallest std a normalisation divides by. Pixels are in [0, 1] units, so a real channel's
/// std is far above it; a smaller one (a denormal like 1e-45 above all) blows the image up to
/// values no network was trained on, or to infinities.
inline constexpr float kMinStd = 1e-6F;

/// Why `std` cannot divide images ("1.4e-45 of channel 0 is below 1e-06, ..."), or "" when
/// every value is finite and at least kMinStd. Callers prefix the source (option, file, field).
[[nodiscard]] std::string std_problem(const std::vector<float>& std);

/// The mode named on a command line (--normalize): "none", "mean-image" or "per-channel"; SpecError
/// naming `option` otherwise.
[[nodiscard]] Normalization::Mode parse_normalization_mode(const std::string& text, const std::string& option);

/// Computes the mean (and, with `divide_by_std`, the per-channel std) over a training set, in
/// double. The std is the population std of pixel/255 minus the mean in use (the channel mean, or
/// the mean image's pixel), over all images and positions of the channel; a channel whose std is
/// below kMinStd (constant, or all but constant) gets 1.
[[nodiscard]] Normalization compute_normalization(const Dataset& train, Normalization::Mode mode, bool divide_by_std);

/// Throws ShapeError when `norm` does not fit images of `image_shape` (C, H, W).
void check_normalization(const Normalization& norm, const Shape& image_shape);

/// Writes sample `index` of `data` normalised into `out` (C*H*W floats), without augmentation.
void normalized_image(const Dataset& data, int64_t index, const Normalization& norm, float* out);

/// Applied after normalisation, in this order: crop, flip, PCA lighting (which shifts every pixel,
/// padding included, like torchvision's Lighting after RandomCrop).
struct AugmentOptions {
  int64_t crop_padding = 0;     // random crop of the original size from the zero-padded image
  bool horizontal_flip = false; // mirror half of the images
  float pca_lighting = 0.0f;    // std of AlexNet's PCA colour noise (3-channel only; 0.1 in the paper)
};

/// The augmentation steps, exposed for tests. `image` is one (C, H, W) image in normalised units.
/// Crop: the image padded by `padding` zeros on every side (0 is the mean after normalisation),
/// then the original size cut out at offset (dy, dx), each in [0, 2 * padding].
void crop_with_padding(float* image, const Shape& shape, int64_t padding, int64_t dy, int64_t dx);
/// Mirrors every row.
void flip_horizontal(float* image, const Shape& shape);
/// AlexNet's PCA colour noise for a 3-channel image: adds sum_i alpha_i * lambda_i * v_i (ImageNet's
/// RGB eigenvalues and eigenvectors, pixels in [0, 1]) to every pixel, divided by `std` per channel
/// when `std` is not empty.
void add_pca_lighting(float* image, const Shape& shape, const float alpha[3], const std::vector<float>& std);

/// A seed derived from a seed and a value (SplitMix64 of both): independent streams per epoch,
/// sample, step or group.
[[nodiscard]] uint64_t seed_combine(uint64_t hash, uint64_t value);

struct LoaderOptions {
  int64_t batch_size = 128;
  bool shuffle = true;
  bool drop_last = false;       // skip a final partial batch
  AugmentOptions augment{};
  uint64_t seed = 0;
  int prefetch = 2;             // batches prepared ahead by the background thread
  // Distributed runs: every batch is cut into `parts` pieces (piece p holds images
  // [count * p / parts, count * (p + 1) / parts) of a batch of count), and this loader yields
  // pieces [part_begin, part_end) of each: one rank's share of the same global batch.
  int64_t parts = 1;
  int64_t part_begin = 0, part_end = 1;
};

/// Where piece `part` of `parts` of a batch of `count` images begins (part = parts: the end).
[[nodiscard]] inline int64_t piece_start(int64_t count, int64_t part, int64_t parts) { return count * part / parts; }

/// One epoch of batches, in order, from `first_batch` on (for resuming mid-epoch).
/// The order is a shuffle seeded by (seed, epoch); a sample's augmentation is seeded by
/// (seed, epoch, sample index), so batches do not depend on thread timing or where a run started.
/// `data` must outlive the loader (the normalisation is copied). An error while preparing a
/// batch is thrown by next().
class BatchLoader {
 public:
  BatchLoader(const Dataset& data, const Normalization& norm, LoaderOptions options, int64_t epoch,
              int64_t first_batch = 0);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  /// The next batch: images (B, C, H, W) and labels (B); false at the end of the epoch.
  bool next(Tensor& images, std::vector<int64_t>& labels);
  [[nodiscard]] int64_t batches_per_epoch() const;
  /// Index of the batch the next call to next() returns.
  [[nodiscard]] int64_t position() const { return position_; }

 private:
  struct Batch {
    Tensor images;
    std::vector<int64_t> labels;
  };
  void produce();
  Batch make_batch(int64_t batch_index) const;

  const Dataset& data_;
  Normalization norm_;
  LoaderOptions options_;
  int64_t epoch_;
  int64_t batches_;
  std::vector<int64_t> order_;
  int64_t position_;
  int64_t produced_;
  std::deque<Batch> ready_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool stop_ = false;
  std::exception_ptr error_;  // the worker's failure, rethrown by next() once ready_ is drained
  std::thread worker_;
};

}  // namespace convnet
