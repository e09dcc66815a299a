// The compiled plan against the reference kernels: zoo networks (fused, unfused, channels-last,
// with poisoned dead memory), each fusion, taps, weight refresh after parameter changes, several
// plans on one store, and the arena planner.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "convnet/engine/arena.hpp"
#include "convnet/engine/plan.hpp"
#include "convnet/executor.hpp"
#include "convnet/kernels/onednn/engine.hpp"
#include "convnet/model/model.hpp"

namespace convnet {
namespace {

Tensor random_tensor(std::vector<int64_t> dims, unsigned seed) {
  Tensor t(std::move(dims));
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& v : t.span()) v = normal(rng);
  return t;
}

/// Gives every batch norm non-trivial statistics and affine parameters, so folding is exercised.
void randomize_batch_norms(Executor& executor, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(0.5f, 1.5f);
  std::normal_distribution<float> normal(0.0f, 0.3f);
  for (NamedParameter& p : executor.named_parameters()) {
    const std::string& n = p.name;
    auto ends_with = [&](const std::string& s) { return n.size() >= s.size() && n.compare(n.size() - s.size(), s.size(), s) == 0; };
    if (ends_with("running_var")) {
      for (float& v : p.value->span()) v = uniform(rng);
    } else if (ends_with("running_mean") || (p.spec->dims.size() == 1 && ends_with("bias"))) {
      for (float& v : p.value->span()) v = normal(rng);
    } else if (p.spec->dims.size() == 1 && ends_with("weight")) {
      for (float& v : p.value->span()) v = uniform(rng);
    }
  }
}

/// max |a - b| / max |b|: the error relative to the output's scale (infinite if a is not finite).
double relative_error(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.dims(), b.dims());
  double diff = 0, scale = 0;
  for (int64_t i = 0; i < b.numel(); ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) return std::numeric_limits<double>::infinity();
    diff = std::max(diff, static_cast<double>(std::fabs(a[i] - b[i])));
    scale = std::max(scale, static_cast<double>(std::fabs(b[i])));
  }
  return diff / std::max(scale, 1e-30);
}

struct ZooCase {
  const char* name;
  const char* input;     // a small input the network accepts, to keep the oracle quick
  bool reference = true; // oracle: the reference kernels, or (for the larger nets, to keep the
                         // sanitizer run short) the layer-by-layer oneDNN kernels that the
                         // fast-vs-reference tests prove equal to them
};

class PlanZoo : public ::testing::TestWithParam<ZooCase> {};

// Every variant of the plan equals the reference kernels run layer by layer: fused (BN folded,
// sums and activations as post-ops), unfused, channels-last, and with every storage that is not
// live poisoned with NaN before each op (so a plan that let live buffers overlap would fail).
// Tolerance 1e-4 of the output's scale: f32 sums in another order, BN folded into weights.
TEST_P(PlanZoo, EqualsTheReferenceKernels) {
  const ZooCase& zc = GetParam();
  LoadOptions load;
  load.input_shape = parse_input_option(zc.input);
  Net net = load_model(zc.name, load);
  Executor reference(net, {.backend = zc.reference ? Backend::Reference : Backend::OneDnn, .seed = 7,
                           .plan_inference = false});
  randomize_batch_norms(reference, 11);
  std::vector<int64_t> dims{2};
  for (int64_t d : net.node(net.inputs()[0]).output.dims()) dims.push_back(d);
  const Tensor input = random_tensor(dims, 3);
  const Tensor expected = reference.forward(input, false);

  Executor planned(net, {.backend = Backend::OneDnn, .seed = 7});
  randomize_batch_norms(planned, 11);
  onednn::Engine engine;
  const Tensor* inputs[] = {&input};
  struct Variant {
    const char* what;
    PlanOptions options;
  };
  std::vector<Variant> variants(4);
  variants[0].what = "fused";
  variants[1].what = "unfused";
  variants[1].options.fuse = false;
  variants[2].what = "channels-last";
  variants[2].options.layout = ActivationLayout::Nhwc;
  variants[3].what = "poisoned";
  variants[3].options.poison_dead = true;
  for (Variant& v : variants) {
    v.options.batch = 2;
    Plan plan(net, planned.parameter_store(), engine, v.options);
    EXPECT_LT(relative_error(plan.forward(inputs), expected), 1e-4) << zc.name << " " << v.what;
  }
  // And through the Executor's own plan cache.
  EXPECT_LT(relative_error(planned.forward(input, false), expected), 1e-4) << zc.name << " executor";
  ASSERT_NE(planned.last_plan(), nullptr);
}

INSTANTIATE_TEST_SUITE_P(Models, PlanZoo,
                         ::testing::Values(ZooCase{"lenet5", "1x28x28"}, ZooCase{"resnet20", "1x28x28"},
                                           ZooCase{"cifar10-quick", "3x32x32"}, ZooCase{"resnet110-sd", "3x16x16"},
                                           ZooCase{"resnet18", "3x32x32"}, ZooCase{"alexnet", "3x99x99", false},
                                           ZooCase{"alexnet-2gpu", "3x99x99", false}, ZooCase{"vgg11", "3x32x32", false},
                                           ZooCase{"resnet50", "3x32x32", false},
                                           ZooCase{"preact-resnet18", "3x32x32", false},
                                           ZooCase{"resnext50-32x4d", "3x32x32", false},
                                           ZooCase{"densenet121", "3x32x32", false}, ZooCase{"googlenet", "3x64x64", false}),
                         [](const auto& info) {
                           std::string name = info.param.name;
                           for (char& ch : name) ch = std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
                           return name;
                         });

// Small nets, one per fusion and fallback: conv+bn+relu, conv+bn+add+relu (the residual sum into
// the other operand's storage, or into a copy when it is still read later), fc+relu on a blocked
// volume, bn+relu alone, the sum of three, LRN, softmax, maxout/tiled/local (host fallback).
const char* kFusions[] = {
    "network a\ninput 3x9x9\nconv 8 3x3 pad 1\nbatchnorm\nrelu\nconv 16 3x3 stride 2\nbatchnorm\nfc 5\nrelu\nfc 3\n",
    "network b\ninput 8x8x8\nx conv 8 3x3 pad 1\nc1 conv 8 3x3 pad 1 bias false\nb1 batchnorm\ns add b1 x\nrelu\n",
    "network c\ninput 8x8x8\nx relu\nc1 conv 8 3x3 pad 1\ns add c1 x\nt add s x\nsoftmax_in flatten\nfc 4\nsoftmax\n",
    "network d\ninput 4x8x8\nbatchnorm\nrelu\nlrn size 3\nmaxpool 3x3 stride 2 round ceil\nmaxout 2\nconv 6 1x1\n",
    "network e\ninput 6x9x9\nx conv 6 1x1\ny conv 6 1x1\nz conv 6 1x1\ns add x y z\nc concat s x\ntiled 4 3x3 tile 2\nlocal 3 2x2\n",
    "network f\ninput 3x10x10\nconv 16 3x3\nleakyrelu slope 0.2\navgpool 3x3 stride 2 pad 1 round floor\nelu\nglobalavgpool\nflatten\nsigmoid\nfc 3\ntanh\n",
};

TEST(Plan, EachFusionAndFallbackEqualsTheReference) {
  for (const char* text : kFusions) {
    Net net = load_model_text(text, "fusion.cnet");
    Executor reference(net, {.backend = Backend::Reference, .seed = 5});
    randomize_batch_norms(reference, 2);
    std::vector<int64_t> dims{3};
    for (int64_t d : net.node(net.inputs()[0]).output.dims()) dims.push_back(d);
    const Tensor input = random_tensor(dims, 9);
    const Tensor expected = reference.forward(input, false);
    Executor planned(net, {.backend = Backend::OneDnn, .seed = 5});
    randomize_batch_norms(planned, 2);
    onednn::Engine engine;
    for (bool fuse : {true, false}) {
      PlanOptions o;
      o.batch = 3;
      o.fuse = fuse;
      o.poison_dead = true;
      Plan plan(net, planned.parameter_store(), engine, o);
      const Tensor* inputs[] = {&input};
      EXPECT_LT(relative_error(plan.forward(inputs), expected), 1e-5) << net.name() << (fuse ? " fused" : " unfused");
    }
  }
}

}  // namespace
}  // namespace convnet
