// QDQ import: the QuantizeLinear / DequantizeLinear nodes of a quantized ONNX graph taken out before
// translation. Constant int8 weights are dequantized into f32 constants; each quantized activation
// keeps its scale as a range, from which an int8 plan computes the same scale again
// (engine/quantization.hpp): convnet's scheme is symmetric, so every zero point must be 0.
#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <unordered_set>

#include "convnet/engine/quantization.hpp"
#include "convnet/error.hpp"
#include "convnet/interop/onnx_graph.hpp"

namespace convnet::onnx_interop {
namespace {

[[noreturn]] void fail(const OnnxGraph& g, const onnx::NodeProto& n, const std::string& why) {
  throw SpecError(g.file + ": " + OnnxGraph::describe(n) + ": " + why);
}

const Constant& constant_input(const OnnxGraph& g, const onnx::NodeProto& n, int i, const char* what) {
  const auto it = i < n.input_size() ? g.constants.find(n.input(i)) : g.constants.end();
  if (it == g.constants.end()) fail(g, n, std::string("its ") + what + " must be an initializer or a constant");
  return it->second;
}

// A QuantizeLinear's or DequantizeLinear's scale and zero point (absent: uint8 0).
struct Quantization {
  const Constant* scale = nullptr;
  std::vector<double> zero;
  bool is_unsigned = true;
};

Quantization quantization_of(const OnnxGraph& g, const onnx::NodeProto& n) {
  Quantization q;
  q.scale = &constant_input(g, n, 1, "scale");
  if (n.input_size() > 2 && !n.input(2).empty()) {
    const Constant& zero = constant_input(g, n, 2, "zero point");
    if (zero.type != onnx::TensorProto::UINT8 && zero.type != onnx::TensorProto::INT8 &&
        !(n.op_type() == "DequantizeLinear" && zero.type == onnx::TensorProto::INT32)) {
      fail(g, n, "its zero point is neither uint8 nor int8, the types of convnet's int8");
    }
    q.zero = zero.values;
    q.is_unsigned = zero.type == onnx::TensorProto::UINT8;
  }
  if (q.zero.empty()) q.zero.assign(q.scale->values.size(), 0.0);
  if (q.zero.size() != q.scale->values.size()) fail(g, n, "its scale and zero point differ in size");
  for (const double s : q.scale->values) {
    if (!(s > 0) || !std::isfinite(s)) fail(g, n, "its scale must be finite and above 0");
  }
  return q;
}

// The f32 values of DequantizeLinear(x) for a constant x: (x - zero) * scale, per tensor or along `axis`.
Constant dequantized(const OnnxGraph& g, const onnx::NodeProto& n, const Constant& x) {
  const Quantization q = quantization_of(g, n);
  const size_t channels = q.scale->values.size();
  const auto rank = static_cast<int64_t>(x.dims.size());
  int64_t axis = int_attribute(g, n, "axis", 1);
  if (axis < 0) axis += rank;
  int64_t inner = 1;
  if (channels != 1) {
    if (axis < 0 || axis >= rank || x.dims[static_cast<size_t>(axis)] != static_cast<int64_t>(channels)) {
      fail(g, n, std::to_string(channels) + " scales do not match the dimension of its axis");
    }
    for (int64_t d = axis + 1; d < rank; ++d) inner *= x.dims[static_cast<size_t>(d)];
  }
  Constant out;
  out.dims = x.dims;
  out.type = onnx::TensorProto::FLOAT;
  out.values.resize(x.values.size());
  for (size_t i = 0; i < x.values.size(); ++i) {
    const size_t c = channels == 1 ? 0 : (i / static_cast<size_t>(inner)) % channels;
    // In float, as an ONNX runtime computes it.
    out.values[i] =
        static_cast<double>(static_cast<float>(x.values[i] - q.zero[c]) * static_cast<float>(q.scale->values[c]));
  }
  return out;
}

}  // namespace

QdqFold fold_quantization(OnnxGraph& g) {
  QdqFold fold;
  std::unordered_map<std::string, std::vector<const onnx::NodeProto*>> readers;
  for (const onnx::NodeProto* n : g.nodes) {
    for (const std::string& in : n->input()) readers[in].push_back(n);
  }
  auto resolve = [&](const std::string& t) {
    const auto it = fold.aliases.find(t);
    return it == fold.aliases.end() ? t : it->second;
  };
  std::unordered_set<const onnx::NodeProto*> paired;  // DequantizeLinear nodes removed with their QuantizeLinear
  std::vector<const onnx::NodeProto*> kept;
  for (const onnx::NodeProto* n : g.nodes) {
    const std::string& op = n->op_type();
    const bool standard = n->domain().empty() || n->domain() == "ai.onnx";
    if (!standard || (op != "QuantizeLinear" && op != "DequantizeLinear")) {
      kept.push_back(n);
      continue;
    }
    if (n->input_size() < 2 || n->output_size() != 1) fail(g, *n, "needs an input and a scale, and one output");
    if (op == "DequantizeLinear") {
      if (paired.count(n)) continue;
      const auto x = g.constants.find(n->input(0));
      if (x == g.constants.end()) {
        fail(g, *n,
             "dequantizes a computed tensor that no QuantizeLinear produces; convnet imports constant "
             "int8 weights and QuantizeLinear -> DequantizeLinear pairs on activations");
      }
      if (x->second.type != onnx::TensorProto::INT8 && x->second.type != onnx::TensorProto::UINT8 &&
          x->second.type != onnx::TensorProto::INT32) {
        fail(g, *n, "dequantizes a tensor that is not int8, uint8 or int32");
      }
      g.constants[n->output(0)] = dequantized(g, *n, x->second);
      continue;
    }
    // QuantizeLinear of an activation: one scale, zero point 0, read only by matching DequantizeLinear.
    const Quantization q = quantization_of(g, *n);
    if (q.scale->values.size() != 1) {
      fail(g, *n,
           "quantizes an activation with " + std::to_string(q.scale->values.size()) +
               " scales; convnet's int8 has one scale per activation");
    }
    if (q.zero[0] != 0) {
      fail(g, *n,
           "zero point " + std::to_string(static_cast<int64_t>(q.zero[0])) +
               ": convnet's int8 is symmetric (zero point 0), so it cannot take this quantization");
    }
    const auto& users = readers[n->output(0)];
    if (users.empty() || n->output(0) == g.output) fail(g, *n, "its quantized output is not dequantized");
    for (const onnx::NodeProto* r : users) {
      if (r->op_type() != "DequantizeLinear" || r->input(0) != n->output(0)) {
        fail(g, *n,
             "its quantized output is read by " + OnnxGraph::describe(*r) +
                 "; convnet imports QuantizeLinear only directly followed by DequantizeLinear");
      }
      const Quantization d = quantization_of(g, *r);
      if (d.scale->values != q.scale->values || d.zero != q.zero || d.is_unsigned != q.is_unsigned) {
        fail(g, *r, "its scale or zero point differs from those of the QuantizeLinear before it");
      }
      paired.insert(r);
      fold.aliases[r->output(0)] = resolve(n->input(0));
    }
    const auto s = static_cast<float>(q.scale->values[0]);
    const ActivationRange range =
        q.is_unsigned ? ActivationRange{0.0F, 255.0F * s} : ActivationRange{-127.0F * s, 127.0F * s};
    if (const std::string problem = range_problem(range); !problem.empty()) {
      fail(g, *n, "its scale gives the range " + problem);
    }
    const auto [it, inserted] = fold.ranges.emplace(resolve(n->input(0)), range);
    if (!inserted && (it->second.min != range.min || it->second.max != range.max)) {
      fail(g, *n, "quantizes " + n->input(0) + " with another scale or type than an earlier QuantizeLinear");
    }
  }
  g.nodes = std::move(kept);
  return fold;
}

}  // namespace convnet::onnx_interop
