// Input: a network input of a fixed per-image shape, (C, H, W) or (F). Not a registry kind: the
// parser reads `input [NAME] CxHxW` lines itself and builds this layer.
#pragma once

#include "convnet/layer.hpp"

namespace convnet {

class Input final : public Layer {
 public:
  explicit Input(Shape shape) : shape_(std::move(shape)) {}
  static constexpr const char* kUsage = "input [NAME] CxHxW";

  [[nodiscard]] std::string kind() const override { return "input"; }
  [[nodiscard]] std::string args() const override { return shape_.chw_string(); }
  [[nodiscard]] int min_inputs() const override { return 0; }
  [[nodiscard]] int max_inputs() const override { return 0; }
  [[nodiscard]] Shape output_shape(std::span<const Shape> inputs) const override;
  [[nodiscard]] std::vector<Formula> explain(std::span<const Shape> inputs, const Shape& output) const override;
  [[nodiscard]] const Shape& shape() const { return shape_; }

 private:
  Shape shape_;
};

}  // namespace convnet
