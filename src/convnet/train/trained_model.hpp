// A trained network ready for eval, predict and the visualisations, from any source: a checkpoint
// or training folder; an ONNX file (its own weights, and for a file `convnet export` wrote from a
// run, the preprocessing and class names in its metadata_props); a Darknet .cfg, a model file or a
// zoo model with --weights. What a file does not store comes from ModelOptions, and for a
// normalisation computed on training images or class names from a dataset, from complete_model.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "convnet/data/dataset.hpp"
#include "convnet/data/loader.hpp"
#include "convnet/executor.hpp"
#include "convnet/net.hpp"

namespace convnet {

/// The metadata_props keys of an ONNX file exported from a trained run (values are JSON, but data).
inline constexpr const char* kOnnxNormalizationKey = "convnet.normalization";  // Normalization::to_json()
inline constexpr const char* kOnnxClassNamesKey = "convnet.class_names";        // ["T-shirt/top", ...]
inline constexpr const char* kOnnxInputShapeKey = "convnet.input_shape";        // [1, 28, 28]
inline constexpr const char* kOnnxDataKey = "convnet.data";  // the training data folder (a plain string)
/// A QDQ file exported from a quantized run (docs/precision.md); eval and predict run it in int8.
inline constexpr const char* kOnnxQuantizationKey = "convnet.quantization";
inline constexpr const char* kOnnxQuantizationValue =
    "int8 QDQ: s8 weights per output channel (max |w| / 127), u8 or s8 activations (zero point 0)";

/// What the command line gives for a model, replacing what its file stores.
struct ModelOptions {
  std::string weights;          // --weights: Darknet .weights or safetensors (a .cfg, model file or zoo model)
  std::string classes_file;     // --classes: class names, one a line
  std::string normalize;        // --normalize none|per-channel|mean-image: computed on training images
  std::vector<float> mean, std; // --mean / --std: per channel (one value: every channel), in pixel/255 units
};

/// A trained model: its graph, weights, preprocessing and class names.
struct TrainedModel {
  std::string source;  // the path it was opened from, for messages
  std::unique_ptr<Net> net;
  std::unique_ptr<Executor> executor;
  Normalization normalization;
  std::vector<std::string> class_names;  // empty until known (complete_model)
  nlohmann::json meta;  // a checkpoint's metadata; for an ONNX file {"data": ...} when it stores it
  /// A normalisation still to compute on a dataset's training images (complete_model).
  std::optional<Normalization::Mode> pending_normalization;
};

/// True for what convnet treats as a trained run: a folder, or a file ending in .safetensors.
[[nodiscard]] bool is_trained_run(const std::string& path);

/// The precision a model runs in unless told otherwise: int8 for a run `convnet quantize` made and
/// for a QDQ ONNX file (QuantizeLinear on activations), else f32.
[[nodiscard]] DType default_precision(const std::string& path);

/// Opens PATH: a checkpoint file or training folder; an ONNX file; a .cfg, .cnet or zoo model with
/// `options.weights`. Its preprocessing is, in order: --mean/--std; --normalize (none, or left
/// pending for complete_model); the file's own; by default none for a Darknet cfg (Darknet feeds
/// pixel/255) and else per-channel, pending. Its class names are --classes, else the file's, else
/// left empty. Every problem is one Error naming the file or the option.
[[nodiscard]] TrainedModel open_model(const std::string& path, const ExecutorOptions& run,
                                      const ModelOptions& options = {});

/// Completes a model from a dataset's training split `train` (nullptr: none given): class names
/// left empty become the dataset's (their count must be the network's outputs) or, without one,
/// "0", "1", ...; a pending normalisation is computed on `train` as `convnet train` computes it
/// (the mean, and the std per channel). Throws SpecError naming what to pass when it needs a dataset.
void complete_model(TrainedModel& model, const Dataset* train);

/// open_model + complete_model(nullptr): for runs, and for files that store what they need.
[[nodiscard]] TrainedModel open_trained_model(const std::string& path, const ExecutorOptions& run,
                                              const ModelOptions& options = {});

/// The dataset `model` was trained on as its file records it (a run's checkpoint, an ONNX file
/// `convnet export` wrote from a run), else Fashion-MNIST's Debian folder, the default of `train`.
[[nodiscard]] std::string recorded_data_path(const TrainedModel& model);

/// The metadata_props `convnet export` writes for a trained model (the kOnnx*Key entries).
[[nodiscard]] std::map<std::string, std::string> onnx_metadata(const TrainedModel& model);

/// Class names from a text file, one a line (blank lines and surrounding spaces dropped); IoError
/// naming the file when it cannot be read or holds no name.
[[nodiscard]] std::vector<std::string> read_class_names(const std::string& path);

}  // namespace convnet
