// Calibration runs the f32 network layer by layer (every node's output kept) and widens each
// node's [min, max]; the quantization file stores them by node name.
#include "convnet/train/quantize.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

#include "convnet/engine/quantization.hpp"
#include "convnet/error.hpp"
#include "convnet/io/input_file.hpp"

namespace convnet {
namespace {

// A JSON number as f32: beyond its range, an infinity (which range_problem refuses).
float as_float(double v) {
  constexpr double kMax = std::numeric_limits<float>::max();
  return v > kMax    ? std::numeric_limits<float>::infinity()
         : v < -kMax ? -std::numeric_limits<float>::infinity()
                     : static_cast<float>(v);
}

}  // namespace

void observe_ranges(Executor& executor, const Tensor& input, std::vector<ActivationRange>& ranges) {
  const Net& net = executor.net();
  constexpr float kInf = std::numeric_limits<float>::infinity();
  if (ranges.empty()) ranges.assign(net.nodes().size(), ActivationRange{kInf, -kInf});  // empty ranges
  executor.set_input_gradients(true);  // layer by layer, every output kept
  // A few images at a time: every node's output is held at once.
  constexpr int64_t kSlice = 4;
  const int64_t images = input.dims().at(0);
  const int64_t per_image = input.numel() / std::max<int64_t>(images, 1);
  for (int64_t start = 0; start < images; start += kSlice) {
    std::vector<int64_t> dims = input.dims();
    dims[0] = std::min(kSlice, images - start);
    Tensor slice(dims);
    std::copy_n(input.data() + start * per_image, slice.numel(), slice.data());
    (void)executor.forward(slice, false);
    for (size_t i = 0; i < net.nodes().size(); ++i) {
      const Tensor* out = executor.activation(static_cast<int>(i));
      if (out == nullptr || out->numel() == 0) continue;
      const auto [lo, hi] = std::minmax_element(out->data(), out->data() + out->numel());
      ranges[i].min = std::min(ranges[i].min, *lo);
      ranges[i].max = std::max(ranges[i].max, *hi);
    }
  }
  executor.set_input_gradients(false);
  for (ActivationRange& r : ranges) {
    // A node without an output of its own, or whose outputs all round to 0 in int8 anyway: scale 1.
    if (r.min > r.max || std::max(std::fabs(r.min), std::fabs(r.max)) < kMinRangeMagnitude) r = {};
  }
}

std::vector<ActivationRange> calibrate(Executor& executor, const Dataset& data, const Normalization& norm,
                                       int64_t count, int64_t batch) {
  if (data.size() == 0) throw SpecError("calibration: the training set holds no image");
  count = std::min(count, data.size());
  std::vector<ActivationRange> ranges;
  const int64_t size = data.image_size();
  for (int64_t start = 0; start < count; start += batch) {
    const int64_t n = std::min(batch, count - start);
    std::vector<int64_t> dims{n};
    dims.insert(dims.end(), data.image_shape.dims().begin(), data.image_shape.dims().end());
    Tensor input(dims);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t index = (start + i) * data.size() / count;  // spread over the whole set
      normalized_image(data, index, norm, input.data() + i * size);
    }
    observe_ranges(executor, input, ranges);
  }
  for (size_t i = 0; i < ranges.size(); ++i) {
    if (const std::string problem = range_problem(ranges[i]); !problem.empty()) {
      throw Error("calibration: the outputs of layer '" + executor.net().node(static_cast<int>(i)).name + "' on " +
                  std::to_string(count) + " training images: " + problem);
    }
  }
  return ranges;
}

nlohmann::json quantization_json(const Net& net, const std::vector<ActivationRange>& ranges,
                                 const nlohmann::json& meta) {
  nlohmann::json j = meta;
  j["format"] = "convnet-int8-v1";
  j["scheme"] =
      "s8 weights per output channel (scale max |w| / 127); u8 activations (scale max / 255) where the "
      "range is never negative, else s8 (max |x| / 127)";
  nlohmann::json r = nlohmann::json::object();
  for (size_t i = 0; i < ranges.size(); ++i) r[net.node(static_cast<int>(i)).name] = {ranges[i].min, ranges[i].max};
  j["ranges"] = r;
  return j;
}

std::vector<ActivationRange> read_quantization(const std::string& file, const Net& net) {
  const InputFile in(file);
  const std::vector<uint8_t> bytes = in.read_all(64 << 20, "quantization file");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(bytes.begin(), bytes.end());
  } catch (const nlohmann::json::exception& e) {
    throw IoError(file + ": not JSON (" + e.what() + ")");
  }
  if (!j.is_object() || j.value("format", "") != "convnet-int8-v1" || !j.contains("ranges") ||
      !j["ranges"].is_object()) {
    throw IoError(file + ": not a convnet quantization file (format convnet-int8-v1 with ranges)");
  }
  std::vector<ActivationRange> ranges(net.nodes().size());
  for (size_t i = 0; i < ranges.size(); ++i) {
    const std::string& name = net.node(static_cast<int>(i)).name;
    const auto it = j["ranges"].find(name);
    if (it == j["ranges"].end()) throw IoError(file + ": no range for layer '" + name + "' of " + net.name());
    if (!it->is_array() || it->size() != 2 || !(*it)[0].is_number() || !(*it)[1].is_number()) {
      throw IoError(file + ": the range of '" + name + "' is not [min, max]");
    }
    ranges[i] = {as_float((*it)[0].get<double>()), as_float((*it)[1].get<double>())};
    if (const std::string problem = range_problem(ranges[i]); !problem.empty()) {
      throw IoError(file + ": the range of '" + name + "' " + problem);
    }
  }
  if (j["ranges"].size() != ranges.size()) {
    throw IoError(file + ": ranges for " + std::to_string(j["ranges"].size()) + " layers, but " + net.name() + " has " +
                  std::to_string(ranges.size()));
  }
  return ranges;
}

std::string quantization_file_of(const std::string& checkpoint_or_folder) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path p(checkpoint_or_folder);
  const fs::path folder = fs::is_directory(p, ec) ? p : p.parent_path();
  const fs::path file = folder / kQuantizationFile;
  return fs::exists(file, ec) ? file.string() : "";
}

}  // namespace convnet
