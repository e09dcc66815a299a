// Tower training: slicing the optimiser state in, stepping, gathering the full model out.
#include "convnet/train/tower_training.hpp"

#include <map>

#include "convnet/loss.hpp"

namespace convnet {
namespace {

Communicator& checked(Communicator& comm, int64_t towers) {
  if (comm.size() != towers) {
    throw SpecError("--towers " + std::to_string(towers) + " needs one rank per tower (mpirun -np " +
                    std::to_string(towers) + "); this run has " + std::to_string(comm.size()));
  }
  return comm;
}

}  // namespace

TowerTraining::TowerTraining(Communicator& comm, int64_t towers, const Net& net, Executor& full, Optimizer& optimizer,
                             const ExecutorOptions& options)
    : comm_(checked(comm, towers)), full_(full), optimizer_(optimizer),
      split_(net, full.parameter_store(), comm, options) {
  split_.rng() = full_.rng();
  for (const auto& [name, state] : optimizer_.state()) optimizer_.restore(name, split_.slice(*state));
  parameters_ = split_.named_parameters();
}

StepTotals TowerTraining::step(const Tensor& images, std::span<const int64_t> labels, bool stop_requested) {
  const Tensor& logits = split_.forward(images, true);
  const double loss = softmax_cross_entropy(logits, labels, grad_logits_);
  split_.zero_grad();
  split_.backward(grad_logits_);
  return {loss * static_cast<double>(labels.size()), static_cast<double>(count_top1(logits, labels)),
          static_cast<double>(labels.size()), comm_.any(stop_requested)};
}

void TowerTraining::gather_parameters() {
  split_.gather(full_.parameter_store());
  full_.parameters_changed();
  full_.rng() = split_.rng();
}

std::unique_ptr<Optimizer> TowerTraining::full_optimizer_state(const OptimizerOptions& options) {
  std::map<std::string, std::vector<int64_t>> dims;
  for (const NamedParameter& p : full_.named_parameters()) dims[p.name] = p.value->dims();
  std::unique_ptr<Optimizer> full = make_optimizer(options);
  full->set_steps(optimizer_.steps());
  for (const auto& [name, state] : optimizer_.state()) {
    const std::string parameter = name.substr(name.find('.') + 1);  // "momentum.conv1.weight" -> "conv1.weight"
    full->restore(name, split_.gather(*state, dims.at(parameter)));
  }
  return full;
}

}  // namespace convnet
