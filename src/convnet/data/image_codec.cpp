// PNG and JPEG decoding on Debian's libpng and libjpeg-turbo, the decoders the field hardens and
// fuzzes (stb_image's readers trusted their headers: fuzz_image found an out-of-bounds write in
// its JPEG Huffman tables and undefined behaviour in its PNG reader). Both libraries report errors
// by longjmp, so each decoding function keeps only trivially destructible objects between its
// setjmp and its return, and copies the library's message out.
#include <png.h>

#include <algorithm>
#include <csetjmp>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>

#include <jpeglib.h>  // after <cstdio> and <cstddef>: it uses FILE and size_t without including them

#include "convnet/data/internal.hpp"
#include "convnet/error.hpp"

namespace convnet::detail {
namespace {

constexpr size_t kMessageBytes = 256;

// ---- PNG ----

struct PngSource {
  const uint8_t* data = nullptr;
  size_t size = 0;
  size_t pos = 8;  // after the signature, which read_image_header checked
  char message[kMessageBytes] = "";
};

void png_read_memory(png_structp png, png_bytep out, size_t n) {
  auto* source = static_cast<PngSource*>(png_get_io_ptr(png));
  if (n > source->size - source->pos) png_error(png, "file ends inside a chunk (truncated)");
  std::memcpy(out, source->data + source->pos, n);
  source->pos += n;
}

[[noreturn]] void png_fail(png_structp png, png_const_charp message) {
  auto* source = static_cast<PngSource*>(png_get_error_ptr(png));
  std::snprintf(source->message, kMessageBytes, "%s", message);
  png_longjmp(png, 1);
}

void png_ignore_warning(png_structp /*png*/, png_const_charp /*message*/) {}

// Decodes (H, W, info.channels) bytes into `rows`: grey or RGB, 8 bits, alpha dropped, palettes
// expanded. Returns false with source.message set.
bool png_run(PngSource& source, const ImageInfo& info, uint8_t* const* rows) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &source, png_fail, png_ignore_warning);
  if (png == nullptr) {
    std::snprintf(source.message, kMessageBytes, "cannot start libpng");
    return false;
  }
  png_infop png_info = png_create_info_struct(png);
  if (png_info == nullptr) {
    std::snprintf(source.message, kMessageBytes, "cannot start libpng");
    png_destroy_read_struct(&png, &png_info, nullptr);
    return false;
  }
  if (setjmp(png_jmpbuf(png)) != 0) {  // alone in the condition, as C allows setjmp
    if (source.message[0] == '\0') std::snprintf(source.message, kMessageBytes, "libpng failed");
    png_destroy_read_struct(&png, &png_info, nullptr);
    return false;
  }
  png_set_read_fn(png, &source, png_read_memory);
  png_set_sig_bytes(png, 8);
  png_read_info(png, png_info);
  if (png_get_image_width(png, png_info) != static_cast<png_uint_32>(info.width) ||
      png_get_image_height(png, png_info) != static_cast<png_uint_32>(info.height)) {
    png_error(png, "the header changed between reads");
  }
  png_set_expand(png);       // palette to RGB, grey below 8 bits to 8, transparency to alpha
  png_set_strip_16(png);     // 16 bits to 8: the high byte
  png_set_strip_alpha(png);  // alpha dropped, not composited
  (void)png_set_interlace_handling(png);
  png_read_update_info(png, png_info);
  if (png_get_channels(png, png_info) != info.channels || png_get_bit_depth(png, png_info) != 8) {
    png_error(png, "unexpected pixel format after conversion");
  }
  png_read_image(png, const_cast<png_bytepp>(rows));
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &png_info, nullptr);
  return true;
}

// ---- JPEG ----

struct JpegErrors {
  jpeg_error_mgr manager{};
  std::jmp_buf jump{};
  char message[JMSG_LENGTH_MAX] = "";
};

[[noreturn]] void jpeg_fail(j_common_ptr jpeg) {
  auto* errors = reinterpret_cast<JpegErrors*>(jpeg->err);
  (*jpeg->err->format_message)(jpeg, errors->message);
  std::longjmp(errors->jump, 1);
}

// A warning means the data is damaged (libjpeg would fill the rest with grey): an error here.
void jpeg_warn(j_common_ptr jpeg, int level) {
  if (level < 0) jpeg_fail(jpeg);
}

// As png_run, for JPEG; `info.channels` (1 or 3) is the colour space decoded to.
bool jpeg_run(const std::vector<uint8_t>& bytes, const ImageInfo& info, uint8_t* const* rows, char* message) {
  jpeg_decompress_struct jpeg{};
  JpegErrors errors;
  jpeg.err = jpeg_std_error(&errors.manager);
  errors.manager.error_exit = jpeg_fail;
  errors.manager.emit_message = jpeg_warn;
  if (setjmp(errors.jump) != 0) {
    std::snprintf(message, kMessageBytes, "%s", errors.message);
    jpeg_destroy_decompress(&jpeg);
    return false;
  }
  jpeg_create_decompress(&jpeg);
  jpeg.mem->max_memory_to_use = 1L << 30;
  jpeg_mem_src(&jpeg, bytes.data(), static_cast<unsigned long>(bytes.size()));
  (void)jpeg_read_header(&jpeg, TRUE);
  if (static_cast<int64_t>(jpeg.image_width) != info.width || static_cast<int64_t>(jpeg.image_height) != info.height) {
    std::snprintf(errors.message, JMSG_LENGTH_MAX, "the header changed between reads");
    std::longjmp(errors.jump, 1);
  }
  jpeg.out_color_space = info.channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  (void)jpeg_start_decompress(&jpeg);
  if (jpeg.output_components != info.channels) {
    std::snprintf(errors.message, JMSG_LENGTH_MAX, "unexpected colour components after conversion");
    std::longjmp(errors.jump, 1);
  }
  while (jpeg.output_scanline < jpeg.output_height) {
    JSAMPROW row = rows[jpeg.output_scanline];
    (void)jpeg_read_scanlines(&jpeg, &row, 1);
  }
  (void)jpeg_finish_decompress(&jpeg);
  jpeg_destroy_decompress(&jpeg);
  return true;
}

bool is_png(const std::vector<uint8_t>& bytes) {
  return bytes.size() >= 8 && std::memcmp(bytes.data(), "\x89PNG\r\n\x1a\n", 8) == 0;
}

bool is_jpeg(const std::vector<uint8_t>& bytes) {
  return bytes.size() >= 3 && bytes[0] == 0xff && bytes[1] == 0xd8 && bytes[2] == 0xff;
}

// The first bytes of a file in hex, for the message that refuses it.
std::string first_bytes(const std::vector<uint8_t>& bytes) {
  if (bytes.empty()) return "it is empty";
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "it starts with";
  for (size_t i = 0; i < std::min<size_t>(bytes.size(), 4); ++i) {
    out += std::string(" ") + kHex[bytes[i] >> 4] + kHex[bytes[i] & 15];
  }
  return out;
}

uint32_t be16(const uint8_t* p) { return (uint32_t{p[0]} << 8) | p[1]; }

uint32_t be32(const uint8_t* p) { return (be16(p) << 16) | be16(p + 2); }

// The IHDR chunk, which a PNG must start with: width, height, then colour type at byte 25.
ImageInfo png_info(const std::vector<uint8_t>& bytes, const std::string& path) {
  if (bytes.size() < 33 || std::memcmp(bytes.data() + 12, "IHDR", 4) != 0) {
    throw IoError(path + ": corrupt PNG: it does not start with its IHDR chunk");
  }
  static constexpr int kStored[7] = {1, 0, 3, 1, 2, 0, 4};  // by colour type: grey, -, RGB, palette, grey+alpha, -, RGBA
  const uint8_t colour = bytes[25];
  return {be32(&bytes[16]), be32(&bytes[20]), (colour & 2) != 0 ? 3 : 1, colour < 7 ? kStored[colour] : 0};
}

// The first frame header (SOF0..SOF15) among the JPEG's marker segments.
ImageInfo jpeg_info(const std::vector<uint8_t>& bytes, const std::string& path) {
  size_t pos = 2;
  while (pos + 4 <= bytes.size() && bytes[pos] == 0xff) {
    const uint8_t marker = bytes[pos + 1];
    if (marker == 0xff) {  // fill byte
      ++pos;
      continue;
    }
    if (marker == 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {  // no length: TEM, RSTn
      pos += 2;
      continue;
    }
    const uint32_t length = be16(&bytes[pos + 2]);
    if (length < 2 || length > bytes.size() - pos - 2) break;
    const bool frame = marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc;
    if (frame && length >= 8) {
      const int components = bytes[pos + 9];
      return {be16(&bytes[pos + 7]), be16(&bytes[pos + 5]), components == 1 ? 1 : 3, components};
    }
    if (marker == 0xda || marker == 0xd9) break;  // scan data or the end before any frame header
    pos += 2 + length;
  }
  throw IoError(path + ": corrupt JPEG: no frame header (SOF) before its data");
}

bool run(const std::vector<uint8_t>& bytes, const ImageInfo& info, uint8_t* const* rows, char* message) {
  if (!is_png(bytes)) return jpeg_run(bytes, info, rows, message);
  PngSource source{bytes.data(), bytes.size()};
  const bool ok = png_run(source, info, rows);
  std::memcpy(message, source.message, kMessageBytes);
  return ok;
}

}  // namespace

ImageInfo read_image_info(const std::vector<uint8_t>& bytes, const std::string& path) {
  if (is_png(bytes)) return png_info(bytes, path);
  if (is_jpeg(bytes)) return jpeg_info(bytes, path);
  throw IoError(path + ": not a PNG or JPEG image (" + first_bytes(bytes) + "); convert it to PNG or JPEG");
}

std::vector<uint8_t> decode_image(const std::vector<uint8_t>& bytes, const std::string& path, const ImageInfo& info,
                                  int channels) {
  const size_t row_bytes = static_cast<size_t>(info.width) * static_cast<size_t>(info.channels);
  std::vector<uint8_t> decoded(row_bytes * static_cast<size_t>(info.height));  // (H, W, info.channels)
  std::vector<uint8_t*> rows(static_cast<size_t>(info.height));
  for (size_t y = 0; y < rows.size(); ++y) rows[y] = decoded.data() + y * row_bytes;
  char message[kMessageBytes] = "";
  if (!run(bytes, info, rows.data(), message)) throw IoError(path + ": corrupt image: " + message);
  if (channels == info.channels) return decoded;
  const size_t pixels = static_cast<size_t>(info.width) * static_cast<size_t>(info.height);
  std::vector<uint8_t> out(pixels * static_cast<size_t>(channels));  // (H, W, channels)
  for (size_t i = 0; i < pixels; ++i) {
    if (channels == 3) {
      out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = decoded[i];  // grey to RGB
    } else {  // RGB to grey, ITU-R BT.601 luma (as JPEG's Y): (77 R + 150 G + 29 B) / 256
      const uint8_t* p = &decoded[3 * i];
      out[i] = static_cast<uint8_t>((77 * p[0] + 150 * p[1] + 29 * p[2]) >> 8);
    }
  }
  return out;
}

}  // namespace convnet::detail
