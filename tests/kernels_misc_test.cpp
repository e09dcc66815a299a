// Reference kernels for pooling, activations, softmax, maxout, merges and dropout: a hand-computed
// forward on a tiny input each, and finite-difference gradient checks in double on awkward shapes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "convnet/kernels/reference/activation.hpp"
#include "convnet/kernels/reference/dropout.hpp"
#include "convnet/kernels/reference/elementwise.hpp"
#include "convnet/kernels/reference/maxout.hpp"
#include "convnet/kernels/reference/pool2d.hpp"
#include "convnet/kernels/reference/softmax.hpp"
#include "support/gradcheck.hpp"

namespace convnet {
namespace {

namespace ref = kernels::reference;
using testing::Buffers;
using testing::expect_gradients_match;
using Vec = std::vector<double>;

// n distinct values in (-1, 1), spaced 2/n apart and at least 0.5/n from 0, shuffled: no ties and
// no kinks within the finite-difference step, for max, maxout and ReLU.
Vec distinct_values(size_t n, unsigned seed) {
  Vec v(n);
  const double half = static_cast<double>(n) / 2;
  for (size_t i = 0; i < n; ++i) v[i] = (static_cast<double>(i) + 0.25 - half) / half;
  std::shuffle(v.begin(), v.end(), std::mt19937(seed));
  return v;
}

// ---------------------------------------------------------------------------------------------
// Pooling

enum class Rounding { Floor, Ceil };

// Output size by the layer's rule (window.hpp): (W - F + 2P)/S + 1 rounded down, or up with
// PyTorch's proviso that the last window must start inside the input or its left padding.
int64_t pool_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, Rounding rounding) {
  const int64_t span = in - kernel + 2 * pad;
  int64_t out = span / stride + 1;
  if (rounding == Rounding::Ceil && span % stride != 0) {
    out += 1;
    if ((out - 1) * stride >= in + pad) out -= 1;
  }
  return out;
}

ref::Pool2dGeometry pool_geometry(int64_t batch, int64_t channels, int64_t in_h, int64_t in_w, int64_t kernel_h,
                                  int64_t kernel_w, int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w,
                                  Rounding rounding) {
  return {.batch = batch,
          .channels = channels,
          .in_h = in_h,
          .in_w = in_w,
          .out_h = pool_output_size(in_h, kernel_h, stride_h, pad_h, rounding),
          .out_w = pool_output_size(in_w, kernel_w, stride_w, pad_w, rounding),
          .kernel_h = kernel_h,
          .kernel_w = kernel_w,
          .stride_h = stride_h,
          .stride_w = stride_w,
          .pad_h = pad_h,
          .pad_w = pad_w};
}

int64_t in_size(const ref::Pool2dGeometry& g) { return g.batch * g.channels * g.in_h * g.in_w; }
int64_t out_size(const ref::Pool2dGeometry& g) { return g.batch * g.channels * g.out_h * g.out_w; }

TEST(MiscKernelPool, MaxPoolByHand) {
  // 4x4, 2x2 windows at stride 2: each output is its quadrant's max.
  const Vec x = {1, 5, 2, 0,   //
                 3, 4, 7, 6,   //
                 9, 8, 0, 1,   //
                 2, 3, 4, -1};
  const auto g = pool_geometry(1, 1, 4, 4, 2, 2, 2, 2, 0, 0, Rounding::Floor);
  Vec y(4);
  std::vector<int64_t> argmax(4);
  ref::max_pool2d_forward(g, x.data(), y.data(), argmax.data());
  EXPECT_EQ(y, (Vec{5, 7, 9, 4}));  // max(1,5,3,4), max(2,0,7,6), max(9,8,2,3), max(0,1,4,-1)
  EXPECT_EQ(argmax, (std::vector<int64_t>{1, 6, 8, 14}));
}

TEST(MiscKernelPool, MaxPoolCeilWindowStickingOutAndPadding) {
  // Width 4, kernel 3, stride 2, pad 1, ceil: (4 - 3 + 2)/2 + 1 = 2.5 -> 3 windows, covering
  // input cells {0,1}, {1,2,3}, {3} (the last one sticks out past the padding).
  const Vec x = {1, 4, 2, 3};
  const auto g = pool_geometry(1, 1, 1, 4, 1, 3, 1, 2, 0, 1, Rounding::Ceil);
  ASSERT_EQ(g.out_w, 3);
  Vec y(3);
  std::vector<int64_t> argmax(3);
  ref::max_pool2d_forward(g, x.data(), y.data(), argmax.data());
  EXPECT_EQ(y, (Vec{4, 4, 3}));
  EXPECT_EQ(argmax, (std::vector<int64_t>{1, 1, 3}));
  // Backward routes dy = (1, 2, 3) to the argmaxes: cell 1 gets 1 + 2, cell 3 gets 3.
  const Vec dy = {1, 2, 3};
  Vec dx(4, -7);
  ref::max_pool2d_backward(g, argmax.data(), dy.data(), dx.data(), false);
  EXPECT_EQ(dx, (Vec{0, 3, 0, 3}));
}

TEST(MiscKernelPool, AvgPoolCountsPaddingInTheDivisor) {
  // 3x3 input 1..9, 2x2 windows, stride 2, pad 1: every window covers 4 cells, some of them padding.
  const Vec x = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  const auto g = pool_geometry(1, 1, 3, 3, 2, 2, 2, 2, 1, 1, Rounding::Floor);
  Vec y(4);
  ref::avg_pool2d_forward(g, x.data(), y.data());
  // 1/4, (2+3)/4, (4+7)/4, (5+6+8+9)/4
  EXPECT_EQ(y, (Vec{0.25, 1.25, 2.75, 7.0}));
}

TEST(MiscKernelPool, AvgPoolClipsCeilWindowsAtThePaddedBorder) {
  // Width 4, kernel 3, stride 2, pad 1, ceil (as PyTorch's avg_pool1d(x, 3, 2, 1, ceil_mode=True)):
  // windows [-1, 2) -> (0 + 1 + 2)/3 = 1, [1, 4) -> (2 + 3 + 4)/3 = 3, [3, 6) clipped to [3, 5)
  // (input + padding), so its divisor is 2: (4 + 0)/2 = 2.
  const Vec x = {1, 2, 3, 4};
  const auto g = pool_geometry(1, 1, 1, 4, 1, 3, 1, 2, 0, 1, Rounding::Ceil);
  Vec y(3);
  ref::avg_pool2d_forward(g, x.data(), y.data());
  EXPECT_EQ(y, (Vec{1, 3, 2}));
  // Without padding: width 5, kernel 2, stride 2, ceil -> windows {0,1}, {2,3}, {4}: divisor 1 last.
  const Vec x5 = {1, 2, 3, 4, 5};
  const auto g5 = pool_geometry(1, 1, 1, 5, 1, 2, 1, 2, 0, 0, Rounding::Ceil);
  Vec y5(3);
  ref::avg_pool2d_forward(g5, x5.data(), y5.data());
  EXPECT_EQ(y5, (Vec{1.5, 3.5, 5}));
  // Backward of the padded case: dy = (3, 6, 4) -> cells get 3/3, 3/3 + 6/3, 6/3, 6/3 + 4/2.
  const Vec dy = {3, 6, 4};
  Vec dx(4, 100);
  ref::avg_pool2d_backward(g, dy.data(), dx.data(), false);
  EXPECT_EQ(dx, (Vec{1, 3, 2, 4}));
}

TEST(MiscKernelPool, GlobalAvgPoolByHand) {
  // (1, 2, 2, 2): channel means (1+2+3+6)/4 = 3 and (0-4+0+0)/4 = -1.
  const Vec x = {1, 2, 3, 6, 0, -4, 0, 0};
  Vec y(2);
  ref::global_avg_pool2d_forward(ref::GlobalPoolGeometry{1, 2, 2, 2}, x.data(), y.data());
  EXPECT_EQ(y, (Vec{3, -1}));
}

void check_max_pool_gradients(const ref::Pool2dGeometry& g) {
  auto forward = [&](const Buffers& v) {
    Vec y(static_cast<size_t>(out_size(g)));
    std::vector<int64_t> argmax(y.size());
    ref::max_pool2d_forward(g, v[0].data(), y.data(), argmax.data());
    return y;
  };
  auto backward = [&](const Buffers& v, const Vec& dy, Buffers& grads, bool accumulate) {
    Vec y(static_cast<size_t>(out_size(g)));
    std::vector<int64_t> argmax(y.size());
    ref::max_pool2d_forward(g, v[0].data(), y.data(), argmax.data());
    ref::max_pool2d_backward(g, argmax.data(), dy.data(), grads[0].data(), accumulate);
  };
  expect_gradients_match(forward, backward, {distinct_values(static_cast<size_t>(in_size(g)), 3)});
}

void check_avg_pool_gradients(const ref::Pool2dGeometry& g) {
  auto forward = [&](const Buffers& v) {
    Vec y(static_cast<size_t>(out_size(g)));
    ref::avg_pool2d_forward(g, v[0].data(), y.data());
    return y;
  };
  auto backward = [&](const Buffers&, const Vec& dy, Buffers& grads, bool accumulate) {
    ref::avg_pool2d_backward(g, dy.data(), grads[0].data(), accumulate);
  };
  expect_gradients_match(forward, backward, {testing::random_values(static_cast<size_t>(in_size(g)), 4)});
}

TEST(MiscKernelPool, GradientsOnAwkwardShapes) {
  const std::vector<ref::Pool2dGeometry> shapes = {
      // batch 2, non-square 8x13, kernel 3x2, stride 2x3 (> kernel in w), pad 1x0, ceil: the last
      // window sticks out in both directions.
      pool_geometry(2, 3, 8, 13, 3, 2, 2, 3, 1, 0, Rounding::Ceil),
      pool_geometry(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, Rounding::Floor),       // 1x1
      pool_geometry(1, 2, 1, 13, 1, 3, 1, 2, 0, 1, Rounding::Floor),      // 1x13, padding in w only
      pool_geometry(2, 1, 7, 7, 3, 3, 2, 2, 1, 1, Rounding::Floor),       // overlapping, padded
      pool_geometry(1, 2, 5, 7, 2, 2, 3, 3, 0, 0, Rounding::Floor),       // stride > kernel, skipped cells
  };
  for (const auto& g : shapes) {
    SCOPED_TRACE(::testing::Message() << g.in_h << "x" << g.in_w << " -> " << g.out_h << "x" << g.out_w);
    check_max_pool_gradients(g);
    check_avg_pool_gradients(g);
  }
}

TEST(MiscKernelPool, GlobalAvgPoolGradients) {
  for (const ref::GlobalPoolGeometry g : {ref::GlobalPoolGeometry{2, 3, 7, 1}, ref::GlobalPoolGeometry{1, 1, 1, 1},
                                          ref::GlobalPoolGeometry{1, 2, 3, 5}}) {
    const auto n = static_cast<size_t>(g.batch * g.channels * g.height * g.width);
    auto forward = [&](const Buffers& v) {
      Vec y(static_cast<size_t>(g.batch * g.channels));
      ref::global_avg_pool2d_forward(g, v[0].data(), y.data());
      return y;
    };
    auto backward = [&](const Buffers&, const Vec& dy, Buffers& grads, bool accumulate) {
      ref::global_avg_pool2d_backward(g, dy.data(), grads[0].data(), accumulate);
    };
    expect_gradients_match(forward, backward, {testing::random_values(n, 5)});
  }
}

// ---------------------------------------------------------------------------------------------
// Activations

TEST(MiscKernelActivation, ForwardByHand) {
  const Vec x = {-2, -0.5, 0, 1.5};
  Vec y(4);
  ref::relu_forward(4, x.data(), y.data());
  EXPECT_EQ(y, (Vec{0, 0, 0, 1.5}));
  ref::leaky_relu_forward(4, 0.1, x.data(), y.data());
  EXPECT_EQ(y, (Vec{-0.2, -0.05, 0, 1.5}));  // 0.1 * -2, 0.1 * -0.5
  ref::elu_forward(4, 2.0, x.data(), y.data());
  EXPECT_DOUBLE_EQ(y[0], 2.0 * (std::exp(-2.0) - 1));  // -1.7293...
  EXPECT_DOUBLE_EQ(y[1], 2.0 * (std::exp(-0.5) - 1));
  EXPECT_EQ(y[2], 0);
  EXPECT_EQ(y[3], 1.5);
  const Vec z = {0, std::log(3.0), -std::log(3.0), -800};
  ref::sigmoid_forward(4, z.data(), y.data());
  EXPECT_DOUBLE_EQ(y[0], 0.5);
  EXPECT_DOUBLE_EQ(y[1], 0.75);  // 1 / (1 + 1/3)
  EXPECT_DOUBLE_EQ(y[2], 0.25);  // 1 / (1 + 3)
  EXPECT_EQ(y[3], 0);            // no overflow warning, no NaN
  ref::tanh_forward(4, z.data(), y.data());
  EXPECT_DOUBLE_EQ(y[1], 0.8);  // (3 - 1/3) / (3 + 1/3)
  EXPECT_EQ(y[3], -1);
}

TEST(MiscKernelActivation, BackwardByHandAndInPlace) {
  // sigmoid at 0: y = 1/2, dy/dx = 1/4; tanh at 0: 1; ELU (alpha 2) at -2: 2 e^-2 = y + alpha.
  Vec x = {0.0};
  Vec y(1), dx(1);
  const Vec dy = {2};
  ref::sigmoid_forward(1, x.data(), y.data());
  ref::sigmoid_backward(1, y.data(), dy.data(), dx.data(), false);
  EXPECT_DOUBLE_EQ(dx[0], 0.5);
  ref::tanh_forward(1, x.data(), y.data());
  ref::tanh_backward(1, y.data(), dy.data(), dx.data(), false);
  EXPECT_DOUBLE_EQ(dx[0], 2.0);
  // In place: forward with y == x, then backward from the overwritten buffer.
  Vec v = {-2, 3};
  ref::elu_forward(2, 2.0, v.data(), v.data());
  Vec g = {1, 1};
  ref::elu_backward(2, 2.0, v.data(), g.data(), g.data(), false);  // dx aliasing dy
  EXPECT_DOUBLE_EQ(g[0], 2 * std::exp(-2.0));
  EXPECT_EQ(g[1], 1);
}

enum class Act { Relu, Leaky, Elu, Sigmoid, Tanh };

void activation_forward(Act a, const Vec& x, Vec& y) {
  const auto n = static_cast<int64_t>(x.size());
  switch (a) {
    case Act::Relu: ref::relu_forward(n, x.data(), y.data()); break;
    case Act::Leaky: ref::leaky_relu_forward(n, 0.2, x.data(), y.data()); break;
    case Act::Elu: ref::elu_forward(n, 1.5, x.data(), y.data()); break;
    case Act::Sigmoid: ref::sigmoid_forward(n, x.data(), y.data()); break;
    case Act::Tanh: ref::tanh_forward(n, x.data(), y.data()); break;
  }
}

void activation_backward(Act a, const Vec& y, const Vec& dy, Vec& dx, bool accumulate) {
  const auto n = static_cast<int64_t>(y.size());
  switch (a) {
    case Act::Relu: ref::relu_backward(n, y.data(), dy.data(), dx.data(), accumulate); break;
    case Act::Leaky: ref::leaky_relu_backward(n, 0.2, y.data(), dy.data(), dx.data(), accumulate); break;
    case Act::Elu: ref::elu_backward(n, 1.5, y.data(), dy.data(), dx.data(), accumulate); break;
    case Act::Sigmoid: ref::sigmoid_backward(n, y.data(), dy.data(), dx.data(), accumulate); break;
    case Act::Tanh: ref::tanh_backward(n, y.data(), dy.data(), dx.data(), accumulate); break;
  }
}

TEST(MiscKernelActivation, Gradients) {
  for (Act a : {Act::Relu, Act::Leaky, Act::Elu, Act::Sigmoid, Act::Tanh}) {
    SCOPED_TRACE(static_cast<int>(a));
    Vec x = distinct_values(13, 11);
    for (double& v : x) v *= 3;  // (-3, 3), at least 1.5/13 from the kink at 0
    auto forward = [&](const Buffers& v) {
      Vec y(v[0].size());
      activation_forward(a, v[0], y);
      return y;
    };
    auto backward = [&](const Buffers& v, const Vec& dy, Buffers& grads, bool accumulate) {
      Vec y = v[0];
      activation_forward(a, y, y);  // in place, as the layer runs it
      activation_backward(a, y, dy, grads[0], accumulate);
    };
    expect_gradients_match(forward, backward, {x});
  }
}

// ---------------------------------------------------------------------------------------------
// Softmax and cross-entropy

TEST(MiscKernelSoftmax, ForwardByHand) {
  // exp(0), exp(ln 2), exp(ln 5) = 1, 2, 5, sum 8.
  const Vec x = {0, std::log(2.0), std::log(5.0)};
  Vec y(3);
  ref::softmax_forward(ref::SoftmaxGeometry{1, 3, 1}, x.data(), y.data());
  EXPECT_NEAR(y[0], 1.0 / 8, 1e-15);
  EXPECT_NEAR(y[1], 2.0 / 8, 1e-15);
  EXPECT_NEAR(y[2], 5.0 / 8, 1e-15);
  // Volume (1, 2, 1, 2): over the channels at each position. Position 0: (0, 0) -> 1/2, 1/2;
  // position 1: (ln 3, 0) -> 3/4, 1/4.
  const Vec v = {0, std::log(3.0), 0, 0};
  Vec w(4);
  ref::softmax_forward(ref::SoftmaxGeometry{1, 2, 2}, v.data(), w.data());
  EXPECT_NEAR(w[0], 0.5, 1e-15);
  EXPECT_NEAR(w[1], 0.75, 1e-15);
  EXPECT_NEAR(w[2], 0.5, 1e-15);
  EXPECT_NEAR(w[3], 0.25, 1e-15);
  // Stable for large logits in float.
  std::vector<float> big = {1000.f, 1000.f};
  ref::softmax_forward(ref::SoftmaxGeometry{1, 2, 1}, big.data(), big.data());
  EXPECT_EQ(big, (std::vector<float>{0.5f, 0.5f}));
}

TEST(MiscKernelSoftmax, CrossEntropyByHand) {
  // Row 0: p = (1, 2, 5)/8, label 2, loss -ln(5/8). Row 1: logits equal, label 1, loss ln 3.
  const Vec logits = {0, std::log(2.0), std::log(5.0), 0, 0, 0};
  const std::vector<int64_t> labels = {2, 1};
  Vec p(6);
  const double loss = ref::softmax_cross_entropy_forward(2, 3, logits.data(), labels.data(), p.data());
  EXPECT_NEAR(loss, (std::log(8.0 / 5) + std::log(3.0)) / 2, 1e-15);
  Vec grad(6);
  ref::softmax_cross_entropy_backward(2, 3, p.data(), labels.data(), 1.0, grad.data(), false);
  // (p - onehot)/2: (1/8, 2/8, 5/8 - 1)/2 and (1/3, 1/3 - 1, 1/3)/2.
  const Vec expected = {1.0 / 16, 1.0 / 8, -3.0 / 16, 1.0 / 6, -1.0 / 3, 1.0 / 6};
  for (size_t i = 0; i < 6; ++i) EXPECT_NEAR(grad[i], expected[i], 1e-15) << i;
}

TEST(MiscKernelSoftmax, Gradients) {
  for (const ref::SoftmaxGeometry g : {ref::SoftmaxGeometry{2, 5, 3}, ref::SoftmaxGeometry{3, 7, 1},
                                       ref::SoftmaxGeometry{1, 1, 2}}) {
    const auto n = static_cast<size_t>(g.batch * g.channels * g.positions);
    auto forward = [&](const Buffers& v) {
      Vec y(n);
      ref::softmax_forward(g, v[0].data(), y.data());
      return y;
    };
    auto backward = [&](const Buffers& v, const Vec& dy, Buffers& grads, bool accumulate) {
      Vec y(n);
      ref::softmax_forward(g, v[0].data(), y.data());
      ref::softmax_backward(g, y.data(), dy.data(), grads[0].data(), accumulate);
    };
    expect_gradients_match(forward, backward, {testing::random_values(n, 6, -3, 3)});
  }
}

TEST(MiscKernelSoftmax, CrossEntropyGradients) {
  const int64_t batch = 3;
  const int64_t features = 7;
  const std::vector<int64_t> labels = {6, 0, 3};
  auto forward = [&](const Buffers& v) {
    Vec p(v[0].size());
    return Vec{ref::softmax_cross_entropy_forward(batch, features, v[0].data(), labels.data(), p.data())};
  };
  auto backward = [&](const Buffers& v, const Vec& dloss, Buffers& grads, bool accumulate) {
    Vec p(v[0].size());
    (void)ref::softmax_cross_entropy_forward(batch, features, v[0].data(), labels.data(), p.data());
    ref::softmax_cross_entropy_backward(batch, features, p.data(), labels.data(), dloss[0], grads[0].data(),
                                        accumulate);
  };
  expect_gradients_match(forward, backward, {testing::random_values(batch * features, 8, -2, 2)});
}

// ---------------------------------------------------------------------------------------------
// Maxout

TEST(MiscKernelMaxout, ForwardByHand) {
  // (1, 4, 1, 2), K = 2: channels {0, 1} and {2, 3} at each of 2 positions.
  const Vec x = {1, 5,     // c0
                 3, 2,     // c1
                 -1, -4,   // c2
                 -2, -3};  // c3
  Vec y(4);
  std::vector<int64_t> argmax(4);
  ref::maxout_forward(ref::MaxoutGeometry{1, 4, 2, 2}, x.data(), y.data(), argmax.data());
  EXPECT_EQ(y, (Vec{3, 5, -1, -3}));  // max(1,3), max(5,2), max(-1,-2), max(-4,-3)
  EXPECT_EQ(argmax, (std::vector<int64_t>{2, 1, 4, 7}));
}

TEST(MiscKernelMaxout, Gradients) {
  for (const ref::MaxoutGeometry g : {ref::MaxoutGeometry{2, 6, 3, 5}, ref::MaxoutGeometry{3, 4, 2, 1},
                                      ref::MaxoutGeometry{1, 7, 7, 1}}) {
    const auto out = static_cast<size_t>(g.batch * (g.channels / g.pieces) * g.positions);
    auto forward = [&](const Buffers& v) {
      Vec y(out);
      std::vector<int64_t> argmax(out);
      ref::maxout_forward(g, v[0].data(), y.data(), argmax.data());
      return y;
    };
    auto backward = [&](const Buffers& v, const Vec& dy, Buffers& grads, bool accumulate) {
      Vec y(out);
      std::vector<int64_t> argmax(out);
      ref::maxout_forward(g, v[0].data(), y.data(), argmax.data());
      ref::maxout_backward(g, argmax.data(), dy.data(), grads[0].data(), accumulate);
    };
    expect_gradients_match(forward, backward,
                           {distinct_values(static_cast<size_t>(g.batch * g.channels * g.positions), 9)});
  }
}

// ---------------------------------------------------------------------------------------------
// Add, mul, concat

TEST(MiscKernelElementwise, NotesExampleAddThenMul) {
  // f = (x + y) * z at x = -2, y = 5, z = -4: q = x + y = 3, f = q * z = -12.
  const Vec x = {-2}, y = {5}, z = {-4};
  Vec q(1), f(1);
  ref::add_forward<double>(1, {{x.data(), y.data()}}, q.data());
  ref::mul_forward<double>(1, {{q.data(), z.data()}}, f.data());
  EXPECT_EQ(q[0], 3);
  EXPECT_EQ(f[0], -12);
  // df/df = 1; df/dq = z = -4, df/dz = q = 3; df/dx = df/dy = df/dq * 1 = -4.
  const Vec df = {1};
  Vec dq(1), dz(1), dx(1), dy(1);
  ref::mul_backward<double>(1, {{q.data(), z.data()}}, df.data(), {{dq.data(), dz.data()}}, false);
  ref::add_backward<double>(1, dq.data(), {{dx.data(), dy.data()}}, false);
  EXPECT_EQ(dx[0], -4);
  EXPECT_EQ(dy[0], -4);
  EXPECT_EQ(dz[0], 3);
}

TEST(MiscKernelElementwise, ConcatByHand) {
  // (N=2, C=1, P=2) and (N=2, C=2, P=2) -> (2, 3, 2): per sample, a's channel then b's two.
  const Vec a = {1, 2, /**/ 3, 4};
  const Vec b = {10, 11, 12, 13, /**/ 14, 15, 16, 17};
  const std::vector<int64_t> channels = {1, 2};
  const ref::ConcatGeometry g{.batch = 2, .positions = 2, .channels = channels};
  Vec y(12);
  ref::concat_forward<double>(g, {{a.data(), b.data()}}, y.data());
  EXPECT_EQ(y, (Vec{1, 2, 10, 11, 12, 13, 3, 4, 14, 15, 16, 17}));
  // Backward slices; a null pointer skips that input.
  Vec db(8);
  ref::concat_backward<double>(g, y.data(), {{nullptr, db.data()}}, false);
  EXPECT_EQ(db, b);
}

TEST(MiscKernelElementwise, AddAndMulGradients) {
  const size_t n = 7;
  for (size_t count : {2u, 3u}) {
    SCOPED_TRACE(count);
    Buffers values;
    for (size_t k = 0; k < count; ++k) values.push_back(testing::random_values(n, 20 + static_cast<unsigned>(k)));
    auto pointers = [](const Buffers& v) {
      std::vector<const double*> p;
      for (const Vec& b : v) p.push_back(b.data());
      return p;
    };
    auto grad_pointers = [](Buffers& v) {
      std::vector<double*> p;
      for (Vec& b : v) p.push_back(b.data());
      return p;
    };
    auto add_fwd = [&](const Buffers& v) {
      Vec y(n);
      ref::add_forward<double>(n, pointers(v), y.data());
      return y;
    };
    auto add_bwd = [&](const Buffers&, const Vec& dy, Buffers& grads, bool accumulate) {
      ref::add_backward<double>(n, dy.data(), grad_pointers(grads), accumulate);
    };
    expect_gradients_match(add_fwd, add_bwd, values);
    auto mul_fwd = [&](const Buffers& v) {
      Vec y(n);
      ref::mul_forward<double>(n, pointers(v), y.data());
      return y;
    };
    auto mul_bwd = [&](const Buffers& v, const Vec& dy, Buffers& grads, bool accumulate) {
      ref::mul_backward<double>(n, pointers(v), dy.data(), grad_pointers(grads), accumulate);
    };
    expect_gradients_match(mul_fwd, mul_bwd, values);
  }
}

TEST(MiscKernelElementwise, ConcatGradients) {
  struct Case {
    int64_t batch;
    int64_t positions;
    std::vector<int64_t> channels;
  };
  for (const Case& c : {Case{2, 5, {1, 3, 2}}, Case{3, 1, {4, 1}}, Case{1, 13, {2, 2}}}) {
    const ref::ConcatGeometry g{.batch = c.batch, .positions = c.positions, .channels = c.channels};
    int64_t total = 0;
    Buffers values;
    for (int64_t ch : c.channels) {
      total += ch;
      values.push_back(testing::random_values(static_cast<size_t>(c.batch * ch * c.positions), 30));
    }
    auto forward = [&](const Buffers& v) {
      Vec y(static_cast<size_t>(c.batch * total * c.positions));
      std::vector<const double*> p;
      for (const Vec& b : v) p.push_back(b.data());
      ref::concat_forward<double>(g, p, y.data());
      return y;
    };
    auto backward = [&](const Buffers&, const Vec& dy, Buffers& grads, bool accumulate) {
      std::vector<double*> p;
      for (Vec& b : grads) p.push_back(b.data());
      ref::concat_backward<double>(g, dy.data(), p, accumulate);
    };
    expect_gradients_match(forward, backward, values);
  }
}

// ---------------------------------------------------------------------------------------------
// Dropout and drop path

TEST(MiscKernelDropout, ApplyByHand) {
  // p = 0.5: kept values are doubled, dropped ones zeroed; backward uses the same mask and scale.
  const Vec x = {1, 2, 3, 4};
  const std::vector<uint8_t> mask = {1, 0, 1, 0};
  Vec y(4);
  ref::dropout_apply(4, 0.5, mask.data(), x.data(), y.data());
  EXPECT_EQ(y, (Vec{2, 0, 6, 0}));
  Vec dx(4);
  ref::dropout_backward(4, 0.5, mask.data(), x.data(), dx.data(), false);
  EXPECT_EQ(dx, (Vec{2, 0, 6, 0}));
  // Drop path over (3, 2) with the middle sample dropped, p = 0.75: kept samples times 4.
  const Vec s = {1, 2, 3, 4, 5, 6};
  const std::vector<uint8_t> sample_mask = {1, 0, 1};
  Vec t(6);
  ref::drop_path_apply(ref::DropPathGeometry{3, 2}, 0.75, sample_mask.data(), s.data(), t.data());
  EXPECT_EQ(t, (Vec{4, 8, 0, 0, 20, 24}));
}

TEST(MiscKernelDropout, ForwardIsSeededAndKeepsAboutOneMinusP) {
  const int64_t n = 4000;
  const std::vector<float> x(n, 1.0f);
  std::vector<float> y1(n), y2(n);
  std::vector<uint8_t> m1(n), m2(n);
  std::mt19937 rng1(42), rng2(42);
  ref::dropout_forward(n, 0.3f, x.data(), y1.data(), m1.data(), rng1);
  ref::dropout_forward(n, 0.3f, x.data(), y2.data(), m2.data(), rng2);
  EXPECT_EQ(m1, m2);
  EXPECT_EQ(y1, y2);
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    kept += m1[i];
    EXPECT_FLOAT_EQ(y1[i], m1[i] ? 1.0f / 0.7f : 0.0f);
  }
  EXPECT_NEAR(static_cast<double>(kept) / n, 0.7, 0.03);  // ~4.6 standard deviations
  // p = 0 keeps everything unscaled.
  ref::dropout_forward(n, 0.0f, x.data(), y1.data(), m1.data(), rng1);
  EXPECT_EQ(y1, x);
  // Drop path draws one mask entry per sample.
  std::vector<uint8_t> sample_mask(1000);
  std::vector<float> xs(1000 * 3, 1.0f), ys(1000 * 3);
  ref::drop_path_forward(ref::DropPathGeometry{1000, 3}, 0.5f, xs.data(), ys.data(), sample_mask.data(), rng1);
  int64_t kept_samples = 0;
  for (int64_t i = 0; i < 1000; ++i) {
    kept_samples += sample_mask[i];
    for (int64_t j = 0; j < 3; ++j) EXPECT_EQ(ys[i * 3 + j], sample_mask[i] ? 2.0f : 0.0f);
  }
  EXPECT_NEAR(static_cast<double>(kept_samples) / 1000, 0.5, 0.08);
}

TEST(MiscKernelDropout, GradientsWithAFixedMask) {
  const std::vector<uint8_t> mask = {1, 0, 0, 1, 1, 1, 0, 1, 0, 1, 1, 0, 1};
  auto forward = [&](const Buffers& v) {
    Vec y(13);
    ref::dropout_apply(13, 0.3, mask.data(), v[0].data(), y.data());
    return y;
  };
  auto backward = [&](const Buffers&, const Vec& dy, Buffers& grads, bool accumulate) {
    ref::dropout_backward(13, 0.3, mask.data(), dy.data(), grads[0].data(), accumulate);
  };
  expect_gradients_match(forward, backward, {testing::random_values(13, 40)});

  const ref::DropPathGeometry g{3, 7};
  const std::vector<uint8_t> sample_mask = {0, 1, 1};
  auto path_forward = [&](const Buffers& v) {
    Vec y(21);
    ref::drop_path_apply(g, 0.2, sample_mask.data(), v[0].data(), y.data());
    return y;
  };
  auto path_backward = [&](const Buffers&, const Vec& dy, Buffers& grads, bool accumulate) {
    ref::drop_path_backward(g, 0.2, sample_mask.data(), dy.data(), grads[0].data(), accumulate);
  };
  expect_gradients_match(path_forward, path_backward, {testing::random_values(21, 41)});
}

}  // namespace
}  // namespace convnet
