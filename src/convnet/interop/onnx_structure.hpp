// The structure of an imported ONNX graph (internal to interop/): translated layers in dependency
// order become model-language text, each fork and join a residual, concat or dense structure
// (the join's fork is its immediate dominator), every layer on its own line.
#pragma once

#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "convnet/interop/onnx_graph.hpp"
#include "convnet/io/safetensors.hpp"

namespace convnet::onnx_interop {

/// One ONNX operator translated: a model-language layer, or a join (Add, Concat) for a structure.
struct ImportedLayer {
  std::string name, kind, args, comment;
  std::vector<std::string> inputs;  // data tensors (after aliases)
  std::string output;
  std::vector<std::pair<std::string, StoredTensor>> params;  // suffix ("weight") and values
  bool merge = false;                                        // Add or Concat: a structure
  bool bias_free = false;  // an fc without bias (MatMul, or Gemm without C): an Add may give it one
};

/// The translated layers, in dependency order, with the layer computing each data tensor and its
/// shape (without the batch).
struct ImportedLayers {
  std::vector<ImportedLayer> layers;
  std::unordered_map<std::string, int> producer;
  std::unordered_map<std::string, std::vector<int64_t>> shapes;
};

/// The model text computing `output` from the graph's input; `lines_of` receives each written layer's
/// line (1-based) by index, `unique_name` names the branches' sequentials. SpecError naming the file
/// for a graph whose branches do not nest as structures do.
[[nodiscard]] std::string write_model_text(const OnnxGraph& g, const ImportedLayers& built, const std::string& output,
                                           const std::function<std::string(std::string)>& unique_name,
                                           std::unordered_map<size_t, int>& lines_of);

/// A name of the model language made from an ONNX one.
[[nodiscard]] std::string layer_name(const std::string& onnx_name);

/// Printable text of at most 60 characters for a comment or a message.
[[nodiscard]] std::string shown(const std::string& text);

}  // namespace convnet::onnx_interop
