// A small recursive-descent evaluator for + - * / // and parentheses over numbers and names.
// Parentheses and unary minus recurse, so their nesting is limited to kMaxNesting.
#include "convnet/model/expression.hpp"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "convnet/error.hpp"
#include "convnet/model/ast.hpp"

namespace convnet::model {
namespace {

class Evaluator {
 public:
  Evaluator(const std::string& text, const Environment& env, const SourceLocation& where)
      : text_(text), env_(env), where_(where) {}

  double run() {
    const double value = sum();
    skip_space();
    if (pos_ != text_.size()) fail("unexpected '" + shortened(text_.substr(pos_)) + "'");
    // Beyond 2^53 doubles skip whole numbers: a size computed there would not be exact.
    if (!std::isfinite(value) || std::fabs(value) >= 9007199254740992.0) {
      fail("the value is out of range (its magnitude must stay below 2^53)");
    }
    return value;
  }

 private:
  // A long expression is cut in messages: the location already points at it.
  static std::string shortened(const std::string& text) {
    return text.size() <= 60 ? text : text.substr(0, 57) + "...";
  }
  [[noreturn]] void fail(const std::string& message) const {
    throw SpecError(where_.str() + ": in $(" + shortened(text_) + "): " + message);
  }
  // Entered once per nested parenthesis or unary minus.
  void descend() {
    if (++depth_ > kMaxNesting) {
      fail("parentheses or signs nested more than " + std::to_string(kMaxNesting) + " deep");
    }
  }
  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool eat(const char* op) {
    skip_space();
    const std::string s(op);
    if (text_.compare(pos_, s.size(), s) == 0) {
      pos_ += s.size();
      return true;
    }
    return false;
  }
  double sum() {
    double value = product();
    for (;;) {
      if (eat("+")) value += product();
      else if (eat("-")) value -= product();
      else return value;
    }
  }
  double product() {
    double value = unary();
    for (;;) {
      if (eat("//")) {
        const double d = unary();
        if (d == 0) fail("division by zero");
        value = std::floor(value / d);
      } else if (eat("*")) {
        value *= unary();
      } else if (eat("/")) {
        const double d = unary();
        if (d == 0) fail("division by zero");
        value /= d;
      } else {
        return value;
      }
    }
  }
  double unary() {
    if (eat("-")) {
      descend();
      const double value = -unary();
      --depth_;
      return value;
    }
    return primary();
  }
  double primary() {
    skip_space();
    if (eat("(")) {
      descend();
      const double value = sum();
      if (!eat(")")) fail("missing ')'");
      --depth_;
      return value;
    }
    const size_t start = pos_;
    if (pos_ < text_.size() && (std::isalpha(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '_')) {
      while (pos_ < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '_')) ++pos_;
      const std::string name = text_.substr(start, pos_ - start);
      auto it = env_.find(name);
      if (it == env_.end()) fail("unknown parameter '" + name + "'");
      return number(it->second, "parameter '" + name + "'");
    }
    while (pos_ < text_.size() && (std::isdigit(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '.' ||
                                   text_[pos_] == 'e')) ++pos_;
    if (start == pos_) fail(pos_ < text_.size() ? "unexpected '" + text_.substr(pos_, 1) + "'" : "missing a value");
    return number(text_.substr(start, pos_ - start), "number");
  }
  double number(const std::string& s, const std::string& what) const {
    char* end = nullptr;
    const double value = std::strtod(s.c_str(), &end);
    if (s.empty() || end != s.c_str() + s.size()) fail(what + " '" + s + "' is not a number");
    return value;
  }

  const std::string& text_;
  const Environment& env_;
  const SourceLocation& where_;
  size_t pos_ = 0;
  int depth_ = 0;
};

std::string format_number(double value) {
  if (std::nearbyint(value) == value && std::fabs(value) < 9007199254740992.0) {
    return std::to_string(static_cast<long long>(value));
  }
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.10g", value);
  return buffer;
}

}  // namespace

std::string substitute(const std::string& word, const Environment& env, const SourceLocation& where) {
  if (word.size() < 2 || word[0] != '$') return word;
  if (word[1] == '(') {
    const std::string inner = word.substr(2, word.size() - 3);
    return format_number(Evaluator(inner, env, where).run());
  }
  const std::string name = word.substr(1);
  auto it = env.find(name);
  if (it == env.end()) throw SpecError(where.str() + ": unknown parameter '$" + name + "'");
  return it->second;
}

}  // namespace convnet::model
