// ONNX export and import: exported files checked by ONNX's own checker and structurally (operators,
// attributes, initializer shapes), export -> import round trips giving the same outputs, the
// PyTorch fixture of tests/data/onnx (torch.onnx.export, by tests/golden/onnx_fixture.py) giving
// PyTorch's output, every bad file as one error, and the commands.
#include "convnet/interop/onnx.hpp"

#include <gtest/gtest.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <cmath>
#include <fstream>
#include <limits>

#include "convnet/error.hpp"
#include "convnet/executor.hpp"
#include "convnet/io/safetensors.hpp"
#include "convnet/model/model.hpp"
#include "support/cli.hpp"
#include "support/onnx_files.hpp"

namespace convnet {
namespace {

namespace fs = std::filesystem;
using testing::read_model;

const std::string kData = std::string(CONVNET_TEST_DATA) + "/onnx/";

std::string exported(Executor& executor, const testing::TempFile& file) {
  onnx_interop::export_onnx(executor, file.path().string());
  return file.path().string();
}

std::vector<std::string> op_types(const onnx::ModelProto& model) {
  std::vector<std::string> ops;
  for (const onnx::NodeProto& n : model.graph().node()) ops.push_back(n.op_type());
  return ops;
}

Tensor random_input(const Shape& shape, int64_t batch, uint32_t seed) {
  std::vector<int64_t> dims{batch};
  for (const int64_t d : shape.dims()) dims.push_back(d);
  Tensor x(dims);
  for (int64_t i = 0; i < x.numel(); ++i) {
    seed = seed * 1664525u + 1013904223u;
    x.data()[i] = static_cast<float>(seed >> 8) / static_cast<float>(1 << 24) * 2.0f - 1.0f;
  }
  return x;
}

// Largest |a - b| over the largest |b|.
double relative_error(const Tensor& a, const Tensor& b) {
  double diff = 0, scale = 0;
  for (int64_t i = 0; i < b.numel(); ++i) {
    diff = std::max(diff, std::abs(static_cast<double>(a.data()[i]) - b.data()[i]));
    scale = std::max(scale, std::abs(static_cast<double>(b.data()[i])));
  }
  return diff / scale;
}

std::string import_error(const std::string& path) {
  try {
    (void)onnx_interop::import_onnx_file(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Exports `net` (He-initialised, batch norm statistics made non-trivial), imports the file, and
// compares the two networks' outputs on one batch.
void expect_round_trip(Net& net, double tolerance) {
  Executor ours(net, {.backend = Backend::Reference, .seed = 3});
  for (const NamedParameter& p : ours.named_parameters()) {
    if (p.name.ends_with("running_var")) {
      for (int64_t i = 0; i < p.value->numel(); ++i) p.value->data()[i] = 0.5f + 0.1f * static_cast<float>(i % 7);
    }
  }
  const testing::TempFile file(".onnx");
  onnx::checker::check_model(read_model(exported(ours, file)));
  const onnx_interop::Import imported = onnx_interop::import_onnx_file(file.path().string());
  Net back = load_model_text(imported.model_text, "back");
  Executor theirs(back, {.backend = Backend::Reference});
  load_parameters(imported.weights, theirs, "imported");
  EXPECT_EQ(ours.named_parameters().size(), theirs.named_parameters().size());
  const Tensor x = random_input(net.node(net.inputs()[0]).output, 2, 11);
  const Tensor expected = ours.forward(x, false);
  const Tensor& got = theirs.forward(x, false);
  ASSERT_EQ(got.dims(), expected.dims()) << imported.model_text;
  EXPECT_LT(relative_error(got, expected), tolerance) << imported.model_text;
}

TEST(OnnxExport, Lenet5IsCheckedAndHasEveryParameter) {
  Net net = load_model("lenet5");
  Executor executor(net, {.backend = Backend::Reference});
  const testing::TempFile file(".onnx");
  const onnx::ModelProto model = read_model(exported(executor, file));
  onnx::checker::check_model(model);
  EXPECT_EQ(model.opset_import(0).version(), 13);
  const onnx::GraphProto& g = model.graph();
  ASSERT_EQ(g.input_size(), 1);
  EXPECT_EQ(g.input(0).type().tensor_type().shape().dim(0).dim_param(), "batch");
  EXPECT_EQ(g.input(0).type().tensor_type().shape().dim(1).dim_value(), 1);
  EXPECT_EQ(g.output(0).name(), "logits");
  std::map<std::string, std::vector<int64_t>> initializers;
  for (const onnx::TensorProto& t : g.initializer()) initializers[t.name()] = {t.dims().begin(), t.dims().end()};
  size_t parameters = 0;
  for (const NamedParameter& p : executor.named_parameters()) {
    if (p.name.ends_with("num_batches_tracked")) continue;
    ++parameters;
    EXPECT_EQ(initializers[p.name], p.value->dims()) << p.name;
  }
  EXPECT_EQ(initializers.size(), parameters);
}

TEST(OnnxExport, WindowsGetExplicitPadsAndAverageDivisors) {
  Net net = load_model_text(
      "input 2x6x6\n"
      "c conv 2 3x3 stride 2 pad 1 pad_end 0 groups 2\n"
      "a avgpool 2x2 stride 2 round ceil\n"
      "m maxpool 2x2 stride 1 pad_end 1\n",
      "w.cnet");
  Executor executor(net, {.backend = Backend::Reference});
  const testing::TempFile file(".onnx");
  const onnx::ModelProto model = read_model(exported(executor, file));
  onnx::checker::check_model(model);
  ASSERT_EQ(op_types(model), (std::vector<std::string>{"Conv", "AveragePool", "MaxPool"}));
  auto ints = [&](int node, const std::string& name) {
    for (const onnx::AttributeProto& a : model.graph().node(node).attribute()) {
      if (a.name() == name)
        return a.ints_size() > 0 ? std::vector<int64_t>(a.ints().begin(), a.ints().end()) : std::vector<int64_t>{a.i()};
    }
    return std::vector<int64_t>{};
  };
  EXPECT_EQ(ints(0, "pads"), (std::vector<int64_t>{1, 1, 0, 0}));  // 6x6 -> 3x3
  EXPECT_EQ(ints(0, "group"), (std::vector<int64_t>{2}));
  EXPECT_EQ(ints(1, "pads"), (std::vector<int64_t>{0, 0, 1, 1}));      // 3x3 -> 2x2: the last window reads one past
  EXPECT_EQ(ints(1, "count_include_pad"), (std::vector<int64_t>{0}));  // which the average does not count
  EXPECT_EQ(ints(2, "pads"), (std::vector<int64_t>{0, 0, 1, 1}));
  EXPECT_EQ(ints(2, "strides"), (std::vector<int64_t>{1, 1}));
}

TEST(OnnxExport, SubgraphsForMaxoutAndPadchannelsAndChainedAdd) {
  Net net = load_model(kData + "extras.cnet");
  Executor executor(net, {.backend = Backend::Reference});
  const testing::TempFile file(".onnx");
  const onnx::ModelProto model = read_model(exported(executor, file));
  onnx::checker::check_model(model);
  EXPECT_EQ(op_types(model), (std::vector<std::string>{"Conv", "Reshape", "ReduceMax", "Pad", "Conv", "Conv", "Add",
                                                       "Add", "GlobalAveragePool", "Flatten", "Gemm"}));
}

TEST(OnnxExport, RefusesLayersWithoutAnOperator) {
  for (const auto& [line, message] : std::vector<std::pair<std::string, std::string>>{
           {"l local 2 3x3", "export: l (local): ONNX has no locally connected convolution"},
           {"n lrn size 4",
            "export: n (lrn): size 4 is even: ONNX's LRN window of an even size starts one channel "
            "later than convnet's (PyTorch's), so only odd sizes export"}}) {
    Net net = load_model_text("input 4x5x5\n" + line + "\n", "r.cnet");
    Executor executor(net, {.backend = Backend::Reference});
    const testing::TempFile file(".onnx");
    try {
      onnx_interop::export_onnx(executor, file.path().string());
      ADD_FAILURE() << line << " exported";
    } catch (const SpecError& e) {
      EXPECT_EQ(std::string(e.what()).rfind(message, 0), 0u) << e.what();
    }
    EXPECT_FALSE(fs::exists(file.path()));
  }
}

TEST(OnnxRoundTrip, EveryImportedKindGivesTheSameOutput) {
  Net net = load_model(kData + "mix.cnet");
  expect_round_trip(net, 1e-5);
}

TEST(OnnxRoundTrip, ZooNetworks) {
  for (const auto& [name, input] : std::vector<std::pair<std::string, std::string>>{
           {"lenet5", ""}, {"resnet18", "3x32x32"}, {"googlenet", "3x64x64"}, {"alexnet-2gpu", "3x67x67"}}) {
    SCOPED_TRACE(name);
    LoadOptions options;
    if (!input.empty()) options.input_shape = parse_input_option(input);
    Net net = load_model(name, options);
    expect_round_trip(net, 1e-4);
  }
}

TEST(OnnxImport, PyTorchFixtureGivesPyTorchsOutput) {
  const onnx_interop::Import imported = onnx_interop::import_onnx_file(kData + "small.onnx");
  EXPECT_NE(imported.model_text.find("conv1 conv 8 3x3 pad 1"), std::string::npos) << imported.model_text;
  EXPECT_NE(imported.model_text.find("maxpool 3x3 stride 2 round ceil"), std::string::npos) << imported.model_text;
  EXPECT_NE(imported.model_text.find("flatten"), std::string::npos) << imported.model_text;
  EXPECT_NE(imported.model_text.find("fc fc 5"), std::string::npos) << imported.model_text;
  EXPECT_TRUE(imported.weights.tensors.count("bn1.running_var"));
  const SafetensorsContent io = read_safetensors(kData + "small-io.safetensors");
  for (const Backend backend : {Backend::Reference, Backend::OneDnn}) {
    Net net = load_model(kData + "small.onnx");
    Executor executor(net, {.backend = backend});
    onnx_interop::load_onnx_weights(executor, kData + "small.onnx");
    const StoredTensor& in = io.tensors.at("input");
    Tensor x(in.shape);
    std::copy(in.values.begin(), in.values.end(), x.data());
    const StoredTensor& want = io.tensors.at("output");
    Tensor expected(want.shape);
    std::copy(want.values.begin(), want.values.end(), expected.data());
    EXPECT_LT(relative_error(executor.forward(x, false), expected), 1e-5);
  }
}

// A copy of the fixture changed by `edit`, written to `file`.
template <class Edit>
std::string edited_fixture(const testing::TempFile& file, Edit edit) {
  onnx::ModelProto model = read_model(kData + "small.onnx");
  edit(model);
  std::ofstream out(file.path(), std::ios::binary);
  model.SerializeToOstream(&out);
  return file.path().string();
}

TEST(OnnxImport, IdentityOfAnInitializerIsThatInitializer) {
  // PyTorch's exporter stores equal tensors once (VGG's zero biases) and the others as Identity
  // nodes of it: the fixture with fc.bias read through two of them imports to the same network.
  const testing::TempFile file(".onnx");
  const std::string path = edited_fixture(file, [](onnx::ModelProto& m) {
    for (onnx::NodeProto& n : *m.mutable_graph()->mutable_node()) {
      for (std::string& in : *n.mutable_input()) {
        if (in == "fc.bias") in = "fc.bias.shared";
      }
    }
    onnx::NodeProto* second = m.mutable_graph()->add_node();  // after its reader: order is free
    second->set_op_type("Identity");
    second->add_input("fc.bias.copy");
    second->add_output("fc.bias.shared");
    onnx::NodeProto* first = m.mutable_graph()->add_node();
    first->set_op_type("Identity");
    first->add_input("fc.bias");
    first->add_output("fc.bias.copy");
  });
  const onnx_interop::Import original = onnx_interop::import_onnx_file(kData + "small.onnx");
  const onnx_interop::Import shared = onnx_interop::import_onnx_file(path);
  auto body = [](const std::string& text) { return text.substr(text.find('\n')); };  // after the file's name
  EXPECT_EQ(body(shared.model_text), body(original.model_text));
  ASSERT_EQ(shared.weights.tensors.size(), original.weights.tensors.size());
  for (const auto& [name, t] : original.weights.tensors)
    EXPECT_EQ(shared.weights.tensors.at(name).values, t.values) << name;
}

TEST(OnnxImport, DenseNetsConcatenationOfTheWholeListIsADenseLayer) {
  // convnet exports two dense layers as Concat(x, f1) = d1, Concat(d1, f2); PyTorch's DenseNet
  // writes the second as Concat(x, f1, f2). Both import to the same network and output.
  Net net = load_model_text("network dn\ninput 4x6x6\ndense\n  conv 2 3x3 pad 1\nend\ndense\n  conv 2 3x3 pad 1\nend\n",
                            "dn");
  Executor ours(net, {.backend = Backend::Reference, .seed = 5});
  const testing::TempFile file(".onnx");
  onnx::ModelProto model = read_model(exported(ours, file));
  std::vector<onnx::NodeProto*> concats;
  for (onnx::NodeProto& n : *model.mutable_graph()->mutable_node()) {
    if (n.op_type() == "Concat") concats.push_back(&n);
  }
  ASSERT_EQ(concats.size(), 2U);
  ASSERT_EQ(concats[1]->input(0), concats[0]->output(0));
  const std::string f2 = concats[1]->input(1);
  concats[1]->clear_input();
  for (const std::string& in : {concats[0]->input(0), concats[0]->input(1), f2}) concats[1]->add_input(in);
  {
    std::ofstream out(file.path(), std::ios::binary);
    ASSERT_TRUE(model.SerializeToOstream(&out));
  }
  const onnx_interop::Import imported = onnx_interop::import_onnx_file(file.path().string());
  size_t dense = 0;
  for (size_t at = imported.model_text.find("dense"); at != std::string::npos;
       at = imported.model_text.find("dense", at + 1)) {
    ++dense;
  }
  EXPECT_EQ(dense, 2U) << imported.model_text;
  Net back = load_model_text(imported.model_text, "back");
  Executor theirs(back, {.backend = Backend::Reference});
  load_parameters(imported.weights, theirs, "imported");
  const Tensor x = random_input(net.node(net.inputs()[0]).output, 2, 3);
  const Tensor expected = ours.forward(x, false);
  EXPECT_LT(relative_error(theirs.forward(x, false), expected), 1e-6) << imported.model_text;
}

TEST(OnnxImport, BadFilesAreOneClearError) {
  const testing::TempFile truncated(".onnx");
  const std::string bytes = testing::read_file(kData + "small.onnx");
  testing::write_file(truncated.path(), bytes.substr(0, bytes.size() / 2));
  EXPECT_EQ(import_error(truncated.path().string()),
            truncated.path().string() + ": not a readable ONNX model (the protobuf data is truncated or corrupted)");

  const testing::TempFile opset(".onnx");
  const std::string p1 = edited_fixture(opset, [](onnx::ModelProto& m) { m.mutable_opset_import(0)->set_version(99); });
  EXPECT_EQ(import_error(p1), p1 + ": opset 99 is not one convnet reads (opsets 7 to 21)");

  const testing::TempFile cycle(".onnx");
  const std::string p2 = edited_fixture(cycle, [](onnx::ModelProto& m) {
    m.mutable_graph()->mutable_node(0)->set_input(0, "/Relu_output_0");  // conv1 reads the relu after it
    m.mutable_graph()->mutable_input(0)->set_name("unused");
  });
  EXPECT_EQ(import_error(p2).rfind(p2 + ": the graph has a cycle through node /", 0), 0u) << import_error(p2);

  const testing::TempFile size(".onnx");
  const std::string p3 = edited_fixture(size, [](onnx::ModelProto& m) {
    for (onnx::TensorProto& t : *m.mutable_graph()->mutable_initializer()) {
      if (t.name() == "fc.bias") t.set_raw_data(t.raw_data().substr(4));
    }
  });
  EXPECT_EQ(import_error(p3), p3 + ": initializer fc.bias: dims 5 need 5 values (20 bytes), but it holds 16 bytes");

  const testing::TempFile ops(".onnx");
  const std::string p4 = edited_fixture(ops, [](onnx::ModelProto& m) {
    m.mutable_graph()->mutable_node(3)->set_op_type("Selu");
    m.mutable_graph()->mutable_node(5)->set_op_type("Upsample");
  });
  EXPECT_EQ(import_error(p4), p4 + ": operators convnet does not import: Selu (/Relu); Upsample (/Add)");

  // A node without outputs (found by fuzz_onnx: an unknown operator's was named by its first
  // output), of an operator convnet imports and of one it does not, named or not.
  for (const char* op : {"Relu", "Selu"}) {
    for (const bool named : {true, false}) {
      const testing::TempFile outputs(".onnx");
      int index = 0;
      const std::string p5 = edited_fixture(outputs, [&](onnx::ModelProto& m) {
        index = m.graph().node_size();
        onnx::NodeProto* n = m.mutable_graph()->add_node();
        n->set_op_type(op);
        n->add_input("/Relu_output_0");
        if (named) n->set_name("dangling");
      });
      const std::string who = named ? std::string("node dangling (") + op + ")"
                                    : "node " + std::to_string(index) + " (" + op + ", unnamed)";
      EXPECT_EQ(import_error(p5), p5 + ": " + who + " has no output");
    }
  }

  EXPECT_EQ(import_error(kData + "missing.onnx").rfind(kData + "missing.onnx", 0), 0u);
}

// Shape arithmetic on int64 constants at the ends of their range (found by fuzz_onnx: INT64_MAX
// went through a double, which cannot hold it, and back to int64, undefined behaviour that UBSan
// stops on): every Constant of the fixture's flatten chain set to each extreme imports exactly or
// is one error naming the file.
TEST(OnnxImport, Int64ConstantsAtTheEndsOfTheirRangeAreExactOrAnError) {
  int refused = 0, constants = 0;
  const onnx::ModelProto fixture = read_model(kData + "small.onnx");
  for (int k = 0; k < fixture.graph().node_size(); ++k) {
    const onnx::NodeProto& node = fixture.graph().node(k);
    if (node.op_type() != "Constant" || node.attribute_size() == 0 ||
        node.attribute(0).t().data_type() != onnx::TensorProto::INT64) {
      continue;
    }
    ++constants;
    for (const int64_t extreme :
         {std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min(), (int64_t{1} << 53) + 1}) {
      const testing::TempFile file(".onnx");
      const std::string path = edited_fixture(file, [&](onnx::ModelProto& m) {
        onnx::TensorProto* t = m.mutable_graph()->mutable_node(k)->mutable_attribute(0)->mutable_t();
        int64_t count = 1;
        for (const int64_t d : t->dims()) count *= d;
        t->clear_raw_data();
        t->clear_int64_data();
        for (int64_t i = 0; i < count; ++i) t->add_int64_data(extreme);
      });
      const std::string error = import_error(path);
      if (error.empty()) continue;
      ++refused;
      EXPECT_EQ(error.rfind(path + ": ", 0), 0u) << error;
    }
  }
  EXPECT_GT(constants, 0);
  EXPECT_GT(refused, 0);
}

// Every node of exported files that hold each imported operator (and a PyTorch one), with fewer
// inputs than it has or without outputs: import refuses it with a message naming the file, or
// imports what is left, and never crashes (protobuf's accessors abort on a missing index).
TEST(OnnxImport, NodesMissingInputsOrOutputsAreErrorsNotCrashes) {
  std::vector<onnx::ModelProto> models{read_model(kData + "small.onnx")};
  for (const char* cnet : {"mix.cnet", "extras.cnet"}) {
    Net net = load_model(kData + cnet);
    Executor executor(net, {.backend = Backend::Reference});
    const testing::TempFile file(".onnx");
    models.push_back(read_model(exported(executor, file)));
  }
  int refused = 0;
  for (const onnx::ModelProto& model : models) refused += testing::sweep_nodes_missing_inputs_or_outputs(model);
  EXPECT_GT(refused, 0);
}

TEST(OnnxCli, ExportImportAndCommandsReadingOnnx) {
  const testing::TempFile model(".onnx");
  const testing::TempFile dir("_import");
  testing::Result r = testing::run({"export", "lenet5", "-o", model.path().string()});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "wrote " + model.path().string() + " (ONNX opset 13)\n");
  r = testing::run({"import", model.path().string(), "-o", dir.path().string()});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir.path() / "model.cnet"));
  EXPECT_TRUE(fs::exists(dir.path() / "weights.safetensors"));
  r = testing::run({"summary", model.path().string()});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("c1"), std::string::npos);
  testing::expect_one_line_error(testing::run({"export", "lenet5", "-o", "x.txt"}));
  const testing::Result bad = testing::run({"summary", kData + "mix.cnet.onnx"});
  testing::expect_one_line_error(bad);
  std::error_code ec;
  fs::remove_all(dir.path(), ec);
}

}  // namespace
}  // namespace convnet
