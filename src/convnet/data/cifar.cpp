// CIFAR-10 / CIFAR-100 binary batch reader: fixed-size records of one (CIFAR-10) or two (coarse,
// fine: CIFAR-100) label bytes followed by 3x32x32 pixel bytes in channel-major order. The format
// declares no count, so a batch file is bounded by kMaxBatchBytes (CIFAR's largest file is 154 MB).
#include <filesystem>

#include "convnet/data/dataset.hpp"
#include "convnet/data/internal.hpp"
#include "convnet/error.hpp"

namespace convnet {
namespace {

constexpr int64_t kChannels = 3;
constexpr int64_t kSide = 32;
constexpr size_t kPixels = kChannels * kSide * kSide;
constexpr size_t kCoarseClasses = 20;
constexpr uint64_t kMaxBatchBytes = uint64_t{1} << 30;

}  // namespace

Dataset read_cifar(const std::vector<std::string>& paths, bool coarse_and_fine, std::vector<std::string> class_names) {
  if (paths.empty()) throw IoError("read_cifar: no batch files given");
  const size_t label_bytes = coarse_and_fine ? 2 : 1;
  const size_t record = label_bytes + kPixels;
  if (class_names.empty()) class_names = detail::numbered_class_names(coarse_and_fine ? 100 : 10);
  const char* format = coarse_and_fine ? "CIFAR-100" : "CIFAR-10";

  Dataset data;
  data.name = std::filesystem::path(paths.front()).filename().string();
  data.image_shape = Shape{kChannels, kSide, kSide};
  data.class_names = std::move(class_names);
  for (const std::string& path : paths) {
    detail::DataFile file(path);
    const std::vector<uint8_t> bytes = file.read_rest(kMaxBatchBytes, std::string(format) + " batch");
    if (bytes.empty()) throw IoError(path + ": empty file, expected " + format + " records of " + std::to_string(record) + " bytes");
    if (bytes.size() % record != 0) {
      const size_t expected = (bytes.size() / record + 1) * record;
      throw IoError(path + ": truncated " + format + " batch (records of " + std::to_string(record) +
                    " bytes): expected " + std::to_string(expected) + " bytes, found " + std::to_string(bytes.size()));
    }
    const size_t count = bytes.size() / record;
    data.labels.reserve(data.labels.size() + count);
    data.pixels.reserve(data.pixels.size() + count * kPixels);
    for (size_t i = 0; i < count; ++i) {
      const uint8_t* rec = bytes.data() + i * record;
      if (coarse_and_fine && rec[0] >= kCoarseClasses) {
        throw IoError(path + ": coarse label " + std::to_string(rec[0]) + " of record " + std::to_string(i) +
                      " is out of range for " + std::to_string(kCoarseClasses) + " classes");
      }
      const uint8_t label = rec[label_bytes - 1];
      if (label >= data.class_names.size()) {
        throw IoError(path + ": label " + std::to_string(label) + " of record " + std::to_string(i) +
                      " is out of range for " + std::to_string(data.class_names.size()) + " classes");
      }
      data.labels.push_back(label);
      data.pixels.insert(data.pixels.end(), rec + label_bytes, rec + record);
    }
  }
  return data;
}

}  // namespace convnet
