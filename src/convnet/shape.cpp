// Element counts (checked), the byte limit, and shapes written as the lecture notes write them.
#include "convnet/shape.hpp"

#include <cstdio>

#include "convnet/checked.hpp"
#include "convnet/text.hpp"

namespace convnet {

int64_t Shape::numel() const { return checked_product(dims_, "element count of " + chw_string()); }

void check_float_bytes(std::span<const int64_t> factors, const std::string& what) {
  int64_t values = 1;
  double approximate = 1.0;
  bool overflow = false;
  for (int64_t f : factors) {
    approximate *= static_cast<double>(f);
    overflow = overflow || f < 0 || __builtin_mul_overflow(values, f, &values);
  }
  if (!overflow && values <= kMaxBytes / 4) return;
  char figure[32];
  std::snprintf(figure, sizeof figure, "about %.3g", approximate);
  throw SizeError(what + " needs " + (overflow ? std::string(figure) : with_commas(values)) + " float32 values (" +
                  compact(4.0 * approximate, true) + "), more than the " + with_commas(kMaxBytes) +
                  " bytes (2^48, 256 TiB) a 64-bit machine can address");
}

std::string Shape::volume_string() const {
  if (dims_.size() == 3) {
    return std::to_string(dims_[1]) + "x" + std::to_string(dims_[2]) + "x" + std::to_string(dims_[0]);
  }
  return chw_string();
}

std::string Shape::chw_string() const {
  std::string out;
  for (size_t i = 0; i < dims_.size(); ++i) {
    if (i > 0) out += "x";
    out += std::to_string(dims_[i]);
  }
  return out;
}

const char* rounding_name(Rounding rounding) {
  switch (rounding) {
    case Rounding::Exact: return "exact";
    case Rounding::Floor: return "floor";
    case Rounding::Ceil: return "ceil";
  }
  return "exact";
}

}  // namespace convnet
