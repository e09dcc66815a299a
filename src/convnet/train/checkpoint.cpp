// Checkpoint files on top of the safetensors reader and writer.
#include "convnet/train/checkpoint.hpp"

#include <filesystem>

#include "convnet/error.hpp"
#include "convnet/io/safetensors.hpp"
#include "convnet/model/model.hpp"

namespace convnet {
namespace {

constexpr const char* kMetaKey = "convnet";
constexpr const char* kOptimizerPrefix = "optimizer.";

}  // namespace

void save_checkpoint(const std::string& path, Executor& executor, Optimizer* optimizer, const nlohmann::json& meta) {
  std::vector<std::pair<std::string, const Tensor*>> tensors;
  for (const NamedParameter& p : executor.named_parameters()) tensors.emplace_back(p.name, p.value);
  if (optimizer != nullptr) {
    for (const auto& [name, tensor] : optimizer->state()) tensors.emplace_back(kOptimizerPrefix + name, tensor);
  }
  write_safetensors(path, tensors, {{"format", "pt"}, {kMetaKey, meta.dump()}});
}

nlohmann::json read_checkpoint_meta(const std::string& path) {
  const SafetensorsContent content = read_safetensors(path);
  auto it = content.metadata.find(kMetaKey);
  if (it == content.metadata.end()) throw IoError(path + ": not a convnet checkpoint (no '" + kMetaKey + "' metadata)");
  try {
    nlohmann::json meta = nlohmann::json::parse(it->second);
    if (!meta.contains("model") || !meta.contains("network")) throw IoError(path + ": checkpoint metadata lacks the model");
    return meta;
  } catch (const nlohmann::json::exception& e) {
    throw IoError(path + ": corrupted checkpoint metadata: " + e.what());
  }
}

void load_checkpoint_tensors(const std::string& path, Executor& executor, Optimizer* optimizer) {
  const SafetensorsContent content = read_safetensors(path);
  std::vector<std::string> problems;
  std::vector<NamedParameter> params = executor.named_parameters();
  for (const NamedParameter& p : params) {
    auto it = content.tensors.find(p.name);
    if (it == content.tensors.end()) problems.push_back("missing '" + p.name + "'");
    else if (it->second.shape != p.value->dims()) problems.push_back("'" + p.name + "' has another shape");
  }
  for (const auto& [name, tensor] : content.tensors) {
    if (name.rfind(kOptimizerPrefix, 0) == 0) continue;
    const bool known = std::any_of(params.begin(), params.end(), [&](const NamedParameter& p) { return p.name == name; });
    if (!known) problems.push_back("unexpected '" + name + "'");
  }
  if (!problems.empty()) {
    std::string message = path + ": checkpoint of another network than '" + executor.net().name() + "' (";
    for (size_t i = 0; i < problems.size() && i < 5; ++i) message += (i ? "; " : "") + problems[i];
    if (problems.size() > 5) message += "; and " + std::to_string(problems.size() - 5) + " more";
    throw IoError(message + ")");
  }
  for (const NamedParameter& p : params) {
    const StoredTensor& t = content.tensors.at(p.name);
    std::copy(t.values.begin(), t.values.end(), p.value->data());
  }
  if (optimizer == nullptr) return;
  // Optimiser buffers are created on first use; a checkpoint's buffers are loaded by name.
  for (const NamedParameter& p : params) {
    for (const char* kind : {"momentum", "exp_avg", "exp_avg_sq"}) {
      auto it = content.tensors.find(std::string(kOptimizerPrefix) + kind + "." + p.name);
      if (it == content.tensors.end()) continue;
      Tensor t(it->second.shape);
      std::copy(it->second.values.begin(), it->second.values.end(), t.data());
      optimizer->restore(std::string(kind) + "." + p.name, std::move(t));
    }
  }
}

TrainedModel open_trained_model(const std::string& path, Backend backend) {
  std::string file = path;
  if (std::filesystem::is_directory(path)) file = (std::filesystem::path(path) / kCheckpointFile).string();
  if (!std::filesystem::exists(file)) throw IoError(file + ": no such checkpoint");
  TrainedModel model;
  model.meta = read_checkpoint_meta(file);
  LoadOptions options;
  if (model.meta.contains("input_shape")) options.input_shape = Shape(model.meta["input_shape"].get<std::vector<int64_t>>());
  model.net = std::make_unique<Net>(load_model_text(model.meta["model"].get<std::string>(), file + " (model)", options));
  model.executor = std::make_unique<Executor>(*model.net, ExecutorOptions{.backend = backend});
  load_checkpoint_tensors(file, *model.executor, nullptr);
  try {
    model.normalization = Normalization::from_json(model.meta.at("normalization"));
    model.class_names = model.meta.at("class_names").get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    throw IoError(file + ": corrupted checkpoint metadata: " + e.what());
  }
  return model;
}

}  // namespace convnet
