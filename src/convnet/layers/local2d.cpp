// LocallyConnected2d: shape, parameters, cost and forward/backward. Weight layout (H2, W2, K, D1,
// F_h, F_w): one OIHW conv weight per output position; bias (K, H2, W2): one per output element.
#include "convnet/layers/local2d.hpp"

#include "convnet/kernels/reference/locally_connected.hpp"
#include "convnet/layers/compute_util.hpp"

#include "convnet/checked.hpp"
#include "convnet/error.hpp"
#include "convnet/layers/format.hpp"

namespace convnet {

std::unique_ptr<Layer> LocallyConnected2d::from_args(LayerArgs& args) {
  LocallyConnected2dOptions o;
  o.out_channels = args.positive_int("out_channels");
  o.window.kernel = args.size2("kernel_size");
  o.window.stride = args.option_size2("stride", 1).value_or(Size2{1, 1});
  o.window.padding = args.option_size2("pad", 0).value_or(Size2{0, 0});
  o.window.rounding = args.rounding();
  o.bias = args.option_bool("bias").value_or(true);
  return std::make_unique<LocallyConnected2d>(o);
}

std::string LocallyConnected2d::args() const {
  std::string out = std::to_string(options_.out_channels) + " " + size2_string(options_.window.kernel) +
                    window_args(options_.window, {1, 1});
  if (!options_.bias) out += " bias false";
  return out;
}

Shape LocallyConnected2d::output_shape(std::span<const Shape> inputs) const {
  require_volume(inputs, "local");
  const Size2 hw = window_output(inputs[0], options_.window, "filter");
  return {options_.out_channels, hw.h, hw.w};
}

std::vector<ParamSpec> LocallyConnected2d::parameters(std::span<const Shape> inputs) const {
  const Shape out = output_shape(inputs);  // weights depend on the output grid: (H2, W2)
  const Size2 k = options_.window.kernel;
  const int64_t K = options_.out_channels;
  std::vector<ParamSpec> params{
      {"weight", {out.height(), out.width(), K, inputs[0].channels(), k.h, k.w}, false, false, options_.init}};
  if (options_.bias) params.push_back({"bias", {K, out.height(), out.width()}, true, false, Init::Zeros});
  return params;
}

int64_t LocallyConnected2d::macs(std::span<const Shape> inputs, const Shape& output) const {
  const Size2 k = options_.window.kernel;
  return checked_product(std::initializer_list<int64_t>{output.numel(), inputs[0].channels(), k.h, k.w},
                         "the multiply-add count");
}

ReceptiveField LocallyConnected2d::receptive_field(const ReceptiveField& input) const {
  return window_receptive_field(input, options_.window);
}

std::vector<Formula> LocallyConnected2d::explain(std::span<const Shape> inputs, const Shape& output) const {
  std::vector<Formula> lines = window_formulas(inputs[0], options_.window, output);
  const Size2 k = options_.window.kernel;
  const int64_t d1 = inputs[0].channels();
  const int64_t K = options_.out_channels;
  const std::string grid = product_string({output.height(), output.width(), K});
  const std::string per_filter = product_string({k.h, k.w, d1});
  lines.push_back({"output depth", "D2 = K", std::to_string(K), std::to_string(output.channels())});
  const int64_t weights = output.height() * output.width() * K * k.h * k.w * d1;
  lines.push_back({"weights", "H2*W2*K * F*F*D1 (a filter per output position)", grid + " * " + per_filter,
                   std::to_string(weights)});
  if (options_.bias) {
    lines.push_back({"parameters", "H2*W2*K * (F*F*D1 + 1)", grid + " * (" + per_filter + " + 1)",
                     std::to_string(weights + output.numel())});
  }
  lines.push_back({"multiply-adds", "W2*H2*D2 * F*F*D1",
                   product_string({output.width(), output.height(), output.channels()}) + " * " + per_filter,
                   std::to_string(macs(inputs, output))});
  return lines;
}

}  // namespace convnet

// ----- compute: weight (H2, W2, K, C, F_h, F_w), bias (K, H2, W2) -----

namespace convnet {

void LocallyConnected2d::forward(const RunContext&, Inputs inputs, Params params, Tensor& output) {
  const auto g = conv_geometry(*inputs[0], output, options_.window, 1);
  kernels::reference::locally_connected_forward(g, inputs[0]->data(), params[0]->data(),
                                                options_.bias ? params[1]->data() : nullptr, output.data());
}

void LocallyConnected2d::backward(const RunContext&, Inputs inputs, const Tensor& output, const Tensor& grad_output,
                                  Params params, Params grad_params, GradTargets grad_inputs) {
  const auto g = conv_geometry(*inputs[0], output, options_.window, 1);
  if (float* dx = target_or_null(grad_inputs[0])) {
    kernels::reference::locally_connected_backward(g, inputs[0]->data(), params[0]->data(), grad_output.data(), dx,
                                                   nullptr, nullptr, grad_inputs[0].accumulate);
  }
  kernels::reference::locally_connected_backward(g, inputs[0]->data(), params[0]->data(), grad_output.data(), nullptr,
                                                 grad_or_null(grad_params, 0),
                                                 options_.bias ? grad_or_null(grad_params, 1) : nullptr, true);
}

}  // namespace convnet
