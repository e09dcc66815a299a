// The output-size formula with its error message and hints, and receptive-field arithmetic.
#include "convnet/layers/window.hpp"

#include <algorithm>
#include <cstdio>

#include "convnet/checked.hpp"
#include "convnet/error.hpp"

namespace convnet {
namespace {

std::string two_decimals(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.2f", value);
  return buffer;
}

// "(7 - 3 + 2*0)/3 + 1", with the dilated extent written out when dilation > 1; with asymmetric
// padding "(7 - 2 + 0 + 1)/1 + 1" (top or left, then bottom or right).
std::string substituted(int64_t input, int64_t extent, int64_t stride, int64_t padding,
                        std::optional<int64_t> padding_end = std::nullopt) {
  const std::string pads = padding_end && *padding_end != padding
                               ? std::to_string(padding) + " + " + std::to_string(*padding_end)
                               : "2*" + std::to_string(padding);
  return "(" + std::to_string(input) + " - " + std::to_string(extent) + " + " + pads + ")/" + std::to_string(stride) +
         " + 1";
}

// The smallest padding above `padding` (and below the extent) that makes (input - extent + 2p)
// divisible by the stride S: the congruence 2p = t (mod S) with t = -(input - extent) mod S. 0 for none.
int64_t fitting_padding(int64_t input, int64_t extent, int64_t stride, int64_t padding) {
  int64_t r = (input - extent) % stride;
  if (r < 0) r += stride;
  const int64_t t = (stride - r) % stride;
  int64_t residue = 0;  // p must be congruent to `residue` modulo `modulus`
  int64_t modulus = stride;
  if (stride % 2 == 1) {
    residue = t % 2 == 0 ? t / 2 : (t - 1) / 2 + (stride - 1) / 2 + 1;  // (t + S)/2 without overflow
  } else {
    if (t % 2 != 0) return 0;  // 2p is even, so it cannot match an odd t modulo an even S
    modulus = stride / 2;
    residue = t / 2 % modulus;
  }
  const int64_t first = padding + 1;
  int64_t step = (residue - first % modulus) % modulus;
  if (step < 0) step += modulus;
  return step < extent - first ? first + step : 0;
}

// A stride below `stride` that divides `span`: the largest one when it is among 64 candidates near
// the stride or near span / stride (always so for strides up to 65 and strides past the span),
// else 1. A constant amount of work, however large the numbers.
int64_t fitting_stride(int64_t span, int64_t stride) {
  constexpr int64_t kTries = 64;
  int64_t best = 1;
  for (int64_t s = stride - 1; s > best && s >= stride - kTries; --s) {
    if (span % s == 0) best = s;
  }
  // s = span / q is below the stride when q > span / stride: the first q that divides is the largest s.
  for (int64_t q = span / stride + 1, tries = 0; q <= span && tries < kTries; ++q, ++tries) {
    if (span % q == 0) {
      best = std::max(best, span / q);
      break;
    }
  }
  return best;
}

// A hint for a window that does not divide: the smallest padding or the largest stride that does.
// The padding is solved for symmetric padding only (`suggest_padding` false under pad_end).
std::string fit_hint(int64_t input, int64_t extent, int64_t stride, int64_t padding, int64_t span,
                     bool suggest_padding) {
  std::string hint;
  const int64_t p = suggest_padding ? fitting_padding(input, extent, stride, padding) : 0;
  if (p > 0) hint = "pad " + std::to_string(p);
  if (stride > 1) hint += (hint.empty() ? "" : " or ") + std::string("stride ") + std::to_string(fitting_stride(span, stride));
  return "try " + hint + ", or 'round floor' / 'round ceil' if the architecture relies on rounding";
}

}  // namespace

int64_t window_output_size(int64_t input, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation,
                           Rounding rounding, const std::string& window_name, const std::string& input_name,
                           std::optional<int64_t> padding_end) {
  // A dilated kernel spans D*(F-1)+1 pixels.
  const int64_t extent = checked_add(checked_mul(dilation, kernel - 1, "the dilated " + window_name), 1,
                                     "the dilated " + window_name);
  const bool asymmetric = padding_end && *padding_end != padding;
  const int64_t pads =
      asymmetric ? checked_add(padding, *padding_end, "the padding") : checked_mul(2, padding, "the padding");
  const int64_t span = checked_add(input, pads, "the padded " + input_name) - extent;
  const std::string sizes = substituted(input, extent, stride, padding, padding_end);
  if (span < 0) {
    const std::string padded_by =
        asymmetric ? std::to_string(padding) + " and " + std::to_string(*padding_end) : std::to_string(padding);
    throw ShapeError("a " + window_name + " (spanning " + std::to_string(extent) + ") does not fit a " + input_name +
                     " padded by " + padded_by + ": " + sizes + " < 1; use a smaller window or more padding");
  }
  if (span % stride != 0 && rounding == Rounding::Exact) {
    const double exact = static_cast<double>(span) / static_cast<double>(stride) + 1.0;
    throw ShapeError(sizes + " = " + two_decimals(exact) + " — a " + window_name + " at stride " +
                     std::to_string(stride) + " does not fit a " + input_name + "; " +
                     fit_hint(input, extent, stride, padding, span, !asymmetric));
  }
  int64_t output = span / stride + 1;
  if (rounding == Rounding::Ceil && span % stride != 0) {
    output += 1;
    // PyTorch/Caffe rule: the last window must start inside the input or its left padding.
    const int64_t reach = input + padding;  // (output - 1) * S >= reach, without the product
    if (output - 1 >= reach / stride + (reach % stride != 0 ? 1 : 0)) output -= 1;
  }
  return output;
}

Size2 window_output(const Shape& input, const Window& window, const char* what) {
  const std::string window_name = size2_string(window.kernel) + " " + what;
  const std::string input_name = std::to_string(input.height()) + "x" + std::to_string(input.width()) + " input";
  const std::string axis_h = window.kernel.is_square() && input.height() == input.width() ? "" : " (along the height)";
  const std::string axis_w = window.kernel.is_square() && input.height() == input.width() ? "" : " (along the width)";
  const Size2 end = window.end_padding();
  return {window_output_size(input.height(), window.kernel.h, window.stride.h, window.padding.h, window.dilation.h,
                             window.rounding, window_name, input_name + axis_h, end.h),
          window_output_size(input.width(), window.kernel.w, window.stride.w, window.padding.w, window.dilation.w,
                             window.rounding, window_name, input_name + axis_w, end.w)};
}

ReceptiveField window_receptive_field(const ReceptiveField& input, const Window& window) {
  if (input.global) return input;
  const char* what = "the receptive field";
  ReceptiveField out = input;
  out.size_h = checked_add(out.size_h, checked_product(std::initializer_list<int64_t>{window.dilation.h, window.kernel.h - 1, input.jump_h}, what), what);
  out.size_w = checked_add(out.size_w, checked_product(std::initializer_list<int64_t>{window.dilation.w, window.kernel.w - 1, input.jump_w}, what), what);
  out.jump_h = checked_mul(out.jump_h, window.stride.h, "the receptive field's step");
  out.jump_w = checked_mul(out.jump_w, window.stride.w, "the receptive field's step");
  return out;
}

std::vector<Formula> window_formulas(const Shape& input, const Window& window, const Shape& output) {
  const char* round = window.rounding == Rounding::Floor ? "floor" : window.rounding == Rounding::Ceil ? "ceil" : "";
  const Size2 end = window.end_padding();
  auto line = [&](const char* quantity, const char* sym, int64_t in, int64_t k, int64_t s, int64_t p, int64_t p_end,
                  int64_t d, int64_t out) {
    const int64_t extent = d * (k - 1) + 1;
    const char* pads = window.asymmetric() ? " + P_begin + P_end" : " + 2P";
    std::string formula = std::string(sym) + "2 = (" + sym + "1 - F" + pads + ")/S + 1";
    if (d > 1) formula += ", F = D*(K - 1) + 1 = " + std::to_string(extent);
    if (*round) formula += ", rounded " + std::string(round);
    return Formula{quantity, formula, substituted(in, extent, s, p, p_end), std::to_string(out)};
  };
  return {line("output width", "W", input.width(), window.kernel.w, window.stride.w, window.padding.w, end.w,
               window.dilation.w, output.width()),
          line("output height", "H", input.height(), window.kernel.h, window.stride.h, window.padding.h, end.h,
               window.dilation.h, output.height())};
}

std::string size2_string(const Size2& size) { return std::to_string(size.h) + "x" + std::to_string(size.w); }

std::string window_args(const Window& window, const Size2& default_stride) {
  auto pair = [](const Size2& s) { return s.is_square() ? std::to_string(s.h) : size2_string(s); };
  std::string out;
  if (window.stride != default_stride) out += " stride " + pair(window.stride);
  if (window.padding != Size2{0, 0}) out += " pad " + pair(window.padding);
  if (window.asymmetric()) out += " pad_end " + pair(*window.padding_end);
  if (window.dilation != Size2{1, 1}) out += " dilation " + pair(window.dilation);
  if (window.rounding != Rounding::Exact) out += std::string(" round ") + rounding_name(window.rounding);
  return out;
}

void read_window_padding(LayerArgs& args, Window& window) {
  window.padding = args.option_size2("pad", 0).value_or(Size2{0, 0});
  window.padding_end = args.option_size2("pad_end", 0);
  if (window.padding_end == window.padding) window.padding_end.reset();
}

}  // namespace convnet
