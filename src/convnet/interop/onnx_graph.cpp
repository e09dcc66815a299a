// Reading and checking an ONNX file for import: protobuf parsing, the opset, the data input,
// initializers and Constant nodes decoded (their sizes checked against their dims) and the nodes
// put in dependency order, refusing cycles and tensors computed twice or never.
#include "convnet/interop/onnx_graph.hpp"

#include <cstring>
#include <deque>
#include <unordered_map>
#include <unordered_set>

#include "convnet/checked.hpp"
#include "convnet/error.hpp"
#include "convnet/interop/onnx.hpp"
#include "convnet/io/input_file.hpp"

namespace convnet::onnx_interop {
namespace {

constexpr uint64_t kMaxOnnxBytes = (uint64_t{1} << 31) - 1;  // protobuf's limit for one message

template <class T, class Out = double>
std::vector<Out> raw_values(const std::string& raw) {
  std::vector<Out> out(raw.size() / sizeof(T));
  for (size_t i = 0; i < out.size(); ++i) {
    T v;
    std::memcpy(&v, raw.data() + i * sizeof(T), sizeof(T));
    out[i] = static_cast<Out>(v);
  }
  return out;
}

Constant decode_tensor(const onnx::TensorProto& t, const std::string& what, const std::string& file) {
  auto fail = [&](const std::string& why) { throw SpecError(file + ": " + what + ": " + why); };
  if (t.data_location() == onnx::TensorProto::EXTERNAL || t.external_data_size() > 0) {
    fail("its data is in an external file, which convnet does not read; save the model with its data inside");
  }
  Constant c;
  c.type = t.data_type();
  for (const int64_t d : t.dims()) {
    if (d < 0) fail("dimension " + std::to_string(d) + " is negative");
    c.dims.push_back(d);
  }
  const int64_t n = checked_product(c.dims, what + "'s size");
  size_t width = 0;
  int64_t typed = 0;
  switch (t.data_type()) {
    case onnx::TensorProto::FLOAT:
      width = 4, typed = t.float_data_size();
      break;
    case onnx::TensorProto::DOUBLE:
      width = 8, typed = t.double_data_size();
      break;
    case onnx::TensorProto::INT64:
      width = 8, typed = t.int64_data_size(), c.integer = true;
      break;
    case onnx::TensorProto::INT32:
      width = 4, typed = t.int32_data_size(), c.integer = true;
      break;
    case onnx::TensorProto::INT8:
    case onnx::TensorProto::UINT8:  // QDQ weights and zero points (typed data in int32_data)
      width = 1, typed = t.int32_data_size();
      break;
    default:
      fail("data type " + std::to_string(t.data_type()) +
           " is not one convnet reads (float, double, int64, int32, int8, uint8)");
  }
  const bool raw = t.has_raw_data();
  const int64_t held = raw ? static_cast<int64_t>(t.raw_data().size()) : typed;
  const int64_t needed = raw ? checked_mul(n, static_cast<int64_t>(width), what + "'s size") : n;
  if (held != needed) {
    std::string shape;
    for (const int64_t d : c.dims) shape += (shape.empty() ? "" : "x") + std::to_string(d);
    fail("dims " + (shape.empty() ? std::string("() (a scalar)") : shape) + " need " + std::to_string(n) + " values (" +
         std::to_string(needed) + (raw ? " bytes" : " values") + "), but it holds " + std::to_string(held) +
         (raw ? " bytes" : " values"));
  }
  switch (t.data_type()) {
    case onnx::TensorProto::FLOAT:
      c.values =
          raw ? raw_values<float>(t.raw_data()) : std::vector<double>(t.float_data().begin(), t.float_data().end());
      break;
    case onnx::TensorProto::DOUBLE:
      c.values =
          raw ? raw_values<double>(t.raw_data()) : std::vector<double>(t.double_data().begin(), t.double_data().end());
      break;
    case onnx::TensorProto::INT64:
      c.integers = raw ? raw_values<int64_t, int64_t>(t.raw_data())
                       : std::vector<int64_t>(t.int64_data().begin(), t.int64_data().end());
      break;
    case onnx::TensorProto::INT32:
      c.integers = raw ? raw_values<int32_t, int64_t>(t.raw_data())
                       : std::vector<int64_t>(t.int32_data().begin(), t.int32_data().end());
      break;
    case onnx::TensorProto::INT8:
    case onnx::TensorProto::UINT8:
      if (!raw) {
        c.values.assign(t.int32_data().begin(), t.int32_data().end());
      } else {
        c.values =
            c.type == onnx::TensorProto::INT8 ? raw_values<int8_t>(t.raw_data()) : raw_values<uint8_t>(t.raw_data());
      }
      break;
    default:
      break;
  }
  if (c.integer) c.values.assign(c.integers.begin(), c.integers.end());
  return c;
}

const onnx::AttributeProto* find_attribute(const onnx::NodeProto& node, const char* name) {
  for (const onnx::AttributeProto& a : node.attribute()) {
    if (a.name() == name) return &a;
  }
  return nullptr;
}

[[noreturn]] void wrong_type(const OnnxGraph& g, const onnx::NodeProto& node, const char* name, const char* want) {
  throw SpecError(g.file + ": " + OnnxGraph::describe(node) + ": attribute " + name + " is not " + want);
}

// The Constant node's value as a tensor.
Constant constant_value(const OnnxGraph& g, const onnx::NodeProto& node) {
  const std::string what = OnnxGraph::describe(node);
  if (const onnx::AttributeProto* a = find_attribute(node, "value"); a != nullptr && a->has_t()) {
    return decode_tensor(a->t(), what, g.file);
  }
  if (const onnx::AttributeProto* a = find_attribute(node, "value_float")) return {{}, {a->f()}, {}, false};
  if (const onnx::AttributeProto* a = find_attribute(node, "value_int")) {
    return {{}, {static_cast<double>(a->i())}, {a->i()}, true};
  }
  if (const onnx::AttributeProto* a = find_attribute(node, "value_ints")) {
    return {{a->ints_size()},
            std::vector<double>(a->ints().begin(), a->ints().end()),
            std::vector<int64_t>(a->ints().begin(), a->ints().end()),
            true};
  }
  if (const onnx::AttributeProto* a = find_attribute(node, "value_floats")) {
    return {{a->floats_size()}, std::vector<double>(a->floats().begin(), a->floats().end()), {}, false};
  }
  throw SpecError(g.file + ": " + what + ": a Constant without a value convnet reads");
}

void read_opset(OnnxGraph& g) {
  for (const onnx::OperatorSetIdProto& o : g.model.opset_import()) {
    if (o.domain().empty() || o.domain() == "ai.onnx") g.opset = o.version();
  }
  if (g.opset == 0) throw SpecError(g.file + ": the model imports no version of the standard ONNX operators");
  if (g.opset < kMinImportOpset || g.opset > kMaxImportOpset) {
    throw SpecError(g.file + ": opset " + std::to_string(g.opset) + " is not one convnet reads (opsets " +
                    std::to_string(kMinImportOpset) + " to " + std::to_string(kMaxImportOpset) + ")");
  }
}

void read_input_and_output(OnnxGraph& g) {
  const onnx::GraphProto& graph = g.model.graph();
  std::vector<const onnx::ValueInfoProto*> inputs;
  for (const onnx::ValueInfoProto& v : graph.input()) {
    if (!g.constants.count(v.name())) inputs.push_back(&v);  // older exporters list initializers as inputs
  }
  if (inputs.size() != 1) {
    throw SpecError(g.file + ": the graph has " + std::to_string(inputs.size()) +
                    " data inputs; convnet imports networks of one input");
  }
  g.input = inputs[0]->name();
  const onnx::TypeProto& type = inputs[0]->type();
  const int rank = type.has_tensor_type() && type.tensor_type().has_shape() ? type.tensor_type().shape().dim_size() : 0;
  if (rank != 2 && rank != 4) {
    throw SpecError(g.file + ": input '" + g.input + "' must be (batch, C, H, W) or (batch, features); its rank is " +
                    std::to_string(rank));
  }
  for (int i = 1; i < rank; ++i) {
    const onnx::TensorShapeProto_Dimension& d = type.tensor_type().shape().dim(i);
    if (!d.has_dim_value() || d.dim_value() <= 0) {
      throw SpecError(g.file + ": input '" + g.input + "': dimension " + std::to_string(i) +
                      " has no fixed size; convnet needs C, H and W (only the batch may vary)");
    }
    g.input_shape.push_back(d.dim_value());
  }
  if (graph.output_size() != 1) {
    throw SpecError(g.file + ": the graph has " + std::to_string(graph.output_size()) +
                    " outputs; convnet imports networks of one output");
  }
  g.output = graph.output(0).name();
}

// A node evaluated while reading: a Constant, or an Identity of a constant (PyTorch's exporter
// writes those for parameters it deduplicates, such as VGG's and DenseNet's classifier weights).
bool folded(const OnnxGraph& g, const onnx::NodeProto& n) {
  return n.op_type() == "Constant" ||
         (n.op_type() == "Identity" && n.output_size() == 1 && g.constants.count(n.output(0)) > 0);
}

// Orders the nodes so that every tensor is computed before it is read (Kahn's algorithm).
void order_nodes(OnnxGraph& g) {
  const onnx::GraphProto& graph = g.model.graph();
  std::unordered_map<std::string, int> producer;
  for (int i = 0; i < graph.node_size(); ++i) {
    const onnx::NodeProto& n = graph.node(i);
    if (folded(g, n)) continue;
    for (const std::string& out : n.output()) {
      if (out.empty()) continue;
      if (out == g.input || g.constants.count(out)) {
        throw SpecError(g.file + ": " + OnnxGraph::describe(n) + " computes '" + out +
                        "', which is already an input or a constant");
      }
      if (const auto [it, fresh] = producer.emplace(out, i); !fresh) {
        throw SpecError(g.file + ": '" + out + "' is computed by both " + OnnxGraph::describe(graph.node(it->second)) +
                        " and " + OnnxGraph::describe(n));
      }
    }
  }
  std::vector<int> waiting(static_cast<size_t>(graph.node_size()), 0);
  std::unordered_map<std::string, std::vector<int>> readers;
  std::deque<int> ready;
  for (int i = 0; i < graph.node_size(); ++i) {
    const onnx::NodeProto& n = graph.node(i);
    if (folded(g, n)) continue;
    std::unordered_set<std::string> seen;
    for (const std::string& in : n.input()) {
      if (in.empty() || in == g.input || g.constants.count(in) || !seen.insert(in).second) continue;
      if (!producer.count(in)) {
        throw SpecError(g.file + ": " + OnnxGraph::describe(n) + " reads '" + in +
                        "', which is neither the input, an initializer nor computed by a node");
      }
      ++waiting[static_cast<size_t>(i)];
      readers[in].push_back(i);
    }
    if (waiting[static_cast<size_t>(i)] == 0) ready.push_back(i);
  }
  while (!ready.empty()) {
    const int i = ready.front();
    ready.pop_front();
    g.nodes.push_back(&graph.node(i));
    for (const std::string& out : graph.node(i).output()) {
      for (const int r : readers[out]) {
        if (--waiting[static_cast<size_t>(r)] == 0) ready.push_back(r);
      }
    }
  }
  for (int i = 0; i < graph.node_size(); ++i) {
    if (waiting[static_cast<size_t>(i)] > 0) {
      throw SpecError(g.file + ": the graph has a cycle through " + OnnxGraph::describe(graph.node(i)));
    }
  }
  if (g.output != g.input && !producer.count(g.output)) {
    throw SpecError(g.file + ": no node computes the graph output '" + g.output + "'");
  }
}

}  // namespace

std::string OnnxGraph::describe(const onnx::NodeProto& node) {
  const std::string name = !node.name().empty() ? node.name() : node.output_size() > 0 ? node.output(0) : "?";
  return "node " + name + " (" + node.op_type() + ")";
}

OnnxGraph read_onnx_graph(const std::string& path) {
  OnnxGraph g;
  g.file = path;
  {
    const std::vector<uint8_t> bytes = InputFile(path).read_all(kMaxOnnxBytes, "ONNX model");
    if (!g.model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      throw IoError(path + ": not a readable ONNX model (the protobuf data is truncated or corrupted)");
    }
  }
  if (!g.model.has_graph()) throw IoError(path + ": not an ONNX model (it holds no graph)");
  read_opset(g);
  for (const onnx::TensorProto& t : g.model.graph().initializer()) {
    if (!g.constants.emplace(t.name(), decode_tensor(t, "initializer " + t.name(), path)).second) {
      throw SpecError(path + ": initializer " + t.name() + " is given twice");
    }
  }
  for (int i = 0; i < g.model.graph().node_size(); ++i) {  // every operator's first output is required
    const onnx::NodeProto& n = g.model.graph().node(i);
    if (n.output_size() == 0 || n.output(0).empty()) {
      const std::string who =
          n.name().empty() ? "node " + std::to_string(i) + " (" + n.op_type() + ", unnamed)" : OnnxGraph::describe(n);
      throw SpecError(path + ": " + who + " has no output");
    }
  }
  for (const onnx::NodeProto& n : g.model.graph().node()) {
    if (n.op_type() != "Constant") continue;
    if (n.output_size() != 1 || !g.constants.emplace(n.output(0), constant_value(g, n)).second) {
      throw SpecError(path + ": " + OnnxGraph::describe(n) + " must compute one new tensor");
    }
  }
  for (bool added = true; added;) {  // Identity chains over constants, in any order
    added = false;
    for (const onnx::NodeProto& n : g.model.graph().node()) {
      if (n.op_type() != "Identity" || n.input_size() != 1 || n.output_size() != 1) continue;
      const auto from = g.constants.find(n.input(0));
      if (from != g.constants.end() && !g.constants.count(n.output(0))) {
        g.constants.emplace(n.output(0), from->second);
        added = true;
      }
    }
  }
  read_input_and_output(g);
  order_nodes(g);
  return g;
}

int64_t int_attribute(const OnnxGraph& g, const onnx::NodeProto& node, const char* name, int64_t fallback) {
  const onnx::AttributeProto* a = find_attribute(node, name);
  if (a == nullptr) return fallback;
  if (a->type() != onnx::AttributeProto::INT) wrong_type(g, node, name, "an integer");
  return a->i();
}

double float_attribute(const OnnxGraph& g, const onnx::NodeProto& node, const char* name, double fallback) {
  const onnx::AttributeProto* a = find_attribute(node, name);
  if (a == nullptr) return fallback;
  if (a->type() != onnx::AttributeProto::FLOAT) wrong_type(g, node, name, "a float");
  return a->f();
}

std::vector<int64_t> ints_attribute(const OnnxGraph& g, const onnx::NodeProto& node, const char* name,
                                    std::vector<int64_t> fallback) {
  const onnx::AttributeProto* a = find_attribute(node, name);
  if (a == nullptr) return fallback;
  if (a->type() != onnx::AttributeProto::INTS) wrong_type(g, node, name, "a list of integers");
  return {a->ints().begin(), a->ints().end()};
}

std::string string_attribute(const OnnxGraph& g, const onnx::NodeProto& node, const char* name,
                             const std::string& fallback) {
  const onnx::AttributeProto* a = find_attribute(node, name);
  if (a == nullptr) return fallback;
  if (a->type() != onnx::AttributeProto::STRING) wrong_type(g, node, name, "a string");
  return a->s();
}

}  // namespace convnet::onnx_interop
