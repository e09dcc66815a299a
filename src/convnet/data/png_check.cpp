// PNG checks before decoding, each with a located message: every chunk lies within the file, and
// the image data inflates to no more than the header's dimensions need (a decompression bomb: a
// 400 KB file declaring 1x1 pixels made stb_image, the earlier decoder, allocate 400 MB; libpng
// would spend the time inflating it to discard it). Inflates into a small scratch buffer, counting.
#include <zlib.h>

#include <cstring>

#include "convnet/data/internal.hpp"
#include "convnet/error.hpp"

namespace convnet::detail {
namespace {

constexpr uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
constexpr uint64_t kSlack = 64 << 10;  // tolerated excess: some writers leave a little

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// Bytes of filtered scanlines for a width x height image (one filter byte per row), with or
// without Adam7 interlacing (seven passes, each its own rows).
uint64_t raw_size(uint64_t width, uint64_t height, uint64_t bits_per_pixel, bool interlaced) {
  const auto rows_of = [&](uint64_t cols, uint64_t rows) {
    return cols == 0 || rows == 0 ? 0 : rows * (1 + (cols * bits_per_pixel + 7) / 8);
  };
  if (!interlaced) return rows_of(width, height);
  constexpr uint64_t kPasses[7][4] = {{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4},
                                      {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}};
  uint64_t total = 0;
  for (const auto& [x0, y0, dx, dy] : kPasses) {
    const uint64_t cols = width > x0 ? (width - x0 + dx - 1) / dx : 0;
    const uint64_t rows = height > y0 ? (height - y0 + dy - 1) / dy : 0;
    total += rows_of(cols, rows);
  }
  return total;
}

uint64_t channels_of(uint8_t colour_type) {
  switch (colour_type) {
    case 2: return 3;  // RGB
    case 4: return 2;  // grey + alpha
    case 6: return 4;  // RGBA
    default: return 1; // grey, palette
  }
}

struct Inflater {
  z_stream stream{};
  bool started = false;
  ~Inflater() {
    if (started) inflateEnd(&stream);
  }
};

}  // namespace

void check_png_data_size(const std::vector<uint8_t>& bytes, const std::string& path) {
  if (bytes.size() < 8 || std::memcmp(bytes.data(), kSignature, 8) != 0) return;  // not a PNG
  uint64_t limit = 0;
  uint64_t inflated = 0;
  bool raw_deflate = false;  // Apple's CgBI PNGs store deflate data without the zlib header
  // Every chunk first: stb reserved a chunk's declared length before reading it (found by
  // fuzz_image: 2 GB for a 92-byte file), so one that runs past the end of the file is refused.
  // A chunk is its length and type (8 bytes), its data, then a 4-byte CRC; a header whose CRC is cut
  // off counts too (found by fuzz_image: a last chunk of 11 bytes declaring 1.4 GB).
  for (size_t pos = 8; pos + 8 <= bytes.size();) {
    const uint64_t length = be32(bytes.data() + pos);
    if (length + 12 > bytes.size() - pos) {
      const size_t follow = bytes.size() - pos - 8;
      throw IoError(path + ": PNG chunk at byte " + std::to_string(pos) + " declares " + std::to_string(length) +
                    " bytes and a checksum but only " + std::to_string(follow) +
                    " follow (truncated or corrupt); not decoded");
    }
    pos += 12 + length;
  }
  Inflater z;
  uint8_t scratch[1 << 16];
  for (size_t pos = 8; pos + 12 <= bytes.size();) {
    const uint32_t length = be32(bytes.data() + pos);
    if (length > bytes.size() - pos - 12) return;  // checked above
    const uint8_t* data = bytes.data() + pos + 8;
    const std::string type(reinterpret_cast<const char*>(bytes.data() + pos + 4), 4);
    pos += 12 + size_t{length};
    if (type == "CgBI") raw_deflate = true;
    if (type == "IHDR" && length >= 13) {
      const uint64_t bits = channels_of(data[9]) * data[8];
      limit = raw_size(be32(data), be32(data + 4), bits, data[12] != 0) + kSlack;
    }
    if (type == "IEND") return;
    if (type != "IDAT") continue;
    if (limit == 0) return;  // image data before the header: the decoder reports it
    if (!z.started) {
      if (inflateInit2(&z.stream, raw_deflate ? -15 : 15) != Z_OK) return;
      z.started = true;
    }
    z.stream.next_in = const_cast<uint8_t*>(data);
    z.stream.avail_in = length;
    int status = Z_OK;
    do {
      z.stream.next_out = scratch;
      z.stream.avail_out = sizeof scratch;
      status = inflate(&z.stream, Z_NO_FLUSH);
      if (status != Z_OK && status != Z_STREAM_END && status != Z_BUF_ERROR) return;  // corrupt: the decoder reports it
      inflated += sizeof scratch - z.stream.avail_out;
      if (inflated > limit) {
        throw IoError(path + ": PNG image data inflates to more than the " + std::to_string(limit) +
                      " bytes its dimensions need (a decompression bomb?); not decoded");
      }
    } while (z.stream.avail_out == 0 && status != Z_STREAM_END);
    if (status == Z_STREAM_END) return;
  }
}

}  // namespace convnet::detail
