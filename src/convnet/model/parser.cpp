// The model-language parser: lines of tokens -> ModelAst. Every error names file:line:col, what
// was expected and what was found.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <set>
#include <unordered_map>

#include "convnet/error.hpp"
#include "convnet/text.hpp"
#include "convnet/model/ast.hpp"
#include "convnet/model/lexer.hpp"
#include "convnet/registry.hpp"

namespace convnet::model {
namespace {

const std::set<std::string> kStructures = {"sequential", "residual", "concat", "dense", "shortcut"};
const std::set<std::string> kStatements = {"network", "input", "round", "block", "end"};

[[noreturn]] void fail(const SourceLocation& where, const std::string& message) {
  throw SpecError(where.str() + ": " + message);
}

bool is_identifier(const std::string& s) {
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'; });
}

std::string describe(const Token& token) { return "'" + token.text + "'"; }

class Parser {
 public:
  Parser(std::vector<TokenLine> lines, std::string file) : lines_(std::move(lines)) { ast_.file = std::move(file); }

  ModelAst run() {
    if (lines_.empty()) fail({ast_.file, 1, 1}, "the model file is empty: expected 'network NAME', 'input CxHxW' and layers");
    while (pos_ < lines_.size()) {
      const TokenLine& line = lines_[pos_];
      const std::string& first = line[0].text;
      if (line[0].type != TokenType::Word) fail(line[0].where, "expected a layer or statement, found " + describe(line[0]));
      if (first == "network") {
        parse_network(line);
      } else if (first == "input") {
        parse_input(line);
      } else if (first == "round") {
        parse_round(line);
      } else if (first == "block") {
        parse_block();
        continue;
      } else if (first == "end") {
        fail(line[0].where, "'end' without an open structure or block");
      } else {
        ast_.items.push_back(parse_item(/*in_residual=*/false));
        continue;
      }
      ++pos_;
    }
    if (ast_.inputs.empty()) fail({ast_.file, 1, 1}, "no input: declare one with 'input CxHxW' (e.g. input 3x224x224)");
    if (ast_.items.empty()) fail({ast_.file, 1, 1}, "the network has no layers");
    if (ast_.name.empty()) ast_.name = "network";
    return std::move(ast_);
  }

 private:
  void expect_count(const TokenLine& line, size_t count, const std::string& usage) {
    if (line.size() < count) fail(line.back().where, "'" + line[0].text + "' needs more: expected '" + usage + "'");
    if (line.size() > count) fail(line[count].where, "unexpected " + describe(line[count]) + " after '" + usage + "'");
    for (const Token& t : line) {
      if (t.type != TokenType::Word) fail(t.where, "unexpected " + describe(t) + " in '" + usage + "'");
    }
  }

  void parse_network(const TokenLine& line) {
    expect_count(line, 2, "network NAME");
    if (!ast_.name.empty()) fail(line[0].where, "the network is already named '" + ast_.name + "'");
    // The name goes into summaries, JSON and checkpoints: an identifier, as layer names are.
    if (!is_identifier(line[1].text)) fail(line[1].where, "expected a network name, found " + describe(line[1]));
    ast_.name = line[1].text;
  }

  void parse_input(const TokenLine& line) {
    const bool named = line.size() == 3;
    expect_count(line, named ? 3 : 2, named ? "input NAME CxHxW" : "input CxHxW");
    InputDecl input;
    input.name = named ? line[1].text : std::string("input");
    if (named && !is_identifier(input.name)) fail(line[1].where, "expected an input name, found " + describe(line[1]));
    input.shape = parse_dims(line.back().text, line.back().where);
    input.where = line[0].where;
    ast_.inputs.push_back(input);
  }

  void parse_round(const TokenLine& line) {
    expect_count(line, 2, "round floor|ceil|exact");
    const std::string& mode = line[1].text;
    if (mode == "floor") ast_.rounding = Rounding::Floor;
    else if (mode == "ceil") ast_.rounding = Rounding::Ceil;
    else if (mode == "exact") ast_.rounding = Rounding::Exact;
    else fail(line[1].where, "expected floor, ceil or exact after 'round', found " + describe(line[1]));
  }

  // block NAME(a, b=1)
  void parse_block() {
    const TokenLine& line = lines_[pos_];
    BlockDef block;
    block.where = line[0].where;
    if (line.size() < 4 || line[1].type != TokenType::Word || line[2].type != TokenType::LParen) {
      fail(line[0].where, "expected 'block NAME(param, param=default, ...)'");
    }
    block.name = line[1].text;
    if (!is_identifier(block.name)) fail(line[1].where, "expected a block name, found " + describe(line[1]));
    if (builtin_layers().find(block.name) || kStructures.count(block.name) || find_block(block.name)) {
      fail(line[1].where, "'" + block.name + "' is already a layer kind or block");
    }
    size_t i = 3;
    while (i < line.size() && line[i].type != TokenType::RParen) {
      if (line[i].type != TokenType::Word || !is_identifier(line[i].text)) {
        fail(line[i].where, "expected a parameter name, found " + describe(line[i]));
      }
      BlockParam param{line[i].text, std::nullopt};
      ++i;
      if (i < line.size() && line[i].type == TokenType::Equals) {
        if (i + 1 >= line.size() || line[i + 1].type != TokenType::Word) fail(line[i].where, "expected a default value after '='");
        param.default_value = ArgToken{line[i + 1].text, line[i + 1].where};
        i += 2;
      } else if (!block.params.empty() && block.params.back().default_value) {
        fail(line[i - 1].where, "parameter '" + param.name + "' without a default follows one with a default");
      }
      block.params.push_back(param);
      if (i < line.size() && line[i].type == TokenType::Comma) ++i;
    }
    if (i >= line.size()) fail(line.back().where, "missing ')' in block definition");
    if (i + 1 != line.size()) fail(line[i + 1].where, "unexpected " + describe(line[i + 1]) + " after the block header");
    ++pos_;
    block.body = parse_items_until_end(block.where, "block " + block.name, nullptr);
    block_ids_.emplace(block.name, ast_.blocks.size());
    ast_.blocks.push_back(std::move(block));
  }

  // Items up to the matching "end" (consumed). With `residual`, stops at a "shortcut" line too.
  std::vector<Item> parse_items_until_end(const SourceLocation& opened, const std::string& what, Item* residual) {
    if (depth_ >= kMaxNesting) {
      fail(opened, what + " opens a structure nested more than " + std::to_string(kMaxNesting) +
                       " deep; flatten it or use blocks");
    }
    ++depth_;  // not restored on failure: the parse stops at the first error
    std::vector<Item> items = parse_item_list(opened, what, residual);
    --depth_;
    return items;
  }

  std::vector<Item> parse_item_list(const SourceLocation& opened, const std::string& what, Item* residual) {
    std::vector<Item> items;
    for (;;) {
      if (pos_ >= lines_.size()) fail(opened, "missing 'end' for " + what + " opened here");
      const TokenLine& line = lines_[pos_];
      if (line[0].text == "end") {
        expect_count(line, 1, "end");
        ++pos_;
        return items;
      }
      if (line[0].type == TokenType::Word && kStatements.count(line[0].text)) {
        fail(line[0].where, "'" + line[0].text + "' is not allowed inside " + what);
      }
      const bool is_shortcut = (line[0].text == "shortcut" && line.size() == 1) ||
                               (line.size() == 2 && line[1].text == "shortcut");
      if (is_shortcut) {
        if (residual == nullptr || residual->has_shortcut) {
          fail(line[0].where, "'shortcut' belongs directly inside a residual, once");
        }
        residual->has_shortcut = true;
        residual->shortcut_name = line.size() == 2 ? line[0].text : std::string();
        residual->shortcut_where = line[0].where;
        ++pos_;
        residual->shortcut = parse_items_until_end(line[0].where, "shortcut", nullptr);
        return items;
      }
      items.push_back(parse_item(residual != nullptr));
    }
  }

  [[nodiscard]] const BlockDef* find_block(const std::string& name) const {
    const auto it = block_ids_.find(name);
    return it == block_ids_.end() ? nullptr : &ast_.blocks[it->second];
  }

  bool is_kind(const Token& token) const {
    return token.type == TokenType::Word &&
           (builtin_layers().find(token.text) || kStructures.count(token.text) || find_block(token.text));
  }

  [[noreturn]] void unknown_kind(const Token& token) const {
    std::vector<std::string> known = builtin_layers().names();
    for (const BlockDef& b : ast_.blocks) known.push_back(b.name);
    fail(token.where, "unknown layer kind " + describe(token) + did_you_mean(closest_words(token.text, known, 1)) +
                          "; 'convnet layers' lists the kinds");
  }

  Item parse_item(bool /*in_residual*/) {
    TokenLine line = lines_[pos_];
    Item item;
    item.where = line[0].where;
    // Trailing repetition: "x3" or "x6 as denselayer1".
    auto is_repeat = [](const Token& t) { return t.type == TokenType::Word && is_repetition_word(t.text); };
    if (line.size() >= 4 && line[line.size() - 2].text == "as" && is_repeat(line[line.size() - 3])) {
      item.repeat_as = line.back().text;
      const size_t digits = item.repeat_as.size() - item.repeat_as.find_last_not_of("0123456789") - 1;
      if (!is_identifier(item.repeat_as) || digits == 0 || digits > 6) {
        fail(line.back().where, "expected a name ending in a number after 'as' (e.g. denselayer1), found " + describe(line.back()));
      }
      line.resize(line.size() - 2);
    }
    if (line.size() >= 2 && is_repeat(line.back())) {
      const std::string count = line.back().text.substr(1);
      if (count.size() > 5 || std::stoll(count) < 1 || std::stoll(count) > 10000) {
        fail(line.back().where, "repetition must be from x1 to x10000, found '" + line.back().text + "'");
      }
      item.repeat = static_cast<int>(std::stoll(count));
      line.pop_back();
    } else if (!item.repeat_as.empty()) {
      fail(line.back().where, "'as' needs a repetition before it (x6 as denselayer1)");
    }

    size_t k = 0;  // index of the kind token
    const bool second_is_kind = line.size() > 1 && is_kind(line[1]);
    if (!(is_kind(line[0]) && !second_is_kind)) {
      if (line[0].type != TokenType::Word) fail(line[0].where, "expected a layer, found " + describe(line[0]));
      const bool second_looks_like_word = line.size() > 1 && line[1].type == TokenType::Word && is_identifier(line[1].text);
      if (!second_looks_like_word) unknown_kind(line[0]);
      if (!second_is_kind) unknown_kind(line[1]);
      if (!is_identifier(line[0].text) || std::isdigit(static_cast<unsigned char>(line[0].text[0]))) {
        fail(line[0].where, "a layer name must start with a letter and hold letters, digits, _ or -, found " + describe(line[0]));
      }
      item.name = line[0].text;
      k = 1;
    }
    item.kind = line[k].text;
    const SourceLocation kind_where = line[k].where;
    std::vector<Token> rest(line.begin() + static_cast<std::ptrdiff_t>(k) + 1, line.end());
    ++pos_;

    if (const BlockDef* block = find_block(item.kind)) {
      item.type = ItemType::BlockCall;
      parse_call_args(item, *block, rest, kind_where);
      return item;
    }
    if (kStructures.count(item.kind) && !(item.kind == "concat" && !rest.empty())) {
      if (!rest.empty()) fail(rest[0].where, "unexpected " + describe(rest[0]) + " after '" + item.kind + "'");
      if (item.repeat != 1) fail(item.where, "a structure cannot be repeated; put it in a block and repeat the block");
      if (item.kind == "shortcut") fail(item.where, "'shortcut' belongs directly inside a residual");
      item.type = item.kind == "sequential" ? ItemType::Sequential
                  : item.kind == "residual" ? ItemType::Residual
                  : item.kind == "concat"   ? ItemType::Concat
                                            : ItemType::Dense;
      item.body = parse_items_until_end(item.where, item.kind, item.type == ItemType::Residual ? &item : nullptr);
      if (item.body.empty()) fail(item.where, "empty " + item.kind + ": expected at least one item before 'end'");
      return item;
    }
    item.type = ItemType::Layer;
    for (const Token& t : rest) {
      if (t.type != TokenType::Word) fail(t.where, "unexpected " + describe(t) + " in a layer line");
      item.args.push_back({t.text, t.where});
    }
    return item;
  }

  void parse_call_args(Item& item, const BlockDef& block, const std::vector<Token>& rest, const SourceLocation& where) {
    const std::string signature = block.name + "(" + [&] {
      std::string s;
      for (const BlockParam& p : block.params) {
        s += (s.empty() ? "" : ", ") + p.name + (p.default_value ? "=" + p.default_value->text : "");
      }
      return s;
    }() + ")";
    if (rest.empty() || rest[0].type != TokenType::LParen) fail(where, "block '" + block.name + "' is called as " + signature);
    size_t i = 1;
    while (i < rest.size() && rest[i].type != TokenType::RParen) {
      if (rest[i].type != TokenType::Word) fail(rest[i].where, "expected an argument, found " + describe(rest[i]));
      if (i + 1 < rest.size() && rest[i + 1].type == TokenType::Equals) {
        if (i + 2 >= rest.size() || rest[i + 2].type != TokenType::Word) fail(rest[i + 1].where, "expected a value after '='");
        const std::string& key = rest[i].text;
        if (std::none_of(block.params.begin(), block.params.end(), [&](const BlockParam& p) { return p.name == key; })) {
          fail(rest[i].where, "block '" + block.name + "' has no parameter '" + key + "'; it is " + signature);
        }
        item.keyword_args.push_back({key, {rest[i + 2].text, rest[i + 2].where}});
        i += 3;
      } else {
        if (!item.keyword_args.empty()) fail(rest[i].where, "a positional argument follows a key=value argument");
        item.args.push_back({rest[i].text, rest[i].where});
        ++i;
      }
      if (i < rest.size() && rest[i].type == TokenType::Comma) ++i;
    }
    if (i >= rest.size()) fail(rest.back().where, "missing ')' in the call of block '" + block.name + "'");
    if (i + 1 != rest.size()) fail(rest[i + 1].where, "unexpected " + describe(rest[i + 1]) + " after the block call");
    if (item.args.size() > block.params.size()) {
      fail(item.args[block.params.size()].where, "block '" + block.name + "' takes at most " +
               std::to_string(block.params.size()) + " argument(s), got " + std::to_string(item.args.size()) +
               "; it is " + signature);
    }
    for (size_t p = item.args.size(); p < block.params.size(); ++p) {
      const BlockParam& param = block.params[p];
      const bool given = std::any_of(item.keyword_args.begin(), item.keyword_args.end(),
                                     [&](const auto& kv) { return kv.first == param.name; });
      if (!given && !param.default_value) {
        fail(where, "block '" + block.name + "' needs a value for '" + param.name + "'; it is " + signature);
      }
    }
  }

  std::vector<TokenLine> lines_;
  size_t pos_ = 0;
  int depth_ = 0;  // structures and blocks open around the current line
  ModelAst ast_;
  std::unordered_map<std::string, size_t> block_ids_;  // index into ast_.blocks by name
};

}  // namespace

std::string dims_error(const std::string& text, Shape& shape) {
  std::vector<int64_t> dims;
  size_t start = 0;
  for (;;) {
    const size_t x = text.find('x', start);
    const std::string part = text.substr(start, x == std::string::npos ? std::string::npos : x - start);
    char* end = nullptr;
    errno = 0;
    const long long value = std::strtoll(part.c_str(), &end, 10);
    if (part.empty() || end != part.c_str() + part.size() || value < 1) {
      return "expected dimensions as CxHxW (e.g. 3x224x224) or a size, found '" + text + "'";
    }
    if (errno == ERANGE) return "dimension " + part + " in '" + text + "' is out of range (more than 2^63 - 1)";
    dims.push_back(value);
    if (x == std::string::npos) break;
    start = x + 1;
  }
  if (dims.size() != 1 && dims.size() != 3) {
    return "expected CxHxW (3 numbers) or a vector size (1 number), found '" + text + "'";
  }
  shape = Shape(dims);
  return "";
}

Shape parse_dims(const std::string& text, const SourceLocation& where) {
  Shape shape;
  if (const std::string error = dims_error(text, shape); !error.empty()) fail(where, error);
  return shape;
}

ModelAst parse(const std::string& text, const std::string& file) { return Parser(tokenize(text, file), file).run(); }

}  // namespace convnet::model
