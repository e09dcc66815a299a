// Edit distance with one row of memory, nearest-word suggestions, and number formatting.
#include "convnet/text.hpp"

#include <algorithm>
#include <cstdio>

namespace convnet {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

std::vector<std::string> closest_words(const std::string& wanted, const std::vector<std::string>& candidates,
                                       size_t count) {
  const size_t limit = std::max<size_t>(2, wanted.size() / 3);
  struct Scored {
    size_t distance;
    size_t gap;  // difference in length: among equally distant words, a transposition beats an insertion
    const std::string* word;
  };
  std::vector<Scored> scored;
  for (const std::string& candidate : candidates) {
    // Words much longer or shorter than `wanted` cannot be within the limit: skip the O(n*m) work.
    const size_t gap = candidate.size() > wanted.size() ? candidate.size() - wanted.size() : wanted.size() - candidate.size();
    if (gap > limit) continue;
    const size_t d = edit_distance(wanted, candidate);
    if (d <= limit) scored.push_back({d, gap, &candidate});
  }
  std::stable_sort(scored.begin(), scored.end(), [](const Scored& a, const Scored& b) {
    return a.distance != b.distance ? a.distance < b.distance : a.gap < b.gap;
  });
  std::vector<std::string> out;
  for (size_t i = 0; i < scored.size() && i < count; ++i) out.push_back(*scored[i].word);
  return out;
}

std::string either_of(const std::vector<std::string>& words) {
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) {
    out += (i == 0 ? "" : i + 1 == words.size() ? " or " : ", ") + ("'" + words[i] + "'");
  }
  return out;
}

std::string did_you_mean(const std::vector<std::string>& words) {
  return words.empty() ? "" : " (did you mean " + either_of(words) + "?)";
}

std::string with_commas(int64_t value) {
  // Through uint64, so that INT64_MIN (whose negation overflows) prints too.
  const uint64_t magnitude = value < 0 ? 0 - static_cast<uint64_t>(value) : static_cast<uint64_t>(value);
  const std::string digits = std::to_string(magnitude);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return value < 0 ? "-" + out : out;
}

std::string compact(double value, bool bytes) {
  const char* units[] = {"", "K", "M", "G", "T", "P", "E"};
  int unit = 0;
  while (value >= 1000.0 && unit < 6) value /= 1000.0, ++unit;
  char buffer[48];
  if (bytes) std::snprintf(buffer, sizeof buffer, unit == 0 ? "%.0f %sB" : "%.2f %sB", value, units[unit]);
  else std::snprintf(buffer, sizeof buffer, unit == 0 ? "%.0f%s" : "%.2f%s", value, units[unit]);
  return buffer;
}

// The length of the valid UTF-8 sequence starting at text[i], or 0 when it is not one (overlong
// forms, surrogates and code points beyond U+10FFFF included, as JSON requires).
static size_t utf8_sequence(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return k < text.size() ? static_cast<unsigned char>(text[k]) : 0u; };
  const unsigned lead = byte(i);
  const auto continuation = [&](size_t k) { return (byte(k) & 0xc0u) == 0x80u; };
  if (lead < 0x80) return 1;
  if (lead >= 0xc2 && lead <= 0xdf) return continuation(i + 1) ? 2 : 0;
  if (lead >= 0xe0 && lead <= 0xef) {
    const unsigned second = byte(i + 1);
    const bool ok = (lead == 0xe0 ? second >= 0xa0 : lead == 0xed ? second <= 0x9f : true);
    return ok && continuation(i + 1) && continuation(i + 2) ? 3 : 0;
  }
  if (lead >= 0xf0 && lead <= 0xf4) {
    const unsigned second = byte(i + 1);
    const bool ok = (lead == 0xf0 ? second >= 0x90 : lead == 0xf4 ? second <= 0x8f : true);
    return ok && continuation(i + 1) && continuation(i + 2) && continuation(i + 3) ? 4 : 0;
  }
  return 0;
}


size_t first_invalid_utf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const size_t length = utf8_sequence(text, i);
    if (length == 0) return i;
    i += length;
  }
  return std::string_view::npos;
}

}  // namespace convnet
