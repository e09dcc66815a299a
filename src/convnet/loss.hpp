// Softmax cross-entropy, the classifier loss: numerically stable, mean over the batch.
#pragma once

#include <cstdint>
#include <span>

#include "convnet/tensor.hpp"

namespace convnet {

/// Loss of (N, F) logits against labels in [0, F); writes dL/dlogits = (softmax - onehot) / N
/// into `grad_logits` (resized as needed). Throws Error on a label out of range.
double softmax_cross_entropy(const Tensor& logits, std::span<const int64_t> labels, Tensor& grad_logits);

}  // namespace convnet
