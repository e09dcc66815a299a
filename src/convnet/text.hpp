// Small text helpers shared by error messages: edit distance for "did you mean" suggestions.
#pragma once

#include <string>

namespace convnet {

/// Levenshtein distance between two words.
[[nodiscard]] size_t edit_distance(const std::string& a, const std::string& b);

}  // namespace convnet
