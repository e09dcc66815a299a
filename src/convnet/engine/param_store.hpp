// The parameter store: every parameter and buffer of a net in one contiguous block of f32 master
// values, and every learnable parameter's gradient in a second block (what a checkpoint and an MPI
// all-reduce want). A version counter tells plans when their reordered / folded copies are stale.
#pragma once

#include <cstdint>
#include <vector>

#include "convnet/net.hpp"
#include "convnet/tensor.hpp"

namespace convnet {

class ParamStore {
 public:
  /// Lays out the parameters of every node of `net` (in node order, then ParamSpec order),
  /// each starting on a 64-byte boundary; values zero until initialised.
  explicit ParamStore(const Net& net);
  ParamStore(const ParamStore&) = delete;
  ParamStore& operator=(const ParamStore&) = delete;

  /// Views of node `node`'s parameters and gradients (an empty tensor for a buffer's gradient).
  [[nodiscard]] std::vector<Tensor>& values(size_t node) { return values_.at(node); }
  [[nodiscard]] std::vector<Tensor>& grads(size_t node) { return grads_.at(node); }
  [[nodiscard]] const Tensor& value(size_t node, size_t param) const { return values_.at(node).at(param); }

  /// All values / all gradients as one span each (padding between tensors included, zero).
  [[nodiscard]] std::span<float> value_block() { return values_block_.span(); }
  [[nodiscard]] std::span<float> grad_block() { return grads_block_.span(); }
  void zero_grad() { grads_block_.fill(0.0f); }

  /// Bumped by whoever changes values (optimiser steps, loaders, initialisation).
  [[nodiscard]] uint64_t version() const { return version_; }
  void bump_version() { ++version_; }

 private:
  Tensor values_block_;  // (total): every parameter and buffer
  Tensor grads_block_;   // (total learnable)
  std::vector<std::vector<Tensor>> values_;
  std::vector<std::vector<Tensor>> grads_;
  uint64_t version_ = 1;
};

}  // namespace convnet
