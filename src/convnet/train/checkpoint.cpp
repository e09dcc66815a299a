// Checkpoint files on top of the safetensors reader and writer.
#include "convnet/train/checkpoint.hpp"

#include <filesystem>

#include "convnet/checked.hpp"
#include "convnet/error.hpp"
#include "convnet/io/safetensors.hpp"
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

void check_checkpoint_size(const std::string& path, const Net& net) {
  int64_t values = 0;
  for (const Node& node : net.nodes()) {
    for (const ParamSpec& spec : node.params) {
      if (spec.name != "num_batches_tracked")
        values = checked_add(values, checked_product(spec.dims), "parameter count");
    }
  }
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(path, ec);
  if (!ec && static_cast<uint64_t>(values) > bytes / 2) {
    throw IoError(path + ": its network '" + net.name() + "' has " + std::to_string(values) +
                  " parameters, more than the file's " + std::to_string(bytes) +
                  " bytes can hold: truncated, or not this network's checkpoint");
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
      require_finite(it->second.values, it->first, path);
      Tensor t(it->second.shape);
      std::copy(it->second.values.begin(), it->second.values.end(), t.data());
      optimizer->restore(std::string(kind) + "." + p.name, std::move(t));
    }
  }
}

}  // namespace convnet
