// Normalisation values by hand, its JSON form, and BatchLoader: batch counts, shuffles, seeded
// augmentation (crop, flip, PCA lighting), resuming mid-epoch, worker errors and early destruction.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>
#include <utility>
#include <vector>

#include "convnet/data/loader.hpp"
#include "convnet/error.hpp"

namespace convnet {
namespace {

/// n images of (c, h, w); pixel p of image i is (i * 7 + p * 13) % 256, label i.
Dataset synthetic(int64_t n, int64_t c, int64_t h, int64_t w) {
  Dataset data;
  data.name = "synthetic";
  data.image_shape = Shape{c, h, w};
  const int64_t size = c * h * w;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t p = 0; p < size; ++p) data.pixels.push_back(static_cast<uint8_t>((i * 7 + p * 13) % 256));
    data.labels.push_back(i);
  }
  data.class_names.resize(static_cast<size_t>(n));
  return data;
}

/// Two images of 2x1x2: channel 0 = {0, 255} and {255, 255}; channel 1 = {51, 51} and {102, 102}.
Dataset two_images() {
  Dataset data;
  data.name = "two";
  data.image_shape = Shape{2, 1, 2};
  data.pixels = {0, 255, 51, 51, 255, 255, 102, 102};
  data.labels = {0, 1};
  data.class_names = {"a", "b"};
  return data;
}

struct Epoch {
  std::vector<Tensor> images;
  std::vector<std::vector<int64_t>> labels;
};

Epoch run(const Dataset& data, const Normalization& norm, const LoaderOptions& options, int64_t epoch,
          int64_t first_batch = 0) {
  BatchLoader loader(data, norm, options, epoch, first_batch);
  Epoch result;
  Tensor images;
  std::vector<int64_t> labels;
  while (loader.next(images, labels)) {
    result.images.push_back(images);
    result.labels.push_back(labels);
  }
  return result;
}

bool identical(const Tensor& a, const Tensor& b) {
  return a.dims() == b.dims() && std::memcmp(a.data(), b.data(), static_cast<size_t>(a.numel()) * sizeof(float)) == 0;
}

std::vector<int64_t> flat_labels(const Epoch& e) {
  std::vector<int64_t> all;
  for (const auto& l : e.labels) all.insert(all.end(), l.begin(), l.end());
  return all;
}

Normalization none() {
  Normalization norm;
  norm.mode = Normalization::Mode::None;
  return norm;
}

TEST(NormalizationTest, PerChannelMeanAndStdByHand) {
  const Dataset data = two_images();
  const Normalization mean_only = compute_normalization(data, Normalization::Mode::PerChannel, false);
  ASSERT_EQ(mean_only.mean.size(), 2u);
  EXPECT_NEAR(mean_only.mean[0], 0.75, 1e-6);  // (0 + 1 + 1 + 1) / 4
  EXPECT_NEAR(mean_only.mean[1], 0.3, 1e-6);   // (0.2 + 0.2 + 0.4 + 0.4) / 4
  EXPECT_TRUE(mean_only.std.empty());

  const Normalization norm = compute_normalization(data, Normalization::Mode::PerChannel, true);
  ASSERT_EQ(norm.std.size(), 2u);
  EXPECT_NEAR(norm.std[0], std::sqrt(0.1875), 1e-6);  // (0.75^2 + 3 * 0.25^2) / 4
  EXPECT_NEAR(norm.std[1], 0.1, 1e-6);

  float out[4];
  normalized_image(data, 0, norm, out);
  EXPECT_NEAR(out[0], (0.0 - 0.75) / std::sqrt(0.1875), 1e-5);
  EXPECT_NEAR(out[1], (1.0 - 0.75) / std::sqrt(0.1875), 1e-5);
  EXPECT_NEAR(out[2], -1.0, 1e-5);  // (0.2 - 0.3) / 0.1
  EXPECT_NEAR(out[3], -1.0, 1e-5);
}

TEST(NormalizationTest, MeanImageAndResidualStdByHand) {
  const Dataset data = two_images();
  const Normalization norm = compute_normalization(data, Normalization::Mode::MeanImage, true);
  ASSERT_EQ(norm.mean.size(), 4u);
  EXPECT_NEAR(norm.mean[0], 0.5, 1e-6);
  EXPECT_NEAR(norm.mean[1], 1.0, 1e-6);
  EXPECT_NEAR(norm.mean[2], 0.3, 1e-6);
  EXPECT_NEAR(norm.mean[3], 0.3, 1e-6);
  ASSERT_EQ(norm.std.size(), 2u);
  EXPECT_NEAR(norm.std[0], std::sqrt(0.125), 1e-6);  // residuals -0.5, 0, 0.5, 0
  EXPECT_NEAR(norm.std[1], 0.1, 1e-6);

  const Normalization mean_only = compute_normalization(data, Normalization::Mode::MeanImage, false);
  EXPECT_TRUE(mean_only.std.empty());
  float out[4];
  normalized_image(data, 1, mean_only, out);
  EXPECT_NEAR(out[0], 0.5, 1e-6);
  EXPECT_NEAR(out[1], 0.0, 1e-6);
  EXPECT_NEAR(out[2], 0.1, 1e-6);
  EXPECT_NEAR(out[3], 0.1, 1e-6);
}

TEST(NormalizationTest, NoneAndConstantChannel) {
  Dataset data = two_images();
  float out[4];
  normalized_image(data, 0, none(), out);
  EXPECT_FLOAT_EQ(out[1], 1.0f);
  EXPECT_FLOAT_EQ(out[2], 0.2f);
  EXPECT_TRUE(compute_normalization(data, Normalization::Mode::None, true).mean.empty());

  data.pixels = {9, 9, 1, 2, 9, 9, 3, 4};  // channel 0 is constant: its std becomes 1
  const Normalization norm = compute_normalization(data, Normalization::Mode::PerChannel, true);
  EXPECT_EQ(norm.std[0], 1.0f);
  EXPECT_GT(norm.std[1], 0.0f);
  Dataset empty;
  empty.image_shape = Shape{1, 1, 1};
  EXPECT_THROW((void)compute_normalization(empty, Normalization::Mode::PerChannel, false), Error);
}

TEST(NormalizationTest, JsonRoundTrip) {
  const Dataset data = two_images();
  for (auto mode : {Normalization::Mode::None, Normalization::Mode::MeanImage, Normalization::Mode::PerChannel}) {
    for (bool divide : {false, true}) {
      const Normalization norm = compute_normalization(data, mode, divide);
      const Normalization back = Normalization::from_json(nlohmann::json::parse(norm.to_json().dump()));
      EXPECT_EQ(back.mode, norm.mode);
      EXPECT_EQ(back.mean, norm.mean);  // bit-exact: float -> double -> float
      EXPECT_EQ(back.std, norm.std);
    }
  }
  const nlohmann::json j = compute_normalization(data, Normalization::Mode::PerChannel, true).to_json();
  EXPECT_EQ(j.at("mode"), "per_channel");
  EXPECT_EQ(compute_normalization(data, Normalization::Mode::MeanImage, false).to_json().at("mode"), "mean_image");
  EXPECT_EQ(none().to_json().at("mode"), "none");
}

TEST(NormalizationTest, BadJsonIsIoError) {
  const char* bad[] = {
      R"([1, 2])",
      R"({"mean": [0.5], "std": []})",
      R"({"mode": 3, "mean": [0.5], "std": []})",
      R"({"mode": "per_pixel", "mean": [0.5], "std": []})",
      R"({"mode": "per_channel", "std": []})",
      R"({"mode": "per_channel", "mean": 0.5, "std": []})",
      R"({"mode": "per_channel", "mean": ["a"], "std": []})",
      R"({"mode": "per_channel", "mean": [0.5]})",
      R"({"mode": "per_channel", "mean": [0.5], "std": [-1]})",
      R"({"mode": "per_channel", "mean": [0.5], "std": [0]})",
      R"({"mode": "per_channel", "mean": [0.5, 0.4], "std": [1]})",
      R"({"mode": "per_channel", "mean": [], "std": []})",
      R"({"mode": "mean_image", "mean": [0.5, 0.4, 0.3], "std": [1, 1]})",
      R"({"mode": "none", "mean": [0.5], "std": []})",
      R"({"mode": "per_channel", "mean": [1e300], "std": []})",
  };
  for (const char* text : bad) EXPECT_THROW((void)Normalization::from_json(nlohmann::json::parse(text)), IoError) << text;
}

TEST(NormalizationTest, MismatchedShapeIsShapeError) {
  const Dataset data = two_images();
  Normalization norm = compute_normalization(data, Normalization::Mode::PerChannel, true);
  norm.mean.push_back(0.0f);
  EXPECT_THROW(check_normalization(norm, data.image_shape), ShapeError);
  EXPECT_THROW(BatchLoader(data, norm, LoaderOptions{}, 0), ShapeError);
  float out[4];
  EXPECT_THROW(normalized_image(data, 0, norm, out), ShapeError);
}

TEST(LoaderTest, BatchShapesCountsAndPartialLastBatch) {
  const Dataset data = synthetic(10, 3, 4, 5);
  LoaderOptions options{.batch_size = 4};
  BatchLoader loader(data, none(), options, 0);
  EXPECT_EQ(loader.batches_per_epoch(), 3);
  Tensor images;
  std::vector<int64_t> labels;
  const int64_t sizes[] = {4, 4, 2};
  for (int64_t b = 0; b < 3; ++b) {
    EXPECT_EQ(loader.position(), b);
    ASSERT_TRUE(loader.next(images, labels));
    EXPECT_EQ(images.dims(), (std::vector<int64_t>{sizes[b], 3, 4, 5}));
    EXPECT_EQ(static_cast<int64_t>(labels.size()), sizes[b]);
  }
  EXPECT_FALSE(loader.next(images, labels));
  EXPECT_FALSE(loader.next(images, labels));

  options.drop_last = true;
  const Epoch dropped = run(data, none(), options, 0);
  EXPECT_EQ(dropped.images.size(), 2u);
  options.batch_size = 5;  // divides exactly: nothing to drop
  EXPECT_EQ(run(data, none(), options, 0).images.size(), 2u);
  options.batch_size = 11;
  EXPECT_EQ(run(data, none(), options, 0).images.size(), 0u);
  EXPECT_THROW(BatchLoader(data, none(), LoaderOptions{.batch_size = 0}, 0), Error);
  EXPECT_THROW(BatchLoader(data, none(), LoaderOptions{.batch_size = 4}, 0, 4), Error);
  EXPECT_THROW(BatchLoader(data, none(), LoaderOptions{.batch_size = 4}, 0, -1), Error);
}

TEST(LoaderTest, EverySampleOncePerEpochWithItsImage) {
  const Dataset data = synthetic(37, 2, 3, 3);
  const Normalization norm = compute_normalization(data, Normalization::Mode::PerChannel, true);
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    const Epoch e = run(data, norm, LoaderOptions{.batch_size = 5, .seed = 11}, epoch);
    std::vector<int64_t> seen = flat_labels(e);
    std::vector<float> expected(18);
    int64_t k = 0;
    for (size_t b = 0; b < e.images.size(); ++b) {
      for (size_t i = 0; i < e.labels[b].size(); ++i, ++k) {
        normalized_image(data, e.labels[b][i], norm, expected.data());
        EXPECT_EQ(std::memcmp(expected.data(), e.images[b].data() + i * 18, 18 * sizeof(float)), 0);
      }
    }
    std::sort(seen.begin(), seen.end());
    std::vector<int64_t> all(37);
    for (int64_t i = 0; i < 37; ++i) all[i] = i;
    EXPECT_EQ(seen, all);
  }
}

TEST(LoaderTest, ShuffleDependsOnSeedAndEpochOnly) {
  const Dataset data = synthetic(50, 1, 2, 2);
  const LoaderOptions options{.batch_size = 8, .seed = 3};
  const auto e0 = flat_labels(run(data, none(), options, 0));
  EXPECT_EQ(e0, flat_labels(run(data, none(), options, 0)));
  EXPECT_NE(e0, flat_labels(run(data, none(), options, 1)));
  EXPECT_NE(e0, flat_labels(run(data, none(), LoaderOptions{.batch_size = 8, .seed = 4}, 0)));
  EXPECT_EQ(e0, flat_labels(run(data, none(), LoaderOptions{.batch_size = 13, .seed = 3, .prefetch = 1}, 0)));

  const auto in_order = flat_labels(run(data, none(), LoaderOptions{.batch_size = 8, .shuffle = false}, 5));
  for (int64_t i = 0; i < 50; ++i) EXPECT_EQ(in_order[i], i);
}

TEST(LoaderTest, AugmentationIsDeterministic) {
  const Dataset data = synthetic(30, 3, 6, 6);
  const Normalization norm = compute_normalization(data, Normalization::Mode::PerChannel, true);
  const AugmentOptions augment{.crop_padding = 2, .horizontal_flip = true, .pca_lighting = 0.1f};
  const LoaderOptions options{.batch_size = 7, .augment = augment, .seed = 5, .prefetch = 1};
  LoaderOptions other = options;
  other.prefetch = 4;  // thread timing must not matter
  const Epoch a = run(data, norm, options, 2);
  const Epoch b = run(data, norm, other, 2);
  ASSERT_EQ(a.images.size(), 5u);
  ASSERT_EQ(b.images.size(), 5u);
  for (size_t i = 0; i < a.images.size(); ++i) {
    EXPECT_TRUE(identical(a.images[i], b.images[i])) << "batch " << i;
    EXPECT_EQ(a.labels[i], b.labels[i]);
  }
  other.seed = 6;
  other.shuffle = false;
  LoaderOptions unshuffled = options;
  unshuffled.shuffle = false;
  const Epoch c = run(data, norm, unshuffled, 2);
  const Epoch d = run(data, norm, other, 2);
  bool differs = false;
  for (size_t i = 0; i < c.images.size(); ++i) differs = differs || !identical(c.images[i], d.images[i]);
  EXPECT_TRUE(differs);
  // Same sample, other epoch: other augmentation.
  const Epoch e = run(data, norm, unshuffled, 3);
  differs = false;
  for (size_t i = 0; i < c.images.size(); ++i) differs = differs || !identical(c.images[i], e.images[i]);
  EXPECT_TRUE(differs);
}

TEST(LoaderTest, ResumeYieldsTheRemainingBatches) {
  const Dataset data = synthetic(45, 3, 5, 5);
  const Normalization norm = compute_normalization(data, Normalization::Mode::MeanImage, true);
  const LoaderOptions options{
      .batch_size = 6, .augment = {.crop_padding = 1, .horizontal_flip = true, .pca_lighting = 0.1f}, .seed = 9};
  const Epoch full = run(data, norm, options, 4);
  ASSERT_EQ(full.images.size(), 8u);
  for (int64_t k : {1, 3, 7, 8}) {
    BatchLoader loader(data, norm, options, 4, k);
    EXPECT_EQ(loader.position(), k);
    Tensor images;
    std::vector<int64_t> labels;
    for (int64_t b = k; b < 8; ++b) {
      ASSERT_TRUE(loader.next(images, labels));
      EXPECT_TRUE(identical(images, full.images[b])) << "k " << k << " batch " << b;
      EXPECT_EQ(labels, full.labels[b]);
    }
    EXPECT_FALSE(loader.next(images, labels));
  }
}

TEST(AugmentTest, CropWithPaddingShiftsContent) {
  const Shape shape{1, 3, 3};
  const std::vector<float> original = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  std::vector<float> image = original;
  crop_with_padding(image.data(), shape, 1, 0, 0);  // content moves down-right by one
  EXPECT_EQ(image, (std::vector<float>{0, 0, 0, 0, 1, 2, 0, 4, 5}));
  image = original;
  crop_with_padding(image.data(), shape, 1, 2, 1);  // content moves up by one
  EXPECT_EQ(image, (std::vector<float>{4, 5, 6, 7, 8, 9, 0, 0, 0}));
  image = original;
  crop_with_padding(image.data(), shape, 1, 1, 1);  // centred: unchanged
  EXPECT_EQ(image, original);
  image = original;
  crop_with_padding(image.data(), shape, 2, 4, 0);  // down-left corner of the padded image
  EXPECT_EQ(image, (std::vector<float>{0, 0, 7, 0, 0, 0, 0, 0, 0}));
  EXPECT_THROW(crop_with_padding(image.data(), shape, 1, 3, 0), Error);
}

TEST(AugmentTest, FlipMirrorsEveryRow) {
  std::vector<float> image = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  flip_horizontal(image.data(), Shape{2, 2, 3});
  EXPECT_EQ(image, (std::vector<float>{3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10}));
}

TEST(AugmentTest, PcaLightingAddsTheEigenvectorShift) {
  std::vector<float> image(3 * 2, 0.0f);
  const float alpha[3] = {1.0f, 0.0f, 0.0f};
  add_pca_lighting(image.data(), Shape{3, 1, 2}, alpha, {});
  EXPECT_FLOAT_EQ(image[0], -0.5675f * 0.2175f);
  EXPECT_FLOAT_EQ(image[1], -0.5675f * 0.2175f);
  EXPECT_FLOAT_EQ(image[2], -0.5808f * 0.2175f);
  EXPECT_FLOAT_EQ(image[4], -0.5836f * 0.2175f);
  std::fill(image.begin(), image.end(), 0.0f);
  const float beta[3] = {0.0f, 2.0f, 0.0f};
  add_pca_lighting(image.data(), Shape{3, 1, 2}, beta, {0.5f, 0.25f, 2.0f});  // shifts in normalised units
  EXPECT_FLOAT_EQ(image[0], 0.7192f * 2 * 0.0188f / 0.5f);
  EXPECT_FLOAT_EQ(image[2], -0.0045f * 2 * 0.0188f / 0.25f);
  EXPECT_FLOAT_EQ(image[5], -0.6948f * 2 * 0.0188f / 2.0f);
  EXPECT_THROW(add_pca_lighting(image.data(), Shape{1, 2, 3}, alpha, {}), ShapeError);
}

TEST(AugmentTest, LoaderCropsAndFlipsAsTheStepsDo) {
  Dataset data;
  data.image_shape = Shape{1, 4, 4};
  for (int p = 0; p < 16; ++p) data.pixels.push_back(static_cast<uint8_t>(10 + p));
  data.labels = {0};
  std::vector<float> original(16);
  normalized_image(data, 0, none(), original.data());

  std::set<std::pair<int64_t, int64_t>> offsets;
  const LoaderOptions crop{.batch_size = 1, .augment = {.crop_padding = 1}};
  for (int64_t epoch = 0; epoch < 60; ++epoch) {
    const Epoch e = run(data, none(), crop, epoch);
    bool matched = false;
    for (int64_t dy = 0; dy <= 2; ++dy) {
      for (int64_t dx = 0; dx <= 2; ++dx) {
        std::vector<float> expected = original;
        crop_with_padding(expected.data(), data.image_shape, 1, dy, dx);
        if (std::memcmp(expected.data(), e.images[0].data(), 16 * sizeof(float)) == 0) {
          offsets.insert({dy, dx});
          matched = true;
        }
      }
    }
    EXPECT_TRUE(matched) << "epoch " << epoch;
  }
  EXPECT_EQ(offsets.size(), 9u);  // 60 draws from 9 offsets

  std::vector<float> mirrored = original;
  flip_horizontal(mirrored.data(), data.image_shape);
  int flipped = 0;
  const LoaderOptions flip{.batch_size = 1, .augment = {.horizontal_flip = true}};
  for (int64_t epoch = 0; epoch < 40; ++epoch) {
    const Epoch e = run(data, none(), flip, epoch);
    const bool same = std::memcmp(original.data(), e.images[0].data(), 16 * sizeof(float)) == 0;
    const bool mirror = std::memcmp(mirrored.data(), e.images[0].data(), 16 * sizeof(float)) == 0;
    EXPECT_TRUE(same || mirror);
    flipped += mirror ? 1 : 0;
  }
  EXPECT_GT(flipped, 5);
  EXPECT_LT(flipped, 35);

  // PCA lighting is skipped for images that are not 3-channel.
  const Epoch lit = run(data, none(), LoaderOptions{.batch_size = 1, .augment = {.pca_lighting = 0.5f}}, 0);
  EXPECT_EQ(std::memcmp(original.data(), lit.images[0].data(), 16 * sizeof(float)), 0);
}

TEST(LoaderTest, DestroyingMidEpochStopsTheWorker) {
  const Dataset data = synthetic(2000, 3, 8, 8);
  const LoaderOptions options{.batch_size = 10, .augment = {.crop_padding = 2, .horizontal_flip = true}, .prefetch = 3};
  for (int round = 0; round < 20; ++round) {
    BatchLoader loader(data, none(), options, round);
    Tensor images;
    std::vector<int64_t> labels;
    for (int b = 0; b < round % 4; ++b) ASSERT_TRUE(loader.next(images, labels));
  }  // each loader is destroyed with batches ready and the worker waiting or working
}

TEST(LoaderTest, WorkerErrorsAreThrownByNext) {
  // Empty (0x1x1) images pass the loader's checks but fail when a batch is prepared.
  Dataset data;
  data.image_shape = Shape{0, 1, 1};
  data.labels = {0, 1, 2};
  BatchLoader loader(data, none(), LoaderOptions{.batch_size = 2}, 0);
  Tensor images;
  std::vector<int64_t> labels;
  EXPECT_THROW(loader.next(images, labels), Error);
  EXPECT_THROW(loader.next(images, labels), Error);  // still failed, not hung
}

}  // namespace
}  // namespace convnet
