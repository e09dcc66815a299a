// bf16 inference plans against f32 arithmetic. The tolerances come from bf16's 8-bit significand:
// rounding to nearest has relative error at most u = 2^-8, products of bf16 numbers are exact in
// f32, so a K-term dot product adds at most (K + 2) 2^-24 sum|x w| of f32 rounding. A layer whose
// output is stored in bf16 is within u|y*| + that of y* (double arithmetic on the bf16-rounded
// input and weights); the net's output (logits) is never rounded, so there only the f32 term
// remains. Runs with emulation allowed, so CPUs without fast bf16 check the same lowering.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "convnet/cpu_features.hpp"
#include "convnet/engine/plan.hpp"
#include "convnet/executor.hpp"
#include "convnet/kernels/onednn/engine.hpp"
#include "convnet/model/model.hpp"
#include "convnet/zoo/zoo.hpp"
#include "support/cli.hpp"
#include "support/plan_checks.hpp"

namespace convnet {
namespace {

constexpr double kU = 1.0 / 256;          // bf16's unit roundoff, 2^-8
constexpr double kF32 = 1.0 / (1 << 24);  // f32's, 2^-24

bool can_run_bf16() { return cpu_features().onednn_avx512; }

PlanOptions bf16_options(int64_t batch) {
  PlanOptions o;
  o.batch = batch;
  o.dtype = DType::BF16;
  o.emulate = true;
  return o;
}

TEST(PlanBf16, ConvolutionStoredInBf16IsWithinOneRoundingOfTheExactResult) {
  if (!can_run_bf16()) GTEST_SKIP() << "oneDNN runs bf16 only with AVX-512: " << cpu_features().describe();
  Net net = load_model_text("network one\ninput 6x9x9\nc conv 8 3x3 stride 2 pad 1 groups 2\nr relu\n", "one.cnet");
  Executor ex(net, {.seed = 3});
  randomize_batch_norms(ex, 1);
  auto& store = ex.parameter_store();
  for (float& b : store.values(static_cast<size_t>(net.find("c")))[1].span()) b = 0.1F * b + 0.05F;
  const Tensor input = random_tensor({2, 6, 9, 9}, 4);
  onednn::Engine engine;
  PlanOptions o = bf16_options(2);
  o.taps = {"c"};
  Plan plan(net, store, engine, o);
  const Tensor* inputs[] = {&input};
  const Tensor out = plan.forward(inputs);
  const Tensor conv = plan.tap("c");  // (2, 8, 5, 5)

  const Tensor& w = store.values(static_cast<size_t>(net.find("c")))[0];  // (8, 3, 3, 3)
  const Tensor& bias = store.values(static_cast<size_t>(net.find("c")))[1];
  const int64_t k_terms = 3 * 3 * 3;
  int64_t checked = 0;
  for (int64_t n = 0; n < 2; ++n) {
    for (int64_t k = 0; k < 8; ++k) {
      const int64_t g = k / 4;
      for (int64_t i = 0; i < 5; ++i) {
        for (int64_t j = 0; j < 5; ++j) {
          double exact = bias[k], magnitude = std::fabs(bias[k]);
          for (int64_t c = 0; c < 3; ++c) {
            for (int64_t dy = 0; dy < 3; ++dy) {
              for (int64_t dx = 0; dx < 3; ++dx) {
                const int64_t y = i * 2 - 1 + dy, x = j * 2 - 1 + dx;
                if (y < 0 || y >= 9 || x < 0 || x >= 9) continue;
                const double p = static_cast<double>(bf16_round(input[((n * 6 + g * 3 + c) * 9 + y) * 9 + x])) *
                                 bf16_round(w[((k * 3 + c) * 3 + dy) * 3 + dx]);
                exact += p;
                magnitude += std::fabs(p);
              }
            }
          }
          const int64_t at = ((n * 8 + k) * 5 + i) * 5 + j;
          const float got = conv[at];
          EXPECT_EQ(bits(got) & 0xFFFFU, 0U) << "not a bf16 value: " << got;
          EXPECT_LE(std::fabs(got - exact), kU * std::fabs(exact) + (k_terms + 3) * kF32 * magnitude) << at;
          EXPECT_EQ(out[at], std::max(got, 0.0F)) << "the ReLU of the stored value, exactly";
          ++checked;
        }
      }
    }
  }
  EXPECT_EQ(checked, 2 * 8 * 5 * 5);
}

TEST(PlanBf16, LogitsAreNotRoundedToBf16) {
  if (!can_run_bf16()) GTEST_SKIP() << "oneDNN runs bf16 only with AVX-512: " << cpu_features().describe();
  Net net = load_model_text("network logits\ninput 40\nfc 7\n", "logits.cnet");
  Executor ex(net, {.seed = 5});
  const Tensor input = random_tensor({3, 40}, 6);
  onednn::Engine engine;
  Plan plan(net, ex.parameter_store(), engine, bf16_options(3));
  const Tensor* inputs[] = {&input};
  const Tensor& out = plan.forward(inputs);
  const Tensor& w = ex.parameter_store().values(1)[0];  // (7, 40)
  const Tensor& b = ex.parameter_store().values(1)[1];
  int not_bf16 = 0;
  for (int64_t n = 0; n < 3; ++n) {
    for (int64_t k = 0; k < 7; ++k) {
      double exact = b[k], magnitude = std::fabs(b[k]);
      for (int64_t i = 0; i < 40; ++i) {
        const double p = static_cast<double>(bf16_round(input[n * 40 + i])) * bf16_round(w[k * 40 + i]);
        exact += p;
        magnitude += std::fabs(p);
      }
      const float got = out[n * 7 + k];
      EXPECT_LE(std::fabs(got - exact), (40 + 3) * kF32 * magnitude) << n << "," << k;
      not_bf16 += (bits(got) & 0xFFFFU) != 0;
    }
  }
  EXPECT_GT(not_bf16, 15) << "logits carry f32 precision";
}

// Whole nets (every fusion and host fallback of plan_test, and zoo nets with residual sums, BN
// folding, concatenation, LRN and pooling): the bf16 plan against the f32 reference kernels. Each
// of the L layers with parameters adds about u of its output's scale (the bound above), and the
// roundings of different layers are independent, so they add like a random walk: the logits are
// asserted within 4 u sqrt(L) of their scale (measured on these nets: at most 0.45 of that).
// Poisoning dead memory changes no bit.
class PlanBf16Nets : public ::testing::TestWithParam<PrecisionCase> {};

TEST_P(PlanBf16Nets, StayWithinTheRoundingBoundOfTheReference) {
  if (!can_run_bf16()) GTEST_SKIP() << "oneDNN runs bf16 only with AVX-512: " << cpu_features().describe();
  Net net = load_precision_case(GetParam());
  const Tensor input = random_batch(net, 3);
  const Tensor expected = reference_output(net, input);

  Executor planned(net, {.seed = 7});
  randomize_batch_norms(planned, 11);
  onednn::Engine engine;
  const Tensor* inputs[] = {&input};
  Plan plan(net, planned.parameter_store(), engine, bf16_options(2));
  const Tensor got = plan.forward(inputs);
  int layers = 0;
  for (const Node& node : net.nodes()) layers += node.params.empty() ? 0 : 1;
  const double error = relative_error(got, expected);
  EXPECT_LT(error, 4.0 * kU * std::sqrt(layers)) << net.name() << ": " << layers << " layers with parameters";
  EXPECT_GT(error, 0.0) << net.name() << ": bf16 arithmetic cannot be exact here";

  PlanOptions poisoned = bf16_options(2);
  poisoned.poison_dead = true;
  Plan checked(net, planned.parameter_store(), engine, poisoned);
  const Tensor again = checked.forward(inputs);
  EXPECT_EQ(std::memcmp(again.data(), got.data(), static_cast<size_t>(got.numel()) * 4), 0) << net.name();
}

INSTANTIATE_TEST_SUITE_P(Nets, PlanBf16Nets, ::testing::ValuesIn(precision_cases()),
                         [](const auto& info) { return precision_case_name(info.param); });

TEST(PlanBf16, EveryZooNetworkCompilesWithHalfTheActivationMemory) {
  // Sizes only (nothing allocated or compiled): every activation between primitives is bf16.
  for (const ZooEntry& entry : zoo_entries()) {
    Net net = load_model(entry.name);
    const PlanMemory f32 = plan_memory(net, 4);
    const PlanMemory bf16 = plan_memory(net, 4, false, DType::BF16);
    EXPECT_LE(bf16.arena, f32.arena * 6 / 10) << entry.name;
    EXPECT_LE(bf16.weights, f32.weights * 6 / 10 + 64) << entry.name;
  }
  if (!cpu_features().onednn_bf16) return;  // emulated kernels are older ones; names differ
  onednn::Engine engine;
  for (const char* name : {"resnet50", "vgg16", "googlenet", "densenet121", "alexnet"}) {
    Net net = load_model(name);
    ParamStore store(net, false);
    PlanOptions o = bf16_options(4);
    o.allocate = false;
    const Plan plan(net, store, engine, o);
    for (const PlanStep& step : plan.describe()) {
      EXPECT_EQ(step.implementation.rfind("ref", 0), std::string::npos) << name << ": " << step.label;
    }
  }
}

TEST(PlanBf16, LayerByLayerPathsRefuseBf16) {
  // maxout has no training lowering: f32 would train it layer by layer, bf16 refuses.
  Net net = load_model_text("network m\ninput 4x6x6\nconv 8 3x3\nmaxout 2\nflatten\nfc 3\n", "m.cnet");
  Executor ex(net, {.seed = 1, .precision = DType::BF16, .emulate = true});
  const Tensor input = random_tensor({2, 4, 6, 6}, 1);
  try {
    (void)ex.forward(input, true);
    FAIL() << "bf16 trained layer by layer";
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), "bf16 training needs a training plan: plan: 1 (maxout) has no training lowering yet");
  }
  Executor reference(net, {.backend = Backend::Reference, .precision = DType::BF16});
  try {
    (void)reference.forward(input, false);
    FAIL() << "bf16 ran on the reference kernels";
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), "bf16 runs through compiled oneDNN plans only, not the reference kernels");
  }
}

// The CLI on a CPU capped below bf16 (DNNL_MAX_CPU_ISA is read by the child's oneDNN): one clear
// error, and oneDNN's emulation with --emulate where AVX-512 remains.
TEST(PlanBf16, CommandLineRefusesBf16WhereTheCpuCannotRunItFast) {
  ::setenv("DNNL_MAX_CPU_ISA", "AVX2", 1);
  const testing::Result avx2 = testing::run({"bench", "lenet5", "--precision", "bf16", "--reps", "1", "--batch", "2"});
  const testing::Result avx2_emulated =
      testing::run({"bench", "lenet5", "--precision", "bf16", "--emulate", "--reps", "1", "--batch", "2"});
  ::setenv("DNNL_MAX_CPU_ISA", "AVX512_CORE", 1);
  const testing::Result avx512 =
      testing::run({"bench", "lenet5", "--precision", "bf16", "--reps", "1", "--batch", "2"});
  const testing::Result emulated =
      testing::run({"bench", "lenet5", "--precision", "bf16", "--emulate", "--reps", "1", "--batch", "2"});
  ::unsetenv("DNNL_MAX_CPU_ISA");
  EXPECT_EQ(avx2.code, 1);
  EXPECT_CONTAINS(avx2.err, "convnet: --precision bf16: bf16 needs a CPU with AVX512_BF16 or AMX");
  EXPECT_CONTAINS(avx2.err, "add --emulate to run it anyway");
  EXPECT_EQ(avx2_emulated.code, 1);
  EXPECT_CONTAINS(avx2_emulated.err, "oneDNN cannot emulate it without AVX-512 either");
  if (!cpu_features().avx512f) return;
  EXPECT_EQ(avx512.code, 1);
  EXPECT_CONTAINS(avx512.err, "bf16 needs a CPU with AVX512_BF16 or AMX");
  EXPECT_EQ(emulated.code, 0) << emulated.err;
  EXPECT_CONTAINS(emulated.out, "oneDNN plan kernels, bf16 (emulate allowed)");
}

}  // namespace
}  // namespace convnet
