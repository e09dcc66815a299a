// Activations and softmax: arguments, shapes (unchanged) and forward/backward on the reference
// or oneDNN kernels; every backward reads the forward output, so they can run in place.
#include "convnet/layers/activation.hpp"

#include "convnet/kernels/reference/activation.hpp"
#include "convnet/kernels/reference/softmax.hpp"
#include "convnet/layers/compute_util.hpp"

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

// ----- compute: the pointwise kernels; every backward reads the forward output y -----

namespace convnet {

namespace ref = kernels::reference;

void ReLU::forward(const RunContext& ctx, Inputs inputs, Params, Tensor& output) {
  if (ctx.backend == Backend::OneDnn) {
    onednn_.forward(*ctx.engine, kernels::onednn::EltwiseKind::Relu, 0.0f, output.numel(), inputs[0]->data(), output.data());
    return;
  }
  ref::relu_forward(output.numel(), inputs[0]->data(), output.data());
}
void ReLU::backward(const RunContext& ctx, Inputs, const Tensor& output, const Tensor& grad_output, Params, Params,
                    GradTargets grad_inputs) {
  if (float* dx = target_or_null(grad_inputs[0])) {
    if (ctx.relu_backward == ReluBackward::Deconvnet) {
      ref::relu_deconvnet_backward(output.numel(), grad_output.data(), dx, grad_inputs[0].accumulate);
      return;
    }
    if (ctx.relu_backward == ReluBackward::Guided) {
      ref::relu_guided_backward(output.numel(), output.data(), grad_output.data(), dx, grad_inputs[0].accumulate);
      return;
    }
    if (ctx.backend == Backend::OneDnn) {
      onednn_.backward(*ctx.engine, kernels::onednn::EltwiseKind::Relu, 0.0f, output.numel(), output.data(),
                       grad_output.data(), dx, grad_inputs[0].accumulate);
      return;
    }
    ref::relu_backward(output.numel(), output.data(), grad_output.data(), dx, grad_inputs[0].accumulate);
  }
}

void LeakyReLU::forward(const RunContext& ctx, Inputs inputs, Params, Tensor& output) {
  if (ctx.backend == Backend::OneDnn) {
    onednn_.forward(*ctx.engine, kernels::onednn::EltwiseKind::LeakyRelu, static_cast<float>(options_.negative_slope), output.numel(), inputs[0]->data(), output.data());
    return;
  }
  ref::leaky_relu_forward(output.numel(), static_cast<float>(options_.negative_slope), inputs[0]->data(), output.data());
}
void LeakyReLU::backward(const RunContext& ctx, Inputs, const Tensor& output, const Tensor& grad_output, Params, Params,
                         GradTargets grad_inputs) {
  if (float* dx = target_or_null(grad_inputs[0])) {
    if (ctx.backend == Backend::OneDnn) {
      onednn_.backward(*ctx.engine, kernels::onednn::EltwiseKind::LeakyRelu, static_cast<float>(options_.negative_slope), output.numel(), output.data(),
                       grad_output.data(), dx, grad_inputs[0].accumulate);
      return;
    }
    ref::leaky_relu_backward(output.numel(), static_cast<float>(options_.negative_slope), output.data(), grad_output.data(), dx,
                             grad_inputs[0].accumulate);
  }
}

void ELU::forward(const RunContext& ctx, Inputs inputs, Params, Tensor& output) {
  if (ctx.backend == Backend::OneDnn) {
    onednn_.forward(*ctx.engine, kernels::onednn::EltwiseKind::Elu, static_cast<float>(options_.alpha), output.numel(), inputs[0]->data(), output.data());
    return;
  }
  ref::elu_forward(output.numel(), static_cast<float>(options_.alpha), inputs[0]->data(), output.data());
}
void ELU::backward(const RunContext& ctx, Inputs, const Tensor& output, const Tensor& grad_output, Params, Params,
                   GradTargets grad_inputs) {
  if (float* dx = target_or_null(grad_inputs[0])) {
    if (ctx.backend == Backend::OneDnn) {
      onednn_.backward(*ctx.engine, kernels::onednn::EltwiseKind::Elu, static_cast<float>(options_.alpha), output.numel(), output.data(),
                       grad_output.data(), dx, grad_inputs[0].accumulate);
      return;
    }
    ref::elu_backward(output.numel(), static_cast<float>(options_.alpha), output.data(), grad_output.data(), dx,
                      grad_inputs[0].accumulate);
  }
}

void Sigmoid::forward(const RunContext& ctx, Inputs inputs, Params, Tensor& output) {
  if (ctx.backend == Backend::OneDnn) {
    onednn_.forward(*ctx.engine, kernels::onednn::EltwiseKind::Sigmoid, 0.0f, output.numel(), inputs[0]->data(), output.data());
    return;
  }
  ref::sigmoid_forward(output.numel(), inputs[0]->data(), output.data());
}
void Sigmoid::backward(const RunContext& ctx, Inputs, const Tensor& output, const Tensor& grad_output, Params, Params,
                       GradTargets grad_inputs) {
  if (float* dx = target_or_null(grad_inputs[0])) {
    if (ctx.backend == Backend::OneDnn) {
      onednn_.backward(*ctx.engine, kernels::onednn::EltwiseKind::Sigmoid, 0.0f, output.numel(), output.data(),
                       grad_output.data(), dx, grad_inputs[0].accumulate);
      return;
    }
    ref::sigmoid_backward(output.numel(), output.data(), grad_output.data(), dx, grad_inputs[0].accumulate);
  }
}

void Tanh::forward(const RunContext& ctx, Inputs inputs, Params, Tensor& output) {
  if (ctx.backend == Backend::OneDnn) {
    onednn_.forward(*ctx.engine, kernels::onednn::EltwiseKind::Tanh, 0.0f, output.numel(), inputs[0]->data(), output.data());
    return;
  }
  ref::tanh_forward(output.numel(), inputs[0]->data(), output.data());
}
void Tanh::backward(const RunContext& ctx, Inputs, const Tensor& output, const Tensor& grad_output, Params, Params,
                    GradTargets grad_inputs) {
  if (float* dx = target_or_null(grad_inputs[0])) {
    if (ctx.backend == Backend::OneDnn) {
      onednn_.backward(*ctx.engine, kernels::onednn::EltwiseKind::Tanh, 0.0f, output.numel(), output.data(),
                       grad_output.data(), dx, grad_inputs[0].accumulate);
      return;
    }
    ref::tanh_backward(output.numel(), output.data(), grad_output.data(), dx, grad_inputs[0].accumulate);
  }
}

void Softmax::forward(const RunContext& ctx, Inputs inputs, Params, Tensor& output) {
  const ref::SoftmaxGeometry g{batch_of(output), channels_of(output), positions_of(output)};
  if (ctx.backend == Backend::OneDnn) {
    onednn_.forward(*ctx.engine, g, inputs[0]->data(), output.data());
    return;
  }
  ref::softmax_forward(g, inputs[0]->data(), output.data());
}
void Softmax::backward(const RunContext& ctx, Inputs, const Tensor& output, const Tensor& grad_output, Params,
                       Params, GradTargets grad_inputs) {
  if (float* dx = target_or_null(grad_inputs[0])) {
    const ref::SoftmaxGeometry g{batch_of(output), channels_of(output), positions_of(output)};
    if (ctx.backend == Backend::OneDnn) {
      onednn_.backward(*ctx.engine, g, output.data(), grad_output.data(), dx, grad_inputs[0].accumulate);
      return;
    }
    ref::softmax_backward(g, output.data(), grad_output.data(), dx, grad_inputs[0].accumulate);
  }
}

}  // namespace convnet
