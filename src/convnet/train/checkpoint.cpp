// Checkpoint files on top of the safetensors reader and writer.
#include "convnet/train/checkpoint.hpp"

#include <filesystem>

#include "convnet/error.hpp"
#include "convnet/io/safetensors.hpp"
#include "convnet/model/model.hpp"
#include "convnet/train/quantize.hpp"
#include "convnet/train/run_checks.hpp"

namespace convnet {
namespace {

constexpr const char* kMetaKey = "convnet";
constexpr int kMaxMetaNesting = 32;  // the metadata written is 4 levels deep (metrics rows)

}  // namespace

void save_checkpoint(const std::string& path, Executor& executor, Optimizer* optimizer, const nlohmann::json& meta) {
  std::vector<std::pair<std::string, const Tensor*>> tensors = parameter_tensors(executor);
  if (optimizer != nullptr) {
    for (const auto& [name, tensor] : optimizer->state()) tensors.emplace_back(kOptimizerPrefix + name, tensor);
  }
  write_safetensors(path, tensors, {{"format", "pt"}, {kMetaKey, meta.dump()}});
}

nlohmann::json read_checkpoint_meta(const std::string& path) {
  const SafetensorsContent content = read_safetensors(path);
  auto it = content.metadata.find(kMetaKey);
  if (it == content.metadata.end()) throw IoError(path + ": not a convnet checkpoint (no '" + kMetaKey + "' metadata)");
  check_json_nesting(it->second, kMaxMetaNesting, path + ": corrupted checkpoint metadata: it");
  try {
    nlohmann::json meta = nlohmann::json::parse(it->second);
    if (!meta.is_object() || !meta.contains("model") || !meta["model"].is_string() || !meta.contains("network") ||
        !meta["network"].is_string()) {
      throw IoError(path + ": corrupted checkpoint metadata: no model text");
    }
    return meta;
  } catch (const nlohmann::json::exception& e) {
    throw IoError(path + ": corrupted checkpoint metadata: " + e.what());
  }
}

void load_checkpoint_tensors(const std::string& path, Executor& executor, Optimizer* optimizer) {
  const SafetensorsContent content = read_safetensors(path);
  load_parameters(content, executor, path, kOptimizerPrefix);
  if (optimizer == nullptr) return;
  // Optimiser buffers are created on first use; a checkpoint's buffers are loaded by name, each
  // checked against its parameter's shape (a corrupted file must not overrun a buffer).
  for (const NamedParameter& p : executor.named_parameters()) {
    for (const char* kind : {"momentum", "exp_avg", "exp_avg_sq"}) {
      auto it = content.tensors.find(std::string(kOptimizerPrefix) + kind + "." + p.name);
      if (it == content.tensors.end()) continue;
      if (it->second.shape != p.value->dims()) {
        throw IoError(path + ": optimiser state '" + it->first + "' does not have its parameter's shape");
      }
      Tensor t(it->second.shape);
      std::copy(it->second.values.begin(), it->second.values.end(), t.data());
      optimizer->restore(std::string(kind) + "." + p.name, std::move(t));
    }
  }
}

TrainedModel open_trained_model(const std::string& path, const ExecutorOptions& run) {
  std::error_code ec;
  std::string file = path;
  if (std::filesystem::is_directory(path, ec)) file = (std::filesystem::path(path) / kCheckpointFile).string();
  if (!std::filesystem::is_regular_file(file, ec)) throw IoError(file + ": no such checkpoint");
  TrainedModel model;
  model.meta = read_checkpoint_meta(file);
  LoadOptions options;
  try {
    if (model.meta.contains("input_shape")) {
      std::vector<int64_t> dims;
      for (const nlohmann::json& d : model.meta.at("input_shape")) dims.push_back(json_value<int64_t>(d));
      options.input_shape = Shape(dims);
    }
    model.normalization = Normalization::from_json(model.meta.at("normalization"));
    model.class_names = model.meta.at("class_names").get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    throw IoError(file + ": corrupted checkpoint metadata: " + e.what());
  }
  model.net = std::make_unique<Net>(load_model_text(model.meta["model"].get<std::string>(), file + " (model)", options));
  if (model.net->node(model.net->output()).output.numel() != static_cast<int64_t>(model.class_names.size())) {
    throw IoError(file + ": corrupted checkpoint: the network's outputs and the class names disagree");
  }
  ExecutorOptions executor_options = run;
  if (run.precision == DType::Int8 && run.ranges.empty()) {
    const std::string ranges = quantization_file_of(file);
    if (ranges.empty()) {
      throw SpecError(path + ": not quantized (no " + kQuantizationFile + "); 'convnet quantize " + path +
                      " -o DIR' makes an int8 model");
    }
    executor_options.ranges = read_quantization(ranges, *model.net);
  }
  model.executor = std::make_unique<Executor>(*model.net, executor_options);
  load_checkpoint_tensors(file, *model.executor, nullptr);
  return model;
}

}  // namespace convnet
