// bf16 training plans against f32 arithmetic with bf16's roundings applied by hand. The plan
// rounds weights (once per parameter version), every stored activation except the logits, and
// every activation gradient (dL/dlogits included) to bf16; it accumulates in f32 and writes the
// parameter gradients in f32. The hand-made step runs the f32 reference kernels layer by layer
// and rounds the same values at the same points, so the two differ only in f32 summation order:
// each stored value can land one bf16 ulp (2u, u = 2^-8) away where the f32 sums straddle a
// rounding boundary (rare), and that difference travels on. The f32 step without roundings is
// the contrast that shows where the roundings are.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "convnet/cpu_features.hpp"
#include "convnet/executor.hpp"
#include "convnet/io/safetensors.hpp"
#include "convnet/loss.hpp"
#include "convnet/model/model.hpp"
#include "support/cli.hpp"
#include "support/plan_checks.hpp"
#include "support/train_data.hpp"

namespace convnet {
namespace {

constexpr double kU = 1.0 / 256;  // bf16's unit roundoff, 2^-8

bool can_run_bf16() { return cpu_features().onednn_avx512; }

void round_all(Tensor& t) {
  for (float& v : t.span()) v = bf16_round(v);
}

/// The parameter gradients of one training step of a chain net computed by the reference
/// kernels, with `rounded` applying bf16's roundings where a bf16 plan stores bf16 values:
/// weights (not biases nor batch-norm parameters), the input, every node's output but the
/// logits, dL/dlogits and every activation gradient. `grad_logits` is the step's dL/dlogits.
std::vector<std::vector<Tensor>> reference_step(const Net& net, std::vector<std::vector<Tensor>> params,
                                                const Tensor& input, const Tensor& grad_logits, bool rounded) {
  const RunContext ctx{.training = true, .backward_follows = true, .backend = Backend::Reference};
  const auto& nodes = net.nodes();
  const size_t count = nodes.size();
  auto bf16 = [&](Tensor& t) {
    if (rounded) round_all(t);
  };
  for (size_t i = 0; i < count; ++i) {
    const std::string kind = nodes[i].layer->kind();
    if ((kind == "conv" || kind == "fc") && !params[i].empty()) bf16(params[i][0]);
  }
  std::vector<Tensor> out(count);
  out[0] = input;
  bf16(out[0]);
  for (size_t i = 1; i < count; ++i) {
    EXPECT_EQ(nodes[i].inputs.size(), 1u) << "a chain net";
    const Tensor* in[] = {&out[static_cast<size_t>(nodes[i].inputs[0])]};
    std::vector<Tensor*> p;
    for (Tensor& t : params[i]) p.push_back(&t);
    std::vector<int64_t> dims = in[0]->dims();
    dims.resize(1);
    for (int64_t d : nodes[i].output.dims()) dims.push_back(d);
    out[i] = Tensor(dims);
    nodes[i].layer->forward(ctx, in, p, out[i]);
    if (static_cast<int>(i) != net.output()) bf16(out[i]);
  }
  std::vector<std::vector<Tensor>> grads(count);
  for (size_t i = 0; i < count; ++i) {
    for (const Tensor& t : params[i]) grads[i].push_back(Tensor(t.dims()));
  }
  Tensor g = grad_logits;
  bf16(g);
  for (size_t i = count; i-- > 1;) {
    const size_t from = static_cast<size_t>(nodes[i].inputs[0]);
    const Tensor* in[] = {&out[from]};
    std::vector<Tensor*> p, gp;
    for (Tensor& t : params[i]) p.push_back(&t);
    for (Tensor& t : grads[i]) gp.push_back(&t);
    Tensor dx(out[from].dims());
    const GradTarget target{.tensor = from == 0 ? nullptr : &dx, .accumulate = false};
    nodes[i].layer->backward(ctx, in, out[i], g, p, gp, {&target, 1});
    bf16(dx);
    g = std::move(dx);
  }
  return grads;
}

/// |a - b| / max|b| per element, sorted, for every parameter gradient of every node.
std::vector<double> sorted_errors(const std::vector<std::vector<Tensor>>& a,
                                  const std::vector<std::vector<Tensor>>& b) {
  std::vector<double> errors;
  for (size_t i = 0; i < a.size(); ++i) {
    for (size_t k = 0; k < a[i].size(); ++k) {
      if (a[i][k].empty()) continue;  // a buffer (batch-norm running statistics): no gradient
      EXPECT_EQ(a[i][k].dims(), b[i][k].dims());
      double scale = 0;
      for (float v : b[i][k].span()) scale = std::max(scale, std::fabs(static_cast<double>(v)));
      for (int64_t e = 0; e < b[i][k].numel(); ++e) {
        errors.push_back(std::fabs(static_cast<double>(a[i][k][e]) - b[i][k][e]) / std::max(scale, 1e-30));
      }
    }
  }
  std::sort(errors.begin(), errors.end());
  return errors;
}

double median(const std::vector<double>& sorted) { return sorted[sorted.size() / 2]; }

TEST(Tensor, CopiesOfEmptyTensorsAndViewsOwnTheirData) {
  // A buffer's gradient is an empty tensor: copying it must not read through its null pointer.
  const Tensor empty;
  const Tensor copy = empty;
  EXPECT_TRUE(copy.empty());
  EXPECT_EQ(copy.numel(), 0);
  float data[3] = {1, 2, 3};
  const Tensor owned = Tensor::view(data, {3});
  const Tensor copied = owned;
  EXPECT_FALSE(copied.is_view());
  data[1] = 5;
  EXPECT_EQ(copied[1], 2.0F);
}

TEST(PlanBf16Training, StepEqualsAnF32StepWithBf16RoundingAppliedByHand) {
  if (!can_run_bf16()) GTEST_SKIP() << "oneDNN runs bf16 only with AVX-512: " << cpu_features().describe();
  // conv + batch norm + ReLU (fused in the plan), conv + ReLU (fused), average pooling, fc.
  Net net = load_model_text(
      "network step\ninput 3x11x11\nc1 conv 8 3x3 pad 1\nb1 batchnorm\nr1 relu\nc2 conv 12 3x3 stride 2 pad 1\n"
      "r2 relu\np avgpool 2x2\nf flatten\nfc 6\n",
      "step.cnet");
  Executor ex(net, {.seed = 3, .precision = DType::BF16, .emulate = true});
  std::vector<std::vector<Tensor>> initial;
  for (size_t i = 0; i < net.nodes().size(); ++i) {
    initial.emplace_back();
    for (const Tensor& t : ex.parameter_store().values(i)) initial.back().push_back(t);
  }
  const Tensor input = random_tensor({8, 3, 11, 11}, 4);
  const std::vector<int64_t> labels{0, 1, 2, 3, 4, 5, 0, 1};
  const Tensor logits = ex.forward(input, true);
  Tensor grad_logits;
  (void)softmax_cross_entropy(logits, labels, grad_logits);
  ex.zero_grad();
  ex.backward(grad_logits);
  std::vector<std::vector<Tensor>> got;
  for (size_t i = 0; i < net.nodes().size(); ++i) {
    got.emplace_back();
    for (const Tensor& t : ex.parameter_store().grads(i)) got.back().push_back(t);
  }
  // Both references take the plan's dL/dlogits, so only the backward's roundings differ.
  const std::vector<double> rounded = sorted_errors(got, reference_step(net, initial, input, grad_logits, true));
  const std::vector<double> unrounded = sorted_errors(got, reference_step(net, initial, input, grad_logits, false));
  // 4 layers with parameters; a boundary flip moves a value by 2u of its tensor's scale at most
  // and passes through each later layer once.
  EXPECT_LE(rounded.back(), 2 * kU * 4) << "largest error against the hand-rounded step";
  // Nine elements in ten agree to f32 summation order (a few 2^-24 of their tensor's scale;
  // measured: 3e-8 at the 90th percentile, 8.6e-7 at most, no boundary flip). Without the
  // roundings the median error is 6.7e-4: a missing or misplaced rounding shows at that size.
  EXPECT_LE(rounded[rounded.size() * 9 / 10], 64.0 / (1 << 24)) << "90th percentile";
  EXPECT_GE(median(unrounded), kU / 32) << "the f32 step without roundings must be farther";
  // The weights' copies were rounded; the master weights were not.
  const Tensor& w = ex.parameter_store().values(static_cast<size_t>(net.find("c1")))[0];
  int64_t not_bf16 = 0;
  for (float v : w.span()) not_bf16 += (bits(v) & 0xFFFFU) != 0;
  EXPECT_GT(not_bf16, w.numel() / 2) << "master weights stay f32";
}

TEST(PlanBf16Training, ZooNetsTrainingStepsStayCloseToF32) {
  // A whole step of residual, concatenating, LRN and drop path nets: bf16 gradients against the f32 plan's.
  if (!can_run_bf16()) GTEST_SKIP() << "oneDNN runs bf16 only with AVX-512: " << cpu_features().describe();
  const std::string branches =
      "network branches\ninput 3x16x16\nconv 8 3x3 pad 1\nrelu\nlrn size 5\nconcat\n  conv 4 1x1\n  sequential\n"
      "    conv 4 3x3 pad 1\n    relu\n  end\nend\nmaxpool 2x2\nx conv 8 1x1\nd droppath 0.3\ns add d x\n"
      "dropout p 0.5\nflatten\nfc 10\n";
  for (const std::string& name : {std::string("lenet5"), std::string("resnet20"), branches}) {
    SCOPED_TRACE(name);
    Net net = name == branches ? load_model_text(name, "branches.cnet") : load_model(name);
    const Tensor input = random_batch(net, 5);
    std::vector<int64_t> labels;
    for (int64_t n = 0; n < input.dim(0); ++n) labels.push_back(n % 10);
    std::vector<std::vector<std::vector<Tensor>>> grads;
    double losses[2] = {0, 0};
    for (DType dtype : {DType::F32, DType::BF16}) {
      Executor ex(net, {.seed = 9, .precision = dtype, .emulate = true});
      Tensor grad_logits;
      losses[grads.size()] = softmax_cross_entropy(ex.forward(input, true), labels, grad_logits);
      ex.zero_grad();
      ex.backward(grad_logits);
      grads.emplace_back();
      for (size_t i = 0; i < net.nodes().size(); ++i) {
        grads.back().emplace_back();
        for (const Tensor& t : ex.parameter_store().grads(i)) grads.back().back().push_back(t);
      }
    }
    EXPECT_NEAR(losses[1], losses[0], 0.02 * std::fabs(losses[0]));
    const std::vector<double> errors = sorted_errors(grads[1], grads[0]);
    // A whole-net check that every kind lowers and nothing is far off (the step above checks the
    // arithmetic): measured medians 4.5e-4 (LeNet-5), 5e-5 (branches), 2.6e-2 (ResNet-20 at batch 2,
    // whose f32 paths already disagree by a few percent at initialisation); bound 3x the worst.
    EXPECT_LE(median(errors), 0.08) << "median gradient error relative to each tensor's scale";
  }
}

}  // namespace

namespace testing {
namespace {

class Bf16TrainCli : public TrainFolderTest {
 protected:
  Bf16TrainCli() : TrainFolderTest("convnet_bf16_train_test_", 512, 100) {}
};

TEST_F(Bf16TrainCli, TrainsResumesAndKeepsF32Checkpoints) {
  if (!cpu_features().onednn_avx512) GTEST_SKIP() << "oneDNN runs bf16 only with AVX-512";
  std::vector<std::string> args = train_args("run", {"--precision", "bf16", "--emulate", "--epochs", "1"});
  const Result r = run(args);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_CONTAINS(r.out, "bf16 mixed precision");
  const fs::path checkpoint = root_ / "run" / "checkpoint.safetensors";
  for (const auto& [name, t] : read_safetensors(checkpoint.string()).tensors) EXPECT_EQ(t.dtype, "F32") << name;
  EXPECT_EQ(checkpoint_meta(checkpoint)["settings"]["precision"], "bf16");
  const Result resumed =
      run({"train", "--resume", "--out", (root_ / "run").string(), "--epochs", "2", "--emulate", "--deterministic"});
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_CONTAINS(resumed.out, "bf16 mixed precision");
  EXPECT_CONTAINS(resumed.out, "epoch 2/2");
  const Result again = run({"train", "--resume", "--out", (root_ / "run").string(), "--precision", "f32"});
  EXPECT_EQ(again.code, 2);  // a command-line error
  EXPECT_CONTAINS(again.err, "--precision: --resume continues with the run's own settings");
}

TEST_F(Bf16TrainCli, RefusesWhatItCannotTrainInBf16) {
  const Result int8 = run(train_args("a", {"--precision", "int8"}));
  EXPECT_EQ(int8.code, 2);  // a command-line error
  EXPECT_CONTAINS(int8.err, "--precision: int8 not in {f32,bf16}");
  const Result reference = run(train_args("b", {"--precision", "bf16", "--emulate", "--reference"}));
  EXPECT_EQ(reference.code, 1);
  EXPECT_CONTAINS(reference.err,
                  "train: --precision bf16 runs through compiled oneDNN training plans, which "
                  "--reference (the f32 reference kernels) does not use");
  ::setenv("DNNL_MAX_CPU_ISA", "AVX2", 1);
  const Result avx2 = run(train_args("c", {"--precision", "bf16"}));
  ::unsetenv("DNNL_MAX_CPU_ISA");
  EXPECT_EQ(avx2.code, 1);
  EXPECT_CONTAINS(avx2.err, "train: --precision bf16: bf16 needs a CPU with AVX512_BF16 or AMX");
  EXPECT_CONTAINS(avx2.err, "add --emulate to run it anyway");
  for (const char* out : {"a", "b", "c"}) EXPECT_FALSE(fs::exists(root_ / out)) << out;
}

}  // namespace
}  // namespace testing
}  // namespace convnet
