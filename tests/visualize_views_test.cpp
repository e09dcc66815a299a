// The views on a LeNet-5 trained here on Fashion-MNIST (Debian's dataset-fashion-mnist, which
// scripts/setup installs): occlusion lowers the class probability most over the object; saliency,
// guided and deconvnet maps are finite, not uniform, and concentrate on the object; activation and
// filter grids; training curves from the run's metrics.csv; the command line's files and errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "convnet/data/dataset.hpp"
#include "convnet/error.hpp"
#include "convnet/train/trained_model.hpp"
#include "convnet/train/trainer.hpp"
#include "convnet/visualize/plot.hpp"
#include "convnet/visualize/views.hpp"
#include "support/cli.hpp"

namespace convnet {
namespace {

namespace fs = std::filesystem;
using testing::run;
using testing::write_file;

// The fixed set is the first kImages test images. "Most" of them is set per view below what this
// LeNet-5 (3 epochs on 24,000 images) measured on an AMD Zen 5 — occlusion 16 of 20, saliency 14,
// deconv 15 — leaving room for another CPU's kernels to train a slightly different net, and above
// the 10 of 20 that a map unrelated to the garment would get.
constexpr int kImages = 20;
constexpr int kOcclusionImages = 13;
constexpr int kGradientImages = 12;
constexpr int kDeconvImages = 12;
constexpr uint8_t kObject = 25;  // a raw pixel above this (0.1) is the garment; the background is 0
constexpr int kOutline = 2;

size_t colours(const Canvas& c) {
  std::vector<uint32_t> seen;
  for (size_t i = 0; i < c.pixels().size(); i += 3) {
    seen.push_back(c.pixels()[i] << 16 | c.pixels()[i + 1] << 8 | c.pixels()[i + 2]);
  }
  std::sort(seen.begin(), seen.end());
  return static_cast<size_t>(std::unique(seen.begin(), seen.end()) - seen.begin());
}

class TrainedLeNet : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(fs::exists(kDefaultDataPath)) << kDefaultDataPath << " is missing: scripts/setup installs it";
    dir_ = new fs::path(fs::temp_directory_path() / ("convnet_visualize_" + std::to_string(::getpid())));
    fs::remove_all(*dir_);
    TrainOptions o;
    o.model = "lenet5";
    o.out_dir = dir_->string();
    o.epochs = 3;
    o.lr = 0.05;
    o.optimizer.momentum = 0.9;
    o.limit_train = 24000;
    o.validation = 1000;
    (void)train(o, {}, {}, {});
    test_ = new Dataset(load_dataset(kDefaultDataPath).test);
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    if (dir_ != nullptr) fs::remove_all(*dir_, ec);
    delete dir_;
    delete test_;
  }
  void SetUp() override { model_ = open_trained_model(dir_->string(), {}); }

  ViewImage image(int i) const { return view_image(*test_, i, model_.normalization); }
  int64_t argmax_probability(int i) {
    const Tensor& logits = model_.executor->forward(image(i).input, false);
    return std::max_element(logits.data(), logits.data() + logits.numel()) - logits.data();
  }
  // The garment and its outline: pixels above kObject, grown by kOutline pixels (a garment's class
  // is in its silhouette, so the edge just outside it belongs to it; farther out is background).
  std::vector<bool> object_mask(int i) const {
    std::vector<bool> mask(784, false);
    for (int y = 0; y < 28; ++y) {
      for (int x = 0; x < 28; ++x) {
        if (test_->pixels[static_cast<size_t>(i * 784 + y * 28 + x)] <= kObject) continue;
        for (int yy = std::max(0, y - kOutline); yy <= std::min(27, y + kOutline); ++yy) {
          for (int xx = std::max(0, x - kOutline); xx <= std::min(27, x + kOutline); ++xx)
            mask[static_cast<size_t>(yy * 28 + xx)] = true;
        }
      }
    }
    return mask;
  }
  // The share of a non-negative map's total on the object, over the object's share of the pixels.
  double concentration(const std::vector<float>& map, int i) const {
    const std::vector<bool> mask = object_mask(i);
    double on = 0, all = 0;
    size_t area = 0;
    for (size_t k = 0; k < map.size(); ++k) {
      all += map[k];
      if (mask[k]) {
        on += map[k];
        ++area;
      }
    }
    return (on / all) / (static_cast<double>(area) / static_cast<double>(map.size()));
  }

  static fs::path* dir_;
  static Dataset* test_;
  TrainedModel model_;
};

fs::path* TrainedLeNet::dir_ = nullptr;
Dataset* TrainedLeNet::test_ = nullptr;

TEST_F(TrainedLeNet, OcclusionLowersTheClassProbabilityMostOverTheObject) {
  int on_object = 0;
  for (int i = 0; i < kImages; ++i) {
    const OcclusionMap r = occlusion(*model_.executor, image(i), {});
    ASSERT_EQ(r.per_pixel.size(), 784U);
    EXPECT_EQ(r.patch, 4);
    EXPECT_EQ(r.stride, 2);
    const std::vector<bool> mask = object_mask(i);
    ASSERT_TRUE(std::all_of(r.per_pixel.begin(), r.per_pixel.end(), [](float p) { return p >= 0 && p <= 1; }));
    const size_t lowest =
        static_cast<size_t>(std::min_element(r.per_pixel.begin(), r.per_pixel.end()) - r.per_pixel.begin());
    if (mask[lowest]) ++on_object;
  }
  EXPECT_GE(on_object, kOcclusionImages) << "images whose occlusion map is lowest over the object";
}

TEST_F(TrainedLeNet, GradientMapsAreFiniteNotUniformAndOnTheObject) {
  for (GradientMethod method : {GradientMethod::Saliency, GradientMethod::Guided, GradientMethod::Deconvnet}) {
    int concentrated = 0;
    for (int i = 0; i < kImages; ++i) {
      int64_t target = -1;
      const std::vector<float> g = input_gradient(*model_.executor, image(i), method, target);
      EXPECT_EQ(target, argmax_probability(i)) << "the predicted class";
      const std::vector<float> s = pixel_strength(g, 1, 784);
      ASSERT_TRUE(std::all_of(s.begin(), s.end(), [](float v) { return std::isfinite(v); }));
      ASSERT_GT(*std::max_element(s.begin(), s.end()), *std::min_element(s.begin(), s.end()));
      if (concentration(s, i) > 1.0) ++concentrated;
    }
    EXPECT_GE(concentrated, kGradientImages) << "method " << static_cast<int>(method);
  }
}

TEST_F(TrainedLeNet, DeconvProjectionsAreFiniteNotUniformAndOnTheObject) {
  int concentrated = 0;
  for (int i = 0; i < kImages; ++i) {
    const std::vector<Projection> p = deconv_projections(*model_.net, *model_.executor, image(i), "c3", 9);
    ASSERT_FALSE(p.empty());
    std::vector<float> total(784, 0.0F);
    for (size_t k = 1; k < p.size(); ++k) EXPECT_GE(p[k - 1].value, p[k].value) << "strongest first";
    for (const Projection& q : p) {
      ASSERT_EQ(q.pixels.size(), 784U);
      const std::vector<float> s = pixel_strength(q.pixels, 1, 784);
      ASSERT_TRUE(std::all_of(s.begin(), s.end(), [](float v) { return std::isfinite(v); }));
      ASSERT_GT(*std::max_element(s.begin(), s.end()), 0.0F);
      for (size_t k = 0; k < 784; ++k) total[k] += s[k];
    }
    if (concentration(total, i) > 1.0) ++concentrated;
  }
  EXPECT_GE(concentrated, kDeconvImages);
  EXPECT_THROW((void)deconv_projections(*model_.net, *model_.executor, image(0), "nope", 3), Error);
}

TEST_F(TrainedLeNet, ActivationAndFilterGrids) {
  std::vector<ActivationView> all, two;
  draw_activations(*model_.net, *model_.executor, image(0), {}, [&](const ActivationView& v) { all.push_back(v); });
  ASSERT_EQ(all.size(),
            model_.net->nodes().size() - 1);  // every node but the input
  EXPECT_EQ(all[0].name, "c1");
  EXPECT_EQ(all[0].shape, model_.net->node(all[0].node).output.volume_string());
  for (const ActivationView& v : all) EXPECT_GT(colours(v.picture), 8U) << v.name;
  draw_activations(*model_.net, *model_.executor, image(0), {"s2", "c5"},
                   [&](const ActivationView& v) { two.push_back(v); });
  ASSERT_EQ(two.size(), 2U);
  EXPECT_EQ(two[1].name, "c5");
  // c1: 6 filters of 5x5x1 in a 3 x 2 grid of 40-pixel tiles; c3: a row per filter (16), a column
  // per input channel (6).
  const Canvas c1 = draw_filters(*model_.net, *model_.executor, "c1");
  EXPECT_GE(c1.width(), 3 * 40);
  EXPECT_GE(c1.height(), 2 * 40);
  const Canvas c3 = draw_filters(*model_.net, *model_.executor, "c3");
  EXPECT_GE(c3.width(), 6 * 40);
  EXPECT_GE(c3.height(), 16 * 40);
  EXPECT_GT(colours(c1), 16U);
  try {
    (void)draw_filters(*model_.net, *model_.executor, "f6");
    ADD_FAILURE() << "f6 has no 2-D filters";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layers with filters: c1, c3, c5"), std::string::npos) << e.what();
  }
}

TEST_F(TrainedLeNet, CurvesFromTheRunsMetrics) {
  EXPECT_TRUE(fs::exists(*dir_ / "curves.png")) << "train writes the curves every epoch";
  const MetricsTable t = read_metrics_csv(dir_->string());
  ASSERT_EQ(t.rows.size(), 3U);
  EXPECT_EQ(t.eval_name, "val");
  const Canvas c = plot_curves(t, "lenet5");
  EXPECT_EQ(c.width(), 720);
  EXPECT_GT(colours(c), 4U);
  const fs::path bad = *dir_ / "bad.csv";
  write_file(bad,
             "epoch,train_loss,train_top1,val_loss,val_top1,val_top5,lr,"
             "seconds\n1,0.5,0.8,0.4,0.8,0.9,0.1,2\n"
             "3,0.4,0.8,0.4,0.8,0.9,0.1,2\n");
  EXPECT_THROW((void)read_metrics_csv(bad.string()), IoError);
  write_file(bad, "epoch,train_loss,train_top1,val_loss,val_top1,val_top5,lr,seconds\n1e30,1,1,1,1,1,1,1\n");
  EXPECT_THROW((void)read_metrics_csv(bad.string()), IoError);
  // A run that diverged: its NaN epoch is a gap in the curves, not a hang or a failure.
  write_file(bad,
             "epoch,train_loss,train_top1,val_loss,val_top1,val_top5,lr,seconds\n1,0.5,0.8,0.4,0.8,0.9,0.1,2\n"
             "2,nan,0.1,-nan,0.1,0.5,0.1,2\n3,inf,0.1,1e400,0.1,0.5,0.1,2\n");
  const MetricsTable diverged = read_metrics_csv(bad.string());
  ASSERT_EQ(diverged.rows.size(), 3U);
  EXPECT_TRUE(std::isnan(diverged.rows[1].eval_loss));
  EXPECT_TRUE(std::isinf(diverged.rows[2].eval_loss));
  EXPECT_EQ(plot_curves(diverged, "diverged").width(), 720);
  write_file(bad, "epoch,loss\n");
  EXPECT_THROW((void)read_metrics_csv(bad.string()), IoError);
  write_file(bad,
             "epoch,train_loss,train_top1,val_loss,val_top1,val_top5,lr,"
             "seconds\n1,x,0.8,0.4,0.8,0.9,0.1,2\n");
  try {
    (void)read_metrics_csv(bad.string());
    ADD_FAILURE() << "a field that is not a number";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.csv:2: 'x' is not a number"), std::string::npos) << e.what();
  }
}

TEST_F(TrainedLeNet, CommandLineWritesPngsAndNamesBadInput) {
  const fs::path png = *dir_ / "shirt.png";
  Canvas picture(28, 28);
  for (int64_t y = 0; y < 28; ++y) {
    for (int64_t x = 0; x < 28; ++x) {
      const uint8_t v = test_->pixels[static_cast<size_t>(y * 28 + x)];
      picture.set(x, y, {v, v, v});
    }
  }
  picture.save_png(png.string());
  const std::string run_dir = dir_->string();
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"visualize", "occlusion", run_dir, png.string(), "-o", (*dir_ / "o.png").string()},
        {"visualize", "saliency", run_dir, png.string(), "--guided", "--class", "Ankle boot", "-o",
         (*dir_ / "s.png").string()},
        {"visualize", "deconv", run_dir, png.string(), "--layer", "c3", "--top", "4", "-o", (*dir_ / "d.png").string()},
        {"visualize", "filters", run_dir, "c1", "-o", (*dir_ / "f.png").string()},
        {"visualize", "activations", run_dir, png.string(), "--layers", "c1,s4", "-o", (*dir_ / "maps").string()},
        {"plot", run_dir, "-o", (*dir_ / "c.png").string()}}) {
    const auto r = run(args);
    EXPECT_EQ(r.code, 0) << args[1] << ": " << r.err;
  }
  // Each file is a PNG of at least the size its panels need (28x28 pictures scaled to 224 pixels for
  // occlusion and saliency, to 112 for deconv's image and 4 projections; c1's 6 maps of 28x28 scaled
  // twice), read back at its own size with more than four colours (the curves use six).
  const std::vector<std::tuple<const char*, int64_t, int64_t>> files{{"o.png", 3 * 224, 224},
                                                                     {"s.png", 3 * 224, 224},
                                                                     {"d.png", 5 * 112, 112},
                                                                     {"f.png", 3 * 40, 2 * 40},
                                                                     {"c.png", 720, 700},
                                                                     {"maps/00-c1-28x28x6.png", 3 * 56, 2 * 56},
                                                                     {"maps/01-s4-5x5x16.png", 4 * 60, 4 * 60}};
  for (const auto& [name, min_width, min_height] : files) {
    const fs::path p = *dir_ / name;
    ASSERT_TRUE(fs::exists(p)) << name;
    const std::string bytes = testing::read_file(p);
    ASSERT_GT(bytes.size(), 24U);
    ASSERT_EQ(bytes.substr(0, 8), "\x89PNG\r\n\x1a\n") << name;
    auto be32 = [&](size_t at) {
      return static_cast<int64_t>(static_cast<uint8_t>(bytes[at]) << 24 | static_cast<uint8_t>(bytes[at + 1]) << 16 |
                                  static_cast<uint8_t>(bytes[at + 2]) << 8 | static_cast<uint8_t>(bytes[at + 3]));
    };
    const int64_t width = be32(16), height = be32(20);  // IHDR
    EXPECT_GE(width, min_width) << name;
    EXPECT_GE(height, min_height) << name;
    const Dataset back = read_single_image(p.string(), Shape{3, height, width});
    std::vector<uint32_t> seen;
    const size_t plane = static_cast<size_t>(width * height);
    for (size_t k = 0; k < plane; ++k) {
      seen.push_back(back.pixels[k] << 16 | back.pixels[plane + k] << 8 | back.pixels[2 * plane + k]);
    }
    std::sort(seen.begin(), seen.end());
    EXPECT_GT(std::unique(seen.begin(), seen.end()) - seen.begin(), 4) << name << " has content";
  }
  const auto unknown = run({"visualize", "deconv", run_dir, png.string(), "--layer", "c9"});
  EXPECT_EQ(unknown.code, 1);
  EXPECT_NE(unknown.err.find("no layer 'c9'"), std::string::npos) << unknown.err;
  const auto bad_class = run({"visualize", "occlusion", run_dir, png.string(), "--class", "Hat"});
  EXPECT_EQ(bad_class.code, 1);
  EXPECT_NE(bad_class.err.find("--class 'Hat'"), std::string::npos) << bad_class.err;
  const auto big_class = run({"visualize", "saliency", run_dir, png.string(), "--class", "10"});
  EXPECT_EQ(big_class.code, 1);
  EXPECT_NE(big_class.err.find("class 10 does not exist"), std::string::npos) << big_class.err;
  const auto no_metrics = run({"plot", png.string()});
  EXPECT_EQ(no_metrics.code, 1);
  EXPECT_NE(no_metrics.err.find("shirt.png:1: not a convnet metrics file"), std::string::npos) << no_metrics.err;
}

}  // namespace
}  // namespace convnet
