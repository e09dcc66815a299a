// Helpers shared by the dataset readers: reading a whole data file, gzip-compressed or not (zlib
// detects the gzip magic), and message formatting. Internal to the library, not part of its API.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace convnet::detail {

/// The file's bytes, decompressed when it is gzip; throws IoError for a missing, unreadable,
/// corrupt or truncated file.
[[nodiscard]] std::vector<uint8_t> read_file_bytes(const std::string& path);

/// "0x00000803": a 32-bit value in hex, as magic numbers are written in error messages.
[[nodiscard]] std::string hex32(uint32_t value);

/// The channel count read_image_folder should decode `dir`'s images to: 1 when its first image
/// is grey (with or without alpha), else 3.
[[nodiscard]] int image_folder_channels(const std::string& dir);

/// Class names "0".."count-1".
[[nodiscard]] std::vector<std::string> numbered_class_names(int64_t count);

}  // namespace convnet::detail
