// Evaluation of a classifier on a dataset: loss, top-1, top-5 and the confusion matrix; and of an
// ensemble that averages its members' probabilities.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "convnet/data/loader.hpp"
#include "convnet/executor.hpp"

namespace convnet {

struct Evaluation {
  int64_t count = 0;
  double loss = 0;                 // mean cross-entropy
  double top1 = 0;                 // fraction correct
  double top5 = 0;
  std::vector<int64_t> confusion;  // (classes, classes): row = true label, column = prediction
  std::vector<float> probabilities;  // (N, classes), kept when asked
};

/// Throws Error "the network's output for IMAGE is not finite (NaN or Inf): ..." for the first row
/// of `output` (N, ...) holding a NaN or an infinity, IMAGE being `image(row)`: a probability, a
/// loss or a picture computed from such a row would mean nothing.
void check_finite_output(const Tensor& output, const std::function<std::string(int64_t)>& image);

/// Softmax over each row of `logits` (N, classes) into `probabilities` (N * classes values), after
/// check_finite_output.
void class_probabilities(const Tensor& logits, float* probabilities, const std::function<std::string(int64_t)>& image);

/// Runs `data` through the executor in inference mode, `batch` images at a time; an output that is
/// not finite is an Error naming the image (check_finite_output).
[[nodiscard]] Evaluation evaluate(Executor& executor, const Dataset& data, const Normalization& norm, int64_t batch,
                                  bool keep_probabilities = false);

/// Scores given probabilities (N, classes) against labels: the ensemble's evaluation.
[[nodiscard]] Evaluation score_probabilities(const std::vector<float>& probabilities, const std::vector<int64_t>& labels,
                                             int64_t classes);

/// The fraction of images (rows of two (N, classes) probability tables) whose most probable class
/// is the same in both.
[[nodiscard]] double top1_agreement(const std::vector<float>& a, const std::vector<float>& b, int64_t classes);

/// The confusion matrix as text, with class names.
[[nodiscard]] std::string format_confusion(const Evaluation& e, const std::vector<std::string>& class_names);

}  // namespace convnet
