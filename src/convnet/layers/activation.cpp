// Activation arguments and shapes: every one maps an input shape to the same output shape.
#include "convnet/layers/activation.hpp"

#include "convnet/error.hpp"
#include "convnet/layers/format.hpp"

namespace convnet {
namespace {

Shape same_shape(std::span<const Shape> inputs) {
  if (inputs.empty()) throw ShapeError("needs an input");
  return inputs[0];
}

template <class L>
std::unique_ptr<Layer> no_arguments(LayerArgs& args) {
  args.finish();
  return std::make_unique<L>();
}

}  // namespace

std::unique_ptr<Layer> ReLU::from_args(LayerArgs& args) { return no_arguments<ReLU>(args); }
Shape ReLU::output_shape(std::span<const Shape> inputs) const { return same_shape(inputs); }

std::unique_ptr<Layer> LeakyReLU::from_args(LayerArgs& args) {
  LeakyReLUOptions o;
  o.negative_slope = args.option_double("slope").value_or(o.negative_slope);
  args.finish();
  return std::make_unique<LeakyReLU>(o);
}

std::string LeakyReLU::args() const {
  return options_.negative_slope == LeakyReLUOptions{}.negative_slope
             ? ""
             : "slope " + number_string(options_.negative_slope);
}

Shape LeakyReLU::output_shape(std::span<const Shape> inputs) const { return same_shape(inputs); }

std::unique_ptr<Layer> ELU::from_args(LayerArgs& args) {
  ELUOptions o;
  o.alpha = args.option_double("alpha").value_or(o.alpha);
  args.finish();
  return std::make_unique<ELU>(o);
}

std::string ELU::args() const {
  return options_.alpha == ELUOptions{}.alpha ? "" : "alpha " + number_string(options_.alpha);
}

Shape ELU::output_shape(std::span<const Shape> inputs) const { return same_shape(inputs); }

std::unique_ptr<Layer> Sigmoid::from_args(LayerArgs& args) { return no_arguments<Sigmoid>(args); }
Shape Sigmoid::output_shape(std::span<const Shape> inputs) const { return same_shape(inputs); }

std::unique_ptr<Layer> Tanh::from_args(LayerArgs& args) { return no_arguments<Tanh>(args); }
Shape Tanh::output_shape(std::span<const Shape> inputs) const { return same_shape(inputs); }

std::unique_ptr<Layer> Softmax::from_args(LayerArgs& args) { return no_arguments<Softmax>(args); }
Shape Softmax::output_shape(std::span<const Shape> inputs) const { return same_shape(inputs); }

}  // namespace convnet
