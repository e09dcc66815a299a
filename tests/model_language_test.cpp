// The model language: names (torchvision style), blocks and repetition, residual shortcuts,
// concat and dense structures, printing back, the C++ builder, and located errors.
#include <gtest/gtest.h>

#include "convnet/error.hpp"
#include "convnet/layers/conv2d.hpp"
#include "convnet/layers/merge.hpp"
#include "convnet/model/model.hpp"

namespace convnet {
namespace {

std::vector<std::string> parameter_names(const Net& net) {
  std::vector<std::string> names;
  for (const Node& node : net.nodes()) {
    for (const ParamSpec& p : node.params) names.push_back(node.name + "." + p.name);
  }
  return names;
}

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

const char* kTinyResNet = R"(# two stages of basic blocks
network tiny
input 3x32x32
round floor
block basic(width, stride=1)
  residual
    conv1 conv $width 3x3 stride $stride pad 1 bias false
    bn1   batchnorm
          relu
    conv2 conv $width 3x3 pad 1 bias false
    bn2   batchnorm
  downsample shortcut
    conv $width 1x1 stride $stride bias false
    batchnorm
  end
  relu
end
conv1  conv 16 3x3 pad 1 bias false
layer1 basic(16) x2
layer2 sequential
  basic(32, stride=2)
  basic(32)
end
pool globalavgpool
fc     fc 10
)";

TEST(ModelLanguage, NamesComposeLikeTorchvision) {
  const Net net = load_model_text(kTinyResNet, "tiny.cnet");
  const auto names = parameter_names(net);
  EXPECT_TRUE(contains(names, "layer1.0.conv1.weight"));
  EXPECT_TRUE(contains(names, "layer1.1.bn2.running_var"));
  EXPECT_TRUE(contains(names, "layer2.0.downsample.0.weight"));
  EXPECT_TRUE(contains(names, "layer2.0.downsample.1.bias"));
  EXPECT_TRUE(contains(names, "fc.weight"));
}

TEST(ModelLanguage, ShortcutIsBuiltOnlyWhereTheShapeChanges) {
  const auto names = parameter_names(load_model_text(kTinyResNet, "tiny.cnet"));
  EXPECT_FALSE(contains(names, "layer1.0.downsample.0.weight"));
  EXPECT_FALSE(contains(names, "layer2.1.downsample.0.weight"));
  EXPECT_TRUE(contains(names, "layer2.0.downsample.0.weight"));
}

TEST(ModelLanguage, UnnamedItemsAreNamedByPosition) {
  const Net net = load_model_text("network v\ninput 3x8x8\nfeatures sequential\n conv 4 3x3 pad 1\n relu\n"
                                  " conv 4 3x3 pad 1\nend\n", "v.cnet");
  EXPECT_GE(net.find("features.0"), 0);
  EXPECT_GE(net.find("features.1"), 0);
  EXPECT_GE(net.find("features.2"), 0);
}

TEST(ModelLanguage, DenseRepetitionUsesTheGivenNames) {
  const Net net = load_model_text(R"(network d
input 8x8x8
block dense_layer(growth)
  dense
    norm1 batchnorm
    conv1 conv $(4*growth) 1x1 bias false
    conv2 conv $growth 3x3 pad 1 bias false
  end
end
denseblock1 dense_layer(4) x3 as denselayer1
)", "d.cnet");
  const auto names = parameter_names(net);
  EXPECT_TRUE(contains(names, "denseblock1.denselayer1.conv1.weight"));
  EXPECT_TRUE(contains(names, "denseblock1.denselayer3.conv2.weight"));
  EXPECT_EQ(net.nodes().back().output.channels(), 8 + 3 * 4);  // each layer appends `growth` channels
  EXPECT_EQ(net.node(net.find("denseblock1.denselayer1.conv1")).output.channels(), 16);
}

TEST(ModelLanguage, GateGraphOfTheNotesBuilds) {
  const Net net = load_model_text("network gate\ninput x 1\ninput y 1\ninput z 1\nq add x y\nf mul q z\n", "gate.cnet");
  EXPECT_EQ(net.inputs().size(), 3u);
  const Node& f = net.node(net.output());
  EXPECT_EQ(f.name, "f");
  EXPECT_EQ(f.layer->kind(), "mul");
  EXPECT_EQ(net.node(f.inputs[0]).name, "q");
  EXPECT_EQ(net.node(f.inputs[1]).name, "z");
}

TEST(ModelLanguage, ArgumentsThatLookLikeARepetitionKeepTheirX1WhenPrinted) {
  // Found by fuzz_model: "pad x0213200 x1" printed without its x1, and the last argument then read
  // as an (out of range) repetition. The same for "... x3 as name x1".
  for (const char* line : {"conv 32 5x5 pad x0213200 x1", "conv 8 3x3 x3 as a1 x1", "relu x7 x1"}) {
    const std::string text = std::string("network n\ninput 3x8x8\n") + line + "\n";
    const std::string printed = model::print(model::parse(text, "x.cnet"));
    EXPECT_NE(printed.find(std::string(line)), std::string::npos) << printed;
    EXPECT_EQ(model::print(model::parse(printed, "printed.cnet")), printed) << line;
  }
  // A plain item still prints without a repetition.
  EXPECT_EQ(model::print(model::parse("network n\ninput 3x8x8\nconv 8 3x3\n", "y.cnet")).find(" x1"), std::string::npos);
}

TEST(ModelLanguage, ParsedModelPrintsBackAndReparsesToTheSameText) {
  const model::ModelAst ast = model::parse(kTinyResNet, "tiny.cnet");
  const std::string printed = model::print(ast);
  EXPECT_EQ(model::print(model::parse(printed, "printed.cnet")), printed);
  EXPECT_NE(printed.find("layer1 basic(16) x2"), std::string::npos) << printed;
  EXPECT_NE(printed.find("downsample shortcut"), std::string::npos) << printed;
  // The printed model builds the same graph.
  EXPECT_EQ(parameter_names(load_model_text(printed, "printed.cnet")),
            parameter_names(load_model_text(kTinyResNet, "tiny.cnet")));
}

TEST(ModelLanguage, LayerLevelRoundingOverridesTheExactDefault) {
  const Net net = load_model_text("network r\ninput 1x8x8\np maxpool 3x3 stride 2 round ceil\n", "r.cnet");
  EXPECT_EQ(net.nodes().back().output.height(), 4);  // (8 - 3)/2 + 1 = 3.5 -> 4
  EXPECT_THROW((void)load_model_text("network r\ninput 1x8x8\np maxpool 3x3 stride 2\n", "r.cnet"), ShapeError);
  const Net floor = load_model_text("network r\ninput 1x8x8\nround floor\np maxpool 3x3 stride 2\n", "r.cnet");
  EXPECT_EQ(floor.nodes().back().output.height(), 3);
}

TEST(ModelLanguage, InputShapeCanBeReplaced) {
  const Net net = load_model("resnet18", {.input_shape = Shape{3, 32, 32}});
  EXPECT_EQ(net.nodes().front().output, (Shape{3, 32, 32}));
  EXPECT_EQ(net.node(net.output()).output, Shape{1000});
}

TEST(Builder, BuildsTheSameGraphFromCpp) {
  NetBuilder b("tiny");
  b.input("input", {3, 32, 32});
  const int conv = b.add("conv1", std::make_unique<Conv2d>(Conv2dOptions{
                                      .out_channels = 10,
                                      .window = {.kernel = {5, 5}, .padding = {2, 2}},
                                  }));
  b.add("sum", std::make_unique<Add>(), {conv, conv});
  const Net net = std::move(b).build();
  EXPECT_EQ(net.node(net.find("conv1")).output.volume_string(), "32x32x10");
  EXPECT_EQ(net.node(net.output()).name, "sum");
}

struct BadModel {
  const char* what;
  const char* text;
  const char* location;  // expected "file:line:col" prefix
  const char* fragment;  // expected part of the message
};

class BadModelFile : public ::testing::TestWithParam<BadModel> {};

TEST_P(BadModelFile, GivesOneLocatedError) {
  const BadModel& c = GetParam();
  try {
    (void)load_model_text(c.text, "bad.cnet");
    FAIL() << c.what << ": no error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind(c.location, 0), 0u) << c.what << ": " << message;
    EXPECT_NE(message.find(c.fragment), std::string::npos) << c.what << ": " << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << "one line: " << message;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadModelFile,
    ::testing::Values(
        BadModel{"unknown layer", "network n\ninput 3x8x8\nc1 convv 8 3x3\n", "bad.cnet:3:4", "unknown layer kind 'convv' (did you mean 'conv'?)"},
        BadModel{"unknown unnamed layer", "network n\ninput 3x8x8\nrelux\n", "bad.cnet:3:1", "unknown layer kind 'relux'"},
        BadModel{"bad number", "network n\ninput 3x8x8\nconv 8x 3x3\n", "bad.cnet:3:6", "expected a whole number for out_channels, found '8x'"},
        BadModel{"bad option value", "network n\ninput 3x8x8\nconv 8 3x3 stride two\n", "bad.cnet:3:19", "stride"},
        BadModel{"too many block args", "network n\ninput 3x8x8\nblock b(w)\n conv $w 1x1\nend\nb(1, 2)\n", "bad.cnet:6:6", "takes at most 1 argument(s), got 2"},
        BadModel{"missing block arg", "network n\ninput 3x8x8\nblock b(w)\n conv $w 1x1\nend\nb()\n", "bad.cnet:6:1", "needs a value for 'w'"},
        BadModel{"unknown keyword", "network n\ninput 3x8x8\nblock b(w)\n conv $w 1x1\nend\nb(w=1, k=2)\n", "bad.cnet:6:8", "has no parameter 'k'"},
        BadModel{"mismatched add", "network n\ninput 3x8x8\nresidual\n conv 4 3x3 pad 1\nend\n", "bad.cnet:3:1", "the body gives 8x8x4 but its input is 8x8x3"},
        BadModel{"mismatched concat", "network n\ninput 3x8x8\nconcat\n conv 4 3x3\n conv 4 3x3 pad 1\nend\n", "bad.cnet:3:1", "6x6x4"},
        BadModel{"filter does not fit", "network n\ninput 3x7x7\nconv 4 3x3 stride 3\n", "bad.cnet:3:1", "= 2.33"},
        BadModel{"filter too big", "network n\ninput 3x5x5\nconv 4 7x7\n", "bad.cnet:3:1", "does not fit"},
        BadModel{"empty file", "", "bad.cnet:1:1", "empty"},
        BadModel{"comments only", "# nothing here\n", "bad.cnet:1:1", "empty"},
        BadModel{"no input", "network n\nconv 4 3x3\n", "bad.cnet:1:1", "no input"},
        BadModel{"missing end", "network n\ninput 3x8x8\nresidual\n relu\n", "bad.cnet:3:1", "missing 'end'"},
        BadModel{"stray end", "network n\ninput 3x8x8\nrelu\nend\n", "bad.cnet:4:1", "'end' without"},
        BadModel{"unknown parameter", "network n\ninput 3x8x8\nblock b(w)\n conv $width 1x1\nend\nb(1)\n", "bad.cnet:4:7", "unknown parameter '$width'"},
        BadModel{"duplicate name", "network n\ninput 3x8x8\na relu\na relu\n", "bad.cnet:4:1", "already used"},
        BadModel{"unknown input name", "network n\ninput x 1\nq add x y\n", "bad.cnet:3:9", "no tensor named 'y'"},
        BadModel{"bad input dims", "network n\ninput 3x0x8\nrelu\n", "bad.cnet:2:7", "CxHxW"},
        BadModel{"fc then conv", "network n\ninput 3x8x8\nfc 10\nconv 4 1x1\n", "bad.cnet:4:1", "needs a CxHxW volume"}));

}  // namespace
}  // namespace convnet
