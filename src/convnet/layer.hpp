// The Layer interface: what every layer kind tells the graph and the analyser (output shape,
// parameters, cost, receptive field, the formulas behind them). One file per layer implements it.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "convnet/compute.hpp"
#include "convnet/init.hpp"
#include "convnet/shape.hpp"

namespace convnet {

/// A tensor a layer owns: a learnable parameter, or a buffer such as batch norm's running mean.
struct ParamSpec {
  std::string name;             // suffix after the layer path: "weight", "bias", "running_mean"
  std::vector<int64_t> dims;    // e.g. (out_channels, in_channels / groups, kernel_h, kernel_w)
  bool is_bias = false;         // counted apart in "parameters without biases"
  bool is_buffer = false;       // not learnable (running statistics)
  Init init = Init::Zeros;
  int64_t fan_in = 0;           // inputs per output for He/Xavier; 0 means numel / dims[0]
  [[nodiscard]] int64_t numel() const;
  [[nodiscard]] int64_t input_fan() const;
};

/// Receptive field of one output element on the network input: size and step (jump), per axis.
/// `global` marks layers that see the whole input (fully connected, global pooling).
struct ReceptiveField {
  int64_t size_h = 1;
  int64_t size_w = 1;
  int64_t jump_h = 1;
  int64_t jump_w = 1;
  bool global = false;
  bool operator==(const ReceptiveField&) const = default;
};

/// Argument lists of forward/backward: input activations, parameters (or their gradients), and
/// where each input's gradient goes.
using Inputs = std::span<const Tensor* const>;
using Params = std::span<Tensor* const>;
using GradTargets = std::span<const GradTarget>;

/// One line of `convnet explain`: a quantity, its formula, the numbers put in, and the result.
struct Formula {
  std::string quantity;      // "output width"
  std::string formula;       // "W2 = (W1 - F + 2P)/S + 1"
  std::string substituted;   // "(227 - 11 + 2*0)/4 + 1"
  std::string result;        // "55"
};

/// A layer kind. Shapes are per image (no batch). Methods taking `inputs` receive the output
/// shapes of the layer's inputs, already checked by output_shape().
class Layer {
 public:
  virtual ~Layer() = default;

  /// The model-language word for this kind: "conv", "maxpool", "relu", ...
  [[nodiscard]] virtual std::string kind() const = 0;
  /// The layer's arguments in the model language, e.g. "96 11x11 stride 4".
  [[nodiscard]] virtual std::string args() const { return ""; }
  /// How many inputs it takes (1 for most; add/mul/concat take 2 or more).
  [[nodiscard]] virtual int min_inputs() const { return 1; }
  [[nodiscard]] virtual int max_inputs() const { return 1; }

  /// Output shape for these input shapes; throws ShapeError with the formula and a hint.
  [[nodiscard]] virtual Shape output_shape(std::span<const Shape> inputs) const = 0;
  /// Parameters and buffers, torchvision-named ("weight", "bias", "running_mean").
  [[nodiscard]] virtual std::vector<ParamSpec> parameters(std::span<const Shape> inputs) const;
  /// Multiply-accumulates per image. Only layers that multiply by weights count (conv, fc, ...).
  [[nodiscard]] virtual int64_t macs(std::span<const Shape> inputs, const Shape& output) const;
  /// True if the output can overwrite the input (ReLU): no new activation memory.
  [[nodiscard]] virtual bool in_place() const { return false; }
  /// Receptive field of the output given the (combined) receptive field of the inputs.
  [[nodiscard]] virtual ReceptiveField receptive_field(const ReceptiveField& input) const { return input; }
  /// The formulas behind the output shape, parameters and MACs, with the numbers put in.
  [[nodiscard]] virtual std::vector<Formula> explain(std::span<const Shape> inputs, const Shape& output) const;

  /// Computes `output` (N, ...) from `inputs` (N, ...); `params` in parameters() order. `output`
  /// arrives sized; it may be the same object as *inputs[0] when in_place() (inference only).
  /// Training-mode state the backward needs (masks, argmax, batch statistics) stays in the layer.
  virtual void forward(const RunContext& ctx, Inputs inputs, Params params, Tensor& output);
  /// Adds dL/dparams into grad_params, and writes or adds (GradTarget::accumulate) dL/dinputs.
  virtual void backward(const RunContext& ctx, Inputs inputs, const Tensor& output, const Tensor& grad_output,
                        Params params, Params grad_params, GradTargets grad_inputs);
};

/// Checks the input is a (C, H, W) volume; throws ShapeError otherwise.
void require_volume(std::span<const Shape> inputs, const std::string& kind);

}  // namespace convnet
