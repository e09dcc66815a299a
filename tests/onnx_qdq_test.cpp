// QDQ ONNX export and import of int8 models: the exported graph's structure (s8 weights per output
// channel with the quantizer's scales, batch norm folded as the int8 plan folds it, a
// QuantizeLinear / DequantizeLinear pair with zero point 0 wherever the plan quantizes, f32
// logits), export -> import giving the same int8 outputs, and the QDQ patterns import refuses.
#include <gtest/gtest.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <cstring>
#include <functional>
#include <map>

#include "convnet/engine/quantization.hpp"
#include "convnet/error.hpp"
#include "convnet/executor.hpp"
#include "convnet/interop/onnx.hpp"
#include "convnet/io/safetensors.hpp"
#include "convnet/layers/normalization.hpp"
#include "convnet/model/model.hpp"
#include "convnet/train/quantize.hpp"
#include "support/cli.hpp"
#include "support/onnx_files.hpp"
#include "support/plan_checks.hpp"

namespace convnet {
namespace {

// conv + batch norm + ReLU (one int8 op, u8 out), max pooling (u8), conv + tanh (s8), fc logits.
constexpr const char* kNet =
    "network qdq\ninput 1x8x8\nc1 conv 4 3x3 pad 1\nb1 batchnorm\nr1 relu\np1 maxpool 2x2\n"
    "c2 conv 6 3x3 pad 1\nt2 tanh\nf1 fc 5\n";

using testing::read_model;
using testing::write_model;

// An int8 model (batch norms with non-trivial statistics) and a batch `x` its ranges are calibrated on.
struct Quantized {
  Net net;
  Executor executor;
  Tensor x;
  std::vector<ActivationRange> ranges;
  Quantized(Net n, int64_t batch, unsigned seed)
      : net(std::move(n)),
        executor(net, {.seed = 5, .precision = DType::Int8, .emulate = true}),
        x(random_tensor(batched(net, net.inputs()[0], batch), seed)) {
    randomize_batch_norms(executor, seed);
    observe_ranges(executor, x, ranges);
    executor.set_activation_ranges(ranges);
  }
};

std::map<std::string, const onnx::TensorProto*> initializers(const onnx::ModelProto& m) {
  std::map<std::string, const onnx::TensorProto*> out;
  for (const onnx::TensorProto& t : m.graph().initializer()) out[t.name()] = &t;
  return out;
}

std::vector<float> floats(const onnx::TensorProto& t) {
  std::vector<float> v(t.raw_data().size() / 4);
  std::memcpy(v.data(), t.raw_data().data(), v.size() * 4);
  return v;
}

const onnx::NodeProto* node_named(const onnx::ModelProto& m, const std::string& name) {
  for (const onnx::NodeProto& n : m.graph().node()) {
    if (n.name() == name) return &n;
  }
  return nullptr;
}

TEST(OnnxQdqExport, Int8WeightsPerChannelAndQuantizeDequantizePairs) {
  Quantized q(load_model_text(kNet, "qdq.cnet"), 8, 3);
  const testing::TempFile file(".onnx");
  onnx_interop::export_onnx(q.executor, file.path().string(), {{"convnet.quantization", "int8"}}, q.ranges);
  const onnx::ModelProto model = read_model(file.path().string());
  onnx::checker::check_model(model);
  EXPECT_GE(model.opset_import(0).version(), 13);  // per-axis DequantizeLinear
  EXPECT_EQ(model.metadata_props(0).key(), "convnet.quantization");

  std::map<std::string, int> ops;
  for (const onnx::NodeProto& n : model.graph().node()) ++ops[n.op_type()];
  EXPECT_EQ(ops["BatchNormalization"], 0);  // folded into c1, as the int8 plan folds it
  // The input (f32, quantized on its way into c1), r1 (end of c1's op), p1 and t2 (end of c2's op).
  EXPECT_EQ(ops["QuantizeLinear"], 4);
  EXPECT_EQ(ops["DequantizeLinear"], 4 + 3);  // and the weights of c1, c2, f1
  const auto init = initializers(model);
  const std::map<std::string, int> zero_point_types{{"input", onnx::TensorProto::INT8},
                                                    {"r1", onnx::TensorProto::UINT8},
                                                    {"p1", onnx::TensorProto::UINT8},
                                                    {"t2", onnx::TensorProto::INT8}};
  for (const auto& [node, type] : zero_point_types) {
    ASSERT_TRUE(node_named(model, node + "/quantize")) << node;
    const onnx::TensorProto& zero = *init.at(node + "/zero_point");
    EXPECT_EQ(zero.data_type(), type) << node;
    EXPECT_EQ(zero.raw_data(), std::string(1, '\0')) << node;
    const ActivationRange& r = q.ranges[static_cast<size_t>(q.net.find(node == "p1" ? "r1" : node))];
    EXPECT_EQ(floats(*init.at(node + "/scale")), std::vector<float>{activation_scale(r)}) << node;
  }
  EXPECT_EQ(node_named(model, "f1")->output(0), "logits");  // f32 logits, never quantized

  // Weights: s8 per output channel with the quantizer's scales, after folding b1 into c1.
  auto params = [&](const std::string& name) {
    for (const NamedParameter& p : q.executor.named_parameters()) {
      if (p.name == name) return p.value;
    }
    throw Error("no parameter " + name);
  };
  for (const std::string layer : {"c1", "c2", "f1"}) {
    const Tensor& w = *params(layer + ".weight");
    const int64_t outputs = w.dims()[0];
    const int64_t per_output = w.numel() / outputs;
    std::vector<float> folded(w.data(), w.data() + w.numel());
    std::vector<float> bias(params(layer + ".bias")->data(), params(layer + ".bias")->data() + outputs);
    if (layer == "c1") {
      fold_batch_norm(folded.data(), bias.data(), outputs, per_output, params("b1.weight")->data(),
                      params("b1.bias")->data(), params("b1.running_mean")->data(), params("b1.running_var")->data(),
                      1e-5);
    }
    const std::vector<float> scales = weight_scales(folded.data(), outputs, per_output);
    EXPECT_EQ(floats(*init.at(layer + ".weight_scale")), scales) << layer;
    EXPECT_EQ(floats(*init.at(layer + ".bias")), bias) << layer;
    const onnx::TensorProto& s8 = *init.at(layer + ".weight_quantized");
    EXPECT_EQ(s8.data_type(), onnx::TensorProto::INT8);
    EXPECT_EQ(std::vector<int64_t>(s8.dims().begin(), s8.dims().end()), w.dims());
    for (int64_t i = 0; i < w.numel(); ++i) {
      ASSERT_EQ(static_cast<int8_t>(s8.raw_data()[static_cast<size_t>(i)]),
                quantize_weight(folded[static_cast<size_t>(i)], scales[static_cast<size_t>(i / per_output)]))
          << layer << " " << i;
    }
    const onnx::TensorProto& zero = *init.at(layer + ".weight_zero_point");
    EXPECT_EQ(zero.raw_data(), std::string(static_cast<size_t>(outputs), '\0'));
    const onnx::NodeProto& dq = *node_named(model, layer + "/weight_dequantize");
    ASSERT_EQ(dq.attribute_size(), 1);
    EXPECT_EQ(dq.attribute(0).name(), "axis");
    EXPECT_EQ(dq.attribute(0).i(), 0);
  }
}

// Exports q, imports the file and runs it in int8 with the file's scales: the same outputs as q's
// int8 plan. The scales come back as ranges [0, 255 s] or [-127 s, 127 s], from which the plan
// computes s again up to one rounding of (127 s) / 127; the weights dequantized and quantized again
// are the same integers. Allowed: 1e-3 of the logits' largest magnitude, for a value at a rounding
// tie that the scale's last bit sends the other way.
void expect_same_int8_outputs(Quantized& q) {
  const testing::TempFile file(".onnx");
  onnx_interop::export_onnx(q.executor, file.path().string(), {}, q.ranges);
  const onnx_interop::Import imported = onnx_interop::import_onnx_file(file.path().string());
  ASSERT_EQ(imported.weights.tensors.count("b1.weight"), 0U);
  Net back = load_model_text(imported.model_text, "back");
  ASSERT_EQ(imported.ranges.size(), back.nodes().size());
  Executor theirs(back, {.precision = DType::Int8, .emulate = true, .ranges = imported.ranges});
  load_parameters(imported.weights, theirs, "imported");
  const Tensor expected = q.executor.forward(q.x, false);
  const Tensor& got = theirs.forward(q.x, false);
  ASSERT_EQ(got.dims(), expected.dims()) << imported.model_text;
  EXPECT_LE(relative_error(got, expected), 1e-3) << imported.model_text;
}

TEST(OnnxQdqRoundTrip, SameInt8Outputs) {
  Quantized q(load_model_text(kNet, "qdq.cnet"), 4, 7);
  expect_same_int8_outputs(q);
}

TEST(OnnxQdqRoundTrip, Lenet5AndResnet20) {
  for (const char* name : {"lenet5", "resnet20"}) {
    SCOPED_TRACE(name);
    LoadOptions options;
    options.input_shape = Shape({1, 28, 28});
    Quantized q(load_model(name, options), 4, 9);
    expect_same_int8_outputs(q);
  }
}

// The exported file of kNet, edited, then imported: the error.
std::string import_error_after(const std::function<void(onnx::ModelProto&)>& edit) {
  Quantized q(load_model_text(kNet, "qdq.cnet"), 2, 3);
  const testing::TempFile file(".onnx");
  onnx_interop::export_onnx(q.executor, file.path().string(), {}, q.ranges);
  onnx::ModelProto model = read_model(file.path().string());
  edit(model);
  write_model(model, file.path().string());
  try {
    (void)onnx_interop::import_onnx_file(file.path().string());
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    EXPECT_NE(what.find(file.path().string()), std::string::npos) << what;
    return what;
  }
  return "";
}

onnx::TensorProto& initializer(onnx::ModelProto& m, const std::string& name) {
  for (onnx::TensorProto& t : *m.mutable_graph()->mutable_initializer()) {
    if (t.name() == name) return t;
  }
  throw Error("no initializer " + name);
}

// Every node of a QDQ file with fewer inputs than it has, or without outputs: an error naming the
// file, or an import, never a crash (the same sweep as OnnxImport.NodesMissingInputsOrOutputs...).
TEST(OnnxQdqImport, NodesMissingInputsOrOutputsAreErrorsNotCrashes) {
  Quantized q(load_model_text(kNet, "qdq.cnet"), 2, 3);
  const testing::TempFile exported(".onnx");
  onnx_interop::export_onnx(q.executor, exported.path().string(), {}, q.ranges);
  EXPECT_GT(testing::sweep_nodes_missing_inputs_or_outputs(read_model(exported.path().string())), 0);
}

TEST(OnnxQdqImport, PatternsConvnetDoesNotTakeAreOneClearError) {
  EXPECT_CONTAINS(import_error_after([](onnx::ModelProto& m) { initializer(m, "r1/zero_point").set_raw_data("\x03"); }),
                  "node r1/quantize (QuantizeLinear): zero point 3: convnet's int8 is symmetric (zero point 0)");
  EXPECT_CONTAINS(import_error_after([](onnx::ModelProto& m) {
                    // The pair's QuantizeLinear dropped: the DequantizeLinear reads r1 itself.
                    auto* nodes = m.mutable_graph()->mutable_node();
                    for (int i = 0; i < nodes->size(); ++i) {
                      if (nodes->Get(i).name() == "r1/dequantize") nodes->Mutable(i)->set_input(0, "r1");
                      if (nodes->Get(i).name() == "r1/quantize") nodes->Mutable(i)->set_op_type("Identity");
                    }
                  }),
                  "node r1/dequantize (DequantizeLinear): dequantizes a computed tensor that no QuantizeLinear "
                  "produces");
  EXPECT_CONTAINS(import_error_after([](onnx::ModelProto& m) {
                    onnx::TensorProto& s = initializer(m, "r1/scale");
                    const std::string one = s.raw_data();
                    s.add_dims(2);
                    s.set_raw_data(one + one);
                    initializer(m, "r1/zero_point").add_dims(2);
                    initializer(m, "r1/zero_point").set_raw_data(std::string(2, '\0'));
                  }),
                  "quantizes an activation with 2 scales; convnet's int8 has one scale per activation");
  // Scales whose range gives no int8 scale of convnet's own (quantization.json's bounds): a denormal
  // and a huge one, both finite and above 0.
  for (const float scale : {1e-40F, 1e30F}) {
    const std::string message = import_error_after([&](onnx::ModelProto& m) {
      initializer(m, "r1/scale").set_raw_data(std::string(reinterpret_cast<const char*>(&scale), 4));
    });
    EXPECT_CONTAINS(message, "node r1/quantize (QuantizeLinear): its scale gives the range [");
    EXPECT_CONTAINS(
        message, "an int8 scale needs a largest magnitude of 0 (a layer that is always 0) or between 1e-15 and 1e+15");
  }
}

TEST(OnnxQdqImport, AValueTheInt8PlanQuantizesWithoutAPairIsRefusedInInt8) {
  Quantized q(load_model_text(kNet, "qdq.cnet"), 2, 3);
  const testing::TempFile file(".onnx");
  onnx_interop::export_onnx(q.executor, file.path().string(), {}, q.ranges);
  onnx::ModelProto model = read_model(file.path().string());
  onnx::GraphProto& g = *model.mutable_graph();
  google::protobuf::RepeatedPtrField<onnx::NodeProto> kept;
  for (onnx::NodeProto& n : *g.mutable_node()) {
    if (n.name() == "t2/quantize" || n.name() == "t2/dequantize") continue;  // t2 left in f32
    for (std::string& in : *n.mutable_input()) {
      if (in == "t2/dequantized") in = "t2";
    }
    *kept.Add() = n;
  }
  g.mutable_node()->Swap(&kept);
  write_model(model, file.path().string());
  const onnx_interop::Import imported = onnx_interop::import_onnx_file(file.path().string());  // f32 reads it
  Net back = load_model_text(imported.model_text, "back");
  Executor theirs(back, {.precision = DType::Int8, .emulate = true, .ranges = imported.ranges});
  load_parameters(imported.weights, theirs, "imported");
  try {
    (void)theirs.forward(q.x, false);
    ADD_FAILURE() << "an int8 plan without t2's scale";
  } catch (const Error& e) {
    EXPECT_CONTAINS(std::string(e.what()), "int8: no scale for the output of 't2', which the int8 plan quantizes");
  }
}

}  // namespace
}  // namespace convnet
