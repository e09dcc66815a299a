// Darknet .weights files (parser.c load_weights_upto): a header, then each layer's float32 runs in
// cfg order, read into convnet's parameters by the names the cfg translation chose.
#include <cmath>
#include <cstring>
#include <filesystem>

#include "convnet/checked.hpp"
#include "convnet/error.hpp"
#include "convnet/interop/darknet.hpp"
#include "convnet/io/input_file.hpp"
#include "convnet/text.hpp"

namespace convnet::darknet {
namespace {

constexpr uint64_t kMaxCfgBytes = uint64_t{64} << 20;

int32_t int32_at(const uint8_t* p) {
  const uint32_t u = uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
  int32_t value = 0;
  std::memcpy(&value, &u, sizeof value);
  return value;
}

float float_at(const uint8_t* p) {
  const uint32_t u = uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
  float value = 0;
  std::memcpy(&value, &u, sizeof value);
  return value;
}

// The Darknet layer whose runs hold float number `offset` (counted from the first run).
const LayerWeights* layer_at(const Translation& t, int64_t offset) {
  for (const LayerWeights& layer : t.weights) {
    for (const WeightRun& run : layer.runs) {
      offset -= checked_product(run.dims, "a parameter's size");
      if (offset < 0) return &layer;
    }
  }
  return nullptr;
}

}  // namespace

Translation translate_cfg_file(const std::string& path) {
  const std::vector<uint8_t> bytes = InputFile(path).read_all(kMaxCfgBytes, "Darknet cfg");
  return translate_cfg(std::string(bytes.begin(), bytes.end()), path);
}

SafetensorsContent read_weights(const Translation& translation, const std::string& path) {
  const InputFile file(path);
  int64_t floats = 0;
  for (const LayerWeights& layer : translation.weights) {
    for (const WeightRun& run : layer.runs) {
      floats = checked_add(floats, checked_product(run.dims, "a parameter's size"), "the weights' size");
    }
  }
  uint8_t header[20] = {};
  const uint64_t size = file.size();
  file.read_at(0, header, static_cast<size_t>(std::min<uint64_t>(size, sizeof header)));
  const int64_t major = int32_at(header), minor = int32_at(header + 4), revision = int32_at(header + 8);
  const int64_t header_bytes = size >= 12 && major * 10 + minor >= 2 ? 20 : 16;  // `seen`: int64 from 0.2 on
  const bool transposed = major > 1000 || minor > 1000;
  const int64_t expected = checked_add(header_bytes, checked_mul(floats, 4, "the weights' size"), "the weights' size");
  if (size != static_cast<uint64_t>(expected)) {
    std::string message = path + ": " + with_commas(static_cast<int64_t>(std::min<uint64_t>(size, INT64_MAX))) +
                          " bytes, but the cfg needs " + with_commas(expected) + " (a " + std::to_string(header_bytes) +
                          "-byte header and " + with_commas(floats) + " float32 values";
    if (size < static_cast<uint64_t>(expected)) {
      const int64_t read =
          size < static_cast<uint64_t>(header_bytes) ? 0 : static_cast<int64_t>(size - header_bytes) / 4;
      const LayerWeights* layer = layer_at(translation, read);
      message += size < static_cast<uint64_t>(header_bytes) ? "): it ends inside the header"
                 : layer != nullptr ? "): it ends inside layer " + std::to_string(layer->index) + " ([" +
                                          layer->section + "] at cfg line " + std::to_string(layer->line) + ")"
                                    : ")";
    } else {
      message += "): " + with_commas(static_cast<int64_t>(size - static_cast<uint64_t>(expected))) +
                 " bytes more; is it the weights of another cfg?";
    }
    throw IoError(message);
  }
  SafetensorsContent content;
  content.metadata["darknet_version"] =
      std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(revision);
  std::vector<uint8_t> bytes;
  uint64_t offset = static_cast<uint64_t>(header_bytes);
  for (const LayerWeights& layer : translation.weights) {
    for (const WeightRun& run : layer.runs) {
      const int64_t n = checked_product(run.dims, "a parameter's size");
      bytes.resize(static_cast<size_t>(n) * 4);
      file.read_at(offset, bytes.data(), bytes.size());
      offset += bytes.size();
      StoredTensor tensor{"F32", run.dims, std::vector<float>(static_cast<size_t>(n))};
      std::vector<float>& v = tensor.values;
      for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = float_at(bytes.data() + 4 * i);
      if (run.kind == WeightRun::Kind::FcWeight && transposed) {  // stored (inputs, outputs)
        const int64_t outputs = run.dims[0], inputs = run.dims[1];
        std::vector<float> t(v.size());
        for (int64_t o = 0; o < outputs; ++o) {
          for (int64_t i = 0; i < inputs; ++i)
            t[static_cast<size_t>(o * inputs + i)] = v[static_cast<size_t>(i * outputs + o)];
        }
        v.swap(t);
      }
      if (run.kind == WeightRun::Kind::RollingVariance) {
        for (float& x : v) {
          const double sd = std::sqrt(static_cast<double>(x)) + kDarknetStdEpsilon;
          x = static_cast<float>(sd * sd - kBatchNormEps);
        }
      }
      if (run.scale != 1.0f) {
        for (float& x : v) x *= run.scale;
      }
      content.tensors.emplace(run.parameter, std::move(tensor));
    }
  }
  return content;
}

void load_network_weights(Executor& executor, const std::string& model_source, const std::string& weights_path) {
  if (std::filesystem::path(weights_path).extension() == ".onnx") {
    throw SpecError("--weights " + weights_path +
                    ": an ONNX file holds a network with its weights; give it in place of the model, not as --weights");
  }
  if (!is_weights_path(weights_path)) {
    load_weights(executor, weights_path);
    return;
  }
  if (!is_cfg_path(model_source)) {
    throw IoError(weights_path +
                  ": a Darknet .weights file goes with the Darknet .cfg it was saved for, but the "
                  "network is '" +
                  model_source + "'");
  }
  load_parameters(read_weights(translate_cfg_file(model_source), weights_path), executor, weights_path);
}

}  // namespace convnet::darknet
