// Weights and checkpoints as safetensors: an 8-byte little-endian header length, a JSON header
// (name -> dtype, shape, byte offsets; optional "__metadata__"), then raw little-endian data.
// Readable by PyTorch (safetensors.torch) and the whole ecosystem.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "convnet/executor.hpp"

namespace convnet {

/// Names of a training checkpoint's optimiser state ("optimizer.momentum.<parameter>").
inline constexpr const char* kOptimizerPrefix = "optimizer.";

struct StoredTensor {
  std::string dtype;              // as stored: "F32", "F16", "BF16", "F64", "I64"
  std::vector<int64_t> shape;
  std::vector<float> values;      // converted to float32
};

struct SafetensorsContent {
  std::map<std::string, StoredTensor> tensors;
  std::map<std::string, std::string> metadata;
};

/// Reads a whole file, converting every tensor to float32; throws IoError naming the file (and the
/// tensor) and what is wrong: not a regular file, header length beyond the file, bad JSON, a dtype
/// other than F32, F16, BF16, F64, I64, a shape whose size overflows, offsets outside the data,
/// of the wrong size or overlapping another tensor's.
[[nodiscard]] SafetensorsContent read_safetensors(const std::string& path);

/// Throws IoError "`what` is nested more than `max_depth` levels deep" when the JSON `text` opens
/// more arrays and objects than that: checked before parsing, since parsing millions of nested
/// brackets costs gigabytes.
void check_json_nesting(const std::string& text, int max_depth, const std::string& what);

/// Writes float32 tensors atomically: a temporary file in the same folder, fsync, rename.
/// An existing file at `path` stays intact until the new one is complete.
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, const Tensor*>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

/// Every parameter and buffer of the executor with its torchvision-style name, for writing.
[[nodiscard]] std::vector<std::pair<std::string, const Tensor*>> parameter_tensors(Executor& executor);

/// Throws IoError naming `source`, the tensor `name` and the index of the first NaN or infinity
/// in `values`, which a network cannot compute with.
void require_finite(std::span<const float> values, const std::string& name, const std::string& source);

/// Checks every name, shape and dtype of `content` against the executor's parameters (tensors
/// whose names start with `other_prefix` belong to someone else and are skipped), reports all
/// mismatches in one IoError naming `source`, then refuses a NaN or infinity (IoError naming
/// `source`, the tensor and the index of the first), and only then copies the values in. Floating-point
/// dtypes are all accepted (converted on reading), I64 for buffers; a missing `num_batches_tracked`
/// (common in converted torchvision weights) is set to 0, as PyTorch does.
void load_parameters(const SafetensorsContent& content, Executor& executor, const std::string& source,
                     const std::string& other_prefix = "");

/// Saves every parameter and buffer of the executor under its torchvision-style name.
void save_weights(Executor& executor, const std::string& path);

/// Loads weights by name, from a weights file or a training checkpoint (its optimiser state is
/// ignored). Every name, shape and dtype is checked first and all mismatches are reported in one
/// IoError, then every value must be finite; on error no parameter is changed.
void load_weights(Executor& executor, const std::string& path);

}  // namespace convnet
