// Defaults shared by all layers.
#include "convnet/layer.hpp"

#include "convnet/error.hpp"

namespace convnet {

int64_t ParamSpec::numel() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

std::vector<ParamSpec> Layer::parameters(std::span<const Shape> /*inputs*/) const { return {}; }

int64_t Layer::macs(std::span<const Shape> /*inputs*/, const Shape& /*output*/) const { return 0; }

std::vector<Formula> Layer::explain(std::span<const Shape> inputs, const Shape& output) const {
  std::string in = inputs.empty() ? std::string("-") : inputs[0].volume_string();
  return {{"output volume", "same as the input", in, output.volume_string()}};
}

void require_volume(std::span<const Shape> inputs, const std::string& kind) {
  if (inputs.empty() || !inputs[0].is_volume()) {
    throw ShapeError(kind + " needs a CxHxW volume as input, got " +
                     (inputs.empty() ? std::string("nothing") : inputs[0].chw_string()) +
                     " (a fully connected layer's output has no spatial extent)");
  }
}

}  // namespace convnet
