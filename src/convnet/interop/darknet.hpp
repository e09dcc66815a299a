// Darknet import: a classification .cfg becomes model-language text (layer names carry Darknet's
// layer index: conv3, bn3, leaky3, maxpool4, ...), and a .weights file becomes convnet parameters
// under those names. docs/interop.md describes what is supported and how each section maps.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "convnet/executor.hpp"
#include "convnet/io/safetensors.hpp"

namespace convnet::darknet {

/// One `key=value` line of a cfg section, as written (whitespace removed, as Darknet does).
struct CfgOption {
  std::string key;
  std::string value;
  int line = 0;
};

/// One `[type]` section and its options, in file order.
struct CfgSection {
  std::string type;  // without the brackets: "convolutional"
  int line = 0;
  std::vector<CfgOption> options;
};

/// Reads Darknet's cfg syntax: `[section]` lines, `key=value` lines, comments after '#' or ';' at
/// the start of a line. Throws SpecError "FILE:LINE: ..." for a line that is neither, an option
/// before the first section, or a file whose first section is not [net].
[[nodiscard]] std::vector<CfgSection> read_cfg(const std::string& text, const std::string& file);

/// At most 40 printable ASCII characters of `text`, others as '?': a cfg's words inside a message.
[[nodiscard]] std::string shown(const std::string& text);

/// Where one run of floats of a .weights file goes, in file order.
struct WeightRun {
  enum class Kind {
    Plain,            // stored as convnet stores it
    FcWeight,         // (outputs, inputs); (inputs, outputs) when the header says transposed
    RollingVariance,  // Darknet divides by sqrt(var) + 1e-6, convnet by sqrt(var + eps)
  };
  std::string parameter;      // "conv3.weight", "bn3.running_var"
  std::vector<int64_t> dims;  // the parameter's convnet shape
  Kind kind = Kind::Plain;
  float scale = 1.0f;  // 1.1 where a ramp activation is folded into the layer
};

/// A Darknet layer with parameters: its runs of floats in the order the .weights file holds them.
struct LayerWeights {
  int index = 0;        // Darknet's layer index (0 = the first section after [net])
  std::string section;  // "convolutional", "connected", "local"
  int line = 0;         // the section's line in the cfg
  std::vector<WeightRun> runs;
};

/// A translated cfg.
struct Translation {
  std::string model_text;             // the model language
  std::vector<LayerWeights> weights;  // in cfg order
};

/// Batch norm epsilon of the translated layers: with running_var stored as (sqrt(v) + 1e-6)^2 -
/// kBatchNormEps, convnet's sqrt(var + eps) is exactly Darknet's sqrt(v) + 1e-6.
inline constexpr double kBatchNormEps = 1e-12;
inline constexpr double kDarknetStdEpsilon = 1e-6;

/// Translates a classification cfg. Every problem (an unknown or non-classification section, an
/// unknown key, a bad value, a route or shortcut that cannot be expressed, a window that does not
/// fit) is one SpecError or ShapeError "FILE:LINE: [section] ...". `file` names the cfg in messages.
[[nodiscard]] Translation translate_cfg(const std::string& text, const std::string& file);

/// Reads a cfg file (IoError when it cannot, or past 64 MiB) and translates it; messages name `path`.
[[nodiscard]] Translation translate_cfg_file(const std::string& path);

/// True for a path ending in ".cfg".
[[nodiscard]] bool is_cfg_path(const std::string& path);

/// True for a path ending in ".weights".
[[nodiscard]] bool is_weights_path(const std::string& path);

/// Reads a .weights file for a translated cfg: the header (major, minor, revision as int32, then
/// `seen` as int64 when major*10 + minor >= 2, else int32), then every layer's runs. Throws IoError
/// naming the file when it is shorter or longer than the cfg needs, with both sizes in bytes.
[[nodiscard]] SafetensorsContent read_weights(const Translation& translation, const std::string& path);

/// Loads `weights_path` into the executor of the network read from `model_source`: a Darknet
/// .weights file (the model must then be a .cfg), or convnet's safetensors weights / checkpoint.
void load_network_weights(Executor& executor, const std::string& model_source, const std::string& weights_path);

}  // namespace convnet::darknet
