// ONNX export and import through Debian's libonnx (generated protobuf classes): a built Net with
// its parameters becomes an opset-13 ModelProto, and an ONNX file becomes model-language text plus
// weights under the names that text gives its layers. docs/interop.md lists what maps to what.
#pragma once

#include <map>
#include <string>

#include "convnet/executor.hpp"
#include "convnet/io/safetensors.hpp"

namespace convnet::onnx_interop {

/// The opset convnet writes, and the range it reads.
inline constexpr int64_t kExportOpset = 13;
inline constexpr int64_t kMinImportOpset = 7;
inline constexpr int64_t kMaxImportOpset = 21;

/// The graph output's name in exported files.
inline constexpr const char* kOutputName = "logits";

/// Writes the executor's network and parameters as ONNX (atomically: a temporary file, then a
/// rename). Each input gets a dynamic batch dimension "batch"; parameters become initializers under
/// their torchvision-style names; `metadata` becomes the model's metadata_props (key -> value). A
/// layer without an ONNX equivalent is refused (SpecError naming it). With `int8_ranges` (one per
/// node, as `convnet quantize` calibrates them) the graph is QDQ: s8 weights per output channel
/// behind DequantizeLinear (axis 0), and a QuantizeLinear / DequantizeLinear pair (zero point 0,
/// u8 or s8) wherever the int8 plan of those ranges quantizes a value (docs/precision.md).
void export_onnx(Executor& executor, const std::string& path, const std::map<std::string, std::string>& metadata = {},
                 const std::vector<ActivationRange>& int8_ranges = {});

/// An ONNX file translated: model-language text, the parameters under the names it gives, and the
/// model's metadata_props (a key given twice keeps its last value).
struct Import {
  std::string model_text;
  SafetensorsContent weights;
  std::map<std::string, std::string> metadata;
  /// A QDQ file: per node of the translated network, the int8 range its QuantizeLinear scale stands
  /// for (NaN for nodes the file does not quantize: an int8 plan needing one refuses); empty for an
  /// f32 file.
  std::vector<ActivationRange> ranges;
};

/// Reads and translates an ONNX file (a QDQ file's DequantizeLinear weights folded into f32, its
/// activation scales kept as `ranges`). Every problem is one error naming the file (and the node):
/// IoError for a file that is not a readable ModelProto, SpecError for an unknown opset, a cycle,
/// an initializer of the wrong size, operators convnet does not have (all listed at once).
[[nodiscard]] Import import_onnx_file(const std::string& path);

/// Loads the parameters an ONNX file carries into the executor of the network translated from it.
void load_onnx_weights(Executor& executor, const std::string& path);

/// True when the ONNX file at `path` quantizes activations (QuantizeLinear nodes: a QDQ graph);
/// the errors of import_onnx_file for a file it cannot read.
[[nodiscard]] bool is_qdq_file(const std::string& path);

/// True for a path ending in ".onnx".
[[nodiscard]] bool is_onnx_path(const std::string& path);

}  // namespace convnet::onnx_interop
