// Typed reading of one Darknet cfg section's options: whole numbers and reals checked against
// their ranges, every key either read, ignored on purpose (training-only), or refused as unknown.
// Errors are SpecErrors "FILE:LINE: [section] key=value: what is wrong".
#pragma once

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

#include "convnet/interop/darknet.hpp"

namespace convnet::darknet {

/// Darknet keeps sizes in C ints: larger values are refused.
inline constexpr int64_t kMaxInt = std::numeric_limits<int32_t>::max();

class Section {
 public:
  /// Refuses a key written twice (Darknet would silently take the first).
  Section(const CfgSection& section, std::string file);

  [[nodiscard]] const std::string& type() const { return section_.type; }
  [[nodiscard]] int line() const { return section_.line; }
  /// "FILE:LINE: [type]" for the section's own line.
  [[nodiscard]] std::string where() const;
  [[noreturn]] void fail(const std::string& message) const;

  [[nodiscard]] bool has(const char* key) const;
  /// A whole number in [min_value, max_value], `fallback` when absent.
  [[nodiscard]] int64_t integer(const char* key, int64_t fallback, int64_t min_value, int64_t max_value = kMaxInt);
  /// A required whole number.
  [[nodiscard]] int64_t required_integer(const char* key, int64_t min_value, int64_t max_value = kMaxInt);
  /// Comma-separated whole numbers ("-1,-3" or "-1, 61").
  [[nodiscard]] std::vector<int64_t> integers(const char* key);
  /// A finite real number, `fallback` when absent.
  [[nodiscard]] double real(const char* key, double fallback);
  /// The value as written, `fallback` when absent.
  [[nodiscard]] std::string word(const char* key, const std::string& fallback);
  /// Keys that do not change inference (augmentation, learning rates): accepted and not read.
  void ignore(std::initializer_list<const char*> keys);
  /// Refuses the first key neither read nor ignored.
  void finish() const;

 private:
  const CfgOption* find(const char* key);
  int64_t parse_integer(const CfgOption& option, const std::string& text, int64_t min_value, int64_t max_value) const;
  [[noreturn]] void fail_at(const CfgOption& option, const std::string& message) const;

  const CfgSection& section_;
  std::string file_;
  std::vector<bool> used_;
};

}  // namespace convnet::darknet
