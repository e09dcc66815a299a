// ONNX export: each node of a built Net becomes one ONNX operator (or a short equivalent chain:
// Flatten + Gemm, chained Add, Reshape + ReduceMax for maxout, Pad for padchannels). Windows are
// written with explicit begin and end pads and floor rounding, so ONNX computes convnet's sizes
// whatever rounding the model chose. With int8 ranges the graph is QDQ: the int8 plan those ranges
// give is compiled, and its s8 weights (batch norm folded where the plan folds it) and every value
// it stores as u8 or s8 are written as DequantizeLinear and QuantizeLinear nodes.
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <ostream>
#include <streambuf>
#include <unordered_map>

#include "convnet/checked.hpp"
#include "convnet/engine/quantization.hpp"
#include "convnet/error.hpp"
#include "convnet/interop/onnx.hpp"
#include "convnet/io/atomic_file.hpp"
#include "convnet/io/safetensors.hpp"
#include "convnet/kernels/onednn/engine.hpp"
#include "convnet/layers/activation.hpp"
#include "convnet/layers/conv2d.hpp"
#include "convnet/layers/dropout.hpp"
#include "convnet/layers/linear.hpp"
#include "convnet/layers/maxout.hpp"
#include "convnet/layers/normalization.hpp"
#include "convnet/layers/pad_channels.hpp"
#include "convnet/layers/pool2d.hpp"

namespace convnet::onnx_interop {
namespace {

static_assert(std::endian::native == std::endian::little, "ONNX raw_data is little-endian");

// An output stream into an AtomicFile, so protobuf writes straight into the temporary file.
class AtomicFileBuffer final : public std::streambuf {
 public:
  explicit AtomicFileBuffer(AtomicFile& file) : file_(file) {}

 protected:
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    file_.write(s, static_cast<size_t>(n));
    return n;
  }
  int_type overflow(int_type c) override {
    if (c != traits_type::eof()) {
      const char ch = static_cast<char>(c);
      file_.write(&ch, 1);
    }
    return traits_type::not_eof(c);
  }

 private:
  AtomicFile& file_;
};

class Exporter {
 public:
  /// `ranges` empty: the f32 graph; else the QDQ graph of the int8 plan with these ranges.
  Exporter(Executor& executor, onnx::GraphProto& graph, const std::vector<ActivationRange>& ranges)
      : net_(executor.net()), graph_(graph), ranges_(ranges), consumers_(net_.nodes().size()) {
    for (const auto& [name, tensor] : parameter_tensors(executor)) params_.emplace(name, tensor);
    for (size_t i = 0; i < net_.nodes().size(); ++i) {
      for (const int j : net_.node(static_cast<int>(i)).inputs)
        consumers_[static_cast<size_t>(j)].push_back(static_cast<int>(i));
    }
    if (ranges.empty()) return;
    onednn::Engine engine;
    PlanOptions options;
    options.dtype = DType::Int8;
    options.emulate = true;  // only its choices are read, nothing runs
    options.ranges = ranges;
    quant_ = Plan(net_, executor.parameter_store(), engine, options).node_quantization();
  }

  void run() {
    const int count = static_cast<int>(net_.nodes().size());
    for (int id = 0; id < count; ++id) names_.push_back(id == net_.output() ? kOutputName : net_.node(id).name);
    for (int id = 0; !quant_.empty() && id < count; ++id) {
      // A batch norm the int8 plan folds into the convolution before it: the conv writes its output.
      const Node& node = net_.node(id);
      if (node.layer->kind() != "batchnorm") continue;
      const int conv = node.inputs.at(0);
      if (!weight_scales(conv).empty() && same_value(conv, id)) {
        folded_bn_[conv] = id;
        names_[static_cast<size_t>(conv)] = names_[static_cast<size_t>(id)];
      }
    }
    for (int id = 0; id < count; ++id) {
      const Node& node = net_.node(id);
      if (node.layer->kind() == "input") {
        add_value_info(graph_.add_input(), node.name, node.output);
      } else if (!is_folded_bn(id)) {
        export_node(id, names_[static_cast<size_t>(id)]);
      }
      if (stored_quantized(id)) {
        const NodeQuantization& q = quant_[static_cast<size_t>(id)];
        names_[static_cast<size_t>(id)] = quantize(names_[static_cast<size_t>(id)], node.name, q.is_unsigned, q.scale);
      }
    }
    add_value_info(graph_.add_output(), kOutputName, net_.node(net_.output()).output);
  }

 private:
  [[noreturn]] void refuse(const Node& node, const std::string& why) const {
    throw SpecError("export: " + node.name + " (" + node.layer->kind() + "): " + why);
  }

  static void add_value_info(onnx::ValueInfoProto* info, const std::string& name, const Shape& shape) {
    info->set_name(name);
    onnx::TypeProto_Tensor* type = info->mutable_type()->mutable_tensor_type();
    type->set_elem_type(onnx::TensorProto::FLOAT);
    type->mutable_shape()->add_dim()->set_dim_param("batch");
    for (const int64_t d : shape.dims()) type->mutable_shape()->add_dim()->set_dim_value(d);
  }

  onnx::NodeProto* add_node(const std::string& op, const std::string& name, std::vector<std::string> inputs,
                            const std::string& output) {
    onnx::NodeProto* n = graph_.add_node();
    n->set_op_type(op);
    n->set_name(name);
    for (const std::string& i : inputs) n->add_input(i);
    n->add_output(output);
    return n;
  }

  static void set_int(onnx::NodeProto* n, const char* name, int64_t value) {
    onnx::AttributeProto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(value);
  }
  static void set_float(onnx::NodeProto* n, const char* name, double value) {
    onnx::AttributeProto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(static_cast<float>(value));
  }
  static void set_ints(onnx::NodeProto* n, const char* name, const std::vector<int64_t>& values) {
    onnx::AttributeProto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (const int64_t v : values) a->add_ints(v);
  }

  const Tensor& parameter(const std::string& name) const {
    const auto it = params_.find(name);
    if (it == params_.end()) throw SpecError("export: the parameter " + name + " is missing");
    return *it->second;
  }

  // An initializer of `type` (FLOAT, INT8, UINT8) holding `bytes` (little-endian) with `dims`.
  std::string raw_initializer(const std::string& name, int type, const std::vector<int64_t>& dims, const void* bytes,
                              size_t size) {
    onnx::TensorProto* t = graph_.add_initializer();
    t->set_name(name);
    t->set_data_type(type);
    for (const int64_t d : dims) t->add_dims(d);
    t->set_raw_data(bytes, size);
    return name;
  }

  std::string float_initializer(const std::string& name, const std::vector<int64_t>& dims, const float* values) {
    const int64_t n = checked_product(dims, "a parameter's size");
    return raw_initializer(name, onnx::TensorProto::FLOAT, dims, values,
                           static_cast<size_t>(checked_mul(n, 4, "a parameter's bytes")));
  }

  // An initializer holding parameter `name` as stored (float32).
  std::string initializer(const std::string& name) {
    const Tensor& t = parameter(name);
    return float_initializer(name, t.dims(), t.data());
  }

  std::string int64_initializer(const std::string& name, const std::vector<int64_t>& values) {
    onnx::TensorProto* t = graph_.add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    t->add_dims(static_cast<int64_t>(values.size()));
    for (const int64_t v : values) t->add_int64_data(v);
    return name;
  }

  std::string input_of(const Node& node, size_t i = 0) const { return names_[static_cast<size_t>(node.inputs.at(i))]; }

  // ONNX pads (begin h, begin w, end h, end w) and floor rounding giving exactly `output`: the end
  // padding is what the last window reads (ceil rounding) or the model's own (floor and exact).
  static std::vector<int64_t> explicit_pads(const Window& w, const Shape& in, const Shape& output) {
    const Size2 end = w.end_padding();
    auto axis_end = [](int64_t input, int64_t kernel, int64_t stride, int64_t dilation, int64_t begin, int64_t end_pad,
                       int64_t out) {
      const int64_t reach = (out - 1) * stride + dilation * (kernel - 1) + 1;  // the last window's end
      return std::max(end_pad, reach - input - begin);
    };
    return {w.padding.h, w.padding.w,
            axis_end(in.height(), w.kernel.h, w.stride.h, w.dilation.h, w.padding.h, end.h, output.height()),
            axis_end(in.width(), w.kernel.w, w.stride.w, w.dilation.w, w.padding.w, end.w, output.width())};
  }

  void set_window(onnx::NodeProto* n, const Window& w, const std::vector<int64_t>& pads, bool dilation) {
    set_ints(n, "kernel_shape", {w.kernel.h, w.kernel.w});
    set_ints(n, "strides", {w.stride.h, w.stride.w});
    set_ints(n, "pads", pads);
    if (dilation) set_ints(n, "dilations", {w.dilation.h, w.dilation.w});
  }

  // ----- QDQ (an int8 plan's choices) -----

  [[nodiscard]] const std::vector<float>& weight_scales(int id) const {
    static const std::vector<float> kNone;
    return quant_.empty() ? kNone : quant_[static_cast<size_t>(id)].weight_scales;
  }
  [[nodiscard]] bool same_value(int a, int b) const {
    const int v = quant_[static_cast<size_t>(a)].value;
    return v >= 0 && v == quant_[static_cast<size_t>(b)].value;
  }
  [[nodiscard]] bool is_folded_bn(int id) const {
    return std::any_of(folded_bn_.begin(), folded_bn_.end(), [&](const auto& f) { return f.second == id; });
  }

  // True when the plan stores node `id`'s output as u8 / s8 and no node reading it shares that value
  // (the inner nodes of a fused op and what a dropout passes on are quantized where the value ends).
  [[nodiscard]] bool stored_quantized(int id) const {
    if (quant_.empty() || id == net_.output() || !quant_[static_cast<size_t>(id)].quantized) return false;
    const std::vector<int>& readers = consumers_[static_cast<size_t>(id)];
    return !std::all_of(readers.begin(), readers.end(), [&](int r) { return same_value(id, r); });
  }

  // QuantizeLinear then DequantizeLinear of `tensor` (zero point 0, u8 or s8); returns the result.
  std::string quantize(const std::string& tensor, const std::string& base, bool is_unsigned, float scale) {
    const int8_t zero = 0;
    const std::vector<std::string> params{
        float_initializer(base + "/scale", {}, &scale),
        raw_initializer(base + "/zero_point", is_unsigned ? onnx::TensorProto::UINT8 : onnx::TensorProto::INT8, {},
                        &zero, 1)};
    add_node("QuantizeLinear", base + "/quantize", {tensor, params[0], params[1]}, base + "/quantized");
    add_node("DequantizeLinear", base + "/dequantize", {base + "/quantized", params[0], params[1]},
             base + "/dequantized");
    return base + "/dequantized";
  }

  // A weight layer's data input: quantized on the way in where the plan quantizes an f32 value
  // (the network's input, a standalone tanh's output) with that node's calibrated range.
  std::string weight_layer_input(const Node& node) {
    const int p = node.inputs.at(0);
    if (quant_.empty() || quant_[static_cast<size_t>(p)].quantized) return input_of(node);
    if (const auto it = quantized_inputs_.find(p); it != quantized_inputs_.end()) return it->second;
    const ActivationRange& r = ranges_.at(static_cast<size_t>(p));
    return quantized_inputs_[p] =
               quantize(names_[static_cast<size_t>(p)], net_.node(p).name, quantized_unsigned(r), activation_scale(r));
  }

  // The inputs of conv / fc node `id`: data, weight, bias. In a QDQ graph the weight is s8 (per
  // output channel, the plan's scales, after folding the batch norm the plan folds) read through a
  // DequantizeLinear, and the bias f32 as the plan keeps it.
  std::vector<std::string> weight_layer_inputs(int id, bool bias) {
    const Node& node = net_.node(id);
    const std::string& name = node.name;
    const std::vector<float>& scales = weight_scales(id);
    if (scales.empty()) {
      std::vector<std::string> inputs{input_of(node), initializer(name + ".weight")};
      if (bias) inputs.push_back(initializer(name + ".bias"));
      return inputs;
    }
    const Tensor& weight = parameter(name + ".weight");
    const int64_t outputs = weight.dims().at(0);
    const int64_t per_output = weight.numel() / outputs;
    std::vector<float> w(weight.data(), weight.data() + weight.numel());
    std::vector<float> b(static_cast<size_t>(outputs), 0.0F);
    if (bias) std::copy_n(parameter(name + ".bias").data(), outputs, b.begin());
    const auto bn = folded_bn_.find(id);
    if (bn != folded_bn_.end()) {
      const Node& norm = net_.node(bn->second);
      const std::string& n = norm.name;
      fold_batch_norm(w.data(), b.data(), outputs, per_output, parameter(n + ".weight").data(),
                      parameter(n + ".bias").data(), parameter(n + ".running_mean").data(),
                      parameter(n + ".running_var").data(), dynamic_cast<const BatchNorm&>(*norm.layer).options().eps);
    }
    std::vector<int8_t> q(w.size());
    for (int64_t k = 0; k < outputs; ++k) {
      for (int64_t i = 0; i < per_output; ++i) {
        q[static_cast<size_t>(k * per_output + i)] =
            quantize_weight(w[static_cast<size_t>(k * per_output + i)], scales[static_cast<size_t>(k)]);
      }
    }
    const std::vector<int8_t> zeros(static_cast<size_t>(outputs), 0);
    onnx::NodeProto* dq = add_node(
        "DequantizeLinear", name + "/weight_dequantize",
        {raw_initializer(name + ".weight_quantized", onnx::TensorProto::INT8, weight.dims(), q.data(), q.size()),
         float_initializer(name + ".weight_scale", {outputs}, scales.data()),
         raw_initializer(name + ".weight_zero_point", onnx::TensorProto::INT8, {outputs}, zeros.data(), zeros.size())},
        name + ".weight");
    set_int(dq, "axis", 0);
    std::vector<std::string> inputs{weight_layer_input(node), name + ".weight"};
    if (bias || bn != folded_bn_.end()) inputs.push_back(float_initializer(name + ".bias", {outputs}, b.data()));
    return inputs;
  }

  void export_node(int id, const std::string& out) {
    const Node& node = net_.node(id);
    const std::string kind = node.layer->kind();
    const Shape& in = net_.node(node.inputs.at(0)).output;
    const std::string& name = node.name;
    if (kind == "conv") {
      const Conv2dOptions& o = dynamic_cast<const Conv2d&>(*node.layer).options();
      onnx::NodeProto* n = add_node("Conv", name, weight_layer_inputs(id, o.bias), out);
      set_window(n, o.window, explicit_pads(o.window, in, node.output), true);
      set_int(n, "group", o.groups);
    } else if (kind == "maxpool") {
      const Window& w = dynamic_cast<const MaxPool2d&>(*node.layer).options().window;
      set_window(add_node("MaxPool", name, {input_of(node)}, out), w, explicit_pads(w, in, node.output), false);
    } else if (kind == "avgpool") {
      export_avgpool(node, in, out);
    } else if (kind == "globalavgpool") {
      add_node("GlobalAveragePool", name, {input_of(node)}, out);
    } else if (kind == "fc") {
      const LinearOptions& o = dynamic_cast<const Linear&>(*node.layer).options();
      std::vector<std::string> inputs = weight_layer_inputs(id, o.bias);
      if (in.rank() != 1) {
        set_int(add_node("Flatten", name + "/flatten", {inputs[0]}, name + "/flatten"), "axis", 1);
        inputs[0] = name + "/flatten";
      }
      set_int(add_node("Gemm", name, inputs, out), "transB", 1);
    } else if (kind == "flatten") {
      set_int(add_node("Flatten", name, {input_of(node)}, out), "axis", 1);
    } else if (kind == "batchnorm") {
      const double eps = dynamic_cast<const BatchNorm&>(*node.layer).options().eps;
      onnx::NodeProto* n = add_node("BatchNormalization", name,
                                    {input_of(node), initializer(name + ".weight"), initializer(name + ".bias"),
                                     initializer(name + ".running_mean"), initializer(name + ".running_var")},
                                    out);
      set_float(n, "epsilon", eps);
    } else if (kind == "relu" || kind == "sigmoid" || kind == "tanh") {
      add_node(kind == "relu" ? "Relu" : kind == "sigmoid" ? "Sigmoid" : "Tanh", name, {input_of(node)}, out);
    } else if (kind == "leakyrelu") {
      set_float(add_node("LeakyRelu", name, {input_of(node)}, out), "alpha",
                dynamic_cast<const LeakyReLU&>(*node.layer).options().negative_slope);
    } else if (kind == "elu") {
      set_float(add_node("Elu", name, {input_of(node)}, out), "alpha",
                dynamic_cast<const ELU&>(*node.layer).options().alpha);
    } else if (kind == "softmax") {
      set_int(add_node("Softmax", name, {input_of(node)}, out), "axis", 1);
    } else if (kind == "dropout" || kind == "droppath") {
      add_node("Identity", name, {input_of(node)}, out);  // the identity at inference
    } else if (kind == "lrn") {
      const LocalResponseNormOptions& o = dynamic_cast<const LocalResponseNorm&>(*node.layer).options();
      if (o.size % 2 == 0) {
        refuse(node, "size " + std::to_string(o.size) +
                         " is even: ONNX's LRN window of an even size starts one channel later than convnet's "
                         "(PyTorch's), so only odd sizes export");
      }
      onnx::NodeProto* n = add_node("LRN", name, {input_of(node)}, out);
      set_int(n, "size", o.size);
      set_float(n, "alpha", o.alpha);
      set_float(n, "beta", o.beta);
      set_float(n, "bias", o.k);
    } else if (kind == "add" || kind == "mul") {
      const std::string op = kind == "add" ? "Add" : "Mul";
      std::string sum = input_of(node, 0);
      for (size_t i = 1; i < node.inputs.size(); ++i) {
        const bool last = i + 1 == node.inputs.size();
        const std::string partial = last ? out : name + "/" + std::to_string(i);
        add_node(op, last ? name : partial, {sum, input_of(node, i)}, partial);
        sum = partial;
      }
    } else if (kind == "concat") {
      std::vector<std::string> inputs;
      for (size_t i = 0; i < node.inputs.size(); ++i) inputs.push_back(input_of(node, i));
      set_int(add_node("Concat", name, inputs, out), "axis", 1);
    } else if (kind == "maxout") {
      // (N, C, ...) -> (N, C/K, K, ...) -> max over the K pieces, which are consecutive channels.
      const int64_t k = dynamic_cast<const Maxout&>(*node.layer).options().pieces;
      std::vector<int64_t> dims{0, in.dims()[0] / k, k};
      for (size_t i = 1; i < in.dims().size(); ++i) dims.push_back(in.dims()[i]);
      add_node("Reshape", name + "/pieces", {input_of(node), int64_initializer(name + "/pieces_shape", dims)},
               name + "/pieces");
      onnx::NodeProto* n = add_node("ReduceMax", name, {name + "/pieces"}, out);
      set_ints(n, "axes", {2});
      set_int(n, "keepdims", 0);
    } else if (kind == "padchannels") {
      // Zero channels appended: pads of (N, C, ...) as begin for every axis, then end for every axis.
      const int64_t extra = dynamic_cast<const PadChannels&>(*node.layer).options().channels - in.dims()[0];
      std::vector<int64_t> pads(2 * (in.dims().size() + 1), 0);
      pads[in.dims().size() + 2] = extra;
      add_node("Pad", name, {input_of(node), int64_initializer(name + "/pads", pads)}, out);
    } else if (kind == "local" || kind == "tiled") {
      refuse(node, std::string("ONNX has no ") + (kind == "local" ? "locally connected" : "tiled") +
                       " convolution (unshared weights), and convnet does not export it as a subgraph");
    } else {
      refuse(node, "this layer kind has no ONNX export");
    }
  }

  // Average pooling divides by the window clipped to input + padding (PyTorch's count_include_pad).
  // Without padding that is ONNX's count_include_pad=0 over any end padding; with padding and a
  // last window inside it, count_include_pad=1; past it, ceil_mode clips the divisor the same way.
  void export_avgpool(const Node& node, const Shape& in, const std::string& out) {
    const Window& w = dynamic_cast<const AvgPool2d&>(*node.layer).options().window;
    std::vector<int64_t> pads = explicit_pads(w, in, node.output);
    bool ceil = false;
    if (w.padding != Size2{0, 0} && (pads[2] != w.padding.h || pads[3] != w.padding.w)) {
      // ONNX's ceil rounding (without PyTorch's rule) must give convnet's size on both axes.
      auto onnx_ceil = [](int64_t input, int64_t kernel, int64_t stride, int64_t pad) {
        return (input + 2 * pad - kernel + stride - 1) / stride + 1;
      };
      if (onnx_ceil(in.height(), w.kernel.h, w.stride.h, w.padding.h) != node.output.height() ||
          onnx_ceil(in.width(), w.kernel.w, w.stride.w, w.padding.w) != node.output.width()) {
        refuse(node, "its last window starts in the padding, which ONNX's ceil_mode keeps and convnet drops");
      }
      pads = {w.padding.h, w.padding.w, w.padding.h, w.padding.w};
      ceil = true;
    }
    onnx::NodeProto* n = add_node("AveragePool", node.name, {input_of(node)}, out);
    set_window(n, w, pads, false);
    set_int(n, "count_include_pad", w.padding != Size2{0, 0} ? 1 : 0);
    if (ceil) set_int(n, "ceil_mode", 1);
  }

  const Net& net_;
  onnx::GraphProto& graph_;
  std::vector<ActivationRange> ranges_;
  std::vector<std::vector<int>> consumers_;  // per node, the nodes reading it
  std::unordered_map<std::string, const Tensor*> params_;
  std::vector<std::string> names_;                         // each node's output tensor, by node id
  std::vector<NodeQuantization> quant_;                    // QDQ: the int8 plan's choices per node (else empty)
  std::unordered_map<int, int> folded_bn_;                 // conv -> the batch norm the int8 plan folds into it
  std::unordered_map<int, std::string> quantized_inputs_;  // node -> its output quantized on the way in
};

}  // namespace

bool is_onnx_path(const std::string& path) { return path.size() > 5 && path.ends_with(".onnx"); }

void export_onnx(Executor& executor, const std::string& path, const std::map<std::string, std::string>& metadata,
                 const std::vector<ActivationRange>& int8_ranges) {
  onnx::ModelProto model;
  model.set_ir_version(7);  // the IR of opset 13 (ONNX 1.8)
  model.set_producer_name("convnet");
  model.set_producer_version("0.1");
  onnx::OperatorSetIdProto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(kExportOpset);
  for (const auto& [key, value] : metadata) {
    onnx::StringStringEntryProto* entry = model.add_metadata_props();
    entry->set_key(key);
    entry->set_value(value);
  }
  onnx::GraphProto* graph = model.mutable_graph();
  graph->set_name(executor.net().name());
  Exporter(executor, *graph, int8_ranges).run();
  AtomicFile file(path);
  AtomicFileBuffer buffer(file);
  std::ostream stream(&buffer);
  if (!model.SerializeToOstream(&stream) || !stream.flush()) throw IoError(path + ": cannot write the ONNX model");
  file.commit();
}

}  // namespace convnet::onnx_interop
