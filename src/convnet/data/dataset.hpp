// In-memory image classification datasets (uint8 pixels, int64 labels) and the readers for the
// formats convnet trains on: IDX (MNIST / Fashion-MNIST, .gz read directly), CIFAR-10/100
// binary batches, and a folder of images with one sub-folder per class (PNG/JPEG).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "convnet/shape.hpp"

namespace convnet {

struct Dataset {
  std::string name;                      // "fashion-mnist/train"
  Shape image_shape;                     // (C, H, W)
  std::vector<uint8_t> pixels;           // (N, C, H, W), 0..255
  std::vector<int64_t> labels;           // (N), in [0, class_names.size())
  std::vector<std::string> class_names;
  [[nodiscard]] int64_t size() const { return static_cast<int64_t>(labels.size()); }
  [[nodiscard]] int64_t image_size() const { return image_shape.numel(); }
};

struct DataSplits {
  Dataset train;
  Dataset test;
};

/// Where Debian's dataset-fashion-mnist package puts the data: the default for training.
inline constexpr const char* kDefaultDataPath = "/usr/share/datasets/fashion-mnist";

/// Reads an IDX image file (magic 0x00000803, uint8 N x H x W) and its label file (0x00000801);
/// a ".gz" name is decompressed on the fly. Throws IoError naming the file and the problem
/// (missing, wrong magic, truncated, counts that disagree, label out of range).
[[nodiscard]] Dataset read_idx(const std::string& images_path, const std::string& labels_path,
                               std::vector<std::string> class_names);

/// Reads CIFAR binary batches: records of <label byte>[<fine label byte>] + 3072 pixel bytes.
/// `coarse_and_fine` is CIFAR-100's two-label record (the fine label is used).
[[nodiscard]] Dataset read_cifar(const std::vector<std::string>& paths, bool coarse_and_fine,
                                 std::vector<std::string> class_names);

/// Reads DIR/<class>/<image>.png|jpg: classes sorted by name, images decoded to `channels`
/// (1 or 3) and required to share one size. Throws IoError for an unreadable image, a class
/// folder without images, or a size that differs from the first image's.
[[nodiscard]] Dataset read_image_folder(const std::string& dir, int channels);

/// Loads train and test sets from a folder: IDX files (train-images-idx3-ubyte[.gz], ...),
/// CIFAR-10 (data_batch_1..5.bin, test_batch.bin), CIFAR-100 (train.bin, test.bin), or an image
/// folder with train/ and test/ sub-folders. Class names come from the format (Fashion-MNIST's
/// ten names when the folder is Debian's) or from batches.meta.txt / the sub-folder names.
[[nodiscard]] DataSplits load_dataset(const std::string& path);

/// Reads one PNG/JPEG image as a one-image dataset of `shape` (C, H, W): converted to C channels
/// and resized (bilinear) when its size differs. Throws IoError for an unreadable image.
[[nodiscard]] Dataset read_single_image(const std::string& path, const Shape& shape);

/// Moves a random `fraction` of `data` (seeded) into a validation set, returned; `data` keeps the rest.
[[nodiscard]] Dataset split_validation(Dataset& data, double fraction, uint64_t seed);

}  // namespace convnet
