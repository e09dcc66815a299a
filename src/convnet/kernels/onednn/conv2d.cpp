// Layout: x (N, C, H, W), w (K, C/groups, F_h, F_w), b (K), y (N, K, H2, W2), all plain float32.
#include "convnet/kernels/onednn/conv2d.hpp"


namespace convnet::kernels::onednn {

namespace {

struct ConvDescs {
  dnnl::memory::desc src, weights, bias, dst;             // plain, as the caller holds them
  dnnl::memory::desc any_src, any_weights, any_dst;       // format left to oneDNN
  Dims strides, dilates, pad_l, pad_r;
};

ConvDescs conv_descs(const Conv2dGeometry& g) {
  ConvDescs d;
  d.src = f32_desc({g.batch, g.in_channels, g.in_h, g.in_w}, Tag::nchw);
  d.dst = f32_desc({g.batch, g.out_channels, g.out_h, g.out_w}, Tag::nchw);
  d.bias = f32_desc({g.out_channels}, Tag::x);
  // (K, C/G, F_h, F_w) is the same memory as (G, K/G, C/G, F_h, F_w).
  const Dims wdims = g.groups == 1 ? Dims{g.out_channels, g.in_channels, g.kernel_h, g.kernel_w}
                                   : Dims{g.groups, g.out_channels / g.groups, g.in_channels / g.groups,
                                          g.kernel_h, g.kernel_w};
  d.weights = f32_desc(wdims, g.groups == 1 ? Tag::oihw : Tag::goihw);
  d.any_src = f32_desc(d.src.dims(), Tag::any);
  d.any_dst = f32_desc(d.dst.dims(), Tag::any);
  d.any_weights = f32_desc(wdims, Tag::any);
  d.strides = {g.stride_h, g.stride_w};
  d.dilates = {g.dilation_h - 1, g.dilation_w - 1};  // oneDNN counts the gaps between taps
  d.pad_l = {g.pad_h, g.pad_w};
  d.pad_r = {right_padding(g.in_h, g.out_h, g.stride_h, (g.kernel_h - 1) * g.dilation_h + 1, g.pad_h),
             right_padding(g.in_w, g.out_w, g.stride_w, (g.kernel_w - 1) * g.dilation_w + 1, g.pad_w)};
  return d;
}

std::array<int64_t, 18> conv_key(Engine& engine, const Conv2dGeometry& g, bool flag) {
  return {g.batch,    g.in_channels, g.in_h,     g.in_w,     g.out_channels, g.out_h,
          g.out_w,    g.kernel_h,    g.kernel_w, g.stride_h, g.stride_w,     g.pad_h,
          g.pad_w,    g.dilation_h,  g.dilation_w, g.groups, flag ? 1 : 0,
          engine_id(engine)};
}

dnnl::convolution_forward::primitive_desc forward_pd(Engine& engine, const ConvDescs& d, bool with_bias) {
  const dnnl::convolution_forward::desc desc =
      with_bias ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                                  dnnl::algorithm::convolution_direct, d.any_src, d.any_weights,
                                                  d.bias, d.any_dst, d.strides, d.dilates, d.pad_l, d.pad_r)
                : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                                  dnnl::algorithm::convolution_direct, d.any_src, d.any_weights,
                                                  d.any_dst, d.strides, d.dilates, d.pad_l, d.pad_r);
  return {desc, scratchpad_attr(), engine.engine()};
}

}  // namespace

void Conv2d::forward(Engine& engine, const Conv2dGeometry& g, const float* input, const float* weight,
                     const float* bias, float* output) {
  const bool with_bias = bias != nullptr;
  const Key key = conv_key(engine, g, with_bias);
  if (!has_forward_ || forward_key_ != key) {
    const ConvDescs d = conv_descs(g);
    const auto pd = forward_pd(engine, d, with_bias);
    const dnnl::engine& e = engine.engine();
    forward_key_ = key;
    forward_ = {Step(pd, e), Input(e, d.src, pd.src_desc()), Input(e, d.weights, pd.weights_desc()),
                with_bias ? Input(e, d.bias, pd.bias_desc()) : Input(), Output(e, d.dst, pd.dst_desc())};
    has_forward_ = true;
  }
  forward_.run(engine, input, weight, bias, output);
}

void Conv2d::backward_data(Engine& engine, const Conv2dGeometry& g, const float* weight, const float* grad_output,
                           float* grad_input, bool accumulate) {
  // dL/dx[n,c',ih,iw] = sum_{k,p,q} dL/dy[n,k,i,j] w[k,c,p,q] over the taps that read (ih, iw)
  if (grad_input == nullptr) return;
  const Key key = conv_key(engine, g, false);
  if (!has_backward_data_ || backward_data_key_ != key) {
    const ConvDescs d = conv_descs(g);
    const auto hint = forward_pd(engine, d, false);
    const dnnl::convolution_backward_data::desc desc(dnnl::algorithm::convolution_direct, d.any_src, d.any_weights,
                                                     d.any_dst, d.strides, d.dilates, d.pad_l, d.pad_r);
    const dnnl::convolution_backward_data::primitive_desc pd(desc, scratchpad_attr(), engine.engine(), hint);
    const dnnl::engine& e = engine.engine();
    backward_data_key_ = key;
    backward_data_ = {Step(pd, e), Input(e, d.weights, pd.weights_desc()),
                      Input(e, d.dst, pd.diff_dst_desc()), Output(e, d.src, pd.diff_src_desc())};
    has_backward_data_ = true;
  }
  backward_data_.run(engine, weight, grad_output, grad_input, accumulate);
}

void Conv2d::backward_weights(Engine& engine, const Conv2dGeometry& g, const float* input, const float* grad_output,
                              float* grad_weight, float* grad_bias, bool accumulate) {
  // dL/dw[k,c,p,q] = sum_{n,i,j} dL/dy[n,k,i,j] x[n,c',i*S+p*D-P,...];  dL/db[k] = sum_{n,i,j} dL/dy[n,k,i,j]
  if (grad_weight == nullptr && grad_bias == nullptr) return;
  const bool with_bias = grad_bias != nullptr;
  const Key key = conv_key(engine, g, with_bias);
  if (!has_backward_weights_ || backward_weights_key_ != key) {
    const ConvDescs d = conv_descs(g);
    const auto hint = forward_pd(engine, d, with_bias);
    const dnnl::convolution_backward_weights::desc desc =
        with_bias ? dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, d.any_src,
                                                             d.any_weights, d.bias, d.any_dst, d.strides, d.dilates,
                                                             d.pad_l, d.pad_r)
                  : dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, d.any_src,
                                                             d.any_weights, d.any_dst, d.strides, d.dilates,
                                                             d.pad_l, d.pad_r);
    const dnnl::convolution_backward_weights::primitive_desc pd(desc, scratchpad_attr(), engine.engine(), hint);
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

void Conv2d::backward(Engine& engine, const Conv2dGeometry& g, const float* input, const float* weight,
                      const float* grad_output, float* grad_input, float* grad_weight, float* grad_bias,
                      bool accumulate) {
  backward_weights(engine, g, input, grad_output, grad_weight, grad_bias, accumulate);
  backward_data(engine, g, weight, grad_output, grad_input, accumulate);
}

}  // namespace convnet::kernels::onednn
