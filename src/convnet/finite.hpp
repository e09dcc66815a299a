// The search for a value that is not finite (NaN or an infinity): the one test of weights as they
// are loaded, of a training's parameters before an evaluation or a checkpoint, and of a network's
// outputs before a number or a picture is made from them.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>

namespace convnet {

/// The index of the first NaN or infinity among `values`, or -1 when every value is finite.
[[nodiscard]] inline int64_t first_non_finite(std::span<const float> values) {
  const auto it = std::find_if(values.begin(), values.end(), [](float v) { return !std::isfinite(v); });
  return it == values.end() ? -1 : static_cast<int64_t>(it - values.begin());
}

}  // namespace convnet
