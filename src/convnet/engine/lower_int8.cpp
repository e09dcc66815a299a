// The int8 lowering of the layers that compute on quantized values: convolution and fc (s8
// weights per output channel, u8/s8 source, int32 accumulation, one output scale per channel:
// y_q = round(s_x s_w[k] / s_y (sum x_q w_q + b / (s_x s_w[k])))), the residual sum and ReLU as
// post-ops, and add and concat requantizing their inputs to the output's scale. The weights are
// quantized when the plan is compiled (an int8 plan is compiled for the weights it was given).
#include "convnet/engine/lowerer.hpp"
#include "convnet/engine/quantization.hpp"

namespace convnet::engine {

const ActivationRange& Lowerer::range_of(int node) const {
  const ActivationRange& r = o_.ranges.at(static_cast<size_t>(node));
  if (std::isnan(r.min) || std::isnan(r.max)) {
    throw Error("int8: no scale for the output of '" + net_.node(node).name +
                "', which the int8 plan quantizes (a QDQ file without a QuantizeLinear there); run it with "
                "--precision f32");
  }
  return r;
}

DataType Lowerer::quant_type(int node) const {
  return quantized_unsigned(range_of(node)) ? DataType::u8 : DataType::s8;
}

float Lowerer::quant_scale(int node) const { return activation_scale(range_of(node)); }

Lowerer::Quantization Lowerer::source_quantization(int node) const {
  const Value& v = c_.values[static_cast<size_t>(c_.value_of[static_cast<size_t>(node)])];
  const DataType t = v.desc.data_type();
  if (t == DataType::u8 || t == DataType::s8) return {t, v.scale};
  return {quant_type(node), quant_scale(node)};
}

Lowerer::Quantization Lowerer::output_quantization(int node) const {
  if (node == net_.output()) return {DataType::f32, 1.0F};
  return {quant_type(node), quant_scale(node)};
}

Lowerer::QuantizedWeights Lowerer::quantize_weights(const Desc& plain_w, const Desc& chosen_w, int64_t outputs,
                                                    int64_t per_output, const float* store_w, const float* store_b,
                                                    const std::function<void(float*, float*)>& fold, float src_scale) {
  QuantizedWeights q;
  q.scales.assign(static_cast<size_t>(outputs), 1.0F);
  const Desc bias_desc = vector_desc(outputs);
  c_.weight_bytes += static_cast<int64_t>(chosen_w.get_size() + bias_desc.get_size());
  q.weights = memory_for(chosen_w);
  q.bias = memory_for(bias_desc);
  if (!o_.allocate) return q;  // sizes only: the scales do not change any size
  const auto count = static_cast<size_t>(outputs * per_output);
  std::vector<float> w(store_w, store_w + count);
  std::vector<float> b(static_cast<size_t>(outputs), 0.0F);
  if (store_b != nullptr) std::copy(store_b, store_b + outputs, b.begin());
  if (fold) fold(w.data(), b.data());
  dnnl::memory plain(retype(plain_w, DataType::s8), c_.engine);
  auto* w_q = static_cast<int8_t*>(plain.get_data_handle());
  auto* b_acc = static_cast<float*>(q.bias.get_data_handle());
  q.scales = weight_scales(w.data(), outputs, per_output);
  for (int64_t k = 0; k < outputs; ++k) {
    const float s = q.scales[static_cast<size_t>(k)];
    for (int64_t i = 0; i < per_output; ++i) w_q[k * per_output + i] = quantize_weight(w[k * per_output + i], s);
    b_acc[k] = b[static_cast<size_t>(k)] / (src_scale * s);
  }
  dnnl::stream stream = c_.stream;
  dnnl::reorder(plain, q.weights).execute(stream, plain, q.weights);  // adds oneDNN's compensation if any
  stream.wait();
  c_.owned.push_back(q.weights);
  c_.owned.push_back(q.bias);
  return q;
}

void Lowerer::record_weight_scales(int node, const std::vector<float>& scales) {
  c_.weight_scales.resize(net_.nodes().size());
  c_.weight_scales[static_cast<size_t>(node)] = scales;
}

namespace {

/// Per output channel: s_x s_w[k] / s_y, or s_x s_w[k] (real values) when an activation post-op
/// follows (oneDNN applies the output scale before the post-ops, and tanh(y / s_y) is not
/// tanh(y) / s_y): that activation then carries the 1 / s_y.
std::vector<float> output_scales(const std::vector<float>& weight_scales, float src_scale, float dst_scale,
                                 bool activation) {
  std::vector<float> out;
  for (float s : weight_scales) out.push_back(src_scale * s / (activation ? 1.0F : dst_scale));
  return out;
}

/// The chain's post-ops for int8: sum (residual scale s_o over the output scale, or s_o itself
/// before an activation) and the activation scaled by 1 / s_y.
dnnl::primitive_attr int8_attr(dnnl::primitive_attr attr, const std::optional<Activation>& act, float residual_scale,
                               bool has_sum, float dst_scale) {
  dnnl::post_ops ops;
  if (has_sum) ops.append_sum(act ? residual_scale : residual_scale / dst_scale);
  if (act) ops.append_eltwise(1.0F / dst_scale, act->alg, act->alpha, 0.0F);
  attr.set_post_ops(ops);
  return attr;
}

}  // namespace

void Lowerer::lower_conv_int8(int n) {
  const Node& node = net_.node(n);
  const Conv2dOptions& co = dynamic_cast<const Conv2d&>(*node.layer).options();
  const Chain ch = fusion_chain(n, true, true);
  const ConvGeometry geo = conv_geometry(n);
  const int64_t outputs = geo.dst[1];
  const int producer = c_.value_of[static_cast<size_t>(node.inputs[0])];
  const Quantization in_q = source_quantization(node.inputs[0]);
  const DataType src_type = in_q.type;
  const float src_scale = in_q.scale;
  const Quantization out = output_quantization(ch.end);
  DataType dst_type = out.type;
  float dst_scale = out.scale;
  // The residual is summed in the destination's type: one that may be negative needs s8 there,
  // even when the ReLU after the sum never is.
  if (ch.add >= 0 && dst_type == DataType::u8 &&
      c_.values[static_cast<size_t>(c_.value_of[static_cast<size_t>(ch.add_other)])].desc.data_type() != DataType::u8) {
    dst_type = DataType::s8;
    dst_scale = dst_scale * 255.0F / 127.0F;
  }
  auto& store = params_.values(static_cast<size_t>(n));
  std::function<void(float*, float*)> fold;
  if (ch.bn >= 0) fold = batch_norm_fold(ch.bn, outputs, geo.per_output);

  std::vector<float> scales(static_cast<size_t>(outputs), 1.0F);
  std::optional<Activation> act;
  if (ch.act >= 0) act = activation_of(*net_.node(ch.act).layer);
  auto make_pd = [&](const Desc& src, const Desc& dst, float residual_scale) {
    dnnl::primitive_attr attr = int8_attr(scratchpad_attr(), act, residual_scale, ch.add >= 0, dst_scale);
    attr.set_output_scales(1 << 1, output_scales(scales, src_scale, dst_scale, act.has_value()));
    const dnnl::convolution_forward::desc desc(prop_kind::forward_inference, algorithm::convolution_direct, src,
                                               any_desc(geo.weights, DataType::s8), vector_desc(outputs), dst,
                                               geo.strides, geo.dilates, geo.pad_l, geo.pad_r);
    return dnnl::convolution_forward::primitive_desc(desc, attr, c_.engine);
  };
  auto pd =
      make_pd(activation_desc(geo.src, o_.layout, src_type), activation_desc(geo.dst, o_.layout, dst_type), dst_scale);
  const QuantizedWeights qw = quantize_weights(plain_desc(geo.weights), pd.weights_desc(), outputs, geo.per_output,
                                               store[0].data(), co.bias ? store[1].data() : nullptr, fold, src_scale);
  scales = qw.scales;
  record_weight_scales(n, scales);
  const int src = convert(producer, pd.src_desc(), n, src_scale);
  float sum_scale = 1.0F;
  const int dst = chain_destination(ch, pd.dst_desc(), src, dst_scale, &sum_scale);
  pd = make_pd(pd.src_desc(), pd.dst_desc(), sum_scale * dst_scale);  // the real scales, the formats chosen above
  add_weight_op(pd, ch, "conv", src, dst, qw.weights, &qw.bias);
}

void Lowerer::lower_linear_int8(int n) {
  const Node& node = net_.node(n);
  const LinearOptions& lo = dynamic_cast<const Linear&>(*node.layer).options();
  const Chain ch = fusion_chain(n, false, false);
  const int producer = c_.value_of[static_cast<size_t>(node.inputs[0])];
  const Desc producer_desc = c_.values[static_cast<size_t>(producer)].desc;
  const Quantization in_q = source_quantization(node.inputs[0]);
  const DataType src_type = in_q.type;
  const float src_scale = in_q.scale;
  Dims w_dims{lo.out_features};
  for (size_t i = 1; i < producer_desc.dims().size(); ++i) w_dims.push_back(producer_desc.dims()[i]);
  int64_t per_output = 1;
  for (size_t i = 1; i < w_dims.size(); ++i) per_output *= w_dims[i];
  const Quantization out = output_quantization(ch.end);
  const float dst_scale = out.scale;
  const Desc dst_desc = any_desc({o_.batch, lo.out_features}, out.type);
  std::vector<float> scales(static_cast<size_t>(lo.out_features), 1.0F);
  std::optional<Activation> act;
  if (ch.act >= 0) act = activation_of(*net_.node(ch.act).layer);
  auto make_pd = [&](const Desc& src) {
    dnnl::primitive_attr attr = int8_attr(scratchpad_attr(), act, 1.0F, false, dst_scale);
    attr.set_output_scales(1 << 1, output_scales(scales, src_scale, dst_scale, act.has_value()));
    const dnnl::inner_product_forward::desc desc(prop_kind::forward_inference, src, any_desc(w_dims, DataType::s8),
                                                 vector_desc(lo.out_features), dst_desc);
    return dnnl::inner_product_forward::primitive_desc(desc, attr, c_.engine);
  };
  dnnl::inner_product_forward::primitive_desc pd;
  try {
    pd = make_pd(retype(producer_desc, src_type));  // the producer's layout, when oneDNN reads it
  } catch (const dnnl::error&) {
    pd = make_pd(any_desc(producer_desc.dims(), src_type));
  }
  auto& store = params_.values(static_cast<size_t>(n));
  const QuantizedWeights qw = quantize_weights(plain_desc(w_dims), pd.weights_desc(), lo.out_features, per_output,
                                               store[0].data(), lo.bias ? store[1].data() : nullptr, {}, src_scale);
  scales = qw.scales;
  record_weight_scales(n, scales);
  pd = make_pd(pd.src_desc());
  const int src = convert(producer, pd.src_desc(), n, src_scale);
  const int dst = new_value(pd.dst_desc(), -1, dst_scale);
  add_weight_op(pd, ch, "fc", src, dst, qw.weights, &qw.bias);
}

void Lowerer::lower_add_int8(int n) {
  // y_q = sum_i (s_i / s_y) x_q,i, rounded once; the net's output stays f32.
  const Quantization out = output_quantization(n);
  const DataType dst_type = out.type;
  const float dst_scale = out.scale;
  Sources in;
  std::vector<float> scales;
  for (int j : net_.node(n).inputs) {
    const int v = c_.value_of[static_cast<size_t>(j)];
    in.values.push_back(v);
    in.descs.push_back(c_.values[static_cast<size_t>(v)].desc);
    scales.push_back(c_.values[static_cast<size_t>(v)].scale / dst_scale);
  }
  const Desc dst_desc = retype(in.descs[0], dst_type);
  const dnnl::sum::primitive_desc pd(dst_desc, scales, in.descs, c_.engine, scratchpad_attr());
  const int dst = new_value(pd.dst_desc(), -1, dst_scale);
  add_multi_source_op(primitive_op(pd, n, net_.node(n).name, "add"), in, dst);
  bind_node(n, dst);
}

void Lowerer::lower_concat_int8(int n) {
  // Every part requantized to the concatenation's scale (its range covers them all).
  const Quantization out = output_quantization(n);
  const DataType dst_type = out.type;
  const float dst_scale = out.scale;
  Sources in;
  for (int j : net_.node(n).inputs) {
    const int v = c_.value_of[static_cast<size_t>(j)];
    in.values.push_back(convert(v, retype(c_.values[static_cast<size_t>(v)].desc, dst_type), n, dst_scale));
    in.descs.push_back(c_.values[static_cast<size_t>(in.values.back())].desc);
  }
  const dnnl::concat::primitive_desc pd(1, in.descs, c_.engine, scratchpad_attr());
  const int dst = new_value(pd.dst_desc(), -1, dst_scale);
  add_multi_source_op(primitive_op(pd, n, net_.node(n).name, "concat"), in, dst);
  bind_node(n, dst);
}

}  // namespace convnet::engine
