// Darknet cfg options read with their ranges checked; see darknet_section.hpp.
#include "convnet/interop/darknet_section.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "convnet/error.hpp"

namespace convnet::darknet {

Section::Section(const CfgSection& section, std::string file)
    : section_(section), file_(std::move(file)), used_(section.options.size(), false) {
  for (size_t i = 0; i < section_.options.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (section_.options[j].key == section_.options[i].key) {
        fail_at(section_.options[i], "is given twice (also at line " + std::to_string(section_.options[j].line) + ")");
      }
    }
  }
}

std::string Section::where() const {
  return file_ + ":" + std::to_string(section_.line) + ": [" + shown(section_.type) + "]";
}

void Section::fail(const std::string& message) const { throw SpecError(where() + " " + message); }

void Section::fail_at(const CfgOption& option, const std::string& message) const {
  throw SpecError(file_ + ":" + std::to_string(option.line) + ": [" + shown(section_.type) + "] " + shown(option.key) +
                  "=" + shown(option.value) + " " + message);
}

const CfgOption* Section::find(const char* key) {
  for (size_t i = 0; i < section_.options.size(); ++i) {
    if (section_.options[i].key == key) {
      used_[i] = true;
      return &section_.options[i];
    }
  }
  return nullptr;
}

bool Section::has(const char* key) const {
  for (const CfgOption& option : section_.options) {
    if (option.key == key) return true;
  }
  return false;
}

int64_t Section::parse_integer(const CfgOption& option, const std::string& text, int64_t min_value,
                               int64_t max_value) const {
  size_t i = text.size() > 1 && (text[0] == '-' || text[0] == '+') ? 1 : 0;
  if (i == text.size()) fail_at(option, "is not a whole number");
  int64_t magnitude = 0;
  for (; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') fail_at(option, "is not a whole number");
    magnitude = std::min<int64_t>(magnitude * 10 + (text[i] - '0'), kMaxInt + int64_t{1});  // saturates past int
  }
  const int64_t value = text[0] == '-' ? -magnitude : magnitude;
  if (value < min_value || value > max_value) {
    fail_at(option, "is out of range (" + std::to_string(min_value) + " to " + std::to_string(max_value) + ")");
  }
  return value;
}

int64_t Section::integer(const char* key, int64_t fallback, int64_t min_value, int64_t max_value) {
  const CfgOption* option = find(key);
  return option == nullptr ? fallback : parse_integer(*option, option->value, min_value, max_value);
}

int64_t Section::required_integer(const char* key, int64_t min_value, int64_t max_value) {
  if (!has(key)) fail(std::string("needs ") + key + "=");
  return integer(key, 0, min_value, max_value);
}

std::vector<int64_t> Section::integers(const char* key) {
  const CfgOption* option = find(key);
  if (option == nullptr) fail(std::string("needs ") + key + "=");
  std::vector<int64_t> values;
  size_t start = 0;
  while (true) {
    const size_t comma = option->value.find(',', start);
    values.push_back(parse_integer(*option, option->value.substr(start, comma - start), -kMaxInt, kMaxInt));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return values;
}

double Section::real(const char* key, double fallback) {
  const CfgOption* option = find(key);
  if (option == nullptr) return fallback;
  const char* begin = option->value.c_str();
  char* end = nullptr;
  errno = 0;
  const double value = std::strtod(begin, &end);
  if (option->value.empty() || end != begin + option->value.size() || errno == ERANGE || !std::isfinite(value)) {
    fail_at(*option, "is not a finite number");
  }
  return value;
}

std::string Section::word(const char* key, const std::string& fallback) {
  const CfgOption* option = find(key);
  return option == nullptr ? fallback : option->value;
}

void Section::ignore(std::initializer_list<const char*> keys) {
  for (const char* key : keys) (void)find(key);
}

void Section::finish() const {
  for (size_t i = 0; i < section_.options.size(); ++i) {
    if (!used_[i]) fail_at(section_.options[i], "is not a key convnet knows in [" + shown(section_.type) + "]");
  }
}

}  // namespace convnet::darknet
