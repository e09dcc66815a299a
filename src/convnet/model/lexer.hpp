// Splits a model file into lines of tokens with their file:line:col. Comments (#) and blank
// lines disappear; "basic(64, stride=2)" becomes word ( word , word = word ).
#pragma once

#include <string>
#include <vector>

#include "convnet/layer_args.hpp"

namespace convnet::model {

enum class TokenType { Word, LParen, RParen, Comma, Equals };

struct Token {
  TokenType type = TokenType::Word;
  std::string text;
  SourceLocation where;
};

using TokenLine = std::vector<Token>;

/// Tokenises `text`; throws SpecError on an unclosed "$(" expression.
[[nodiscard]] std::vector<TokenLine> tokenize(const std::string& text, const std::string& file);

}  // namespace convnet::model
