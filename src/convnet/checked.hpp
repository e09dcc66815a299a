// Checked size arithmetic: every product or sum of sizes (elements, bytes, parameters, MACs)
// goes through these, so an absurd shape becomes a clear SizeError instead of a wrapped number.
#pragma once

#include <cstdint>
#include <string>

#include "convnet/error.hpp"

namespace convnet {

/// A size that cannot be represented or held (more than int64 elements or bytes, or beyond a limit).
class SizeError : public Error {
 public:
  using Error::Error;
};

/// a * b, or SizeError naming `what` when it overflows int64 (or a factor is negative).
[[nodiscard]] inline int64_t checked_mul(int64_t a, int64_t b, const std::string& what = "size") {
  int64_t out = 0;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &out)) {
    throw SizeError(what + " is too large: " + std::to_string(a) + " * " + std::to_string(b) +
                    " does not fit in 64 bits");
  }
  return out;
}

/// a + b, or SizeError naming `what` when it overflows int64 (or a term is negative).
[[nodiscard]] inline int64_t checked_add(int64_t a, int64_t b, const std::string& what = "size") {
  int64_t out = 0;
  if (a < 0 || b < 0 || __builtin_add_overflow(a, b, &out)) {
    throw SizeError(what + " is too large: " + std::to_string(a) + " + " + std::to_string(b) +
                    " does not fit in 64 bits");
  }
  return out;
}

/// The product of `dims` (1 for none), checked.
template <class Range>
[[nodiscard]] int64_t checked_product(const Range& dims, const std::string& what = "element count") {
  int64_t n = 1;
  for (int64_t d : dims) n = checked_mul(n, d, what);
  return n;
}

}  // namespace convnet
