// Conv2d: shape, parameters, cost, and forward/backward on the reference or oneDNN kernels.
// Weight layout is PyTorch's OIHW: (K, D1/groups, F_h, F_w).
#include "convnet/layers/conv2d.hpp"

#include "convnet/kernels/reference/conv2d.hpp"
#include "convnet/layers/compute_util.hpp"

#include "convnet/checked.hpp"
#include "convnet/error.hpp"

namespace convnet {

std::unique_ptr<Layer> Conv2d::from_args(LayerArgs& args) {
  Conv2dOptions o;
  o.out_channels = args.positive_int("out_channels");
  o.window.kernel = args.size2("kernel_size");
  o.window.stride = args.option_size2("stride", 1).value_or(Size2{1, 1});
  read_window_padding(args, o.window);
  o.window.dilation = args.option_size2("dilation", 1).value_or(Size2{1, 1});
  o.window.rounding = args.rounding();
  o.groups = args.option_int("groups", 1).value_or(1);
  o.bias = args.option_bool("bias").value_or(true);
  o.init = args.option_init().value_or(Init::KaimingNormal);
  if (o.out_channels % o.groups != 0) {
    args.fail(args.where(), "out_channels " + std::to_string(o.out_channels) + " is not divisible by groups " +
                                std::to_string(o.groups));
  }
  return std::make_unique<Conv2d>(o);
}

std::string Conv2d::args() const {
  std::string out = std::to_string(options_.out_channels) + " " + size2_string(options_.window.kernel) +
                    window_args(options_.window, {1, 1});
  if (options_.groups != 1) out += " groups " + std::to_string(options_.groups);
  if (!options_.bias) out += " bias false";
  if (options_.init != Init::KaimingNormal) out += std::string(" init ") + init_name(options_.init);
  return out;
}

Shape Conv2d::output_shape(std::span<const Shape> inputs) const {
  require_volume(inputs, "conv");
  const int64_t in_channels = inputs[0].channels();
  if (in_channels % options_.groups != 0) {
    throw ShapeError("input depth " + std::to_string(in_channels) + " is not divisible by groups " +
                     std::to_string(options_.groups));
  }
  const Size2 hw = window_output(inputs[0], options_.window, "filter");
  return {options_.out_channels, hw.h, hw.w};
}

std::vector<ParamSpec> Conv2d::parameters(std::span<const Shape> inputs) const {
  const Size2 k = options_.window.kernel;
  std::vector<ParamSpec> params{{"weight",
                                 {options_.out_channels, inputs[0].channels() / options_.groups, k.h, k.w},
                                 false, false, options_.init}};
  if (options_.bias) params.push_back({"bias", {options_.out_channels}, true, false, Init::Zeros});
  return params;
}

int64_t Conv2d::macs(std::span<const Shape> inputs, const Shape& output) const {
  const Size2 k = options_.window.kernel;
  return checked_product(std::initializer_list<int64_t>{output.numel(), inputs[0].channels() / options_.groups, k.h, k.w},
                         "the multiply-add count");
}

ReceptiveField Conv2d::receptive_field(const ReceptiveField& input) const {
  return window_receptive_field(input, options_.window);
}

std::vector<Formula> Conv2d::explain(std::span<const Shape> inputs, const Shape& output) const {
  std::vector<Formula> lines = window_formulas(inputs[0], options_.window, output);
  const Size2 k = options_.window.kernel;
  const int64_t d1 = inputs[0].channels() / options_.groups;
  const std::string per_filter = std::to_string(k.h) + "*" + std::to_string(k.w) + "*" + std::to_string(d1);
  const std::string groups_note = options_.groups > 1 ? " (D1 = input depth / groups)" : "";
  lines.push_back({"output depth", "D2 = K", std::to_string(options_.out_channels), std::to_string(output.channels())});
  const int64_t weights = k.h * k.w * d1 * options_.out_channels;
  lines.push_back({"weights", "F*F*D1*K" + groups_note, per_filter + "*" + std::to_string(options_.out_channels),
                   std::to_string(weights)});
  if (options_.bias) {
    lines.push_back({"parameters", "(F*F*D1 + 1)*K",
                     "(" + per_filter + " + 1)*" + std::to_string(options_.out_channels),
                     std::to_string(weights + options_.out_channels)});
  }
  lines.push_back({"multiply-adds", "W2*H2*D2 * F*F*D1",
                   std::to_string(output.width()) + "*" + std::to_string(output.height()) + "*" +
                       std::to_string(output.channels()) + " * " + per_filter,
                   std::to_string(macs(inputs, output))});
  return lines;
}

}  // namespace convnet

// ----- compute: params are weight (K, C/groups, F_h, F_w) and, with bias, bias (K) -----

namespace convnet {

void Conv2d::forward(const RunContext& ctx, Inputs inputs, Params params, Tensor& output) {
  const auto g = conv_geometry(*inputs[0], output, options_.window, options_.groups);
  if (ctx.backend == Backend::OneDnn) {
    onednn_.forward(*ctx.engine, g, inputs[0]->data(), params[0]->data(), options_.bias ? params[1]->data() : nullptr,
                    output.data());
    return;
  }
  kernels::reference::conv2d_forward(g, inputs[0]->data(), params[0]->data(),
                                     options_.bias ? params[1]->data() : nullptr, output.data());
}

void Conv2d::backward(const RunContext& ctx, Inputs inputs, const Tensor& output, const Tensor& grad_output,
                      Params params, Params grad_params, GradTargets grad_inputs) {
  const auto g = conv_geometry(*inputs[0], output, options_.window, options_.groups);
  if (ctx.backend == Backend::OneDnn) {
    if (float* dx = target_or_null(grad_inputs[0])) {
      onednn_.backward_data(*ctx.engine, g, params[0]->data(), grad_output.data(), dx, grad_inputs[0].accumulate);
    }
    onednn_.backward_weights(*ctx.engine, g, inputs[0]->data(), grad_output.data(), grad_or_null(grad_params, 0),
                             options_.bias ? grad_or_null(grad_params, 1) : nullptr, true);
    return;
  }
  // Input gradient written or added per its target; parameter gradients always added.
  if (float* dx = target_or_null(grad_inputs[0])) {
    kernels::reference::conv2d_backward(g, inputs[0]->data(), params[0]->data(), grad_output.data(), dx, nullptr,
                                        nullptr, grad_inputs[0].accumulate);
  }
  kernels::reference::conv2d_backward(g, inputs[0]->data(), params[0]->data(), grad_output.data(), nullptr,
                                      grad_or_null(grad_params, 0), options_.bias ? grad_or_null(grad_params, 1) : nullptr,
                                      true);
}

}  // namespace convnet
