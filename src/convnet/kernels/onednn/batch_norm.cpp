// Layout: x, y (N, C, P), plain float32; per-channel buffers (C).
#include "convnet/kernels/onednn/batch_norm.hpp"

#include <bit>
#include <cmath>

namespace convnet::kernels::onednn {

namespace {

std::array<int64_t, 6> bn_key(Engine& engine, const BatchNormGeometry& g, float eps) {
  return {g.batch, g.channels, g.positions, static_cast<int64_t>(std::bit_cast<uint32_t>(eps)), 0,
          engine_id(engine)};
}

dnnl::memory::desc bn_data_desc(const BatchNormGeometry& g) {
  return f32_desc({g.batch, g.channels, g.positions, 1}, Tag::nchw);
}

dnnl::normalization_flags scale_shift() {
  return dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
}

dnnl::batch_normalization_forward::primitive_desc forward_pd(Engine& engine, const BatchNormGeometry& g, float eps,
                                                             bool training) {
  const dnnl::batch_normalization_forward::desc desc(
      training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference, bn_data_desc(g), eps,
      training ? scale_shift() : scale_shift() | dnnl::normalization_flags::use_global_stats);
  return {desc, scratchpad_attr(), engine.engine()};
}

}  // namespace

void BatchNorm::bind_channels(Engine& engine, const BatchNormGeometry& g) {
  if (channels_ == g.channels && channels_engine_ == engine_id(engine)) return;
  const dnnl::engine& e = engine.engine();
  const auto c = f32_desc({g.channels}, Tag::x);
  scale_ = unbound_memory(c, e);
  shift_ = unbound_memory(c, e);
  mean_ = unbound_memory(c, e);
  variance_ = unbound_memory(c, e);
  variance_internal_ = dnnl::memory(c, e);
  diff_scale_ = dnnl::memory(c, e);
  diff_shift_ = dnnl::memory(c, e);
  unused_shift_ = dnnl::memory(c, e);  // the backward asks for beta although dL/dx does not depend on it
  auto* zero = static_cast<float*>(unused_shift_.get_data_handle());
  for (int64_t i = 0; i < g.channels; ++i) zero[i] = 0.0F;
  channels_ = g.channels;
  channels_engine_ = engine_id(engine);
}

void BatchNorm::forward_training(Engine& engine, const BatchNormGeometry& g, float eps, float momentum,
                                 const float* input, const float* gamma, const float* beta, float* output,
                                 float* running_mean, float* running_var, float* saved_mean, float* saved_inv_std) {
  bind_channels(engine, g);
  const Key key = bn_key(engine, g, eps);
  if (!training_.built || training_.key != key) {
    training_ = {key, Step(forward_pd(engine, g, eps, true), engine.engine()), true};
  }
  const dnnl::engine& e = engine.engine();
  dnnl::memory src(bn_data_desc(g), e, handle(input));
  dnnl::memory dst(bn_data_desc(g), e, output);
  scale_.set_data_handle(handle(gamma));
  shift_.set_data_handle(handle(beta));
  mean_.set_data_handle(saved_mean);
  training_.step.run(engine, {{DNNL_ARG_SRC, src},
                              {DNNL_ARG_DST, dst},
                              {DNNL_ARG_SCALE, scale_},
                              {DNNL_ARG_SHIFT, shift_},
                              {DNNL_ARG_MEAN, mean_},
                              {DNNL_ARG_VARIANCE, variance_internal_}});
  engine.stream().wait();
  const auto* var = static_cast<const float*>(variance_internal_.get_data_handle());
  for (int64_t c = 0; c < g.channels; ++c) saved_inv_std[c] = 1.0F / std::sqrt(var[c] + eps);
  update_running_stats(saved_mean, var, g.channels, g.batch * g.positions, momentum, running_mean, running_var);
}

void update_running_stats(const float* mean, const float* var, int64_t channels, int64_t m, float momentum,
                          float* running_mean, float* running_var) {
  const float unbias = m > 1 ? static_cast<float>(m) / static_cast<float>(m - 1) : 1.0F;
  for (int64_t c = 0; c < channels; ++c) {
    running_mean[c] = (1.0F - momentum) * running_mean[c] + momentum * mean[c];
    running_var[c] = (1.0F - momentum) * running_var[c] + momentum * var[c] * unbias;
  }
}

void BatchNorm::forward_inference(Engine& engine, const BatchNormGeometry& g, float eps, const float* input,
                                  const float* gamma, const float* beta, const float* running_mean,
                                  const float* running_var, float* output) {
  bind_channels(engine, g);
  const Key key = bn_key(engine, g, eps);
  if (!inference_.built || inference_.key != key) {
    inference_ = {key, Step(forward_pd(engine, g, eps, false), engine.engine()), true};
  }
  const dnnl::engine& e = engine.engine();
  dnnl::memory src(bn_data_desc(g), e, handle(input));
  dnnl::memory dst(bn_data_desc(g), e, output);
  scale_.set_data_handle(handle(gamma));
  shift_.set_data_handle(handle(beta));
  mean_.set_data_handle(handle(running_mean));
  variance_.set_data_handle(handle(running_var));
  inference_.step.run(engine, {{DNNL_ARG_SRC, src},
                               {DNNL_ARG_DST, dst},
                               {DNNL_ARG_SCALE, scale_},
                               {DNNL_ARG_SHIFT, shift_},
                               {DNNL_ARG_MEAN, mean_},
                               {DNNL_ARG_VARIANCE, variance_}});
  engine.stream().wait();
}

void BatchNorm::backward(Engine& engine, const BatchNormGeometry& g, float eps, const float* input,
                         const float* gamma, const float* saved_mean, const float* saved_inv_std,
                         const float* grad_output, float* grad_input, float* grad_gamma, float* grad_beta,
                         bool accumulate) {
  // dL/dx = gamma inv_std / m (m dy - sum dy - xhat sum dy xhat);  dL/dgamma = sum dy xhat;  dL/dbeta = sum dy
  if (grad_input == nullptr && grad_gamma == nullptr && grad_beta == nullptr) return;
  bind_channels(engine, g);
  const Key key = bn_key(engine, g, eps);
  const dnnl::engine& e = engine.engine();
  if (!backward_.built || backward_.key != key) {
    const auto hint = forward_pd(engine, g, eps, true);
    const dnnl::batch_normalization_backward::desc desc(dnnl::prop_kind::backward, bn_data_desc(g), bn_data_desc(g),
                                                        eps, scale_shift());
    const dnnl::batch_normalization_backward::primitive_desc pd(desc, scratchpad_attr(), e, hint);
    backward_ = {key, Step(pd, e), true};
    diff_src_ = Output(e, bn_data_desc(g), pd.diff_src_desc());
  }
  // oneDNN wants the variance; it only ever uses var + eps = 1 / inv_std^2, which this recovers.
  auto* var = static_cast<float*>(variance_internal_.get_data_handle());
  for (int64_t c = 0; c < g.channels; ++c) var[c] = 1.0F / (saved_inv_std[c] * saved_inv_std[c]) - eps;
  dnnl::memory src(bn_data_desc(g), e, handle(input));
  dnnl::memory diff_dst(bn_data_desc(g), e, handle(grad_output));
  scale_.set_data_handle(handle(gamma));
  mean_.set_data_handle(handle(saved_mean));
  backward_.step.run(engine, {{DNNL_ARG_SRC, src},
                              {DNNL_ARG_DIFF_DST, diff_dst},
                              {DNNL_ARG_SCALE, scale_},
                              {DNNL_ARG_SHIFT, unused_shift_},
                              {DNNL_ARG_MEAN, mean_},
                              {DNNL_ARG_VARIANCE, variance_internal_},
                              {DNNL_ARG_DIFF_SRC, diff_src_.target(grad_input, accumulate)},
                              {DNNL_ARG_DIFF_SCALE, diff_scale_},
                              {DNNL_ARG_DIFF_SHIFT, diff_shift_}});
  diff_src_.finish(engine, grad_input, accumulate);
  engine.stream().wait();
  if (grad_gamma != nullptr) {
    store(grad_gamma, static_cast<const float*>(diff_scale_.get_data_handle()), g.channels, accumulate);
  }
  if (grad_beta != nullptr) {
    store(grad_beta, static_cast<const float*>(diff_shift_.get_data_handle()), g.channels, accumulate);
  }
}

}  // namespace convnet::kernels::onednn
