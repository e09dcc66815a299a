// Each layer kind lowered to oneDNN primitives (see lowerer.hpp for the machinery): convolution
// and fc with their fused chains, batch norm, pooling, activations, add, concat, LRN, softmax,
// flatten, dropout (the identity in inference), and the plain-layout fallback.
#include "convnet/engine/lowerer.hpp"
#include "convnet/layers/dropout.hpp"
#include "convnet/layers/window.hpp"

namespace convnet::engine {

Desc plain_desc(const Dims& dims, DataType dt) {
  static const Tag tags[] = {Tag::undef, Tag::a, Tag::ab, Tag::abc, Tag::abcd, Tag::abcde};
  if (dims.empty() || dims.size() > 5) {
    throw Error("plan: no plain layout for a tensor of rank " + std::to_string(dims.size()));
  }
  return {dims, dt, tags[dims.size()]};
}

Lowerer::PreparedWeights Lowerer::prepare_weights(const Desc& plain_w, const Desc& chosen_w, const Desc& bias_desc,
                                                  float* store_w, float* store_b, bool fold_bn,
                                                  std::function<void(float*, float*)> fold) {
  PreparedWeights p;
  const dnnl::engine& e = c_.engine;
  const int64_t k = plain_w.dims()[0] * (plain_w.dims().size() == 5 ? plain_w.dims()[1] : 1);
  if (!o_.allocate) {  // sizes only: the same figures, no memory and no update steps
    const bool copy = fold_bn || !(plain_w == chosen_w);
    if (copy) c_.weight_bytes += static_cast<int64_t>(chosen_w.get_size());
    if (fold_bn) c_.weight_bytes += static_cast<int64_t>(bias_desc.get_size());
    if (fold_bn && !(plain_w == chosen_w)) {
      c_.fold_floats = std::max(c_.fold_floats, static_cast<int64_t>(plain_w.get_size() / sizeof(float)));
    }
    p.weights = memory_for(chosen_w);
    p.bias = memory_for(bias_desc);
    return p;
  }
  if (!fold_bn) {
    dnnl::memory plain(plain_w, e, store_w);
    if (plain_w == chosen_w) {
      p.weights = plain;
    } else {
      p.weights = memory_for(chosen_w);
      c_.weight_bytes += static_cast<int64_t>(chosen_w.get_size());
      c_.weight_updates.push_back([c = &c_, reorder = BoundReorder(plain, p.weights)] { reorder.run(c->stream); });
    }
    if (store_b != nullptr) p.bias = dnnl::memory(bias_desc, e, store_b);
    return p;
  }
  // Folding writes plain weights: into the weights themselves when the primitive takes the plain
  // layout, else into the plan's one folding buffer (sized for the largest layer), then reorders.
  const bool reorder_needed = !(plain_w == chosen_w);
  const size_t wn = plain_w.get_size() / sizeof(float);
  p.weights = memory_for(chosen_w);
  p.bias = memory_for(bias_desc);
  c_.weight_bytes += static_cast<int64_t>(chosen_w.get_size() + bias_desc.get_size());
  std::optional<BoundReorder> reorder;  // from the folding buffer, bound at the first refresh
  if (reorder_needed) {
    reorder.emplace(dnnl::memory(plain_w, e, DNNL_MEMORY_NONE), p.weights);
    c_.fold_floats = std::max(c_.fold_floats, static_cast<int64_t>(wn));
  }
  c_.weight_updates.push_back(
      [c = &c_, bias = p.bias, w = p.weights, reorder, store_w, store_b, wn, k, fold]() mutable {
        auto* fw = static_cast<float*>(reorder ? c->fold_buffer.data() : w.get_data_handle());
        auto* fb = static_cast<float*>(bias.get_data_handle());
        std::memcpy(fw, store_w, wn * sizeof(float));
        for (int64_t i = 0; i < k; ++i) fb[i] = store_b != nullptr ? store_b[i] : 0.0F;
        fold(fw, fb);
        if (reorder) {
          if (reorder->from.get_data_handle() != fw) reorder->from.set_data_handle(fw);
          reorder->run(c->stream);
        }
      });
  return p;
}

Lowerer::ConvGeometry Lowerer::conv_geometry(int n) const {
  const Node& node = net_.node(n);
  const Conv2dOptions& co = dynamic_cast<const Conv2d&>(*node.layer).options();
  const Shape& in = net_.node(node.inputs[0]).output;
  const Shape& out = node.output;
  const Window& w = co.window;
  const int64_t g = co.groups;
  ConvGeometry geo;
  geo.src = {o_.batch, in[0], in[1], in[2]};
  geo.dst = {o_.batch, out[0], out[1], out[2]};
  geo.weights =
      g == 1 ? Dims{out[0], in[0], w.kernel.h, w.kernel.w} : Dims{g, out[0] / g, in[0] / g, w.kernel.h, w.kernel.w};
  geo.strides = {w.stride.h, w.stride.w};
  geo.dilates = {w.dilation.h - 1, w.dilation.w - 1};
  geo.pad_l = {w.padding.h, w.padding.w};
  geo.pad_r = {right_padding(in[1], out[1], w.stride.h, (w.kernel.h - 1) * w.dilation.h + 1, w.padding.h),
               right_padding(in[2], out[2], w.stride.w, (w.kernel.w - 1) * w.dilation.w + 1, w.padding.w)};
  geo.per_output = in[0] / g * w.kernel.h * w.kernel.w;
  return geo;
}

void Lowerer::lower_conv(int n) {
  // y = post_ops(conv(x, w) + b): BN folded into (w, b); sum adds the residual already in y.
  const Node& node = net_.node(n);
  const Conv2dOptions& co = dynamic_cast<const Conv2d&>(*node.layer).options();
  const Chain ch = fusion_chain(n, true, true);
  const ConvGeometry geo = conv_geometry(n);
  const int64_t out_channels = geo.dst[1];
  const Dims& src_dims = geo.src;
  const Dims& dst_dims = geo.dst;
  const Dims& w_dims = geo.weights;
  const bool with_bias = co.bias || ch.bn >= 0;
  auto make_pd = [&](const Desc& src_desc, const Desc& dst_desc) {
    const auto desc = with_bias
                          ? dnnl::convolution_forward::desc(prop_kind::forward_inference, algorithm::convolution_direct,
                                                            src_desc, any_desc(w_dims, dt_), vector_desc(out_channels),
                                                            dst_desc, geo.strides, geo.dilates, geo.pad_l, geo.pad_r)
                          : dnnl::convolution_forward::desc(prop_kind::forward_inference, algorithm::convolution_direct,
                                                            src_desc, any_desc(w_dims, dt_), dst_desc, geo.strides,
                                                            geo.dilates, geo.pad_l, geo.pad_r);
    return dnnl::convolution_forward::primitive_desc(desc, chain_attr(ch), c_.engine);
  };
  const DataType dst_type = output_type(ch.end);
  auto pd = make_pd(activation_desc(src_dims, o_.layout, dt_), activation_desc(dst_dims, o_.layout, dst_type));
  // oneDNN's favourite for a grouped convolution may want another layout than its producer's
  // (nChw4c for ResNeXt's 4-channel groups): keep the producer's layout when a non-reference
  // implementation reads it, which saves a reorder on each side.
  const Desc producer = c_.values[static_cast<size_t>(c_.value_of[static_cast<size_t>(node.inputs[0])])].desc;
  if (o_.layout == ActivationLayout::Any && !(pd.src_desc() == producer) && producer.dims() == src_dims &&
      producer.data_type() == dt_) {
    try {
      const Desc same_dst(dst_dims, dst_type,
                          producer.data.format_desc.blocking.inner_nblks == 0 ? Tag::nhwc : Tag::any);
      auto kept = make_pd(producer, same_dst);
      if (std::string(kept.impl_info_str()).rfind("ref", 0) != 0) pd = kept;
    } catch (const dnnl::error&) {
    }
  }
  const int src = convert(c_.value_of[static_cast<size_t>(node.inputs[0])], pd.src_desc(), n);
  auto& store = params_.values(static_cast<size_t>(n));
  std::function<void(float*, float*)> fold;
  if (ch.bn >= 0) fold = batch_norm_fold(ch.bn, out_channels, geo.per_output);
  const PreparedWeights pw = prepare_weights(plain_desc(w_dims), pd.weights_desc(), vector_desc(out_channels),
                                             store[0].data(), co.bias ? store[1].data() : nullptr, ch.bn >= 0, fold);
  const int dst = chain_destination(ch, pd.dst_desc(), src);
  add_weight_op(pd, ch, "conv", src, dst, pw.weights, with_bias ? &pw.bias : nullptr);
}

void Lowerer::lower_linear(int n) {
  // y = act(W x + b); x may still be a (N, C, H, W) volume in any layout (flatten absorbed).
  const Node& node = net_.node(n);
  const LinearOptions& lo = dynamic_cast<const Linear&>(*node.layer).options();
  const Chain ch = fusion_chain(n, false, false);
  int src = c_.value_of[static_cast<size_t>(node.inputs[0])];
  const Desc src_desc = c_.values[static_cast<size_t>(src)].desc;
  Dims w_dims{lo.out_features};
  for (size_t i = 1; i < src_desc.dims().size(); ++i) w_dims.push_back(src_desc.dims()[i]);
  const Dims dst_dims{o_.batch, lo.out_features};
  const Desc dst_desc = any_desc(dst_dims, output_type(ch.end));
  auto make_pd = [&](const Desc& s) {
    const Desc w = any_desc(w_dims, dt_);
    const auto desc = lo.bias ? dnnl::inner_product_forward::desc(prop_kind::forward_inference, s, w,
                                                                  vector_desc(lo.out_features), dst_desc)
                              : dnnl::inner_product_forward::desc(prop_kind::forward_inference, s, w, dst_desc);
    return dnnl::inner_product_forward::primitive_desc(desc, chain_attr(ch), c_.engine);
  };
  dnnl::inner_product_forward::primitive_desc pd;
  try {
    pd = make_pd(retype(src_desc, dt_));  // the producer's layout as it is, when oneDNN can read it
  } catch (const dnnl::error&) {
    pd = make_pd(any_desc(src_desc.dims(), dt_));
  }
  src = convert(src, pd.src_desc(), n);
  auto& store = params_.values(static_cast<size_t>(n));
  const PreparedWeights pw = prepare_weights(plain_desc(w_dims), pd.weights_desc(), vector_desc(lo.out_features),
                                             store[0].data(), lo.bias ? store[1].data() : nullptr, false, {});
  const int dst = new_value(pd.dst_desc());
  add_weight_op(pd, ch, "fc", src, dst, pw.weights, lo.bias ? &pw.bias : nullptr);
}

void Lowerer::lower_batch_norm(int n) {
  // y = [relu](gamma (x - running_mean) / sqrt(running_var + eps) + beta), in place when legal.
  const Node& node = net_.node(n);
  const double eps = dynamic_cast<const BatchNorm&>(*node.layer).options().eps;
  std::vector<int> chain{n};
  const int next = sole_consumer(n);
  const bool fuse_relu = next >= 0 && net_.node(next).layer->kind() == "relu";
  if (fuse_relu) chain.push_back(next);
  const int src = dequantized(c_.value_of[static_cast<size_t>(node.inputs[0])], n);
  const Desc src_desc = c_.values[static_cast<size_t>(src)].desc;
  auto flags = dnnl::normalization_flags::use_global_stats | dnnl::normalization_flags::use_scale |
               dnnl::normalization_flags::use_shift;
  if (fuse_relu) flags = flags | dnnl::normalization_flags::fuse_norm_relu;
  const dnnl::batch_normalization_forward::desc desc(prop_kind::forward_inference, src_desc, static_cast<float>(eps),
                                                     flags);
  const dnnl::batch_normalization_forward::primitive_desc pd(desc, scratchpad_attr(), c_.engine);
  const int storage = c_.values[static_cast<size_t>(src)].storage;
  const int dst = can_overwrite(storage, n, chain) ? new_value(pd.dst_desc(), storage) : new_value(pd.dst_desc());
  auto& store = params_.values(static_cast<size_t>(n));
  const Desc c = vector_desc(net_.node(n).output[0]);
  Op op = primitive_op(pd, n, net_.node(n).name + (fuse_relu ? " + " + net_.node(next).name : ""), "batchnorm");
  op.info.formats = format_string(src_desc);
  op.value_args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}};
  op.fixed_args = {{DNNL_ARG_SCALE, dnnl::memory(c, c_.engine, store[0].data())},
                   {DNNL_ARG_SHIFT, dnnl::memory(c, c_.engine, store[1].data())},
                   {DNNL_ARG_MEAN, dnnl::memory(c, c_.engine, store[2].data())},
                   {DNNL_ARG_VARIANCE, dnnl::memory(c, c_.engine, store[3].data())}};
  add_op(std::move(op));
  for (int m : chain) bind_node(m, dst);
}

std::optional<Lowerer::PoolGeometry> Lowerer::pool_geometry(int n) const {
  const Node& node = net_.node(n);
  const std::string kind = node.layer->kind();
  const Shape& in = net_.node(node.inputs[0]).output;
  if (in.rank() != 3) return std::nullopt;
  Window w;
  PoolGeometry geo;
  geo.alg = algorithm::pooling_avg_exclude_padding;
  if (kind == "globalavgpool") {
    w.kernel = w.stride = {in[1], in[2]};
  } else {
    w = kind == "maxpool" ? dynamic_cast<const MaxPool2d&>(*node.layer).options().window
                          : dynamic_cast<const AvgPool2d&>(*node.layer).options().window;
    geo.alg = kind == "maxpool" ? algorithm::pooling_max : algorithm::pooling_avg_include_padding;
  }
  const Shape& out = node.output;
  geo.src = {o_.batch, in[0], in[1], in[2]};
  geo.dst = {o_.batch, out[0], out[1], out[2]};
  geo.strides = {w.stride.h, w.stride.w};
  geo.kernel = {w.kernel.h, w.kernel.w};
  geo.pad_l = {w.padding.h, w.padding.w};
  geo.pad_r = {right_padding(in[1], out[1], w.stride.h, w.kernel.h, w.padding.h),
               right_padding(in[2], out[2], w.stride.w, w.kernel.w, w.padding.w)};
  // PyTorch's average divides by the window clipped to input + padding. Without padding that is
  // oneDNN's exclude-padding average, also where ceil rounding's last window passes the input
  // (cifar10-quick's pools); with padding, the include-padding average agrees only while no window
  // reaches past the padding.
  if (geo.alg == algorithm::pooling_avg_include_padding) {
    if (geo.pad_l[0] == 0 && geo.pad_l[1] == 0) {
      geo.alg = algorithm::pooling_avg_exclude_padding;
    } else if (geo.pad_r[0] > geo.pad_l[0] || geo.pad_r[1] > geo.pad_l[1]) {
      return std::nullopt;
    }
  }
  return geo;
}

bool Lowerer::lower_pool(int n) {
  const Node& node = net_.node(n);
  const std::optional<PoolGeometry> geo = pool_geometry(n);
  if (!geo) return false;
  const int src = c_.value_of[static_cast<size_t>(node.inputs[0])];
  const Desc src_desc = c_.values[static_cast<size_t>(src)].desc;
  const dnnl::pooling_forward::desc desc(prop_kind::forward_inference, geo->alg, src_desc,
                                         activation_desc(geo->dst, o_.layout, src_desc.data_type()), geo->strides,
                                         geo->kernel, geo->pad_l, geo->pad_r);
  const dnnl::pooling_forward::primitive_desc pd(desc, scratchpad_attr(), c_.engine);
  const int dst = new_value(pd.dst_desc(), -1, c_.values[static_cast<size_t>(src)].scale);  // int8: the same scale
  Op op = primitive_op(pd, n, node.name, node.layer->kind());
  op.info.formats = format_string(src_desc) + " -> " + format_string(pd.dst_desc());
  op.value_args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}};
  add_op(std::move(op));
  bind_node(n, dst);
  return true;
}

void Lowerer::lower_activation(int n) {
  const Node& node = net_.node(n);
  const Activation a = *activation_of(*node.layer);
  int src = c_.value_of[static_cast<size_t>(node.inputs[0])];
  if (a.alg != algorithm::eltwise_relu || a.alpha != 0.0F) src = dequantized(src, n);  // int8 keeps only ReLU
  const Desc src_desc = c_.values[static_cast<size_t>(src)].desc;
  const float scale = c_.values[static_cast<size_t>(src)].scale;
  const dnnl::eltwise_forward::desc desc(prop_kind::forward_inference, a.alg, src_desc, a.alpha, 0.0F);
  const dnnl::eltwise_forward::primitive_desc pd(desc, scratchpad_attr(), c_.engine);
  const int storage = c_.values[static_cast<size_t>(src)].storage;
  const int dst = new_value(src_desc, can_overwrite(storage, n, {n}) ? storage : -1, scale);
  Op op = primitive_op(pd, n, node.name, node.layer->kind());
  op.info.formats = format_string(src_desc);
  op.value_args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}};
  add_op(std::move(op));
  bind_node(n, dst);
}

void Lowerer::lower_add(int n) {
  // y = sum_i x_i, in place of x_0 when legal.
  const Sources in = sources(n);
  const dnnl::sum::primitive_desc pd(std::vector<float>(in.descs.size(), 1.0F), in.descs, c_.engine, scratchpad_attr());
  const int storage = c_.values[static_cast<size_t>(in.values[0])].storage;
  const int dst = pd.dst_desc() == in.descs[0] && can_overwrite(storage, n, {n}) ? new_value(in.descs[0], storage)
                                                                                 : new_value(pd.dst_desc());
  add_multi_source_op(primitive_op(pd, n, net_.node(n).name, "add"), in, dst);
  bind_node(n, dst);
}

void Lowerer::lower_concat(int n) {
  const Sources in = sources(n);
  const dnnl::concat::primitive_desc pd(1, in.descs, c_.engine, scratchpad_attr());
  const int dst = new_value(pd.dst_desc());
  add_multi_source_op(primitive_op(pd, n, net_.node(n).name, "concat"), in, dst);
  bind_node(n, dst);
}

void Lowerer::lower_lrn(int n) {
  // y = x (k + alpha/size sum_window x^2)^-beta across channels (PyTorch's alpha convention).
  const Node& node = net_.node(n);
  const LocalResponseNormOptions& lo = dynamic_cast<const LocalResponseNorm&>(*node.layer).options();
  const int src = dequantized(c_.value_of[static_cast<size_t>(node.inputs[0])], n);
  const Desc src_desc = c_.values[static_cast<size_t>(src)].desc;
  const dnnl::lrn_forward::desc desc(prop_kind::forward_inference, algorithm::lrn_across_channels, src_desc, lo.size,
                                     static_cast<float>(lo.alpha), static_cast<float>(lo.beta),
                                     static_cast<float>(lo.k));
  const dnnl::lrn_forward::primitive_desc pd(desc, scratchpad_attr(), c_.engine);
  const int dst = new_value(pd.dst_desc());
  Op op = primitive_op(pd, n, node.name, "lrn");
  op.info.formats = format_string(src_desc);
  op.value_args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}};
  add_op(std::move(op));
  bind_node(n, dst);
}

void Lowerer::lower_softmax(int n) {
  const Node& node = net_.node(n);
  if (node.output.rank() != 1) return lower_fallback(n);
  const int src = plain(c_.value_of[static_cast<size_t>(node.inputs[0])], batched(node.inputs[0]), n);
  const Desc src_desc = c_.values[static_cast<size_t>(src)].desc;
  const dnnl::softmax_forward::desc desc(prop_kind::forward_inference, src_desc, 1);
  const dnnl::softmax_forward::primitive_desc pd(desc, scratchpad_attr(), c_.engine);
  const int storage = c_.values[static_cast<size_t>(src)].storage;
  const int dst = can_overwrite(storage, n, {n}) ? new_value(src_desc, storage) : new_value(src_desc);
  Op op = primitive_op(pd, n, node.name, "softmax");
  op.info.formats = format_string(src_desc);
  op.value_args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}};
  add_op(std::move(op));
  bind_node(n, dst);
}

void Lowerer::lower_flatten(int n) {
  const Node& node = net_.node(n);
  const int src = c_.value_of[static_cast<size_t>(node.inputs[0])];
  const int next = sole_consumer(n);
  if (next >= 0 && net_.node(next).layer->kind() == "fc") return bind_node(n, src);  // fc reads the volume
  bind_node(n, plain(src, batched(n), n));
}

void Lowerer::lower_fallback(int n) {
  // The layer's reference kernel on plain buffers: for kinds without a oneDNN primitive.
  const Node& node = net_.node(n);
  std::vector<int> values;
  for (int j : node.inputs) values.push_back(plain(c_.value_of[static_cast<size_t>(j)], batched(j), n));
  const int dst = new_value(plain_desc(batched(n)));
  values.push_back(dst);
  Op op;
  op.node = n;
  op.info = {node.name, "fallback:" + node.layer->kind(), "host (reference kernel)", "plain"};
  op.host_values = values;
  std::vector<Tensor*> params;
  for (Tensor& t : params_.values(static_cast<size_t>(n))) params.push_back(&t);
  op.host = [layer = node.layer.get(), params,
             inputs = std::vector<const Tensor*>()](std::vector<Tensor>& views) mutable {
    if (inputs.empty()) {
      for (size_t i = 0; i + 1 < views.size(); ++i) inputs.push_back(&views[i]);
    }
    const RunContext ctx{.training = false, .backend = Backend::Reference};
    layer->forward(ctx, inputs, params, views.back());
  };
  add_op(std::move(op));
  bind_node(n, dst);
}

void lower(const Net& net, ParamStore& params, const PlanOptions& options, Plan::Compiled& c) {
  Lowerer(net, params, options, c).run();
}

}  // namespace convnet::engine
