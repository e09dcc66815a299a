// Golden fixtures (tests/golden/*.safetensors, written by tests/golden/generate.py from PyTorch):
// loading them, reading their "key=value" case options, and one tensor matcher that reports the worst element.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <span>
#include <stdexcept>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "convnet/io/safetensors.hpp"

namespace convnet::testing {

/// Element i passes when |actual - expected| <= abs + rel * |expected| (numpy's allclose).
struct Tolerance {
  double abs = 1e-6;
  double rel = 1e-6;
};

/// Every element within tolerance and the sizes equal; on failure names the worst element (the largest
/// |difference| / allowed), both values there, and the largest absolute difference anywhere.
inline ::testing::AssertionResult tensors_near(std::span<const float> actual, std::span<const float> expected,
                                               Tolerance tolerance) {
  if (actual.size() != expected.size()) {
    return ::testing::AssertionFailure() << "size " << actual.size() << ", expected " << expected.size();
  }
  size_t worst = 0;
  double worst_ratio = -1;
  double max_difference = 0;
  size_t failures = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double a = actual[i];
    const double e = expected[i];
    const double difference = std::abs(a - e);
    const double allowed = tolerance.abs + tolerance.rel * std::abs(e);
    const double ratio = std::isnan(difference) ? INFINITY : difference == 0 ? 0 : difference / allowed;
    if (ratio > 1) ++failures;
    if (ratio > worst_ratio) {
      worst_ratio = ratio;
      worst = i;
    }
    if (!(difference <= max_difference)) max_difference = difference;  // NaN sticks
  }
  if (failures == 0) return ::testing::AssertionSuccess();
  std::ostringstream out;
  out.precision(9);
  out << failures << " of " << actual.size() << " elements outside abs " << tolerance.abs << " + rel "
      << tolerance.rel << "; worst at index " << worst << ": actual " << actual[worst] << ", expected "
      << expected[worst] << " (" << worst_ratio << "x the allowed difference); max |difference| " << max_difference;
  return ::testing::AssertionFailure() << out.str();
}

inline void expect_tensor_near(std::span<const float> actual, std::span<const float> expected, Tolerance tolerance,
                               std::string_view what = {}) {
  EXPECT_TRUE(tensors_near(actual, expected, tolerance)) << what;
}

inline std::string golden_path(const std::string& file) {
  return std::string(CONVNET_TEST_DATA) + "/../golden/" + file;
}

/// A fixture file with checked access to its tensors and options.
class Fixture {
 public:
  explicit Fixture(const std::string& file) : file_(file), content_(read_safetensors(golden_path(file))) {}

  [[nodiscard]] bool has(const std::string& name) const { return content_.tensors.contains(name); }
  /// The tensor's values; throws (failing the test with the name) when it is missing.
  [[nodiscard]] const StoredTensor& tensor(const std::string& name) const {
    const auto it = content_.tensors.find(name);
    if (it == content_.tensors.end()) throw std::runtime_error(file_ + ": no tensor '" + name + "'");
    return it->second;
  }
  [[nodiscard]] const std::vector<float>& values(const std::string& name) const { return tensor(name).values; }
  [[nodiscard]] std::vector<float> copy(const std::string& name) const { return tensor(name).values; }
  [[nodiscard]] const std::vector<int64_t>& shape(const std::string& name) const { return tensor(name).shape; }
  [[nodiscard]] std::vector<int64_t> labels(const std::string& name) const {
    std::vector<int64_t> out;
    for (float v : values(name)) out.push_back(static_cast<int64_t>(v));
    return out;
  }
  [[nodiscard]] const std::map<std::string, StoredTensor>& tensors() const { return content_.tensors; }
  [[nodiscard]] std::string metadata(const std::string& key) const {
    const auto it = content_.metadata.find(key);
    if (it == content_.metadata.end()) throw std::runtime_error(file_ + ": no metadata '" + key + "'");
    return it->second;
  }

  /// The case's options from metadata "CASE.options": words "key=value" or "key=a,b".
  [[nodiscard]] std::map<std::string, std::vector<double>> options(const std::string& case_name) const {
    std::map<std::string, std::vector<double>> out;
    std::istringstream words(metadata(case_name + ".options"));
    for (std::string word; words >> word;) {
      const size_t eq = word.find('=');
      if (eq == std::string::npos) throw std::runtime_error(file_ + ": option without '=': " + word);
      std::vector<double>& list = out[word.substr(0, eq)];
      std::istringstream items(word.substr(eq + 1));
      for (std::string item; std::getline(items, item, ',');) {
        char* end = nullptr;
        const double v = std::strtod(item.c_str(), &end);
        list.push_back(end != item.c_str() ? v : NAN);  // words (kind=max) read as NaN; see option_word
      }
    }
    return out;
  }
  /// A text option ("kind=max" -> "max").
  [[nodiscard]] std::string option_word(const std::string& case_name, const std::string& key) const {
    std::istringstream words(metadata(case_name + ".options"));
    for (std::string word; words >> word;) {
      if (word.starts_with(key + "=")) return word.substr(key.size() + 1);
    }
    throw std::runtime_error(file_ + ": case '" + case_name + "' has no option '" + key + "'");
  }

 private:
  std::string file_;
  SafetensorsContent content_;
};

}  // namespace convnet::testing
