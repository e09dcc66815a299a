// Expands a parsed model into a Net: binds block parameters, names every layer by its scope
// (torchvision style), inserts residual adds and concats, and builds shortcuts only where needed.
// Before expanding, it measures what the model would expand to (layers, nesting through block
// calls) and refuses one past kMaxLayers or kMaxNesting at the line that passes the limit.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "convnet/error.hpp"
#include "convnet/interop/darknet.hpp"
#include "convnet/interop/onnx.hpp"
#include "convnet/layers/merge.hpp"
#include "convnet/model/expression.hpp"
#include "convnet/model/model.hpp"
#include "convnet/registry.hpp"
#include "convnet/text.hpp"
#include "convnet/zoo/zoo.hpp"

namespace convnet {
namespace {

using model::Environment;
using model::Item;
using model::ItemType;

// A naming scope: "layer1.0." and the next free position for unnamed items.
struct Scope {
  std::string prefix;
  int next_position = 0;
};

// What items expand to: layers (an upper bound: every shortcut counted) and nesting depth.
struct Extent {
  int64_t layers = 0;
  int depth = 0;
};

int64_t saturating_add(int64_t a, int64_t b) {
  int64_t out = 0;
  return __builtin_add_overflow(a, b, &out) ? INT64_MAX : out;
}

int64_t saturating_mul(int64_t a, int64_t b) {
  int64_t out = 0;
  return __builtin_mul_overflow(a, b, &out) ? INT64_MAX : out;
}

// The extents of every block (each may call only blocks defined before it, so one pass in order
// needs no recursion through calls), then of the model's items, checked against the limits.
class ExtentCheck {
 public:
  explicit ExtentCheck(const model::ModelAst& ast) {
    for (const model::BlockDef& block : ast.blocks) blocks_.emplace(block.name, items(block.body));
  }

  void check(const std::vector<Item>& top) const {
    int64_t total = 0;
    for (const Item& item : top) {
      const Extent e = extent(item);
      total = saturating_add(total, e.layers);
      if (e.depth > model::kMaxNesting) {
        throw SpecError(item.where.str() + ": this line nests structures and blocks " + std::to_string(e.depth) +
                        " deep through block calls, more than the limit of " + std::to_string(model::kMaxNesting));
      }
      if (total > model::kMaxLayers) {
        throw SpecError(item.where.str() + ": the model expands to " + figure(total) + " layers by this line (it gives " +
                        figure(e.layers) + "), more than the limit of " + with_commas(model::kMaxLayers) +
                        "; check the repetitions (xN) of nested blocks");
      }
    }
  }

 private:
  static std::string figure(int64_t layers) { return layers == INT64_MAX ? "more than 2^63" : with_commas(layers); }

  Extent items(const std::vector<Item>& list) const {
    Extent out;
    for (const Item& item : list) {
      const Extent e = extent(item);
      out.layers = saturating_add(out.layers, e.layers);
      out.depth = std::max(out.depth, e.depth);
    }
    return out;
  }

  Extent extent(const Item& item) const {
    Extent one;
    switch (item.type) {
      case ItemType::Layer: one = {1, 0}; break;
      case ItemType::BlockCall: one = blocks_.at(item.kind); break;
      case ItemType::Sequential: one = items(item.body); break;
      case ItemType::Residual: {  // body, shortcut and the add
        const Extent body = items(item.body);
        const Extent shortcut = items(item.shortcut);
        one = {saturating_add(saturating_add(body.layers, shortcut.layers), 1), std::max(body.depth, shortcut.depth)};
        break;
      }
      case ItemType::Concat:
      case ItemType::Dense: {  // the branches and the concat
        const Extent body = items(item.body);
        one = {saturating_add(body.layers, 1), body.depth};
        break;
      }
    }
    return {saturating_mul(one.layers, item.repeat), item.type == ItemType::Layer ? 0 : one.depth + 1};
  }

  std::unordered_map<std::string, Extent> blocks_;
};

class Expander {
 public:
  Expander(const model::ModelAst& ast, const LoadOptions& options)
      : ast_(ast), builder_(ast.name), rounding_(ast.rounding.value_or(Rounding::Exact)) {
    for (size_t i = 0; i < ast.inputs.size(); ++i) {
      const model::InputDecl& input = ast.inputs[i];
      builder_.input(input.name, i == 0 && options.input_shape ? *options.input_shape : input.shape, input.where);
    }
  }

  Net run() && {
    ExtentCheck(ast_).check(ast_.items);
    for (size_t i = 0; i < ast_.blocks.size(); ++i) block_ids_.emplace(ast_.blocks[i].name, i);
    Scope top;
    expand_items(ast_.items, top, {}, ast_.inputs.empty() ? -1 : 0);
    return std::move(builder_).build();
  }

 private:
  int expand_items(const std::vector<Item>& items, Scope& scope, const Environment& env, int input) {
    for (const Item& item : items) input = expand_repeated(item, scope, env, input);
    return input;
  }

  // "NAME item xN [as prefixK]" opens scope NAME; an unnamed repetition takes N positions.
  int expand_repeated(const Item& item, Scope& scope, const Environment& env, int input) {
    if (item.repeat == 1 && item.repeat_as.empty()) return expand_item(item, scope, env, input, item.name);
    std::string stem;
    int first = 0;
    if (!item.repeat_as.empty()) {
      size_t digits = item.repeat_as.find_last_not_of("0123456789") + 1;
      stem = item.repeat_as.substr(0, digits);
      first = std::stoi(item.repeat_as.substr(digits));
    }
    Scope named_scope{scope.prefix + item.name + ".", 0};
    Scope& target = item.name.empty() ? scope : named_scope;
    if (!item.name.empty()) ++scope.next_position;
    for (int k = 0; k < item.repeat; ++k) {
      const std::string name = item.repeat_as.empty() ? std::string() : stem + std::to_string(first + k);
      input = expand_item(item, target, env, input, name);
    }
    return input;
  }

  std::string take_name(Scope& scope, const std::string& name) {
    const int position = scope.next_position++;
    return scope.prefix + (name.empty() ? std::to_string(position) : name);
  }

  // A free name for a node that unnamed residual/dense structures add ("layer1.0.add", then
  // "layer1.0.add1", ...). The next suffix to try is remembered, so n of them cost O(n).
  std::string structural_name(const Scope& scope, const std::string& word) {
    const std::string stem = scope.prefix + word;
    int& k = next_suffix_[stem];
    std::string name = k == 0 ? stem : stem + std::to_string(k);
    while (builder_.find(name) >= 0) name = stem + std::to_string(++k);
    ++k;
    return name;
  }

  int expand_item(const Item& item, Scope& scope, const Environment& env, int input, const std::string& name) {
    switch (item.type) {
      case ItemType::Layer: return expand_layer(item, take_name(scope, name), scope, env, input);
      case ItemType::BlockCall: {
        Scope inner{take_name(scope, name) + ".", 0};
        return expand_items(find_block(item.kind).body, inner, bind(item, env), input);
      }
      case ItemType::Sequential: {
        Scope inner{take_name(scope, name) + ".", 0};
        return expand_items(item.body, inner, env, input);
      }
      case ItemType::Concat: {
        // A named concat opens a scope and names its output; an unnamed one is transparent.
        const std::string node_name = name.empty() ? std::string() : take_name(scope, name);
        Scope named_scope{node_name + ".", 0};
        Scope& inner = name.empty() ? scope : named_scope;
        std::vector<int> branches;
        for (const Item& branch : item.body) branches.push_back(expand_repeated(branch, inner, env, input));
        return builder_.add(name.empty() ? structural_name(scope, "concat") : node_name, std::make_unique<Concat>(),
                            branches, item.where);
      }
      case ItemType::Residual: return expand_residual(item, scope, env, input, name);
      case ItemType::Dense: {
        Scope named_scope{name.empty() ? std::string() : take_name(scope, name) + ".", 0};
        Scope& inner = name.empty() ? scope : named_scope;
        const int body = expand_items(item.body, inner, env, input);
        const std::string node_name = name.empty() ? structural_name(scope, "concat") : inner.prefix + "concat";
        return builder_.add(node_name, std::make_unique<Concat>(), {input, body}, item.where);
      }
    }
    return input;
  }

  int expand_residual(const Item& item, Scope& scope, const Environment& env, int input, const std::string& name) {
    Scope named_scope{name.empty() ? std::string() : take_name(scope, name) + ".", 0};
    Scope& inner = name.empty() ? scope : named_scope;
    const int body = expand_items(item.body, inner, env, input);
    int shortcut = input;
    if (builder_.shape(body) != builder_.shape(input)) {
      if (!item.has_shortcut) {
        throw ShapeError(item.where.str() + ": residual: the body gives " + builder_.shape(body).volume_string() +
                         " but its input is " + builder_.shape(input).volume_string() +
                         "; the add needs equal shapes: add a 'shortcut' section (e.g. a 1x1 conv with the new "
                         "depth and stride) or make the body keep the shape");
      }
      Scope shortcut_scope{item.shortcut_name.empty() ? std::string() : take_name(inner, item.shortcut_name) + ".", 0};
      shortcut = expand_items(item.shortcut, item.shortcut_name.empty() ? inner : shortcut_scope, env, input);
    }
    const std::string node_name = name.empty() ? structural_name(scope, "add") : inner.prefix + "add";
    return builder_.add(node_name, std::make_unique<Add>(), {body, shortcut}, item.where);
  }

  int expand_layer(const Item& item, const std::string& name, const Scope& scope, const Environment& env, int input) {
    const LayerKind* kind = builtin_layers().find(item.kind);
    std::vector<ArgToken> tokens;
    for (const ArgToken& t : item.args) tokens.push_back({model::substitute(t.text, env, t.where), t.where});
    std::vector<int> inputs{input};
    if (kind->takes_input_names) {
      inputs.clear();
      for (const ArgToken& t : tokens) inputs.push_back(resolve(t, scope));
      tokens.clear();
    }
    LayerArgs args(kind->name, kind->usage, std::move(tokens), item.where);
    args.set_default_rounding(rounding_);
    std::unique_ptr<Layer> layer = kind->from_args(args);
    args.finish();
    return builder_.add(name, std::move(layer), inputs, item.where);
  }

  int resolve(const ArgToken& token, const Scope& scope) {
    int id = builder_.find(scope.prefix + token.text);
    if (id < 0) id = builder_.find(token.text);
    if (id < 0) throw SpecError(token.where.str() + ": no tensor named '" + token.text + "' before this line");
    return id;
  }

  const model::BlockDef& find_block(const std::string& name) const {
    const auto it = block_ids_.find(name);
    if (it == block_ids_.end()) throw SpecError("unknown block '" + name + "'");
    return ast_.blocks[it->second];
  }

  // Block parameters: positional, then key=value, then defaults; values as written after $-substitution.
  Environment bind(const Item& call, const Environment& caller) {
    const model::BlockDef& block = find_block(call.kind);
    Environment env;
    for (size_t i = 0; i < call.args.size(); ++i) {
      env[block.params[i].name] = model::substitute(call.args[i].text, caller, call.args[i].where);
    }
    for (const auto& [key, value] : call.keyword_args) env[key] = model::substitute(value.text, caller, value.where);
    for (const model::BlockParam& p : block.params) {
      if (!env.count(p.name) && p.default_value) env[p.name] = p.default_value->text;
    }
    return env;
  }

  const model::ModelAst& ast_;
  NetBuilder builder_;
  Rounding rounding_;
  std::unordered_map<std::string, size_t> block_ids_;  // index into ast_.blocks by name
  std::unordered_map<std::string, int> next_suffix_;   // structural_name's next number per stem
};

}  // namespace

Shape parse_input_option(const std::string& text) {
  Shape shape;
  if (const std::string error = model::dims_error(text, shape); !error.empty()) throw SpecError("--input: " + error);
  return shape;
}

Net build_net(const model::ModelAst& ast, const LoadOptions& options) { return Expander(ast, options).run(); }

Net load_model_text(const std::string& text, const std::string& file, const LoadOptions& options) {
  return build_net(model::parse(text, file), options);
}

std::string read_model_source(const std::string& name_or_path, std::string& file) {
  if (const ZooEntry* entry = find_zoo_model(name_or_path)) {
    file = name_or_path + ".cnet";
    return entry->text;
  }
  file = name_or_path;
  std::error_code ec;
  if (darknet::is_cfg_path(name_or_path) && std::filesystem::is_regular_file(name_or_path, ec)) {
    // A Darknet cfg, translated: its own errors name the cfg's lines, the text's name it "(translated)".
    std::string text = darknet::translate_cfg_file(name_or_path).model_text;
    file = name_or_path + " (translated)";
    return text;
  }
  if (onnx_interop::is_onnx_path(name_or_path) && std::filesystem::is_regular_file(name_or_path, ec)) {
    std::string text = onnx_interop::import_onnx_file(name_or_path).model_text;
    file = name_or_path + " (translated)";
    return text;
  }
  if (!std::filesystem::is_regular_file(name_or_path, ec)) {
    throw IoError("'" + name_or_path + "' is neither a zoo model" + zoo_suggestion(name_or_path) +
                  " nor a model file; 'convnet list' shows the zoo");
  }
  std::ifstream in(name_or_path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in && !in.eof()) throw IoError(name_or_path + ": cannot read the model file");
  return text.str();
}

Net load_model(const std::string& name_or_path, const LoadOptions& options) {
  std::string file;
  const std::string text = read_model_source(name_or_path, file);
  return load_model_text(text, file, options);
}

}  // namespace convnet
