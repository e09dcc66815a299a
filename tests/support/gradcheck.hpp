// Finite-difference gradient checks in double for kernels with the convention of
// docs/kernels.md: backward writes every gradient (accumulate = false) or adds to it (true).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <vector>

namespace convnet::testing {

using Buffers = std::vector<std::vector<double>>;

struct GradCheckOptions {
  double epsilon = 1e-6;     // central differences in double: error ~ eps^2 * f''' plus rounding ~1e-16/eps
  double tolerance = 1e-6;   // on |analytic - numeric| / max(|analytic|, |numeric|, 1)
  int max_checks = 150;      // elements sampled per buffer (all when smaller)
  unsigned seed = 7;
};

/// forward(values) -> output; backward(values, grad_output, grads, accumulate) writes or adds
/// d(sum(grad_output * output))/d(values[i]) into grads[i]. `values` holds inputs and parameters.
using Forward = std::function<std::vector<double>(const Buffers& values)>;
using Backward = std::function<void(const Buffers& values, const std::vector<double>& grad_output, Buffers& grads,
                                    bool accumulate)>;

/// Checks every buffer's gradient against central differences, that no element is left unwritten
/// (buffers poisoned with NaN before an overwriting backward) and that accumulation adds.
inline void expect_gradients_match(const Forward& forward, const Backward& backward, Buffers values,
                                   const GradCheckOptions& options = {}) {
  std::mt19937 rng(options.seed);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  const std::vector<double> output = forward(values);
  std::vector<double> grad_output(output.size());
  for (double& g : grad_output) g = uniform(rng);
  auto loss = [&](const Buffers& v) {
    const std::vector<double> out = forward(v);
    double sum = 0;
    for (size_t i = 0; i < out.size(); ++i) sum += grad_output[i] * out[i];
    return sum;
  };

  Buffers grads(values.size());
  for (size_t b = 0; b < values.size(); ++b) grads[b].assign(values[b].size(), std::numeric_limits<double>::quiet_NaN());
  backward(values, grad_output, grads, /*accumulate=*/false);

  Buffers accumulated(values.size());
  constexpr double kPrefill = 0.25;
  for (size_t b = 0; b < values.size(); ++b) accumulated[b].assign(values[b].size(), kPrefill);
  backward(values, grad_output, accumulated, /*accumulate=*/true);

  for (size_t b = 0; b < values.size(); ++b) {
    std::vector<size_t> indices(values[b].size());
    for (size_t i = 0; i < indices.size(); ++i) indices[i] = i;
    std::shuffle(indices.begin(), indices.end(), rng);
    if (indices.size() > static_cast<size_t>(options.max_checks)) indices.resize(static_cast<size_t>(options.max_checks));
    for (size_t i = 0; i < values[b].size(); ++i) {
      ASSERT_FALSE(std::isnan(grads[b][i])) << "buffer " << b << " element " << i << " was not written";
      ASSERT_NEAR(accumulated[b][i], kPrefill + grads[b][i], 1e-9) << "buffer " << b << " element " << i << " did not accumulate";
    }
    for (size_t i : indices) {
      const double saved = values[b][i];
      values[b][i] = saved + options.epsilon;
      const double plus = loss(values);
      values[b][i] = saved - options.epsilon;
      const double minus = loss(values);
      values[b][i] = saved;
      const double numeric = (plus - minus) / (2 * options.epsilon);
      const double analytic = grads[b][i];
      const double scale = std::max({std::fabs(analytic), std::fabs(numeric), 1.0});
      EXPECT_LE(std::fabs(analytic - numeric) / scale, options.tolerance)
          << "buffer " << b << " element " << i << ": analytic " << analytic << " numeric " << numeric;
    }
  }
}

/// Uniform values in [lo, hi), seeded.
inline std::vector<double> random_values(size_t count, unsigned seed, double lo = -1.0, double hi = 1.0) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> uniform(lo, hi);
  std::vector<double> v(count);
  for (double& x : v) x = uniform(rng);
  return v;
}

}  // namespace convnet::testing
