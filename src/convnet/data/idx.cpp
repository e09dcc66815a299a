// IDX reader (MNIST / Fashion-MNIST): a uint8 image file (magic 0x00000803, N x H x W) and its
// label file (magic 0x00000801, N), each plain or gzip-compressed. Both headers are read and
// checked (magic, sizes, counts that agree) before any body; a plain file's size is compared
// with the header before reading, and gzip data is inflated only up to the declared size.
#include <algorithm>
#include <filesystem>

#include "convnet/checked.hpp"
#include "convnet/data/dataset.hpp"
#include "convnet/data/internal.hpp"
#include "convnet/error.hpp"

namespace convnet {
namespace {

constexpr uint32_t kImagesMagic = 0x00000803;
constexpr uint32_t kLabelsMagic = 0x00000801;

uint32_t big_endian(const uint8_t* bytes) {
  return (uint32_t{bytes[0]} << 24) | (uint32_t{bytes[1]} << 16) | (uint32_t{bytes[2]} << 8) | uint32_t{bytes[3]};
}

std::string describe_magic(uint32_t magic) {
  if (magic == kImagesMagic) return " (an IDX image file)";
  if (magic == kLabelsMagic) return " (an IDX label file)";
  if ((magic >> 16) == 0x1f8b) return " (gzip data inside a gzip file?)";
  return "";
}

// One IDX file: its header's 32-bit fields after the magic (count, then height and width for
// images), read and checked on opening; the body's size is declared, then the body read.
class IdxFile {
 public:
  IdxFile(const std::string& path, uint32_t magic, size_t fields)
      : file_(path), what_(magic == kImagesMagic ? "IDX image file" : "IDX label file") {
    const size_t header_bytes = 4 * (1 + fields);
    uint8_t header[16] = {};
    const size_t got = file_.read(header, header_bytes);
    if (got >= 4 && big_endian(header) != magic) {
      throw IoError(path + ": not an " + what_ + ": wrong magic number, expected " + detail::hex32(magic) + ", found " +
                    detail::hex32(big_endian(header)) + describe_magic(big_endian(header)));
    }
    if (got < header_bytes) {
      throw IoError(path + ": truncated " + what_ + ": expected at least " + std::to_string(header_bytes) +
                    " header bytes, found " + std::to_string(got));
    }
    for (size_t i = 0; i < fields; ++i) fields_.push_back(big_endian(header + 4 * (i + 1)));
    header_bytes_ = header_bytes;
  }

  [[nodiscard]] uint64_t field(size_t i) const { return fields_.at(i); }
  [[nodiscard]] const std::string& path() const { return file_.path(); }

  // Declares the body's size: a plain file's size is checked against it now, before any body is read.
  void expect_body(uint64_t body_bytes) {
    body_bytes_ = body_bytes;
    const uint64_t expected = checked_add(header_bytes_, body_bytes, path() + ": " + what_ + " size");
    if (!file_.compressed() && file_.size() != expected) {
      throw IoError(path() + (file_.size() < expected ? ": truncated " + what_ : ": " + what_ + " has trailing data") +
                    ": expected " + std::to_string(expected) + " bytes, found " + std::to_string(file_.size()));
    }
  }

  // The body; gzip data is inflated no further than the declared size (plus one byte, to detect more).
  std::vector<uint8_t> read_body() {
    std::vector<uint8_t> bytes = file_.read_exactly(body_bytes_, what_);
    file_.expect_end(what_);
    return bytes;
  }

 private:
  detail::DataFile file_;
  std::string what_;
  std::vector<uint64_t> fields_;
  uint64_t header_bytes_ = 0;
  uint64_t body_bytes_ = 0;
};

}  // namespace

Dataset read_idx(const std::string& images_path, const std::string& labels_path,
                 std::vector<std::string> class_names) {
  IdxFile images(images_path, kImagesMagic, 3);
  const uint64_t count = images.field(0);
  const uint64_t height = images.field(1);
  const uint64_t width = images.field(2);
  if (height == 0 || width == 0) {
    throw IoError(images_path + ": IDX image file declares empty images (" + std::to_string(height) + "x" +
                  std::to_string(width) + ")");
  }
  if (count == 0) throw IoError(images_path + ": IDX image file holds no images (an empty dataset)");
  IdxFile labels(labels_path, kLabelsMagic, 1);
  if (labels.field(0) != count) {
    throw IoError(labels_path + ": has " + std::to_string(labels.field(0)) + " labels but " + images_path + " has " +
                  std::to_string(count) + " images");
  }
  const std::string what = images_path + ": IDX image data";
  const auto image_bytes = static_cast<uint64_t>(checked_mul(static_cast<int64_t>(height), static_cast<int64_t>(width), what));
  const auto pixel_bytes =
      static_cast<uint64_t>(checked_mul(static_cast<int64_t>(count), static_cast<int64_t>(image_bytes), what));
  images.expect_body(pixel_bytes);
  labels.expect_body(count);
  const std::vector<uint8_t> label_bytes = labels.read_body();

  const uint8_t top = *std::max_element(label_bytes.begin(), label_bytes.end());
  if (class_names.empty()) class_names = detail::numbered_class_names(int64_t{top} + 1);
  if (top >= class_names.size()) {
    const auto item = std::find(label_bytes.begin(), label_bytes.end(), top) - label_bytes.begin();
    throw IoError(labels_path + ": label " + std::to_string(top) + " of item " + std::to_string(item) +
                  " is out of range for " + std::to_string(class_names.size()) + " classes");
  }
  Dataset data;
  data.name = std::filesystem::path(images_path).filename().string();
  data.image_shape = Shape{1, static_cast<int64_t>(height), static_cast<int64_t>(width)};
  data.labels.assign(label_bytes.begin(), label_bytes.end());
  data.pixels = images.read_body();
  data.class_names = std::move(class_names);
  return data;
}

}  // namespace convnet
