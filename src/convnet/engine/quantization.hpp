// Symmetric int8 quantization as int8 plans apply it: real = scale * integer, zero exact. An
// activation's scale comes from its calibrated range (u8 when it is never negative, else s8),
// a weight's from its output channel's largest magnitude.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "convnet/engine/plan.hpp"

namespace convnet {

/// The largest magnitude a node's range may reach, other than 0 (a node that is always 0, as a dead
/// ReLU, gets scale 1). An int8 plan multiplies and divides two scales at once (the input's by a
/// weight's over the output's; a bias over the input's by a weight's), which stay normal f32
/// numbers only while each scale stays near the square roots of f32's range.
inline constexpr float kMinRangeMagnitude = 1e-15F;
inline constexpr float kMaxRangeMagnitude = 1e15F;

/// Why `r` gives no int8 scale ("[-1e+38, 3e+38] reaches 3e+38: ..."), or "" when it does: finite,
/// min <= max, its largest magnitude 0 or within [kMinRangeMagnitude, kMaxRangeMagnitude].
[[nodiscard]] inline std::string range_problem(const ActivationRange& r) {
  char text[200];
  if (!std::isfinite(r.min) || !std::isfinite(r.max) || r.min > r.max) {
    std::snprintf(text, sizeof text, "[%g, %g] is not finite with min <= max", static_cast<double>(r.min),
                  static_cast<double>(r.max));
    return text;
  }
  const float magnitude = std::max(std::fabs(r.min), std::fabs(r.max));
  if (magnitude == 0 || (magnitude >= kMinRangeMagnitude && magnitude <= kMaxRangeMagnitude)) return "";
  std::snprintf(text, sizeof text,
                "[%g, %g] reaches %g: an int8 scale needs a largest magnitude of 0 (a layer that is always 0) or "
                "between %g and %g",
                static_cast<double>(r.min), static_cast<double>(r.max), static_cast<double>(magnitude),
                static_cast<double>(kMinRangeMagnitude), static_cast<double>(kMaxRangeMagnitude));
  return text;
}

/// u8 (0..255) when the node was never negative on the calibration data, else s8 (-128..127).
[[nodiscard]] inline bool quantized_unsigned(const ActivationRange& r) { return r.min >= 0; }

/// max(|min|, |max|) / 255 (u8) or / 127 (s8); 1 for an all-zero or non-finite range.
[[nodiscard]] inline float activation_scale(const ActivationRange& r) {
  const float magnitude = std::max(std::fabs(r.min), std::fabs(r.max));
  if (!(magnitude > 0) || !std::isfinite(magnitude)) return 1.0F;
  return magnitude / (quantized_unsigned(r) ? 255.0F : 127.0F);
}

/// Per output channel k of weights (outputs, per_output): max_i |w[k, i]| / 127 (1 for zeros).
[[nodiscard]] inline std::vector<float> weight_scales(const float* w, int64_t outputs, int64_t per_output) {
  std::vector<float> scales(static_cast<size_t>(outputs), 1.0F);
  for (int64_t k = 0; k < outputs; ++k) {
    float magnitude = 0;
    for (int64_t i = 0; i < per_output; ++i) magnitude = std::max(magnitude, std::fabs(w[k * per_output + i]));
    if (magnitude > 0) scales[static_cast<size_t>(k)] = magnitude / 127.0F;
  }
  return scales;
}

/// round(w / scale) to nearest even, within [-127, 127] (symmetric: -128 is never used).
[[nodiscard]] inline int8_t quantize_weight(float w, float scale) {
  return static_cast<int8_t>(std::clamp(std::nearbyint(w / scale), -127.0F, 127.0F));
}

}  // namespace convnet
