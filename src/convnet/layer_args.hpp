// The arguments of one layer line of a model file ("64 3x3 stride 2 pad 1 bias false"), with
// typed readers that report errors at file:line:col. Each layer's from_args() reads its own.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "convnet/init.hpp"
#include "convnet/shape.hpp"

namespace convnet {

/// Where something was written: "resnet18.cnet:12:5". An empty file means "built from C++".
struct SourceLocation {
  std::string file;
  int line = 0;
  int column = 0;
  [[nodiscard]] std::string str() const;
};

/// One word of a layer line, already stripped of comments and with $expressions substituted.
struct ArgToken {
  std::string text;
  SourceLocation where;
};

/// Reads a layer's arguments: positional ones first, then "key value" options in any order.
/// Every reader throws SpecError naming the location, what was expected and the layer's usage.
class LayerArgs {
 public:
  LayerArgs(std::string kind, std::string usage, std::vector<ArgToken> tokens, SourceLocation where);

  [[nodiscard]] int64_t positive_int(const char* what);
  [[nodiscard]] Size2 size2(const char* what);
  [[nodiscard]] double number(const char* what);  // "3x3", "1x7" or "3" (square)
  [[nodiscard]] std::optional<std::string> next_word_if(std::initializer_list<const char*> words);
  [[nodiscard]] bool has_positional() const;

  [[nodiscard]] std::optional<int64_t> option_int(const char* key, int64_t min_value);
  [[nodiscard]] std::optional<double> option_double(const char* key);
  [[nodiscard]] std::optional<Size2> option_size2(const char* key, int64_t min_value);
  [[nodiscard]] std::optional<bool> option_bool(const char* key);
  [[nodiscard]] std::optional<Init> option_init();
  /// The `round` option, or the network's default when the line does not say.
  [[nodiscard]] Rounding rounding();
  void set_default_rounding(Rounding rounding) { default_rounding_ = rounding; }

  /// Throws if any argument was not consumed ("unexpected 'foo'").
  void finish();

  [[noreturn]] void fail(const SourceLocation& where, const std::string& message) const;
  [[nodiscard]] const SourceLocation& where() const { return where_; }

 private:
  std::optional<ArgToken> take_option(const char* key);
  int64_t parse_int(const ArgToken& token, const char* what, int64_t min_value) const;
  Size2 parse_size2(const ArgToken& token, const char* what, int64_t min_value) const;

  std::string kind_;
  std::string usage_;
  std::vector<ArgToken> tokens_;
  SourceLocation where_;
  Rounding default_rounding_ = Rounding::Exact;
};

}  // namespace convnet
