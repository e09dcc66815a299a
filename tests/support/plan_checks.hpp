// Helpers of the plan tests: random tensors, batch norms with non-trivial statistics, and the
// error of a result relative to its scale.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "convnet/executor.hpp"
#include "convnet/tensor.hpp"

namespace convnet {

inline Tensor random_tensor(std::vector<int64_t> dims, unsigned seed) {
  Tensor t(std::move(dims));
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& v : t.span()) v = normal(rng);
  return t;
}

/// Gives every batch norm non-trivial statistics and affine parameters, so folding is exercised.
inline void randomize_batch_norms(Executor& executor, unsigned seed) {
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
inline double relative_error(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.dims(), b.dims());
  double diff = 0, scale = 0;
  for (int64_t i = 0; i < b.numel(); ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) return std::numeric_limits<double>::infinity();
    diff = std::max(diff, static_cast<double>(std::fabs(a[i] - b[i])));
    scale = std::max(scale, static_cast<double>(std::fabs(b[i])));
  }
  return diff / std::max(scale, 1e-30);
}

}  // namespace convnet
