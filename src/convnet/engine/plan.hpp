// An execution plan compiled once from an immutable Net for one (batch, dtype, backend): every
// layer lowered to oneDNN primitives whose memory formats flow from layer to layer, fused where
// legal (conv + batch norm + residual sum + activation, batch norm + ReLU, fc + activation), with
// all activations at fixed offsets in one arena, one shared scratchpad, and weight copies
// (reordered, batch norm folded) refreshed only when the parameter store's version changes.
// A training plan (PlanOptions::training) adds the backward: ops in reverse, gradients summed
// where a value fans out, parameter gradients added into the store.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "convnet/engine/param_store.hpp"
#include "convnet/error.hpp"
#include "convnet/net.hpp"
#include "convnet/tensor.hpp"

namespace convnet {

namespace onednn {
class Engine;
}

/// Element type of a plan's activations and weights. bf16 (inference and training) keeps f32
/// accumulation, f32 biases and batch-norm statistics, f32 inputs, logits and host (fallback,
/// softmax, dropout) values, and f32 parameter gradients written into the f32 parameter store;
/// activations and activation gradients are bf16. int8: symmetric per-output-channel s8 weights, u8 (never
/// negative) or s8 activations scaled by PlanOptions::ranges, int32 accumulation, f32 logits;
/// layers without an int8 kernel (batch norm not folded, LRN, activations other than ReLU) run
/// in f32 between a dequantization and a quantization.
enum class DType { F32, BF16, Int8 };

/// The values a node's output took on calibration data: its int8 scale is max(|min|, |max|) / 255
/// (u8, when min >= 0) or / 127 (s8).
struct ActivationRange {
  float min = 0;
  float max = 0;
};

[[nodiscard]] const char* dtype_name(DType dtype);
/// Parses "f32" / "bf16" / "int8"; throws SpecError naming `what` (an option) otherwise.
[[nodiscard]] DType parse_dtype(const std::string& text, const std::string& what);
/// Empty when this CPU runs `dtype` at full speed, else why not (for a clear error).
[[nodiscard]] std::string dtype_unsupported_reason(DType dtype);

/// How activations are laid out between primitives.
enum class ActivationLayout {
  Any,   // each primitive picks (oneDNN's blocked nChw16c / nChw8c on AVX-512 / AVX2)
  Nhwc,     // channels last everywhere a convolution reads or writes (oneDNN's brgemm convolutions)
  Blocked,  // nChw16c where the depth is a multiple of 16 (oneDNN's direct jit convolutions)
};

struct PlanOptions {
  int64_t batch = 1;
  DType dtype = DType::F32;
  ActivationLayout layout = ActivationLayout::Any;
  bool training = false;           // forward_training ops (batch statistics, pooling workspaces)
                                   // and the backward; no fusion, nothing computed in place
  std::mt19937_64* rng = nullptr;  // training plans with dropout / drop path: the masks' generator
                                   // (the Executor's, drawn in the layer-by-layer path's order)
  bool fuse = true;                // false: one op per layer (for tests of the fusions)
  std::vector<std::string> taps;   // node names kept unfused and readable with Plan::tap()
  bool poison_dead = false;        // tests: before each op, fill every storage not live then with NaN
  bool allocate = true;            // false: lay out and size everything, allocate nothing (summary)
  bool emulate = false;            // bf16 on a CPU without bf16 instructions (oneDNN emulates it)
  std::vector<ActivationRange> ranges;  // int8: per node (net.nodes() order), from calibration
};

/// How a plan holds one node's output, for `convnet export`'s QDQ graph: the value the node is bound
/// to (the nodes one fused op computes share it), whether that value is u8 or s8 and its scale, and
/// for an int8 convolution or fc the per-output-channel scales its weights were quantized with.
struct NodeQuantization {
  int value = -1;
  bool quantized = false;
  bool is_unsigned = false;
  float scale = 1.0F;
  std::vector<float> weight_scales;  // empty unless the node's weights are s8
};

/// A net a training plan cannot lower yet (a layer kind without a training lowering): the caller
/// trains layer by layer instead.
class PlanUnsupported : public Error {
 public:
  using Error::Error;
};

/// One compiled step, for `describe()` and profiles.
struct PlanStep {
  std::string label;        // the nodes it computes: "layer1.0.conv1 + bn1 + relu"
  std::string kind;         // "conv", "reorder", "pool", "fallback:maxout", ...
  std::string implementation;  // oneDNN's implementation name ("brg:avx512_core", ...), or "host"
  std::string formats;      // source and destination memory formats
};

class Plan {
 public:
  /// Compiles `net` (which, like `params`, must outlive the plan). Throws Error subclasses on an
  /// unknown tap name, a size beyond what can be addressed, or a precision this CPU cannot run fast
  /// (unless options.emulate), or int8 training; PlanUnsupported for a training plan of a layer
  /// kind without a training lowering.
  Plan(const Net& net, ParamStore& params, onednn::Engine& engine, PlanOptions options);
  ~Plan();
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;

  [[nodiscard]] const PlanOptions& options() const { return options_; }

  /// Runs inference. `inputs` follow net.inputs(), each (batch, ...declared shape), plain f32.
  /// Throws Error on a plan compiled with allocate = false.
  /// The result (batch, ...output shape) stays valid until the next forward.
  const Tensor& forward(std::span<const Tensor* const> inputs);

  /// Training plans: adds dL/dparams for the last forward into the parameter store's gradients,
  /// given dL/d(output) (batch, ...output shape), plain f32. The run state the backward needs
  /// (sources, batch statistics, pooling workspaces) is this plan's own. The gradients are
  /// written in place; with `accumulate` the previous gradients are copied aside first and added
  /// back (pass false when they are known to be zero: no copy, no extra pass).
  /// `on_grads_final(node)`, when given, is called as soon as `node`'s parameter gradients are
  /// complete (right after the last op that writes them; with `accumulate`, after the adding back),
  /// once for every node with learnable parameters: a distributed run starts summing them there.
  void backward(const Tensor& grad_output, bool accumulate = true,
                const std::function<void(int node)>& on_grads_final = {});

  /// A plain f32 copy (batch, ...shape) of a tapped node's output from the last forward.
  [[nodiscard]] Tensor tap(const std::string& name) const;

  /// Bytes the plan holds: arena (activations), shared scratchpad, weight copies, output.
  [[nodiscard]] int64_t arena_bytes() const;
  [[nodiscard]] int64_t scratchpad_bytes() const;
  [[nodiscard]] int64_t weight_bytes() const;
  [[nodiscard]] int64_t peak_bytes() const;

  [[nodiscard]] std::vector<PlanStep> describe() const;

  /// Per node (net.nodes() order): how this plan holds its output (f32 everywhere but in int8 plans).
  [[nodiscard]] std::vector<NodeQuantization> node_quantization() const;

  /// Per-node wall time of forward, summed over calls while profiling is on (a fused step is
  /// charged to its first node).
  void set_profiling(bool on);
  [[nodiscard]] const std::vector<double>& node_seconds() const;
  [[nodiscard]] const std::vector<double>& node_backward_seconds() const;

  struct Compiled;  // the lowered program (engine/lowering.hpp)

 private:
  void poison_dead_storages(int op);
  /// Runs ops [begin, end), charging their time to `seconds` per node while profiling, and calls
  /// `on_grads_final` after each op for the nodes whose gradients it completed.
  void run_ops(int begin, int end, std::vector<double>& seconds, const std::function<void(int node)>& on_grads_final = {});

  const Net& net_;
  ParamStore& params_;
  PlanOptions options_;
  std::unique_ptr<Compiled> compiled_;
  bool forwarded_ = false;
};

/// What a plan of `net` at `batch` would hold, from a sizes-only compilation (nothing allocated, no
/// kernel compiled): the figures `convnet summary` prints. A training plan's arena holds the
/// forward values the backward reads and the activation gradients (the parameter gradients live in
/// the ParamStore); it throws PlanUnsupported for a net that trains layer by layer.
struct PlanMemory {
  int64_t arena = 0;       // activations at their planned offsets
  int64_t scratchpad = 0;  // shared by every primitive
  int64_t weights = 0;     // reordered / folded weight copies (beyond the parameters themselves)
  int64_t output = 0;
  int64_t peak = 0;        // the sum: what the plan holds while it runs
};
[[nodiscard]] PlanMemory plan_memory(const Net& net, int64_t batch, bool training = false,
                                     DType dtype = DType::F32);

}  // namespace convnet
