// Evaluation: softmax probabilities per batch (outputs that are not finite refused), then scoring.
#include "convnet/train/evaluate.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "convnet/error.hpp"
#include "convnet/finite.hpp"
#include "convnet/kernels/reference/softmax.hpp"

namespace convnet {

void check_finite_output(const Tensor& output, const std::function<std::string(int64_t)>& image) {
  const int64_t i = first_non_finite({output.data(), static_cast<size_t>(output.numel())});
  if (i < 0) return;
  throw Error("the network's output for " + image(i / (output.numel() / output.dim(0))) +
              " is not finite (NaN or Inf): its weights or preprocessing overflow f32");
}

void class_probabilities(const Tensor& logits, float* probabilities, const std::function<std::string(int64_t)>& image) {
  check_finite_output(logits, image);
  const int64_t batch = logits.dim(0);
  kernels::reference::softmax_forward<float>({batch, logits.numel() / batch, 1}, logits.data(), probabilities);
}

Evaluation evaluate(Executor& executor, const Dataset& data, const Normalization& norm, int64_t batch,
                    bool keep_probabilities) {
  LoaderOptions options{.batch_size = batch, .shuffle = false};
  BatchLoader loader(data, norm, options, 0);
  Tensor images;
  std::vector<int64_t> labels;
  std::vector<float> probabilities;
  int64_t classes = 0;
  while (loader.next(images, labels)) {
    const Tensor& logits = executor.forward(images, false);
    classes = logits.numel() / logits.dim(0);
    const size_t offset = probabilities.size();
    probabilities.resize(offset + static_cast<size_t>(logits.numel()));
    const auto first = static_cast<int64_t>(offset) / classes;
    class_probabilities(logits, probabilities.data() + offset,
                        [&](int64_t row) { return "image " + std::to_string(first + row) + " of " + data.name; });
  }
  Evaluation e = score_probabilities(probabilities, data.labels, classes);
  if (keep_probabilities) e.probabilities = std::move(probabilities);
  return e;
}

Evaluation score_probabilities(const std::vector<float>& probabilities, const std::vector<int64_t>& labels,
                               int64_t classes) {
  Evaluation e;
  e.count = static_cast<int64_t>(labels.size());
  e.confusion.assign(static_cast<size_t>(classes * classes), 0);
  if (e.count == 0 || classes == 0) return e;
  int64_t correct1 = 0, correct5 = 0;
  double loss = 0;
  for (int64_t n = 0; n < e.count; ++n) {
    const float* p = probabilities.data() + n * classes;
    const int64_t label = labels[static_cast<size_t>(n)];
    if (label < 0 || label >= classes) {
      throw Error("label " + std::to_string(label) + " of test image " + std::to_string(n) + " is outside the model's " +
                  std::to_string(classes) + " classes");
    }
    const int64_t predicted = std::max_element(p, p + classes) - p;
    // Top-5: the label is among the five largest when fewer than five classes score higher.
    const int64_t higher = std::count_if(p, p + classes, [&](float v) { return v > p[label]; });
    correct1 += predicted == label;
    correct5 += higher < 5;
    loss -= std::log(std::max(p[label], 1e-30f));  // clamp: a probability that underflowed to 0
    ++e.confusion[static_cast<size_t>(label * classes + predicted)];
  }
  e.loss = loss / static_cast<double>(e.count);
  e.top1 = static_cast<double>(correct1) / static_cast<double>(e.count);
  e.top5 = static_cast<double>(correct5) / static_cast<double>(e.count);
  return e;
}

std::string format_confusion(const Evaluation& e, const std::vector<std::string>& class_names) {
  const auto classes = static_cast<int64_t>(std::min(class_names.size(), static_cast<size_t>(std::sqrt(e.confusion.size()))));
  std::string out = "confusion matrix (rows: true class, columns: predicted)\n";
  char cell[32];
  out += std::string(14, ' ');
  for (int64_t c = 0; c < classes; ++c) {
    std::snprintf(cell, sizeof cell, "%7lld", static_cast<long long>(c));
    out += cell;
  }
  out += "\n";
  for (int64_t r = 0; r < classes; ++r) {
    std::snprintf(cell, sizeof cell, "%2lld %-11.11s", static_cast<long long>(r), class_names[static_cast<size_t>(r)].c_str());
    out += cell;
    for (int64_t c = 0; c < classes; ++c) {
      std::snprintf(cell, sizeof cell, "%7lld", static_cast<long long>(e.confusion[static_cast<size_t>(r * classes + c)]));
      out += cell;
    }
    out += "\n";
  }
  return out;
}

double top1_agreement(const std::vector<float>& a, const std::vector<float>& b, int64_t classes) {
  if (classes < 1 || a.size() != b.size() || a.empty()) throw Error("top1_agreement: tables of different sizes");
  const auto n = static_cast<int64_t>(a.size()) / classes;
  int64_t same = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* ra = a.data() + i * classes;
    const float* rb = b.data() + i * classes;
    same += std::max_element(ra, ra + classes) - ra == std::max_element(rb, rb + classes) - rb;
  }
  return static_cast<double>(same) / static_cast<double>(n);
}

}  // namespace convnet
