// Helpers shared by the dataset readers: DataFile (a data file read through zlib, bounded by the
// sizes its caller expects), the image size limits, class-name checks and message formatting.
// Internal to the library, not part of its API.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "convnet/io/input_file.hpp"

namespace convnet::detail {

/// A dataset file read from its start, decompressed on the fly when it is gzip (a plain file is
/// read unchanged). Opening refuses what is not a regular file (InputFile).
class DataFile {
 public:
  explicit DataFile(const std::string& path);
  ~DataFile();
  DataFile(const DataFile&) = delete;
  DataFile& operator=(const DataFile&) = delete;

  [[nodiscard]] const std::string& path() const { return file_.path(); }
  /// True for gzip data; false for a plain file, whose size() is then the data's size.
  [[nodiscard]] bool compressed() const { return compressed_; }
  [[nodiscard]] uint64_t size() const { return file_.size(); }

  /// Reads up to `n` bytes, fewer only at the end of the data; IoError for corrupt or truncated gzip.
  size_t read(uint8_t* out, size_t n);
  /// The next `n` bytes, the buffer growing as they arrive (a short file never gets `n` allocated);
  /// IoError "truncated `what`: expected E bytes, found F" when the data ends first.
  [[nodiscard]] std::vector<uint8_t> read_exactly(uint64_t n, const std::string& what);
  /// IoError when any data is left (reads at most one more byte: a bomb is not inflated further).
  void expect_end(const std::string& what);
  /// Everything left, at most `limit` bytes: IoError as soon as there is more.
  [[nodiscard]] std::vector<uint8_t> read_rest(uint64_t limit, const std::string& what);

 private:
  [[nodiscard]] std::string zlib_message() const;

  InputFile file_;
  gzFile gz_ = nullptr;
  bool compressed_ = false;
  uint64_t position_ = 0;  // decompressed bytes delivered so far
};

/// Images larger than this on a side, or with more pixels in all, are refused before decoding.
inline constexpr int64_t kMaxImageSide = 16384;
inline constexpr int64_t kMaxImagePixels = int64_t{1} << 26;
inline constexpr int64_t kMaxPixelsPerByte = 4096;  // JPEG: pixels per byte of file

/// An image's size as its header declares it. `channels` is what it decodes to by default (1 for
/// grey with or without alpha, else 3); `stored_channels` counts alpha and CMYK too.
struct ImageInfo {
  int64_t width = 0;
  int64_t height = 0;
  int channels = 0;
  int stored_channels = 0;
};

/// Reads a PNG's IHDR or a JPEG's frame header (the file's signature decides, not its name); throws
/// IoError naming `path` for any other file or a header it cannot find. Decodes nothing.
[[nodiscard]] ImageInfo read_image_info(const std::vector<uint8_t>& bytes, const std::string& path);

/// Decodes the image read_image_info described to interleaved (H, W, channels) bytes, channels 1
/// or 3: palettes expanded, 16 bits cut to their high byte, alpha dropped, grey replicated, RGB to
/// grey by BT.601 luma. Throws IoError naming `path` on damaged data (a JPEG warning included).
[[nodiscard]] std::vector<uint8_t> decode_image(const std::vector<uint8_t>& bytes, const std::string& path,
                                                const ImageInfo& info, int channels);

/// Throws IoError naming `path` when `bytes` is a PNG whose image data inflates to more than its
/// header's dimensions need (a decompression bomb), counting in a small buffer; other files pass.
void check_png_data_size(const std::vector<uint8_t>& bytes, const std::string& path);

/// Throws IoError naming `source` when `name` (a class name) is not valid UTF-8: checkpoints keep
/// class names in JSON metadata, which holds only UTF-8 text.
void check_class_name(const std::string& name, const std::string& source);

/// "0x00000803": a 32-bit value in hex, as magic numbers are written in error messages.
[[nodiscard]] std::string hex32(uint32_t value);

/// The channel count read_image_folder should decode `dir`'s images to: 1 when its first image
/// is grey (with or without alpha), else 3.
[[nodiscard]] int image_folder_channels(const std::string& dir);

/// Class names "0".."count-1".
[[nodiscard]] std::vector<std::string> numbered_class_names(int64_t count);

}  // namespace convnet::detail
