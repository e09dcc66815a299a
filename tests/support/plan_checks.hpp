// Helpers of the plan tests: random tensors, batch norms with non-trivial statistics, the error
// of a result relative to its scale, the small nets of each fusion and fallback, and the nets the
// reduced-precision tests run (with their f32 reference output).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "convnet/executor.hpp"
#include "convnet/model/model.hpp"
#include "convnet/tensor.hpp"

namespace convnet {

/// The bits of a float.
inline uint32_t bits(float v) {
  uint32_t b = 0;
  std::memcpy(&b, &v, 4);
  return b;
}

/// `v` rounded to bf16 (round to nearest even on the upper 16 bits; finite values), as a float.
inline float bf16_round(float v) {
  uint32_t b = bits(v);
  b += 0x7FFFU + ((b >> 16) & 1U);
  b &= 0xFFFF0000U;
  float out = 0;
  std::memcpy(&out, &b, 4);
  return out;
}

/// (batch, ...node's output shape).
inline std::vector<int64_t> batched(const Net& net, int node, int64_t batch) {
  std::vector<int64_t> dims{batch};
  for (int64_t d : net.node(node).output.dims()) dims.push_back(d);
  return dims;
}

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
    auto ends_with = [&](const std::string& s) {
      return n.size() >= s.size() && n.compare(n.size() - s.size(), s.size(), s) == 0;
    };
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

// Small nets, one per fusion and fallback: conv+bn+relu, conv+bn+add+relu (the residual sum into
// the other operand's storage, or into a copy when it is still read later), fc+relu on a blocked
// volume, bn+relu alone, the sum of three, LRN, softmax, maxout/tiled/local and LRN of an even
// size (host fallback: oneDNN centres an even window one channel off PyTorch's), ceil-mode average
// pooling without padding (oneDNN's exclude-padding average) and with padding past which its last
// window reaches (host fallback).
inline const char* const kFusionNets[] = {
    "network a\ninput 3x9x9\nconv 8 3x3 pad 1\nbatchnorm\nrelu\nconv 16 3x3 stride 2\nbatchnorm\nfc 5\nrelu\nfc 3\n",
    // inference absorbs dropout and drop path (the identity) into the chain: conv + bn + add + relu
    "network b\ninput 8x8x8\nx conv 8 3x3 pad 1\nc1 conv 8 3x3 pad 1 bias false\ndropout p 0.2\nb1 batchnorm\n"
    "d droppath 0.3\ns add d x\nrelu\n",
    "network c\ninput 8x8x8\nx relu\nc1 conv 8 3x3 pad 1\ns add c1 x\nt add s x\nsoftmax_in flatten\nfc 4\nsoftmax\n",
    "network d\ninput 4x8x8\nbatchnorm\nrelu\nlrn size 3\nmaxpool 3x3 stride 2 round ceil\nmaxout 2\nconv 6 1x1\n"
    "lrn size 2\n",
    "network e\ninput 6x9x9\nx conv 6 1x1\ny conv 6 1x1\nz conv 6 1x1\ns add x y z\nc concat s x\ntiled 4 3x3 tile "
    "2\nlocal 3 2x2\n",
    "network f\ninput 3x10x10\nconv 16 3x3\nleakyrelu slope 0.2\navgpool 3x3 stride 2 pad 1 round "
    "floor\nelu\nglobalavgpool\nflatten\nsigmoid\nfc 3\ntanh\n",
    "network g\ninput 3x8x8\navgpool 3x3 stride 2 round ceil\navgpool 3x3 stride 2 pad 1 round ceil\nconv 4 1x1\n",
};

/// A network of the reduced-precision tests: one of kFusionNets (input empty) or a zoo name with
/// a small input shape.
struct PrecisionCase {
  std::string model;
  const char* input;
};

inline std::vector<PrecisionCase> precision_cases() {
  std::vector<PrecisionCase> cases;
  for (const char* text : kFusionNets) cases.push_back({text, ""});
  cases.pop_back();  // the last fusion net is all pooling and a 1x1 conv: covered by the others
  for (const auto& [name, input] : std::vector<std::pair<const char*, const char*>>{{"lenet5", "1x28x28"},
                                                                                    {"resnet20", "1x28x28"},
                                                                                    {"alexnet", "3x99x99"},
                                                                                    {"resnet18", "3x32x32"},
                                                                                    {"densenet121", "3x32x32"},
                                                                                    {"googlenet", "3x64x64"}}) {
    cases.push_back({name, input});
  }
  return cases;
}

/// "fusion_a" for the model text "network a ...", else the zoo name.
inline std::string precision_case_name(const PrecisionCase& c) {
  return c.model.rfind("network ", 0) == 0 ? "fusion_" + c.model.substr(8, 1) : c.model;
}

inline Net load_precision_case(const PrecisionCase& c) {
  LoadOptions load;
  if (*c.input != '\0') load.input_shape = parse_input_option(c.input);
  return *c.input == '\0' ? load_model_text(c.model, "fusion.cnet", load) : load_model(c.model, load);
}

/// The reference kernels' output for `input`, with parameters seeded 7 and batch norms 11 (the
/// planned executor of a precision test is set up the same way).
inline Tensor reference_output(Net& net, const Tensor& input) {
  Executor reference(net, {.backend = Backend::Reference, .seed = 7});
  randomize_batch_norms(reference, 11);
  return reference.forward(input, false);
}

/// A random batch of 2 for the net's first input.
inline Tensor random_batch(const Net& net, unsigned seed) {
  std::vector<int64_t> dims{2};
  for (int64_t d : net.node(net.inputs()[0]).output.dims()) dims.push_back(d);
  return random_tensor(dims, seed);
}

}  // namespace convnet
