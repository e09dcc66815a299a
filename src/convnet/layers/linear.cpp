// Linear: shape, parameters, cost and forward/backward. Weight layout is PyTorch's
// (out_features, in_features), with in_features = the input's element count (H*W*D for a volume).
#include "convnet/layers/linear.hpp"

#include "convnet/kernels/reference/linear.hpp"
#include "convnet/layers/compute_util.hpp"

#include "convnet/checked.hpp"
#include "convnet/error.hpp"
#include "convnet/layers/format.hpp"

namespace convnet {

std::unique_ptr<Layer> Linear::from_args(LayerArgs& args) {
  LinearOptions o;
  o.out_features = args.positive_int("out_features");
  o.bias = args.option_bool("bias").value_or(true);
  o.init = args.option_init().value_or(Init::KaimingNormal);
  args.finish();
  return std::make_unique<Linear>(o);
}

std::string Linear::args() const {
  std::string out = std::to_string(options_.out_features);
  if (!options_.bias) out += " bias false";
  if (options_.init != Init::KaimingNormal) out += std::string(" init ") + init_name(options_.init);
  return out;
}

Shape Linear::output_shape(std::span<const Shape> inputs) const {
  if (inputs.empty()) throw ShapeError("fc needs an input");
  return {options_.out_features};  // (N_in) or (C, H, W) -> (N)
}

std::vector<ParamSpec> Linear::parameters(std::span<const Shape> inputs) const {
  std::vector<ParamSpec> params{{"weight", {options_.out_features, inputs[0].numel()}, false, false, options_.init}};
  if (options_.bias) params.push_back({"bias", {options_.out_features}, true, false, Init::Zeros});
  return params;
}

int64_t Linear::macs(std::span<const Shape> inputs, const Shape& /*output*/) const {
  return checked_mul(inputs[0].numel(), options_.out_features, "the multiply-add count");
}

ReceptiveField Linear::receptive_field(const ReceptiveField& input) const {
  ReceptiveField out = input;
  out.global = true;  // every neuron sees every input element
  return out;
}

std::vector<Formula> Linear::explain(std::span<const Shape> inputs, const Shape& output) const {
  const Shape& in = inputs[0];
  const int64_t n_in = in.numel();
  const int64_t n_out = options_.out_features;
  std::vector<Formula> lines;
  if (in.is_volume()) {
    lines.push_back({"input features", "N_in = H*W*D", product_string({in.height(), in.width(), in.channels()}),
                     std::to_string(n_in)});
  }
  lines.push_back({"output size", "N_out = N", std::to_string(n_out), std::to_string(output.numel())});
  const std::string nn = product_string({n_in, n_out});
  lines.push_back({"weights", "N_in*N_out", nn, std::to_string(n_in * n_out)});
  if (options_.bias) {
    lines.push_back({"parameters", "(N_in + 1)*N_out", "(" + std::to_string(n_in) + " + 1)*" + std::to_string(n_out),
                     std::to_string((n_in + 1) * n_out)});
  }
  lines.push_back({"multiply-adds", "N_in*N_out", nn, std::to_string(macs(inputs, output))});
  return lines;
}

}  // namespace convnet

// ----- compute: a volume input is read as (N, C*H*W), as Caffe's InnerProduct does -----

namespace convnet {

void Linear::forward(const RunContext& ctx, Inputs inputs, Params params, Tensor& output) {
  const int64_t batch = batch_of(output);
  if (ctx.backend == Backend::OneDnn) {
    onednn_.forward(*ctx.engine, batch, inputs[0]->numel() / batch, options_.out_features, inputs[0]->data(),
                    params[0]->data(), options_.bias ? params[1]->data() : nullptr, output.data());
    return;
  }
  kernels::reference::linear_forward(batch, inputs[0]->numel() / batch, options_.out_features, inputs[0]->data(),
                                     params[0]->data(), options_.bias ? params[1]->data() : nullptr, output.data());
}

void Linear::backward(const RunContext& ctx, Inputs inputs, const Tensor& output, const Tensor& grad_output,
                      Params params, Params grad_params, GradTargets grad_inputs) {
  const int64_t batch = batch_of(output);
  const int64_t in_features = inputs[0]->numel() / batch;
  if (ctx.backend == Backend::OneDnn) {
    if (float* dx = target_or_null(grad_inputs[0])) {
      onednn_.backward_data(*ctx.engine, batch, in_features, options_.out_features, params[0]->data(),
                            grad_output.data(), dx, grad_inputs[0].accumulate);
    }
    onednn_.backward_weights(*ctx.engine, batch, in_features, options_.out_features, inputs[0]->data(),
                             grad_output.data(), grad_or_null(grad_params, 0),
                             options_.bias ? grad_or_null(grad_params, 1) : nullptr, true);
    return;
  }
  if (float* dx = target_or_null(grad_inputs[0])) {
    kernels::reference::linear_backward(batch, in_features, options_.out_features, inputs[0]->data(),
                                        params[0]->data(), grad_output.data(), dx, nullptr, nullptr,
                                        grad_inputs[0].accumulate);
  }
  kernels::reference::linear_backward(batch, in_features, options_.out_features, inputs[0]->data(), params[0]->data(),
                                      grad_output.data(), nullptr, grad_or_null(grad_params, 0),
                                      options_.bias ? grad_or_null(grad_params, 1) : nullptr, true);
}

}  // namespace convnet
