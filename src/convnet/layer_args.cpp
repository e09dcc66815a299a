// Typed readers over a layer line's words, with located error messages.
#include "convnet/layer_args.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "convnet/error.hpp"

namespace convnet {

std::string SourceLocation::str() const {
  if (file.empty() && line == 0) return "<c++>";
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

LayerArgs::LayerArgs(std::string kind, std::string usage, std::vector<ArgToken> tokens,
                     SourceLocation where)
    : kind_(std::move(kind)), usage_(std::move(usage)), tokens_(std::move(tokens)), where_(std::move(where)) {}

void LayerArgs::fail(const SourceLocation& where, const std::string& message) const {
  throw SpecError(where.str() + ": " + kind_ + ": " + message + " (usage: " + usage_ + ")");
}

int64_t LayerArgs::parse_int(const ArgToken& token, const char* what, int64_t min_value) const {
  const std::string& s = token.text;
  char* end = nullptr;
  errno = 0;
  const long long value = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || end != s.c_str() + s.size()) {
    fail(token.where, std::string("expected a whole number for ") + what + ", found '" + s + "'");
  }
  if (errno == ERANGE) {
    fail(token.where, std::string(what) + " " + s + " is out of range (at most 2^63 - 1 = 9223372036854775807)");
  }
  if (value < min_value) {
    fail(token.where, std::string(what) + " must be at least " + std::to_string(min_value) + ", found " + s);
  }
  return value;
}

Size2 LayerArgs::parse_size2(const ArgToken& token, const char* what, int64_t min_value) const {
  const size_t x = token.text.find('x');
  if (x == std::string::npos) {
    const int64_t v = parse_int(token, what, min_value);
    return {v, v};
  }
  const ArgToken h{token.text.substr(0, x), token.where};
  const ArgToken w{token.text.substr(x + 1), token.where};
  if (h.text.empty() || w.text.empty() || w.text.find('x') != std::string::npos) {
    fail(token.where, std::string("expected ") + what + " as HxW or a single number, found '" + token.text + "'");
  }
  return {parse_int(h, what, min_value), parse_int(w, what, min_value)};
}

bool LayerArgs::has_positional() const { return !tokens_.empty(); }

int64_t LayerArgs::positive_int(const char* what) {
  if (tokens_.empty()) fail(where_, std::string("missing ") + what);
  const ArgToken token = tokens_.front();
  tokens_.erase(tokens_.begin());
  return parse_int(token, what, 1);
}

Size2 LayerArgs::size2(const char* what) {
  if (tokens_.empty()) fail(where_, std::string("missing ") + what);
  const ArgToken token = tokens_.front();
  tokens_.erase(tokens_.begin());
  return parse_size2(token, what, 1);
}

double LayerArgs::number(const char* what) {
  if (tokens_.empty()) fail(where_, std::string("missing ") + what);
  const ArgToken token = tokens_.front();
  tokens_.erase(tokens_.begin());
  char* end = nullptr;
  const double value = std::strtod(token.text.c_str(), &end);
  if (token.text.empty() || end != token.text.c_str() + token.text.size() || !std::isfinite(value)) {
    fail(token.where, std::string("expected a number for ") + what + ", found '" + token.text + "'");
  }
  return value;
}

std::optional<std::string> LayerArgs::next_word_if(std::initializer_list<const char*> words) {
  if (tokens_.empty()) return std::nullopt;
  for (const char* word : words) {
    if (tokens_.front().text == word) {
      tokens_.erase(tokens_.begin());
      return std::string(word);
    }
  }
  return std::nullopt;
}

std::optional<ArgToken> LayerArgs::take_option(const char* key) {
  for (size_t i = 0; i < tokens_.size(); ++i) {
    if (tokens_[i].text != key) continue;
    if (i + 1 >= tokens_.size()) fail(tokens_[i].where, std::string("option '") + key + "' needs a value");
    ArgToken value = tokens_[i + 1];
    tokens_.erase(tokens_.begin() + static_cast<std::ptrdiff_t>(i), tokens_.begin() + static_cast<std::ptrdiff_t>(i) + 2);
    return value;
  }
  return std::nullopt;
}

std::optional<int64_t> LayerArgs::option_int(const char* key, int64_t min_value) {
  auto token = take_option(key);
  if (!token) return std::nullopt;
  return parse_int(*token, key, min_value);
}

std::optional<double> LayerArgs::option_double(const char* key) {
  auto token = take_option(key);
  if (!token) return std::nullopt;
  char* end = nullptr;
  const double value = std::strtod(token->text.c_str(), &end);
  if (token->text.empty() || end != token->text.c_str() + token->text.size() || !std::isfinite(value)) {
    fail(token->where, std::string("expected a number for ") + key + ", found '" + token->text + "'");
  }
  return value;
}

std::optional<Size2> LayerArgs::option_size2(const char* key, int64_t min_value) {
  auto token = take_option(key);
  if (!token) return std::nullopt;
  return parse_size2(*token, key, min_value);
}

std::optional<bool> LayerArgs::option_bool(const char* key) {
  auto token = take_option(key);
  if (!token) return std::nullopt;
  if (token->text == "true") return true;
  if (token->text == "false") return false;
  fail(token->where, std::string("expected true or false for ") + key + ", found '" + token->text + "'");
}

Rounding LayerArgs::rounding() {
  auto token = take_option("round");
  if (!token) return default_rounding_;
  if (token->text == "floor") return Rounding::Floor;
  if (token->text == "ceil") return Rounding::Ceil;
  if (token->text == "exact") return Rounding::Exact;
  fail(token->where, "expected floor, ceil or exact after round, found '" + token->text + "'");
}

std::optional<Init> LayerArgs::option_init() {
  auto token = take_option("init");
  if (!token) return std::nullopt;
  if (auto init = init_from_name(token->text)) return init;
  fail(token->where, "expected kaiming, xavier, gaussian, zeros or ones after init, found '" + token->text + "'");
}

void LayerArgs::finish() {
  if (!tokens_.empty()) fail(tokens_.front().where, "unexpected '" + tokens_.front().text + "'");
}

}  // namespace convnet
