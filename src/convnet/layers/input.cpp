// Input: its output is the declared shape; the receptive field starts at 1x1 with jump 1.
#include "convnet/layers/input.hpp"

namespace convnet {

Shape Input::output_shape(std::span<const Shape> /*inputs*/) const { return shape_; }

std::vector<Formula> Input::explain(std::span<const Shape> /*inputs*/, const Shape& output) const {
  return {{"output volume", "as declared (C x H x W)", shape_.chw_string(), output.volume_string()}};
}

}  // namespace convnet
