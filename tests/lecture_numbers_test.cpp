// The lecture notes' numbers, reproduced by the analyser: AlexNet, VGG-16, the conv examples,
// receptive fields and the inception module's cost.
#include <gtest/gtest.h>

#include <chrono>

#include "convnet/analysis/summary.hpp"
#include "convnet/error.hpp"
#include "convnet/model/model.hpp"

namespace convnet {
namespace {

const LayerRow& row(const Summary& s, const std::string& name) {
  for (const LayerRow& r : s.rows) {
    if (r.name == name) return r;
  }
  throw std::runtime_error("no row " + name);
}

Net net_from(const std::string& text) { return load_model_text(text, "test.cnet"); }

TEST(AlexNet, Conv1GivesTheLectureVolumeAndParameters) {
  const Summary s = summarize(load_model("alexnet"));
  const LayerRow& conv1 = row(s, "conv1");
  EXPECT_EQ(conv1.output.volume_string(), "55x55x96");  // (227 - 11)/4 + 1 = 55
  EXPECT_EQ(conv1.weights, 34848);                      // 11*11*3*96
  EXPECT_EQ(conv1.parameters(), 34944);                 // (11*11*3 + 1)*96
  EXPECT_EQ(row(s, "pool1").output.volume_string(), "27x27x96");
  EXPECT_EQ(row(s, "pool1").parameters(), 0);
}

TEST(AlexNet, VolumesDownToFc8MatchTheLecture) {
  const Summary s = summarize(load_model("alexnet"));
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"norm1", "27x27x96"},  {"conv2", "27x27x256"}, {"pool2", "13x13x256"}, {"norm2", "13x13x256"},
      {"conv3", "13x13x384"}, {"conv4", "13x13x384"}, {"conv5", "13x13x256"}, {"pool3", "6x6x256"},
      {"fc6", "4096"},        {"fc7", "4096"},        {"fc8", "1000"}};
  for (const auto& [name, volume] : expected) EXPECT_EQ(row(s, name).output.volume_string(), volume) << name;
}

TEST(AlexNet, TwoGpuVersionHasThePapersParameterCounts) {
  const Summary s = summarize(load_model("alexnet-2gpu"));
  // The notes: 35K, 307K, 884K, 663K, 442K, 37M, 16M, 4M -> 60M (weights; biases add the rest).
  const std::vector<std::pair<std::string, int64_t>> weights = {
      {"conv1", 34848},   {"conv2", 307200},    {"conv3", 884736},    {"conv4", 663552},
      {"conv5", 442368},  {"fc6", 37748736},    {"fc7", 16777216},    {"fc8", 4096000}};
  for (const auto& [name, count] : weights) EXPECT_EQ(row(s, name).weights, count) << name;
  EXPECT_EQ(s.parameters, 60965224);
}

TEST(Vgg16, EveryRowOfTheLectureTableMatches) {
  const Summary s = summarize(load_model("vgg16"));
  // (output volume, weights without biases) for the conv, pool and fc rows, in order.
  const std::vector<std::pair<std::string, int64_t>> table = {
      {"224x224x64", 1728},     {"224x224x64", 36864},    {"112x112x64", 0},       {"112x112x128", 73728},
      {"112x112x128", 147456},  {"56x56x128", 0},         {"56x56x256", 294912},   {"56x56x256", 589824},
      {"56x56x256", 589824},    {"28x28x256", 0},         {"28x28x512", 1179648},  {"28x28x512", 2359296},
      {"28x28x512", 2359296},   {"14x14x512", 0},         {"14x14x512", 2359296},  {"14x14x512", 2359296},
      {"14x14x512", 2359296},   {"7x7x512", 0},           {"4096", 102760448},     {"4096", 16777216},
      {"1000", 4096000}};
  std::vector<const LayerRow*> rows;
  for (const LayerRow& r : s.rows) {
    if (r.kind == "conv" || r.kind == "maxpool" || r.kind == "fc") rows.push_back(&r);
  }
  ASSERT_EQ(rows.size(), table.size());
  for (size_t i = 0; i < table.size(); ++i) {
    EXPECT_EQ(rows[i]->output.volume_string(), table[i].first) << rows[i]->name;
    EXPECT_EQ(rows[i]->weights, table[i].second) << rows[i]->name;
  }
  EXPECT_EQ(s.parameters_without_biases, 138344128);
  EXPECT_EQ(s.parameters, 138357544);  // "138M parameters"
  // The table's rows (input + every conv, pool and fc output; ReLU and dropout work in place)
  // sum to 15,237,608 values, not the slide's "24M" (docs/analysis.md).
  EXPECT_EQ(s.activations, 15237608);
}

TEST(ConvExample, TenFiveByFiveFiltersOnThirtyTwoCubed) {
  const Summary s = summarize(net_from("network ex\ninput 3x32x32\nconv1 conv 10 5x5 stride 1 pad 2\n"));
  EXPECT_EQ(row(s, "conv1").output.volume_string(), "32x32x10");  // (32 + 2*2 - 5)/1 + 1 = 32
  EXPECT_EQ(row(s, "conv1").parameters(), 760);                    // (5*5*3 + 1)*10
}

TEST(ConvExample, SevenBySevenInputWithThreeByThreeFilter) {
  auto out = [](const std::string& options) {
    return net_from("network ex\ninput 1x7x7\nc conv 1 3x3 " + options + "\n").nodes().back().output.volume_string();
  };
  EXPECT_EQ(out("stride 1"), "5x5x1");
  EXPECT_EQ(out("stride 2"), "3x3x1");
  EXPECT_EQ(out("pad 1 stride 1"), "7x7x1");
  try {
    (void)out("stride 3");
    FAIL() << "stride 3 should not fit";
  } catch (const ShapeError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("test.cnet:3:1"), std::string::npos) << message;
    EXPECT_NE(message.find("(7 - 3 + 2*0)/3 + 1 = 2.33"), std::string::npos) << message;
    EXPECT_NE(message.find("does not fit"), std::string::npos) << message;
    EXPECT_NE(message.find("try pad 1 or stride 2"), std::string::npos) << message;
  }
}

TEST(ReceptiveField, ThreeStackedThreeByThreeConvsSeeSevenBySeven) {
  const Net net = net_from("network ex\ninput 3x32x32\nconv 8 3x3 pad 1\nconv 8 3x3 pad 1\nlast conv 8 3x3 pad 1\n");
  const ReceptiveField rf = net.nodes().back().receptive_field;
  EXPECT_EQ(rf.size_h, 7);
  EXPECT_EQ(rf.size_w, 7);
  EXPECT_EQ(rf.jump_h, 1);
}

TEST(ReceptiveField, Vgg16MatchesThePublishedTable) {
  const Summary s = summarize(load_model("vgg16"));
  // google-research/receptive_field: pool1 6, pool2 16, pool3 44, pool4 100, pool5 212.
  std::vector<int64_t> pools;
  for (const LayerRow& r : s.rows) {
    if (r.kind == "maxpool") pools.push_back(r.receptive_field.size_h);
  }
  EXPECT_EQ(pools, (std::vector<int64_t>{6, 16, 44, 100, 212}));
}

const char* kNaiveInception = R"(
network naive
input 256x28x28
concat
  conv 128 1x1
  conv 192 3x3 pad 1
  conv 96 5x5 pad 2
  maxpool 3x3 stride 1 pad 1
end
)";

const char* kBottleneckInception = R"(
network bottleneck
input 256x28x28
concat
  conv 128 1x1
  sequential
    conv 64 1x1
    conv 192 3x3 pad 1
  end
  sequential
    conv 64 1x1
    conv 96 5x5 pad 2
  end
  sequential
    maxpool 3x3 stride 1 pad 1
    conv 64 1x1
  end
end
)";

TEST(Inception, NaiveModuleCosts854MillionMultiplyAdds) {
  const Summary s = summarize(net_from(kNaiveInception));
  EXPECT_EQ(s.rows.back().output.volume_string(), "28x28x672");  // 128 + 192 + 96 + 256
  EXPECT_EQ(s.macs, 854196224);  // 25,690,112 + 346,816,512 + 481,689,600
}

TEST(Inception, BottleneckModuleCostsFarLess) {
  const Summary s = summarize(net_from(kBottleneckInception));
  EXPECT_EQ(s.rows.back().output.volume_string(), "28x28x480");
  EXPECT_EQ(s.macs, 271351808);  // the six terms of the slide; its "358M" counts the 3x3 twice
}

TEST(LeNet5, HasAboutSixtyThousandParameters) {
  const Summary s = summarize(load_model("lenet5"));
  EXPECT_EQ(s.parameters, 61706);  // 156 + 2,416 + 48,120 + 10,164 + 850 (dense C3, no trainable pooling)
  EXPECT_EQ(s.rows.back().output.volume_string(), "10");
}

TEST(Summary, Resnet152IsAnalysedWellUnderASecond) {
  const auto start = std::chrono::steady_clock::now();
  const Summary s = summarize(load_model("resnet152"));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(s.parameters, 60192808);
  // Generous bound: sanitizer builds are ~10x slower than the optimised one.
  EXPECT_LT(seconds, 1.0);
}

TEST(Summary, FlopsAreTwiceMacsAndMemoryDoublesForBackward) {
  const Summary s = summarize(load_model("alexnet"), 128);
  EXPECT_EQ(s.flops(), 2 * s.macs);
  EXPECT_EQ(s.forward_bytes(), s.activations * 4 * 128);
  EXPECT_EQ(s.forward_backward_bytes(), 2 * s.forward_bytes());
}

}  // namespace
}  // namespace convnet
