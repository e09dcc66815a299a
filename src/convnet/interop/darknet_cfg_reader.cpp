// Darknet's cfg syntax (parser.c read_cfg): whitespace anywhere in a line is dropped, '#' or ';'
// starts a comment line, "[type]" opens a section, "key=value" adds an option to it.
#include <algorithm>

#include "convnet/error.hpp"
#include "convnet/interop/darknet.hpp"

namespace convnet::darknet {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

}  // namespace

std::string shown(const std::string& text) {
  std::string out;
  for (char c : text.substr(0, 40)) out += c >= 0x20 && c < 0x7f ? c : '?';
  return text.size() > 40 ? out + "..." : out;
}

std::vector<CfgSection> read_cfg(const std::string& text, const std::string& file) {
  std::vector<CfgSection> sections;
  int line_number = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    start = end + 1;
    ++line_number;
    line.erase(std::remove_if(line.begin(), line.end(), is_space), line.end());
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    const std::string where = file + ":" + std::to_string(line_number) + ": ";
    if (line[0] == '[') {
      if (line.size() < 3 || line.back() != ']') {
        throw SpecError(where + "'" + shown(line) + "' is not a section line; write it as [name]");
      }
      sections.push_back({line.substr(1, line.size() - 2), line_number, {}});
      if (sections.size() == 1 && sections[0].type != "net" && sections[0].type != "network") {
        throw SpecError(where + "the first section must be [net], found [" + shown(sections[0].type) + "]");
      }
      continue;
    }
    const size_t equals = line.find('=');
    if (equals == std::string::npos || equals == 0) {
      throw SpecError(where + "'" + shown(line) + "' is neither a [section] nor a key=value line");
    }
    if (sections.empty()) throw SpecError(where + "'" + shown(line) + "' comes before the first section ([net])");
    sections.back().options.push_back({line.substr(0, equals), line.substr(equals + 1), line_number});
  }
  if (sections.empty()) throw SpecError(file + ": no sections; a Darknet cfg starts with [net]");
  return sections;
}

}  // namespace convnet::darknet
