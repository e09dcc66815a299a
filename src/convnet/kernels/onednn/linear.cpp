// Layout: x (N, I), w (O, I), b (O), y (N, O), plain float32.
#include "convnet/kernels/onednn/linear.hpp"


namespace convnet::kernels::onednn {

namespace {

struct LinearDescs {
  dnnl::memory::desc src, weights, bias, dst;
};

LinearDescs linear_descs(int64_t batch, int64_t in_features, int64_t out_features) {
  return {f32_desc({batch, in_features}, Tag::nc), f32_desc({out_features, in_features}, Tag::oi),
          f32_desc({out_features}, Tag::x), f32_desc({batch, out_features}, Tag::nc)};
}

std::array<int64_t, 5> linear_key(Engine& engine, int64_t batch, int64_t in, int64_t out, bool flag) {
  return {batch, in, out, flag ? 1 : 0, engine_id(engine)};
}

dnnl::inner_product_forward::primitive_desc forward_pd(Engine& engine, const LinearDescs& d, bool with_bias) {
  const auto prop = dnnl::prop_kind::forward_training;
  const dnnl::inner_product_forward::desc desc =
      with_bias ? dnnl::inner_product_forward::desc(prop, d.src, d.weights, d.bias, d.dst)
                : dnnl::inner_product_forward::desc(prop, d.src, d.weights, d.dst);
  return {desc, scratchpad_attr(), engine.engine()};
}

}  // namespace

void Linear::forward(Engine& engine, int64_t batch, int64_t in_features, int64_t out_features, const float* input,
                     const float* weight, const float* bias, float* output) {
  const bool with_bias = bias != nullptr;
  const Key key = linear_key(engine, batch, in_features, out_features, with_bias);
  if (!has_forward_ || forward_key_ != key) {
    const LinearDescs d = linear_descs(batch, in_features, out_features);
    const auto pd = forward_pd(engine, d, with_bias);
    const dnnl::engine& e = engine.engine();
    forward_key_ = key;
    forward_ = {Step(pd, e), Input(e, d.src, pd.src_desc()), Input(e, d.weights, pd.weights_desc()),
                with_bias ? Input(e, d.bias, pd.bias_desc()) : Input(), Output(e, d.dst, pd.dst_desc())};
    has_forward_ = true;
  }
  forward_.run(engine, input, weight, bias, output);
}

void Linear::backward_data(Engine& engine, int64_t batch, int64_t in_features, int64_t out_features,
                           const float* weight, const float* grad_output, float* grad_input, bool accumulate) {
  // dL/dx = dL/dy w
  if (grad_input == nullptr) return;
  const Key key = linear_key(engine, batch, in_features, out_features, false);
  if (!has_backward_data_ || backward_data_key_ != key) {
    const LinearDescs d = linear_descs(batch, in_features, out_features);
    const auto hint = forward_pd(engine, d, false);
    const dnnl::inner_product_backward_data::desc desc(d.src, d.weights, d.dst);
    const dnnl::inner_product_backward_data::primitive_desc pd(desc, scratchpad_attr(), engine.engine(), hint);
    const dnnl::engine& e = engine.engine();
    backward_data_key_ = key;
    backward_data_ = {Step(pd, e), Input(e, d.weights, pd.weights_desc()),
                      Input(e, d.dst, pd.diff_dst_desc()), Output(e, d.src, pd.diff_src_desc())};
    has_backward_data_ = true;
  }
  backward_data_.run(engine, weight, grad_output, grad_input, accumulate);
}

void Linear::backward_weights(Engine& engine, int64_t batch, int64_t in_features, int64_t out_features,
                              const float* input, const float* grad_output, float* grad_weight, float* grad_bias,
                              bool accumulate) {
  // dL/dw = dL/dy^T x;  dL/db[o] = sum_n dL/dy[n,o]
  if (grad_weight == nullptr && grad_bias == nullptr) return;
  const bool with_bias = grad_bias != nullptr;
  const Key key = linear_key(engine, batch, in_features, out_features, with_bias);
  if (!has_backward_weights_ || backward_weights_key_ != key) {
    const LinearDescs d = linear_descs(batch, in_features, out_features);
    const auto hint = forward_pd(engine, d, with_bias);
    const dnnl::inner_product_backward_weights::desc desc =
        with_bias ? dnnl::inner_product_backward_weights::desc(d.src, d.weights, d.bias, d.dst)
                  : dnnl::inner_product_backward_weights::desc(d.src, d.weights, d.dst);
    const dnnl::inner_product_backward_weights::primitive_desc pd(desc, scratchpad_attr(), engine.engine(), hint);
    const dnnl::engine& e = engine.engine();
    backward_weights_key_ = key;
    backward_weights_ = {
                         Step(pd, e),
                         Input(e, d.src, pd.src_desc()),
                         Input(e, d.dst, pd.diff_dst_desc()),
                         Output(e, d.weights, pd.diff_weights_desc()),
                         with_bias ? Output(e, d.bias, pd.diff_bias_desc()) : Output()};
    has_backward_weights_ = true;
  }
  backward_weights_.run(engine, input, grad_output, grad_weight, with_bias ? grad_bias : nullptr, accumulate);
}

void Linear::backward(Engine& engine, int64_t batch, int64_t in_features, int64_t out_features, const float* input,
                      const float* weight, const float* grad_output, float* grad_input, float* grad_weight,
                      float* grad_bias, bool accumulate) {
  backward_weights(engine, batch, in_features, out_features, input, grad_output, grad_weight, grad_bias, accumulate);
  backward_data(engine, batch, in_features, out_features, weight, grad_output, grad_input, accumulate);
}

}  // namespace convnet::kernels::onednn
