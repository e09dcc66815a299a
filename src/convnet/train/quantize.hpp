// Post-training int8 quantization: calibration (each node's output range over images of the
// training set), and the quantization file a quantized model folder holds next to its f32
// checkpoint (`convnet quantize`), read back by eval, predict, forward and bench.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "convnet/data/dataset.hpp"
#include "convnet/data/loader.hpp"
#include "convnet/engine/plan.hpp"
#include "convnet/executor.hpp"

namespace convnet {

/// The file beside checkpoint.safetensors in a quantized model's folder.
inline constexpr const char* kQuantizationFile = "quantization.json";

/// Widens `ranges` (one per node; empty to start) by every node's output for `input` (batch,
/// ...input shape), computed in f32 layer by layer (also by an executor of another precision). A
/// range whose largest magnitude stays below kMinRangeMagnitude becomes [0, 0] (int8 rounds such
/// values to 0 anyway).
void observe_ranges(Executor& executor, const Tensor& input, std::vector<ActivationRange>& ranges);

/// Every node's range over `count` images of `data` spread evenly over it (every class seen).
/// Throws Error naming the layer whose range gives no int8 scale (range_problem).
[[nodiscard]] std::vector<ActivationRange> calibrate(Executor& executor, const Dataset& data, const Normalization& norm,
                                                     int64_t count, int64_t batch = 64);

/// {"format": "convnet-int8-v1", "ranges": {node name: [min, max]}, ...meta}.
[[nodiscard]] nlohmann::json quantization_json(const Net& net, const std::vector<ActivationRange>& ranges,
                                               const nlohmann::json& meta);

/// The ranges of a quantization file for `net`; IoError naming `file` and the layer when it does
/// not match, or a range gives no int8 scale (range_problem).
[[nodiscard]] std::vector<ActivationRange> read_quantization(const std::string& file, const Net& net);

/// The quantization file of a model folder or checkpoint (empty if it has none).
[[nodiscard]] std::string quantization_file_of(const std::string& checkpoint_or_folder);

}  // namespace convnet
