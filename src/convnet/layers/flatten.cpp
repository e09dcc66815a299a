// Flatten: any input becomes a vector of its element count; forward copies (or is a view when
// run in place) and backward passes the gradient through.
#include "convnet/layers/flatten.hpp"

#include <algorithm>
#include "convnet/layers/compute_util.hpp"

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

// ----- compute: a copy (a view when the executor runs it in place) -----

namespace convnet {

void Flatten::forward(const RunContext&, Inputs inputs, Params, Tensor& output) {
  if (output.data() != inputs[0]->data()) std::copy_n(inputs[0]->data(), output.numel(), output.data());
}
void Flatten::backward(const RunContext&, Inputs, const Tensor& output, const Tensor& grad_output, Params, Params,
                       GradTargets grad_inputs) {
  float* dx = target_or_null(grad_inputs[0]);
  if (dx == nullptr) return;
  const float* dy = grad_output.data();
  for (int64_t i = 0; i < output.numel(); ++i) dx[i] = grad_inputs[0].accumulate ? dx[i] + dy[i] : dy[i];  // dx = dy
}

}  // namespace convnet
