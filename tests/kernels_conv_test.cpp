// Reference conv2d, locally connected, tiled conv and linear kernels: hand-computed forwards on tiny
// inputs, finite-difference gradient checks on awkward shapes, and the identities between them
// (tiled with T = 1 is conv2d; locally connected with shared weights is conv2d).
#include <gtest/gtest.h>

#include <functional>
#include <vector>

#include "convnet/kernels/reference/conv2d.hpp"
#include "convnet/kernels/reference/linear.hpp"
#include "convnet/kernels/reference/locally_connected.hpp"
#include "convnet/kernels/reference/tiled_conv2d.hpp"
#include "support/gradcheck.hpp"

namespace convnet {
namespace {

using kernels::reference::Conv2dGeometry;
using testing::Buffers;
namespace ref = kernels::reference;

// A conv shape with defaults, so tests name only what they change; ceil rounds the output up (the
// last window then reaches past the padding).
struct Spec {
  int64_t n = 1, c = 1, h = 1, w = 1, k = 1, fh = 1, fw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1, groups = 1;
  bool ceil = false;
};

int64_t output_size(int64_t in, int64_t f, int64_t s, int64_t p, int64_t d, bool ceil) {
  const int64_t span = in + 2 * p - d * (f - 1) - 1;
  return (ceil ? (span + s - 1) / s : span / s) + 1;
}

Conv2dGeometry geometry(const Spec& s) {
  return {.batch = s.n, .in_channels = s.c, .in_h = s.h, .in_w = s.w, .out_channels = s.k,
          .out_h = output_size(s.h, s.fh, s.sh, s.ph, s.dh, s.ceil),
          .out_w = output_size(s.w, s.fw, s.sw, s.pw, s.dw, s.ceil), .kernel_h = s.fh, .kernel_w = s.fw,
          .stride_h = s.sh, .stride_w = s.sw, .pad_h = s.ph, .pad_w = s.pw, .dilation_h = s.dh,
          .dilation_w = s.dw, .groups = s.groups};
}

// A kernel pair in double with its buffer sizes, so one checker serves all four layers.
struct Op {
  int64_t x_count, w_count, b_count, y_count;
  std::function<void(const double* x, const double* w, const double* b, double* y)> forward;
  std::function<void(const double* x, const double* w, const double* dy, double* dx, double* dw, double* db,
                     bool accumulate)>
      backward;
};

int64_t input_count(const Conv2dGeometry& g) { return g.batch * g.in_channels * g.in_h * g.in_w; }
int64_t output_count(const Conv2dGeometry& g) { return g.batch * g.out_channels * g.out_h * g.out_w; }
int64_t filter_count(const Conv2dGeometry& g) {
  return g.out_channels * (g.in_channels / g.groups) * g.kernel_h * g.kernel_w;
}

Op conv_op(const Conv2dGeometry& g) {
  return {input_count(g), filter_count(g), g.out_channels, output_count(g),
          [g](const double* x, const double* w, const double* b, double* y) { ref::conv2d_forward(g, x, w, b, y); },
          [g](const double* x, const double* w, const double* dy, double* dx, double* dw, double* db, bool acc) {
            ref::conv2d_backward(g, x, w, dy, dx, dw, db, acc);
          }};
}

Op local_op(const Conv2dGeometry& g) {
  return {input_count(g), g.out_h * g.out_w * filter_count(g), g.out_channels * g.out_h * g.out_w, output_count(g),
          [g](const double* x, const double* w, const double* b, double* y) {
            ref::locally_connected_forward(g, x, w, b, y);
          },
          [g](const double* x, const double* w, const double* dy, double* dx, double* dw, double* db, bool acc) {
            ref::locally_connected_backward(g, x, w, dy, dx, dw, db, acc);
          }};
}

Op tiled_op(const Conv2dGeometry& g, int64_t t) {
  return {input_count(g), t * t * filter_count(g), g.out_channels, output_count(g),
          [g, t](const double* x, const double* w, const double* b, double* y) {
            ref::tiled_conv2d_forward(g, t, x, w, b, y);
          },
          [g, t](const double* x, const double* w, const double* dy, double* dx, double* dw, double* db, bool acc) {
            ref::tiled_conv2d_backward(g, t, x, w, dy, dx, dw, db, acc);
          }};
}

Op linear_op(int64_t n, int64_t in, int64_t out) {
  return {n * in, out * in, out, n * out,
          [=](const double* x, const double* w, const double* b, double* y) {
            ref::linear_forward(n, in, out, x, w, b, y);
          },
          [=](const double* x, const double* w, const double* dy, double* dx, double* dw, double* db, bool acc) {
            ref::linear_backward(n, in, out, x, w, dy, dx, dw, db, acc);
          }};
}

// Gradients of input, weight and (when with_bias) bias against central differences; without a bias
// the kernels get null bias pointers in both directions.
void check_gradients(const Op& op, bool with_bias = true) {
  Buffers values{testing::random_values(static_cast<size_t>(op.x_count), 1),
                 testing::random_values(static_cast<size_t>(op.w_count), 2)};
  if (with_bias) values.push_back(testing::random_values(static_cast<size_t>(op.b_count), 3));
  auto forward = [&](const Buffers& v) {
    std::vector<double> y(static_cast<size_t>(op.y_count));
    op.forward(v[0].data(), v[1].data(), with_bias ? v[2].data() : nullptr, y.data());
    return y;
  };
  auto backward = [&](const Buffers& v, const std::vector<double>& dy, Buffers& grads, bool accumulate) {
    op.backward(v[0].data(), v[1].data(), dy.data(), grads[0].data(), grads[1].data(),
                with_bias ? grads[2].data() : nullptr, accumulate);
  };
  testing::expect_gradients_match(forward, backward, std::move(values));
}

// Forward output and all three gradients, for comparing two kernels on the same data.
struct Results {
  std::vector<double> y, dx, dw, db;
};

Results run(const Op& op, const std::vector<double>& x, const std::vector<double>& w, const std::vector<double>& b,
        const std::vector<double>& dy) {
  Results r{std::vector<double>(static_cast<size_t>(op.y_count)), std::vector<double>(x.size()),
        std::vector<double>(w.size()), std::vector<double>(b.size())};
  op.forward(x.data(), w.data(), b.data(), r.y.data());
  op.backward(x.data(), w.data(), dy.data(), r.dx.data(), r.dw.data(), r.db.data(), false);
  return r;
}

void expect_near(const std::vector<double>& a, const std::vector<double>& b, const char* what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-12) << what << " element " << i;
}

// 3x3 input 1..9 in one channel, reused by the hand-computed forwards.
const std::vector<double> kOneToNine{1, 2, 3, 4, 5, 6, 7, 8, 9};

// ---------------------------------------------------------------------------------------------- conv2d

TEST(ReferenceConv2d, ForwardByHand) {
  // x = [1 2 3; 4 5 6; 7 8 9], w = [1 2; 3 4], b = 1, stride 1, no padding:
  // y00 = 1*1 + 2*2 + 3*4 + 4*5 + 1 = 38, y01 = 1*2 + 2*3 + 3*5 + 4*6 + 1 = 48,
  // y10 = 1*4 + 2*5 + 3*7 + 4*8 + 1 = 68, y11 = 1*5 + 2*6 + 3*8 + 4*9 + 1 = 78.
  const Conv2dGeometry g{.batch = 1, .in_channels = 1, .in_h = 3, .in_w = 3, .out_channels = 1, .out_h = 2,
                         .out_w = 2, .kernel_h = 2, .kernel_w = 2, .stride_h = 1, .stride_w = 1, .pad_h = 0,
                         .pad_w = 0};
  const std::vector<double> w{1, 2, 3, 4}, b{1};
  std::vector<double> y(4);
  ref::conv2d_forward(g, kOneToNine.data(), w.data(), b.data(), y.data());
  EXPECT_EQ(y, (std::vector<double>{38, 48, 68, 78}));
}

TEST(ReferenceConv2d, ForwardPaddedStridedByHand) {
  // Same x and w, pad 1, stride 2: (3 + 2 - 2)/2 + 1 = 2. Windows start at rows/cols -1 and 1:
  // y00 = 4*x00 = 4; y01 = 3*x01 + 4*x02 = 6 + 12 = 18; y10 = 2*x10 + 4*x20 = 8 + 28 = 36;
  // y11 = 1*5 + 2*6 + 3*8 + 4*9 = 77. No bias.
  const Conv2dGeometry g{.batch = 1, .in_channels = 1, .in_h = 3, .in_w = 3, .out_channels = 1, .out_h = 2,
                         .out_w = 2, .kernel_h = 2, .kernel_w = 2, .stride_h = 2, .stride_w = 2, .pad_h = 1,
                         .pad_w = 1};
  const std::vector<double> w{1, 2, 3, 4};
  std::vector<double> y(4);
  ref::conv2d_forward(g, kOneToNine.data(), w.data(), nullptr, y.data());
  EXPECT_EQ(y, (std::vector<double>{4, 18, 36, 77}));
}

TEST(ReferenceConv2d, ForwardDilatedByHand) {
  // 2x2 kernel with dilation 2 spans 3x3 and taps the corners: 1*1 + 2*3 + 3*7 + 4*9 = 64.
  const Conv2dGeometry g = geometry({.h = 3, .w = 3, .fh = 2, .fw = 2, .dh = 2, .dw = 2});
  ASSERT_EQ(g.out_h * g.out_w, 1);
  const std::vector<double> w{1, 2, 3, 4};
  std::vector<double> y(1);
  ref::conv2d_forward(g, kOneToNine.data(), w.data(), nullptr, y.data());
  EXPECT_EQ(y[0], 64);
}

TEST(ReferenceConv2d, ForwardGroupedByHand) {
  // 2 input channels, 4 filters of 1x1, groups 2: filters 0-1 see channel 0 only, 2-3 channel 1 only.
  // x = (ch0: 1 2, ch1: 3 4) on a 1x2 image; w = 1, 10, 100, 1000; b = 0, 0, 0, 0.5:
  // y = (1 2), (10 20), (300 400), (3000.5 4000.5).
  const Conv2dGeometry g = geometry({.c = 2, .h = 1, .w = 2, .k = 4, .groups = 2});
  const std::vector<double> x{1, 2, 3, 4}, w{1, 10, 100, 1000}, b{0, 0, 0, 0.5};
  std::vector<double> y(8);
  ref::conv2d_forward(g, x.data(), w.data(), b.data(), y.data());
  EXPECT_EQ(y, (std::vector<double>{1, 2, 10, 20, 300, 400, 3000.5, 4000.5}));
}

TEST(ReferenceConv2d, GradientsAllSizesOne) { check_gradients(conv_op(geometry({}))); }

TEST(ReferenceConv2d, GradientsNonSquareStridedPaddedBatch2) {
  check_gradients(conv_op(geometry({.n = 2, .c = 3, .h = 7, .w = 13, .k = 2, .fh = 3, .fw = 2, .sh = 2, .sw = 3,
                                    .ph = 1, .pw = 0})));
}

TEST(ReferenceConv2d, GradientsKernel7OnInput13) {
  check_gradients(conv_op(geometry({.h = 13, .w = 13, .fh = 7, .fw = 7, .sh = 3, .sw = 3, .ph = 3, .pw = 3})));
}

TEST(ReferenceConv2d, GradientsStrideLargerThanKernel) {
  // Some inputs fall between windows: their gradient must be written as 0.
  check_gradients(conv_op(geometry({.n = 2, .c = 2, .h = 13, .w = 7, .k = 3, .fh = 2, .fw = 1, .sh = 3, .sw = 4,
                                    .ph = 0, .pw = 1})));
}

TEST(ReferenceConv2d, GradientsDilation2) {
  check_gradients(conv_op(geometry({.n = 2, .c = 2, .h = 7, .w = 9, .k = 2, .fh = 3, .fw = 3, .ph = 2, .pw = 2,
                                    .dh = 2, .dw = 2})));
  check_gradients(conv_op(geometry({.c = 2, .h = 7, .w = 6, .k = 3, .fh = 3, .fw = 2, .sh = 2, .pw = 1, .dh = 2})));
}

TEST(ReferenceConv2d, GradientsGroups2) {
  check_gradients(conv_op(geometry({.n = 2, .c = 4, .h = 7, .w = 5, .k = 6, .fh = 3, .fw = 3, .sh = 2, .sw = 1,
                                    .ph = 1, .pw = 1, .groups = 2})));
}

TEST(ReferenceConv2d, GradientsDepthwise) {
  check_gradients(conv_op(geometry({.n = 2, .c = 3, .h = 5, .w = 7, .k = 3, .fh = 3, .fw = 3, .ph = 1, .pw = 1,
                                    .groups = 3})));
  // Channel multiplier 2: two filters per input channel.
  check_gradients(conv_op(geometry({.c = 3, .h = 5, .w = 5, .k = 6, .fh = 3, .fw = 1, .sh = 2, .sw = 2, .ph = 1,
                                    .groups = 3})));
}

TEST(ReferenceConv2d, GradientsCeilRoundingWindowPastThePadding) {
  // 8 + 2*1 - 3 = 7 is odd at stride 2: ceil gives 5 outputs, the last window covers 7, 8 (padding), 9 (beyond).
  const Conv2dGeometry g = geometry({.c = 2, .h = 8, .w = 8, .k = 2, .fh = 3, .fw = 3, .sh = 2, .sw = 2, .ph = 1,
                                     .pw = 1, .ceil = true});
  ASSERT_EQ(g.out_h, 5);
  check_gradients(conv_op(g));
}

TEST(ReferenceConv2d, GradientsKernelLargerThanInput) {
  check_gradients(conv_op(geometry({.n = 2, .h = 2, .w = 3, .k = 2, .fh = 5, .fw = 5, .ph = 2, .pw = 2})));
}

TEST(ReferenceConv2d, GradientsWithoutBias) {
  check_gradients(conv_op(geometry({.c = 2, .h = 5, .w = 4, .k = 3, .fh = 2, .fw = 3, .ph = 1})), false);
}

TEST(ReferenceConv2d, NullGradientsAreSkippedAndOthersUnchanged) {
  const Conv2dGeometry g = geometry({.n = 2, .c = 2, .h = 5, .w = 5, .k = 2, .fh = 3, .fw = 3, .ph = 1, .pw = 1});
  const Op op = conv_op(g);
  const auto x = testing::random_values(static_cast<size_t>(op.x_count), 1);
  const auto w = testing::random_values(static_cast<size_t>(op.w_count), 2);
  const auto b = testing::random_values(static_cast<size_t>(op.b_count), 3);
  const auto dy = testing::random_values(static_cast<size_t>(op.y_count), 4);
  const Results full = run(op, x, w, b, dy);
  std::vector<double> dw(w.size()), db(b.size()), dx(x.size());
  ref::conv2d_backward(g, x.data(), w.data(), dy.data(), nullptr, dw.data(), nullptr, false);
  ref::conv2d_backward(g, x.data(), w.data(), dy.data(), dx.data(), nullptr, db.data(), false);
  EXPECT_EQ(dw, full.dw);
  EXPECT_EQ(db, full.db);
  EXPECT_EQ(dx, full.dx);
}

// ------------------------------------------------------------------------------------ locally connected

TEST(ReferenceLocal2d, ForwardByHand) {
  // x = [1 2 3; 4 5 6; 7 8 9], 2x2 windows at stride 1 -> 2x2 outputs, each with its own filter that
  // picks one corner of its window: (0,0) top-left x00 = 1, (0,1) top-right x02 = 3,
  // (1,0) bottom-left x20 = 7, (1,1) bottom-right x22 = 9; bias (K, H2, W2) = 0.5, 0, 0, -9.
  const Conv2dGeometry g = geometry({.h = 3, .w = 3, .fh = 2, .fw = 2});
  const std::vector<double> w{1, 0, 0, 0, /**/ 0, 1, 0, 0, /**/ 0, 0, 1, 0, /**/ 0, 0, 0, 1};
  const std::vector<double> b{0.5, 0, 0, -9};
  std::vector<double> y(4);
  ref::locally_connected_forward(g, kOneToNine.data(), w.data(), b.data(), y.data());
  EXPECT_EQ(y, (std::vector<double>{1.5, 3, 7, 0}));
}

TEST(ReferenceLocal2d, GradientsAllSizesOne) { check_gradients(local_op(geometry({}))); }

TEST(ReferenceLocal2d, GradientsNonSquareStridedPaddedBatch2) {
  check_gradients(local_op(geometry({.n = 2, .c = 2, .h = 7, .w = 5, .k = 3, .fh = 3, .fw = 2, .sh = 2, .sw = 1,
                                     .ph = 1, .pw = 0})));
}

TEST(ReferenceLocal2d, GradientsStrideLargerThanKernelWithPadding) {
  check_gradients(local_op(geometry({.n = 2, .c = 1, .h = 13, .w = 7, .k = 2, .fh = 1, .fw = 2, .sh = 4, .sw = 3,
                                     .ph = 1, .pw = 1})));
}

TEST(ReferenceLocal2d, GradientsDilationGroupsCeilWithoutBias) {
  check_gradients(local_op(geometry({.c = 2, .h = 7, .w = 6, .k = 2, .fh = 2, .fw = 3, .sh = 2, .sw = 2, .ph = 1,
                                     .pw = 0, .dh = 2, .dw = 1, .groups = 2, .ceil = true})),
                  false);
}

TEST(ReferenceLocal2d, SharedWeightsEqualConv2d) {
  // Copy one conv filter bank to every position and the conv bias to every output: same forward and
  // input gradient; the per-position weight and bias gradients sum to conv's.
  const Conv2dGeometry g = geometry({.n = 2, .c = 4, .h = 9, .w = 7, .k = 2, .fh = 3, .fw = 2, .sh = 2, .sw = 1,
                                     .ph = 1, .pw = 1, .dh = 2, .dw = 1, .groups = 2, .ceil = true});
  const Op conv = conv_op(g), local = local_op(g);
  const auto x = testing::random_values(static_cast<size_t>(conv.x_count), 1);
  const auto w = testing::random_values(static_cast<size_t>(conv.w_count), 2);
  const auto b = testing::random_values(static_cast<size_t>(conv.b_count), 3);
  const auto dy = testing::random_values(static_cast<size_t>(conv.y_count), 4);
  const size_t positions = static_cast<size_t>(g.out_h * g.out_w);
  std::vector<double> local_w, local_b;
  for (size_t p = 0; p < positions; ++p) local_w.insert(local_w.end(), w.begin(), w.end());
  for (double bias : b) local_b.insert(local_b.end(), positions, bias);

  const Results expected = run(conv, x, w, b, dy), got = run(local, x, local_w, local_b, dy);
  expect_near(got.y, expected.y, "y");
  expect_near(got.dx, expected.dx, "dx");
  std::vector<double> dw(w.size()), db(b.size());
  for (size_t e = 0; e < got.dw.size(); ++e) dw[e % w.size()] += got.dw[e];
  for (size_t e = 0; e < got.db.size(); ++e) db[e / positions] += got.db[e];
  expect_near(dw, expected.dw, "dw");
  expect_near(db, expected.db, "db");
}

// ------------------------------------------------------------------------------------------- tiled conv

TEST(ReferenceTiledConv2d, ForwardByHandTile2) {
  // x = [1 2 3; 4 5 6; 7 8 9], 1x1 filters, T = 2 banks w(0,0) = 1, w(0,1) = 10, w(1,0) = 100,
  // w(1,1) = 1000; output (i, j) uses bank (i%2, j%2):
  // [1*1 10*2 1*3; 100*4 1000*5 100*6; 1*7 10*8 1*9], plus bias 0.5.
  const Conv2dGeometry g = geometry({.h = 3, .w = 3});
  const std::vector<double> w{1, 10, 100, 1000}, b{0.5};
  std::vector<double> y(9);
  ref::tiled_conv2d_forward(g, 2, kOneToNine.data(), w.data(), b.data(), y.data());
  EXPECT_EQ(y, (std::vector<double>{1.5, 20.5, 3.5, 400.5, 5000.5, 600.5, 7.5, 80.5, 9.5}));
}

TEST(ReferenceTiledConv2d, GradientsTile2OddOutput) {
  // 7x5 output: the last row and column of banks are partial.
  check_gradients(tiled_op(geometry({.n = 2, .c = 2, .h = 9, .w = 6, .k = 2, .fh = 3, .fw = 2, .ph = 0,
                                     .pw = 0}),
                           2));
}

TEST(ReferenceTiledConv2d, GradientsTile2StridedPaddedDilatedGrouped) {
  check_gradients(tiled_op(geometry({.n = 2, .c = 2, .h = 7, .w = 13, .k = 2, .fh = 2, .fw = 3, .sh = 2, .sw = 3,
                                     .ph = 1, .pw = 2, .dh = 2, .dw = 1, .groups = 2, .ceil = true}),
                           2));
}

TEST(ReferenceTiledConv2d, GradientsTile3AndTile1WithoutBias) {
  check_gradients(tiled_op(geometry({.c = 1, .h = 7, .w = 7, .k = 2, .fh = 2, .fw = 2, .sh = 1, .sw = 2}), 3),
                  false);
  check_gradients(tiled_op(geometry({.n = 2, .c = 2, .h = 5, .w = 4, .k = 1, .fh = 3, .fw = 1, .ph = 1}), 1));
}

TEST(ReferenceTiledConv2d, GradientsTileLargerThanOutput) {
  // T = 3 on a 2x1 output: some banks are never used, so their gradient is 0.
  check_gradients(tiled_op(geometry({.h = 3, .w = 2, .k = 2, .fh = 2, .fw = 2}), 3));
}

TEST(ReferenceTiledConv2d, TileOneEqualsConv2dExactly) {
  const Conv2dGeometry g = geometry({.n = 2, .c = 4, .h = 9, .w = 13, .k = 6, .fh = 3, .fw = 2, .sh = 2, .sw = 3,
                                     .ph = 1, .pw = 2, .dh = 2, .dw = 1, .groups = 2, .ceil = true});
  const Op conv = conv_op(g), tiled = tiled_op(g, 1);
  const auto x = testing::random_values(static_cast<size_t>(conv.x_count), 1);
  const auto w = testing::random_values(static_cast<size_t>(conv.w_count), 2);
  const auto b = testing::random_values(static_cast<size_t>(conv.b_count), 3);
  const auto dy = testing::random_values(static_cast<size_t>(conv.y_count), 4);
  const Results expected = run(conv, x, w, b, dy), got = run(tiled, x, w, b, dy);
  EXPECT_EQ(got.y, expected.y);
  EXPECT_EQ(got.dx, expected.dx);
  EXPECT_EQ(got.dw, expected.dw);
  EXPECT_EQ(got.db, expected.db);
}

TEST(ReferenceTiledConv2d, Tile2EqualsLocallyConnectedWithRepeatedBanks) {
  // Locally connected with the weight of position (i, j) = bank (i%2, j%2) and a shared bias.
  const int64_t t = 2;
  const Conv2dGeometry g = geometry({.n = 2, .c = 2, .h = 8, .w = 7, .k = 3, .fh = 3, .fw = 2, .sh = 1, .sw = 2,
                                     .ph = 1, .pw = 1});
  const Op tiled = tiled_op(g, t), local = local_op(g);
  const auto x = testing::random_values(static_cast<size_t>(tiled.x_count), 1);
  const auto w = testing::random_values(static_cast<size_t>(tiled.w_count), 2);
  const auto b = testing::random_values(static_cast<size_t>(tiled.b_count), 3);
  const auto dy = testing::random_values(static_cast<size_t>(tiled.y_count), 4);
  const size_t bank = static_cast<size_t>(filter_count(g)), plane = static_cast<size_t>(g.out_h * g.out_w);
  auto bank_of = [&](int64_t i, int64_t j) { return static_cast<size_t>((i % t) * t + j % t) * bank; };
  std::vector<double> local_w, local_b;
  for (int64_t i = 0; i < g.out_h; ++i) {
    for (int64_t j = 0; j < g.out_w; ++j) {
      local_w.insert(local_w.end(), w.begin() + static_cast<ptrdiff_t>(bank_of(i, j)),
                     w.begin() + static_cast<ptrdiff_t>(bank_of(i, j) + bank));
    }
  }
  for (double bias : b) local_b.insert(local_b.end(), plane, bias);

  const Results expected = run(local, x, local_w, local_b, dy), got = run(tiled, x, w, b, dy);
  expect_near(got.y, expected.y, "y");
  expect_near(got.dx, expected.dx, "dx");
  std::vector<double> dw(w.size()), db(b.size());
  for (int64_t i = 0; i < g.out_h; ++i) {
    for (int64_t j = 0; j < g.out_w; ++j) {
      const size_t position = static_cast<size_t>(i * g.out_w + j);
      for (size_t e = 0; e < bank; ++e) dw[bank_of(i, j) + e] += expected.dw[position * bank + e];
    }
  }
  for (size_t e = 0; e < expected.db.size(); ++e) db[e / plane] += expected.db[e];
  expect_near(got.dw, dw, "dw");
  expect_near(got.db, db, "db");
}

// ----------------------------------------------------------------------------------------------- linear

TEST(ReferenceLinear, ForwardByHand) {
  // w = [1 2 3; 4 5 6], b = (1, -1); x0 = (1, 0, -1): (1 - 3 + 1, 4 - 6 - 1) = (-1, -3);
  // x1 = (2, 1, 0): (2 + 2 + 1, 8 + 5 - 1) = (5, 12).
  const std::vector<double> x{1, 0, -1, 2, 1, 0}, w{1, 2, 3, 4, 5, 6}, b{1, -1};
  std::vector<double> y(4);
  ref::linear_forward(2, 3, 2, x.data(), w.data(), b.data(), y.data());
  EXPECT_EQ(y, (std::vector<double>{-1, -3, 5, 12}));
}

TEST(ReferenceLinear, Gradients) {
  check_gradients(linear_op(1, 1, 1));
  check_gradients(linear_op(2, 7, 13));
  check_gradients(linear_op(3, 13, 1), false);
}

}  // namespace
}  // namespace convnet
