// Small text helpers shared by messages and tables: "did you mean" suggestions (edit distance)
// and number formatting ("1,234,567", "4.72 MB").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace convnet {

/// Levenshtein distance between two words.
[[nodiscard]] size_t edit_distance(const std::string& a, const std::string& b);

/// Up to `count` candidates nearest to `wanted`, nearest first (then closest in length, then in the
/// candidates' order), among those within an edit distance of max(2, |wanted| / 3).
[[nodiscard]] std::vector<std::string> closest_words(const std::string& wanted, const std::vector<std::string>& candidates,
                                                     size_t count = 3);

/// "'a', 'b' or 'c'".
[[nodiscard]] std::string either_of(const std::vector<std::string>& words);

/// " (did you mean 'a' or 'b'?)" for closest_words' answer, "" when there is none.
[[nodiscard]] std::string did_you_mean(const std::vector<std::string>& words);

/// 1234567 -> "1,234,567".
[[nodiscard]] std::string with_commas(int64_t value);
/// 1234567 -> "1.23M"; bytes -> "4.72 MB" with `bytes` (decimal units up to E).
[[nodiscard]] std::string compact(double value, bool bytes = false);

/// The offset of the first byte that does not start a valid UTF-8 sequence (as JSON requires:
/// no overlong forms, surrogates or code points beyond U+10FFFF), or npos when `text` is valid.
[[nodiscard]] size_t first_invalid_utf8(std::string_view text);

}  // namespace convnet
