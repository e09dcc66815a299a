// Dropout and DropPath: arguments, shapes (unchanged), and forward/backward with masks drawn
// from the run's generator in training (identity in inference).
#include "convnet/layers/dropout.hpp"

#include <algorithm>
#include "convnet/layers/compute_util.hpp"
#include "convnet/kernels/reference/dropout.hpp"

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

// ----- compute: identity in inference; a fresh mask from the run's generator in training -----

namespace convnet {

void Dropout::forward(const RunContext& ctx, Inputs inputs, Params, Tensor& output) {
  if (!ctx.training || options_.p == 0.0) {
    if (output.data() != inputs[0]->data()) std::copy_n(inputs[0]->data(), output.numel(), output.data());
    return;
  }
  mask_.resize(static_cast<size_t>(output.numel()));
  kernels::reference::dropout_forward(output.numel(), static_cast<float>(options_.p), inputs[0]->data(), output.data(),
                                      mask_.data(), *ctx.rng);
}
void Dropout::backward(const RunContext& ctx, Inputs, const Tensor& output, const Tensor& grad_output, Params, Params,
                       GradTargets grad_inputs) {
  float* dx = target_or_null(grad_inputs[0]);
  if (dx == nullptr) return;
  const bool identity = options_.p == 0.0 || !ctx.training;  // the forward copied: dL/dx = dL/dy
  if (identity) mask_.assign(static_cast<size_t>(output.numel()), 1);
  kernels::reference::dropout_backward(output.numel(), identity ? 0.0F : static_cast<float>(options_.p), mask_.data(),
                                       grad_output.data(), dx, grad_inputs[0].accumulate);
}

void DropPath::forward(const RunContext& ctx, Inputs inputs, Params, Tensor& output) {
  if (!ctx.training || options_.p == 0.0) {
    if (output.data() != inputs[0]->data()) std::copy_n(inputs[0]->data(), output.numel(), output.data());
    return;
  }
  const kernels::reference::DropPathGeometry g{batch_of(output), output.numel() / batch_of(output)};
  mask_.resize(static_cast<size_t>(g.batch));
  kernels::reference::drop_path_forward(g, static_cast<float>(options_.p), inputs[0]->data(), output.data(),
                                        mask_.data(), *ctx.rng);
}
void DropPath::backward(const RunContext& ctx, Inputs, const Tensor& output, const Tensor& grad_output, Params, Params,
                        GradTargets grad_inputs) {
  float* dx = target_or_null(grad_inputs[0]);
  if (dx == nullptr) return;
  const kernels::reference::DropPathGeometry g{batch_of(output), output.numel() / batch_of(output)};
  const bool identity = options_.p == 0.0 || !ctx.training;  // the forward copied: dL/dx = dL/dy
  if (identity) mask_.assign(static_cast<size_t>(g.batch), 1);
  kernels::reference::drop_path_backward(g, identity ? 0.0F : static_cast<float>(options_.p), mask_.data(), grad_output.data(), dx,
                                         grad_inputs[0].accumulate);
}

}  // namespace convnet
