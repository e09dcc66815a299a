// IDX reader (MNIST / Fashion-MNIST): a uint8 image file (magic 0x00000803, N x H x W) and its
// label file (magic 0x00000801, N), each plain or gzip-compressed.
#include <algorithm>
#include <filesystem>

#include "convnet/data/dataset.hpp"
#include "convnet/data/internal.hpp"
#include "convnet/error.hpp"

namespace convnet {
namespace {

constexpr uint32_t kImagesMagic = 0x00000803;
constexpr uint32_t kLabelsMagic = 0x00000801;

uint32_t big_endian(const std::vector<uint8_t>& bytes, size_t offset) {
  return (uint32_t{bytes[offset]} << 24) | (uint32_t{bytes[offset + 1]} << 16) | (uint32_t{bytes[offset + 2]} << 8) |
         uint32_t{bytes[offset + 3]};
}

std::string describe_magic(uint32_t magic) {
  if (magic == kImagesMagic) return " (an IDX image file)";
  if (magic == kLabelsMagic) return " (an IDX label file)";
  if ((magic >> 16) == 0x1f8b) return " (gzip data inside a gzip file?)";
  return "";
}

// Checks the header's magic and returns the file's bytes; `header_bytes` is 8 or 16.
std::vector<uint8_t> read_idx_file(const std::string& path, uint32_t magic, size_t header_bytes) {
  std::vector<uint8_t> bytes = detail::read_file_bytes(path);
  const char* what = magic == kImagesMagic ? "IDX image file" : "IDX label file";
  if (bytes.size() < 4) {
    throw IoError(path + ": truncated " + what + ": expected at least " + std::to_string(header_bytes) +
                  " header bytes, found " + std::to_string(bytes.size()));
  }
  const uint32_t found = big_endian(bytes, 0);
  if (found != magic) {
    throw IoError(path + ": not an " + what + ": wrong magic number, expected " + detail::hex32(magic) + ", found " +
                  detail::hex32(found) + describe_magic(found));
  }
  if (bytes.size() < header_bytes) {
    throw IoError(path + ": truncated " + what + ": expected at least " + std::to_string(header_bytes) +
                  " header bytes, found " + std::to_string(bytes.size()));
  }
  return bytes;
}

void check_size(const std::string& path, const char* what, uint64_t expected, size_t found) {
  if (found < expected) {
    throw IoError(path + ": truncated " + what + ": expected " + std::to_string(expected) + " bytes, found " +
                  std::to_string(found));
  }
  if (found > expected) {
    throw IoError(path + ": " + what + " has trailing data: expected " + std::to_string(expected) + " bytes, found " +
                  std::to_string(found));
  }
}

}  // namespace

Dataset read_idx(const std::string& images_path, const std::string& labels_path,
                 std::vector<std::string> class_names) {
  const std::vector<uint8_t> images = read_idx_file(images_path, kImagesMagic, 16);
  const uint64_t count = big_endian(images, 4);
  const uint64_t height = big_endian(images, 8);
  const uint64_t width = big_endian(images, 12);
  if (height == 0 || width == 0) {
    throw IoError(images_path + ": IDX image file declares empty images (" + std::to_string(height) + "x" +
                  std::to_string(width) + ")");
  }
  const uint64_t image_bytes = height * width;  // each factor < 2^32, so no overflow
  if (count > (UINT64_MAX - 16) / image_bytes) throw IoError(images_path + ": IDX image file declares too many images");
  check_size(images_path, "IDX image file", 16 + count * image_bytes, images.size());

  const std::vector<uint8_t> labels = read_idx_file(labels_path, kLabelsMagic, 8);
  const uint64_t label_count = big_endian(labels, 4);
  check_size(labels_path, "IDX label file", 8 + label_count, labels.size());
  if (label_count != count) {
    throw IoError(labels_path + ": has " + std::to_string(label_count) + " labels but " + images_path + " has " +
                  std::to_string(count) + " images");
  }

  if (class_names.empty()) {
    const uint8_t top = labels.size() > 8 ? *std::max_element(labels.begin() + 8, labels.end()) : 0;
    class_names = detail::numbered_class_names(int64_t{top} + 1);
  }
  Dataset data;
  data.name = std::filesystem::path(images_path).filename().string();
  data.image_shape = Shape{1, static_cast<int64_t>(height), static_cast<int64_t>(width)};
  data.labels.resize(count);
  for (uint64_t i = 0; i < count; ++i) {
    const uint8_t label = labels[8 + i];
    if (label >= class_names.size()) {
      throw IoError(labels_path + ": label " + std::to_string(label) + " of item " + std::to_string(i) +
                    " is out of range for " + std::to_string(class_names.size()) + " classes");
    }
    data.labels[i] = label;
  }
  data.pixels.assign(images.begin() + 16, images.end());
  data.class_names = std::move(class_names);
  return data;
}

}  // namespace convnet
