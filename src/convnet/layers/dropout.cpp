// Dropout and DropPath arguments; both keep the input shape.
#include "convnet/layers/dropout.hpp"

#include "convnet/error.hpp"
#include "convnet/layers/format.hpp"

namespace convnet {
namespace {

double probability(LayerArgs& args, double value) {
  if (value < 0 || value >= 1) {
    args.fail(args.where(), "p must be at least 0 and below 1, found " + number_string(value));
  }
  return value;
}

Shape same_shape(std::span<const Shape> inputs) {
  if (inputs.empty()) throw ShapeError("needs an input");
  return inputs[0];
}

}  // namespace

std::unique_ptr<Layer> Dropout::from_args(LayerArgs& args) {
  DropoutOptions o;
  if (auto p = args.option_double("p")) o.p = probability(args, *p);
  args.finish();
  return std::make_unique<Dropout>(o);
}

std::string Dropout::args() const { return options_.p == DropoutOptions{}.p ? "" : "p " + number_string(options_.p); }

Shape Dropout::output_shape(std::span<const Shape> inputs) const { return same_shape(inputs); }

std::unique_ptr<Layer> DropPath::from_args(LayerArgs& args) {
  DropPathOptions o{.p = probability(args, args.number("drop probability"))};
  args.finish();
  return std::make_unique<DropPath>(o);
}

std::string DropPath::args() const { return number_string(options_.p); }

Shape DropPath::output_shape(std::span<const Shape> inputs) const { return same_shape(inputs); }

}  // namespace convnet
