// The compiled plan against the reference kernels: zoo networks (fused, unfused, channels-last,
// with poisoned dead memory), each fusion, taps, weight refresh after parameter changes, several
// plans on one store, and the arena planner.
#include "convnet/engine/plan.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "convnet/engine/arena.hpp"
#include "convnet/executor.hpp"
#include "convnet/kernels/onednn/engine.hpp"
#include "convnet/model/model.hpp"
#include "convnet/zoo/zoo.hpp"
#include "support/cli.hpp"
#include "support/plan_checks.hpp"

namespace convnet {
namespace {

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

TEST(Plan, EachFusionAndFallbackEqualsTheReference) {
  for (const char* text : kFusionNets) {
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
      if (net.name() != "b" || !fuse) continue;
      const std::vector<PlanStep> steps = plan.describe();
      EXPECT_TRUE(std::any_of(steps.begin(), steps.end(), [](const PlanStep& step) {
        return step.kind == "conv" && step.label == "c1 + 2 + b1 + d + s + 6";
      })) << "net b: conv, dropout, batch norm, drop path, add and relu are one step";
    }
  }
}

}  // namespace
}  // namespace convnet

namespace convnet {
namespace {

// A small residual net without batch norm or dropout, so a training-mode forward (which keeps
// every node's output) computes the same values as inference and can check the taps.
const char* kTapNet =
    "network taps\ninput 4x8x8\nx conv 8 3x3 pad 1\nc1 conv 8 3x3 pad 1\nr1 relu\nc2 conv 8 3x3 pad 1\n"
    "s add c2 x\nr2 relu\npool maxpool 2x2 stride 2\nflat flatten\nfc 5\n";

TEST(Plan, TapsReturnThePlainActivationOfFusedAndAliasedNodes) {
  Net net = load_model_text(kTapNet, "taps.cnet");
  Executor reference(net, {.backend = Backend::Reference, .seed = 4});
  const Tensor input = random_tensor({2, 4, 8, 8}, 6);
  (void)reference.forward(input, true);
  Executor planned(net, {.backend = Backend::OneDnn, .seed = 4});
  onednn::Engine engine;
  PlanOptions o;
  o.batch = 2;
  o.taps = {"c1", "c2", "s", "flat"};  // c1 and c2 would otherwise fuse with their ReLU / the sum
  Plan plan(net, planned.parameter_store(), engine, o);
  const Tensor* inputs[] = {&input};
  (void)plan.forward(inputs);
  for (const std::string& name : o.taps) {
    const Tensor tapped = plan.tap(name);
    EXPECT_LT(relative_error(tapped, *reference.activation(net.find(name))), 1e-5) << name;
  }
  EXPECT_THROW((void)plan.tap("r1"), Error);     // not tapped: its storage may be reused
  EXPECT_THROW((void)plan.tap("nothing"), Error);
  o.taps = {"nothing"};
  EXPECT_THROW(Plan(net, planned.parameter_store(), engine, o), Error);
}

TEST(Plan, RefreshesItsWeightCopiesWhenParametersChange) {
  Net net = load_model_text(kFusionNets[0], "a.cnet");
  Executor reference(net, {.backend = Backend::Reference, .seed = 5});
  Executor planned(net, {.backend = Backend::OneDnn, .seed = 5});
  const Tensor input = random_tensor({3, 3, 9, 9}, 1);
  const Tensor before = planned.forward(input, false);
  EXPECT_LT(relative_error(before, reference.forward(input, false)), 1e-5);
  // Change every parameter (folded batch norm statistics included) through the executors.
  for (Executor* e : {&reference, &planned}) randomize_batch_norms(*e, 8);
  const Tensor after = planned.forward(input, false);
  EXPECT_GT(relative_error(after, before), 1e-3);  // the change is visible...
  EXPECT_LT(relative_error(after, reference.forward(input, false)), 1e-5);  // ...and right
  // A direct write through a kept pointer needs parameters_changed().
  NamedParameter first = planned.named_parameters().front();
  NamedParameter first_ref = reference.named_parameters().front();
  (void)planned.forward(input, false);
  first.value->fill(0.25f);
  first_ref.value->fill(0.25f);
  planned.parameters_changed();
  EXPECT_LT(relative_error(planned.forward(input, false), reference.forward(input, false)), 1e-5);
}

TEST(Plan, SeveralPlansOnOneStoreKeepTheirOwnState) {
  // A batch-of-4 plan and a batch-of-1 plan (the last partial batch) run interleaved on one
  // store: each image's logits are the same in both, and running one plan leaves the other's
  // output untouched.
  Net net = load_model("resnet20");
  Executor executor(net, {.backend = Backend::OneDnn, .seed = 2});
  randomize_batch_norms(executor, 3);
  onednn::Engine engine;
  PlanOptions a_options, b_options;
  a_options.batch = 4;
  b_options.batch = 1;
  Plan a(net, executor.parameter_store(), engine, a_options);
  Plan b(net, executor.parameter_store(), engine, b_options);
  const Tensor input = random_tensor({4, 1, 28, 28}, 9);
  Tensor last = Tensor::view(const_cast<float*>(input.data()) + 3 * 28 * 28, {1, 1, 28, 28});
  const Tensor* a_in[] = {&input};
  const Tensor* b_in[] = {&last};
  const Tensor a_out = a.forward(a_in);
  const Tensor& b_out = b.forward(b_in);
  const Tensor& a_again = a.forward(a_in);
  EXPECT_LT(relative_error(a_again, a_out), 1e-7);
  for (int64_t k = 0; k < 10; ++k) EXPECT_NEAR(b_out[k], a_out[3 * 10 + k], 1e-4f * (1 + std::fabs(a_out[30 + k])));
  EXPECT_THROW((void)b.forward(a_in), ShapeError);  // a plan runs its own batch size only
}

TEST(Plan, MemoryFiguresAddUpAndInferenceHoldsNoGradients) {
  Net net = load_model("resnet20");
  Executor executor(net, {.backend = Backend::OneDnn, .seed = 2});
  const Tensor input = random_tensor({8, 1, 28, 28}, 9);
  (void)executor.forward(input, false);
  EXPECT_FALSE(executor.parameter_store().has_grads());
  const Plan* plan = executor.last_plan();
  ASSERT_NE(plan, nullptr);
  EXPECT_EQ(plan->peak_bytes(), plan->arena_bytes() + plan->scratchpad_bytes() + plan->weight_bytes() + 8 * 10 * 4);
  // The arena holds at least the largest activation (a 16x28x28 volume per image) and, thanks to
  // reuse, less than all activations of the net side by side.
  int64_t all = 0;
  for (const Node& node : net.nodes()) all += node.output.numel() * 8 * 4;
  EXPECT_GE(plan->arena_bytes(), 16 * 28 * 28 * 8 * 4);
  EXPECT_LT(plan->arena_bytes(), all / 4);
  (void)executor.forward(input, true);
  EXPECT_TRUE(executor.parameter_store().has_grads());
}

TEST(Plan, SummaryStatesTheCompiledPlansOwnMemory) {
  // `convnet summary` compiles the plans for their sizes only; its figures are those of the plans
  // that run, whose arenas are really allocated at that size.
  for (const char* name : {"resnet20", "cifar10-quick"}) {
    Net net = load_model(name);
    Executor executor(net, {.backend = Backend::OneDnn, .seed = 1});
    onednn::Engine engine;
    PlanOptions o;
    o.batch = 8;
    const Plan plan(net, executor.parameter_store(), engine, o);
    const PlanMemory sizes = plan_memory(net, 8);
    EXPECT_EQ(sizes.arena, plan.arena_bytes()) << name;
    EXPECT_EQ(sizes.weights, plan.weight_bytes()) << name;
    EXPECT_EQ(sizes.scratchpad, plan.scratchpad_bytes()) << name;
    EXPECT_EQ(sizes.peak, plan.peak_bytes()) << name;
    const testing::Result r = testing::run({"summary", name, "--batch", "8", "--json"});
    ASSERT_EQ(r.code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j.at("plan_inference_bytes").at("peak").get<int64_t>(), plan.peak_bytes()) << name;
    EXPECT_EQ(j.at("plan_inference_bytes").at("arena").get<int64_t>(), plan.arena_bytes()) << name;
    // The training plan (forward + backward).
    o.training = true;
    o.rng = &executor.rng();
    const Plan training(net, executor.parameter_store(), engine, o);
    EXPECT_GT(training.arena_bytes(), plan.arena_bytes()) << name;
    EXPECT_EQ(plan_memory(net, 8, true).peak, training.peak_bytes()) << name;
    EXPECT_EQ(j.at("plan_training_bytes").at("peak").get<int64_t>(), training.peak_bytes()) << name;
    EXPECT_EQ(j.at("plan_training_bytes").at("arena").get<int64_t>(), training.arena_bytes()) << name;
  }
}

TEST(Plan, EveryZooNetworkLowersWithoutHostFallbacks) {
  // Inference and training plans of the whole zoo (sizes only: nothing allocated or compiled):
  // no step runs a single-threaded reference kernel.
  onednn::Engine engine;
  std::mt19937_64 rng;
  for (const ZooEntry& entry : zoo_entries()) {
    Net net = load_model(entry.name);
    ParamStore store(net, false);
    for (const bool training : {false, true}) {
      PlanOptions o;
      o.batch = 2;
      o.training = training;
      o.rng = &rng;
      o.allocate = false;
      const Plan plan(net, store, engine, o);
      for (const PlanStep& step : plan.describe()) {
        EXPECT_EQ(step.kind.rfind("fallback", 0), std::string::npos)
            << entry.name << (training ? " training: " : " inference: ") << step.label;
      }
    }
  }
}

TEST(Plan, SummarySaysWhyANetTrainsLayerByLayer) {
  const std::string file = ::testing::TempDir() + "maxout.cnet";
  std::ofstream(file) << "network m\ninput 4x3x3\nconv 8 1x1\nmaxout 2\nflatten\nfc 2\n";
  const testing::Result r = testing::run({"summary", file, "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(nlohmann::json::parse(r.out).at("plan_training_bytes").is_null());
  const testing::Result text = testing::run({"summary", file});
  EXPECT_NE(text.out.find("training plan: none, trains layer by layer"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("(maxout) has no training lowering"), std::string::npos) << text.out;
}

// Checks `layout` against `buffers` by a sweep over steps (any size of plan): offsets aligned,
// inside the arena, no two buffers alive at the same step overlapping; returns the peak of the
// bytes alive at one step, a lower bound of any arena.
int64_t expect_valid_layout(const std::vector<BufferLifetime>& buffers, const ArenaLayout& layout) {
  std::vector<size_t> order(buffers.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return buffers[a].first < buffers[b].first; });
  std::map<int64_t, size_t> live;  // offset -> buffer
  std::multimap<int, size_t> deaths;
  int64_t live_bytes = 0, peak = 0;
  int failures = 0;
  for (size_t i : order) {
    const BufferLifetime& b = buffers[i];
    for (auto d = deaths.begin(); d != deaths.end() && d->first < b.first; d = deaths.erase(d)) {
      live.erase(layout.offsets[d->second]);
      live_bytes -= buffers[d->second].bytes;
    }
    const int64_t offset = layout.offsets[i];
    EXPECT_EQ(offset % 64, 0);
    EXPECT_LE(offset + b.bytes, layout.bytes);
    const auto above = live.lower_bound(offset);
    const bool overlaps_above = above != live.end() && above->first < offset + b.bytes;
    const bool overlaps_below =
        above != live.begin() && std::prev(above)->first + buffers[std::prev(above)->second].bytes > offset;
    if ((overlaps_above || overlaps_below) && ++failures <= 5)
      ADD_FAILURE() << "buffer " << i << " overlaps a live one";
    live[offset] = i;
    deaths.emplace(b.last, i);
    live_bytes += b.bytes;
    peak = std::max(peak, live_bytes);
  }
  return peak;
}

TEST(Arena, LiveBuffersNeverOverlapAndDeadOnesAreReused) {
  std::mt19937 rng(1);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<BufferLifetime> buffers;
    for (int i = 0; i < 40; ++i) {
      const int first = static_cast<int>(rng() % 30);
      buffers.push_back({static_cast<int64_t>(1 + rng() % 5000), first, first + static_cast<int>(rng() % 6)});
    }
    const ArenaLayout layout = plan_arena(buffers);
    EXPECT_GE(layout.bytes, expect_valid_layout(buffers, layout)) << "trial " << trial;
    int64_t sum = 0;
    for (const BufferLifetime& b : buffers) sum += b.bytes;
    EXPECT_LT(layout.bytes, sum);  // something was reused
  }
}

// Beyond kGreedyArenaLimit buffers (found by fuzzing: an 80,000-layer network's summary was
// stopped after 10 minutes in the quadratic greedy search) buffers are placed in birth order: a
// training plan's shape (activations kept for the backward, temporaries, gradients) and random
// lifetimes.
TEST(Arena, LargePlansArePlacedInBirthOrderWithoutOverlapNearThePeak) {
  const int n = static_cast<int>(kGreedyArenaLimit / 3) + 10;
  std::vector<BufferLifetime> training;
  for (int i = 0; i < n; ++i) training.push_back({1000 + (i * 7919) % 100000, i, 2 * n - i});
  for (int i = 0; i < n; ++i) training.push_back({500 + (i * 104729) % 50000, i, i + 1});
  for (int i = 0; i < n; ++i) training.push_back({500 + (i * 104729) % 50000, 2 * n - i - 1, 2 * n - i});
  ASSERT_GT(training.size(), kGreedyArenaLimit);
  const ArenaLayout layout = plan_arena(training);
  const int64_t peak = expect_valid_layout(training, layout);
  EXPECT_GE(layout.bytes, peak);
  EXPECT_LT(static_cast<double>(layout.bytes), 1.1 * static_cast<double>(peak));

  std::mt19937 rng(2);
  std::vector<BufferLifetime> random;
  for (size_t i = 0; i <= kGreedyArenaLimit; ++i) {
    const int first = static_cast<int>(rng() % 50000);
    random.push_back({static_cast<int64_t>(1 + rng() % 100000), first, first + static_cast<int>(rng() % 200)});
  }
  const ArenaLayout spread = plan_arena(random);
  EXPECT_GE(spread.bytes, expect_valid_layout(random, spread));
  int64_t sum = 0;
  for (const BufferLifetime& b : random) sum += b.bytes;
  EXPECT_LT(spread.bytes, sum / 10);  // dead buffers' regions were reused
}

}  // namespace
}  // namespace convnet
