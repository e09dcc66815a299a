// The oneDNN kernels against the reference kernels (float), forward and backward, overwrite and
// accumulate, on awkward shapes: sizes 1, 7, 13, non-square, stride > kernel, ceil-rounded
// windows, groups (2 and depthwise), dilation, padding, batch 1 and 3.
//
// Tolerances: |onednn - reference| <= tol * (|reference| + rms(reference)) elementwise. The rms
// term keeps near-zero outputs of long sums (where relative error is meaningless) from failing on
// rounding alone. oneDNN sums in another order (blocked channels, vector lanes, per-thread partial
// sums), so a sum of K float terms may differ by ~K * 2^-24 * sum|terms|:
//  - conv / linear / pool backward / batch-norm statistics: 1e-4 (K up to a few hundred here; the
//    direct algorithm is requested, never Winograd, whose transforms lose ~1e-3).
//  - pointwise ops, softmax, LRN: 1e-5 (a few ulps: oneDNN's vectorised exp / tanh / pow are
//    accurate to a few ulps, and softmax / LRN sum only C terms).
// Each case uses fresh random inputs in [-1, 1] from a fixed seed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "convnet/kernels/onednn/batch_norm.hpp"
#include "convnet/kernels/onednn/conv2d.hpp"
#include "convnet/kernels/onednn/eltwise.hpp"
#include "convnet/kernels/onednn/engine.hpp"
#include "convnet/kernels/onednn/linear.hpp"
#include "convnet/kernels/onednn/lrn.hpp"
#include "convnet/kernels/onednn/pool2d.hpp"
#include "convnet/kernels/onednn/softmax.hpp"
#include "convnet/kernels/reference/activation.hpp"
#include "convnet/kernels/reference/batch_norm.hpp"
#include "convnet/kernels/reference/conv2d.hpp"
#include "convnet/kernels/reference/linear.hpp"
#include "convnet/kernels/reference/lrn.hpp"
#include "convnet/kernels/reference/pool2d.hpp"
#include "convnet/kernels/reference/softmax.hpp"

namespace {

namespace dn = convnet::kernels::onednn;
namespace ref = convnet::kernels::reference;
using Vec = std::vector<float>;

constexpr float kSumTol = 1e-4F;        // long float sums in another order
constexpr float kPointwiseTol = 1e-5F;  // a few ulps, short sums

convnet::onednn::Engine& engine() {
  static convnet::onednn::Engine e;  // one per test binary: creating engines is slow
  return e;
}

Vec random(int64_t n, unsigned seed, float scale = 1.0F) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(-scale, scale);
  Vec v(static_cast<size_t>(n));
  for (float& x : v) x = uniform(rng);
  return v;
}

Vec nans(int64_t n) { return Vec(static_cast<size_t>(n), std::numeric_limits<float>::quiet_NaN()); }

Vec plus(const Vec& a, const Vec& b) {
  Vec r(a.size());
  for (size_t i = 0; i < a.size(); ++i) r[i] = a[i] + b[i];
  return r;
}

void expect_close(const Vec& actual, const Vec& expected, float tol, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  double squares = 0;
  for (float e : expected) squares += static_cast<double>(e) * e;
  const double rms = expected.empty() ? 0.0 : std::sqrt(squares / static_cast<double>(expected.size()));
  int failures = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double bound = tol * (std::fabs(expected[i]) + rms);
    if (!(std::fabs(static_cast<double>(actual[i]) - expected[i]) <= bound)) {
      ADD_FAILURE() << what << "[" << i << "]: onednn " << actual[i] << " vs reference " << expected[i]
                    << " (bound " << bound << ")";
      if (++failures == 5) return;
    }
  }
}

/// Checks one backward output both ways: overwrite into NaN-poisoned buffers and add into prefilled
/// ones. `run(buffers, accumulate)` calls the oneDNN backward; `want` are the reference gradients.
template <class Run>
void expect_backward(const std::vector<Vec>& want, Run run, float tol, const std::string& what) {
  std::vector<Vec> overwritten;
  std::vector<Vec> prefill;
  for (size_t b = 0; b < want.size(); ++b) {
    overwritten.push_back(nans(static_cast<int64_t>(want[b].size())));
    prefill.push_back(random(static_cast<int64_t>(want[b].size()), 1000 + static_cast<unsigned>(b)));
  }
  run(overwritten, false);
  std::vector<Vec> added = prefill;
  run(added, true);
  for (size_t b = 0; b < want.size(); ++b) {
    expect_close(overwritten[b], want[b], tol, what + " grad " + std::to_string(b) + " (overwrite)");
    expect_close(added[b], plus(prefill[b], want[b]), tol, what + " grad " + std::to_string(b) + " (accumulate)");
  }
}

/// PyTorch's output size; ceil rounding drops a last window that would start in the right padding.
int64_t out_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation, bool ceil) {
  const int64_t span = in + 2 * pad - (kernel - 1) * dilation - 1;
  int64_t out = (ceil ? (span + stride - 1) / stride : span / stride) + 1;
  if (ceil && (out - 1) * stride >= in + pad) --out;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Convolution

struct ConvCase {
  std::string name;
  int64_t batch, in_channels, in_h, in_w, out_channels, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
      dilation_h = 1, dilation_w = 1, groups = 1;
  bool ceil = false;
  bool bias = true;
};

ref::Conv2dGeometry conv_geometry(const ConvCase& c) {
  return {.batch = c.batch,
          .in_channels = c.in_channels,
          .in_h = c.in_h,
          .in_w = c.in_w,
          .out_channels = c.out_channels,
          .out_h = out_size(c.in_h, c.kernel_h, c.stride_h, c.pad_h, c.dilation_h, c.ceil),
          .out_w = out_size(c.in_w, c.kernel_w, c.stride_w, c.pad_w, c.dilation_w, c.ceil),
          .kernel_h = c.kernel_h,
          .kernel_w = c.kernel_w,
          .stride_h = c.stride_h,
          .stride_w = c.stride_w,
          .pad_h = c.pad_h,
          .pad_w = c.pad_w,
          .dilation_h = c.dilation_h,
          .dilation_w = c.dilation_w,
          .groups = c.groups};
}

void check_conv(dn::Conv2d& conv, const ConvCase& c) {
  SCOPED_TRACE(c.name);
  const ref::Conv2dGeometry g = conv_geometry(c);
  const int64_t nx = g.batch * g.in_channels * g.in_h * g.in_w;
  const int64_t ny = g.batch * g.out_channels * g.out_h * g.out_w;
  const int64_t nw = g.out_channels * (g.in_channels / g.groups) * g.kernel_h * g.kernel_w;
  const Vec x = random(nx, 1), w = random(nw, 2), b = random(g.out_channels, 3), dy = random(ny, 4);
  const float* bias = c.bias ? b.data() : nullptr;

  Vec want(static_cast<size_t>(ny));
  ref::conv2d_forward<float>(g, x.data(), w.data(), bias, want.data());
  Vec got = nans(ny);
  conv.forward(engine(), g, x.data(), w.data(), bias, got.data());
  expect_close(got, want, kSumTol, c.name + " forward");

  Vec dx(static_cast<size_t>(nx)), dw(static_cast<size_t>(nw)), db(static_cast<size_t>(g.out_channels));
  ref::conv2d_backward<float>(g, x.data(), w.data(), dy.data(), dx.data(), dw.data(), c.bias ? db.data() : nullptr,
                              false);
  std::vector<Vec> want_grads{dx, dw};
  if (c.bias) want_grads.push_back(db);
  expect_backward(
      want_grads,
      [&](std::vector<Vec>& out, bool accumulate) {
        conv.backward(engine(), g, x.data(), w.data(), dy.data(), out[0].data(), out[1].data(),
                      c.bias ? out[2].data() : nullptr, accumulate);
      },
      kSumTol, c.name);
  // The two halves separately, as a layer that overwrites dx but adds parameter gradients calls them.
  expect_backward(
      {dx}, [&](std::vector<Vec>& out, bool accumulate) {
        conv.backward_data(engine(), g, w.data(), dy.data(), out[0].data(), accumulate);
      },
      kSumTol, c.name + " backward_data");
  expect_backward(
      {dw}, [&](std::vector<Vec>& out, bool accumulate) {
        conv.backward_weights(engine(), g, x.data(), dy.data(), out[0].data(), nullptr, accumulate);
      },
      kSumTol, c.name + " backward_weights (no bias)");
}

const std::vector<ConvCase>& conv_cases() {
  static const std::vector<ConvCase> cases = {
      {.name = "all ones", .batch = 1, .in_channels = 1, .in_h = 1, .in_w = 1, .out_channels = 1, .kernel_h = 1,
       .kernel_w = 1, .stride_h = 1, .stride_w = 1, .pad_h = 0, .pad_w = 0},
      {.name = "7x13 3x2 kernel, pad (1,0), batch 3", .batch = 3, .in_channels = 3, .in_h = 7, .in_w = 13,
       .out_channels = 5, .kernel_h = 3, .kernel_w = 2, .stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 0},
      {.name = "stride 3 > kernel 2, no bias", .batch = 2, .in_channels = 2, .in_h = 13, .in_w = 7,
       .out_channels = 4, .kernel_h = 2, .kernel_w = 2, .stride_h = 3, .stride_w = 3, .pad_h = 0, .pad_w = 0,
       .bias = false},
      {.name = "groups 2, stride 2, pad 1", .batch = 3, .in_channels = 4, .in_h = 7, .in_w = 9, .out_channels = 6,
       .kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1, .groups = 2},
      {.name = "depthwise 5 channels", .batch = 1, .in_channels = 5, .in_h = 7, .in_w = 7, .out_channels = 5,
       .kernel_h = 3, .kernel_w = 3, .stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1, .groups = 5},
      {.name = "depthwise 16 channels, stride 2", .batch = 3, .in_channels = 16, .in_h = 13, .in_w = 13,
       .out_channels = 16, .kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1,
       .groups = 16},
      {.name = "dilation (2,3), pad (2,1)", .batch = 1, .in_channels = 3, .in_h = 13, .in_w = 11, .out_channels = 2,
       .kernel_h = 3, .kernel_w = 3, .stride_h = 1, .stride_w = 1, .pad_h = 2, .pad_w = 1, .dilation_h = 2,
       .dilation_w = 3},
      {.name = "ceil rounding: last window past the padding", .batch = 3, .in_channels = 2, .in_h = 7, .in_w = 8,
       .out_channels = 3, .kernel_h = 2, .kernel_w = 3, .stride_h = 2, .stride_w = 2, .pad_h = 0, .pad_w = 1,
       .ceil = true},
      {.name = "16 -> 32 channels (blocked formats)", .batch = 3, .in_channels = 16, .in_h = 13, .in_w = 7,
       .out_channels = 32, .kernel_h = 3, .kernel_w = 3, .stride_h = 1, .stride_w = 2, .pad_h = 1, .pad_w = 1},
      {.name = "32 -> 16 channels, groups 2, dilation 2", .batch = 1, .in_channels = 32, .in_h = 9, .in_w = 9,
       .out_channels = 16, .kernel_h = 3, .kernel_w = 3, .stride_h = 1, .stride_w = 1, .pad_h = 2, .pad_w = 2,
       .dilation_h = 2, .dilation_w = 2, .groups = 2},
  };
  return cases;
}

TEST(OneDnnConv2d, MatchesReferenceOnAwkwardShapes) {
  for (const ConvCase& c : conv_cases()) {
    dn::Conv2d conv;  // fresh primitives per case
    check_conv(conv, c);
  }
}

TEST(OneDnnConv2d, OneObjectFollowsGeometryChanges) {
  // The cache is keyed on the geometry: one object through every case, then the first again.
  dn::Conv2d conv;
  for (const ConvCase& c : conv_cases()) check_conv(conv, c);
  check_conv(conv, conv_cases()[1]);
  check_conv(conv, conv_cases()[1]);  // cached primitives reused
}

TEST(OneDnnConv2d, FollowsEngineChanges) {
  // Primitives belong to one engine: a new engine (even at a reused address) gets new ones.
  const ConvCase& c = conv_cases()[3];
  const ref::Conv2dGeometry g = conv_geometry(c);
  const Vec x = random(g.batch * g.in_channels * g.in_h * g.in_w, 1);
  const Vec w = random(g.out_channels * (g.in_channels / g.groups) * g.kernel_h * g.kernel_w, 2);
  Vec want(static_cast<size_t>(g.batch * g.out_channels * g.out_h * g.out_w));
  ref::conv2d_forward<float>(g, x.data(), w.data(), nullptr, want.data());
  dn::Conv2d conv;
  Vec got(want.size());
  conv.forward(engine(), g, x.data(), w.data(), nullptr, got.data());
  expect_close(got, want, kSumTol, "first engine");
  for (int i = 0; i < 2; ++i) {
    convnet::onednn::Engine other;
    conv.forward(other, g, x.data(), w.data(), nullptr, got.data());
    expect_close(got, want, kSumTol, "engine " + std::to_string(i + 2));
  }
}

// ---------------------------------------------------------------------------------------------
// Linear

TEST(OneDnnLinear, MatchesReference) {
  struct Case {
    int64_t batch, in, out;
    bool bias;
  };
  dn::Linear linear;
  for (const Case c : {Case{1, 1, 1, true}, Case{3, 13, 7, true}, Case{2, 7 * 13, 10, false}, Case{1, 300, 13, true},
                       Case{3, 13, 7, true}}) {
    const std::string name = "linear " + std::to_string(c.batch) + "x" + std::to_string(c.in) + "->" +
                             std::to_string(c.out) + (c.bias ? "" : " no bias");
    const Vec x = random(c.batch * c.in, 1), w = random(c.out * c.in, 2), b = random(c.out, 3),
              dy = random(c.batch * c.out, 4);
    const float* bias = c.bias ? b.data() : nullptr;
    Vec want(static_cast<size_t>(c.batch * c.out));
    ref::linear_forward<float>(c.batch, c.in, c.out, x.data(), w.data(), bias, want.data());
    Vec got = nans(c.batch * c.out);
    linear.forward(engine(), c.batch, c.in, c.out, x.data(), w.data(), bias, got.data());
    expect_close(got, want, kSumTol, name + " forward");

    Vec dx(static_cast<size_t>(c.batch * c.in)), dw(static_cast<size_t>(c.out * c.in)), db(static_cast<size_t>(c.out));
    ref::linear_backward<float>(c.batch, c.in, c.out, x.data(), w.data(), dy.data(), dx.data(), dw.data(),
                                c.bias ? db.data() : nullptr, false);
    std::vector<Vec> want_grads{dx, dw};
    if (c.bias) want_grads.push_back(db);
    expect_backward(
        want_grads,
        [&](std::vector<Vec>& out, bool accumulate) {
          linear.backward(engine(), c.batch, c.in, c.out, x.data(), w.data(), dy.data(), out[0].data(),
                          out[1].data(), c.bias ? out[2].data() : nullptr, accumulate);
        },
        kSumTol, name);
  }
}

// ---------------------------------------------------------------------------------------------
// Pooling

struct PoolCase {
  std::string name;
  int64_t batch, channels, in_h, in_w, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
  bool ceil = false;
};

ref::Pool2dGeometry pool_geometry(const PoolCase& c) {
  return {.batch = c.batch,
          .channels = c.channels,
          .in_h = c.in_h,
          .in_w = c.in_w,
          .out_h = out_size(c.in_h, c.kernel_h, c.stride_h, c.pad_h, 1, c.ceil),
          .out_w = out_size(c.in_w, c.kernel_w, c.stride_w, c.pad_w, 1, c.ceil),
          .kernel_h = c.kernel_h,
          .kernel_w = c.kernel_w,
          .stride_h = c.stride_h,
          .stride_w = c.stride_w,
          .pad_h = c.pad_h,
          .pad_w = c.pad_w};
}

const std::vector<PoolCase>& pool_cases() {
  static const std::vector<PoolCase> cases = {
      {"1x1", 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},
      {"7x13 3x3/2 pad 1, batch 3", 3, 2, 7, 13, 3, 3, 2, 2, 1, 1},
      {"stride 3 > kernel 2", 2, 3, 13, 7, 2, 2, 3, 3, 0, 0},
      {"ceil, window past the input, 8x8 3x3/2 (last divisor 2 x 2)", 1, 2, 8, 8, 3, 3, 2, 2, 0, 0, true},
      {"ceil, window past the padding, 8x13 3x2/2 pad (1,1)", 3, 3, 8, 13, 3, 2, 2, 2, 1, 1, true},
      {"AlexNet-like 13x13 3x3/2, 16 channels", 1, 16, 13, 13, 3, 3, 2, 2, 0, 0},
  };
  return cases;
}

TEST(OneDnnPool2d, MaxMatchesReference) {
  dn::MaxPool2d pool;
  for (const PoolCase& c : pool_cases()) {
    SCOPED_TRACE(c.name);
    const ref::Pool2dGeometry g = pool_geometry(c);
    const int64_t nx = g.batch * g.channels * g.in_h * g.in_w, ny = g.batch * g.channels * g.out_h * g.out_w;
    const Vec x = random(nx, 1), dy = random(ny, 2);
    Vec want(static_cast<size_t>(ny));
    std::vector<int64_t> argmax(static_cast<size_t>(ny));
    ref::max_pool2d_forward<float>(g, x.data(), want.data(), argmax.data());
    Vec got = nans(ny);
    pool.forward(engine(), g, /*training=*/false, x.data(), got.data());
    expect_close(got, want, 0.0F, c.name + " max forward (inference)");  // a max is exact
    got = nans(ny);
    pool.forward(engine(), g, /*training=*/true, x.data(), got.data());
    expect_close(got, want, 0.0F, c.name + " max forward (training)");

    Vec dx(static_cast<size_t>(nx));
    ref::max_pool2d_backward<float>(g, argmax.data(), dy.data(), dx.data(), false);
    expect_backward(
        {dx}, [&](std::vector<Vec>& out, bool accumulate) {
          pool.backward(engine(), g, dy.data(), out[0].data(), accumulate);
        },
        kPointwiseTol, c.name + " max");
  }
}

TEST(OneDnnPool2d, AvgMatchesReferenceIncludingPadding) {
  dn::AvgPool2d pool;
  for (const PoolCase& c : pool_cases()) {
    SCOPED_TRACE(c.name);
    const ref::Pool2dGeometry g = pool_geometry(c);
    const int64_t nx = g.batch * g.channels * g.in_h * g.in_w, ny = g.batch * g.channels * g.out_h * g.out_w;
    const Vec x = random(nx, 1), dy = random(ny, 2);
    Vec want(static_cast<size_t>(ny));
    ref::avg_pool2d_forward<float>(g, x.data(), want.data());
    Vec got = nans(ny);
    pool.forward(engine(), g, x.data(), got.data());
    expect_close(got, want, kSumTol, c.name + " avg forward");

    Vec dx(static_cast<size_t>(nx));
    ref::avg_pool2d_backward<float>(g, dy.data(), dx.data(), false);
    expect_backward(
        {dx}, [&](std::vector<Vec>& out, bool accumulate) {
          pool.backward(engine(), g, dy.data(), out[0].data(), accumulate);
        },
        kSumTol, c.name + " avg");
  }
}

// ---------------------------------------------------------------------------------------------
// Local response normalisation

TEST(OneDnnLrn, MatchesReferenceAcrossChannels) {
  struct Case {
    int64_t batch, channels, positions, size;
    double alpha, beta, k;
  };
  dn::LocalResponseNorm lrn;
  // Large alpha so that the normalisation (and its alpha / size convention) really matters.
  for (const Case c : {Case{1, 1, 1, 5, 1e-4, 0.75, 2.0}, Case{3, 7, 13, 5, 0.9, 0.75, 2.0},
                       Case{1, 13, 7 * 5, 3, 1.5, 0.6, 1.0}, Case{3, 7, 1, 1, 0.5, 0.75, 1.0},
                       Case{2, 13, 9, 4, 0.9, 0.75, 1.0} /* even: runs the reference loops */,
                       Case{1, 16, 13 * 13, 5, 1e-4, 0.75, 2.0} /* AlexNet's */}) {
    const ref::LrnGeometry g{.batch = c.batch, .channels = c.channels, .positions = c.positions, .size = c.size,
                             .alpha = c.alpha, .beta = c.beta, .k = c.k};
    const std::string name = "lrn C=" + std::to_string(c.channels) + " size=" + std::to_string(c.size);
    const int64_t n = c.batch * c.channels * c.positions;
    const Vec x = random(n, 1, 2.0F), dy = random(n, 2);
    Vec want(static_cast<size_t>(n)), scale(static_cast<size_t>(n));
    ref::lrn_forward<float>(g, x.data(), want.data(), scale.data());
    Vec got = nans(n);
    lrn.forward(engine(), g, /*training=*/false, x.data(), got.data());
    expect_close(got, want, kPointwiseTol, name + " forward (inference)");
    got = nans(n);
    lrn.forward(engine(), g, /*training=*/true, x.data(), got.data());
    expect_close(got, want, kPointwiseTol, name + " forward (training)");

    Vec dx(static_cast<size_t>(n));
    ref::lrn_backward<float>(g, x.data(), scale.data(), dy.data(), dx.data(), false);
    expect_backward(
        {dx}, [&](std::vector<Vec>& out, bool accumulate) {
          lrn.backward(engine(), g, x.data(), dy.data(), out[0].data(), accumulate);
        },
        kPointwiseTol, name);
  }
}

// ---------------------------------------------------------------------------------------------
// Batch normalisation

TEST(OneDnnBatchNorm, MatchesReference) {
  struct Case {
    int64_t batch, channels, positions;
  };
  dn::BatchNorm bn;
  const float eps = 1e-5F, momentum = 0.1F;
  for (const Case c : {Case{3, 5, 7 * 13}, Case{1, 3, 13}, Case{7, 13, 1}, Case{2, 16, 7 * 7}, Case{3, 5, 7 * 13}}) {
    const ref::BatchNormGeometry g{.batch = c.batch, .channels = c.channels, .positions = c.positions};
    const std::string name = "batch norm " + std::to_string(c.batch) + "x" + std::to_string(c.channels) + "x" +
                             std::to_string(c.positions);
    const int64_t n = c.batch * c.channels * c.positions, C = c.channels;
    Vec x = random(n, 1, 3.0F);
    for (float& v : x) v += 0.5F;  // a non-zero mean
    const Vec gamma = random(C, 2), beta = random(C, 3), dy = random(n, 4);
    const Vec running_mean0 = random(C, 5), running_var0 = plus(random(C, 6), Vec(static_cast<size_t>(C), 1.5F));

    // Training forward.
    Vec want_y(static_cast<size_t>(n)), want_rm = running_mean0, want_rv = running_var0;
    Vec want_mean(static_cast<size_t>(C)), want_inv(static_cast<size_t>(C));
    ref::batch_norm_forward_training<float>(g, eps, momentum, x.data(), gamma.data(), beta.data(), want_y.data(),
                                            want_rm.data(), want_rv.data(), want_mean.data(), want_inv.data());
    Vec y = nans(n), rm = running_mean0, rv = running_var0, mean = nans(C), inv = nans(C);
    bn.forward_training(engine(), g, eps, momentum, x.data(), gamma.data(), beta.data(), y.data(), rm.data(),
                        rv.data(), mean.data(), inv.data());
    expect_close(y, want_y, kSumTol, name + " training y");
    expect_close(rm, want_rm, kSumTol, name + " running_mean");
    expect_close(rv, want_rv, kSumTol, name + " running_var");
    expect_close(mean, want_mean, kSumTol, name + " saved mean");
    expect_close(inv, want_inv, kSumTol, name + " saved inv_std");

    // In place (y == x).
    Vec inplace = x, rm2 = running_mean0, rv2 = running_var0;
    bn.forward_training(engine(), g, eps, momentum, inplace.data(), gamma.data(), beta.data(), inplace.data(),
                        rm2.data(), rv2.data(), mean.data(), inv.data());
    expect_close(inplace, want_y, kSumTol, name + " training y in place");

    // Inference forward.
    Vec want_inf(static_cast<size_t>(n));
    ref::batch_norm_forward_inference<float>(g, eps, x.data(), gamma.data(), beta.data(), running_mean0.data(),
                                             running_var0.data(), want_inf.data());
    Vec inf = nans(n);
    bn.forward_inference(engine(), g, eps, x.data(), gamma.data(), beta.data(), running_mean0.data(),
                         running_var0.data(), inf.data());
    expect_close(inf, want_inf, kPointwiseTol, name + " inference y");

    // Backward from the reference's saved statistics (either backend's forward may precede it).
    Vec dx(static_cast<size_t>(n)), dgamma(static_cast<size_t>(C)), dbeta(static_cast<size_t>(C));
    ref::batch_norm_backward<float>(g, x.data(), gamma.data(), want_mean.data(), want_inv.data(), dy.data(),
                                    dx.data(), dgamma.data(), dbeta.data(), false);
    expect_backward(
        {dx, dgamma, dbeta},
        [&](std::vector<Vec>& out, bool accumulate) {
          bn.backward(engine(), g, eps, x.data(), gamma.data(), want_mean.data(), want_inv.data(), dy.data(),
                      out[0].data(), out[1].data(), out[2].data(), accumulate);
        },
        kSumTol, name);
    // Only some gradients wanted.
    expect_backward(
        {dgamma}, [&](std::vector<Vec>& out, bool accumulate) {
          bn.backward(engine(), g, eps, x.data(), gamma.data(), want_mean.data(), want_inv.data(), dy.data(),
                      nullptr, out[0].data(), nullptr, accumulate);
        },
        kSumTol, name + " dgamma only");
  }
}

// ---------------------------------------------------------------------------------------------
// Pointwise activations

TEST(OneDnnEltwise, MatchesReference) {
  struct Kind {
    dn::EltwiseKind kind;
    float alpha;
    const char* name;
  };
  dn::Eltwise eltwise;
  for (const Kind k : {Kind{dn::EltwiseKind::Relu, 0.0F, "relu"}, Kind{dn::EltwiseKind::LeakyRelu, 0.1F, "leaky"},
                       Kind{dn::EltwiseKind::Elu, 1.0F, "elu"}, Kind{dn::EltwiseKind::Elu, 0.5F, "elu 0.5"},
                       Kind{dn::EltwiseKind::Sigmoid, 0.0F, "sigmoid"}, Kind{dn::EltwiseKind::Tanh, 0.0F, "tanh"}}) {
    for (const int64_t n : {int64_t{1}, int64_t{7}, int64_t{3 * 13 * 7 * 7}}) {
      const std::string name = std::string(k.name) + " n=" + std::to_string(n);
      Vec x = random(n, 1, 6.0F);
      if (n > 2) x[1] = 0.0F;  // the kink
      const Vec dy = random(n, 2);
      Vec want(static_cast<size_t>(n)), dx(static_cast<size_t>(n));
      switch (k.kind) {
        case dn::EltwiseKind::Relu:
          ref::relu_forward<float>(n, x.data(), want.data());
          ref::relu_backward<float>(n, want.data(), dy.data(), dx.data(), false);
          break;
        case dn::EltwiseKind::LeakyRelu:
          ref::leaky_relu_forward<float>(n, k.alpha, x.data(), want.data());
          ref::leaky_relu_backward<float>(n, k.alpha, want.data(), dy.data(), dx.data(), false);
          break;
        case dn::EltwiseKind::Elu:
          ref::elu_forward<float>(n, k.alpha, x.data(), want.data());
          ref::elu_backward<float>(n, k.alpha, want.data(), dy.data(), dx.data(), false);
          break;
        case dn::EltwiseKind::Sigmoid:
          ref::sigmoid_forward<float>(n, x.data(), want.data());
          ref::sigmoid_backward<float>(n, want.data(), dy.data(), dx.data(), false);
          break;
        case dn::EltwiseKind::Tanh:
          ref::tanh_forward<float>(n, x.data(), want.data());
          ref::tanh_backward<float>(n, want.data(), dy.data(), dx.data(), false);
          break;
      }
      Vec y = nans(n);
      eltwise.forward(engine(), k.kind, k.alpha, n, x.data(), y.data());
      expect_close(y, want, kPointwiseTol, name + " forward");
      Vec inplace = x;
      eltwise.forward(engine(), k.kind, k.alpha, n, inplace.data(), inplace.data());
      expect_close(inplace, want, kPointwiseTol, name + " forward in place");

      // Backward from the reference output, so only the backward formula is under test.
      expect_backward(
          {dx}, [&](std::vector<Vec>& out, bool accumulate) {
            eltwise.backward(engine(), k.kind, k.alpha, n, want.data(), dy.data(), out[0].data(), accumulate);
          },
          kPointwiseTol, name);
      Vec alias = dy;  // dx may alias dy when overwriting
      eltwise.backward(engine(), k.kind, k.alpha, n, want.data(), alias.data(), alias.data(), false);
      expect_close(alias, dx, kPointwiseTol, name + " backward in place");
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Softmax

TEST(OneDnnSoftmax, MatchesReferenceOverChannels) {
  struct Case {
    int64_t batch, channels, positions;
    float scale;
  };
  dn::Softmax softmax;
  for (const Case c : {Case{1, 1, 1, 1.0F}, Case{3, 7, 1, 1.0F}, Case{3, 13, 7 * 5, 3.0F}, Case{1, 10, 1, 60.0F},
                       Case{2, 1000, 1, 10.0F}, Case{3, 7, 1, 1.0F}}) {
    const ref::SoftmaxGeometry g{.batch = c.batch, .channels = c.channels, .positions = c.positions};
    const std::string name = "softmax " + std::to_string(c.batch) + "x" + std::to_string(c.channels) + "x" +
                             std::to_string(c.positions);
    const int64_t n = c.batch * c.channels * c.positions;
    const Vec x = random(n, 1, c.scale), dy = random(n, 2);
    Vec want(static_cast<size_t>(n)), dx(static_cast<size_t>(n));
    ref::softmax_forward<float>(g, x.data(), want.data());
    ref::softmax_backward<float>(g, want.data(), dy.data(), dx.data(), false);
    Vec y = nans(n);
    softmax.forward(engine(), g, x.data(), y.data());
    expect_close(y, want, kPointwiseTol, name + " forward");
    Vec inplace = x;
    softmax.forward(engine(), g, inplace.data(), inplace.data());
    expect_close(inplace, want, kPointwiseTol, name + " forward in place");
    expect_backward(
        {dx}, [&](std::vector<Vec>& out, bool accumulate) {
          softmax.backward(engine(), g, want.data(), dy.data(), out[0].data(), accumulate);
        },
        kPointwiseTol, name);
  }
}

}  // namespace
