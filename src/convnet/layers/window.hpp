// Sliding-window arithmetic shared by convolution, pooling, locally connected and tiled layers:
// the lecture's output size (W - F + 2P)/S + 1 (or (W - F + P_begin + P_end)/S + 1 with asymmetric
// padding), its "doesn't fit" error, receptive fields.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "convnet/layer.hpp"
#include "convnet/layer_args.hpp"
#include "convnet/shape.hpp"

namespace convnet {

/// The geometry of a 2-D sliding window.
struct Window {
  Size2 kernel{1, 1};
  Size2 stride{1, 1};
  Size2 padding{0, 0};  // top, left (and bottom, right unless padding_end is set)
  Size2 dilation{1, 1};
  Rounding rounding = Rounding::Exact;
  std::optional<Size2> padding_end{};  // bottom, right when they differ from `padding` ("pad_end")

  /// The bottom and right padding.
  [[nodiscard]] Size2 end_padding() const { return padding_end.value_or(padding); }
  [[nodiscard]] bool asymmetric() const { return padding_end.has_value() && *padding_end != padding; }
};

/// Output size along one axis; throws ShapeError when the window does not fit (or is too big).
/// `what` describes the window and the input in messages ("3x3 filter", "7x7 input").
/// `padding` is on both sides unless `padding_end` (the bottom or right side) is given.
[[nodiscard]] int64_t window_output_size(int64_t input, int64_t kernel, int64_t stride, int64_t padding,
                                         int64_t dilation, Rounding rounding, const std::string& window_name,
                                         const std::string& input_name,
                                         std::optional<int64_t> padding_end = std::nullopt);

/// Output (H, W) for a (C, H, W) input.
[[nodiscard]] Size2 window_output(const Shape& input, const Window& window, const char* what);

/// Receptive field after the window: size grows by (F_eff - 1) * jump, the jump multiplies by S.
[[nodiscard]] ReceptiveField window_receptive_field(const ReceptiveField& input, const Window& window);

/// explain() lines for the output width and height.
[[nodiscard]] std::vector<Formula> window_formulas(const Shape& input, const Window& window, const Shape& output);

/// " stride 2 pad 1 pad_end 0 dilation 2 round floor": the options that differ from the defaults.
[[nodiscard]] std::string window_args(const Window& window, const Size2& default_stride);

/// "3x3" or "1x7".
[[nodiscard]] std::string size2_string(const Size2& size);

/// Reads "pad P [pad_end E]" into the window; pad_end equal to pad is dropped (symmetric).
void read_window_padding(LayerArgs& args, Window& window);

}  // namespace convnet
