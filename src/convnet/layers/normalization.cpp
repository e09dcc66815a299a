// LocalResponseNorm and BatchNorm: arguments, shapes, parameters and forward/backward. MACs stay
// 0: only multiplications by weights of conv/fc-like layers are counted, and at inference batch
// norm folds into the preceding convolution.
#include "convnet/layers/normalization.hpp"

#include <algorithm>
#include <cmath>
#include "convnet/layers/compute_util.hpp"
#include "convnet/kernels/reference/lrn.hpp"
#include "convnet/kernels/reference/batch_norm.hpp"

#include "convnet/error.hpp"
#include "convnet/layers/format.hpp"

namespace convnet {

std::unique_ptr<Layer> LocalResponseNorm::from_args(LayerArgs& args) {
  LocalResponseNormOptions o;
  o.size = args.option_int("size", 1).value_or(o.size);
  o.alpha = args.option_double("alpha").value_or(o.alpha);
  o.beta = args.option_double("beta").value_or(o.beta);
  o.k = args.option_double("k").value_or(o.k);
  // The denominator k + alpha/size * sum x^2 must stay positive for every input, zeros included.
  if (o.k <= 0) {
    args.fail(args.where(), "k must be positive, found " + number_string(o.k) +
                                ": the denominator k + alpha/size * sum(x^2) would be " +
                                (o.k == 0 ? "0 (NaN)" : "negative") + " where the inputs are 0");
  }
  if (o.alpha < 0) {
    args.fail(args.where(), "alpha must be at least 0, found " + number_string(o.alpha) +
                                ": the denominator k + alpha/size * sum(x^2) would reach 0 or below for large inputs");
  }
  args.finish();
  return std::make_unique<LocalResponseNorm>(o);
}

std::string LocalResponseNorm::args() const {
  const LocalResponseNormOptions d;
  std::string out;
  auto add = [&out](const std::string& word) { out += (out.empty() ? "" : " ") + word; };
  if (options_.size != d.size) add("size " + std::to_string(options_.size));
  if (options_.alpha != d.alpha) add("alpha " + number_string(options_.alpha));
  if (options_.beta != d.beta) add("beta " + number_string(options_.beta));
  if (options_.k != d.k) add("k " + number_string(options_.k));
  return out;
}

Shape LocalResponseNorm::output_shape(std::span<const Shape> inputs) const {
  require_volume(inputs, "lrn");
  return inputs[0];
}

std::unique_ptr<Layer> BatchNorm::from_args(LayerArgs& args) {
  BatchNormOptions o;
  if (auto eps = args.option_double("eps")) {
    if (*eps <= 0) args.fail(args.where(), "eps must be positive, found " + number_string(*eps));
    o.eps = *eps;
  }
  if (auto momentum = args.option_double("momentum")) {
    if (*momentum < 0 || *momentum > 1) {
      args.fail(args.where(), "momentum must be between 0 and 1, found " + number_string(*momentum));
    }
    o.momentum = *momentum;
  }
  args.finish();
  return std::make_unique<BatchNorm>(o);
}

std::string BatchNorm::args() const {
  const BatchNormOptions d;
  std::string out;
  if (options_.eps != d.eps) out += "eps " + number_string(options_.eps);
  if (options_.momentum != d.momentum) out += (out.empty() ? "" : " ") + ("momentum " + number_string(options_.momentum));
  return out;
}

Shape BatchNorm::output_shape(std::span<const Shape> inputs) const {
  if (inputs.empty() || inputs[0].rank() == 0) throw ShapeError("batchnorm needs an input with channels");
  return inputs[0];  // (C, H, W) as BatchNorm2d, (C) as BatchNorm1d
}

// bn.bias is a learnable parameter (torchvision counts it), but is_bias stays false: "parameters
// without biases" means the biases of conv/fc layers, the ones a following batch norm makes
// redundant, and batch norm's shift is what replaces them.
std::vector<ParamSpec> BatchNorm::parameters(std::span<const Shape> inputs) const {
  const int64_t c = inputs[0].channels();
  return {{"weight", {c}, false, false, Init::Ones},
          {"bias", {c}, false, false, Init::Zeros},
          {"running_mean", {c}, false, true, Init::Zeros},
          {"running_var", {c}, false, true, Init::Ones},
          {"num_batches_tracked", {}, false, true, Init::Zeros}};  // a scalar
}

std::vector<Formula> BatchNorm::explain(std::span<const Shape> inputs, const Shape& output) const {
  const int64_t c = inputs[0].channels();
  return {{"output volume", "same as the input", inputs[0].volume_string(), output.volume_string()},
          {"parameters", "2*C (weight, bias)", "2*" + std::to_string(c), std::to_string(2 * c)},
          {"buffers", "2*C + 1 (running_mean, running_var, num_batches_tracked)", "2*" + std::to_string(c) + " + 1",
           std::to_string(2 * c + 1)}};
}

}  // namespace convnet

// ----- compute -----

namespace convnet {

void LocalResponseNorm::forward(const RunContext& ctx, Inputs inputs, Params, Tensor& output) {
  const kernels::reference::LrnGeometry g{batch_of(output), channels_of(output), positions_of(output), options_.size,
                                          options_.alpha, options_.beta, options_.k};
  if (ctx.backend == Backend::OneDnn) {
    onednn_.forward(*ctx.engine, g, ctx.training || ctx.backward_follows, inputs[0]->data(), output.data());
    return;
  }
  if (scale_.dims() != output.dims()) scale_ = Tensor(output.dims());
  kernels::reference::lrn_forward(g, inputs[0]->data(), output.data(), scale_.data());
}
void LocalResponseNorm::backward(const RunContext& ctx, Inputs inputs, const Tensor& output, const Tensor& grad_output,
                                 Params, Params, GradTargets grad_inputs) {
  if (float* dx = target_or_null(grad_inputs[0])) {
    const kernels::reference::LrnGeometry g{batch_of(output), channels_of(output), positions_of(output),
                                            options_.size, options_.alpha, options_.beta, options_.k};
    if (ctx.backend == Backend::OneDnn) {
      onednn_.backward(*ctx.engine, g, inputs[0]->data(), grad_output.data(), dx, grad_inputs[0].accumulate);
      return;
    }
    kernels::reference::lrn_backward(g, inputs[0]->data(), scale_.data(), grad_output.data(), dx,
                                     grad_inputs[0].accumulate);
  }
}

// params: weight (C), bias (C), running_mean (C), running_var (C), num_batches_tracked ().
void BatchNorm::forward(const RunContext& ctx, Inputs inputs, Params params, Tensor& output) {
  const kernels::reference::BatchNormGeometry g{batch_of(output), channels_of(output), positions_of(output)};
  const auto eps = static_cast<float>(options_.eps);
  if (!ctx.training && ctx.backend == Backend::OneDnn) {
    onednn_.forward_inference(*ctx.engine, g, eps, inputs[0]->data(), params[0]->data(), params[1]->data(),
                              params[2]->data(), params[3]->data(), output.data());
    return;
  }
  if (!ctx.training) {
    kernels::reference::batch_norm_forward_inference(g, eps, inputs[0]->data(), params[0]->data(), params[1]->data(),
                                                     params[2]->data(), params[3]->data(), output.data());
    return;
  }
  if (g.batch * g.positions == 1) {
    throw ShapeError("batch norm in training needs more than one value per channel (batch 1 of a vector): use a "
                     "larger batch");
  }
  saved_mean_.resize(static_cast<size_t>(g.channels));
  saved_inv_std_.resize(static_cast<size_t>(g.channels));
  if (ctx.sum_over_ranks) {
    forward_synchronized(ctx, *inputs[0], params, output);
  } else if (ctx.backend == Backend::OneDnn) {
    onednn_.forward_training(*ctx.engine, g, eps, static_cast<float>(options_.momentum), inputs[0]->data(),
                             params[0]->data(), params[1]->data(), output.data(), params[2]->data(), params[3]->data(),
                             saved_mean_.data(), saved_inv_std_.data());
  } else {
    kernels::reference::batch_norm_forward_training(g, eps, static_cast<float>(options_.momentum), inputs[0]->data(),
                                                  params[0]->data(), params[1]->data(), output.data(),
                                                  params[2]->data(), params[3]->data(), saved_mean_.data(),
                                                  saved_inv_std_.data());
  }
  (*params[4])[0] += 1.0f;  // num_batches_tracked
}
void BatchNorm::backward(const RunContext& ctx, Inputs inputs, const Tensor& output, const Tensor& grad_output,
                         Params params, Params grad_params, GradTargets grad_inputs) {
  // One kernel call gives dL/dx (written or added per its target) and dL/dgamma, dL/dbeta into
  // scratch, which is then added to the parameter gradients, as every parameter gradient is.
  const kernels::reference::BatchNormGeometry g{batch_of(output), channels_of(output), positions_of(output)};
  // Zeroed, so the scratch is right whether the call writes or adds (it follows dx's target).
  grad_scale_.assign(static_cast<size_t>(g.channels), 0.0f);
  grad_shift_.assign(static_cast<size_t>(g.channels), 0.0f);
  const bool accumulate = grad_inputs[0].accumulate;
  if (!ctx.training) {  // after an inference forward (the visualisations' gradients): constant statistics
    kernels::reference::batch_norm_backward_inference(g, static_cast<float>(options_.eps), inputs[0]->data(),
                                                      params[0]->data(), params[2]->data(), params[3]->data(),
                                                      grad_output.data(), target_or_null(grad_inputs[0]),
                                                      grad_scale_.data(), grad_shift_.data(), accumulate);
  } else if (ctx.sum_over_ranks) {
    backward_synchronized(ctx, *inputs[0], grad_output, params, grad_params, grad_inputs[0]);
    return;
  } else if (ctx.backend == Backend::OneDnn) {
    onednn_.backward(*ctx.engine, g, static_cast<float>(options_.eps), inputs[0]->data(), params[0]->data(),
                     saved_mean_.data(), saved_inv_std_.data(), grad_output.data(), target_or_null(grad_inputs[0]),
                     grad_scale_.data(), grad_shift_.data(), accumulate);
  } else {
    kernels::reference::batch_norm_backward(g, inputs[0]->data(), params[0]->data(), saved_mean_.data(),
                                            saved_inv_std_.data(), grad_output.data(), target_or_null(grad_inputs[0]),
                                            grad_scale_.data(), grad_shift_.data(), accumulate);
  }
  float* grad_weight = grad_or_null(grad_params, 0);
  float* grad_bias = grad_or_null(grad_params, 1);
  for (int64_t c = 0; c < g.channels; ++c) {
    if (grad_weight != nullptr) grad_weight[c] += grad_scale_[static_cast<size_t>(c)];
    if (grad_bias != nullptr) grad_bias[c] += grad_shift_[static_cast<size_t>(c)];
  }
}

// Synchronised batch norm: the per-channel sums of every rank's batch are added (RunContext::
// sum_over_ranks), so each rank normalises with the global batch's statistics; M counts the values
// per channel over all ranks. Running variance unbiased, as PyTorch's.
void BatchNorm::forward_synchronized(const RunContext& ctx, const Tensor& input, Params params, Tensor& output) {
  const int64_t n_batch = batch_of(output), channels = channels_of(output), positions = positions_of(output);
  std::vector<double> sums(static_cast<size_t>(2 * channels + 1), 0.0);  // sum x, sum x^2 per channel, count
  for (int64_t n = 0; n < n_batch; ++n) {
    for (int64_t c = 0; c < channels; ++c) {
      const float* x = input.data() + (n * channels + c) * positions;
      for (int64_t p = 0; p < positions; ++p) {
        sums[static_cast<size_t>(c)] += x[p];
        sums[static_cast<size_t>(channels + c)] += static_cast<double>(x[p]) * x[p];
      }
    }
  }
  sums.back() = static_cast<double>(n_batch * positions);
  ctx.sum_over_ranks(sums);
  const double count = sums.back();
  saved_count_ = count;
  const double momentum = options_.momentum;
  for (int64_t c = 0; c < channels; ++c) {
    const auto k = static_cast<size_t>(c);
    const double mean = sums[k] / count;
    const double var = std::max(sums[static_cast<size_t>(channels + c)] / count - mean * mean, 0.0);
    saved_mean_[k] = static_cast<float>(mean);
    saved_inv_std_[k] = static_cast<float>(1.0 / std::sqrt(var + options_.eps));
    (*params[2])[c] = static_cast<float>((1 - momentum) * (*params[2])[c] + momentum * mean);
    (*params[3])[c] = static_cast<float>((1 - momentum) * (*params[3])[c] + momentum * var * count / std::max(count - 1, 1.0));
  }
  // y = gamma (x - mean) / std + beta
  for (int64_t n = 0; n < n_batch; ++n) {
    for (int64_t c = 0; c < channels; ++c) {
      const auto k = static_cast<size_t>(c);
      const float scale = (*params[0])[c] * saved_inv_std_[k], shift = (*params[1])[c] - saved_mean_[k] * scale;
      const float* x = input.data() + (n * channels + c) * positions;
      float* y = output.data() + (n * channels + c) * positions;
      for (int64_t p = 0; p < positions; ++p) y[p] = x[p] * scale + shift;
    }
  }
}

void BatchNorm::backward_synchronized(const RunContext& ctx, const Tensor& input, const Tensor& grad_output,
                                      Params params, Params grad_params, const GradTarget& grad_input) {
  const int64_t n_batch = batch_of(grad_output), channels = channels_of(grad_output);
  const int64_t positions = positions_of(grad_output);
  std::vector<double> sums(static_cast<size_t>(2 * channels), 0.0);  // sum dy, sum dy xhat per channel
  for (int64_t n = 0; n < n_batch; ++n) {
    for (int64_t c = 0; c < channels; ++c) {
      const auto k = static_cast<size_t>(c);
      const float* x = input.data() + (n * channels + c) * positions;
      const float* dy = grad_output.data() + (n * channels + c) * positions;
      for (int64_t p = 0; p < positions; ++p) {
        sums[k] += dy[p];
        sums[static_cast<size_t>(channels + c)] += static_cast<double>(dy[p]) * (x[p] - saved_mean_[k]) * saved_inv_std_[k];
      }
    }
  }
  // This rank's share of dL/dbeta and dL/dgamma: the gradient all-reduce adds the ranks' shares.
  float* grad_weight = grad_or_null(grad_params, 0);
  float* grad_bias = grad_or_null(grad_params, 1);
  for (int64_t c = 0; c < channels; ++c) {
    if (grad_weight != nullptr) grad_weight[c] += static_cast<float>(sums[static_cast<size_t>(channels + c)]);
    if (grad_bias != nullptr) grad_bias[c] += static_cast<float>(sums[static_cast<size_t>(c)]);
  }
  float* dx_out = target_or_null(grad_input);
  if (dx_out == nullptr) return;
  ctx.sum_over_ranks(sums);
  // dx = gamma / (M std) (M dy - sum dy - xhat sum(dy xhat)), over the global batch
  const double count = saved_count_;
  for (int64_t n = 0; n < n_batch; ++n) {
    for (int64_t c = 0; c < channels; ++c) {
      const auto k = static_cast<size_t>(c);
      const double a = (*params[0])[c] * saved_inv_std_[k] / count;
      const float* x = input.data() + (n * channels + c) * positions;
      const float* dy = grad_output.data() + (n * channels + c) * positions;
      float* dx = dx_out + (n * channels + c) * positions;
      for (int64_t p = 0; p < positions; ++p) {
        const double xhat = (x[p] - saved_mean_[k]) * saved_inv_std_[k];
        const auto v = static_cast<float>(a * (count * dy[p] - sums[k] - xhat * sums[static_cast<size_t>(channels + c)]));
        dx[p] = grad_input.accumulate ? dx[p] + v : v;
      }
    }
  }
}

}  // namespace convnet
