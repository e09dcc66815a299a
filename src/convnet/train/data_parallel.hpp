// Data-parallel training steps: every rank computes the gradient of its piece of the same global
// batch and the pieces' gradients are summed over ranks, so each rank takes the same optimiser
// step. Two ways to sum:
//  - fast (default): one forward and backward per rank, the loss gradient scaled by the global
//    batch, gradients summed with MPI's all-reduce in buckets started while the backward runs;
//  - deterministic (groups > 0): the batch is cut into `groups` fixed groups, each group's gradient
//    computed alone (its dropout masks seeded by step and group, its augmentation by sample) and
//    the group gradients added in one fixed binary tree, the part below each rank on that rank and
//    the rest across ranks; so 1, 2, 4 ... `groups` ranks produce the same bits.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "convnet/data/loader.hpp"
#include "convnet/distributed/communicator.hpp"
#include "convnet/executor.hpp"
#include "convnet/train/evaluate.hpp"

namespace convnet {

/// Deterministic mode's gradient groups per batch unless told: up to 8 ranks give the same bits.
inline constexpr int64_t kDefaultGradientGroups = 8;

struct DataParallelOptions {
  int64_t groups = 0;                  // > 0: deterministic, with this many gradient groups per batch
  uint64_t seed = 0;                   // the run's seed (dropout masks per step and group / rank)
  int64_t bucket_bytes = 25 << 20;     // gradient all-reduce buckets (PyTorch DDP's default size)
};

/// What a step saw, summed over ranks: every rank holds the same totals.
struct StepTotals {
  double loss_sum = 0;  // cross-entropy summed over the batch's images
  double correct = 0;   // top-1 hits
  double images = 0;
  bool stop = false;    // some rank asked to stop (a signal) during the step
};

/// Where a run's step time went, summed over its steps on this rank.
struct StepTiming {
  int64_t steps = 0;
  double seconds = 0;             // whole steps: forward, backward, sums
  double waiting_seconds = 0;     // blocked on the gradient sum after this rank's backward ended
  int64_t bytes_per_step = 0;     // gradient bytes each rank contributes per step (0: one process)
};

class DataParallel {
 public:
  /// Throws SpecError when the options cannot work with this many ranks (deterministic: the
  /// groups must be a power of two and a multiple of the ranks, themselves a power of two).
  DataParallel(Communicator& comm, Executor& executor, DataParallelOptions options);

  /// `options` restricted to this rank's share of every batch.
  [[nodiscard]] LoaderOptions shard(LoaderOptions options) const;

  /// Forward and backward of this rank's piece (`images` (n, ...), `labels` (n)) of a global batch
  /// of `batch_images`; afterwards the parameter store's gradient block holds dL/dparams of the
  /// global batch's mean loss on every rank. `step` counts optimiser steps (seeds dropout).
  StepTotals step(const Tensor& images, std::span<const int64_t> labels, int64_t batch_images, int64_t step,
                  bool stop_requested);

  [[nodiscard]] const StepTiming& timing() const { return timing_; }

  /// Makes every rank's parameters and buffers rank 0's.
  void broadcast_parameters();
  /// Running statistics (batch norm's buffers): each rank's replaced by the mean over ranks, so
  /// evaluation and checkpoints see one model.
  void average_buffers();
  /// Evaluation of `data` with each rank scoring its contiguous share: loss, top-1 and top-5
  /// summed over ranks (no confusion matrix), the same on every rank.
  [[nodiscard]] Evaluation evaluate(const Dataset& data, const Normalization& norm, int64_t batch);

 private:
  /// Dropout masks from (seed, step, part): a rank's in the fast mode, a group's when deterministic,
  /// so they do not depend on where a run resumed.
  void seed_dropout(int64_t step, uint64_t part);
  double forward_backward(const Tensor& images, std::span<const int64_t> labels, int64_t batch_images,
                          double& correct, const std::function<void(int)>& on_grads_final);
  void sum_fast(const Tensor& images, std::span<const int64_t> labels, int64_t batch_images, StepTotals& totals);
  void sum_deterministic(const Tensor& images, std::span<const int64_t> labels, int64_t batch_images, int64_t step,
                         StepTotals& totals);

  Communicator& comm_;
  Executor& executor_;
  DataParallelOptions options_;
  Tensor grad_logits_;
  StepTiming timing_;
  std::vector<std::pair<int64_t, int64_t>> buckets_;  // gradient block ranges [begin, end), last first
  std::vector<int64_t> bucket_of_node_;              // per node: its bucket (-1: no gradients)
  std::vector<int> waiting_;                         // per bucket: nodes whose gradients are not final yet
  std::vector<std::vector<float>> tree_;             // deterministic: partial sums (gradient-block sized)
  std::vector<int> tree_level_;                      // ... the stack in use: each one's tree level
};

}  // namespace convnet
