// Prints a parsed model back in the model language, two spaces of indentation per level.
#include <sstream>

#include "convnet/model/ast.hpp"

namespace convnet::model {
namespace {

void print_items(std::ostringstream& out, const std::vector<Item>& items, int depth);

std::string named(const std::string& name, const std::string& rest) { return name.empty() ? rest : name + " " + rest; }

void print_item(std::ostringstream& out, const Item& item, int depth) {
  const std::string indent(static_cast<size_t>(depth) * 2, ' ');
  std::string line = item.kind;
  if (item.type == ItemType::BlockCall) {
    line += "(";
    bool first = true;
    for (const ArgToken& a : item.args) line += (first ? "" : ", ") + a.text, first = false;
    for (const auto& [key, value] : item.keyword_args) line += (first ? "" : ", ") + key + "=" + value.text, first = false;
    line += ")";
  } else {
    for (const ArgToken& a : item.args) line += " " + a.text;
  }
  // "x1" is written when the arguments would otherwise end like a repetition ("... x3", "... x3 as
  // name"): found by fuzz_model, "pad x0213200 x1" printed without its x1 no longer parsed.
  const size_t n = item.args.size();
  const bool ends_like_repeat =
      item.type != ItemType::BlockCall && n > 0 &&
      (is_repetition_word(item.args[n - 1].text) || (n >= 3 && item.args[n - 2].text == "as" && is_repetition_word(item.args[n - 3].text)));
  if (item.repeat != 1 || !item.repeat_as.empty() || ends_like_repeat) line += " x" + std::to_string(item.repeat);
  if (!item.repeat_as.empty()) line += " as " + item.repeat_as;
  out << indent << named(item.name, line) << "\n";
  if (item.type == ItemType::Layer || item.type == ItemType::BlockCall) return;
  print_items(out, item.body, depth + 1);
  if (item.has_shortcut) {
    out << indent << named(item.shortcut_name, "shortcut") << "\n";
    print_items(out, item.shortcut, depth + 1);
  }
  out << indent << "end\n";
}

void print_items(std::ostringstream& out, const std::vector<Item>& items, int depth) {
  for (const Item& item : items) print_item(out, item, depth);
}

}  // namespace

std::string print(const ModelAst& model) {
  std::ostringstream out;
  out << "network " << model.name << "\n";
  for (const InputDecl& input : model.inputs) {
    out << "input " << (input.name == "input" ? "" : input.name + " ") << input.shape.chw_string() << "\n";
  }
  if (model.rounding) out << "round " << rounding_name(*model.rounding) << "\n";
  for (const BlockDef& block : model.blocks) {
    out << "\nblock " << block.name << "(";
    for (size_t i = 0; i < block.params.size(); ++i) {
      out << (i ? ", " : "") << block.params[i].name;
      if (block.params[i].default_value) out << "=" << block.params[i].default_value->text;
    }
    out << ")\n";
    print_items(out, block.body, 1);
    out << "end\n";
  }
  out << "\n";
  print_items(out, model.items, 0);
  return out.str();
}

}  // namespace convnet::model
