// `convnet bench`: images/s, median ms per batch, per-layer breakdown and achieved GFLOP/s.
#pragma once

#include <cstdint>
#include <string>

#include "cli_checks.hpp"

namespace convnet {

struct BenchOptions {
  std::string net;
  std::string input;        // CxHxW, empty: the model's
  int64_t batch = 32;
  bool train = false;       // forward + backward instead of inference
  int threads = 0;          // 0: all cores
  int repetitions = 10;
  int warmup = 2;
  bool reference = false;   // time the reference kernels instead of oneDNN
  bool layer_by_layer = false;  // inference without the compiled plan
  std::string layout = "any";   // the plan's activation layout: any, nhwc, blocked
  PrecisionOptions precision;
  int top = 15;             // layers shown in the breakdown
};

int run_bench(const BenchOptions& options);

}  // namespace convnet
