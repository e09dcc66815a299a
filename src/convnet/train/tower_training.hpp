// Training with the model split into towers (TowerSplit), one per rank: every rank reads the
// same batch, computes and updates only its tower's parameters, and the full network (kept beside
// them for evaluation and checkpoints, which stay in the single-process layout) is gathered from
// the towers before each evaluation and checkpoint.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "convnet/distributed/towers.hpp"
#include "convnet/train/data_parallel.hpp"
#include "convnet/train/optimizer.hpp"

namespace convnet {

class TowerTraining {
 public:
  /// Slices `full`'s parameters, `optimizer`'s state (a resumed run's, full-shaped) and generator
  /// into this rank's tower; throws SpecError when the net cannot be split or the rank count is
  /// not `towers`.
  TowerTraining(Communicator& comm, int64_t towers, const Net& net, Executor& full, Optimizer& optimizer,
                const ExecutorOptions& options);

  /// Forward and backward of the whole batch through the towers (dL/dparams of this tower).
  [[nodiscard]] StepTotals step(const Tensor& images, std::span<const int64_t> labels, bool stop_requested);
  /// This tower's parameters, named as in the full net, for the optimiser.
  [[nodiscard]] std::vector<NamedParameter>& parameters() { return parameters_; }
  /// The full executor's parameters and generator become the towers'.
  void gather_parameters();
  /// The optimiser's state in the full layout (every rank's slices), for a checkpoint.
  [[nodiscard]] std::unique_ptr<Optimizer> full_optimizer_state(const OptimizerOptions& options);

 private:
  Communicator& comm_;
  Executor& full_;
  Optimizer& optimizer_;
  TowerSplit split_;
  std::vector<NamedParameter> parameters_;
  Tensor grad_logits_;
};

}  // namespace convnet
