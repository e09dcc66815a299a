// Input normalisation: its JSON form (stored with a model), its computation over a training set
// (in double, two passes), and its application to one image.
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include "convnet/data/loader.hpp"
#include "convnet/error.hpp"

namespace convnet {
namespace {

const char* mode_name(Normalization::Mode mode) {
  switch (mode) {
    case Normalization::Mode::None: return "none";
    case Normalization::Mode::MeanImage: return "mean_image";
    case Normalization::Mode::PerChannel: return "per_channel";
  }
  return "none";
}

std::vector<float> float_array(const nlohmann::json& j, const char* key) {
  if (!j.contains(key)) throw IoError(std::string("normalization: missing \"") + key + "\"");
  const nlohmann::json& array = j.at(key);
  if (!array.is_array()) throw IoError(std::string("normalization: \"") + key + "\" is not an array");
  std::vector<float> values;
  values.reserve(array.size());
  for (const nlohmann::json& value : array) {
    if (!value.is_number()) throw IoError(std::string("normalization: \"") + key + "\" holds a non-number");
    const double number = value.get<double>();
    if (!(std::fabs(number) <= std::numeric_limits<float>::max())) {  // beyond float: casting would be undefined
      throw IoError(std::string("normalization: \"") + key + "\" holds a number beyond float's range");
    }
    values.push_back(static_cast<float>(number));
  }
  return values;
}

void check_dataset(const Dataset& data) {
  if (data.image_size() <= 0 || data.image_shape.channels() <= 0)
    throw Error("dataset '" + data.name + "' has no image shape");
  if (static_cast<int64_t>(data.pixels.size()) != data.size() * data.image_size())
    throw Error("dataset '" + data.name + "' has " + std::to_string(data.pixels.size()) + " pixels for " +
                std::to_string(data.size()) + " images of " + std::to_string(data.image_size()));
}

}  // namespace

nlohmann::json Normalization::to_json() const {
  return nlohmann::json{{"mode", mode_name(mode)}, {"mean", mean}, {"std", std}};
}

Normalization Normalization::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw IoError("normalization: expected an object");
  if (!j.contains("mode") || !j.at("mode").is_string()) throw IoError("normalization: missing or non-string \"mode\"");
  Normalization norm;
  const auto mode = j.at("mode").get<std::string>();
  if (mode == "none") {
    norm.mode = Mode::None;
  } else if (mode == "mean_image") {
    norm.mode = Mode::MeanImage;
  } else if (mode == "per_channel") {
    norm.mode = Mode::PerChannel;
  } else {
    throw IoError("normalization: unknown mode \"" + mode + "\" (none, mean_image or per_channel)");
  }
  norm.mean = float_array(j, "mean");
  norm.std = float_array(j, "std");
  if (norm.mode == Mode::None) {
    if (!norm.mean.empty() || !norm.std.empty()) throw IoError("normalization: mode \"none\" takes no mean or std");
    return norm;
  }
  if (norm.mean.empty()) throw IoError("normalization: \"mean\" is empty");
  if (const std::string problem = std_problem(norm.std); !problem.empty()) {
    throw IoError("normalization: \"std\": " + problem);
  }
  const bool std_fits = norm.std.empty() || (norm.mode == Mode::PerChannel ? norm.std.size() == norm.mean.size()
                                                                            : norm.mean.size() % norm.std.size() == 0);
  if (!std_fits)
    throw IoError("normalization: " + std::to_string(norm.std.size()) + " std values do not fit " +
                  std::to_string(norm.mean.size()) + " mean values");
  return norm;
}

std::string std_problem(const std::vector<float>& std) {
  for (size_t c = 0; c < std.size(); ++c) {
    if (std::isfinite(std[c]) && std[c] >= kMinStd) continue;
    char text[160];
    if (std::isfinite(std[c])) {
      std::snprintf(text, sizeof text,
                    "%g of channel %zu is below %g, the smallest std an image is divided by "
                    "(pixels are in [0, 1])",
                    static_cast<double>(std[c]), c, static_cast<double>(kMinStd));
    } else {
      std::snprintf(text, sizeof text, "%g of channel %zu is not a finite number", static_cast<double>(std[c]), c);
    }
    return text;
  }
  return "";
}

Normalization::Mode parse_normalization_mode(const std::string& text, const std::string& option) {
  if (text == "none") return Normalization::Mode::None;
  if (text == "mean-image") return Normalization::Mode::MeanImage;
  if (text == "per-channel") return Normalization::Mode::PerChannel;
  throw SpecError(option + " " + text + ": expected none, mean-image or per-channel");
}

void check_normalization(const Normalization& norm, const Shape& image_shape) {
  if (norm.mode == Normalization::Mode::None) return;
  const auto channels = static_cast<size_t>(image_shape.channels());
  const auto expected = static_cast<size_t>(norm.mode == Normalization::Mode::MeanImage ? image_shape.numel()
                                                                                       : image_shape.channels());
  if (norm.mean.size() != expected)
    throw ShapeError("normalization has " + std::to_string(norm.mean.size()) + " mean values, images of " +
                     image_shape.chw_string() + " need " + std::to_string(expected));
  if (!norm.std.empty() && norm.std.size() != channels)
    throw ShapeError("normalization has " + std::to_string(norm.std.size()) + " std values, images of " +
                     image_shape.chw_string() + " need " + std::to_string(channels));
}

Normalization compute_normalization(const Dataset& train, Normalization::Mode mode, bool divide_by_std) {
  Normalization norm;
  norm.mode = mode;
  if (mode == Normalization::Mode::None) return norm;
  check_dataset(train);
  if (train.size() == 0) throw Error("cannot compute a normalisation over the empty dataset '" + train.name + "'");
  const int64_t n = train.size();
  const int64_t size = train.image_size();
  const int64_t channels = train.image_shape.channels();
  const int64_t plane = size / channels;

  // Pass 1: exact integer sums per pixel position.
  std::vector<uint64_t> sums(static_cast<size_t>(size), 0);
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* image = train.pixels.data() + i * size;
    for (int64_t p = 0; p < size; ++p) sums[p] += image[p];
  }
  std::vector<double> mean;  // the mean in use, per pixel position (C*H*W)
  mean.resize(static_cast<size_t>(size));
  if (mode == Normalization::Mode::MeanImage) {
    for (int64_t p = 0; p < size; ++p) mean[p] = static_cast<double>(sums[p]) / (255.0 * static_cast<double>(n));
  } else {
    for (int64_t c = 0; c < channels; ++c) {
      uint64_t total = 0;
      for (int64_t p = 0; p < plane; ++p) total += sums[c * plane + p];
      const double m = static_cast<double>(total) / (255.0 * static_cast<double>(n * plane));
      for (int64_t p = 0; p < plane; ++p) mean[c * plane + p] = m;
    }
  }
  if (mode == Normalization::Mode::MeanImage) {
    norm.mean.assign(mean.begin(), mean.end());
  } else {
    for (int64_t c = 0; c < channels; ++c) norm.mean.push_back(static_cast<float>(mean[c * plane]));
  }
  if (!divide_by_std) return norm;

  // Pass 2: squared deviations from the mean in use, per channel.
  std::vector<double> squares(static_cast<size_t>(channels), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* image = train.pixels.data() + i * size;
    for (int64_t c = 0; c < channels; ++c) {
      double sum = 0.0;
      for (int64_t p = c * plane; p < (c + 1) * plane; ++p) {
        const double d = image[p] / 255.0 - mean[p];
        sum += d * d;
      }
      squares[c] += sum;
    }
  }
  for (int64_t c = 0; c < channels; ++c) {
    const double s = std::sqrt(squares[c] / static_cast<double>(n * plane));
    norm.std.push_back(static_cast<float>(s) >= kMinStd ? static_cast<float>(s) : 1.0f);
  }
  return norm;
}

void normalized_image(const Dataset& data, int64_t index, const Normalization& norm, float* out) {
  check_dataset(data);
  check_normalization(norm, data.image_shape);
  if (index < 0 || index >= data.size())
    throw Error("sample " + std::to_string(index) + " is outside dataset '" + data.name + "' of " +
                std::to_string(data.size()));
  const int64_t size = data.image_size();
  const int64_t channels = data.image_shape.channels();
  const int64_t plane = size / channels;
  const uint8_t* image = data.pixels.data() + index * size;
  for (int64_t c = 0; c < channels; ++c) {
    const bool divide = norm.mode != Normalization::Mode::None && !norm.std.empty();
    const float scale = divide ? 1.0f / norm.std[c] : 1.0f;
    for (int64_t p = c * plane; p < (c + 1) * plane; ++p) {
      float mean = 0.0f;
      if (norm.mode == Normalization::Mode::MeanImage) mean = norm.mean[p];
      if (norm.mode == Normalization::Mode::PerChannel) mean = norm.mean[c];
      out[p] = (static_cast<float>(image[p]) / 255.0f - mean) * scale;
    }
  }
}

}  // namespace convnet
