// Model parallelism as AlexNet was trained: "half the neurons on each GPU; the GPUs communicate
// only at certain layers". A chain network is cut into `towers` channel slices, one per rank:
// rank r holds output channels [r C / T, (r + 1) C / T) of every conv, fc and batch norm (the
// first-dimension slice of each parameter). A layer grouped into a multiple of T groups reads
// only its own slice (conv2, conv4, conv5 of alexnet-2gpu); a layer that reads every channel
// (conv3, the fc layers, LRN and dropout, whose masks must be the single-process ones) gets the
// whole volume first: the ranks exchange their slices there (an all-gather), and the backward
// sums the partial input gradients over ranks and keeps its own slice. Each stretch between
// exchanges is an ordinary Net run by its own Executor.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "convnet/distributed/communicator.hpp"
#include "convnet/executor.hpp"
#include "convnet/net.hpp"

namespace convnet {

class TowerSplit {
 public:
  /// Splits `full` for this rank of `comm` (towers = comm.size()); throws SpecError naming the
  /// layer that cannot be split (a branch, a kind without a per-channel meaning, channels that do
  /// not divide). The parameters start as rank r's slice of `full_params`.
  TowerSplit(const Net& full, ParamStore& full_params, Communicator& comm, const ExecutorOptions& options);
  ~TowerSplit();
  TowerSplit(const TowerSplit&) = delete;
  TowerSplit& operator=(const TowerSplit&) = delete;

  /// Full logits (N, classes) on every rank.
  const Tensor& forward(const Tensor& images, bool training);
  /// dL/dlogits (N, classes), the same on every rank: adds this rank's parameter gradients.
  void backward(const Tensor& grad_logits);
  void zero_grad();
  /// This rank's parameter slices, named as in the full net (for the optimiser).
  [[nodiscard]] std::vector<NamedParameter> named_parameters();
  /// Writes every rank's slices back into the full layout on every rank.
  void gather(ParamStore& full_params);
  /// This rank's slice of a tensor of the full net's layout (a parameter or its optimiser state)
  /// and the reverse: every rank's slice of a tensor of `full_dims`, on every rank.
  [[nodiscard]] Tensor slice(const Tensor& full) const;
  [[nodiscard]] Tensor gather(const Tensor& mine, const std::vector<int64_t>& full_dims);
  /// The dropout generator, shared by the stages in the single-process order.
  [[nodiscard]] std::mt19937_64& rng() { return rng_; }
  /// One line per stage: its layers and what happens after it ("exchange", "slice").
  [[nodiscard]] std::string describe() const;

  struct Stage;

 private:
  Communicator& comm_;
  std::vector<std::unique_ptr<Stage>> stages_;
  std::mt19937_64 rng_;
  Tensor logits_;
};

}  // namespace convnet
