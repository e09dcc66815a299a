// The model-language lexer.
#include "convnet/model/lexer.hpp"

#include <cctype>

#include "convnet/error.hpp"

namespace convnet::model {
namespace {

bool is_punct(char c) { return c == '(' || c == ')' || c == ',' || c == '=' || c == '#'; }

}  // namespace

std::vector<TokenLine> tokenize(const std::string& text, const std::string& file) {
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
