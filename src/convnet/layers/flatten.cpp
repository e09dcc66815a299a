// Flatten shape: any input becomes a vector of its element count.
#include "convnet/layers/flatten.hpp"

#include "convnet/error.hpp"
#include "convnet/layers/format.hpp"

namespace convnet {

std::unique_ptr<Layer> Flatten::from_args(LayerArgs& args) {
  args.finish();
  return std::make_unique<Flatten>();
}

Shape Flatten::output_shape(std::span<const Shape> inputs) const {
  if (inputs.empty()) throw ShapeError("flatten needs an input");
  return {inputs[0].numel()};
}

std::vector<Formula> Flatten::explain(std::span<const Shape> inputs, const Shape& output) const {
  const Shape& in = inputs[0];
  if (!in.is_volume()) return {{"output size", "N = N_in", in.chw_string(), output.chw_string()}};
  return {{"output size", "N = H*W*D", product_string({in.height(), in.width(), in.channels()}),
           std::to_string(output.numel())}};
}

}  // namespace convnet
