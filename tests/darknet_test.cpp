// Darknet import: each cfg section's translation and volume, every error with its location, the
// .weights layout and its size errors, and convnet's output against darknet's own on the fixtures
// of tests/data/darknet (written by tests/golden/darknet_compare.py with Debian's darknet).
#include "convnet/interop/darknet.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "convnet/error.hpp"
#include "convnet/executor.hpp"
#include "convnet/io/safetensors.hpp"
#include "convnet/model/model.hpp"
#include "support/cli.hpp"

namespace convnet {
namespace {

namespace fs = std::filesystem;

const std::string kData = std::string(CONVNET_TEST_DATA) + "/darknet/";
const char* kNet = "[net]\nwidth=8\nheight=8\nchannels=3\n";

// The model text with runs of spaces squeezed to one, so that checks need not know the columns.
std::string squeezed(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c != ' ' || out.empty() || out.back() != ' ') out += c;
  }
  return out;
}

std::string translate(const std::string& body) {
  return squeezed(darknet::translate_cfg(kNet + body, "t.cfg").model_text);
}

Net build(const std::string& body) { return load_model_text(translate(body), "t.cfg (translated)"); }

std::string volume(const Net& net, const std::string& node) {
  const int id = net.find(node);
  return id < 0 ? "no node " + node : net.node(id).output.volume_string();
}

std::string error_of(const std::string& cfg) {
  try {
    (void)darknet::translate_cfg(cfg, "bad.cfg");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// A temporary file holding `bytes`.
struct TempFile {
  explicit TempFile(const std::string& name, const std::string& bytes)
      : path((fs::temp_directory_path() / ("convnet_darknet_" + std::to_string(::getpid()) + "_" + name)).string()) {
    std::ofstream(path, std::ios::binary) << bytes;
  }
  ~TempFile() { fs::remove(path); }
  std::string path;
};

std::string weights_bytes(int32_t major, int32_t minor, const std::vector<float>& values, bool seen64) {
  std::string out(12 + (seen64 ? 8 : 4), '\0');
  const int32_t header[3] = {major, minor, 0};
  std::memcpy(out.data(), header, 12);
  out.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
  return out;
}

std::vector<float> counting(size_t n) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>(i + 1);
  return v;
}

TEST(DarknetCfg, ConvolutionalWithBatchNormTranslatesToConvBatchnormActivation) {
  const std::string text = translate(
      "[convolutional]\nbatch_normalize=1\nfilters=16\nsize=3\nstride=1\npad=1\nactivation=leaky\n"
      "[convolutional]\nfilters=4\nsize=3\nstride=2\npadding=0\ngroups=2\nactivation=relu\n");
  EXPECT_NE(text.find("network t\ninput 3x8x8\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nconv0 conv 16 3x3 pad 1 bias false\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nbn0 batchnorm eps 1e-12\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nleaky0 leakyrelu slope 0.1 # [0] 8x8x16\n"), std::string::npos) << text;
  // (8 - 3)/2 + 1 rounds down in Darknet: written as 'round floor'.
  EXPECT_NE(text.find("\nconv1 conv 4 3x3 stride 2 groups 2 round floor\n"), std::string::npos) << text;
  const Net net = build(
      "[convolutional]\nbatch_normalize=1\nfilters=16\nsize=3\nstride=1\npad=1\nactivation=leaky\n"
      "[convolutional]\nfilters=4\nsize=3\nstride=2\npadding=0\ngroups=2\nactivation=relu\n");
  EXPECT_EQ(volume(net, "leaky0"), "8x8x16");
  EXPECT_EQ(volume(net, "relu1"), "3x3x4");
}

TEST(DarknetCfg, ActivationsMapToLayers) {
  const std::vector<std::pair<std::string, std::string>> cases{{"linear", ""},
                                                               {"relu", "relu0 relu"},
                                                               {"leaky", "leaky0 leakyrelu slope 0.1"},
                                                               {"logistic", "sigmoid0 sigmoid"},
                                                               {"tanh", "tanh0 tanh"},
                                                               {"elu", "elu0 elu"},
                                                               {"ramp", "ramp0 leakyrelu slope 0.09090909090909091"}};
  for (const auto& [activation, line] : cases) {
    const std::string text = translate("[convolutional]\nfilters=2\nactivation=" + activation + "\n");
    if (line.empty()) {
      EXPECT_EQ(text.find("conv0 conv 2 1x1"), text.rfind("conv0")) << text;
      EXPECT_NE(text.find("# [0] 8x8x2"), std::string::npos) << text;
    } else {
      EXPECT_NE(text.find(line), std::string::npos) << activation << "\n" << text;
    }
  }
  // Darknet's default activation is logistic.
  EXPECT_NE(translate("[convolutional]\nfilters=2\n").find("sigmoid0 sigmoid"), std::string::npos);
}

TEST(DarknetCfg, MaxpoolUsesDarknetsPaddingRule) {
  // out = (in + padding - size)/stride + 1 with padding = size - 1 by default, padding/2 before.
  const Net net = build(
      "[maxpool]\nsize=2\nstride=1\n"    // 8 -> 8: pad_end 1
      "[maxpool]\nsize=3\nstride=2\n"    // (8 + 2 - 3)/2 + 1 = 4: pad 1, end 0
      "[maxpool]\nsize=2\nstride=2\n"    // 4 -> 2: no padding read
      "[maxpool]\nsize=2\nstride=2\n");  // 2 -> 1
  const std::string text =
      translate("[maxpool]\nsize=2\nstride=1\n[maxpool]\nsize=3\nstride=2\n[maxpool]\nsize=2\nstride=2\n");
  EXPECT_NE(text.find("maxpool0 maxpool 2x2 stride 1 pad_end 1"), std::string::npos) << text;
  EXPECT_NE(text.find("maxpool1 maxpool 3x3 stride 2 pad 1 pad_end 0"), std::string::npos) << text;
  EXPECT_NE(text.find("maxpool2 maxpool 2x2 # [2] 2x2x3"), std::string::npos) << text;
  EXPECT_EQ(volume(net, "maxpool0"), "8x8x3");
  EXPECT_EQ(volume(net, "maxpool1"), "4x4x3");
  EXPECT_EQ(volume(net, "maxpool2"), "2x2x3");
  EXPECT_EQ(volume(net, "maxpool3"), "1x1x3");
  // Odd sizes round up through the padding: 7 -> 4 reads one padded column at the end.
  const Net odd =
      load_model_text(darknet::translate_cfg("[net]\nwidth=7\nheight=5\nchannels=1\n[maxpool]\nsize=2\nstride=2\n"
                                             "[maxpool]\nsize=3\nstride=2\npadding=0\n",
                                             "odd.cfg")
                          .model_text,
                      "odd");
  EXPECT_EQ(volume(odd, "maxpool0"), "3x4x1");
  EXPECT_EQ(volume(odd, "maxpool1"), "1x1x1");  // (3 - 3)/2 + 1 and (4 - 3)/2 + 1, the last column unread
}

TEST(DarknetCfg, ConnectedLocalDropoutSoftmaxAvgpoolAndCost) {
  const Net net = build(
      "[local]\nfilters=2\nsize=3\nstride=1\npad=1\nactivation=linear\n"
      "[connected]\nbatch_normalize=1\noutput=6\nactivation=linear\n"
      "[dropout]\nprobability=.25\n[connected]\noutput=4\nactivation=linear\n[softmax]\ngroups=1\n[cost]\ntype=sse\n");
  EXPECT_EQ(volume(net, "local0"), "8x8x2");
  EXPECT_EQ(volume(net, "bn1"), "6");
  EXPECT_EQ(volume(net, "dropout2"), "6");
  EXPECT_EQ(volume(net, "softmax4"), "4");
  EXPECT_EQ(net.node(net.output()).name, "softmax4");  // [cost] adds nothing
  const std::string text = translate("[connected]\noutput=6\n[dropout]\nprobability=.25\n[softmax]\n");
  EXPECT_NE(text.find("dropout1 dropout p 0.25"), std::string::npos) << text;
  // Darknet's softmax normalises over every value: a volume is flattened first.
  const Net spatial = build("[convolutional]\nfilters=2\nactivation=linear\n[softmax]\n");
  EXPECT_EQ(volume(spatial, "flatten1"), "128");
  EXPECT_EQ(volume(spatial, "softmax1"), "128");
  const Net pooled = build("[convolutional]\nfilters=5\nactivation=linear\n[avgpool]\n[softmax]\n");
  EXPECT_EQ(volume(pooled, "avgpool1"), "1x1x5");
  EXPECT_EQ(volume(pooled, "softmax2"), "1x1x5");
}

TEST(DarknetCfg, ShortcutsAndRoutes) {
  // Equal shapes: an add of named tensors; different shapes: a residual with option A.
  const std::string cfg =
      "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=leaky\n"
      "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=linear\n"
      "[shortcut]\nfrom=-2\nactivation=leaky\n"
      "[convolutional]\nfilters=8\nsize=3\nstride=2\npad=1\nactivation=linear\n"
      "[shortcut]\nfrom=-2\n"
      "[route]\nlayers=-1,-2\n"
      "[route]\nlayers=5, 3\n";
  const std::string text = translate(cfg);
  EXPECT_NE(text.find("shortcut2 add conv1 leaky0"), std::string::npos) << text;
  EXPECT_NE(text.find("residual"), std::string::npos) << text;
  EXPECT_NE(text.find("subsample4 maxpool 1x1 stride 2 round floor"), std::string::npos) << text;
  EXPECT_NE(text.find("pad4 padchannels 8"), std::string::npos) << text;
  EXPECT_NE(text.find("# [4] 4x4x8 (add)"), std::string::npos) << text;
  EXPECT_NE(text.find("route5 concat add conv3"), std::string::npos) << text;
  EXPECT_NE(text.find("route6 concat route5 conv3"), std::string::npos) << text;
  const Net net = build(cfg);
  EXPECT_EQ(volume(net, "leaky2"), "8x8x4");
  EXPECT_EQ(volume(net, "pad4"), "4x4x8");
  EXPECT_EQ(volume(net, "add"), "4x4x8");
  EXPECT_EQ(volume(net, "route5"), "4x4x16");
  EXPECT_EQ(volume(net, "route6"), "4x4x24");
}

TEST(DarknetCfg, NestedShortcutsStopAtTheModelLanguagesNestingLimit) {
  // Each shortcut from layer 0 to a deeper layer wraps everything before it in one more residual.
  std::string cfg = std::string(kNet) + "[convolutional]\nfilters=1\nactivation=linear\n";
  int line = 8;
  for (int i = 1; i <= 201; ++i) {
    cfg += "[convolutional]\nfilters=" + std::to_string(i + 1) + "\nactivation=linear\n[shortcut]\nfrom=0\n";
    line += 5;
  }
  EXPECT_EQ(error_of(cfg),
            "bad.cfg:" + std::to_string(line - 2) +
                ": [shortcut] would nest residual structures 201 deep, more than the model language's 200");
  const std::string shallow = cfg.substr(0, cfg.find("filters=201\n") - 16);
  EXPECT_NO_THROW((void)load_model_text(darknet::translate_cfg(shallow, "deep.cfg").model_text, "deep"));
}

TEST(DarknetCfg, CropBecomesTheInput) {
  const std::string text = squeezed(
      darknet::translate_cfg("[net]\nwidth=10\nheight=10\nchannels=3\n[crop]\ncrop_height=8\ncrop_width=6\nflip=1\n"
                             "[convolutional]\nfilters=2\nactivation=linear\n",
                             "crop.cfg")
          .model_text);
  EXPECT_NE(text.find("input 3x8x6\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# [0] crop: the network reads the centre 8x6 of the 10x10 image, scaled to [-1, 1]"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("conv1 conv 2 1x1"), std::string::npos) << text;
}

TEST(DarknetCfg, EveryErrorNamesTheFileLineAndSection) {
  const std::string net = "[net]\nwidth=8\nheight=8\nchannels=3\n";  // lines 1-4
  const std::string supported =
      "; convnet imports Darknet's classification networks: [net], [convolutional], [connected], [local], "
      "[maxpool], [avgpool], [dropout], [softmax], [shortcut], [route], [crop] (first) and [cost]";
  const std::vector<std::pair<std::string, std::string>> cases{
      {net + "[convlutional]\nfilters=2\n", "bad.cfg:5: [convlutional] is not a Darknet section convnet knows"},
      {net + "[yolo]\nclasses=80\n", "bad.cfg:5: [yolo] is a detection layer" + supported},
      {net + "[upsample]\nstride=2\n",
       "bad.cfg:5: [upsample] is a layer convnet's Darknet import does not translate" + supported},
      {net + "[rnn]\noutput=4\n", "bad.cfg:5: [rnn] is a recurrent layer" + supported},
      {net + "[convolutional]\nfilters=two\n", "bad.cfg:6: [convolutional] filters=two is not a whole number"},
      {net + "[convolutional]\nsize=0\n", "bad.cfg:6: [convolutional] size=0 is out of range (1 to 2147483647)"},
      {net + "[convolutional]\nfilters=99999999999\n",
       "bad.cfg:6: [convolutional] filters=99999999999 is out of range (1 to 2147483647)"},
      {net + "[convolutional]\nfliters=2\n",
       "bad.cfg:6: [convolutional] fliters=2 is not a key convnet knows in [convolutional]"},
      {net + "[convolutional]\nfilters=2\nfilters=3\n",
       "bad.cfg:7: [convolutional] filters=3 is given twice (also at line 6)"},
      {net + "[convolutional]\nactivation=swish\n",
       "bad.cfg:5: [convolutional] activation=swish is not supported; convnet translates linear, relu, leaky, "
       "logistic, tanh, elu and ramp"},
      {net + "[convolutional]\nsize=9\n",
       "bad.cfg:5: [convolutional] a window of 9 does not fit the height 8 padded by 0 in all"},
      {net + "[convolutional]\nfilters=4\ngroups=2\nbinary=1\n",
       "bad.cfg:5: [convolutional] binary=1 convolutions are not supported"},
      {net + "[dropout]\nprobability=1\n", "bad.cfg:5: [dropout] probability=1 must be in [0, 1)"},
      {net + "[dropout]\nprobability=x\n", "bad.cfg:6: [dropout] probability=x is not a finite number"},
      {net + "[route]\nlayers=-1,-9\n",
       "bad.cfg:5: [route] layers=-1 refers to layer -1; this is layer 0, which can read layers 0 to -1"},
      {net + "[maxpool]\n[maxpool]\n[route]\nlayers=-1,-9\n",
       "bad.cfg:7: [route] layers=-9 refers to layer -7; this is layer 2, which can read layers 0 to 1"},
      {net + "[maxpool]\n[route]\nlayers=0\n",
       "bad.cfg:6: [route] of one layer (a branch from layer 0) is not supported: convnet's model language reads an "
       "earlier tensor only through add, mul or concat"},
      {net + "[maxpool]\n[maxpool]\nsize=2\nstride=2\n[route]\nlayers=0,1\n",
       "bad.cfg:9: [route] concatenates layer 1's 4x4x3 with layer 0's 8x8x3: the images must have the same height "
       "and width"},
      {net + "[convolutional]\nfilters=4\n[convolutional]\nfilters=2\n[shortcut]\nfrom=-2\n",
       "bad.cfg:9: [shortcut] adds layer 0's 8x8x4 to layer 1's 8x8x2: convnet translates equal shapes, or the first "
       "subsampled by a whole stride and with no more channels (zero-padded)"},
      {net + "[convolutional]\nfilters=4\n[shortcut]\nfrom=-1\nactivation=ramp\n",
       "bad.cfg:7: [shortcut] activation=ramp is not supported here (it folds into the weights of a convolutional, "
       "connected or local layer); convnet translates linear, relu, leaky, logistic, tanh, elu and ramp"},
      {net + "[shortcut]\n", "bad.cfg:5: [shortcut] needs from="},
      {net + "[local]\nsize=5\npad=1\n",
       "bad.cfg:5: [local] pad=1 with size=5: Darknet's local layer is consistent only with pad=0 or 2*pad = size - 1"},
      {net + "[maxpool]\nsize=2\npadding=4\n",
       "bad.cfg:5: [maxpool] padding=4 pads 2 on a side of a window of 2; convnet, like PyTorch, pads at most half the "
       "window"},
      {net + "[connected]\noutput=4\n[convolutional]\nfilters=2\n",
       "bad.cfg:7: [convolutional] needs an image input, but the layer before gives a vector of 4"},
      {net + "[maxpool]\n[crop]\ncrop_height=2\ncrop_width=2\n",
       "bad.cfg:6: [crop] is supported only as the first layer (it crops the input image)"},
      {net + "[softmax]\ngroups=2\n", "bad.cfg:5: [softmax] groups other than 1 are not supported"},
      {"[net]\nwidth=8\nchannels=3\n[maxpool]\n", "bad.cfg:1: [net] needs height="},
      {net, "bad.cfg:1: [net] is followed by no layer convnet computes ([crop] and [cost] add none)"},
      {net + "[cost]\n", "bad.cfg:1: [net] is followed by no layer convnet computes ([crop] and [cost] add none)"},
      {"[convolutional]\nfilters=2\n", "bad.cfg:1: the first section must be [net], found [convolutional]"},
      {"width=8\n[net]\n", "bad.cfg:1: 'width=8' comes before the first section ([net])"},
      {net + "[maxpool]\nsize 2\n", "bad.cfg:6: 'size2' is neither a [section] nor a key=value line"},
      {net + "[maxpool\n", "bad.cfg:5: '[maxpool' is not a section line; write it as [name]"},
      {"# nothing\n", "bad.cfg: no sections; a Darknet cfg starts with [net]"},
  };
  for (const auto& [cfg, message] : cases) EXPECT_EQ(error_of(cfg), message) << cfg;
}

TEST(DarknetCfg, ModelCommandsReadACfgFile) {
  TempFile cfg("model.cfg", std::string(kNet) + "[convolutional]\nfilters=2\nactivation=relu\n[avgpool]\n");
  const Net net = load_model(cfg.path);
  EXPECT_EQ(net.name(), "convnet_darknet_" + std::to_string(::getpid()) + "_model");
  EXPECT_EQ(volume(net, "avgpool1"), "1x1x2");
  std::string file;
  const std::string text = read_model_source(cfg.path, file);
  EXPECT_EQ(file, cfg.path + " (translated)");
  EXPECT_NE(squeezed(text).find("relu0 relu"), std::string::npos);
  TempFile bad("bad.cfg", std::string(kNet) + "[yolo]\n");
  try {
    (void)load_model(bad.path);
    ADD_FAILURE() << "a [yolo] section loaded";
  } catch (const SpecError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(bad.path + ":5: [yolo] is a detection layer", 0), 0u) << e.what();
  }
}

// --- .weights ---

const char* kWeightsCfg =
    "[net]\nwidth=2\nheight=2\nchannels=1\n"
    "[convolutional]\nbatch_normalize=1\nfilters=2\nsize=1\nactivation=linear\n"  // 2 + 6 + 2 weights = 10
    "[connected]\noutput=3\nactivation=ramp\n";                                   // 3 + 3*8 = 27

TEST(DarknetWeights, LayoutFollowsDarknetsFileOrder) {
  const darknet::Translation t = darknet::translate_cfg(kWeightsCfg, "w.cfg");
  ASSERT_EQ(t.weights.size(), 2u);
  std::vector<std::string> names;
  for (const auto& layer : t.weights) {
    for (const auto& run : layer.runs) names.push_back(run.parameter);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"bn0.bias", "bn0.weight", "bn0.running_mean", "bn0.running_var",
                                             "conv0.weight", "fc1.bias", "fc1.weight"}));
  TempFile file("w.weights", weights_bytes(0, 2, counting(37), true));
  const SafetensorsContent c = darknet::read_weights(t, file.path);
  EXPECT_EQ(c.tensors.at("bn0.bias").values, (std::vector<float>{1, 2}));
  EXPECT_EQ(c.tensors.at("bn0.weight").values, (std::vector<float>{3, 4}));
  EXPECT_EQ(c.tensors.at("bn0.running_mean").values, (std::vector<float>{5, 6}));
  // Stored so that sqrt(var + 1e-12) is Darknet's sqrt(v) + 1e-6.
  EXPECT_FLOAT_EQ(c.tensors.at("bn0.running_var").values[0],
                  static_cast<float>(std::pow(std::sqrt(7.0) + 1e-6, 2) - 1e-12));
  EXPECT_EQ(c.tensors.at("conv0.weight").shape, (std::vector<int64_t>{2, 1, 1, 1}));
  EXPECT_EQ(c.tensors.at("conv0.weight").values, (std::vector<float>{9, 10}));
  // ramp = 1.1 * leaky(1/11): the fc's bias and weights are scaled by 1.1.
  EXPECT_FLOAT_EQ(c.tensors.at("fc1.bias").values[2], 13 * 1.1f);
  EXPECT_EQ(c.tensors.at("fc1.weight").shape, (std::vector<int64_t>{3, 8}));
  EXPECT_FLOAT_EQ(c.tensors.at("fc1.weight").values[1], 15 * 1.1f);
  EXPECT_EQ(c.metadata.at("darknet_version"), "0.2.0");
}

TEST(DarknetWeights, OldHeadersAndTransposedConnectedWeights) {
  const darknet::Translation t = darknet::translate_cfg(kWeightsCfg, "w.cfg");
  // Version 0.1: `seen` is 32 bits.
  TempFile old("old.weights", weights_bytes(0, 1, counting(37), false));
  EXPECT_EQ(darknet::read_weights(t, old.path).tensors.at("conv0.weight").values, (std::vector<float>{9, 10}));
  // major or minor past 1000: connected weights stored (inputs, outputs).
  TempFile transposed("t.weights", weights_bytes(1001, 0, counting(37), true));
  const std::vector<float> w = darknet::read_weights(t, transposed.path).tensors.at("fc1.weight").values;
  EXPECT_FLOAT_EQ(w[1], (14 + 3) * 1.1f);  // weight (output 0, input 1) is stored at 1*3 + 0
}

// The IoError read_weights gives for `bytes`, or "" when it reads them.
std::string weights_error(const darknet::Translation& t, const std::string& name, const std::string& bytes) {
  const TempFile file(name, bytes);
  try {
    (void)darknet::read_weights(t, file.path);
  } catch (const IoError& e) {
    const std::string message = e.what();
    return message.rfind(file.path, 0) == 0 ? name + message.substr(file.path.size()) : message;
  }
  return "";
}

TEST(DarknetWeights, WrongLengthsGiveBothSizes) {
  const darknet::Translation t = darknet::translate_cfg(kWeightsCfg, "w.cfg");
  EXPECT_EQ(weights_error(t, "short.weights", weights_bytes(0, 2, counting(20), true)),
            "short.weights: 100 bytes, but the cfg needs 168 (a 20-byte header and 37 float32 values): it ends inside "
            "layer 1 ([connected] at cfg line 10)");
  EXPECT_EQ(weights_error(t, "long.weights", weights_bytes(0, 2, counting(38), true)),
            "long.weights: 172 bytes, but the cfg needs 168 (a 20-byte header and 37 float32 values): 4 bytes more; "
            "is it the weights of another cfg?");
  EXPECT_EQ(weights_error(t, "tiny.weights", "abc"),
            "tiny.weights: 3 bytes, but the cfg needs 164 (a 16-byte header and 37 float32 values): it ends inside "
            "the header");
  EXPECT_EQ(weights_error(t, "exact.weights", weights_bytes(0, 2, counting(37), true)), "");
}

// --- against darknet ---

void expect_darknet_output(const std::string& name, Backend backend) {
  const std::string cfg = kData + name + ".cfg";
  Net net = load_model(cfg);
  Executor executor(net, {.backend = backend});
  darknet::load_network_weights(executor, cfg, kData + name + ".weights");
  const SafetensorsContent io = read_safetensors(kData + name + "-io.safetensors");
  const StoredTensor& input = io.tensors.at("input");
  Tensor x(input.shape);
  std::copy(input.values.begin(), input.values.end(), x.data());
  const Tensor& y = executor.forward(x, false);
  const std::vector<float>& expected = io.tensors.at("output").values;
  ASSERT_EQ(y.numel(), static_cast<int64_t>(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(y[static_cast<int64_t>(i)], expected[i], 1e-5 * std::abs(expected[i]) + 1e-7) << name << " " << i;
  }
}

TEST(DarknetWeights, OutputsEqualDarknetsOnTheFixtures) {
  for (const char* name : {"mixed", "pool"}) {
    expect_darknet_output(name, Backend::Reference);
    expect_darknet_output(name, Backend::OneDnn);
  }
}

TEST(DarknetWeights, ImportedSafetensorsGiveTheSameOutput) {
  // cfg + .weights -> model text + safetensors (what 'convnet import' writes) -> the same numbers.
  const std::string cfg = kData + "mixed.cfg";
  const darknet::Translation t = darknet::translate_cfg_file(cfg);
  Net direct = load_model(cfg);
  Executor a(direct, {.backend = Backend::Reference});
  load_parameters(darknet::read_weights(t, kData + "mixed.weights"), a, "mixed.weights");
  const std::string saved =
      (fs::temp_directory_path() / ("convnet_darknet_" + std::to_string(::getpid()) + ".st")).string();
  save_weights(a, saved);
  Net imported = load_model_text(t.model_text, "model.cnet");
  Executor b(imported, {.backend = Backend::Reference, .seed = 9});
  load_weights(b, saved);
  fs::remove(saved);
  Tensor x({2, 3, 12, 12});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = static_cast<float>(i % 17) / 17.0f;
  const Tensor ya = a.forward(x, false);
  const Tensor& yb = b.forward(x, false);
  for (int64_t i = 0; i < ya.numel(); ++i) EXPECT_EQ(ya[i], yb[i]) << i;
  // A .weights file needs its cfg.
  EXPECT_THROW(darknet::load_network_weights(b, "model.cnet", kData + "mixed.weights"), IoError);
}

TEST(DarknetCli, ImportWritesTheModelAndWeightsAndSummaryReadsTheCfg) {
  const testing::TempFile dir("_import");
  const testing::Result r =
      testing::run({"import", kData + "mixed.cfg", "--weights", kData + "mixed.weights", "-o", dir.path().string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_CONTAINS(r.out, "weights.safetensors (36 tensors from ");
  EXPECT_CONTAINS(r.out, "model.cnet (network mixed, 30 layers)");
  const std::string model = testing::read_file(dir.path() / "model.cnet");
  EXPECT_EQ(model, darknet::translate_cfg_file(kData + "mixed.cfg").model_text);
  EXPECT_EQ(read_safetensors((dir.path() / "weights.safetensors").string()).tensors.size(),
            36u);  // 5 batch norms x 5, 4 + 2 conv, 2 local, 3 fc
  const testing::Result summary = testing::run({"summary", kData + "pool.cfg"});
  ASSERT_EQ(summary.code, 0) << summary.err;
  EXPECT_CONTAINS(summary.out, "maxpool1");
  fs::remove_all(dir.path());
  // A wrong weights file: one line, and nothing written.
  const testing::Result bad =
      testing::run({"import", kData + "pool.cfg", "--weights", kData + "mixed.weights", "-o", dir.path().string()});
  testing::expect_one_line_error(bad);
  EXPECT_CONTAINS(bad.err, "mixed.weights: 14,960 bytes, but the cfg needs 1,544");
  EXPECT_FALSE(fs::exists(dir.path() / "model.cnet"));
  fs::remove_all(dir.path());
  const TempFile yolo_cfg("yolo.cfg", std::string(kNet) + "[convolutional]\nfilters=2\n\n[yolo]\nclasses=1\n");
  const testing::Result yolo = testing::run({"summary", yolo_cfg.path});
  testing::expect_one_line_error(yolo);
  EXPECT_CONTAINS(yolo.err, "convnet: " + yolo_cfg.path + ":8: [yolo] is a detection layer;");
}

TEST(DarknetCfg, DebiansClassificationCfgsBuild) {
  // Darknet's own tables agree layer by layer (tests/golden/darknet_compare.py); here each builds and
  // ends where darknet's table ends. Skipped without Debian's darknet package.
  const std::string dir = "/usr/share/darknet/cfg/";
  if (!fs::exists(dir + "tiny.cfg")) GTEST_SKIP() << "Debian's darknet package is not installed";
  const std::vector<std::tuple<std::string, int, int64_t>> cfgs{{"alexnet", 13, 1000},
                                                                {"vgg-16", 24, 1000},
                                                                {"resnet18", 28, 1000},
                                                                {"resnet34", 52, 1000},
                                                                {"resnet50", 68, 1000},
                                                                {"resnet101", 137, 1000},
                                                                {"resnet152", 204, 1000},
                                                                {"resnext50", 68, 1000},
                                                                {"resnext101-32x4d", 136, 1000},
                                                                {"resnext152-32x4d", 204, 1000},
                                                                {"densenet201", 304, 1000},
                                                                {"darknet", 15, 1000},
                                                                {"darknet19", 25, 1000},
                                                                {"darknet53", 77, 1000},
                                                                {"extraction", 26, 1000},
                                                                {"tiny", 21, 1000},
                                                                {"cifar", 16, 10},
                                                                {"strided", 25, 1000}};
  for (const auto& [name, last, classes] : cfgs) {
    const darknet::Translation t = darknet::translate_cfg_file(dir + name + ".cfg");
    const Net net = load_model_text(t.model_text, name);
    EXPECT_EQ(net.node(net.output()).output.numel(), classes) << name;
    const bool has_last = t.model_text.find("# [" + std::to_string(last) + "] ") != std::string::npos;
    const bool last_is_cost = t.model_text.find("# [" + std::to_string(last - 1) + "] ") != std::string::npos;
    EXPECT_TRUE(has_last || last_is_cost) << name;
    EXPECT_EQ(t.model_text.find("# [" + std::to_string(last + 1) + "] "), std::string::npos) << name;
  }
}

}  // namespace
}  // namespace convnet
