// The model-language lexer.
#include "convnet/model/lexer.hpp"

#include <algorithm>
#include <cctype>

#include "convnet/error.hpp"
#include "convnet/text.hpp"

namespace convnet::model {
namespace {

bool is_punct(char c) { return c == '(' || c == ')' || c == ',' || c == '=' || c == '#'; }

}  // namespace

std::vector<TokenLine> tokenize(const std::string& text, const std::string& file) {
  // Names, arguments and comments end up in summaries, JSON and checkpoints: UTF-8 only.
  if (const size_t bad = first_invalid_utf8(text); bad != std::string::npos) {
    const size_t line_start = text.rfind('\n', bad == 0 ? 0 : bad - 1);
    const int line = 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(bad), '\n'));
    const int column = static_cast<int>(bad - (line_start == std::string::npos || bad == 0 ? 0 : line_start + 1)) + 1;
    throw SpecError(file + ":" + std::to_string(line) + ":" + std::to_string(column) +
                    ": the model file is not valid UTF-8 here (a model file is UTF-8 text)");
  }
  std::vector<TokenLine> lines;
  int line_number = 0;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    ++line_number;
    TokenLine tokens;
    size_t i = 0;
    while (i < line.size()) {
      const char c = line[i];
      const SourceLocation where{file, line_number, static_cast<int>(i) + 1};
      if (std::isspace(static_cast<unsigned char>(c))) {
        ++i;
      } else if (c == '#') {
        break;
      } else if (c == '(' || c == ')' || c == ',' || c == '=') {
        const TokenType type = c == '(' ? TokenType::LParen : c == ')' ? TokenType::RParen
                               : c == ',' ? TokenType::Comma : TokenType::Equals;
        tokens.push_back({type, std::string(1, c), where});
        ++i;
      } else if (c == '$' && i + 1 < line.size() && line[i + 1] == '(') {
        // "$(expression)" is one word, parentheses and all.
        int depth = 0;
        size_t j = i + 1;
        for (; j < line.size(); ++j) {
          if (line[j] == '(') ++depth;
          if (line[j] == ')' && --depth == 0) break;
        }
        if (j >= line.size()) throw SpecError(where.str() + ": unclosed '$(' expression");
        tokens.push_back({TokenType::Word, line.substr(i, j + 1 - i), where});
        i = j + 1;
      } else {
        size_t j = i;
        while (j < line.size() && !std::isspace(static_cast<unsigned char>(line[j])) && !is_punct(line[j])) ++j;
        tokens.push_back({TokenType::Word, line.substr(i, j - i), where});
        i = j;
      }
    }
    if (!tokens.empty()) lines.push_back(std::move(tokens));
    start = end + 1;
  }
  return lines;
}

}  // namespace convnet::model
