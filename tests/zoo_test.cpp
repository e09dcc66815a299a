// Every zoo model builds, with its parameter count and output shape pinned. Counts come from
// the papers and torchvision's published num_params (../shared/research/peers.md, section 4).
#include <gtest/gtest.h>

#include <set>

#include "convnet/analysis/summary.hpp"
#include "convnet/model/model.hpp"
#include "convnet/zoo/zoo.hpp"

namespace convnet {
namespace {

struct ZooCase {
  const char* name;
  int64_t parameters;
  const char* output;
};

// Derivations: torchvision num_params for resnet*, vgg*, densenet*, wide_resnet50_2, resnext50_32x4d;
// alexnet-2gpu 60,965,224 (Caffe's BVLC AlexNet); alexnet single tower 62,378,344 (peers.md 4.2);
// googlenet paper-faithful (5x5 branch, biases, no BN/aux) 6,998,552; WRN-28-10 36,479,194 (paper's
// 36.5M); cifar10-quick is Caffe's example (145,578). The rest are counted by hand in their files.
const ZooCase kZoo[] = {
    {"lenet5", 61706, "10"},
    {"alexnet", 62378344, "1000"},
    {"alexnet-2gpu", 60965224, "1000"},
    {"zfnet", 107627624, "1000"},
    {"vgg11", 132863336, "1000"},
    {"vgg13", 133047848, "1000"},
    {"vgg16", 138357544, "1000"},
    {"vgg19", 143667240, "1000"},
    {"googlenet", 6998552, "1000"},
    {"resnet18", 11689512, "1000"},
    {"resnet34", 21797672, "1000"},
    {"resnet50", 25557032, "1000"},
    {"resnet101", 44549160, "1000"},
    {"resnet152", 60192808, "1000"},
    {"preact-resnet18", 11687848, "1000"},
    {"wrn-28-10", 36479194, "10"},
    {"wide_resnet50_2", 68883240, "1000"},
    {"resnext50-32x4d", 25028904, "1000"},
    {"resnet110-sd", 1730714, "10"},
    {"densenet121", 7978856, "1000"},
    {"densenet169", 14149480, "1000"},
    {"densenet201", 20013928, "1000"},
    {"resnet20", 272186, "10"},
    {"cifar10-quick", 145578, "10"},
};

class Zoo : public ::testing::TestWithParam<ZooCase> {};

TEST_P(Zoo, BuildsWithItsPinnedParameterCountAndOutput) {
  const ZooCase& c = GetParam();
  const Summary s = summarize(load_model(c.name));
  EXPECT_EQ(s.parameters, c.parameters) << c.name;
  EXPECT_EQ(s.rows.back().output.volume_string(), c.output) << c.name;
}

INSTANTIATE_TEST_SUITE_P(Models, Zoo, ::testing::ValuesIn(kZoo), [](const auto& info) {
  std::string name = info.param.name;
  for (char& ch : name) ch = std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
  return name;
});

TEST(Zoo, EveryEmbeddedModelIsPinned) {
  std::set<std::string> pinned;
  for (const ZooCase& c : kZoo) pinned.insert(c.name);
  for (const ZooEntry& entry : zoo_entries()) EXPECT_TRUE(pinned.count(entry.name)) << entry.name << " has no pinned count";
}

TEST(Zoo, MultiplyAddsMatchTorchvisionsGflops) {
  // torchvision's "GFLOPS" count one multiply-add as one operation, at 224x224.
  EXPECT_NEAR(static_cast<double>(summarize(load_model("resnet18")).macs) / 1e9, 1.81, 0.01);
  EXPECT_NEAR(static_cast<double>(summarize(load_model("resnet50")).macs) / 1e9, 4.09, 0.01);
  EXPECT_NEAR(static_cast<double>(summarize(load_model("vgg16")).macs) / 1e9, 15.47, 0.01);
  EXPECT_NEAR(static_cast<double>(summarize(load_model("densenet121")).macs) / 1e9, 2.83, 0.01);
}

TEST(Zoo, ParameterNamesAreTorchvisionStateDictKeys) {
  auto has = [](const Net& net, const std::string& key) {
    for (const Node& node : net.nodes()) {
      for (const ParamSpec& p : node.params) {
        if (node.name + "." + p.name == key) return true;
      }
    }
    return false;
  };
  const Net resnet = load_model("resnet50");
  EXPECT_TRUE(has(resnet, "layer1.0.downsample.0.weight"));
  EXPECT_TRUE(has(resnet, "layer4.2.bn3.running_mean"));
  EXPECT_TRUE(has(resnet, "fc.bias"));
  const Net vgg = load_model("vgg16");
  EXPECT_TRUE(has(vgg, "features.28.weight"));
  EXPECT_TRUE(has(vgg, "classifier.6.bias"));
  const Net densenet = load_model("densenet121");
  EXPECT_TRUE(has(densenet, "features.denseblock4.denselayer16.conv2.weight"));
  EXPECT_TRUE(has(densenet, "features.transition3.conv.weight"));
  EXPECT_TRUE(has(densenet, "features.norm5.num_batches_tracked"));
  EXPECT_TRUE(has(densenet, "classifier.weight"));
}

TEST(Zoo, ResNetsTakeOtherInputSizes) {
  const Net net = load_model("resnet50", {.input_shape = Shape{3, 64, 64}});
  EXPECT_EQ(net.node(net.output()).output, Shape{1000});
}

}  // namespace
}  // namespace convnet
