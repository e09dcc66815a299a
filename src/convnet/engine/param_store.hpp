// The parameter store: every parameter and buffer of a net in one contiguous block of f32 master
// values, and every learnable parameter's gradient in a second block (what a checkpoint and an MPI
// all-reduce want). A version counter tells plans when their reordered / folded copies are stale.
// The gradient block is allocated on first use, so inference holds no gradients.
#pragma once

#include <cstdint>
#include <vector>

#include "convnet/net.hpp"
#include "convnet/tensor.hpp"

namespace convnet {

class ParamStore {
 public:
  /// Lays out the parameters of every node of `net` (in node order, then ParamSpec order),
  /// each starting on a 64-byte boundary; values zero until initialised. allocate = false gives a
  /// store of null views, enough to compile a sizes-only plan (PlanOptions::allocate).
  explicit ParamStore(const Net& net, bool allocate = true);
  ParamStore(const ParamStore&) = delete;
  ParamStore& operator=(const ParamStore&) = delete;

  /// Views of node `node`'s parameters and gradients (an empty tensor for a buffer's gradient,
  /// and for every gradient until allocate_grads(); the Tensor objects stay where they are).
  [[nodiscard]] std::vector<Tensor>& values(size_t node) { return values_.at(node); }
  [[nodiscard]] std::vector<Tensor>& grads(size_t node) { return grads_.at(node); }
  /// Allocates the gradient block (zero) if it is not there yet.
  void allocate_grads();
  [[nodiscard]] bool has_grads() const { return !grads_block_.empty() || grad_total_ == 0; }
  [[nodiscard]] const Tensor& value(size_t node, size_t param) const { return values_.at(node).at(param); }

  /// All values / all gradients as one span each (padding between tensors included, zero).
  [[nodiscard]] std::span<float> value_block() { return values_block_.span(); }
  [[nodiscard]] std::span<float> grad_block() {
    allocate_grads();
    return grads_block_.span();
  }
  void zero_grad() {
    allocate_grads();
    grads_block_.fill(0.0f);
  }

  /// Bumped by whoever changes values (optimiser steps, loaders, initialisation).
  [[nodiscard]] uint64_t version() const { return version_; }
  void bump_version() { ++version_; }

 private:
  Tensor values_block_;  // (total): every parameter and buffer
  Tensor grads_block_;   // (total learnable)
  std::vector<std::vector<Tensor>> values_;
  std::vector<std::vector<Tensor>> grads_;
  std::vector<std::vector<int64_t>> grad_offsets_;  // per node and parameter; -1 for buffers
  int64_t grad_total_ = 0;
  uint64_t version_ = 1;
};

}  // namespace convnet
