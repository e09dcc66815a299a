// Opening a trained model from a checkpoint, an ONNX file or a model file with weights; the
// preprocessing and class names from the file, the command line or a dataset; and the ONNX
// metadata that carries a run's preprocessing and class names.
#include "convnet/train/trained_model.hpp"

#include <cmath>
#include <filesystem>

#include "convnet/error.hpp"
#include "convnet/interop/darknet.hpp"
#include "convnet/interop/onnx.hpp"
#include "convnet/io/input_file.hpp"
#include "convnet/io/safetensors.hpp"
#include "convnet/model/model.hpp"
#include "convnet/train/checkpoint.hpp"
#include "convnet/train/quantize.hpp"
#include "convnet/train/run_checks.hpp"
#include "convnet/zoo/zoo.hpp"

namespace convnet {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kMaxClassNamesBytes = uint64_t{64} << 20;

int64_t output_count(const Net& net) { return net.node(net.output()).output.numel(); }

const Shape& input_shape(const Net& net) { return net.node(net.inputs().at(0)).output; }

std::vector<int64_t> int_list(const nlohmann::json& j) {
  std::vector<int64_t> values;
  for (const nlohmann::json& value : j) values.push_back(json_value<int64_t>(value));
  return values;
}

std::string names_count(size_t n) { return std::to_string(n) + (n == 1 ? " name" : " names"); }

void check_precision(const std::string& path, const ExecutorOptions& run) {
  if (run.precision == DType::Int8 && run.ranges.empty()) {
    throw SpecError(path +
                    ": int8 needs the activation ranges 'convnet quantize' calibrates for a training folder "
                    "(or the scales of a QDQ file 'convnet export' writes from one); use --precision f32 or "
                    "bf16 for this file");
  }
}

// A checkpoint: the model text, preprocessing and class names from its metadata (all required).
// Returns true: it stores its normalisation.
bool open_checkpoint(TrainedModel& m, const std::string& path, const ExecutorOptions& run) {
  std::error_code ec;
  std::string file = path;
  if (fs::is_directory(path, ec)) file = (fs::path(path) / kCheckpointFile).string();
  if (!fs::is_regular_file(file, ec)) throw IoError(file + ": no such checkpoint");
  m.meta = read_checkpoint_meta(file);
  LoadOptions options;
  try {
    if (m.meta.contains("input_shape")) options.input_shape = Shape(int_list(m.meta.at("input_shape")));
  } catch (const Error& e) {  // a dimension below 1, or a volume too large
    throw IoError(file + ": checkpoint field input_shape: " + e.what());
  } catch (const nlohmann::json::exception& e) {
    throw IoError(file + ": corrupted checkpoint metadata: " + e.what());
  }
  try {
    m.normalization = Normalization::from_json(m.meta.at("normalization"));
    m.class_names = m.meta.at("class_names").get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    throw IoError(file + ": corrupted checkpoint metadata: " + e.what());
  } catch (const Error& e) {  // a normalisation that cannot be applied
    throw IoError(file + ": checkpoint field " + e.what());
  }
  m.net = std::make_unique<Net>(load_model_text(m.meta["model"].get<std::string>(), file + " (model)", options));
  if (output_count(*m.net) != static_cast<int64_t>(m.class_names.size())) {
    throw IoError(file + ": corrupted checkpoint: the network's outputs and the class names disagree");
  }
  try {
    check_normalization(m.normalization, input_shape(*m.net));
  } catch (const Error& e) {
    throw IoError(file + ": corrupted checkpoint: " + e.what());
  }
  ExecutorOptions executor_options = run;
  if (run.precision == DType::Int8 && run.ranges.empty()) {
    const std::string ranges = quantization_file_of(file);
    if (ranges.empty()) {
      throw SpecError(path + ": not quantized (no " + kQuantizationFile + "); 'convnet quantize " + path +
                      " -o DIR' makes an int8 model");
    }
    executor_options.ranges = read_quantization(ranges, *m.net);
  }
  check_checkpoint_size(file, *m.net);
  m.executor = std::make_unique<Executor>(*m.net, executor_options);
  load_checkpoint_tensors(file, *m.executor, nullptr);
  return true;
}

// Reads metadata_props[key] as JSON and hands it to `use`, when present; every problem (bad JSON,
// a wrong type, a value that does not fit the network) is one IoError naming the file and the key.
template <typename Use>
void read_metadata(const std::map<std::string, std::string>& metadata, const char* key, const std::string& path,
                   Use use) {
  const auto it = metadata.find(key);
  if (it == metadata.end()) return;
  const std::string where = path + ": metadata " + key;
  check_json_nesting(it->second, 2, where + ": it");
  try {
    use(nlohmann::json::parse(it->second));
  } catch (const nlohmann::json::exception& e) {
    throw IoError(where + " is not what convnet export writes: " + e.what());
  } catch (const Error& e) {
    throw IoError(where + ": " + e.what());
  }
}

// An ONNX file: its network and weights (unless --weights replaces them), and what its metadata
// stores. Returns true when it stores a normalisation.
bool open_onnx(TrainedModel& m, const std::string& path, const ExecutorOptions& run, const ModelOptions& options) {
  const onnx_interop::Import imported = onnx_interop::import_onnx_file(path);
  ExecutorOptions executor_options = run;
  if (run.precision == DType::Int8 && run.ranges.empty()) executor_options.ranges = imported.ranges;  // QDQ scales
  check_precision(path, executor_options);
  m.net = std::make_unique<Net>(load_model_text(imported.model_text, path + " (translated)"));
  m.executor = std::make_unique<Executor>(*m.net, executor_options);
  if (options.weights.empty()) {
    load_parameters(imported.weights, *m.executor, path);
  } else {
    darknet::load_network_weights(*m.executor, path, options.weights);
  }
  const Shape& input = input_shape(*m.net);
  read_metadata(imported.metadata, kOnnxInputShapeKey, path, [&](const nlohmann::json& j) {
    if (int_list(j) != input.dims()) throw IoError(j.dump() + ", but the graph's input is " + input.chw_string());
  });
  read_metadata(imported.metadata, kOnnxClassNamesKey, path, [&](const nlohmann::json& j) {
    m.class_names = j.get<std::vector<std::string>>();
    if (static_cast<int64_t>(m.class_names.size()) != output_count(*m.net)) {
      throw IoError(names_count(m.class_names.size()) + ", but the network outputs " +
                    std::to_string(output_count(*m.net)) + " values");
    }
  });
  bool stored = false;
  read_metadata(imported.metadata, kOnnxNormalizationKey, path, [&](const nlohmann::json& j) {
    m.normalization = Normalization::from_json(j);
    check_normalization(m.normalization, input);
    stored = true;
  });
  if (const auto data = imported.metadata.find(kOnnxDataKey); data != imported.metadata.end()) {
    m.meta["data"] = data->second;
  }
  return stored;
}

// A .cfg, model file or zoo model: the network from its text, the weights from --weights.
void open_model_file(TrainedModel& m, const std::string& path, const ExecutorOptions& run,
                     const ModelOptions& options) {
  if (options.weights.empty()) {
    throw SpecError(darknet::is_cfg_path(path)
                        ? path + ": a Darknet .cfg holds no weights; pass --weights FILE.weights"
                        : path + ": a model without trained weights; pass --weights FILE.safetensors, or give a "
                                 "training folder, checkpoint or ONNX file");
  }
  check_precision(path, run);
  m.net = std::make_unique<Net>(load_model(path));
  m.executor = std::make_unique<Executor>(*m.net, run);
  darknet::load_network_weights(*m.executor, path, options.weights);
}

// --mean / --std: one value for every channel, or one per channel.
std::vector<float> per_channel(std::vector<float> values, const char* option, int64_t channels) {
  if (values.size() == 1) values.assign(static_cast<size_t>(channels), values[0]);
  if (static_cast<int64_t>(values.size()) != channels) {
    const std::string expected =
        channels == 1 ? " input channel; give one value" : " input channels; give 1 or " + std::to_string(channels);
    throw SpecError(std::string(option) + ": " + std::to_string(values.size()) + " values for a network of " +
                    std::to_string(channels) + expected);
  }
  for (const float v : values) {
    if (!std::isfinite(v)) throw SpecError(std::string(option) + ": every value must be a finite number");
  }
  return values;
}

Normalization given_normalization(const ModelOptions& options, int64_t channels) {
  Normalization norm;
  norm.mode = Normalization::Mode::PerChannel;
  norm.mean = options.mean.empty() ? std::vector<float>(static_cast<size_t>(channels), 0.0f)
                                   : per_channel(options.mean, "--mean", channels);
  if (!options.std.empty()) norm.std = per_channel(options.std, "--std", channels);
  if (const std::string problem = std_problem(norm.std); !problem.empty()) throw SpecError("--std: " + problem);
  return norm;
}

}  // namespace

bool is_trained_run(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec) || fs::path(path).extension() == ".safetensors";
}

DType default_precision(const std::string& path) {
  if (onnx_interop::is_onnx_path(path)) return onnx_interop::is_qdq_file(path) ? DType::Int8 : DType::F32;
  return is_trained_run(path) && !quantization_file_of(path).empty() ? DType::Int8 : DType::F32;
}

TrainedModel open_model(const std::string& path, const ExecutorOptions& run, const ModelOptions& options) {
  TrainedModel m;
  m.source = path;
  const bool onnx = onnx_interop::is_onnx_path(path);
  const bool model_file = !onnx && !is_trained_run(path) &&
                          (darknet::is_cfg_path(path) || path.ends_with(".cnet") ||
                           find_zoo_model(path) != nullptr || !options.weights.empty());
  bool stored = false;
  if (onnx) {
    stored = open_onnx(m, path, run, options);
  } else if (model_file) {
    open_model_file(m, path, run, options);
  } else {
    // A training folder, a checkpoint (by any name), or a path that does not exist.
    if (!options.weights.empty()) throw SpecError("--weights: " + path + " is a trained run; it holds its weights");
    stored = open_checkpoint(m, path, run);
  }

  if (!options.classes_file.empty()) {
    m.class_names = read_class_names(options.classes_file);
    if (static_cast<int64_t>(m.class_names.size()) != output_count(*m.net)) {
      throw SpecError("--classes " + options.classes_file + ": " + names_count(m.class_names.size()) + ", but " +
                      path + " outputs " + std::to_string(output_count(*m.net)) + " values");
    }
  }
  const int64_t channels = input_shape(*m.net).channels();
  if (!options.mean.empty() || !options.std.empty()) {
    if (!options.normalize.empty()) {
      throw SpecError("--normalize and --mean/--std both give the preprocessing; pass one of them");
    }
    m.normalization = given_normalization(options, channels);
  } else if (!options.normalize.empty()) {
    const Normalization::Mode mode = parse_normalization_mode(options.normalize, "--normalize");
    if (mode == Normalization::Mode::None) m.normalization = Normalization{.mode = mode};
    else m.pending_normalization = mode;
  } else if (!stored && darknet::is_cfg_path(path)) {
    m.normalization = Normalization{.mode = Normalization::Mode::None};  // Darknet feeds pixel / 255
  } else if (!stored) {
    m.pending_normalization = Normalization::Mode::PerChannel;
  }
  return m;
}

void complete_model(TrainedModel& m, const Dataset* train) {
  const int64_t outputs = output_count(*m.net);
  if (m.class_names.empty() && train != nullptr) {
    if (static_cast<int64_t>(train->class_names.size()) != outputs) {
      throw SpecError(m.source + " outputs " + std::to_string(outputs) + " values, but the dataset " + train->name +
                      " has " + std::to_string(train->class_names.size()) +
                      " classes; pass --data with the model's classes, or name them with --classes FILE");
    }
    m.class_names = train->class_names;
  }
  for (int64_t i = static_cast<int64_t>(m.class_names.size()); i < outputs; ++i) {
    m.class_names.push_back(std::to_string(i));
  }
  if (!m.pending_normalization) return;
  const Normalization::Mode mode = *m.pending_normalization;
  const char* what = mode == Normalization::Mode::MeanImage ? "mean-image" : "per-channel";
  if (train == nullptr) {
    throw SpecError(m.source + " stores no preprocessing; pass --data DIR (the " + what +
                    " normalisation of its training images, as 'convnet train' computes it), --normalize none "
                    "(pixel/255), or --mean and --std");
  }
  const Shape& input = input_shape(*m.net);
  if (train->image_shape.channels() != input.channels() ||
      (mode == Normalization::Mode::MeanImage && train->image_shape != input)) {
    throw SpecError("--normalize " + std::string(what) + ": the training images of " + train->name + " are " +
                    train->image_shape.chw_string() + " but " + m.source + " takes " + input.chw_string());
  }
  m.normalization = compute_normalization(*train, mode, true);
  m.pending_normalization.reset();
}

TrainedModel open_trained_model(const std::string& path, const ExecutorOptions& run, const ModelOptions& options) {
  TrainedModel m = open_model(path, run, options);
  complete_model(m, nullptr);
  return m;
}

std::string recorded_data_path(const TrainedModel& m) {
  if (m.meta.is_object()) {
    if (const auto data = m.meta.find("data"); data != m.meta.end() && data->is_string())
      return data->get<std::string>();
  }
  return kDefaultDataPath;
}

std::map<std::string, std::string> onnx_metadata(const TrainedModel& m) {
  std::map<std::string, std::string> metadata{
      {kOnnxClassNamesKey, nlohmann::json(m.class_names).dump()},
      {kOnnxInputShapeKey, nlohmann::json(input_shape(*m.net).dims()).dump()}};
  if (!m.pending_normalization) metadata[kOnnxNormalizationKey] = m.normalization.to_json().dump();
  if (m.meta.contains("data") && m.meta["data"].is_string()) metadata[kOnnxDataKey] = m.meta["data"].get<std::string>();
  return metadata;
}

std::vector<std::string> read_class_names(const std::string& path) {
  const std::vector<uint8_t> bytes = InputFile(path).read_all(kMaxClassNamesBytes, "class names file");
  std::vector<std::string> names;
  std::string line;
  auto finish_line = [&] {
    const size_t first = line.find_first_not_of(" \t\r");
    if (first != std::string::npos) names.push_back(line.substr(first, line.find_last_not_of(" \t\r") - first + 1));
    line.clear();
  };
  for (const uint8_t byte : bytes) {
    if (byte == '\n') finish_line();
    else line += static_cast<char>(byte);
  }
  finish_line();
  if (names.empty()) throw IoError(path + ": holds no class name (one a line)");
  return names;
}

}  // namespace convnet
