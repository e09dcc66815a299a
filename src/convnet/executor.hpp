// Runs a built Net: owns its parameters and gradients (one ParamStore), and runs batches.
// On oneDNN, inference and training go through compiled plans (engine/plan.hpp), one per batch
// size and mode seen. The reference backend, nets with a layer kind that has no training lowering,
// and backward passes that want input gradients run layer by layer: forward in topological order,
// backward in reverse, summing gradients where a tensor fans out.
#pragma once

#include <functional>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "convnet/compute.hpp"
#include "convnet/engine/param_store.hpp"
#include "convnet/engine/plan.hpp"
#include "convnet/net.hpp"
#include "convnet/tensor.hpp"

namespace convnet {

struct ExecutorOptions {
  Backend backend = Backend::OneDnn;
  uint64_t seed = 0;  // parameter initialisation, dropout and drop-path
  bool plan_inference = true;  // oneDNN inference through compiled plans (false: layer by layer)
  bool plan_training = true;   // oneDNN training through compiled plans where every layer kind
                               // has a training lowering (else, and for input gradients, layer by layer)
  ActivationLayout plan_layout = ActivationLayout::Any;
  DType precision = DType::F32;  // bf16 (inference, training), int8 (inference): through plans only
                                 // (anything else is an error)
  bool emulate = false;          // a precision this CPU cannot run fast
  std::vector<ActivationRange> ranges{};  // int8: every node's calibrated range (train/quantize.hpp)
};

/// A parameter or buffer with its full torchvision-style name; `grad` is null for buffers.
struct NamedParameter {
  std::string name;
  Tensor* value = nullptr;
  Tensor* grad = nullptr;
  const ParamSpec* spec = nullptr;
};

class Executor {
 public:
  /// Keeps a reference to `net` (which must outlive the executor) and initialises parameters.
  explicit Executor(Net& net, ExecutorOptions options = {});
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  [[nodiscard]] const Net& net() const { return net_; }
  /// Every parameter with its gradient. The caller may change values through these pointers:
  /// the next inference refreshes the plans' weight copies (or call parameters_changed()).
  [[nodiscard]] std::vector<NamedParameter> named_parameters();
  [[nodiscard]] ParamStore& parameter_store() { return *store_; }
  /// Tells the plans that parameter values changed.
  void parameters_changed() { params_dirty_ = true; }
  /// The plan the last inference forward ran (null before one, or when not planned).
  [[nodiscard]] Plan* last_plan() { return last_plan_; }
  /// Re-initialises every parameter and buffer from `seed` (He for weights unless the model says).
  void initialize_parameters(uint64_t seed);

  /// Runs a batch; `inputs` follow net.inputs(), each (N, ...declared shape). Throws ShapeError
  /// on a wrong shape. The result stays valid until the next forward.
  const Tensor& forward(std::span<const Tensor* const> inputs, bool training);
  const Tensor& forward(const Tensor& input, bool training);
  /// After forward(training = true), or any forward while input gradients are wanted: adds
  /// dL/dparams into every gradient (and computes dL/dinputs when wanted). `on_grads_final(node)`,
  /// when given, runs once per node with learnable parameters as soon as its gradients are
  /// complete (Plan::backward; the layer-by-layer path calls it for every node at the end).
  void backward(const Tensor& grad_output, const std::function<void(int node)>& on_grads_final = {});
  /// The same from an inner node: `grad` is dL/d(node's output) of the last forward; nodes after
  /// it are skipped. Needs the layer-by-layer path (input gradients wanted).
  void backward_from(int node, const Tensor& grad, const std::function<void(int node)>& on_grads_final = {});
  void zero_grad();
  /// Ask backward to also compute dL/dinputs (off by default). While on, forward runs layer by
  /// layer and keeps every node's output, and an inference forward may be followed by backward
  /// (batch norm with its running statistics, dropout as the identity): the visualisations' path.
  void set_input_gradients(bool wanted);
  [[nodiscard]] const Tensor& input_gradient(size_t input_index) const;
  /// int8: every node's calibrated range; plans compiled before are dropped.
  void set_activation_ranges(std::vector<ActivationRange> ranges);
  /// A node's output of the last layer-by-layer forward (training keeps all of them); a planned
  /// inference does not update these: read its activations through a plan's taps.
  [[nodiscard]] const Tensor* activation(int node) const { return values_.at(static_cast<size_t>(node)); }
  [[nodiscard]] RunContext& context() { return context_; }
  /// The generator behind dropout and drop-path masks (saved in checkpoints for exact resume).
  [[nodiscard]] std::mt19937_64& rng() { return rng_; }
  /// Per-node wall time of forward and backward, summed over calls while profiling is on.
  void set_profiling(bool on);
  [[nodiscard]] const std::vector<double>& forward_seconds() const { return forward_seconds_; }
  [[nodiscard]] const std::vector<double>& backward_seconds() const { return backward_seconds_; }

 private:
  const Tensor& planned_forward(std::span<const Tensor* const> inputs, int64_t batch, bool training);
  /// A gradient buffer of `dims` (contents undefined): a spare one of the same size, else new.
  Tensor take_buffer(const std::vector<int64_t>& dims);

  Net& net_;
  ExecutorOptions options_;
  std::mt19937_64 rng_;
  std::unique_ptr<onednn::Engine> engine_;
  RunContext context_;
  std::unique_ptr<ParamStore> store_;              // per node, in ParamSpec order
  std::vector<std::unique_ptr<Plan>> plans_;       // inference plans, most recent last
  Plan* last_plan_ = nullptr;
  Plan* training_plan_ = nullptr;                  // the plan of the last training forward, if planned
  bool training_plannable_ = true;                 // false once a training plan was refused
  bool params_dirty_ = true;
  std::vector<Tensor> owned_;                      // node outputs this executor allocated
  std::vector<const Tensor*> values_;              // where each node's output is now
  std::vector<Tensor> grad_values_;                // dL/d(node output) during backward
  std::vector<Tensor> spare_;                      // consumed gradient buffers, reused next step
  std::vector<int> last_reader_;                   // memory plan: last node reading each output
  std::vector<double> forward_seconds_;
  std::vector<double> backward_seconds_;
  bool profiling_ = false;
  bool trained_forward_ = false;
  bool input_gradients_ = false;
  bool inference_backward_ = false;                // the last forward: inference kept for a backward
  bool grads_zero_ = false;                        // zero_grad() since the last backward: plans overwrite
};

}  // namespace convnet
