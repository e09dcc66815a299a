// Softmax cross-entropy through the reference kernel (it is O(N*F), never the bottleneck).
#include "convnet/loss.hpp"

#include <algorithm>

#include "convnet/error.hpp"
#include "convnet/kernels/reference/softmax.hpp"

namespace convnet {

double softmax_cross_entropy(const Tensor& logits, std::span<const int64_t> labels, Tensor& grad_logits,
                             int64_t mean_over) {
  const int64_t batch = logits.dims().empty() ? 0 : logits.dim(0);
  const int64_t features = batch == 0 ? 0 : logits.numel() / batch;
  if (static_cast<int64_t>(labels.size()) != batch) {
    throw Error("softmax_cross_entropy: " + std::to_string(labels.size()) + " labels for a batch of " +
                std::to_string(batch));
  }
  for (int64_t label : labels) {
    if (label < 0 || label >= features) {
      throw Error("softmax_cross_entropy: label " + std::to_string(label) + " outside [0, " + std::to_string(features) + ")");
    }
  }
  if (grad_logits.dims() != logits.dims()) grad_logits = Tensor(logits.dims());
  const float loss = kernels::reference::softmax_cross_entropy_forward(batch, features, logits.data(), labels.data(),
                                                                       grad_logits.data());
  // dL/dx = (p - onehot(label)) / M, in place over the probabilities.
  const auto divisor = static_cast<float>(mean_over > 0 ? mean_over : batch);
  for (int64_t n = 0; n < batch; ++n) {
    float* g = grad_logits.data() + n * features;
    g[labels[static_cast<size_t>(n)]] -= 1.0f;
    for (int64_t f = 0; f < features; ++f) g[f] /= divisor;
  }
  return loss;
}

int64_t count_top1(const Tensor& logits, std::span<const int64_t> labels) {
  const int64_t classes = logits.numel() / std::max<int64_t>(logits.dims().empty() ? 1 : logits.dim(0), 1);
  int64_t correct = 0;
  for (size_t n = 0; n < labels.size(); ++n) {
    const float* row = logits.data() + static_cast<int64_t>(n) * classes;
    correct += std::max_element(row, row + classes) - row == labels[n] ? 1 : 0;
  }
  return correct;
}

}  // namespace convnet
