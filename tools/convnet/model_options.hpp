// The options of the commands that open a trained model from any file (eval, predict, visualize):
// --weights for a Darknet .cfg, model file or zoo model, and for a file that stores no
// preprocessing or class names: --classes, --normalize, --mean, --std (and --data, whose training
// images give a computed normalisation and whose classes name the outputs).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "convnet/train/trained_model.hpp"

namespace convnet {

struct ModelArgs {
  ModelOptions options;
  std::string data;  // --data (predict, visualize; eval has its own)

  /// --weights.
  void add_weights(CLI::App* command);
  /// --classes, --normalize, --mean, --std; and --data when `with_data`.
  void add_preprocessing(CLI::App* command, bool with_data);
  /// open_model, then complete_model with the training split of --data when the model still needs
  /// it (its preprocessing pending or its class names unknown).
  [[nodiscard]] TrainedModel open(const std::string& path, const ExecutorOptions& run) const;
};

}  // namespace convnet
