// Number formatting shared by the layers' args() and explain(): a double as the model language
// writes it back ("0.01", "1e-05"), and products of integers written out ("11*11*3").
#pragma once

#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <string>

namespace convnet {

/// Shortest round-trippable-enough form of an option value: "0.75", "0.0001", "1e-05".
[[nodiscard]] inline std::string number_string(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.6g", value);
  return buffer;
}

/// "55*55*96": the factors of a product, as explain() substitutes them.
[[nodiscard]] inline std::string product_string(std::initializer_list<int64_t> factors) {
  std::string out;
  for (int64_t f : factors) {
    if (!out.empty()) out += "*";
    out += std::to_string(f);
  }
  return out;
}

}  // namespace convnet
