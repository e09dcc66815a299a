// Timing of whole batches (median after warm-up) with a per-layer breakdown from a profiled run.
#include "bench.hpp"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <numeric>
#include <random>
#include <thread>

#include "convnet/analysis/summary.hpp"
#include "convnet/cpu_features.hpp"
#include "convnet/train/quantize.hpp"
#include "convnet/executor.hpp"
#include "convnet/loss.hpp"
#include "convnet/model/model.hpp"

namespace convnet {

int run_bench(const BenchOptions& o) {
  const int threads = o.threads > 0 ? o.threads : static_cast<int>(std::thread::hardware_concurrency());
  omp_set_num_threads(threads);
  LoadOptions load;
  if (!o.input.empty()) load.input_shape = parse_input_option(o.input);
  Net net = load_model(o.net, load);
  const Summary summary = summarize(net, o.batch);
  const ActivationLayout layout = o.layout == "nhwc"      ? ActivationLayout::Nhwc
                                  : o.layout == "blocked" ? ActivationLayout::Blocked
                                                          : ActivationLayout::Any;
  const DType dtype = o.precision.dtype();
  Executor executor(net, {.backend = o.reference ? Backend::Reference : Backend::OneDnn,
                          .seed = 1,
                          .plan_inference = !o.layer_by_layer,
                          .plan_training = !o.layer_by_layer,
                          .plan_layout = layout,
                          .precision = dtype,
                          .emulate = o.precision.emulate});

  const Shape& in_shape = net.node(net.inputs().at(0)).output;
  std::vector<int64_t> dims{o.batch};
  dims.insert(dims.end(), in_shape.dims().begin(), in_shape.dims().end());
  Tensor input(dims);
  std::mt19937_64 rng(2);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& v : input.span()) v = normal(rng);
  const int64_t classes = net.node(net.output()).output.numel();
  std::vector<int64_t> labels(static_cast<size_t>(o.batch));
  for (auto& l : labels) l = static_cast<int64_t>(rng() % static_cast<uint64_t>(classes));
  if (dtype == DType::Int8) {
    if (o.train) throw SpecError("bench: int8 is for inference (post-training quantization); drop --train");
    std::vector<ActivationRange> ranges;
    observe_ranges(executor, input, ranges);  // scales from the timed batch itself: for timing only
    executor.set_activation_ranges(std::move(ranges));
  }
  Tensor grad_logits;

  auto step = [&] {
    const Tensor& logits = executor.forward(input, o.train);
    if (o.train) {
      executor.zero_grad();
      (void)softmax_cross_entropy(logits, labels, grad_logits);
      executor.backward(grad_logits);
    }
  };
  for (int i = 0; i < o.warmup; ++i) step();
  std::vector<double> seconds;
  for (int i = 0; i < o.repetitions; ++i) {
    const auto start = std::chrono::steady_clock::now();
    step();
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(seconds.begin(), seconds.end());
  const double median = seconds[seconds.size() / 2];

  executor.set_profiling(true);
  step();
  const auto& fwd = executor.forward_seconds();
  const auto& bwd = executor.backward_seconds();

  // Work per batch: forward = 2*MACs FLOPs; backward ~ twice the forward (data and weight gradients).
  const double flops = static_cast<double>(summary.flops()) * static_cast<double>(o.batch) * (o.train ? 3.0 : 1.0);
  std::printf("convnet bench %s: %s, batch %lld, %d thread(s), %s kernels, %s%s, input %s\n", net.name().c_str(),
              o.train ? "training (forward + backward)" : "inference", static_cast<long long>(o.batch), threads,
              o.reference ? "reference" : (executor.last_plan() == nullptr ? "oneDNN layer-by-layer" : "oneDNN plan"),
              dtype_name(dtype), o.precision.emulate && dtype != DType::F32 ? " (emulate allowed)" : "",
              in_shape.chw_string().c_str());
  std::printf("  CPU: %s\n", cpu_features().describe().c_str());
  if (dtype != DType::F32 || cpu_features().avx512_bf16 || cpu_features().avx512_vnni) {
    const DotThroughput& dot = dot_throughput();
    std::printf("  one core's dot products against its f32 FMAs: bf16 %.2fx, int8 %.2fx (measured now)\n", dot.bf16,
                dot.int8);
  }
  std::printf("  %.2f ms per batch (median of %d after %d warm-up; min %.2f, max %.2f)\n", median * 1e3,
              o.repetitions, o.warmup, seconds.front() * 1e3, seconds.back() * 1e3);
  std::printf("  %.1f images/s, %.1f GFLOP/s achieved (%s FLOPs per batch)\n",
              static_cast<double>(o.batch) / median, flops / median / 1e9, compact(flops).c_str());
  if (const Plan* plan = executor.last_plan()) {
    std::printf("  compiled plan (%s layout): %zu steps for %zu layers, %s held (%s activations, %s weight copies)\n",
                o.layout.c_str(), plan->describe().size(), net.nodes().size(),
                compact(static_cast<double>(plan->peak_bytes()), true).c_str(),
                compact(static_cast<double>(plan->arena_bytes()), true).c_str(),
                compact(static_cast<double>(plan->weight_bytes()), true).c_str());
  }

  std::vector<size_t> order(net.nodes().size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return fwd[a] + bwd[a] > fwd[b] + bwd[b]; });
  const double total = std::accumulate(fwd.begin(), fwd.end(), 0.0) + std::accumulate(bwd.begin(), bwd.end(), 0.0);
  std::printf("\n  per layer (one profiled batch; %d slowest):\n", o.top);
  std::printf("  %-28s %-10s %10s %10s %7s %10s\n", "layer", "kind", "fwd ms", "bwd ms", "share", "GFLOP/s");
  for (size_t k = 0; k < order.size() && static_cast<int>(k) < o.top; ++k) {
    const size_t i = order[k];
    const double t = fwd[i] + bwd[i];
    if (t <= 0) break;
    const double layer_flops = 2.0 * static_cast<double>(summary.rows[i].macs) * static_cast<double>(o.batch) *
                               (o.train ? 3.0 : 1.0);
    std::printf("  %-28s %-10s %10.3f %10.3f %6.1f%% %10.1f\n", summary.rows[i].name.c_str(),
                summary.rows[i].kind.c_str(), fwd[i] * 1e3, bwd[i] * 1e3, 100.0 * t / total,
                layer_flops > 0 ? layer_flops / t / 1e9 : 0.0);
  }
  return 0;
}

}  // namespace convnet
