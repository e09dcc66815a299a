// TiledConv2d: shape, parameters, cost and forward/backward. Weight layout (T, T, K, D1, F_h, F_w):
// a grid of OIHW conv weights; the bias (K) is shared by every bank.
#include "convnet/layers/tiled_conv2d.hpp"

#include <algorithm>

#include "convnet/kernels/reference/tiled_conv2d.hpp"
#include "convnet/layers/compute_util.hpp"

#include "convnet/checked.hpp"
#include "convnet/error.hpp"
#include "convnet/layers/format.hpp"

namespace convnet {

std::unique_ptr<Layer> TiledConv2d::from_args(LayerArgs& args) {
  TiledConv2dOptions o;
  o.out_channels = args.positive_int("out_channels");
  o.window.kernel = args.size2("kernel_size");
  const auto tile = args.option_int("tile", 1);
  if (!tile) args.fail(args.where(), "missing 'tile T' (the number of filter banks along each axis)");
  o.tile = *tile;
  o.window.stride = args.option_size2("stride", 1).value_or(Size2{1, 1});
  o.window.padding = args.option_size2("pad", 0).value_or(Size2{0, 0});
  o.window.rounding = args.rounding();
  o.bias = args.option_bool("bias").value_or(true);
  return std::make_unique<TiledConv2d>(o);
}

std::string TiledConv2d::args() const {
  std::string out = std::to_string(options_.out_channels) + " " + size2_string(options_.window.kernel) +
                    " tile " + std::to_string(options_.tile) + window_args(options_.window, {1, 1});
  if (!options_.bias) out += " bias false";
  return out;
}

Shape TiledConv2d::output_shape(std::span<const Shape> inputs) const {
  require_volume(inputs, "tiled");
  const Size2 hw = window_output(inputs[0], options_.window, "filter");
  // Bank (a, b) serves outputs (i, j) with i mod T = a and j mod T = b: a T past the output leaves banks unused.
  if (options_.tile > hw.h || options_.tile > hw.w) {
    throw ShapeError("tile " + std::to_string(options_.tile) + " is larger than the " + std::to_string(hw.h) + "x" +
                     std::to_string(hw.w) + " output: filter banks past it would never be used; use tile " +
                     std::to_string(std::min(hw.h, hw.w)) + " or less");
  }
  return {options_.out_channels, hw.h, hw.w};
}

std::vector<ParamSpec> TiledConv2d::parameters(std::span<const Shape> inputs) const {
  const Size2 k = options_.window.kernel;
  const int64_t T = options_.tile;
  std::vector<ParamSpec> params{
      {"weight", {T, T, options_.out_channels, inputs[0].channels(), k.h, k.w}, false, false, options_.init}};
  if (options_.bias) params.push_back({"bias", {options_.out_channels}, true, false, Init::Zeros});
  return params;
}

int64_t TiledConv2d::macs(std::span<const Shape> inputs, const Shape& output) const {
  const Size2 k = options_.window.kernel;
  return checked_product(std::initializer_list<int64_t>{output.numel(), inputs[0].channels(), k.h, k.w},
                         "the multiply-add count");
}

ReceptiveField TiledConv2d::receptive_field(const ReceptiveField& input) const {
  return window_receptive_field(input, options_.window);
}

std::vector<Formula> TiledConv2d::explain(std::span<const Shape> inputs, const Shape& output) const {
  std::vector<Formula> lines = window_formulas(inputs[0], options_.window, output);
  const Size2 k = options_.window.kernel;
  const int64_t d1 = inputs[0].channels();
  const int64_t K = options_.out_channels;
  const int64_t T = options_.tile;
  const std::string banks = product_string({T, T, K});
  const std::string per_filter = product_string({k.h, k.w, d1});
  lines.push_back({"output depth", "D2 = K", std::to_string(K), std::to_string(output.channels())});
  const int64_t weights = T * T * K * k.h * k.w * d1;
  lines.push_back({"weights", "T*T*K * F*F*D1 (T*T filter banks)", banks + " * " + per_filter,
                   std::to_string(weights)});
  if (options_.bias) {
    lines.push_back({"parameters", "T*T*K * F*F*D1 + K", banks + " * " + per_filter + " + " + std::to_string(K),
                     std::to_string(weights + K)});
  }
  lines.push_back({"multiply-adds", "W2*H2*D2 * F*F*D1",
                   product_string({output.width(), output.height(), output.channels()}) + " * " + per_filter,
                   std::to_string(macs(inputs, output))});
  return lines;
}

}  // namespace convnet

// ----- compute: weight (T, T, K, C, F_h, F_w), bias (K) -----

namespace convnet {

void TiledConv2d::forward(const RunContext&, Inputs inputs, Params params, Tensor& output) {
  const auto g = conv_geometry(*inputs[0], output, options_.window, 1);
  kernels::reference::tiled_conv2d_forward(g, options_.tile, inputs[0]->data(), params[0]->data(),
                                           options_.bias ? params[1]->data() : nullptr, output.data());
}

void TiledConv2d::backward(const RunContext&, Inputs inputs, const Tensor& output, const Tensor& grad_output,
                           Params params, Params grad_params, GradTargets grad_inputs) {
  const auto g = conv_geometry(*inputs[0], output, options_.window, 1);
  if (float* dx = target_or_null(grad_inputs[0])) {
    kernels::reference::tiled_conv2d_backward(g, options_.tile, inputs[0]->data(), params[0]->data(),
                                              grad_output.data(), dx, nullptr, nullptr, grad_inputs[0].accumulate);
  }
  kernels::reference::tiled_conv2d_backward(g, options_.tile, inputs[0]->data(), params[0]->data(), grad_output.data(),
                                            nullptr, grad_or_null(grad_params, 0),
                                            options_.bias ? grad_or_null(grad_params, 1) : nullptr, true);
}

}  // namespace convnet
