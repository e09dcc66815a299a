// Image readers: a folder DIR/<class>/<image>.png|jpg (classes are the sub-folders sorted by name)
// and a single image resized for prediction, as (C, H, W) uint8 pixels, decoded by libpng and
// libjpeg-turbo (image_codec.cpp).
// Every image is read through InputFile (regular files only) and its dimensions are read from its
// header and checked against kMaxImageSide / kMaxImagePixels (and a PNG's compressed data against
// them, png_check.cpp) before it is decoded.

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>

#include "convnet/data/dataset.hpp"
#include "convnet/data/internal.hpp"
#include "convnet/error.hpp"
#include "convnet/io/input_file.hpp"

namespace convnet {
namespace {

namespace fs = std::filesystem;

bool is_image(const fs::path& file) {
  std::string ext = file.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

bool hidden(const fs::path& path) { return path.filename().string().starts_with("."); }

// The folder's sub-folders, or its image files (by extension; anything that is not a folder, so
// a FIFO named x.png is refused by the reader rather than skipped), sorted by name.
std::vector<fs::path> sorted_entries(const fs::path& dir, bool directories) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    if (hidden(entry.path())) continue;
    std::error_code type_ec;
    const bool is_folder = entry.is_directory(type_ec);
    if (directories ? is_folder : (!is_folder && is_image(entry.path()))) out.push_back(entry.path());
  }
  if (ec) throw IoError(dir.string() + ": cannot list the folder: " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

void check_folder(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) throw IoError(dir.string() + ": no such folder");
  if (!fs::is_directory(dir, ec)) throw IoError(dir.string() + ": not a folder");
}

constexpr uint64_t kMaxImageFileBytes = uint64_t{1} << 30;

// An image file's bytes and the dimensions its header declares, checked against the limits.
struct EncodedImage {
  std::string path;
  std::vector<uint8_t> bytes;
  detail::ImageInfo info;
};

EncodedImage read_image_header(const fs::path& path) {
  EncodedImage image{path.string(), InputFile(path.string()).read_all(kMaxImageFileBytes, "image file"), {}};
  image.info = detail::read_image_info(image.bytes, image.path);
  const int64_t width = image.info.width;
  const int64_t height = image.info.height;
  const std::string size = std::to_string(width) + "x" + std::to_string(height) + " (WxH)";
  if (width < 1 || height < 1) throw IoError(image.path + ": image is " + size + ": it has no pixels; not decoded");
  if (width > detail::kMaxImageSide || height > detail::kMaxImageSide || width * height > detail::kMaxImagePixels) {
    throw IoError(image.path + ": image is " + size + ", beyond the limit of " + std::to_string(detail::kMaxImageSide) +
                  " pixels a side and " + std::to_string(detail::kMaxImagePixels) + " pixels in all; not decoded");
  }
  // A PNG's data is checked exactly (below). A JPEG is decoded whole from what its header declares,
  // so a few bytes could demand the largest allowed image: refuse more than kMaxPixelsPerByte pixels
  // per byte of file.
  const auto file_bytes = static_cast<int64_t>(image.bytes.size());
  const bool png = image.bytes[0] == 0x89;  // read_image_info checked the signature
  if (!png && width * height > detail::kMaxPixelsPerByte * file_bytes) {
    throw IoError(image.path + ": image declares " + size + " pixels in a file of " + std::to_string(file_bytes) +
                  " bytes, more than " + std::to_string(detail::kMaxPixelsPerByte) +
                  " pixels per byte (truncated or not an image); not decoded");
  }
  detail::check_png_data_size(image.bytes, image.path);
  return image;
}

// Decodes to `channels` interleaved (H, W, C) bytes of the size read_image_header found.
std::vector<uint8_t> decode(const EncodedImage& image, int channels) {
  return detail::decode_image(image.bytes, image.path, image.info, channels);
}

// Bilinear sample of interleaved (h, w, channels) pixels at (y, x), half-pixel centres, edges clamped.
uint8_t bilinear(const unsigned char* src, int w, int h, int channels, int c, float y, float x) {
  y = std::clamp(y, 0.0f, static_cast<float>(h - 1));
  x = std::clamp(x, 0.0f, static_cast<float>(w - 1));
  const int y0 = static_cast<int>(y);
  const int x0 = static_cast<int>(x);
  const int y1 = std::min(y0 + 1, h - 1);
  const int x1 = std::min(x0 + 1, w - 1);
  const float fy = y - static_cast<float>(y0);
  const float fx = x - static_cast<float>(x0);
  const auto at = [&](int yy, int xx) { return static_cast<float>(src[(static_cast<size_t>(yy) * w + xx) * channels + c]); };
  const float top = at(y0, x0) + (at(y0, x1) - at(y0, x0)) * fx;
  const float bottom = at(y1, x0) + (at(y1, x1) - at(y1, x0)) * fx;
  return static_cast<uint8_t>(std::lround(std::clamp(top + (bottom - top) * fy, 0.0f, 255.0f)));
}

}  // namespace

Dataset read_single_image(const std::string& path, const Shape& shape) {
  if (!shape.is_volume() || (shape.channels() != 1 && shape.channels() != 3) || shape.height() <= 0 ||
      shape.width() <= 0) {
    throw Error(path + ": cannot read an image as " + shape.chw_string() + ": expected a 1- or 3-channel CxHxW shape");
  }
  if (shape.height() > detail::kMaxImageSide || shape.width() > detail::kMaxImageSide) {
    throw Error(path + ": cannot resize an image to " + shape.chw_string() + ": beyond the limit of " +
                std::to_string(detail::kMaxImageSide) + " pixels a side");
  }
  const int channels = static_cast<int>(shape.channels());
  const EncodedImage image = read_image_header(path);
  const auto w = static_cast<int>(image.info.width);  // within kMaxImageSide
  const auto h = static_cast<int>(image.info.height);
  const std::vector<uint8_t> decoded = decode(image, channels);
  const auto out_h = static_cast<int>(shape.height());
  const auto out_w = static_cast<int>(shape.width());
  Dataset data;
  data.name = fs::path(path).filename().string();
  data.image_shape = shape;
  data.pixels.resize(static_cast<size_t>(shape.numel()));
  data.labels = {0};
  data.class_names = {"unknown"};
  const float sy = static_cast<float>(h) / static_cast<float>(out_h);
  const float sx = static_cast<float>(w) / static_cast<float>(out_w);
  size_t k = 0;
  for (int c = 0; c < channels; ++c) {
    for (int y = 0; y < out_h; ++y) {
      for (int x = 0; x < out_w; ++x) {
        const float src_y = (static_cast<float>(y) + 0.5f) * sy - 0.5f;
        const float src_x = (static_cast<float>(x) + 0.5f) * sx - 0.5f;
        data.pixels[k++] = bilinear(decoded.data(), w, h, channels, c, src_y, src_x);
      }
    }
  }
  return data;
}

Dataset read_image_folder(const std::string& dir, int channels) {
  if (channels != 1 && channels != 3) {
    throw Error("read_image_folder: channels must be 1 or 3, got " + std::to_string(channels));
  }
  check_folder(dir);
  const std::vector<fs::path> classes = sorted_entries(dir, true);
  if (classes.empty()) {
    const bool loose_images = !sorted_entries(dir, false).empty();
    throw IoError(dir + ": empty folder: expected one sub-folder of images per class" +
                  (loose_images ? std::string(" (found images directly in it)") : std::string()));
  }

  for (const fs::path& cls : classes) detail::check_class_name(cls.filename().string(), cls.string());

  Dataset data;
  data.name = fs::path(dir).filename().string();
  std::string first_image;
  int first_w = 0;
  int first_h = 0;
  for (size_t label = 0; label < classes.size(); ++label) {
    const std::vector<fs::path> images = sorted_entries(classes[label], false);
    if (images.empty()) throw IoError(classes[label].string() + ": class folder without images (.png, .jpg, .jpeg)");
    data.class_names.push_back(classes[label].filename().string());
    for (const fs::path& path : images) {
      const EncodedImage image = read_image_header(path);
      const auto w = static_cast<int>(image.info.width);  // within kMaxImageSide
      const auto h = static_cast<int>(image.info.height);
      if (first_image.empty()) {
        first_image = image.path;
        first_w = w;
        first_h = h;
        data.image_shape = Shape{channels, h, w};
      } else if (w != first_w || h != first_h) {
        throw IoError(image.path + ": image is " + std::to_string(w) + "x" + std::to_string(h) +
                      " (WxH) but the first image, " + first_image + ", is " + std::to_string(first_w) + "x" +
                      std::to_string(first_h) + "; every image must have the same size");
      }
      const std::vector<uint8_t> decoded = decode(image, channels);
      // Decoded interleaved (H, W, C); the dataset stores planes (C, H, W).
      const size_t plane = static_cast<size_t>(w) * static_cast<size_t>(h);
      const size_t base = data.pixels.size();
      data.pixels.resize(base + plane * static_cast<size_t>(channels));
      for (size_t c = 0; c < static_cast<size_t>(channels); ++c) {
        for (size_t i = 0; i < plane; ++i) data.pixels[base + c * plane + i] = decoded.data()[i * channels + c];
      }
      data.labels.push_back(static_cast<int64_t>(label));
    }
  }
  return data;
}

namespace detail {

int image_folder_channels(const std::string& dir) {
  check_folder(dir);
  for (const fs::path& cls : sorted_entries(dir, true)) {
    const std::vector<fs::path> images = sorted_entries(cls, false);
    if (!images.empty()) return read_image_header(images.front()).info.channels;
  }
  return 3;
}

}  // namespace detail
}  // namespace convnet
