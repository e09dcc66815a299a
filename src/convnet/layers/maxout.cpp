// Maxout: (D, H, W) -> (D/K, H, W), or (D) -> (D/K); forward keeps the argmax for backward.
#include "convnet/layers/maxout.hpp"

#include <algorithm>
#include "convnet/layers/compute_util.hpp"
#include "convnet/kernels/reference/maxout.hpp"

#include "convnet/error.hpp"

namespace convnet {

std::unique_ptr<Layer> Maxout::from_args(LayerArgs& args) {
  MaxoutOptions o;
  o.pieces = args.positive_int("pieces");
  if (o.pieces < 2) args.fail(args.where(), "pieces must be at least 2, found " + std::to_string(o.pieces));
  args.finish();
  return std::make_unique<Maxout>(o);
}

Shape Maxout::output_shape(std::span<const Shape> inputs) const {
  if (inputs.empty() || inputs[0].rank() == 0) throw ShapeError("maxout needs an input with channels");
  const int64_t depth = inputs[0].channels();
  if (depth % options_.pieces != 0) {
    throw ShapeError("input depth " + std::to_string(depth) + " is not divisible by " +
                     std::to_string(options_.pieces) + " pieces");
  }
  std::vector<int64_t> dims = inputs[0].dims();
  dims[0] = depth / options_.pieces;
  return Shape(std::move(dims));
}

std::vector<Formula> Maxout::explain(std::span<const Shape> inputs, const Shape& output) const {
  return {{"output depth", "D2 = D1/K", std::to_string(inputs[0].channels()) + "/" + std::to_string(options_.pieces),
           std::to_string(output.channels())}};
}

}  // namespace convnet

// ----- compute -----

namespace convnet {

void Maxout::forward(const RunContext&, Inputs inputs, Params, Tensor& output) {
  const Tensor& x = *inputs[0];
  const kernels::reference::MaxoutGeometry g{batch_of(x), channels_of(x), options_.pieces, positions_of(x)};
  argmax_.resize(static_cast<size_t>(output.numel()));
  kernels::reference::maxout_forward(g, x.data(), output.data(), argmax_.data());
}
void Maxout::backward(const RunContext&, Inputs inputs, const Tensor&, const Tensor& grad_output, Params, Params,
                      GradTargets grad_inputs) {
  if (float* dx = target_or_null(grad_inputs[0])) {
    const Tensor& x = *inputs[0];
    const kernels::reference::MaxoutGeometry g{batch_of(x), channels_of(x), options_.pieces, positions_of(x)};
    kernels::reference::maxout_backward(g, argmax_.data(), grad_output.data(), dx, grad_inputs[0].accumulate);
  }
}

}  // namespace convnet
