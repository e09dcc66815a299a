// No heap allocation by convnet after warm-up: this test binary's operator new counts the calls
// made while a plan runs, split by the caller's library. oneDNN's execute builds a small argument
// context inside libdnnl on every primitive call; those are counted apart and only reported.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

#include "convnet/executor.hpp"
#include "convnet/model/model.hpp"

namespace {
std::atomic<bool> counting{false};
std::atomic<int64_t> own_allocations{0};
std::atomic<int64_t> onednn_allocations{0};
thread_local bool inside = false;

[[maybe_unused]] void count(void* caller) {
  if (!counting.load(std::memory_order_relaxed) || inside) return;
  inside = true;
  Dl_info info{};
  const bool in_onednn = dladdr(caller, &info) != 0 && info.dli_fname != nullptr &&
                         std::strstr(info.dli_fname, "libdnnl") != nullptr;
  (in_onednn ? onednn_allocations : own_allocations).fetch_add(1, std::memory_order_relaxed);
  inside = false;
}
}  // namespace

// Under AddressSanitizer the sanitizer owns operator new (and checks that every delete matches its
// new), so the counting replacement exists in the optimised build only and the test skips there.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kCounting = false;
#else
constexpr bool kCounting = true;
// The replacement pairs malloc with free; GCC cannot see that both halves are replaced together.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

void* operator new(size_t bytes) {
  count(__builtin_return_address(0));
  if (void* p = std::malloc(bytes == 0 ? 1 : bytes)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
#endif

namespace convnet {
namespace {

TEST(PlanAllocation, ConvnetAllocatesNothingAfterWarmUp) {
  if (!kCounting) GTEST_SKIP() << "operator new belongs to AddressSanitizer in this build";
  for (const char* name : {"resnet20", "lenet5", "cifar10-quick"}) {
    Net net = load_model(name);
    Executor executor(net, {.backend = Backend::OneDnn, .seed = 1});
    std::vector<int64_t> dims{16};
    for (int64_t d : net.node(net.inputs()[0]).output.dims()) dims.push_back(d);
    const Tensor input(dims);
    (void)executor.forward(input, false);  // warm-up: compiles the plan
    Plan* plan = executor.last_plan();
    ASSERT_NE(plan, nullptr);
    const int64_t tensor_bytes = tensor_memory_stats().current_bytes;
    const Tensor* inputs[] = {&input};
    own_allocations = 0;
    onednn_allocations = 0;
    counting = true;
    for (int i = 0; i < 3; ++i) (void)plan->forward(inputs);
    counting = false;
    EXPECT_EQ(own_allocations.load(), 0) << name;
    EXPECT_EQ(tensor_memory_stats().current_bytes, tensor_bytes) << name;
    std::printf("%s: %lld allocations inside oneDNN's execute over 3 runs of %zu steps\n", name,
                static_cast<long long>(onednn_allocations.load()), plan->describe().size());
  }
}

TEST(PlanAllocation, TrainingStepsAllocateNothingAfterWarmUp) {
  // Forward, zero_grad and backward through a training plan, with the weight copies refreshed every
  // step (the optimiser changes the values in between; here named_parameters() says they may have).
  if (!kCounting) GTEST_SKIP() << "operator new belongs to AddressSanitizer in this build";
  for (const char* name : {"resnet20", "lenet5"}) {
    Net net = load_model(name);
    Executor executor(net, {.backend = Backend::OneDnn, .seed = 1});
    std::vector<int64_t> dims{8};
    for (int64_t d : net.node(net.inputs()[0]).output.dims()) dims.push_back(d);
    const Tensor input(dims);
    const Tensor grad_output({8, net.node(net.output()).output.numel()});
    auto step = [&] {
      (void)executor.forward(input, true);
      executor.zero_grad();
      executor.backward(grad_output);
    };
    step();  // warm-up: compiles the training plan
    ASSERT_NE(executor.last_plan(), nullptr) << name;
    const uint64_t version = executor.parameter_store().version();
    own_allocations = 0;
    onednn_allocations = 0;
    counting = true;
    for (int i = 0; i < 3; ++i) step();
    counting = false;
    EXPECT_EQ(own_allocations.load(), 0) << name;
    EXPECT_GT(executor.parameter_store().version(), version) << name << ": weight copies were not refreshed";
    std::printf("%s training: %lld allocations inside oneDNN's execute over 3 steps of %zu ops\n", name,
                static_cast<long long>(onednn_allocations.load()), executor.last_plan()->describe().size());
  }
}

}  // namespace
}  // namespace convnet
