// Checks that run before a training's first step, so bad input costs seconds, not an epoch:
// option ranges (from the command line or a checkpoint's stored settings), the data (non-empty
// sets, one image size and class count, labels within the network's outputs), a resumed
// checkpoint's position fields, and the output folder (writable, locked against a second run).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "convnet/data/dataset.hpp"
#include "convnet/error.hpp"
#include "convnet/train/trainer.hpp"

namespace convnet {

/// Throws SpecError naming the option, its value and the accepted range ("--momentum 5: ...").
/// With `checkpoint` set, the options were read from that checkpoint's settings: throws IoError
/// naming the checkpoint and the field instead.
void check_options(const TrainOptions& options, const std::string& checkpoint = "");

/// How many training images `validation` holds out of `train_images` (0: none). `validation`
/// below 1 is a fraction, from 1 on a number of images. Throws SpecError when that leaves no
/// validation image or no training image.
[[nodiscard]] int64_t validation_images(double validation, int64_t train_images);

/// The data checks: every set non-empty, the test set's image size and class count equal to the
/// training set's, every label below `classes` (the network's outputs), crops that fit the images,
/// PCA lighting only on 3-channel images. Throws SpecError naming the data folder and the set.
void check_data(const TrainOptions& options, const DataSplits& data, const Dataset& validation, int64_t classes);

/// The checkpoint's metadata is JSON, which holds only UTF-8: throws SpecError when the model text
/// or a class name is not, before an epoch is spent on a run whose checkpoint could not be written.
void check_checkpoint_text(const std::string& model_text, const std::string& model_file,
                           const std::vector<std::string>& class_names, const std::string& data);

/// Where a checkpoint stopped: read from its metadata, every field checked against the run
/// (IoError naming the checkpoint and the field).
struct ResumePoint {
  int64_t epoch = 0;        // completed epochs
  int64_t batch = 0;        // batches done in the current epoch
  int64_t step = 0;         // optimiser steps so far
  double loss_sum = 0, correct = 0, seen = 0, epoch_seconds = 0;
};
[[nodiscard]] ResumePoint read_resume_point(const nlohmann::json& meta, const std::string& checkpoint,
                                            int64_t epochs, int64_t batches_per_epoch, int64_t batch_size);

/// A JSON value as T without undefined behaviour: an integral T takes only JSON integers within its
/// range, a floating T any number within its range (nlohmann's get<> casts 1e20 to int64 or 1e300
/// to float, which C++ leaves undefined: found by fuzz_checkpoint). Other T as get<T>(). Throws
/// nlohmann::json::type_error (callers name the file and field).
template <typename T>
[[nodiscard]] T json_value(const nlohmann::json& value) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    if (!value.is_number_integer()) throw nlohmann::json::type_error::create(302, "not an integer", &value);
    const bool fits = value.is_number_unsigned()
                          ? value.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max())
                          : value.get<int64_t>() >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
                                value.get<int64_t>() <= static_cast<int64_t>(std::numeric_limits<T>::max());
    if (!fits) throw nlohmann::json::type_error::create(302, "integer out of range", &value);
    return value.is_number_unsigned() ? static_cast<T>(value.get<uint64_t>()) : static_cast<T>(value.get<int64_t>());
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!value.is_number()) throw nlohmann::json::type_error::create(302, "not a number", &value);
    const double d = value.get<double>();
    if (std::fabs(d) > static_cast<double>(std::numeric_limits<T>::max())) {
      throw nlohmann::json::type_error::create(302, "number out of range", &value);
    }
    return static_cast<T>(d);
  } else {
    return value.get<T>();
  }
}

/// Reads a required field of a checkpoint's metadata as T; IoError naming the checkpoint and field.
template <typename T>
[[nodiscard]] T checkpoint_field(const nlohmann::json& meta, const std::string& field, const std::string& checkpoint) {
  if (!meta.is_object() || !meta.contains(field)) throw IoError(checkpoint + ": checkpoint field '" + field + "' is missing");
  try {
    return json_value<T>(meta.at(field));
  } catch (const nlohmann::json::exception&) {
    throw IoError(checkpoint + ": checkpoint field '" + field + "' has the wrong type (" + meta.at(field).dump() + ")");
  }
}

/// The output folder of a run, created when missing and held with an exclusive flock on
/// DIR/train.lock until destruction, so a second `convnet train` into the same folder is refused
/// while this one runs; temporary files a killed run left behind (*.tmp) are removed once the lock
/// is held. Throws IoError when the folder cannot be created or written, or is locked.
class RunLock {
 public:
  explicit RunLock(const std::string& dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace convnet
