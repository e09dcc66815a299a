// Checkpoints: one safetensors file holding the weights (torchvision names), the optimiser state
// ("optimizer.momentum.<name>") and, in its metadata, everything else a run needs to continue
// exactly: the model text, preprocessing, class names, epoch and batch position, step count, RNG
// state, schedule state and the metrics so far. Written atomically (temp file, fsync, rename).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "convnet/data/loader.hpp"
#include "convnet/executor.hpp"
#include "convnet/net.hpp"
#include "convnet/train/optimizer.hpp"

namespace convnet {

inline constexpr const char* kCheckpointFile = "checkpoint.safetensors";

/// Saves weights, optimiser state (when given) and `meta` (which must hold "model" and "network").
void save_checkpoint(const std::string& path, Executor& executor, Optimizer* optimizer, const nlohmann::json& meta);

/// Reads a checkpoint's metadata only; throws IoError for a missing, truncated or corrupted file.
[[nodiscard]] nlohmann::json read_checkpoint_meta(const std::string& path);

/// Refuses (IoError) a checkpoint file too small to hold the parameters of `net`, the network its
/// metadata describes, at 2 bytes a value (the narrowest dtype it may store): called before the
/// network's parameters are allocated and initialised, so that a few bytes of model text cannot
/// make them gigabytes (found by fuzz_checkpoint: 2.9 kB declaring 42 million parameters).
void check_checkpoint_size(const std::string& path, const Net& net);

/// Loads weights (and optimiser state when given) into an executor of the same network; every
/// mismatch is reported at once (IoError) and nothing is changed on error.
void load_checkpoint_tensors(const std::string& path, Executor& executor, Optimizer* optimizer);

}  // namespace convnet
