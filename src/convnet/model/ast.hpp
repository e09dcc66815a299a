// The parsed form of a model file, before blocks are expanded into a graph. It keeps the
// words as written ($width stays $width), so a parsed model prints back as a model file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "convnet/layer_args.hpp"
#include "convnet/shape.hpp"

namespace convnet::model {

/// Limits that keep a hostile file from exhausting the stack or the memory: structures, block calls
/// and parentheses in $(...) nest at most kMaxNesting deep, and a model expands to at most
/// kMaxLayers layers (checked before expanding).
/// A word an item line ends with to repeat the item: "x" then digits ("x3"). The parser takes the
/// last such word of a line as the repetition, so the printer writes "x1" after an item whose last
/// argument looks like one.
inline bool is_repetition_word(const std::string& text) {
  if (text.size() < 2 || text[0] != 'x') return false;
  for (size_t i = 1; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
  }
  return true;
}

inline constexpr int kMaxNesting = 200;
inline constexpr int64_t kMaxLayers = 1'000'000;

enum class ItemType { Layer, BlockCall, Sequential, Residual, Concat, Dense };

/// One line of the model (a layer or block call), or a structure with its nested items.
struct Item {
  ItemType type = ItemType::Layer;
  std::string name;                  // empty: named by position
  SourceLocation where;
  std::string kind;                  // layer kind, or the block's name for a BlockCall
  std::vector<ArgToken> args;        // layer arguments / block positional arguments
  std::vector<std::pair<std::string, ArgToken>> keyword_args;  // block "key=value" arguments
  int repeat = 1;                    // "x3"
  std::string repeat_as;             // "x6 as denselayer1" -> "denselayer1"
  std::vector<Item> body;            // children of a structure
  bool has_shortcut = false;         // residual: a "shortcut" section was written
  std::string shortcut_name;         // its name ("downsample"), may be empty
  SourceLocation shortcut_where;
  std::vector<Item> shortcut;        // the projection's items
};

struct BlockParam {
  std::string name;
  std::optional<ArgToken> default_value;
};

struct BlockDef {
  std::string name;
  std::vector<BlockParam> params;
  std::vector<Item> body;
  SourceLocation where;
};

struct InputDecl {
  std::string name;                  // "input" unless named
  Shape shape;
  SourceLocation where;
};

struct ModelAst {
  std::string file;
  std::string name;
  std::vector<InputDecl> inputs;
  std::optional<Rounding> rounding;
  std::vector<BlockDef> blocks;
  std::vector<Item> items;
};

/// Parses a model file. Throws SpecError with file:line:col, what was expected and what was found.
[[nodiscard]] ModelAst parse(const std::string& text, const std::string& file);

/// Prints a parsed model back in the model language (normalised spacing and indentation).
[[nodiscard]] std::string print(const ModelAst& model);

/// Parses "3x224x224" or "784"; throws SpecError at `where`.
[[nodiscard]] Shape parse_dims(const std::string& text, const SourceLocation& where);

/// parse_dims without a location: what is wrong with `text` (e.g. a dimension past int64), or "".
[[nodiscard]] std::string dims_error(const std::string& text, Shape& shape);

}  // namespace convnet::model
