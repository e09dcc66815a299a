// Dataset readers on small files written in the real formats (IDX plain and gzip, CIFAR-10/100
// records, PNG/JPEG folders via Debian's stb_image_write), their IoErrors for bad input, format
// detection in load_dataset (including the real Fashion-MNIST when installed), and validation splits.
#include <gtest/gtest.h>

#include <set>

#include "convnet/data/dataset.hpp"
#include "convnet/error.hpp"
#include "support/data_files.hpp"

namespace convnet {
namespace {

using namespace convnet::testing;

const std::vector<std::string> kFashion = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                           "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

// ---- IDX ----

TEST(IdxTest, ReadsPlainFiles) {
  TempDir dir;
  write_file(dir.file("img"), idx_images(3, 2, 3));
  write_file(dir.file("lab"), idx_labels({0, 9, 4}));
  const Dataset d = read_idx(dir.file("img"), dir.file("lab"), digits(10));
  EXPECT_EQ(d.image_shape, (Shape{1, 2, 3}));
  EXPECT_EQ(d.size(), 3);
  EXPECT_EQ(d.image_size(), 6);
  EXPECT_EQ(d.labels, (std::vector<int64_t>{0, 9, 4}));
  ASSERT_EQ(d.pixels.size(), 18u);
  for (size_t k = 0; k < 18; ++k) EXPECT_EQ(d.pixels[k], k);
  EXPECT_EQ(d.class_names, digits(10));
}

TEST(IdxTest, ReadsGzipFilesByContentNotName) {
  TempDir dir;
  write_gz(dir.file("img.gz"), idx_images(2, 28, 28));
  write_gz(dir.file("lab-no-suffix"), idx_labels({7, 1}));  // gzip detected by its magic
  const Dataset d = read_idx(dir.file("img.gz"), dir.file("lab-no-suffix"), kFashion);
  EXPECT_EQ(d.image_shape, (Shape{1, 28, 28}));
  EXPECT_EQ(d.labels, (std::vector<int64_t>{7, 1}));
  ASSERT_EQ(d.pixels.size(), 2u * 784);
  EXPECT_EQ(d.pixels[783], 783 % 256);
  EXPECT_EQ(d.pixels[1000], 1000 % 256);
  EXPECT_EQ(d.class_names[9], "Ankle boot");
}

TEST(IdxTest, EmptyClassNamesAreNumbered) {
  TempDir dir;
  write_file(dir.file("img"), idx_images(2, 1, 1));
  write_file(dir.file("lab"), idx_labels({2, 4}));
  EXPECT_EQ(read_idx(dir.file("img"), dir.file("lab"), {}).class_names, digits(5));
}

TEST(IdxTest, MissingFile) {
  TempDir dir;
  write_file(dir.file("lab"), idx_labels({0}));
  expect_io_error([&] { (void)read_idx(dir.file("nope-images"), dir.file("lab"), digits(10)); },
                  {dir.file("nope-images"), "no such file"});
}

TEST(IdxTest, WrongMagicSaysExpectedAndFound) {
  TempDir dir;
  write_file(dir.file("lab"), idx_labels({0}));
  // The label file passed as the image file.
  expect_io_error([&] { (void)read_idx(dir.file("lab"), dir.file("lab"), digits(10)); },
                  {dir.file("lab"), "magic", "expected 0x00000803", "found 0x00000801"});
  write_file(dir.file("img"), idx_images(1, 2, 2));
  expect_io_error([&] { (void)read_idx(dir.file("img"), dir.file("img"), digits(10)); },
                  {dir.file("img"), "expected 0x00000801", "found 0x00000803"});
}

TEST(IdxTest, TruncatedFiles) {
  TempDir dir;
  Bytes images = idx_images(2, 2, 3);  // 16 + 12 bytes
  images.pop_back();
  write_file(dir.file("img"), images);
  write_file(dir.file("lab"), idx_labels({0, 1}));
  expect_io_error([&] { (void)read_idx(dir.file("img"), dir.file("lab"), digits(10)); },
                  {dir.file("img"), "truncated", "expected 28 bytes, found 27"});
  write_file(dir.file("img"), Bytes{0, 0, 8, 3, 0, 0});  // header cut short
  expect_io_error([&] { (void)read_idx(dir.file("img"), dir.file("lab"), digits(10)); },
                  {dir.file("img"), "truncated", "found 6"});
  write_file(dir.file("img"), idx_images(2, 2, 3));
  Bytes labels = idx_labels({0, 1});
  labels.pop_back();
  write_file(dir.file("lab"), labels);
  expect_io_error([&] { (void)read_idx(dir.file("img"), dir.file("lab"), digits(10)); },
                  {dir.file("lab"), "expected 10 bytes, found 9"});
}

TEST(IdxTest, TruncatedGzipStream) {
  TempDir dir;
  write_gz(dir.file("img.gz"), idx_images(50, 28, 28));
  Bytes gz = read_bytes(dir.file("img.gz"));
  gz.resize(gz.size() / 2);
  write_file(dir.file("cut.gz"), gz);
  write_file(dir.file("lab"), idx_labels(Bytes(50, 0)));
  expect_io_error([&] { (void)read_idx(dir.file("cut.gz"), dir.file("lab"), digits(10)); }, {dir.file("cut.gz")});
}

TEST(IdxTest, CountsThatDisagree) {
  TempDir dir;
  write_file(dir.file("img"), idx_images(3, 2, 2));
  write_file(dir.file("lab"), idx_labels({0, 1}));
  expect_io_error([&] { (void)read_idx(dir.file("img"), dir.file("lab"), digits(10)); },
                  {dir.file("lab"), "2 labels", "3 images"});
}

TEST(IdxTest, LabelOutOfRange) {
  TempDir dir;
  write_file(dir.file("img"), idx_images(3, 2, 2));
  write_file(dir.file("lab"), idx_labels({0, 10, 1}));
  expect_io_error([&] { (void)read_idx(dir.file("img"), dir.file("lab"), digits(10)); },
                  {dir.file("lab"), "label 10", "item 1", "out of range for 10 classes"});
}

// ---- CIFAR ----

TEST(CifarTest, ReadsCifar10RecordsAcrossFiles) {
  TempDir dir;
  write_file(dir.file("a.bin"), concat({cifar_record({3}, 0), cifar_record({9}, 1)}));
  write_file(dir.file("b.bin"), cifar_record({0}, 2));
  const Dataset d = read_cifar({dir.file("a.bin"), dir.file("b.bin")}, false, digits(10));
  EXPECT_EQ(d.image_shape, (Shape{3, 32, 32}));
  EXPECT_EQ(d.labels, (std::vector<int64_t>{3, 9, 0}));
  ASSERT_EQ(d.pixels.size(), 3u * 3072);
  EXPECT_EQ(d.pixels[0], 0);
  EXPECT_EQ(d.pixels[1024], 1024 % 256);  // first green value: planes are kept channel-major
  EXPECT_EQ(d.pixels[3072], 1);
  EXPECT_EQ(d.pixels[2 * 3072 + 5], 7);
}

TEST(CifarTest, ReadsCifar100FineLabel) {
  TempDir dir;
  write_file(dir.file("train.bin"), concat({cifar_record({3, 57}, 0), cifar_record({19, 99}, 0)}));
  const Dataset d = read_cifar({dir.file("train.bin")}, true, {});
  EXPECT_EQ(d.labels, (std::vector<int64_t>{57, 99}));
  EXPECT_EQ(d.class_names.size(), 100u);
  EXPECT_EQ(d.pixels.size(), 2u * 3072);
  EXPECT_EQ(d.pixels[3072 + 10], 10);
}

TEST(CifarTest, BadInput) {
  TempDir dir;
  Bytes cut = concat({cifar_record({1}, 0), cifar_record({1}, 0)});
  cut.resize(6000);
  write_file(dir.file("cut.bin"), cut);
  expect_io_error([&] { (void)read_cifar({dir.file("cut.bin")}, false, digits(10)); },
                  {dir.file("cut.bin"), "truncated", "expected 6146 bytes, found 6000"});
  write_file(dir.file("label.bin"), concat({cifar_record({1}, 0), cifar_record({10}, 0)}));
  expect_io_error([&] { (void)read_cifar({dir.file("label.bin")}, false, digits(10)); },
                  {dir.file("label.bin"), "label 10", "record 1", "out of range"});
  write_file(dir.file("coarse.bin"), cifar_record({20, 5}, 0));
  expect_io_error([&] { (void)read_cifar({dir.file("coarse.bin")}, true, {}); },
                  {dir.file("coarse.bin"), "coarse label 20"});
  write_file(dir.file("empty.bin"), {});
  expect_io_error([&] { (void)read_cifar({dir.file("empty.bin")}, false, digits(10)); }, {dir.file("empty.bin"), "empty"});
  expect_io_error([&] { (void)read_cifar({dir.file("gone.bin")}, false, digits(10)); }, {dir.file("gone.bin"), "no such file"});
}

// ---- image folders ----

TEST(ImageFolderTest, ReadsPngClassesSortedIntoPlanes) {
  TempDir dir;
  write_png(dir.file("dog/b.png"), 3, 2, 3, 100);
  write_png(dir.file("dog/a.png"), 3, 2, 3, 0);
  write_png(dir.file("cat/x.PNG"), 3, 2, 3, 7);
  write_file(dir.file("cat/notes.txt"), {'h', 'i'});  // not an image: ignored
  const Dataset d = read_image_folder(dir.path().string(), 3);
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(d.labels, (std::vector<int64_t>{0, 1, 1}));
  EXPECT_EQ(d.image_shape, (Shape{3, 2, 3}));
  ASSERT_EQ(d.pixels.size(), 3u * 18);
  auto at = [&](int n, int c, int y, int x) { return int{d.pixels[static_cast<size_t>(n * 18 + c * 6 + y * 3 + x)]}; };
  EXPECT_EQ(at(0, 0, 0, 0), 7);
  EXPECT_EQ(at(1, 0, 1, 2), 16);        // dog/a.png comes before dog/b.png
  EXPECT_EQ(at(1, 2, 1, 1), 10 + 3 + 100);
  EXPECT_EQ(at(2, 1, 0, 2), 100 + 6 + 50);
}

TEST(ImageFolderTest, ConvertsChannels) {
  TempDir dir;
  write_png(dir.file("only/g.png"), 4, 4, 1, 20);
  const Dataset grey = read_image_folder(dir.path().string(), 1);
  EXPECT_EQ(grey.image_shape, (Shape{1, 4, 4}));
  EXPECT_EQ(grey.pixels[5], 20 + 10 + 3);
  const Dataset rgb = read_image_folder(dir.path().string(), 3);
  EXPECT_EQ(rgb.image_shape, (Shape{3, 4, 4}));
  EXPECT_EQ(rgb.pixels[16 * 2 + 5], 20 + 10 + 3);  // grey replicated into blue
}

TEST(ImageFolderTest, ReadsJpeg) {
  TempDir dir;
  fs::create_directories(dir.path() / "a");
  Bytes flat;
  for (int k = 0; k < 8 * 8; ++k) flat.insert(flat.end(), {200, 100, 30});
  ASSERT_NE(stbi_write_jpg(dir.file("a/flat.jpg").c_str(), 8, 8, 3, flat.data(), 100), 0);
  const Dataset d = read_image_folder(dir.path().string(), 3);
  EXPECT_EQ(d.image_shape, (Shape{3, 8, 8}));
  EXPECT_NEAR(d.pixels[0], 200, 4);
  EXPECT_NEAR(d.pixels[64 + 9], 100, 4);
  EXPECT_NEAR(d.pixels[128 + 63], 30, 4);
}

TEST(ImageFolderTest, BadInput) {
  TempDir dir;
  const std::string root = dir.path().string();
  expect_io_error([&] { (void)read_image_folder(root, 3); }, {root, "empty folder"});
  expect_io_error([&] { (void)read_image_folder(dir.file("absent"), 3); }, {dir.file("absent"), "no such folder"});

  write_png(dir.file("a/1.png"), 4, 4, 3, 0);
  fs::create_directories(dir.path() / "b");
  expect_io_error([&] { (void)read_image_folder(root, 3); }, {dir.file("b"), "without images"});

  write_png(dir.file("b/1.png"), 5, 4, 3, 0);
  expect_io_error([&] { (void)read_image_folder(root, 3); }, {dir.file("b/1.png"), "5x4", dir.file("a/1.png"), "4x4"});

  write_png(dir.file("b/1.png"), 4, 4, 3, 0);
  write_file(dir.file("b/2.jpg"), {'n', 'o', 't', ' ', 'j', 'p', 'e', 'g'});
  expect_io_error([&] { (void)read_image_folder(root, 3); }, {dir.file("b/2.jpg"), "not a PNG or JPEG image"});
  write_file(dir.file("b/2.jpg"), {0xff, 0xd8, 0xff, 0xe0, 0, 2});  // a JPEG's signature, then nothing
  expect_io_error([&] { (void)read_image_folder(root, 3); }, {dir.file("b/2.jpg"), "corrupt"});
}

TEST(ImageFolderTest, ReadSingleImageConvertsAndResizes) {
  TempDir dir;
  write_png(dir.file("g.png"), 4, 4, 1, 0);  // pixel (y, x) = 10y + 3x
  const Dataset same = read_single_image(dir.file("g.png"), Shape{1, 4, 4});
  EXPECT_EQ(same.size(), 1);
  EXPECT_EQ(same.image_shape, (Shape{1, 4, 4}));
  EXPECT_EQ(same.pixels[6], 10 + 6);
  const Dataset half = read_single_image(dir.file("g.png"), Shape{3, 2, 2});
  EXPECT_EQ(half.image_shape, (Shape{3, 2, 2}));
  ASSERT_EQ(half.pixels.size(), 12u);
  EXPECT_EQ(half.pixels[0], 7);           // mean of 0, 3, 10, 13 (6.5, rounded)
  EXPECT_EQ(half.pixels[4 + 3], 20 + 6 + 7);  // bottom-right, green plane
  const Dataset up = read_single_image(dir.file("g.png"), Shape{1, 8, 8});
  EXPECT_EQ(up.pixels[0], 0);             // edges clamp
  EXPECT_EQ(up.pixels[63], 39);

  write_file(dir.file("bad.png"), {1, 2, 3});
  expect_io_error([&] { (void)read_single_image(dir.file("bad.png"), Shape{1, 4, 4}); }, {dir.file("bad.png"), "not a PNG or JPEG"});
  expect_io_error([&] { (void)read_single_image(dir.file("none.png"), Shape{1, 4, 4}); }, {dir.file("none.png"), "no such file"});
}

// ---- load_dataset ----

void write_idx_set(const TempDir& dir, const std::string& sub, bool gz) {
  const auto put = [&](const std::string& name, const Bytes& bytes) {
    fs::create_directories(dir.path() / sub);
    if (gz) write_gz(dir.file(sub + "/" + name + ".gz"), bytes);
    else write_file(dir.file(sub + "/" + name), bytes);
  };
  put("train-images-idx3-ubyte", idx_images(4, 5, 5));
  put("train-labels-idx1-ubyte", idx_labels({0, 1, 2, 9}));
  put("t10k-images-idx3-ubyte", idx_images(2, 5, 5));
  put("t10k-labels-idx1-ubyte", idx_labels({3, 4}));
}

TEST(DatasetTest, LoadsIdxFolders) {
  TempDir dir;
  write_idx_set(dir, "my-fashion-set", true);
  DataSplits s = load_dataset(dir.file("my-fashion-set"));
  EXPECT_EQ(s.train.name, "my-fashion-set/train");
  EXPECT_EQ(s.test.name, "my-fashion-set/test");
  EXPECT_EQ(s.train.size(), 4);
  EXPECT_EQ(s.test.size(), 2);
  EXPECT_EQ(s.train.image_shape, (Shape{1, 5, 5}));
  EXPECT_EQ(s.train.class_names, kFashion);

  write_idx_set(dir, "mnist", false);
  s = load_dataset(dir.file("mnist") + "/");
  EXPECT_EQ(s.train.name, "mnist/train");
  EXPECT_EQ(s.test.class_names, digits(10));
  EXPECT_EQ(s.test.labels, (std::vector<int64_t>{3, 4}));

  fs::remove(dir.file("mnist/t10k-labels-idx1-ubyte"));
  expect_io_error([&] { (void)load_dataset(dir.file("mnist")); }, {dir.file("mnist"), "t10k-labels-idx1-ubyte"});
}

TEST(DatasetTest, LoadsCifar10) {
  TempDir dir;
  for (int i = 1; i <= 5; ++i) {
    write_file(dir.file("c10/data_batch_" + std::to_string(i) + ".bin"), cifar_record({static_cast<uint8_t>(i)}, i));
  }
  write_file(dir.file("c10/test_batch.bin"), concat({cifar_record({0}, 0), cifar_record({9}, 0)}));
  DataSplits s = load_dataset(dir.file("c10"));
  EXPECT_EQ(s.train.size(), 5);
  EXPECT_EQ(s.train.labels, (std::vector<int64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(s.test.size(), 2);
  EXPECT_EQ(s.train.image_shape, (Shape{3, 32, 32}));
  EXPECT_EQ(s.train.class_names[0], "airplane");
  EXPECT_EQ(s.train.class_names[9], "truck");

  std::ofstream(dir.file("c10/batches.meta.txt")) << "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n";
  s = load_dataset(dir.file("c10"));
  EXPECT_EQ(s.test.class_names, (std::vector<std::string>{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}));

  fs::rename(dir.file("c10"), dir.file("cifar-10-batches-bin"));  // the archive's own folder, one level down
  fs::create_directories(dir.path() / "outer");
  fs::rename(dir.file("cifar-10-batches-bin"), dir.file("outer/cifar-10-batches-bin"));
  EXPECT_EQ(load_dataset(dir.file("outer")).train.size(), 5);

  fs::remove(dir.file("outer/cifar-10-batches-bin/data_batch_3.bin"));
  expect_io_error([&] { (void)load_dataset(dir.file("outer")); }, {"cifar-10-batches-bin", "data_batch_3.bin"});
}

TEST(DatasetTest, LoadsCifar100) {
  TempDir dir;
  write_file(dir.file("train.bin"), concat({cifar_record({1, 42}, 0), cifar_record({2, 0}, 0)}));
  write_file(dir.file("test.bin"), cifar_record({3, 99}, 0));
  DataSplits s = load_dataset(dir.path().string());
  EXPECT_EQ(s.train.labels, (std::vector<int64_t>{42, 0}));
  EXPECT_EQ(s.test.labels, (std::vector<int64_t>{99}));
  EXPECT_EQ(s.train.class_names, digits(100));
  std::ofstream names(dir.file("fine_label_names.txt"));
  for (int i = 0; i < 100; ++i) names << "class" << i << "\n";
  names.close();
  s = load_dataset(dir.path().string());
  EXPECT_EQ(s.test.class_names[99], "class99");
}

TEST(DatasetTest, LoadsImageFolders) {
  TempDir dir;
  for (const char* split : {"train", "test"}) {
    write_png(dir.file(std::string(split) + "/circle/1.png"), 6, 6, 1, 0);
    write_png(dir.file(std::string(split) + "/square/1.png"), 6, 6, 1, 9);
  }
  write_png(dir.file("train/square/2.png"), 6, 6, 1, 9);
  const DataSplits s = load_dataset(dir.path().string());
  EXPECT_EQ(s.train.image_shape, (Shape{1, 6, 6}));  // grey files decode to one channel
  EXPECT_EQ(s.train.labels, (std::vector<int64_t>{0, 1, 1}));
  EXPECT_EQ(s.test.size(), 2);
  EXPECT_EQ(s.test.class_names, (std::vector<std::string>{"circle", "square"}));
  fs::remove_all(dir.path() / "test");
  expect_io_error([&] { (void)load_dataset(dir.path().string()); }, {dir.path().string(), "test/"});
}

TEST(DatasetTest, UnknownFolderListsWhatItLookedFor) {
  TempDir dir;
  write_file(dir.file("readme.txt"), {'x'});
  expect_io_error([&] { (void)load_dataset(dir.path().string()); },
                  {dir.path().string(), "train-images-idx3-ubyte", "data_batch_1.bin", "train.bin", "train/"});
  expect_io_error([&] { (void)load_dataset(dir.file("absent")); }, {dir.file("absent"), "no such folder"});
}

TEST(DatasetTest, RealFashionMnist) {
  if (!fs::exists(kDefaultDataPath)) GTEST_SKIP() << kDefaultDataPath << " is not installed";
  const DataSplits s = load_dataset(kDefaultDataPath);
  EXPECT_EQ(s.train.name, "fashion-mnist/train");
  EXPECT_EQ(s.train.size(), 60000);
  EXPECT_EQ(s.test.size(), 10000);
  EXPECT_EQ(s.train.image_shape, (Shape{1, 28, 28}));
  EXPECT_EQ(s.test.image_shape, (Shape{1, 28, 28}));
  EXPECT_EQ(s.train.pixels.size(), 60000u * 784);
  EXPECT_EQ(s.train.class_names, kFashion);
  EXPECT_EQ(s.train.labels[0], 9);  // the first training image is an ankle boot
  EXPECT_EQ(s.test.labels[1], 2);
  std::vector<int64_t> per_class(10, 0);
  for (const int64_t label : s.train.labels) ++per_class[static_cast<size_t>(label)];
  EXPECT_EQ(per_class, std::vector<int64_t>(10, 6000));
}

// ---- split_validation ----

Dataset numbered(int n) {
  Dataset d;
  d.name = "toy/train";
  d.image_shape = Shape{1, 1, 2};
  d.class_names = digits(10);
  for (int i = 0; i < n; ++i) {
    d.labels.push_back(i % 10);
    d.pixels.insert(d.pixels.end(), {static_cast<uint8_t>(i), static_cast<uint8_t>(i)});
  }
  return d;
}

TEST(DatasetTest, SplitValidationSizesAndContent) {
  Dataset data = numbered(100);
  const Dataset val = split_validation(data, 0.2, 7);
  EXPECT_EQ(val.size(), 20);
  EXPECT_EQ(data.size(), 80);
  EXPECT_EQ(val.name, "toy/validation");
  EXPECT_EQ(data.name, "toy/train");
  EXPECT_EQ(val.image_shape, data.image_shape);
  EXPECT_EQ(val.class_names, digits(10));
  EXPECT_EQ(data.class_names, digits(10));
  std::set<int> seen;
  for (const Dataset* d : {static_cast<const Dataset*>(&data), &val}) {
    ASSERT_EQ(d->pixels.size(), static_cast<size_t>(d->size()) * 2);
    for (int64_t i = 0; i < d->size(); ++i) {
      const int id = d->pixels[static_cast<size_t>(2 * i)];
      EXPECT_EQ(d->labels[static_cast<size_t>(i)], id % 10);  // pixels and labels moved together
      if (i > 0) {
        EXPECT_GT(id, d->pixels[static_cast<size_t>(2 * i - 2)]);  // original order kept
      }
      seen.insert(id);
    }
  }
  EXPECT_EQ(seen.size(), 100u);
}

TEST(DatasetTest, SplitValidationIsDeterministicForTheSeed) {
  Dataset a = numbered(500);
  Dataset b = numbered(500);
  Dataset c = numbered(500);
  const Dataset va = split_validation(a, 0.1, 42);
  const Dataset vb = split_validation(b, 0.1, 42);
  const Dataset vc = split_validation(c, 0.1, 43);
  EXPECT_EQ(va.pixels, vb.pixels);
  EXPECT_EQ(a.pixels, b.pixels);
  EXPECT_NE(va.pixels, vc.pixels);
  EXPECT_EQ(vc.size(), 50);

  Dataset d = numbered(10);
  EXPECT_EQ(split_validation(d, 0.0, 1).size(), 0);
  EXPECT_EQ(d.size(), 10);
  EXPECT_THROW((void)split_validation(d, 1.0, 1), Error);
  EXPECT_THROW((void)split_validation(d, -0.5, 1), Error);
}

}  // namespace
}  // namespace convnet
