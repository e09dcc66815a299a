// Formatting of shapes as the lecture notes write them.
#include "convnet/shape.hpp"

namespace convnet {

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int64_t d : dims_) n *= d;
  return n;
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
