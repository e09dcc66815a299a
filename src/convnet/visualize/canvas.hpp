// An RGB picture to draw the visualisations on: maps scaled into tiles, a 3x5 pixel font for
// labels, lines for curves, and PNG output through libpng (written atomically).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace convnet {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  friend bool operator==(const Rgb&, const Rgb&) = default;
};

/// Maps t in [0, 1] (clamped; NaN gives black) to a colour: grey from black to white, or a
/// perceptually ordered blue-green-yellow scale (matplotlib's viridis, sampled at nine points).
enum class Colormap { Grey, Viridis };
[[nodiscard]] Rgb color_of(float t, Colormap map);

class Canvas {
 public:
  /// Throws ShapeError unless 1 <= width, height <= kMaxSide.
  Canvas(int64_t width, int64_t height, Rgb background = {255, 255, 255});
  static constexpr int64_t kMaxSide = 16384;

  [[nodiscard]] int64_t width() const { return width_; }
  [[nodiscard]] int64_t height() const { return height_; }
  /// (H, W, 3) bytes, row-major.
  [[nodiscard]] const std::vector<uint8_t>& pixels() const { return pixels_; }
  [[nodiscard]] Rgb at(int64_t x, int64_t y) const;

  /// Every drawing call clips to the canvas.
  void set(int64_t x, int64_t y, Rgb c);
  void fill_rect(int64_t x, int64_t y, int64_t w, int64_t h, Rgb c);
  void draw_line(int64_t x0, int64_t y0, int64_t x1, int64_t y1, Rgb c);
  /// Draws a (h, w) map of values in [0, 1] with its top-left corner at (x, y), each value a
  /// `scale` x `scale` block.
  void draw_map(int64_t x, int64_t y, const float* map, int64_t h, int64_t w, int64_t scale, Colormap cm);
  /// Draws (3, h, w) values in [0, 1] as RGB.
  void draw_rgb(int64_t x, int64_t y, const float* planes, int64_t h, int64_t w, int64_t scale);
  /// Text in a 3x5 pixel font (upper case; letters, digits and . , : ; - + = _ / % ( ) [ ] < > | x
  /// and space; anything else draws as ?), each font pixel `scale` x `scale`.
  void draw_text(int64_t x, int64_t y, std::string_view text, Rgb c, int64_t scale = 1);
  [[nodiscard]] static int64_t text_width(std::string_view text, int64_t scale = 1);
  [[nodiscard]] static int64_t text_height(int64_t scale = 1) { return 5 * scale; }

  /// The picture as PNG bytes (8-bit RGB). Throws IoError if libpng fails.
  [[nodiscard]] std::vector<uint8_t> encode_png() const;
  /// Writes the PNG to `path` atomically; throws IoError naming the path on failure.
  void save_png(const std::string& path) const;

 private:
  int64_t width_;
  int64_t height_;
  std::vector<uint8_t> pixels_;
};

/// Scales `values` into [0, 1] by their own minimum and maximum (all 0.5 when constant); NaN and
/// infinities are ignored for the range and mapped to 0.
void normalize_min_max(std::vector<float>& values);

}  // namespace convnet
