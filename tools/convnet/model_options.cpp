// --weights, --classes, --normalize, --mean, --std and --data for eval, predict and visualize.
#include "model_options.hpp"

#include <optional>

#include "convnet/data/dataset.hpp"

namespace convnet {

void ModelArgs::add_weights(CLI::App* command) {
  command->add_option("--weights", options.weights,
                      "for a Darknet .cfg, a .cnet or a zoo model: its trained weights (Darknet .weights or "
                      "safetensors); for an ONNX file: replaces its own");
}

void ModelArgs::add_preprocessing(CLI::App* command, bool with_data) {
  command->add_option("--classes", options.classes_file,
                      "class names, one a line (default: the model's own, else the dataset's, else 0, 1, ...)");
  command->add_option("--normalize", options.normalize,
                      "none, per-channel or mean-image, computed on the training images of --data, replacing the "
                      "model's own preprocessing (default for a file that stores none: per-channel; none for a "
                      "Darknet .cfg)")
      ->check(CLI::IsMember({"none", "per-channel", "mean-image"}));
  command->add_option("--mean", options.mean,
                      "per-channel mean subtracted from pixel/255, one value or one per channel "
                      "(e.g. 0.485,0.456,0.406), replacing the model's own preprocessing")
      ->delimiter(',')
      ->allow_extra_args(false);
  command
      ->add_option("--std", options.std,
                   "per-channel std that divides, one value or one per channel "
                   "(e.g. 0.229,0.224,0.225), each at least 1e-6; with --mean or alone")
      ->delimiter(',')
      ->allow_extra_args(false);
  if (with_data) {
    command->add_option("--data", data,
                        "dataset folder: its training images give the normalisation, and its classes the names, "
                        "of a model file that stores neither");
  }
}

TrainedModel ModelArgs::open(const std::string& path, const ExecutorOptions& run) const {
  TrainedModel m = open_model(path, run, options);
  std::optional<DataSplits> splits;
  if (!data.empty() && (m.pending_normalization || m.class_names.empty())) splits = load_dataset(data);
  complete_model(m, splits ? &splits->train : nullptr);
  return m;
}

}  // namespace convnet
