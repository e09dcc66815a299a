// Defaults shared by all layers.
#include "convnet/layer.hpp"

#include "convnet/checked.hpp"
#include "convnet/error.hpp"

namespace convnet {

int64_t ParamSpec::numel() const { return checked_product(dims, "parameter count of '" + name + "'"); }

int64_t ParamSpec::input_fan() const {
  if (fan_in > 0) return fan_in;
  return dims.empty() || dims[0] == 0 ? 1 : numel() / dims[0];
}

std::vector<ParamSpec> Layer::parameters(std::span<const Shape> /*inputs*/) const { return {}; }

int64_t Layer::macs(std::span<const Shape> /*inputs*/, const Shape& /*output*/) const { return 0; }

std::vector<Formula> Layer::explain(std::span<const Shape> inputs, const Shape& output) const {
  std::string in = inputs.empty() ? std::string("-") : inputs[0].volume_string();
  return {{"output volume", "same as the input", in, output.volume_string()}};
}

void Layer::forward(const RunContext& /*ctx*/, Inputs /*inputs*/, Params /*params*/, Tensor& /*output*/) {
  throw Error("layer kind '" + kind() + "' has no forward computation");
}

void Layer::backward(const RunContext& /*ctx*/, Inputs /*inputs*/, const Tensor& /*output*/,
                     const Tensor& /*grad_output*/, Params /*params*/, Params /*grad_params*/,
                     GradTargets /*grad_inputs*/) {
  throw Error("layer kind '" + kind() + "' has no backward computation");
}

void require_volume(std::span<const Shape> inputs, const std::string& kind) {
  if (inputs.empty() || !inputs[0].is_volume()) {
    throw ShapeError(kind + " needs a CxHxW volume as input, got " +
                     (inputs.empty() ? std::string("nothing") : inputs[0].chw_string()) +
                     " (a fully connected layer's output has no spatial extent)");
  }
}

}  // namespace convnet
