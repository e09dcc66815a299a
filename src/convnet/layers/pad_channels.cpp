// PadChannels: (D, H, W) -> (K, H, W), or (D) -> (K); the new channels are zeros.
#include "convnet/layers/pad_channels.hpp"

#include "convnet/error.hpp"
#include "convnet/kernels/reference/pad_channels.hpp"
#include "convnet/layers/compute_util.hpp"

namespace convnet {

std::unique_ptr<Layer> PadChannels::from_args(LayerArgs& args) {
  PadChannelsOptions o;
  o.channels = args.positive_int("channels");
  args.finish();
  return std::make_unique<PadChannels>(o);
}

Shape PadChannels::output_shape(std::span<const Shape> inputs) const {
  if (inputs.empty() || inputs[0].rank() == 0) throw ShapeError("padchannels needs an input with channels");
  if (inputs[0].channels() > options_.channels) {
    throw ShapeError("padchannels " + std::to_string(options_.channels) + " cannot shrink an input of depth " +
                     std::to_string(inputs[0].channels()));
  }
  std::vector<int64_t> dims = inputs[0].dims();
  dims[0] = options_.channels;
  return Shape(std::move(dims));
}

std::vector<Formula> PadChannels::explain(std::span<const Shape> inputs, const Shape& output) const {
  const int64_t depth = inputs[0].channels();
  return {
      {"output depth", "D2 = K (D1 channels, then K - D1 of zeros)",
       std::to_string(depth) + " + " + std::to_string(options_.channels - depth), std::to_string(output.channels())},
      {"parameters", "none (a fixed function)", "0", "0"}};
}

}  // namespace convnet

// ----- compute -----

namespace convnet {
namespace {

kernels::reference::PadChannelsGeometry pad_geometry(const Tensor& x, const Tensor& y) {
  return {batch_of(x), channels_of(x), channels_of(y), positions_of(x)};
}

}  // namespace

void PadChannels::forward(const RunContext&, Inputs inputs, Params, Tensor& output) {
  kernels::reference::pad_channels_forward(pad_geometry(*inputs[0], output), inputs[0]->data(), output.data());
}

void PadChannels::backward(const RunContext&, Inputs inputs, const Tensor& output, const Tensor& grad_output, Params,
                           Params, GradTargets grad_inputs) {
  if (float* dx = target_or_null(grad_inputs[0])) {
    kernels::reference::pad_channels_backward(pad_geometry(*inputs[0], output), grad_output.data(), dx,
                                              grad_inputs[0].accumulate);
  }
}

}  // namespace convnet
