// Add, Mul and Concat: shape rules and forward/backward. Their arguments name input tensors,
// which the parser reads itself, so from_args() only checks nothing else is left.
#include "convnet/layers/merge.hpp"

#include <algorithm>
#include "convnet/layers/compute_util.hpp"
#include "convnet/kernels/reference/elementwise.hpp"


#include "convnet/checked.hpp"
#include "convnet/error.hpp"

namespace convnet {
namespace {

// "56x56x64 vs 28x28x128", the lecture notes' H x W x C order.
std::string all_shapes(std::span<const Shape> inputs) {
  std::string out;
  for (const Shape& s : inputs) out += (out.empty() ? "" : " vs ") + s.volume_string();
  return out;
}

void require_two(std::span<const Shape> inputs, const char* verb) {
  if (inputs.size() < 2) {
    throw ShapeError(std::string("needs at least 2 inputs to ") + verb + ", got " + std::to_string(inputs.size()));
  }
}

Shape elementwise(std::span<const Shape> inputs, const char* verb) {
  require_two(inputs, verb);
  for (const Shape& s : inputs) {
    if (s != inputs[0]) throw ShapeError(std::string("cannot ") + verb + " tensors of different shapes: " + all_shapes(inputs));
  }
  return inputs[0];
}

}  // namespace

std::unique_ptr<Layer> Add::from_args(LayerArgs& args) {
  args.finish();
  return std::make_unique<Add>();
}

Shape Add::output_shape(std::span<const Shape> inputs) const { return elementwise(inputs, "add"); }

std::unique_ptr<Layer> Mul::from_args(LayerArgs& args) {
  args.finish();
  return std::make_unique<Mul>();
}

Shape Mul::output_shape(std::span<const Shape> inputs) const { return elementwise(inputs, "multiply"); }

std::unique_ptr<Layer> Concat::from_args(LayerArgs& args) {
  args.finish();
  return std::make_unique<Concat>();
}

// (D1, H, W) + (D2, H, W) + ... -> (D1 + D2 + ..., H, W); vectors (F1) + (F2) -> (F1 + F2).
Shape Concat::output_shape(std::span<const Shape> inputs) const {
  require_two(inputs, "concatenate");
  std::vector<int64_t> dims = inputs[0].dims();
  if (dims.empty()) throw ShapeError("cannot concatenate scalars");
  for (size_t i = 1; i < inputs.size(); ++i) {
    const std::vector<int64_t>& other = inputs[i].dims();
    if (other.size() != dims.size() || !std::equal(other.begin() + 1, other.end(), dims.begin() + 1)) {
      throw ShapeError("channel concat needs equal height and width: " + all_shapes(inputs));
    }
    dims[0] = checked_add(dims[0], other[0], "the concatenated depth");
  }
  return Shape(std::move(dims));
}

std::vector<Formula> Concat::explain(std::span<const Shape> inputs, const Shape& output) const {
  std::string formula;
  std::string substituted;
  for (size_t i = 0; i < inputs.size(); ++i) {
    formula += (i == 0 ? "D = D" : " + D") + std::to_string(i + 1);
    substituted += (i == 0 ? "" : " + ") + std::to_string(inputs[i].channels());
  }
  return {{"output depth", formula, substituted, std::to_string(output.channels())}};
}

}  // namespace convnet

// ----- compute -----

namespace convnet {
namespace {

std::vector<const float*> data_of(Inputs inputs) {
  std::vector<const float*> out;
  for (const Tensor* t : inputs) out.push_back(t->data());
  return out;
}

}  // namespace

void Add::forward(const RunContext&, Inputs inputs, Params, Tensor& output) {
  kernels::reference::add_forward(output.numel(), data_of(inputs), output.data());
}
void Add::backward(const RunContext&, Inputs, const Tensor& output, const Tensor& grad_output, Params, Params,
                   GradTargets grad_inputs) {
  // dL/dx_i = dL/dy for every input: the add gate distributes the gradient.
  for (const GradTarget& target : grad_inputs) {
    float* dx = target_or_null(target);
    if (dx == nullptr) continue;
    float* const one[] = {dx};
    kernels::reference::add_backward(output.numel(), grad_output.data(), std::span<float* const>(one), target.accumulate);
  }
}

void Mul::forward(const RunContext&, Inputs inputs, Params, Tensor& output) {
  kernels::reference::mul_forward(output.numel(), data_of(inputs), output.data());
}
void Mul::backward(const RunContext&, Inputs inputs, const Tensor& output, const Tensor& grad_output, Params, Params,
                   GradTargets grad_inputs) {
  // dL/dx_i = dL/dy * prod_{j != i} x_j: the mul gate switches the inputs.
  for (size_t i = 0; i < grad_inputs.size(); ++i) {
    float* dx = target_or_null(grad_inputs[i]);
    if (dx == nullptr) continue;
    std::vector<float*> grads(inputs.size(), nullptr);
    grads[i] = dx;
    kernels::reference::mul_backward(output.numel(), data_of(inputs), grad_output.data(), grads,
                                     grad_inputs[i].accumulate);
  }
}

void Concat::forward(const RunContext&, Inputs inputs, Params, Tensor& output) {
  std::vector<int64_t> channels;
  for (const Tensor* t : inputs) channels.push_back(channels_of(*t));
  kernels::reference::concat_forward({batch_of(output), positions_of(output), channels}, data_of(inputs), output.data());
}
void Concat::backward(const RunContext&, Inputs inputs, const Tensor& output, const Tensor& grad_output, Params,
                      Params, GradTargets grad_inputs) {
  // dL/dx_i is the slice of dL/dy that x_i filled.
  std::vector<int64_t> channels;
  for (const Tensor* t : inputs) channels.push_back(channels_of(*t));
  for (size_t i = 0; i < grad_inputs.size(); ++i) {
    float* dx = target_or_null(grad_inputs[i]);
    if (dx == nullptr) continue;
    std::vector<float*> grads(inputs.size(), nullptr);
    grads[i] = dx;
    kernels::reference::concat_backward({batch_of(output), positions_of(output), channels}, grad_output.data(), grads,
                                        grad_inputs[i].accumulate);
  }
}

}  // namespace convnet
