// ONNX import: each operator becomes a model-language layer (PyTorch's flattening chains of
// Shape/Gather/Unsqueeze/Concat/Reshape evaluated to a flatten, MatMul + Add to one fc), and the
// graph's forks and joins become residual, concat and dense structures found with dominators.
#include <algorithm>
#include <charconv>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "convnet/checked.hpp"
#include "convnet/error.hpp"
#include "convnet/interop/onnx.hpp"
#include "convnet/interop/onnx_graph.hpp"
#include "convnet/interop/onnx_structure.hpp"
#include "convnet/model/model.hpp"

namespace convnet::onnx_interop {
namespace {

constexpr int64_t kBatch = INT64_MIN;  // the batch dimension inside an evaluated shape

// The operators convnet imports (Shape, Gather, Unsqueeze, Cast only where they compute a flatten).
const std::unordered_set<std::string> kOperators{
    "Conv",     "MaxPool",           "AveragePool", "GlobalAveragePool", "Gemm",      "MatMul", "Add",     "Concat",
    "Relu",     "Sigmoid",           "Tanh",        "LeakyRelu",         "Elu",       "LRN",    "Dropout", "Softmax",
    "Identity", "Flatten",           "Reshape",     "Squeeze",           "Unsqueeze", "Shape",  "Gather",  "Cast",
    "Pad",      "BatchNormalization"};

std::string number(double value) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, static_cast<float>(value));
  return std::string(buffer, result.ptr);
}

std::string pair(int64_t h, int64_t w) {
  return h == w ? std::to_string(h) : std::to_string(h) + "x" + std::to_string(w);
}

class Translator {
 public:
  Translator(const OnnxGraph& g, const QdqFold& fold) : g_(g) {
    aliases_.insert(fold.aliases.begin(), fold.aliases.end());  // a dequantized activation is itself
    built_.shapes[g.input] = g.input_shape;
    for (const onnx::NodeProto* n : g.nodes) {
      for (const std::string& in : n->input()) ++readers_[in];
    }
  }

  std::string run() {
    for (const onnx::NodeProto* n : g_.nodes) {
      if ((!n->domain().empty() && n->domain() != "ai.onnx") || !kOperators.count(n->op_type())) unsupported(*n);
    }
    if (!unsupported_.empty()) {
      std::string list;
      for (const auto& [op, names] : unsupported_) list += (list.empty() ? "" : "; ") + op + " (" + names + ")";
      throw SpecError(g_.file + ": operators convnet does not import: " + list);
    }
    for (const onnx::NodeProto* n : g_.nodes) translate(*n);
    const std::string output = resolve(g_.output);
    if (!built_.shapes.count(output))
      throw SpecError(g_.file + ": the graph output '" + g_.output + "' is not a tensor convnet computes");
    return write_model_text(
        g_, built_, output, [this](std::string name) { return unique_name(std::move(name)); }, lines_of_);
  }

  [[nodiscard]] SafetensorsContent weights(const Net& net) const {
    SafetensorsContent content;
    std::unordered_map<int, const ImportedLayer*> by_line;
    for (size_t i = 0; i < built_.layers.size(); ++i) {
      if (lines_of_.count(i)) by_line[lines_of_.at(i)] = &built_.layers[i];
    }
    std::unordered_set<int> built;
    for (const Node& node : net.nodes()) {
      const auto it = by_line.find(node.where.line);
      if (it == by_line.end() || it->second->merge) continue;
      built.insert(node.where.line);
      for (const auto& [suffix, tensor] : it->second->params) content.tensors.emplace(node.name + "." + suffix, tensor);
    }
    for (const auto& [line, layer] : by_line) {
      if (!layer->merge && !built.count(line)) {
        throw SpecError(g_.file + ": " + layer->comment + " is not part of the translated network (line " +
                        std::to_string(line) + ")");
      }
    }
    return content;
  }

  /// Per node of `net` (built from run()'s text): the range of the tensor it computes where the file
  /// quantizes it; NaN elsewhere (an int8 plan that needs one of those refuses to compile).
  [[nodiscard]] std::vector<ActivationRange> ranges(const Net& net,
                                                    const std::map<std::string, ActivationRange>& quantized) const {
    std::optional<ActivationRange> input;
    std::unordered_map<int, ActivationRange> by_line;
    for (const auto& [tensor, range] : quantized) {
      const std::string t = resolve(tensor);
      const auto p = built_.producer.find(t);
      if (t == g_.input) {
        input = range;
      } else if (p != built_.producer.end() && lines_of_.count(static_cast<size_t>(p->second))) {
        by_line[lines_of_.at(static_cast<size_t>(p->second))] = range;
      } else {
        throw SpecError(g_.file + ": the quantized tensor '" + shown(tensor) +
                        "' is not one the translated network computes");
      }
    }
    constexpr float kUnknown = std::numeric_limits<float>::quiet_NaN();
    std::vector<ActivationRange> out(net.nodes().size(), ActivationRange{kUnknown, kUnknown});
    for (size_t i = 0; i < out.size(); ++i) {
      const Node& node = net.node(static_cast<int>(i));
      if (node.inputs.empty() && input) out[i] = *input;
      if (const auto it = by_line.find(node.where.line); !node.inputs.empty() && it != by_line.end())
        out[i] = it->second;
    }
    return out;
  }

 private:
  [[noreturn]] void fail(const onnx::NodeProto& n, const std::string& why) const {
    throw SpecError(g_.file + ": " + OnnxGraph::describe(n) + ": " + why);
  }

  std::string resolve(std::string t) const {
    for (auto it = aliases_.find(t); it != aliases_.end(); it = aliases_.find(t)) t = it->second;
    return t;
  }

  const Constant& constant(const onnx::NodeProto& n, int i) const {
    const auto it = i < n.input_size() ? g_.constants.find(n.input(i)) : g_.constants.end();
    if (it == g_.constants.end()) fail(n, "input " + std::to_string(i + 1) + " must be an initializer or a constant");
    return it->second;
  }

  const std::vector<int64_t>& shape_of(const onnx::NodeProto& n, int i = 0) const {
    const auto it = i < n.input_size() ? built_.shapes.find(resolve(n.input(i))) : built_.shapes.end();
    if (it == built_.shapes.end())
      fail(n, "input " + std::to_string(i + 1) + " is not a tensor computed from the network input");
    return it->second;
  }

  // An evaluated int64 value (a shape, indices): a constant or a folded Shape/Gather/... chain.
  const std::vector<int64_t>* ints(const std::string& t) {
    if (const auto it = ints_.find(t); it != ints_.end()) return &it->second;
    const auto c = g_.constants.find(t);
    return c == g_.constants.end() || !c->second.integer ? nullptr : &c->second.integers;
  }

  static StoredTensor stored(const std::vector<int64_t>& dims, std::vector<float> values) {
    return {"F32", dims, std::move(values)};
  }

  ImportedLayer& add_layer(const onnx::NodeProto& n, const std::string& kind, std::string args,
                           std::vector<int64_t> out_shape, const std::string& param_name = "") {
    ImportedLayer l;
    std::string base = param_name.empty() ? (n.name().empty() ? n.output(0) : n.name()) : param_name;
    if (const size_t slash = base.rfind('/'); param_name.empty() && slash != std::string::npos && slash > 0 &&
                                              base.compare(slash + 1, n.op_type().size(), n.op_type()) == 0) {
      // PyTorch's "/branch/branch.1/LeakyRelu": the module's path is the part before the operator.
      const size_t start = base.rfind('/', slash - 1);
      base =
          base.substr(start == std::string::npos ? 0 : start + 1, slash - (start == std::string::npos ? 0 : start + 1));
    }
    if (base.ends_with(".weight")) base.resize(base.size() - 7);
    l.name = layer_name(base);
    l.name = unique_name(layer_name(base));
    l.kind = kind;
    l.args = std::move(args);
    l.comment = n.op_type() + " " + shown(n.name().empty() ? n.output(0) : n.name());
    for (int i = 0; i < n.input_size(); ++i) {
      if (built_.shapes.count(resolve(n.input(i)))) l.inputs.push_back(resolve(n.input(i)));
    }
    l.output = n.output(0);
    built_.shapes[l.output] = std::move(out_shape);
    built_.producer[l.output] = static_cast<int>(built_.layers.size());
    built_.layers.push_back(std::move(l));
    return built_.layers.back();
  }

  // A name no other layer has, that is not a word of the language or a structure's own name (add1).
  std::string unique_name(std::string name) {
    static const std::unordered_set<std::string> kWords{"network",    "input",    "round",    "block",  "end",
                                                        "sequential", "residual", "shortcut", "concat", "dense"};
    if (kWords.count(name) || name.starts_with("add") || name.starts_with("concat")) name += "_";
    std::string unique = name;
    for (int k = 2; !used_names_.insert(unique).second; ++k) unique = name + "_" + std::to_string(k);
    return unique;
  }

  void unsupported(const onnx::NodeProto& n) {
    std::string& names = unsupported_[n.op_type()];
    names += (names.empty() ? "" : ", ") + shown(n.name().empty() ? n.output(0) : n.name());
  }

  // Whether `n` only computes on evaluated int64 values: then its result is evaluated too.
  bool evaluate(const onnx::NodeProto& n) {
    const std::string& op = n.op_type();
    if (n.input_size() == 0) return false;
    if (op == "Shape" && built_.shapes.count(resolve(n.input(0)))) {
      std::vector<int64_t> v{kBatch};
      for (const int64_t d : built_.shapes.at(resolve(n.input(0)))) v.push_back(d);
      ints_[n.output(0)] = v;
      return true;
    }
    const std::vector<int64_t>* in = ints(n.input(0));
    if (in == nullptr) return false;
    if (op == "Gather" && n.input_size() == 2 && ints(n.input(1)) && int_attribute(g_, n, "axis", 0) == 0) {
      std::vector<int64_t> out;
      for (int64_t i : *ints(n.input(1))) {
        if (i < 0) i += static_cast<int64_t>(in->size());
        if (i < 0 || i >= static_cast<int64_t>(in->size())) fail(n, "index " + std::to_string(i) + " is out of range");
        out.push_back((*in)[static_cast<size_t>(i)]);
      }
      ints_[n.output(0)] = out;
      return true;
    }
    if (op == "Unsqueeze" || op == "Squeeze" || op == "Cast" || op == "Identity") {
      ints_[n.output(0)] = *in;
      return true;
    }
    if (op == "Concat") {
      std::vector<int64_t> out;
      for (const std::string& t : n.input()) {
        const std::vector<int64_t>* part = ints(t);
        if (part == nullptr) return false;
        out.insert(out.end(), part->begin(), part->end());
      }
      ints_[n.output(0)] = out;
      return true;
    }
    return false;
  }

  void translate(const onnx::NodeProto& n) {
    if (evaluate(n)) return;
    const std::string& op = n.op_type();
    if (op == "Shape" || op == "Gather" || op == "Unsqueeze" || op == "Cast") {
      fail(n, "convnet imports shape computations only where they compute a flatten's shape");
    }
    if (op == "Conv") return conv(n);
    if (op == "MaxPool" || op == "AveragePool") return pool(n);
    if (op == "Gemm" || op == "MatMul") return linear(n);
    if (op == "Add" || op == "Concat") return merge(n);
    if (op == "BatchNormalization") return batch_norm(n);
    const std::vector<int64_t>& in = shape_of(n);
    if (op == "Identity") {
      aliases_[n.output(0)] = resolve(n.input(0));
    } else if (op == "Relu" || op == "Sigmoid" || op == "Tanh") {
      add_layer(n, op == "Relu" ? "relu" : op == "Sigmoid" ? "sigmoid" : "tanh", "", in);
    } else if (op == "LeakyRelu") {
      add_layer(n, "leakyrelu", "slope " + number(float_attribute(g_, n, "alpha", 0.01)), in);
    } else if (op == "Elu") {
      add_layer(n, "elu", "alpha " + number(float_attribute(g_, n, "alpha", 1.0)), in);
    } else if (op == "GlobalAveragePool") {
      if (in.size() != 3) fail(n, "needs a (C, H, W) volume");
      add_layer(n, "globalavgpool", "", {in[0], 1, 1});
    } else if (op == "LRN") {
      const int64_t size = int_attribute(g_, n, "size", 0);
      if (size <= 0 || size % 2 == 0) {
        fail(n, "size " + std::to_string(size) +
                    ": convnet's LRN (PyTorch's) centres its window as ONNX does only for odd sizes");
      }
      add_layer(n, "lrn",
                "size " + std::to_string(size) + " alpha " + number(float_attribute(g_, n, "alpha", 1e-4)) + " beta " +
                    number(float_attribute(g_, n, "beta", 0.75)) + " k " + number(float_attribute(g_, n, "bias", 1.0)),
                in);
    } else if (op == "Dropout") {
      double p = float_attribute(g_, n, "ratio", 0.5);
      if (n.input_size() > 1 && !n.input(1).empty()) {
        const Constant& ratio = constant(n, 1);
        if (ratio.values.size() != 1) fail(n, "the ratio must be one value");
        p = ratio.values[0];
      }
      add_layer(n, "dropout", "p " + number(p), in);
    } else if (op == "Softmax") {
      const int64_t axis = int_attribute(g_, n, "axis", g_.opset >= 13 ? -1 : 1);
      const bool channels = in.size() == 1 ? (axis == 1 || axis == -1) : g_.opset >= 13 && (axis == 1 || axis == -3);
      if (!channels) fail(n, "axis " + std::to_string(axis) + ": convnet's softmax normalises over dimension 1 only");
      add_layer(n, "softmax", "", in);
    } else if (op == "Pad") {
      const std::vector<int64_t>* pads = n.input_size() > 1 ? ints(n.input(1)) : nullptr;
      const std::vector<int64_t> zeros = pads ? *pads : ints_attribute(g_, n, "pads", {1});
      if (std::any_of(zeros.begin(), zeros.end(), [](int64_t p) { return p != 0; })) {
        fail(n, "padding as an operator of its own is not supported (only pads of zeros, which change nothing)");
      }
      aliases_[n.output(0)] = resolve(n.input(0));
    } else if (op == "Flatten" || op == "Reshape" || op == "Squeeze") {
      flatten(n, in);
    }
  }

  // Flatten(axis 1), Reshape to (batch, -1) and Squeeze of a 1x1 volume: convnet's flatten.
  void flatten(const onnx::NodeProto& n, const std::vector<int64_t>& in) {
    const int64_t numel = checked_product(in, "a volume's size");
    bool ok = n.op_type() == "Flatten" ? int_attribute(g_, n, "axis", 1) == 1 : false;
    if (n.op_type() == "Reshape") {
      const std::vector<int64_t>* target = n.input_size() == 2 ? ints(n.input(1)) : nullptr;
      if (target == nullptr) fail(n, "its shape is neither a constant nor computed from the input's shape");
      ok = target->size() == 2 && ((*target)[0] == kBatch || (*target)[0] == 0 || (*target)[0] == -1) &&
           ((*target)[1] == -1 || (*target)[1] == numel) && !((*target)[0] == -1 && (*target)[1] == -1);
    }
    if (n.op_type() == "Squeeze") ok = in.size() == 3 && in[1] == 1 && in[2] == 1;
    if (!ok) fail(n, "convnet imports reshapes that flatten each image to a vector (batch, features) only");
    if (in.size() == 1) {
      aliases_[n.output(0)] = resolve(n.input(0));
    } else {
      add_layer(n, "flatten", "", {numel});
    }
  }

  // Two values each, from 1 to 2^30.
  void check_window(const onnx::NodeProto& n, const std::vector<int64_t>& kernel, const std::vector<int64_t>& strides,
                    const std::vector<int64_t>& dilations) const {
    for (const std::vector<int64_t>* v : {&kernel, &strides, &dilations}) {
      if (v->size() != 2 || std::any_of(v->begin(), v->end(), [](int64_t x) { return x < 1 || x > (1 << 30); })) {
        fail(n, "needs two-dimensional kernel_shape, strides and dilations from 1 to 2^30");
      }
    }
  }

  // Begin and end pads of each axis, from pads or auto_pad (SAME_UPPER puts the odd one at the end).
  std::vector<int64_t> window_pads(const onnx::NodeProto& n, const std::vector<int64_t>& in,
                                   const std::vector<int64_t>& kernel, const std::vector<int64_t>& strides,
                                   const std::vector<int64_t>& dilations) const {
    const std::string auto_pad = string_attribute(g_, n, "auto_pad", "NOTSET");
    if (auto_pad == "NOTSET") {
      std::vector<int64_t> pads = ints_attribute(g_, n, "pads", {0, 0, 0, 0});
      if (pads.size() != 4 || std::any_of(pads.begin(), pads.end(), [](int64_t p) { return p < 0 || p > (1 << 30); })) {
        fail(n, "pads must be 4 values from 0 (top, left, bottom, right)");
      }
      return pads;
    }
    if (auto_pad == "VALID") return {0, 0, 0, 0};
    if (auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER") fail(n, "auto_pad " + shown(auto_pad) + " is unknown");
    std::vector<int64_t> pads(4);
    for (size_t a = 0; a < 2; ++a) {
      const int64_t out = (in[a + 1] + strides[a] - 1) / strides[a];
      const int64_t total =
          std::max<int64_t>((out - 1) * strides[a] + dilations[a] * (kernel[a] - 1) + 1 - in[a + 1], 0);
      pads[a] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      pads[a + 2] = total - pads[a];
    }
    return pads;
  }

  // The window's arguments after the kernel, and the output's height and width.
  std::string window_args(const onnx::NodeProto& n, const std::vector<int64_t>& in, const std::vector<int64_t>& kernel,
                          const std::vector<int64_t>& strides, const std::vector<int64_t>& dilations,
                          const std::vector<int64_t>& pads, bool ceil, std::vector<int64_t>& out,
                          bool conv = false) const {
    for (size_t a = 0; a < 2; ++a) {
      const int64_t span = in[a + 1] + pads[a] + pads[a + 2] - dilations[a] * (kernel[a] - 1) - 1;
      if (span < 0) fail(n, "its window does not fit the input");
      out.push_back((ceil ? (span + strides[a] - 1) / strides[a] : span / strides[a]) + 1);
    }
    std::string args = conv && strides == std::vector<int64_t>{1, 1} ? "" : " stride " + pair(strides[0], strides[1]);
    if (pads[0] != 0 || pads[1] != 0) args += " pad " + pair(pads[0], pads[1]);
    if (pads[2] != pads[0] || pads[3] != pads[1]) args += " pad_end " + pair(pads[2], pads[3]);
    if (dilations[0] != 1 || dilations[1] != 1) args += " dilation " + pair(dilations[0], dilations[1]);
    if (ceil) args += " round ceil";
    return args;
  }

  void conv(const onnx::NodeProto& n) {
    const std::vector<int64_t>& in = shape_of(n);
    const Constant& w = constant(n, 1);
    if (in.size() != 3 || w.dims.size() != 4)
      fail(n, "convnet imports two-dimensional convolutions of a (C, H, W) volume");
    const int64_t groups = int_attribute(g_, n, "group", 1);
    if (groups < 1 || groups > in[0] || w.dims[1] * groups != in[0] || w.dims[0] % groups != 0) {
      fail(n, "weight " + std::to_string(w.dims[1]) + " input channels per group x group " + std::to_string(groups) +
                  " do not match the input's " + std::to_string(in[0]) + " channels");
    }
    const std::vector<int64_t> kernel{w.dims[2], w.dims[3]};
    if (ints_attribute(g_, n, "kernel_shape", kernel) != kernel) fail(n, "kernel_shape differs from the weight's");
    const std::vector<int64_t> strides = ints_attribute(g_, n, "strides", {1, 1});
    const std::vector<int64_t> dilations = ints_attribute(g_, n, "dilations", {1, 1});
    check_window(n, kernel, strides, dilations);
    std::vector<int64_t> out{w.dims[0]};
    std::string args = std::to_string(w.dims[0]) + " " + std::to_string(kernel[0]) + "x" + std::to_string(kernel[1]) +
                       window_args(n, in, kernel, strides, dilations, window_pads(n, in, kernel, strides, dilations),
                                   false, out, true);
    if (groups != 1) args += " groups " + std::to_string(groups);
    const bool bias = n.input_size() > 2 && !n.input(2).empty();
    if (!bias) args += " bias false";
    ImportedLayer& l = add_layer(n, "conv", args, out, n.input(1));
    l.params.emplace_back("weight", stored(w.dims, {w.values.begin(), w.values.end()}));
    if (bias) {
      const Constant& b = constant(n, 2);
      if (b.values.size() != static_cast<size_t>(w.dims[0]))
        fail(n, "the bias does not have one value per output channel");
      l.params.emplace_back("bias", stored({w.dims[0]}, {b.values.begin(), b.values.end()}));
    }
  }

  void pool(const onnx::NodeProto& n) {
    const std::vector<int64_t>& in = shape_of(n);
    if (in.size() != 3) fail(n, "needs a (C, H, W) volume");
    const bool max = n.op_type() == "MaxPool";
    const std::vector<int64_t> kernel = ints_attribute(g_, n, "kernel_shape", {});
    const std::vector<int64_t> strides = ints_attribute(g_, n, "strides", {1, 1});
    const std::vector<int64_t> dilations = ints_attribute(g_, n, "dilations", {1, 1});
    if (dilations != std::vector<int64_t>{1, 1}) fail(n, "convnet's pooling has no dilation");
    check_window(n, kernel, strides, dilations);
    if (n.output_size() > 1 && !n.output(1).empty()) fail(n, "the Indices output is not supported");
    bool ceil = int_attribute(g_, n, "ceil_mode", 0) != 0;
    std::vector<int64_t> pads = window_pads(n, in, kernel, strides, dilations);
    std::vector<int64_t> out{in[0]};
    std::string args = window_args(n, in, kernel, strides, dilations, pads, ceil, out);
    if (!max && pads[0] == 0 && pads[1] == 0 && (pads[2] != 0 || pads[3] != 0) && !ceil &&
        int_attribute(g_, n, "count_include_pad", 0) == 0) {
      // End padding that is not counted: the windows convnet's ceil rounding clips to the input.
      std::vector<int64_t> rounded{in[0]};
      const std::string ceil_args = window_args(n, in, kernel, strides, dilations, {0, 0, 0, 0}, true, rounded);
      if (rounded != out) fail(n, "its uncounted end padding reaches past the windows of convnet's ceil rounding");
      args = ceil_args;
      pads = {0, 0, 0, 0};
      ceil = true;
    }
    for (size_t a = 0; ceil && a < 2; ++a) {  // PyTorch's rule, which convnet's ceil rounding follows
      if ((out[a + 1] - 1) * strides[a] >= in[a + 1] + pads[a]) {
        fail(n, "ceil_mode makes its last window start in the padding, where convnet (and PyTorch) drop it");
      }
    }
    if (!max) {
      const bool padded = std::any_of(pads.begin(), pads.end(), [](int64_t p) { return p != 0; });
      if (padded && (pads[0] != pads[2] || pads[1] != pads[3]))
        fail(n, "convnet's average pooling pads every side alike");
      if (padded && int_attribute(g_, n, "count_include_pad", 0) == 0) {
        fail(n, "count_include_pad=0 with padding: convnet's average (PyTorch's default) counts the padding");
      }
    }
    add_layer(n, max ? "maxpool" : "avgpool", std::to_string(kernel.at(0)) + "x" + std::to_string(kernel.at(1)) + args,
              out);
  }

  void linear(const onnx::NodeProto& n) {
    const std::vector<int64_t>& in = shape_of(n);
    const Constant& b = constant(n, 1);
    const bool gemm = n.op_type() == "Gemm";
    const bool trans_b = gemm && int_attribute(g_, n, "transB", 0) != 0;
    if (b.dims.size() != 2 || (gemm && int_attribute(g_, n, "transA", 0) != 0)) {
      fail(n, "convnet imports x times a constant two-dimensional weight only");
    }
    const int64_t features = checked_product(in, "the input's size");
    const int64_t k = trans_b ? b.dims[1] : b.dims[0], outputs = trans_b ? b.dims[0] : b.dims[1];
    if (k != features)
      fail(n, "the weight takes " + std::to_string(k) + " features, the input has " + std::to_string(features));
    const double alpha = gemm ? float_attribute(g_, n, "alpha", 1.0) : 1.0;
    std::vector<float> weight(b.values.size());
    for (int64_t o = 0; o < outputs; ++o) {
      for (int64_t i = 0; i < k; ++i) {
        const size_t from = static_cast<size_t>(trans_b ? o * k + i : i * outputs + o);
        weight[static_cast<size_t>(o * k + i)] = static_cast<float>(alpha * b.values[from]);
      }
    }
    const bool bias = gemm && n.input_size() > 2 && !n.input(2).empty();
    ImportedLayer& l = add_layer(n, "fc", std::to_string(outputs), {outputs}, n.input(1));
    l.params.emplace_back("weight", stored({outputs, k}, std::move(weight)));
    if (bias) {
      l.params.emplace_back("bias", bias_values(n, constant(n, 2), outputs, float_attribute(g_, n, "beta", 1.0)));
    } else {
      l.args += " bias false";
      l.bias_free = true;
    }
  }

  StoredTensor bias_values(const onnx::NodeProto& n, const Constant& c, int64_t outputs, double scale) const {
    if (c.values.size() != 1 && c.values.size() != static_cast<size_t>(outputs)) {
      fail(n,
           "the bias has " + std::to_string(c.values.size()) + " values for " + std::to_string(outputs) + " outputs");
    }
    std::vector<float> v(static_cast<size_t>(outputs));
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(scale * c.values[c.values.size() == 1 ? 0 : i]);
    return stored({outputs}, std::move(v));
  }

  void merge(const onnx::NodeProto& n) {
    const bool add = n.op_type() == "Add";
    if (add && n.input_size() == 2) {
      for (int c = 0; c < 2; ++c) {  // fc + constant: the fc's bias (MatMul + Add)
        const std::string x = resolve(n.input(1 - c));
        const auto p = built_.producer.find(x);
        if (g_.constants.count(n.input(c)) && p != built_.producer.end() &&
            built_.layers[static_cast<size_t>(p->second)].bias_free && readers_[x] == 1) {
          ImportedLayer& fc = built_.layers[static_cast<size_t>(p->second)];
          fc.params.emplace_back("bias", bias_values(n, g_.constants.at(n.input(c)), built_.shapes.at(x)[0], 1.0));
          fc.args.resize(fc.args.size() - std::string(" bias false").size());
          fc.bias_free = false;
          aliases_[n.output(0)] = x;
          return;
        }
      }
    }
    if (n.input_size() != 2 && add) fail(n, "convnet imports Add of two tensors");
    if (n.input_size() < 2) {
      if (n.input_size() == 1) aliases_[n.output(0)] = resolve(n.input(0));
      return;
    }
    std::vector<int64_t> out = shape_of(n, 0);
    for (int i = 1; i < n.input_size(); ++i) {
      const std::vector<int64_t>& s = shape_of(n, i);
      if (add && s != out) fail(n, "adds tensors of different shapes (broadcasting), which convnet does not");
      if (!add) {
        const int64_t axis = int_attribute(g_, n, "axis", 1);
        if ((axis != 1 && axis != 1 - static_cast<int64_t>(out.size()) - 1) || s.size() != out.size() ||
            !std::equal(s.begin() + 1, s.end(), out.begin() + 1)) {
          fail(n, "convnet concatenates along dimension 1 (channels) tensors of equal other dimensions only");
        }
        out[0] += s[0];
      }
    }
    ImportedLayer& l = add_layer(n, add ? "add" : "concat", "", out);
    l.merge = true;
    if (!add) dense_prefix(l);
  }

  // PyTorch's DenseNet concatenates the block's whole list anew in each layer: Concat(x, f1, .., fk)
  // after Concat(x, f1, .., fk-1) = d. The longest earlier list that starts this one stands for
  // its part, so the join reads Concat(d, fk): convnet's `dense`.
  void dense_prefix(ImportedLayer& l) {
    const std::vector<std::string> full = l.inputs;
    for (size_t length = full.size() - 1; length >= 2; --length) {
      const auto earlier =
          concats_.find(std::vector<std::string>(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(length)));
      if (earlier == concats_.end()) continue;
      std::vector<std::string> shorter{earlier->second};
      shorter.insert(shorter.end(), full.begin() + static_cast<std::ptrdiff_t>(length), full.end());
      l.inputs = shorter;
      break;
    }
    concats_.emplace(full, l.output);
  }

  void batch_norm(const onnx::NodeProto& n) {
    const std::vector<int64_t>& in = shape_of(n);
    if (int_attribute(g_, n, "training_mode", 0) != 0) fail(n, "training_mode=1 is not an inference graph");
    const char* names[] = {"weight", "bias", "running_mean", "running_var"};
    std::vector<std::pair<std::string, StoredTensor>> params;
    for (int i = 1; i <= 4; ++i) {
      const Constant& c = constant(n, i);
      if (c.values.size() != static_cast<size_t>(in[0]))
        fail(n, std::string(names[i - 1]) + " needs one value per channel");
      params.emplace_back(names[i - 1], stored({in[0]}, {c.values.begin(), c.values.end()}));
    }
    const double eps = float_attribute(g_, n, "epsilon", 1e-5);
    if (!(eps > 0)) fail(n, "epsilon must be above 0");
    std::string base = n.input(1);
    ImportedLayer& l = add_layer(n, "batchnorm", "eps " + number(eps), in, base);
    l.params = std::move(params);
  }

  const OnnxGraph& g_;
  ImportedLayers built_;
  std::unordered_map<std::string, std::vector<int64_t>> ints_;  // evaluated int64 values
  std::unordered_map<std::string, std::string> aliases_;        // Identity and folded outputs
  std::unordered_map<std::string, int> readers_;
  std::map<std::vector<std::string>, std::string> concats_;  // a Concat's inputs -> its output
  std::map<std::string, std::string> unsupported_;           // operator -> node names
  std::unordered_set<std::string> used_names_;
  std::unordered_map<size_t, int> lines_of_;  // layer index -> its line (1-based)
};

}  // namespace

Import import_onnx_file(const std::string& path) {
  OnnxGraph g = read_onnx_graph(path);
  const QdqFold fold = fold_quantization(g);
  Translator translator(g, fold);
  Import result;
  result.model_text = translator.run();
  const Net net = load_model_text(result.model_text, path + " (translated)");
  result.weights = translator.weights(net);
  if (!fold.ranges.empty()) result.ranges = translator.ranges(net, fold.ranges);
  for (const onnx::StringStringEntryProto& entry : g.model.metadata_props()) result.metadata[entry.key()] = entry.value();
  return result;
}

bool is_qdq_file(const std::string& path) {
  const OnnxGraph g = read_onnx_graph(path);
  return std::any_of(g.nodes.begin(), g.nodes.end(),
                     [](const onnx::NodeProto* n) { return n->op_type() == "QuantizeLinear"; });
}

void load_onnx_weights(Executor& executor, const std::string& path) {
  load_parameters(import_onnx_file(path).weights, executor, path);
}

}  // namespace convnet::onnx_interop
