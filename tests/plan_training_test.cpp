// Training plans against the reference kernels run layer by layer: after a training forward and
// backward the output, every parameter gradient and the running statistics agree, for zoo nets
// and small nets covering each kind with a training lowering (fused and not, with dead memory
// poisoned). Also:
// two plans on one net keep their own run state, gradients accumulate over backward calls, a net
// with a kind that has no training lowering is refused (the Executor then trains layer by layer).
#include <gtest/gtest.h>

#include "convnet/engine/plan.hpp"
#include "convnet/executor.hpp"
#include "convnet/kernels/onednn/engine.hpp"
#include "convnet/model/model.hpp"
#include "support/plan_checks.hpp"

namespace convnet {
namespace {

/// A copy of the store's gradient block, to compare with after later backward passes.
std::vector<float> gradients(ParamStore& store) {
  const std::span<float> block = store.grad_block();
  return {block.begin(), block.end()};
}

struct Step {
  Tensor output;
  std::vector<Tensor> grads;    // per learnable parameter, in named_parameters() order
  std::vector<Tensor> buffers;  // running statistics after the step
};

Step collect(Executor& executor, const Tensor& output) {
  Step s{output, {}, {}};
  for (NamedParameter& p : executor.named_parameters()) {
    (p.grad != nullptr ? s.grads : s.buffers).push_back(p.grad != nullptr ? *p.grad : *p.value);
  }
  return s;
}

/// One layer-by-layer training step on the reference kernels.
Step reference_step(Net& net, const Tensor& input, const Tensor& grad_output) {
  Executor reference(net, {.backend = Backend::Reference, .seed = 7});
  randomize_batch_norms(reference, 11);
  reference.zero_grad();
  const Tensor output = reference.forward(input, true);
  reference.backward(grad_output);
  return collect(reference, output);
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (float v : t.span()) m = std::max(m, static_cast<double>(std::fabs(v)));
  return m;
}

/// Each gradient within `tolerance` of its own scale, or of 1 % of the largest gradient's scale for
/// gradients that are zero but for rounding (a conv's bias before batch norm: BN subtracts the mean).
void expect_same_step(const Step& got, const Step& want, double tolerance, const std::string& what) {
  EXPECT_LT(relative_error(got.output, want.output), tolerance) << what << ": output";
  ASSERT_EQ(got.grads.size(), want.grads.size());
  double largest = 0;
  for (const Tensor& g : want.grads) largest = std::max(largest, max_abs(g));
  for (size_t i = 0; i < got.grads.size(); ++i) {
    ASSERT_EQ(got.grads[i].dims(), want.grads[i].dims());
    double diff = 0;
    for (int64_t k = 0; k < got.grads[i].numel(); ++k) {
      diff = std::max(diff, static_cast<double>(std::fabs(got.grads[i][k] - want.grads[i][k])));
    }
    EXPECT_LE(diff, tolerance * std::max(max_abs(want.grads[i]), 0.01 * largest)) << what << ": gradient " << i;
  }
  ASSERT_EQ(got.buffers.size(), want.buffers.size());
  for (size_t i = 0; i < got.buffers.size(); ++i) {
    EXPECT_LT(relative_error(got.buffers[i], want.buffers[i]), 1e-5) << what << ": running statistic " << i;
  }
}

// Each kind with a training lowering, alone and fanning out: conv (+bias, grouped, strided,
// dilated), fc on a volume and after flatten, batch norm, max / average (padded) / global pooling,
// the activations, add of two and three (one input read twice), concat, LRN, dropout and drop
// path (the same masks as the layer-by-layer path: the same draws from the same generator), and
// a value read by two layers (its gradient is the sum).
const char* kTrainNets[] = {
    "network a\ninput 3x9x9\nconv 8 3x3 pad 1\nbatchnorm\nrelu\nconv 16 3x3 stride 2\nbatchnorm\nfc 5\nrelu\nfc 3\n",
    "network b\ninput 8x8x8\nx conv 8 3x3 pad 1\nc1 conv 8 3x3 pad 1 bias false\nb1 batchnorm\ns add b1 x\nrelu\n"
    "maxpool 3x3 stride 2 round ceil\nflatten\nfc 4\n",
    "network c\ninput 4x8x8\nx relu\nc1 conv 8 3x3 pad 1 groups 2\nc2 conv 4 3x3 pad 2 dilation 2\ns add c2 x x\n"
    "t concat s c1\nglobalavgpool\nflatten\nfc 4\n",
    "network d\ninput 3x10x10\nconv 16 3x3\nleakyrelu slope 0.2\navgpool 3x3 stride 2 pad 1 round floor\nelu\n"
    "sigmoid\nconv 6 1x1\ntanh\nflatten\nfc 3\n",
    "network e\ninput 4x6x6\nlrn size 3\nx conv 8 3x3 pad 1\nd droppath 0.5\ns add d x\nflatten\ndropout p 0.3\nfc 8\n"
    "dropout p 0\nfc 3\n",
    "network f\ninput 3x8x8\nconv 4 3x3 pad 1\navgpool 3x3 stride 2 round ceil\nflatten\nfc 3\n",
    // drop path on channel counts a 16-channel block pads (12) and fills (16), then global pooling
    "network g\ninput 3x6x6\nx conv 12 3x3 pad 1\nd droppath 0.5\ns add d x\nconv 16 3x3 pad 1\n"
    "droppath 0.3\nglobalavgpool\nflatten\nfc 3\n",
};

TEST(TrainingPlan, SmallNetsEqualTheReferenceKernels) {
  onednn::Engine engine;
  for (const char* text : kTrainNets) {
    Net net = load_model_text(text, "train.cnet");
    const Tensor input = random_tensor(batched(net, net.inputs()[0], 3), 9);
    const Tensor grad_output = random_tensor(batched(net, net.output(), 3), 4);
    const Step want = reference_step(net, input, grad_output);
    for (const auto& [layout, fuse] : {std::pair{ActivationLayout::Any, true}, std::pair{ActivationLayout::Any, false},
                                       std::pair{ActivationLayout::Nhwc, true}, std::pair{ActivationLayout::Blocked, true}}) {
      Executor planned(net, {.backend = Backend::OneDnn, .seed = 7});
      randomize_batch_norms(planned, 11);
      planned.zero_grad();
      PlanOptions o;
      o.batch = 3;
      o.training = true;
      o.layout = layout;
      o.fuse = fuse;
      o.poison_dead = true;
      o.rng = &planned.rng();
      Plan plan(net, planned.parameter_store(), engine, o);
      const Tensor* inputs[] = {&input};
      const Tensor output = plan.forward(inputs);
      plan.backward(grad_output);
      const char* layouts[] = {"any", "nhwc", "blocked"};
      expect_same_step(collect(planned, output), want, 1e-4,
                       net.name() + " " + layouts[static_cast<int>(layout)] + (fuse ? " fused" : ""));
    }
  }
}

// The Executor's own training path (a plan per batch size) on zoo nets (cifar10-quick: ceil-mode
// pooling whose last window passes the input); 1e-4 of each tensor's scale: f32 sums in other orders.
TEST(TrainingPlan, ZooNetsThroughTheExecutorEqualTheReferenceKernels) {
  for (const auto& [name, input_shape] : {std::pair{"lenet5", "1x28x28"}, std::pair{"resnet20", "1x28x28"},
                                          std::pair{"resnet18", "3x64x64"}, std::pair{"cifar10-quick", "3x32x32"}}) {
    LoadOptions load;
    load.input_shape = parse_input_option(input_shape);
    Net net = load_model(name, load);
    const Tensor input = random_tensor(batched(net, net.inputs()[0], 2), 3);
    const Tensor grad_output = random_tensor(batched(net, net.output(), 2), 5);
    const Step want = reference_step(net, input, grad_output);
    Executor planned(net, {.backend = Backend::OneDnn, .seed = 7});
    randomize_batch_norms(planned, 11);
    planned.zero_grad();
    const Tensor output = planned.forward(input, true);
    ASSERT_NE(planned.last_plan(), nullptr) << name << " trained layer by layer";
    planned.backward(grad_output);
    expect_same_step(collect(planned, output), want, 1e-4, name);
  }
}

TEST(TrainingPlan, TwoPlansOnOneNetKeepTheirOwnRunState) {
  // A.forward, B.forward, A.backward gives A's gradients: batch statistics, pooling workspaces and
  // sources live in each plan, not in the layers.
  Net net = load_model_text(kTrainNets[1], "train.cnet");
  const Tensor xa = random_tensor(batched(net, net.inputs()[0], 2), 1);
  const Tensor ga = random_tensor(batched(net, net.output(), 2), 2);
  const Tensor xb = random_tensor(batched(net, net.inputs()[0], 5), 3);
  onednn::Engine engine;
  Executor executor(net, {.backend = Backend::OneDnn, .seed = 7});
  ParamStore& store = executor.parameter_store();
  PlanOptions oa;
  oa.batch = 2;
  oa.training = true;
  PlanOptions ob = oa;
  ob.batch = 5;
  Plan a(net, store, engine, oa);
  Plan b(net, store, engine, ob);
  const Tensor* ia[] = {&xa};
  const Tensor* ib[] = {&xb};

  store.zero_grad();
  (void)a.forward(ia);
  a.backward(ga);
  const std::vector<float> alone = gradients(store);

  store.zero_grad();
  (void)a.forward(ia);
  (void)b.forward(ib);
  a.backward(ga);
  const std::span<float> interleaved = store.grad_block();
  ASSERT_EQ(interleaved.size(), alone.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < alone.size(); ++i) {
    diff = std::max(diff, static_cast<double>(std::fabs(interleaved[i] - alone[i])));
    scale = std::max(scale, static_cast<double>(std::fabs(alone[i])));
  }
  EXPECT_GT(scale, 0.0);
  EXPECT_EQ(diff, 0.0) << "B's forward changed A's backward";
}

TEST(TrainingPlan, TapsReadTheTrainingForwardsActivations) {
  // A tapped node stays unfused (its batch norm + ReLU, conv + activation are split) and is read
  // back after the training forward; the gradients are those of the untapped plan.
  Net net = load_model_text(kTrainNets[0], "train.cnet");
  const Tensor x = random_tensor(batched(net, net.inputs()[0], 2), 1);
  const Tensor g = random_tensor(batched(net, net.output(), 2), 2);
  Executor reference(net, {.backend = Backend::Reference, .seed = 7});
  (void)reference.forward(x, true);
  onednn::Engine engine;
  Executor planned(net, {.backend = Backend::OneDnn, .seed = 7});
  PlanOptions o;
  o.batch = 2;
  o.training = true;
  o.taps = {"0", "1", "2"};  // conv, its batch norm, the ReLU after it
  Plan plan(net, planned.parameter_store(), engine, o);
  const Tensor* inputs[] = {&x};
  (void)plan.forward(inputs);
  for (const std::string& name : o.taps) {
    EXPECT_LT(relative_error(plan.tap(name), *reference.activation(net.find(name))), 1e-5) << name;
  }
  planned.zero_grad();
  plan.backward(g);
  const std::vector<float> tapped = gradients(planned.parameter_store());
  o.taps.clear();
  Plan untapped(net, planned.parameter_store(), engine, o);
  (void)untapped.forward(inputs);
  planned.zero_grad();
  untapped.backward(g);
  const std::span<float> plain = planned.parameter_store().grad_block();
  for (size_t i = 0; i < tapped.size(); ++i) EXPECT_NEAR(tapped[i], plain[i], 1e-5 * (1 + std::fabs(plain[i])));
}

TEST(TrainingPlan, GradientsAccumulateOverBackwardCalls) {
  Net net = load_model_text(kTrainNets[0], "train.cnet");
  const Tensor x = random_tensor(batched(net, net.inputs()[0], 2), 1);
  const Tensor g = random_tensor(batched(net, net.output(), 2), 2);
  Executor executor(net, {.backend = Backend::OneDnn, .seed = 7});
  executor.zero_grad();
  (void)executor.forward(x, true);
  executor.backward(g);
  const std::vector<float> once = gradients(executor.parameter_store());
  (void)executor.forward(x, true);
  executor.backward(g);
  const std::span<float> twice = executor.parameter_store().grad_block();
  for (size_t i = 0; i < once.size(); ++i) EXPECT_NEAR(twice[i], 2 * once[i], 1e-5 * (1 + std::fabs(once[i])));
}

TEST(TrainingPlan, GradientsWrittenThroughNamedParametersAreAddedTo) {
  // The plan overwrites the gradients only right after zero_grad(); a caller that wrote into them
  // since (through named_parameters()) gets the backward added to what it wrote.
  Net net = load_model_text(kTrainNets[0], "train.cnet");
  const Tensor x = random_tensor(batched(net, net.inputs()[0], 2), 1);
  const Tensor g = random_tensor(batched(net, net.output(), 2), 2);
  Executor executor(net, {.backend = Backend::OneDnn, .seed = 7});
  executor.zero_grad();
  (void)executor.forward(x, true);
  executor.backward(g);
  const std::vector<float> alone = gradients(executor.parameter_store());
  executor.zero_grad();
  for (NamedParameter& p : executor.named_parameters()) {
    if (p.grad != nullptr) p.grad->fill(1.0f);
  }
  (void)executor.forward(x, true);
  executor.backward(g);
  size_t compared = 0;
  for (NamedParameter& p : executor.named_parameters()) {
    if (p.grad == nullptr) continue;
    const std::span<float> block = executor.parameter_store().grad_block();
    const auto offset = static_cast<size_t>(p.grad->data() - block.data());
    for (int64_t i = 0; i < p.grad->numel(); ++i, ++compared) {
      const float want = 1.0f + alone[offset + static_cast<size_t>(i)];
      EXPECT_NEAR((*p.grad)[i], want, 1e-5 * (1 + std::fabs(want))) << p.name;
    }
  }
  EXPECT_GT(compared, 0u);
}

TEST(TrainingPlan, KindsWithoutATrainingLoweringAreRefusedAndTrainLayerByLayer) {
  for (const char* text : {"network m\ninput 4x3x3\nconv 8 1x1\nmaxout 2\nflatten\nfc 2\n",
                           "network l\ninput 4x3x3\nlrn size 2\nflatten\nfc 2\n"}) {
    Net net = load_model_text(text, "unsupported.cnet");
    onednn::Engine engine;
    Executor executor(net, {.backend = Backend::OneDnn, .seed = 7});
    PlanOptions o;
    o.batch = 2;
    o.training = true;
    EXPECT_THROW(Plan(net, executor.parameter_store(), engine, o), PlanUnsupported) << net.name();
    const Tensor x = random_tensor({2, 4, 3, 3}, 1);
    (void)executor.forward(x, true);
    EXPECT_EQ(executor.last_plan(), nullptr);
    executor.backward(random_tensor({2, 2}, 2));  // the layer-by-layer backward
    // An inference plan of the same net still compiles (through the host fallback).
    o.training = false;
    EXPECT_NO_THROW(Plan(net, executor.parameter_store(), engine, o)) << net.name();
  }
}

}  // namespace
}  // namespace convnet
