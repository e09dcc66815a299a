// Visualisation's foundations: the canvas and its PNGs, ReLU's three backward rules, and input
// gradients after an inference forward against finite differences and hand-computed rules.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "convnet/data/dataset.hpp"
#include "convnet/error.hpp"
#include "convnet/executor.hpp"
#include "convnet/kernels/reference/activation.hpp"
#include "convnet/model/model.hpp"
#include "convnet/train/checkpoint.hpp"
#include "convnet/train/trainer.hpp"
#include "convnet/visualize/canvas.hpp"
#include "convnet/visualize/plot.hpp"
#include "convnet/visualize/report.hpp"
#include "convnet/visualize/views.hpp"
#include "support/cli.hpp"

namespace convnet {
namespace {

namespace fs = std::filesystem;
using testing::TempFile;

// Decodes a PNG the library wrote, through the library's own reader: (3, H, W) bytes.
Dataset decode(const fs::path& path, int64_t width, int64_t height) {
  return read_single_image(path.string(), Shape{3, height, width});
}

TEST(Canvas, PngRoundTripsThroughTheImageReader) {
  Canvas c(37, 11, {255, 255, 255});
  c.fill_rect(3, 2, 5, 4, {200, 10, 30});
  c.draw_line(0, 10, 36, 0, {0, 0, 255});
  c.draw_text(10, 3, "Ab1", {0, 0, 0});
  TempFile png(".png");
  c.save_png(png.path().string());
  const Dataset d = decode(png.path(), 37, 11);
  ASSERT_EQ(d.image_shape, (Shape{3, 11, 37}));
  for (int64_t y = 0; y < 11; ++y) {
    for (int64_t x = 0; x < 37; ++x) {
      const Rgb p = c.at(x, y);
      EXPECT_EQ(d.pixels[static_cast<size_t>(y * 37 + x)], p.r) << x << "," << y;
      EXPECT_EQ(d.pixels[static_cast<size_t>(11 * 37 + y * 37 + x)], p.g) << x << "," << y;
      EXPECT_EQ(d.pixels[static_cast<size_t>(2 * 11 * 37 + y * 37 + x)], p.b) << x << "," << y;
    }
  }
  EXPECT_EQ(c.at(3, 2), (Rgb{200, 10, 30}));
}

TEST(Canvas, TextInksItsGlyphsAndRefusesBadSizes) {
  Canvas c(40, 7, {255, 255, 255});
  c.draw_text(1, 1, "1", {0, 0, 0});
  // '1': 010 / 110 / 010 / 010 / 111
  EXPECT_EQ(c.at(2, 1), (Rgb{0, 0, 0}));
  EXPECT_EQ(c.at(1, 1), (Rgb{255, 255, 255}));
  EXPECT_EQ(c.at(1, 2), (Rgb{0, 0, 0}));
  EXPECT_EQ(c.at(3, 5), (Rgb{0, 0, 0}));
  EXPECT_EQ(Canvas::text_width("abc", 2), 22);
  EXPECT_THROW(Canvas(0, 5), ShapeError);
  EXPECT_THROW(Canvas(5, Canvas::kMaxSide + 1), ShapeError);
  c.draw_text(-100, -100, "clipped", {0, 0, 0});  // off the canvas: nothing drawn, no fault
}

TEST(Canvas, NormalisationAndColours) {
  std::vector<float> v{2, 4, NAN, 3, INFINITY};
  normalize_min_max(v);
  EXPECT_EQ(v, (std::vector<float>{0, 1, 0, 0.5F, 0}));
  std::vector<float> flat{7, 7};
  normalize_min_max(flat);
  EXPECT_EQ(flat, (std::vector<float>{0.5F, 0.5F}));
  EXPECT_EQ(color_of(0, Colormap::Viridis), (Rgb{68, 1, 84}));
  EXPECT_EQ(color_of(1, Colormap::Viridis), (Rgb{253, 231, 37}));
  EXPECT_EQ(color_of(0.5F, Colormap::Grey), (Rgb{128, 128, 128}));
}

TEST(ReluBackwardRules, GradientDeconvnetAndGuided) {
  namespace ref = kernels::reference;
  const std::vector<float> y{0, 2, 0, 3};  // forward outputs: two units off, two on
  const std::vector<float> dy{1, -1, -2, 4};
  std::vector<float> dx(4);
  ref::relu_backward<float>(4, y.data(), dy.data(), dx.data(), false);
  EXPECT_EQ(dx, (std::vector<float>{0, -1, 0, 4}));
  ref::relu_deconvnet_backward<float>(4, dy.data(), dx.data(), false);
  EXPECT_EQ(dx, (std::vector<float>{1, 0, 0, 4}));
  ref::relu_guided_backward<float>(4, y.data(), dy.data(), dx.data(), false);
  EXPECT_EQ(dx, (std::vector<float>{0, 0, 0, 4}));
}

// A small net with every layer whose inference backward differs from its training one.
constexpr const char* kTiny = R"(network tiny
input 2x6x6
conv1 conv 3 3x3 pad 1
bn1   batchnorm
      relu
pool1 maxpool 2x2
drop  dropout p 0.5
fc1   fc 4
)";

ViewImage tiny_image(uint64_t seed) {
  ViewImage v;
  v.channels = 2;
  v.height = v.width = 6;
  v.input = Tensor({1, 2, 6, 6});
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  for (int64_t i = 0; i < v.input.numel(); ++i) v.input.data()[i] = u(rng);
  v.pixels.assign(72, 0.5F);
  return v;
}

void set_running_statistics(Executor& e) {
  for (NamedParameter& p : e.named_parameters()) {
    if (p.name == "bn1.running_mean") std::fill_n(p.value->data(), 3, 0.2F);
    if (p.name == "bn1.running_var") std::fill_n(p.value->data(), 3, 2.5F);
    if (p.name == "bn1.weight") std::iota(p.value->data(), p.value->data() + 3, 0.5F);
  }
  e.parameters_changed();
}

class InputGradient : public ::testing::TestWithParam<Backend> {};

TEST_P(InputGradient, MatchesFiniteDifferencesAfterAnInferenceForward) {
  Net net = load_model_text(kTiny, "tiny.cnet");
  Executor e(net, {.backend = GetParam(), .seed = 3});
  set_running_statistics(e);
  ViewImage image = tiny_image(5);
  int64_t target = 2;
  const std::vector<float> g = input_gradient(e, image, GradientMethod::Saliency, target);
  ASSERT_EQ(target, 2);
  ASSERT_EQ(g.size(), 72U);
  auto score = [&](const Tensor& x) { return static_cast<double>(e.forward(x, false).data()[2]); };
  const double eps = 1e-3;
  double worst = 0, scale = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    Tensor x = image.input;
    x.data()[i] += static_cast<float>(eps);
    const double up = score(x);
    x.data()[i] -= static_cast<float>(2 * eps);
    const double down = score(x);
    worst = std::max(worst, std::abs((up - down) / (2 * eps) - g[i]));
    scale = std::max(scale, static_cast<double>(std::abs(g[i])));
  }
  EXPECT_GT(scale, 1e-3);  // the check means something: the gradient is not zero
  EXPECT_LT(worst, 2e-2 * scale) << "largest |finite difference - gradient| over " << scale;
  // The executor is as before: planned inference again, no gradients left behind.
  EXPECT_NO_THROW((void)e.forward(image.input, false));
  for (NamedParameter& p : e.named_parameters()) {
    if (p.grad != nullptr) {
      EXPECT_TRUE(std::all_of(p.grad->data(), p.grad->data() + p.grad->numel(), [](float v) { return v == 0; }))
          << p.name;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, InputGradient, ::testing::Values(Backend::Reference, Backend::OneDnn));

TEST(InputGradient, DeconvnetAndGuidedFollowTheirRulesThroughAnFcNet) {
  // score = W2 relu(W1 x): the gradient is W1^T ([h > 0] * w2); deconvnet W1^T relu(w2); guided
  // W1^T ([h > 0] * relu(w2)). w2 is row `target` of W2.
  Net net = load_model_text("network mlp\ninput 3\nfc1 fc 4 bias false\nrelu\nfc2 fc 2 bias false\n", "mlp.cnet");
  Executor e(net, {.backend = Backend::Reference});
  std::vector<float> w1{1, -2, 0.5F, -1, 1, 1, 2, 0, -1, 0.5F, 0.5F, -3};  // (4, 3)
  std::vector<float> w2{1, -1, 2, -2, 0, 0, 0, 0};                         // (2, 4)
  for (NamedParameter& p : e.named_parameters()) {
    std::copy_n((p.name == "fc1.weight" ? w1 : w2).data(), p.value->numel(), p.value->data());
  }
  e.parameters_changed();
  ViewImage image;
  image.channels = 3;
  image.height = image.width = 1;
  image.input = Tensor({1, 3});
  image.input.data()[0] = 1;
  image.input.data()[1] = 0.5F;
  image.input.data()[2] = -1;
  std::vector<float> h(4);
  for (int j = 0; j < 4; ++j) h[j] = w1[j * 3] * 1 + w1[j * 3 + 1] * 0.5F + w1[j * 3 + 2] * -1;
  auto expected = [&](auto rule) {
    std::vector<float> out(3, 0);
    for (int j = 0; j < 4; ++j) {
      for (int i = 0; i < 3; ++i) out[i] += w1[j * 3 + i] * rule(h[j] > 0, w2[j]);
    }
    return out;
  };
  const auto saliency = expected([](bool on, float d) { return on ? d : 0.0F; });
  const auto deconv = expected([](bool, float d) { return std::max(d, 0.0F); });
  const auto guided = expected([](bool on, float d) { return on && d > 0 ? d : 0.0F; });
  ASSERT_NE(saliency, deconv);  // the weights make the three rules differ
  ASSERT_NE(saliency, guided);
  for (auto [method, want] :
       {std::pair{GradientMethod::Saliency, saliency}, std::pair{GradientMethod::Deconvnet, deconv},
        std::pair{GradientMethod::Guided, guided}}) {
    int64_t target = 0;
    const std::vector<float> g = input_gradient(e, image, method, target);
    for (int i = 0; i < 3; ++i) EXPECT_FLOAT_EQ(g[i], want[i]) << static_cast<int>(method) << " input " << i;
  }
}

TEST(Views, LimitsThatKeepPicturesDrawable) {
  // A layer of 2,000 values draws its first 1,024; after the views the executor refuses a backward
  // until a training forward, as before them.
  Net wide = load_model_text("network wide\ninput 3\nfc1 fc 2000\n", "wide.cnet");
  Executor e(wide, {.backend = Backend::Reference});
  ViewImage v;
  v.channels = 3;
  v.height = v.width = 1;
  v.input = Tensor({1, 3});
  v.input.fill(1.0F);
  v.pixels.assign(3, 0.5F);
  int drawn = 0;
  draw_activations(wide, e, v, {"fc1"}, [&](const ActivationView& a) {
    ++drawn;
    EXPECT_LE(a.picture.width(), 32 * 20 + 400);
  });
  EXPECT_EQ(drawn, 1);
  Tensor grad({1, 2000});
  EXPECT_THROW(e.backward(grad), Error);
  // Occlusion refuses a stride that would leave pixels uncovered.
  Net net = load_model_text(kTiny, "tiny.cnet");
  Executor tiny(net, {.backend = Backend::Reference});
  EXPECT_THROW((void)occlusion(tiny, tiny_image(1), {.patch = 2, .stride = 3}), Error);
  EXPECT_NO_THROW((void)occlusion(tiny, tiny_image(1), {.patch = 2, .stride = 2}));
  // Thirty projections wrap into rows of ten panels.
  std::vector<Projection> many(30, Projection{0, 0, 0, 1.0F, std::vector<float>(72, 0.5F)});
  ViewImage small = tiny_image(2);
  const Canvas grid = draw_projections(small, many, "t");
  EXPECT_LT(grid.width(), 11 * (6 * 16 + 8) + 8);
  EXPECT_GT(grid.height(), 3 * 6 * 16);
}

TEST(Report, Base64MatchesRfc4648) {
  auto b64 = [](const std::string& s) { return base64(std::vector<uint8_t>(s.begin(), s.end())); };
  EXPECT_EQ(b64(""), "");
  EXPECT_EQ(b64("f"), "Zg==");
  EXPECT_EQ(b64("fo"), "Zm8=");
  EXPECT_EQ(b64("foo"), "Zm9v");
  EXPECT_EQ(b64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64({0xff, 0xfe, 0x00}), "//4A");
}

size_t count(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

TEST(Report, OneRowPerLayerABoxPerVolumeArcsForShortcutsAndNothingUnescaped) {
  Net net = load_model("resnet18");
  const std::string page = report_html(net, nullptr);
  EXPECT_EQ(count(page, "<tr id=\"row-"), net.nodes().size());
  // conv + bn + relu share a box: 1 input, 1 stem conv, 1 maxpool, 8 blocks x (conv1, conv2, add)
  // and 3 downsampling convs, the global pool and fc.
  EXPECT_EQ(count(page, "<g class=\"node\""), 1U + 1 + 1 + 8 * 3 + 3 + 2);
  // Five identity shortcuts as arcs; each of the three projections a branch beside its block (out
  // of the block's input, into its add).
  EXPECT_EQ(count(page, "class=\"skip\""), 5U);
  EXPECT_EQ(count(page, "class=\"branch\""), 6U);
  EXPECT_EQ(page.find("http"), std::string::npos);
  EXPECT_NE(page.find("conv 64 7x7 stride 2 pad 3"), std::string::npos) << "the stem's kernel and stride";
  EXPECT_NE(page.find(">conv 64 3x3 pad 1 round floor bias false stride 1 + batchnorm + relu<"), std::string::npos)
      << "a default stride shown";
  const std::string lenet = report_html(load_model("lenet5"), nullptr);
  EXPECT_NE(lenet.find(">avgpool 2x2 stride 2<"), std::string::npos) << "pooling's default stride is its kernel";

  ReportRun run;
  run.name = "<run>";
  run.class_names = {"a<b", "c&d"};
  run.evaluation.count = 2;
  run.evaluation.top1 = 0.5;
  run.evaluation.confusion = {1, 0, 1, 0};
  run.metrics.rows = {{1, 0.5, 0.8, 0.4, 0.8, 0.9, 0.1, 2}, {2, 0.4, 0.85, 0.35, 0.82, 0.9, 0.05, 2}};
  run.examples.push_back({Canvas(4, 4), "a<b", "c&d", 0.75F});
  const std::string with_run = report_html(net, &run);
  EXPECT_EQ(with_run.find("<run>"), std::string::npos);
  EXPECT_EQ(with_run.find("a<b"), std::string::npos);
  EXPECT_NE(with_run.find("a&lt;b"), std::string::npos);
  EXPECT_NE(with_run.find("c&amp;d 75%"), std::string::npos);
  EXPECT_NE(with_run.find("<h2>Confusion matrix (test set)</h2>"), std::string::npos);
  EXPECT_NE(with_run.find("data:image/png;base64,iVBORw0KGgo"), std::string::npos) << "the example as a PNG";
  EXPECT_EQ(count(with_run, "<polyline"), 5U) << "train and eval loss and accuracy, and the learning rate";
}

}  // namespace
}  // namespace convnet
