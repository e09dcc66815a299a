// Dataset format detection (load_dataset), validation splits, and the file reading shared by the
// IDX and CIFAR readers. The readers themselves are in idx.cpp, cifar.cpp and image_folder.cpp.
#include "convnet/data/dataset.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <random>
#include <sstream>
#include <string_view>

#include "convnet/data/internal.hpp"
#include "convnet/error.hpp"
#include "convnet/text.hpp"
#include "convnet/io/input_file.hpp"

namespace convnet {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kFashionNames = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
constexpr uint64_t kMaxNamesBytes = uint64_t{1} << 20;
const std::vector<std::string> kCifar10Names = {"airplane", "automobile", "bird",  "cat",  "deer",
                                                "dog",      "frog",       "horse", "ship", "truck"};

// Present and not a folder: a FIFO or device under a dataset file's name is found here and then
// refused by the reader with a message saying what it is.
bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec) && !fs::is_directory(p, ec);
}

bool is_folder(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// The first existing IDX file among the usual spellings ("train-images-idx3-ubyte", the
// "train-images.idx3-ubyte" of some mirrors, each optionally ".gz").
std::optional<fs::path> find_idx(const fs::path& dir, const std::string& split, const std::string& kind,
                                 const std::string& idx) {
  for (const char* sep : {"-", "."}) {
    for (const char* gz : {"", ".gz"}) {
      const fs::path p = dir / (split + "-" + kind + sep + idx + "-ubyte" + gz);
      if (is_file(p)) return p;
    }
  }
  return std::nullopt;
}

// Non-empty trimmed lines of a text file (CIFAR's batches.meta.txt / fine_label_names.txt).
// Checked for UTF-8 (they go into the checkpoint's JSON) and for at least one name.
std::vector<std::string> read_names(const fs::path& path) {
  const std::vector<uint8_t> bytes = InputFile(path.string()).read_all(kMaxNamesBytes, "class name file");
  std::vector<std::string> names;
  std::istringstream in(std::string(bytes.begin(), bytes.end()));
  std::string line;
  for (int line_number = 1; std::getline(in, line); ++line_number) {
    const size_t begin = line.find_first_not_of(" \t\r");
    if (begin == std::string::npos) continue;
    names.push_back(line.substr(begin, line.find_last_not_of(" \t\r") - begin + 1));
    detail::check_class_name(names.back(), path.string() + ":" + std::to_string(line_number));
  }
  if (names.empty()) throw IoError(path.string() + ": no class names in the file");
  return names;
}

std::string folder_name(const fs::path& dir) {
  const fs::path p = dir.has_filename() ? dir : dir.parent_path();  // "data/" names "data"
  return p.filename().string();
}

std::optional<DataSplits> load_idx(const fs::path& dir, const std::string& original_path) {
  const auto train_images = find_idx(dir, "train", "images", "idx3");
  const auto train_labels = find_idx(dir, "train", "labels", "idx1");
  const auto test_images = find_idx(dir, "t10k", "images", "idx3");
  const auto test_labels = find_idx(dir, "t10k", "labels", "idx1");
  if (!train_images && !train_labels && !test_images && !test_labels) return std::nullopt;
  std::string missing;
  if (!train_images) missing += " train-images-idx3-ubyte[.gz]";
  if (!train_labels) missing += " train-labels-idx1-ubyte[.gz]";
  if (!test_images) missing += " t10k-images-idx3-ubyte[.gz]";
  if (!test_labels) missing += " t10k-labels-idx1-ubyte[.gz]";
  if (!missing.empty()) throw IoError(dir.string() + ": incomplete IDX dataset, missing:" + missing);
  // Labels may be 0..255: the class count is the highest label of either split plus one, and
  // Fashion-MNIST's ten names are used when the path says "fashion" and the labels fit them.
  DataSplits splits{read_idx(train_images->string(), train_labels->string(), {}),
                    read_idx(test_images->string(), test_labels->string(), {})};
  const size_t classes = std::max(splits.train.class_names.size(), splits.test.class_names.size());
  const bool fashion = lower(original_path).find("fashion") != std::string::npos && classes <= kFashionNames.size();
  splits.train.class_names = fashion ? kFashionNames : detail::numbered_class_names(static_cast<int64_t>(classes));
  splits.test.class_names = splits.train.class_names;
  return splits;
}

std::optional<DataSplits> load_cifar10(const fs::path& dir) {
  std::vector<std::string> train;
  std::string missing;
  for (int i = 1; i <= 5; ++i) {
    const fs::path p = dir / ("data_batch_" + std::to_string(i) + ".bin");
    if (is_file(p)) train.push_back(p.string());
    else missing += " " + p.filename().string();
  }
  const fs::path test = dir / "test_batch.bin";
  if (train.empty() && !is_file(test)) return std::nullopt;
  if (!is_file(test)) missing += " test_batch.bin";
  if (!missing.empty()) throw IoError(dir.string() + ": incomplete CIFAR-10 dataset, missing:" + missing);
  const fs::path meta = dir / "batches.meta.txt";
  std::vector<std::string> names = is_file(meta) ? read_names(meta) : kCifar10Names;
  return DataSplits{read_cifar(train, false, names), read_cifar({test.string()}, false, names)};
}

std::optional<DataSplits> load_cifar100(const fs::path& dir) {
  const fs::path train = dir / "train.bin";
  const fs::path test = dir / "test.bin";
  if (!is_file(train) && !is_file(test)) return std::nullopt;
  if (!is_file(train) || !is_file(test)) {
    throw IoError(dir.string() + ": incomplete CIFAR-100 dataset, missing: " + (is_file(train) ? "test.bin" : "train.bin"));
  }
  const fs::path meta = dir / "fine_label_names.txt";
  std::vector<std::string> names = is_file(meta) ? read_names(meta) : detail::numbered_class_names(100);
  return DataSplits{read_cifar({train.string()}, true, names), read_cifar({test.string()}, true, names)};
}

std::optional<DataSplits> load_image_folders(const fs::path& dir) {
  const fs::path train = dir / "train";
  const fs::path test = dir / "test";
  if (!is_folder(train) && !is_folder(test)) return std::nullopt;
  if (!is_folder(train) || !is_folder(test)) {
    throw IoError(dir.string() + ": incomplete image folder dataset, missing the " +
                  (is_folder(train) ? "test/" : "train/") + " sub-folder");
  }
  const int channels = detail::image_folder_channels(train.string());
  DataSplits splits{read_image_folder(train.string(), channels), read_image_folder(test.string(), channels)};
  if (splits.train.class_names != splits.test.class_names) {
    throw IoError(dir.string() + ": train/ and test/ have different class sub-folders (" +
                  std::to_string(splits.train.class_names.size()) + " and " +
                  std::to_string(splits.test.class_names.size()) + " classes)");
  }
  if (splits.train.image_shape != splits.test.image_shape) {
    throw IoError(dir.string() + ": train/ images are " + splits.train.image_shape.chw_string() + " but test/ images are " +
                  splits.test.image_shape.chw_string());
  }
  return splits;
}

}  // namespace

namespace detail {

void check_class_name(const std::string& name, const std::string& source) {
  const size_t i = first_invalid_utf8(name);
  if (i != std::string::npos) {
    char byte[8];
    std::snprintf(byte, sizeof byte, "0x%02x", static_cast<unsigned char>(name[i]));
    throw IoError(source + ": class name is not valid UTF-8 (byte " + byte + " at offset " + std::to_string(i) +
                  "); checkpoints store class names as JSON text, so rename it");
  }
}

std::string hex32(uint32_t value) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", value);
  return buf;
}

std::vector<std::string> numbered_class_names(int64_t count) {
  std::vector<std::string> names;
  for (int64_t i = 0; i < count; ++i) names.push_back(std::to_string(i));
  return names;
}

}  // namespace detail

DataSplits load_dataset(const std::string& path) {
  fs::path dir(path);
  std::error_code ec;
  if (!fs::exists(dir, ec)) throw IoError(path + ": no such folder");
  if (!fs::is_directory(dir, ec)) throw IoError(path + ": not a folder (expected a dataset folder)");
  // The CIFAR archives unpack into a sub-folder; accept the folder that holds it too.
  for (const char* sub : {"cifar-10-batches-bin", "cifar-100-binary"}) {
    if (is_folder(dir / sub) && !is_file(dir / "test_batch.bin") && !is_file(dir / "test.bin")) dir /= sub;
  }

  std::optional<DataSplits> splits = load_idx(dir, path);
  if (!splits) splits = load_cifar10(dir);
  if (!splits) splits = load_cifar100(dir);
  if (!splits) splits = load_image_folders(dir);
  if (!splits) {
    throw IoError(path +
                  ": no dataset found; looked for IDX files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
                  "t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]), CIFAR-10 batches (data_batch_1.bin .. "
                  "data_batch_5.bin, test_batch.bin), CIFAR-100 batches (train.bin, test.bin), or image folders "
                  "(train/ and test/ with one sub-folder per class)");
  }
  const std::string name = folder_name(fs::path(path));
  splits->train.name = name + "/train";
  splits->test.name = name + "/test";
  return std::move(*splits);
}

Dataset split_validation(Dataset& data, double fraction, uint64_t seed) {
  if (!(fraction >= 0.0 && fraction < 1.0)) {
    throw Error("split_validation: the validation fraction must be in [0, 1), got " + std::to_string(fraction));
  }
  const int64_t n = data.size();
  const auto n_val = static_cast<int64_t>(std::llround(fraction * static_cast<double>(n)));
  if (fraction > 0.0 && (n_val == 0 || n_val == n)) {
    throw Error(data.name + ": a validation fraction of " + std::to_string(fraction) + " of " + std::to_string(n) +
                " images leaves " + (n_val == 0 ? "the validation set" : "the training set") + " empty");
  }
  // Fisher-Yates on mt19937_64 (fully specified by the standard, unlike std::shuffle's use of it),
  // so a seed picks the same images on every platform.
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  std::mt19937_64 rng(seed);
  for (int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(rng() % static_cast<uint64_t>(i + 1));
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
  }
  std::vector<bool> in_validation(static_cast<size_t>(n), false);
  for (int64_t i = 0; i < n_val; ++i) in_validation[static_cast<size_t>(order[static_cast<size_t>(i)])] = true;

  Dataset validation;
  std::string base = data.name;
  if (base.ends_with("/train")) base.resize(base.size() - 6);
  validation.name = base + "/validation";
  validation.image_shape = data.image_shape;
  validation.class_names = data.class_names;
  Dataset rest;
  rest.name = data.name;
  rest.image_shape = data.image_shape;
  rest.class_names = std::move(data.class_names);
  const auto image = static_cast<size_t>(data.image_size());
  for (int64_t i = 0; i < n; ++i) {  // both sets keep the original order
    Dataset& to = in_validation[static_cast<size_t>(i)] ? validation : rest;
    to.labels.push_back(data.labels[static_cast<size_t>(i)]);
    const auto first = data.pixels.begin() + static_cast<std::ptrdiff_t>(static_cast<size_t>(i) * image);
    to.pixels.insert(to.pixels.end(), first, first + static_cast<std::ptrdiff_t>(image));
  }
  data = std::move(rest);
  return validation;
}

}  // namespace convnet
