// Every layer kind's shape rule, torchvision-named parameters and MACs, checked against tables of
// hand-computed cases, plus the shape and option errors and what their messages must show.
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "convnet/error.hpp"
#include "convnet/layer.hpp"
#include "convnet/layers/activation.hpp"
#include "convnet/layers/conv2d.hpp"
#include "convnet/layers/dropout.hpp"
#include "convnet/layers/flatten.hpp"
#include "convnet/layers/linear.hpp"
#include "convnet/layers/local2d.hpp"
#include "convnet/layers/maxout.hpp"
#include "convnet/layers/merge.hpp"
#include "convnet/layers/normalization.hpp"
#include "convnet/layers/pool2d.hpp"
#include "convnet/layers/tiled_conv2d.hpp"
#include "convnet/model/model.hpp"

namespace convnet {
namespace {

using Dims = std::vector<int64_t>;

// EXPECT_CONTAINS(text, part): `text` holds `part` (plain GoogleTest; gmock is not linked).
#define EXPECT_CONTAINS(text, part)                                                        \
  EXPECT_NE(std::string(text).find(part), std::string::npos)                               \
      << "expected to find: " << (part) << "\n              in: " << (text)
#define EXPECT_NOT_CONTAINS(text, part)                                                    \
  EXPECT_EQ(std::string(text).find(part), std::string::npos)                               \
      << "expected not to find: " << (part) << "\n                  in: " << (text)

struct Param {
  std::string name;
  Dims dims;
};

// One row of a shape table: a layer, its input shape(s), and what it must report.
struct Case {
  std::string what;
  std::function<std::unique_ptr<Layer>()> make;
  std::vector<Shape> inputs;
  Shape output;
  std::vector<Param> params;
  int64_t macs = 0;
  std::string args = "";
};

Window win(Size2 kernel, Size2 stride = {1, 1}, Size2 padding = {0, 0}, Size2 dilation = {1, 1},
           Rounding rounding = Rounding::Exact) {
  return Window{kernel, stride, padding, dilation, rounding};
}

template <class L, class O>
std::function<std::unique_ptr<Layer>()> make(O options) {
  return [options] { return std::make_unique<L>(options); };
}

template <class L>
std::function<std::unique_ptr<Layer>()> make() {
  return [] { return std::make_unique<L>(); };
}

void check_table(const std::string& kind, const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    SCOPED_TRACE(kind + ": " + c.what);
    const std::unique_ptr<Layer> layer = c.make();
    EXPECT_EQ(layer->kind(), kind);
    const Shape out = layer->output_shape(c.inputs);
    EXPECT_EQ(out, c.output) << "got " << out.chw_string() << ", expected " << c.output.chw_string();
    const std::vector<ParamSpec> params = layer->parameters(c.inputs);
    ASSERT_EQ(params.size(), c.params.size());
    for (size_t i = 0; i < params.size(); ++i) {
      EXPECT_EQ(params[i].name, c.params[i].name);
      EXPECT_EQ(params[i].dims, c.params[i].dims) << params[i].name;
    }
    EXPECT_EQ(layer->macs(c.inputs, out), c.macs);
    EXPECT_EQ(layer->args(), c.args);
  }
}

// The message of the ShapeError that `output_shape` throws (empty and a failure if none).
std::string shape_error(const Layer& layer, const std::vector<Shape>& inputs) {
  try {
    (void)layer.output_shape(inputs);
  } catch (const ShapeError& e) {
    return e.what();
  }
  ADD_FAILURE() << layer.kind() << " accepted its input without a ShapeError";
  return "";
}

// A one-layer network in the model language: the layer is on line 4 of "t.cnet".
Net one_layer(const std::string& input, const std::string& layer_line) {
  return load_model_text("# test\nnetwork t\ninput " + input + "\n" + layer_line + "\n", "t.cnet");
}

std::string spec_error(const std::string& input, const std::string& layer_line) {
  try {
    (void)one_layer(input, layer_line);
  } catch (const SpecError& e) {
    return e.what();
  }
  ADD_FAILURE() << "'" << layer_line << "' was accepted without a SpecError";
  return "";
}

// ---------------------------------------------------------------------------------------------
// Shape tables

TEST(Conv2d, OutputShapeParametersAndMacsMatchTheTable) {
  check_table(
      "conv",
      {
          {"AlexNet conv1", make<Conv2d>(Conv2dOptions{.out_channels = 96, .window = win({11, 11}, {4, 4})}),
           {{3, 227, 227}}, {96, 55, 55}, {{"weight", {96, 3, 11, 11}}, {"bias", {96}}}, 105415200,
           "96 11x11 stride 4"},
          {"stride and padding", make<Conv2d>(Conv2dOptions{.out_channels = 16, .window = win({3, 3}, {2, 2}, {1, 1})}),
           {{3, 31, 31}}, {16, 16, 16}, {{"weight", {16, 3, 3, 3}}, {"bias", {16}}}, 16 * 16 * 16 * 27,
           "16 3x3 stride 2 pad 1"},
          {"non-square kernel and padding",
           make<Conv2d>(Conv2dOptions{.out_channels = 192, .window = win({1, 7}, {1, 1}, {0, 3}), .bias = false}),
           {{64, 17, 17}}, {192, 17, 17}, {{"weight", {192, 64, 1, 7}}}, 17 * 17 * 192 * 64 * 7,
           "192 1x7 pad 0x3 bias false"},
          {"non-square stride", make<Conv2d>(Conv2dOptions{.out_channels = 4, .window = win({2, 4}, {2, 4})}),
           {{1, 10, 20}}, {4, 5, 5}, {{"weight", {4, 1, 2, 4}}, {"bias", {4}}}, 5 * 5 * 4 * 8, "4 2x4 stride 2x4"},
          {"dilation 2: a 3x3 spans 5", make<Conv2d>(Conv2dOptions{.out_channels = 1, .window = win({3, 3}, {1, 1}, {0, 0}, {2, 2})}),
           {{1, 7, 7}}, {1, 3, 3}, {{"weight", {1, 1, 3, 3}}, {"bias", {1}}}, 9 * 9, "1 3x3 dilation 2"},
          {"groups divide the input depth",
           make<Conv2d>(Conv2dOptions{.out_channels = 128, .window = win({3, 3}, {1, 1}, {1, 1}), .groups = 32}),
           {{64, 56, 56}}, {128, 56, 56}, {{"weight", {128, 2, 3, 3}}, {"bias", {128}}}, 56 * 56 * 128 * 2 * 9,
           "128 3x3 pad 1 groups 32"},
          {"stride larger than the kernel", make<Conv2d>(Conv2dOptions{.out_channels = 2, .window = win({1, 1}, {4, 4})}),
           {{3, 9, 9}}, {2, 3, 3}, {{"weight", {2, 3, 1, 1}}, {"bias", {2}}}, 3 * 3 * 2 * 3, "2 1x1 stride 4"},
          {"ResNet stem rounded down",
           make<Conv2d>(Conv2dOptions{.out_channels = 64,
                                      .window = win({7, 7}, {2, 2}, {3, 3}, {1, 1}, Rounding::Floor),
                                      .bias = false}),
           {{3, 224, 224}}, {64, 112, 112}, {{"weight", {64, 3, 7, 7}}}, 112LL * 112 * 64 * 147,
           "64 7x7 stride 2 pad 3 round floor bias false"},
          {"rounded up", make<Conv2d>(Conv2dOptions{.out_channels = 1, .window = win({3, 3}, {2, 2}, {0, 0}, {1, 1}, Rounding::Ceil)}),
           {{1, 8, 8}}, {1, 4, 4}, {{"weight", {1, 1, 3, 3}}, {"bias", {1}}}, 16 * 9, "1 3x3 stride 2 round ceil"},
      });
}

TEST(LocallyConnected2d, ParametersAreOneFilterBankPerOutputPosition) {
  // H2*W2*K*C*F*F weights + K*H2*W2 biases.
  check_table("local",
              {
                  {"3x3 on 8x8", make<LocallyConnected2d>(LocallyConnected2dOptions{.out_channels = 4, .window = win({3, 3})}),
                   {{3, 8, 8}}, {4, 6, 6}, {{"weight", {6, 6, 4, 3, 3, 3}}, {"bias", {4, 6, 6}}}, 6 * 6 * 4 * 27, "4 3x3"},
                  {"stride 3", make<LocallyConnected2d>(LocallyConnected2dOptions{.out_channels = 5, .window = win({3, 3}, {3, 3})}),
                   {{2, 9, 9}}, {5, 3, 3}, {{"weight", {3, 3, 5, 2, 3, 3}}, {"bias", {5, 3, 3}}}, 3 * 3 * 5 * 18,
                   "5 3x3 stride 3"},
                  {"no bias, padded", make<LocallyConnected2d>(LocallyConnected2dOptions{.out_channels = 2, .window = win({3, 3}, {1, 1}, {1, 1}), .bias = false}),
                   {{1, 4, 4}}, {2, 4, 4}, {{"weight", {4, 4, 2, 1, 3, 3}}}, 4 * 4 * 2 * 9, "2 3x3 pad 1 bias false"},
              });
  const LocallyConnected2d local(LocallyConnected2dOptions{.out_channels = 4, .window = win({3, 3})});
  const std::vector<Shape> in{{3, 8, 8}};
  int64_t total = 0;
  for (const ParamSpec& p : local.parameters(in)) total += p.numel();
  EXPECT_EQ(total, 6 * 6 * 4 * 3 * 3 * 3 + 4 * 6 * 6);
}

TEST(TiledConv2d, ParametersAreTTimesTFilterBanksWithASharedBias) {
  // T*T*K*C*F*F weights + K biases.
  check_table("tiled",
              {
                  {"tile 2", make<TiledConv2d>(TiledConv2dOptions{.out_channels = 8, .window = win({3, 3}), .tile = 2}),
                   {{3, 10, 10}}, {8, 8, 8}, {{"weight", {2, 2, 8, 3, 3, 3}}, {"bias", {8}}}, 8 * 8 * 8 * 27,
                   "8 3x3 tile 2"},
                  {"tile 1 is a convolution", make<TiledConv2d>(TiledConv2dOptions{.out_channels = 4, .window = win({3, 3}, {1, 1}, {1, 1}), .tile = 1}),
                   {{3, 5, 5}}, {4, 5, 5}, {{"weight", {1, 1, 4, 3, 3, 3}}, {"bias", {4}}}, 5 * 5 * 4 * 27,
                   "4 3x3 tile 1 pad 1"},
                  {"stride 2, no bias", make<TiledConv2d>(TiledConv2dOptions{.out_channels = 6, .window = win({2, 2}, {2, 2}), .tile = 3, .bias = false}),
                   {{2, 12, 12}}, {6, 6, 6}, {{"weight", {3, 3, 6, 2, 2, 2}}}, 6 * 6 * 6 * 8, "6 2x2 tile 3 stride 2 bias false"},
              });
}

TEST(MaxPool2d, OutputShapeFollowsTheWindowFormulaAndPyTorchCeilRule) {
  auto pool = [](Window w) { return make<MaxPool2d>(Pool2dOptions{w}); };
  check_table("maxpool",
              {
                  {"AlexNet pool1", pool(win({3, 3}, {2, 2})), {{96, 55, 55}}, {96, 27, 27}, {}, 0, "3x3 stride 2"},
                  {"stride defaults to the kernel in the text form", pool(win({2, 2}, {2, 2})), {{16, 32, 32}}, {16, 16, 16}, {}, 0, "2x2"},
                  {"non-square window", pool(win({2, 4}, {2, 4})), {{8, 12, 20}}, {8, 6, 5}, {}, 0, "2x4"},
                  {"stride larger than the kernel", pool(win({2, 2}, {4, 4})), {{4, 10, 10}}, {4, 3, 3}, {}, 0, "2x2 stride 4"},
                  {"ResNet maxpool rounded down", pool(win({3, 3}, {2, 2}, {1, 1}, {1, 1}, Rounding::Floor)),
                   {{64, 112, 112}}, {64, 56, 56}, {}, 0, "3x3 stride 2 pad 1 round floor"},
                  {"GoogLeNet pool rounded up", pool(win({3, 3}, {2, 2}, {0, 0}, {1, 1}, Rounding::Ceil)),
                   {{64, 112, 112}}, {64, 56, 56}, {}, 0, "3x3 stride 2 round ceil"},
                  {"ceil: (64 - 3 + 2)/2 + 1 = 32.5 -> 33", pool(win({3, 3}, {2, 2}, {1, 1}, {1, 1}, Rounding::Ceil)),
                   {{8, 64, 64}}, {8, 33, 33}, {}, 0, "3x3 stride 2 pad 1 round ceil"},
                  {"ceil clamp: length 10, kernel 1, stride 2 -> 5, not 6", pool(win({1, 1}, {2, 2}, {0, 0}, {1, 1}, Rounding::Ceil)),
                   {{1, 10, 10}}, {1, 5, 5}, {}, 0, "1x1 stride 2 round ceil"},
                  {"ceil clamp on one axis only", pool(win({1, 3}, {2, 2}, {0, 0}, {1, 1}, Rounding::Ceil)),
                   {{1, 10, 10}}, {1, 5, 5}, {}, 0, "1x3 stride 2 round ceil"},
              });
}

TEST(AvgPool2d, OutputShapeFollowsTheWindowFormula) {
  auto pool = [](Window w) { return make<AvgPool2d>(Pool2dOptions{w}); };
  check_table("avgpool",
              {
                  {"7x7 to 1x1", pool(win({7, 7}, {7, 7})), {{512, 7, 7}}, {512, 1, 1}, {}, 0, "7x7"},
                  {"same-size 3x3 pad 1", pool(win({3, 3}, {1, 1}, {1, 1})), {{16, 8, 8}}, {16, 8, 8}, {}, 0, "3x3 stride 1 pad 1"},
                  {"pad exactly half the kernel", pool(win({2, 2}, {2, 2}, {1, 1})), {{4, 6, 6}}, {4, 4, 4}, {}, 0, "2x2 pad 1"},
                  {"rounded up", pool(win({2, 2}, {2, 2}, {0, 0}, {1, 1}, Rounding::Ceil)), {{3, 5, 5}}, {3, 3, 3}, {}, 0, "2x2 round ceil"},
              });
}

TEST(GlobalAvgPool2d, ReducesEveryPlaneToOnePixel) {
  check_table("globalavgpool", {
                                   {"ResNet head", make<GlobalAvgPool2d>(), {{512, 7, 7}}, {512, 1, 1}, {}, 0},
                                   {"non-square plane", make<GlobalAvgPool2d>(), {{10, 3, 5}}, {10, 1, 1}, {}, 0},
                                   {"already 1x1", make<GlobalAvgPool2d>(), {{3, 1, 1}}, {3, 1, 1}, {}, 0},
                               });
}

TEST(Linear, FlattensItsInputAndOwnsAnOutByInWeight) {
  check_table("fc",
              {
                  {"AlexNet fc6 on a volume", make<Linear>(LinearOptions{.out_features = 4096}), {{256, 6, 6}}, {4096},
                   {{"weight", {4096, 9216}}, {"bias", {4096}}}, 9216LL * 4096, "4096"},
                  {"on a vector", make<Linear>(LinearOptions{.out_features = 1000}), {{4096}}, {1000},
                   {{"weight", {1000, 4096}}, {"bias", {1000}}}, 4096000, "1000"},
                  {"without bias", make<Linear>(LinearOptions{.out_features = 10, .bias = false}), {{84}}, {10},
                   {{"weight", {10, 84}}}, 840, "10 bias false"},
              });
}

TEST(Activations, KeepTheShapeOwnNothingAndCostNoMacs) {
  for (const std::string kind : {"relu", "leakyrelu", "elu", "sigmoid", "tanh", "softmax", "dropout", "droppath", "lrn"}) {
    std::function<std::unique_ptr<Layer>()> f;
    if (kind == "relu") f = make<ReLU>();
    if (kind == "leakyrelu") f = make<LeakyReLU>(LeakyReLUOptions{.negative_slope = 0.2});
    if (kind == "elu") f = make<ELU>(ELUOptions{});
    if (kind == "sigmoid") f = make<Sigmoid>();
    if (kind == "tanh") f = make<Tanh>();
    if (kind == "softmax") f = make<Softmax>();
    if (kind == "dropout") f = make<Dropout>(DropoutOptions{});
    if (kind == "droppath") f = make<DropPath>(DropPathOptions{.p = 0.1});
    if (kind == "lrn") f = make<LocalResponseNorm>(LocalResponseNormOptions{});
    const std::string args = kind == "leakyrelu" ? "slope 0.2" : kind == "droppath" ? "0.1" : "";
    std::vector<Case> cases{{"volume", f, {{96, 55, 55}}, {96, 55, 55}, {}, 0, args}};
    if (kind != "lrn") cases.push_back({"vector", f, {{4096}}, {4096}, {}, 0, args});
    check_table(kind, cases);
    EXPECT_EQ(f()->in_place(), kind != "softmax" && kind != "lrn") << kind;
  }
}

TEST(Maxout, DividesTheDepthByThePieces) {
  check_table("maxout", {
                            {"volume", make<Maxout>(MaxoutOptions{.pieces = 2}), {{96, 13, 13}}, {48, 13, 13}, {}, 0, "2"},
                            {"vector", make<Maxout>(MaxoutOptions{.pieces = 5}), {{240}}, {48}, {}, 0, "5"},
                        });
}

TEST(BatchNorm, OwnsTorchvisionNamedScaleShiftAndRunningStatistics) {
  const std::vector<Param> bn64{{"weight", {64}}, {"bias", {64}}, {"running_mean", {64}}, {"running_var", {64}},
                                {"num_batches_tracked", {}}};
  const std::vector<Param> bn4096{{"weight", {4096}}, {"bias", {4096}}, {"running_mean", {4096}},
                                  {"running_var", {4096}}, {"num_batches_tracked", {}}};
  check_table("batchnorm", {
                               {"BatchNorm2d", make<BatchNorm>(BatchNormOptions{}), {{64, 56, 56}}, {64, 56, 56}, bn64, 0},
                               {"BatchNorm1d", make<BatchNorm>(BatchNormOptions{}), {{4096}}, {4096}, bn4096, 0},
                               {"options", make<BatchNorm>(BatchNormOptions{.eps = 1e-3, .momentum = 0.01}),
                                {{64, 1, 1}}, {64, 1, 1}, bn64, 0, "eps 0.001 momentum 0.01"},
                           });
  const BatchNorm bn;
  const std::vector<Shape> in{{64, 56, 56}};
  const std::vector<ParamSpec> params = bn.parameters(in);
  EXPECT_FALSE(params[0].is_buffer);
  EXPECT_FALSE(params[1].is_buffer);
  EXPECT_TRUE(params[2].is_buffer);
  EXPECT_TRUE(params[3].is_buffer);
  EXPECT_TRUE(params[4].is_buffer);
  EXPECT_EQ(params[4].numel(), 1);  // a scalar
}

TEST(Flatten, TurnsAVolumeIntoAVectorOfItsElementCount) {
  check_table("flatten", {
                             {"volume", make<Flatten>(), {{256, 6, 6}}, {9216}, {}, 0},
                             {"vector", make<Flatten>(), {{10}}, {10}, {}, 0},
                         });
}

TEST(Merge, AddMulAndConcatCombineTheirInputs) {
  check_table("add", {
                         {"two", make<Add>(), {{64, 56, 56}, {64, 56, 56}}, {64, 56, 56}, {}, 0},
                         {"three vectors", make<Add>(), {{10}, {10}, {10}}, {10}, {}, 0},
                     });
  check_table("mul", {{"two", make<Mul>(), {{64, 56, 56}, {64, 56, 56}}, {64, 56, 56}, {}, 0}});
  check_table("concat", {
                            {"Inception-like", make<Concat>(), {{64, 28, 28}, {128, 28, 28}, {32, 28, 28}}, {224, 28, 28}, {}, 0},
                            {"vectors", make<Concat>(), {{10}, {20}}, {30}, {}, 0},
                        });
}

// ---------------------------------------------------------------------------------------------
// Shape errors

TEST(Conv2d, WindowThatDoesNotDivideShowsTheFormulaWithItsNumbers) {
  const Conv2d conv(Conv2dOptions{.out_channels = 8, .window = win({3, 3}, {3, 3})});
  const std::string message = shape_error(conv, {{3, 7, 7}});
  EXPECT_CONTAINS(message, "(7 - 3 + 2*0)/3 + 1 = 2.33");
  EXPECT_CONTAINS(message, "round floor");  // the hint names the way out
}

TEST(Conv2d, NonDividingSizeOnOneAxisNamesThatAxisNumbers) {
  // 1x3 kernel, stride 1x2 on 7x8: the width gives (8 - 3 + 2*0)/2 + 1 = 3.50.
  const Conv2d conv(Conv2dOptions{.out_channels = 1, .window = win({1, 3}, {1, 2})});
  const std::string message = shape_error(conv, {{1, 7, 8}});
  EXPECT_CONTAINS(message, "(8 - 3 + 2*0)/2 + 1 = 3.50");
  // The sentence after the formula must describe the real 1x3 filter, not a square 3x3 one.
  EXPECT_CONTAINS(message, "1x3");
  EXPECT_NOT_CONTAINS(message, "8x8 input");
}

TEST(Conv2d, FilterLargerThanThePaddedInputIsAShapeError) {
  const Conv2d conv(Conv2dOptions{.out_channels = 8, .window = win({7, 7})});
  const std::string message = shape_error(conv, {{3, 5, 5}});
  EXPECT_CONTAINS(message, "(5 - 7 + 2*0)/1 + 1 < 1");
  EXPECT_CONTAINS(message, "does not fit");
}

TEST(Conv2d, DilatedFilterThatDoesNotFitReportsItsDilatedExtent) {
  const Conv2d conv(Conv2dOptions{.out_channels = 1, .window = win({3, 3}, {1, 1}, {0, 0}, {2, 2})});
  const std::string message = shape_error(conv, {{1, 4, 4}});
  // Dilation 2 spreads the 3 taps over 5 pixels: the formula uses the extent, 5.
  EXPECT_CONTAINS(message, "(4 - 5 + 2*0)/1 + 1 < 1");
  EXPECT_CONTAINS(message, "does not fit");
}

TEST(Conv2d, InputDepthNotDivisibleByGroupsIsAShapeError) {
  const Conv2d conv(Conv2dOptions{.out_channels = 64, .window = win({3, 3}), .groups = 2});
  const std::string message = shape_error(conv, {{3, 32, 32}});
  EXPECT_CONTAINS(message, "input depth 3 is not divisible by groups 2");
}

TEST(Conv2d, VectorInputIsAShapeError) {
  const Conv2d conv(Conv2dOptions{.out_channels = 8, .window = win({3, 3})});
  EXPECT_CONTAINS(shape_error(conv, {{4096}}), "needs a CxHxW volume");
}

TEST(LocallyConnected2d, WindowThatDoesNotDivideIsAShapeError) {
  const LocallyConnected2d local(LocallyConnected2dOptions{.out_channels = 2, .window = win({3, 3}, {2, 2})});
  EXPECT_CONTAINS(shape_error(local, {{1, 8, 8}}), "(8 - 3 + 2*0)/2 + 1 = 3.50");
}

TEST(TiledConv2d, WindowThatDoesNotDivideIsAShapeError) {
  const TiledConv2d tiled(TiledConv2dOptions{.out_channels = 2, .window = win({2, 2}, {2, 2}), .tile = 2});
  EXPECT_CONTAINS(shape_error(tiled, {{1, 7, 7}}), "(7 - 2 + 2*0)/2 + 1 = 3.50");
}

TEST(MaxPool2d, PoolingWindowThatDoesNotDivideIsAShapeError) {
  const MaxPool2d pool(Pool2dOptions{win({3, 3}, {2, 2})});
  const std::string message = shape_error(pool, {{8, 64, 64}});
  EXPECT_CONTAINS(message, "(64 - 3 + 2*0)/2 + 1 = 31.50");
  EXPECT_CONTAINS(message, "pooling window");
}

TEST(AvgPool2d, PaddingMoreThanHalfTheKernelIsAShapeError) {
  const AvgPool2d pool(Pool2dOptions{win({3, 3}, {1, 1}, {2, 2})});
  const std::string message = shape_error(pool, {{8, 16, 16}});
  EXPECT_CONTAINS(message, "padding 2x2 is more than half the 3x3 pooling window");
  EXPECT_CONTAINS(message, "pad <= 1x1");
}

TEST(MaxPool2d, PaddingMoreThanHalfTheKernelOnOneAxisIsAShapeError) {
  const MaxPool2d pool(Pool2dOptions{win({1, 4}, {1, 1}, {1, 2})});
  EXPECT_CONTAINS(shape_error(pool, {{8, 16, 16}}), "pad <= 0x2");
}

TEST(GlobalAvgPool2d, VectorInputIsAShapeError) {
  EXPECT_CONTAINS(shape_error(GlobalAvgPool2d(), {{512}}), "needs a CxHxW volume as input, got 512");
}

TEST(LocalResponseNorm, VectorInputIsAShapeError) {
  EXPECT_CONTAINS(shape_error(LocalResponseNorm(LocalResponseNormOptions{}), {{512}}), "lrn needs a CxHxW volume");
}

TEST(Maxout, DepthNotDivisibleByThePiecesIsAShapeError) {
  EXPECT_CONTAINS(shape_error(Maxout(MaxoutOptions{.pieces = 3}), {{10, 4, 4}}), "input depth 10 is not divisible by 3 pieces");
}

TEST(Add, MismatchedShapesListBothShapesHeightByWidthByDepth) {
  const std::string message = shape_error(Add(), {{64, 56, 56}, {128, 28, 28}});
  EXPECT_CONTAINS(message, "56x56x64 vs 28x28x128");
}

TEST(Add, SingleInputIsAShapeError) {
  EXPECT_CONTAINS(shape_error(Add(), {{64, 56, 56}}), "at least 2 inputs");
}

TEST(Mul, MismatchedShapesListBothShapes) {
  EXPECT_CONTAINS(shape_error(Mul(), {{64, 1, 1}, {64, 56, 56}}), "1x1x64 vs 56x56x64");
}

TEST(Concat, DifferentHeightAndWidthIsAShapeErrorListingTheShapes) {
  const std::string message = shape_error(Concat(), {{16, 32, 32}, {16, 16, 16}});
  EXPECT_CONTAINS(message, "equal height and width");
  EXPECT_CONTAINS(message, "32x32x16 vs 16x16x16");
}

TEST(Concat, VolumeWithVectorIsAShapeError) {
  EXPECT_CONTAINS(shape_error(Concat(), {{16, 4, 4}, {16}}), "4x4x16 vs 16");
}

// ---------------------------------------------------------------------------------------------
// The text form: options parsed from a layer line, and their errors with file:line:col

TEST(LayerText, ConvOptionsParseIntoTheSameLayer) {
  const Net net = one_layer("64x17x17", "c conv 192 1x7 stride 1 pad 0x3 dilation 1 groups 2 bias false init xavier");
  const Node& node = net.node(net.output());
  EXPECT_EQ(node.name, "c");
  EXPECT_EQ(node.output, Shape({192, 17, 17}));
  ASSERT_EQ(node.params.size(), 1u);
  EXPECT_EQ(node.params[0].name, "weight");
  EXPECT_EQ(node.params[0].dims, Dims({192, 32, 1, 7}));
  EXPECT_EQ(node.params[0].init, Init::XavierUniform);
  EXPECT_EQ(node.layer->args(), "192 1x7 pad 0x3 groups 2 bias false init xavier");
}

TEST(LayerText, EveryKindBuildsFromItsLine) {
  struct Row {
    std::string input;
    std::string line;
    Shape output;
  };
  const std::vector<Row> rows{
      {"3x227x227", "conv 96 11x11 stride 4", {96, 55, 55}},
      {"3x8x8", "local 4 3x3", {4, 6, 6}},
      {"3x10x10", "tiled 8 3x3 tile 2", {8, 8, 8}},
      {"96x55x55", "maxpool 3x3 stride 2", {96, 27, 27}},
      {"16x32x32", "maxpool 2x2", {16, 16, 16}},
      {"8x64x64", "maxpool 3x3 stride 2 pad 1 round ceil", {8, 33, 33}},
      {"1x10x10", "maxpool 1 stride 2 round ceil", {1, 5, 5}},
      {"512x7x7", "avgpool 7x7", {512, 1, 1}},
      {"512x7x7", "globalavgpool", {512, 1, 1}},
      {"256x6x6", "fc 4096", {4096}},
      {"10", "relu", {10}},
      {"10", "leakyrelu slope 0.1", {10}},
      {"10", "elu alpha 0.5", {10}},
      {"10", "sigmoid", {10}},
      {"10", "tanh", {10}},
      {"96x13x13", "maxout 2", {48, 13, 13}},
      {"96x55x55", "lrn size 5 alpha 1e-4 beta 0.75 k 2", {96, 55, 55}},
      {"64x8x8", "batchnorm eps 1e-3 momentum 0.01", {64, 8, 8}},
      {"10", "dropout p 0.2", {10}},
      {"10", "droppath 0.1", {10}},
      {"10", "softmax", {10}},
      {"256x6x6", "flatten", {9216}},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.line);
    const Net net = one_layer(row.input, "x " + row.line);
    EXPECT_EQ(net.node(net.output()).output, row.output);
  }
}

TEST(LayerText, MergeKindsReadNamedTensors) {
  const Net net = load_model_text(
      "network t\ninput x 3x8x8\na conv 4 3x3 pad 1\nb conv 4 1x1\nc conv 2 1x1\n"
      "s add a b\nm mul a b\nj concat s m c\n",
      "t.cnet");
  EXPECT_EQ(net.node(net.find("s")).output, Shape({4, 8, 8}));
  EXPECT_EQ(net.node(net.find("m")).output, Shape({4, 8, 8}));
  EXPECT_EQ(net.node(net.output()).output, Shape({10, 8, 8}));
  EXPECT_EQ(net.node(net.output()).inputs.size(), 3u);
}

TEST(LayerText, ShapeErrorsNameTheFileLineAndLayer) {
  try {
    (void)one_layer("3x7x7", "conv1 conv 8 3x3 stride 3");
    FAIL() << "expected a ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_CONTAINS(std::string(e.what()), "t.cnet:4:1: conv1 (conv): (7 - 3 + 2*0)/3 + 1 = 2.33");
  }
  try {
    (void)load_model_text("network t\ninput x 3x8x8\na conv 4 1x1\nb conv 8 1x1\nc add a b\n", "t.cnet");
    FAIL() << "expected a ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_CONTAINS(std::string(e.what()), "t.cnet:5:1");
    EXPECT_CONTAINS(std::string(e.what()), "8x8x4 vs 8x8x8");
  }
}

TEST(LayerText, BadStrideIsASpecErrorAtItsColumn) {
  const std::string message = spec_error("3x32x32", "conv1 conv 64 3x3 stride abc");
  EXPECT_CONTAINS(message, "t.cnet:4:26");
  EXPECT_CONTAINS(message, "stride");
  EXPECT_CONTAINS(message, "'abc'");
  EXPECT_CONTAINS(message, "usage: conv");
}

TEST(LayerText, MalformedOptionsAreSpecErrorsSayingWhatWasExpected) {
  struct Row {
    std::string input;
    std::string line;
    std::string expected;
  };
  const std::vector<Row> rows{
      {"3x32x32", "conv 64", "missing kernel_size"},
      {"3x32x32", "conv 0 3x3", "out_channels must be at least 1, found 0"},
      {"3x32x32", "conv 64 3x3 pad -1", "pad must be at least 0, found -1"},
      {"3x32x32", "conv 64 3x3 stride 0", "stride must be at least 1"},
      {"3x32x32", "conv 64 3x", "kernel_size as HxW"},
      {"3x32x32", "conv 64 3x3 bias maybe", "expected true or false for bias, found 'maybe'"},
      {"3x32x32", "conv 64 3x3 round up", "expected floor, ceil or exact"},
      {"3x32x32", "conv 64 3x3 init magic", "after init, found 'magic'"},
      {"3x32x32", "conv 64 3x3 stride", "option 'stride' needs a value"},
      {"3x32x32", "conv 64 3x3 frobnicate 2", "unexpected 'frobnicate'"},
      {"3x32x32", "conv 10 3x3 groups 4", "out_channels 10 is not divisible by groups 4"},
      {"3x32x32", "tiled 8 3x3", "missing 'tile T'"},
      {"3x32x32", "maxpool 3x3 foo", "unexpected 'foo'"},
      {"3x32x32", "fc", "missing out_features"},
      {"3x32x32", "maxout 1", "pieces must be at least 2"},
      {"3x32x32", "leakyrelu slope x", "expected a number for slope"},
      {"3x32x32", "dropout p 1.5", "p must be at least 0 and below 1, found 1.5"},
      {"3x32x32", "droppath", "missing drop probability"},
      {"3x32x32", "batchnorm eps 0", "eps must be positive"},
      {"3x32x32", "batchnorm momentum 2", "momentum must be between 0 and 1"},
      {"3x32x32", "relu 3", "unexpected '3'"},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.line);
    const std::string message = spec_error(row.input, "x " + row.line);
    EXPECT_CONTAINS(message, "t.cnet:4:");
    EXPECT_CONTAINS(message, row.expected);
  }
}

TEST(LayerText, GroupsNotDividingTheInputDepthIsAShapeErrorOnItsLine) {
  try {
    (void)one_layer("3x32x32", "c conv 64 3x3 groups 2");
    FAIL() << "expected a ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_CONTAINS(std::string(e.what()), "t.cnet:4:1: c (conv): input depth 3 is not divisible by groups 2");
  }
}

}  // namespace
}  // namespace convnet
