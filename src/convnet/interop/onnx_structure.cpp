// Writing an imported graph as model-language text: dominators find each join's fork, and the
// layers between become the join's structure (residual with or without shortcut, concat, dense).
#include "convnet/interop/onnx_structure.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <unordered_set>

#include "convnet/error.hpp"

namespace convnet::onnx_interop {
namespace {

constexpr int kMaxNesting = 200;  // the model language's nesting limit

class StructureWriter {
 public:
  StructureWriter(const OnnxGraph& g, const ImportedLayers& built,
                  const std::function<std::string(std::string)>& unique_name, std::unordered_map<size_t, int>& lines_of)
      : g_(g), built_(built), unique_name_(unique_name), lines_of_(lines_of) {}

  std::string text(const std::string& output) {
    dominators();
    const std::string stem = std::filesystem::path(g_.file).stem().string();
    std::string dims;
    for (const int64_t d : g_.input_shape) dims += (dims.empty() ? "" : "x") + std::to_string(d);
    lines_ = {"# Translated by convnet import from " + shown(g_.file) + " (ONNX opset " + std::to_string(g_.opset) +
                  "); each line ends with its ONNX operator and node",
              "network " + layer_name(g_.model.graph().name().empty() ? stem : g_.model.graph().name()),
              "input " + layer_name(g_.input) + " " + dims, "round floor"};
    if (output == g_.input) throw SpecError(g_.file + ": the graph computes nothing from its input");
    emit_chain(g_.input, output, 0);
    std::string out;
    for (const std::string& line : lines_) out += line + "\n";
    return out;
  }

 private:
  // Immediate dominators of the data tensors (the input dominates all): the fork of each join.
  void dominators() {
    depth_[g_.input] = 0;
    for (const ImportedLayer& l : built_.layers) {
      std::string d = l.inputs.empty() ? g_.input : l.inputs[0];
      for (size_t i = 1; i < l.inputs.size(); ++i) {
        std::string b = l.inputs[i];
        while (d != b) {
          if (depth_.at(d) >= depth_.at(b)) {
            d = idom_.at(d);
          } else {
            b = idom_.at(b);
          }
        }
      }
      idom_[l.output] = l.merge ? d : (l.inputs.empty() ? g_.input : l.inputs[0]);
      depth_[l.output] = depth_.at(idom_[l.output]) + 1;
    }
    idom_[g_.input] = g_.input;
  }

  // The layers (in order) computing `to` from `from`; a join stands for its whole structure.
  std::vector<int> chain(const std::string& from, const std::string& to) const {
    std::vector<int> seq;
    for (std::string t = to; t != from;) {
      const auto p = built_.producer.find(t);
      if (p == built_.producer.end())
        throw SpecError(g_.file + ": the graph's branches do not nest as convnet's structures do");
      const ImportedLayer& l = built_.layers[static_cast<size_t>(p->second)];
      seq.push_back(p->second);
      t = l.merge ? idom_.at(t) : l.inputs.at(0);
    }
    std::reverse(seq.begin(), seq.end());
    return seq;
  }

  void emit_chain(const std::string& from, const std::string& to, int depth) {
    for (const int i : chain(from, to)) emit(i, depth);
  }

  void emit(int i, int depth) {
    const ImportedLayer& l = built_.layers[static_cast<size_t>(i)];
    if (!emitted_.insert(i).second) {
      throw SpecError(g_.file + ": " + l.comment + " is read by two branches; convnet's structures cannot share it");
    }
    const std::string pad(static_cast<size_t>(2 * depth), ' ');
    if (!l.merge) {
      lines_.push_back(pad + l.name + " " + l.kind + (l.args.empty() ? "" : " " + l.args) + "  # " + l.comment);
      lines_of_[static_cast<size_t>(i)] = static_cast<int>(lines_.size());
      return;
    }
    if (depth >= kMaxNesting)
      throw SpecError(g_.file + ": branches nest more than " + std::to_string(kMaxNesting) + " deep");
    const std::string fork = idom_.at(l.output);
    const std::string a = l.inputs[0], b = l.inputs[1];
    auto open = [&](const std::string& word) {
      lines_.push_back(pad + word + "  # " + l.comment);
      lines_of_[static_cast<size_t>(i)] = static_cast<int>(lines_.size());
    };
    if (l.kind == "add") {
      if (a == fork && b == fork) throw SpecError(g_.file + ": " + l.comment + " adds a tensor to itself");
      if (a == fork || b == fork) {
        open("residual");
        emit_chain(fork, a == fork ? b : a, depth + 1);
      } else {
        if (built_.shapes.at(a) == built_.shapes.at(fork)) {
          throw SpecError(g_.file + ": " + l.comment +
                          " adds two branches that keep their input's shape; convnet's residual computes a shortcut "
                          "branch only where the shape changes");
        }
        open("residual");
        emit_chain(fork, a, depth + 1);
        lines_.push_back(pad + "shortcut");
        emit_chain(fork, b, depth + 1);
      }
    } else if (l.inputs.size() == 2 && a == fork && b != fork) {
      open("dense");
      emit_chain(fork, b, depth + 1);
    } else {
      open("concat");
      for (const std::string& branch : l.inputs) {
        if (branch == fork) {
          throw SpecError(g_.file + ": " + l.comment + " concatenates its fork's tensor other than first of two");
        }
        if (chain(fork, branch).size() == 1) {
          emit_chain(fork, branch, depth + 1);
        } else {
          lines_.push_back(pad + "  " + unique_name_("branch" + std::to_string(++branches_)) + " sequential");
          emit_chain(fork, branch, depth + 2);
          lines_.push_back(pad + "  end");
        }
      }
    }
    lines_.push_back(pad + "end");
  }

  const OnnxGraph& g_;
  const ImportedLayers& built_;
  const std::function<std::string(std::string)>& unique_name_;
  std::unordered_map<size_t, int>& lines_of_;
  std::unordered_map<std::string, std::string> idom_;
  std::unordered_map<std::string, int64_t> depth_;
  std::unordered_set<int> emitted_;
  std::vector<std::string> lines_;
  int branches_ = 0;
};

}  // namespace

// A name of the model language (letters, digits, _ and -, starting with a letter) made from an ONNX one.
std::string layer_name(const std::string& onnx_name) {
  std::string out;
  for (const char c : onnx_name) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
    if (ok || (!out.empty() && out.back() != '_')) out += ok ? c : '_';
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  if (out.empty() || !std::isalpha(static_cast<unsigned char>(out[0]))) out = "n" + out;
  return out.substr(0, 64);
}

// Printable text of at most 60 characters for a comment.
std::string shown(const std::string& text) {
  std::string out;
  for (const char c : text.substr(0, 60)) out += c >= ' ' && c < 127 ? c : '?';
  return out;
}

std::string write_model_text(const OnnxGraph& g, const ImportedLayers& built, const std::string& output,
                             const std::function<std::string(std::string)>& unique_name,
                             std::unordered_map<size_t, int>& lines_of) {
  return StructureWriter(g, built, unique_name, lines_of).text(output);
}

}  // namespace convnet::onnx_interop
