// Softmax cross-entropy, the classifier loss: numerically stable, mean over the batch.
#pragma once

#include <cstdint>
#include <span>

#include "convnet/tensor.hpp"

namespace convnet {

/// Loss of (N, F) logits against labels in [0, F); writes dL/dlogits = (softmax - onehot) / M
/// into `grad_logits` (resized as needed), M = `mean_over` or, when 0, N (a piece of a larger
/// batch passes the whole batch's size). Returns the mean loss over the N rows. Throws Error on a
/// label out of range.
double softmax_cross_entropy(const Tensor& logits, std::span<const int64_t> labels, Tensor& grad_logits,
                             int64_t mean_over = 0);

/// How many rows of (N, F) logits have their largest value at the label.
[[nodiscard]] int64_t count_top1(const Tensor& logits, std::span<const int64_t> labels);

}  // namespace convnet
