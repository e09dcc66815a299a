// Canvas drawing, the 3x5 font and PNG encoding. libpng reports errors by longjmp, so the encoding
// function keeps only trivially destructible objects between its setjmp and its return; the bytes
// go to a buffer sized up front (no allocation inside libpng's callbacks).
#include "convnet/visualize/canvas.hpp"

#include <png.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstring>

#include "convnet/checked.hpp"
#include "convnet/error.hpp"
#include "convnet/io/atomic_file.hpp"

namespace convnet {
namespace {

struct Glyph {
  char c;
  const char* rows;  // 5 rows of 3 pixels, top to bottom, '1' = ink
};

constexpr std::array<Glyph, 51> kFont{{
    {'0', "111101101101111"}, {'1', "010110010010111"}, {'2', "111001111100111"}, {'3', "111001111001111"},
    {'4', "101101111001001"}, {'5', "111100111001111"}, {'6', "111100111101111"}, {'7', "111001001010010"},
    {'8', "111101111101111"}, {'9', "111101111001111"}, {'A', "010101111101101"}, {'B', "110101110101110"},
    {'C', "011100100100011"}, {'D', "110101101101110"}, {'E', "111100110100111"}, {'F', "111100110100100"},
    {'G', "011100101101011"}, {'H', "101101111101101"}, {'I', "111010010010111"}, {'J', "001001001101010"},
    {'K', "101101110101101"}, {'L', "100100100100111"}, {'M', "101111111101101"}, {'N', "110101101101101"},
    {'O', "010101101101010"}, {'P', "110101110100100"}, {'Q', "010101101110011"}, {'R', "110101110101101"},
    {'S', "011100010001110"}, {'T', "111010010010010"}, {'U', "101101101101111"}, {'V', "101101101101010"},
    {'W', "101101111111101"}, {'X', "101101010101101"}, {'Y', "101101010010010"}, {'Z', "111001010100111"},
    {'.', "000000000000010"}, {',', "000000000010100"}, {':', "000010000010000"}, {';', "000010000010100"},
    {'-', "000000111000000"}, {'+', "000010111010000"}, {'=', "000111000111000"}, {'_', "000000000000111"},
    {'/', "001001010100100"}, {'%', "101001010100101"}, {'(', "001010010010001"}, {')', "100010010010100"},
    {'<', "001010100010001"}, {'>', "100010001010100"}, {'|', "010010010010010"},
}};
constexpr const char* kSmallX = "000101010101000";  // 'x' as in 28x28
constexpr const char* kUnknown = "111001010000010";
constexpr const char* kBlank = "000000000000000";

const char* glyph_rows(char c) {
  if (c == ' ') return kBlank;
  if (c == 'x') return kSmallX;
  if (c == '[') return "011010010010011";
  if (c == ']') return "110010010010110";
  const char upper = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
  for (const Glyph& g : kFont) {
    if (g.c == upper) return g.rows;
  }
  return kUnknown;
}

constexpr std::array<Rgb, 9> kViridis{{{68, 1, 84},
                                       {71, 44, 122},
                                       {59, 81, 139},
                                       {44, 113, 142},
                                       {33, 144, 141},
                                       {39, 173, 129},
                                       {92, 200, 99},
                                       {170, 220, 50},
                                       {253, 231, 37}}};

uint8_t to_byte(float t) { return static_cast<uint8_t>(std::lround(std::clamp(t, 0.0F, 1.0F) * 255.0F)); }

// ---- PNG ----

struct PngSink {
  uint8_t* data = nullptr;
  size_t capacity = 0;
  size_t size = 0;
  char message[256] = "";
};

void png_write_memory(png_structp png, png_bytep bytes, size_t n) {
  auto* sink = static_cast<PngSink*>(png_get_io_ptr(png));
  if (n > sink->capacity - sink->size) png_error(png, "encoded picture larger than its buffer");
  std::memcpy(sink->data + sink->size, bytes, n);
  sink->size += n;
}

void png_flush_nothing(png_structp /*png*/) {}

[[noreturn]] void png_fail(png_structp png, png_const_charp message) {
  auto* sink = static_cast<PngSink*>(png_get_error_ptr(png));
  std::snprintf(sink->message, sizeof sink->message, "%s", message);
  png_longjmp(png, 1);
}

void png_ignore_warning(png_structp /*png*/, png_const_charp /*message*/) {}

// Encodes (height, width, 3) bytes; returns false with sink.message set.
bool png_encode(PngSink& sink, const uint8_t* pixels, png_uint_32 width, png_uint_32 height) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &sink, png_fail, png_ignore_warning);
  if (png == nullptr) {
    std::snprintf(sink.message, sizeof sink.message, "cannot start libpng");
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (info == nullptr) {
    std::snprintf(sink.message, sizeof sink.message, "cannot start libpng");
    png_destroy_write_struct(&png, &info);
    return false;
  }
  if (setjmp(png_jmpbuf(png)) != 0) {  // alone in the condition, as C allows setjmp
    if (sink.message[0] == '\0') std::snprintf(sink.message, sizeof sink.message, "libpng failed");
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_set_write_fn(png, &sink, png_write_memory, png_flush_nothing);
  png_set_IHDR(png, info, width, height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (png_uint_32 y = 0; y < height; ++y) png_write_row(png, pixels + static_cast<size_t>(y) * width * 3);
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return true;
}

}  // namespace

Rgb color_of(float t, Colormap map) {
  if (std::isnan(t)) return {0, 0, 0};
  t = std::clamp(t, 0.0F, 1.0F);
  if (map == Colormap::Grey) {
    const uint8_t v = to_byte(t);
    return {v, v, v};
  }
  const float pos = t * static_cast<float>(kViridis.size() - 1);
  const auto i = std::min(static_cast<size_t>(pos), kViridis.size() - 2);
  const float f = pos - static_cast<float>(i);
  auto mix = [f](uint8_t a, uint8_t b) {
    return static_cast<uint8_t>(
        std::lround(static_cast<float>(a) + f * (static_cast<float>(b) - static_cast<float>(a))));
  };
  return {mix(kViridis[i].r, kViridis[i + 1].r), mix(kViridis[i].g, kViridis[i + 1].g),
          mix(kViridis[i].b, kViridis[i + 1].b)};
}

Canvas::Canvas(int64_t width, int64_t height, Rgb background) : width_(width), height_(height) {
  if (width < 1 || height < 1 || width > kMaxSide || height > kMaxSide) {
    throw ShapeError("a picture of " + std::to_string(width) + "x" + std::to_string(height) +
                     " pixels: each side must be 1 to " + std::to_string(kMaxSide));
  }
  pixels_.resize(static_cast<size_t>(checked_mul(checked_mul(width, height, "picture size"), 3, "picture size")));
  for (size_t i = 0; i < pixels_.size(); i += 3) {
    pixels_[i] = background.r;
    pixels_[i + 1] = background.g;
    pixels_[i + 2] = background.b;
  }
}

Rgb Canvas::at(int64_t x, int64_t y) const {
  if (x < 0 || y < 0 || x >= width_ || y >= height_) throw ShapeError("pixel outside the picture");
  const auto i = static_cast<size_t>((y * width_ + x) * 3);
  return {pixels_[i], pixels_[i + 1], pixels_[i + 2]};
}

void Canvas::set(int64_t x, int64_t y, Rgb c) {
  if (x < 0 || y < 0 || x >= width_ || y >= height_) return;
  const auto i = static_cast<size_t>((y * width_ + x) * 3);
  pixels_[i] = c.r;
  pixels_[i + 1] = c.g;
  pixels_[i + 2] = c.b;
}

void Canvas::fill_rect(int64_t x, int64_t y, int64_t w, int64_t h, Rgb c) {
  const int64_t x0 = std::max<int64_t>(x, 0);
  const int64_t y0 = std::max<int64_t>(y, 0);
  const int64_t x1 = std::min(x + std::max<int64_t>(w, 0), width_);
  const int64_t y1 = std::min(y + std::max<int64_t>(h, 0), height_);
  for (int64_t yy = y0; yy < y1; ++yy) {
    for (int64_t xx = x0; xx < x1; ++xx) set(xx, yy, c);
  }
}

void Canvas::draw_line(int64_t x0, int64_t y0, int64_t x1, int64_t y1, Rgb c) {
  // Bresenham: one pixel per step along the longer axis.
  const int64_t dx = std::abs(x1 - x0);
  const int64_t dy = -std::abs(y1 - y0);
  const int64_t sx = x0 < x1 ? 1 : -1;
  const int64_t sy = y0 < y1 ? 1 : -1;
  int64_t err = dx + dy;
  for (;;) {
    set(x0, y0, c);
    if (x0 == x1 && y0 == y1) return;
    const int64_t e2 = 2 * err;
    if (e2 >= dy) {
      err += dy;
      x0 += sx;
    }
    if (e2 <= dx) {
      err += dx;
      y0 += sy;
    }
  }
}

void Canvas::draw_map(int64_t x, int64_t y, const float* map, int64_t h, int64_t w, int64_t scale, Colormap cm) {
  for (int64_t i = 0; i < h; ++i) {
    for (int64_t j = 0; j < w; ++j) fill_rect(x + j * scale, y + i * scale, scale, scale, color_of(map[i * w + j], cm));
  }
}

void Canvas::draw_rgb(int64_t x, int64_t y, const float* planes, int64_t h, int64_t w, int64_t scale) {
  const int64_t plane = h * w;
  for (int64_t i = 0; i < h; ++i) {
    for (int64_t j = 0; j < w; ++j) {
      const int64_t k = i * w + j;
      fill_rect(x + j * scale, y + i * scale, scale, scale,
                {to_byte(planes[k]), to_byte(planes[plane + k]), to_byte(planes[2 * plane + k])});
    }
  }
}

void Canvas::draw_text(int64_t x, int64_t y, std::string_view text, Rgb c, int64_t scale) {
  for (char ch : text) {
    const char* rows = glyph_rows(ch);
    for (int64_t r = 0; r < 5; ++r) {
      for (int64_t col = 0; col < 3; ++col) {
        if (rows[r * 3 + col] == '1') fill_rect(x + col * scale, y + r * scale, scale, scale, c);
      }
    }
    x += 4 * scale;
  }
}

int64_t Canvas::text_width(std::string_view text, int64_t scale) {
  return text.empty() ? 0 : (4 * static_cast<int64_t>(text.size()) - 1) * scale;
}

std::vector<uint8_t> Canvas::encode_png() const {
  // Deflate never grows data by more than a few bytes per 16 KB block; rows add a filter byte each.
  const size_t raw = pixels_.size() + static_cast<size_t>(height_);
  std::vector<uint8_t> out(raw + raw / 100 + 4096);
  PngSink sink;
  sink.data = out.data();
  sink.capacity = out.size();
  if (!png_encode(sink, pixels_.data(), static_cast<png_uint_32>(width_), static_cast<png_uint_32>(height_))) {
    throw IoError(std::string("PNG encoding failed: ") + sink.message);
  }
  out.resize(sink.size);
  return out;
}

void Canvas::save_png(const std::string& path) const {
  const std::vector<uint8_t> bytes = encode_png();
  AtomicFile file(path);
  file.write(bytes.data(), bytes.size());
  file.commit();
}

void normalize_min_max(std::vector<float>& values) {
  float lo = INFINITY;
  float hi = -INFINITY;
  for (float v : values) {
    if (std::isfinite(v)) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  }
  for (float& v : values) {
    if (!std::isfinite(v)) {
      v = 0;
    } else {
      v = hi > lo ? (v - lo) / (hi - lo) : 0.5F;
    }
  }
}

}  // namespace convnet
