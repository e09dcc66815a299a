// Training lowering: each supported layer kind becomes its forward_training primitive now and
// queues its backward, lowered after the whole forward in reverse node order. Gradients of a value
// read by several layers are summed; parameter gradients are written into the parameter store
// (Plan::backward adds back what was there when asked to accumulate). Backward ops read forward values (sources, statistics, pooling
// workspaces) from the same arena, so lifetimes span the forward and the backward.
#include "convnet/engine/lowerer.hpp"

#include "convnet/kernels/onednn/batch_norm.hpp"
#include "convnet/kernels/reference/dropout.hpp"
#include "convnet/layers/dropout.hpp"

namespace convnet::engine {

void Lowerer::train_node(int n) {
  const Node& node = net_.node(n);
  const std::string kind = node.layer->kind();
  if (node.inputs.empty()) return lower_input(n);
  if (kind == "conv") return train_conv(n);
  if (kind == "fc") return train_linear(n);
  if (kind == "batchnorm") return train_batch_norm(n);
  if ((kind == "maxpool" || kind == "avgpool" || kind == "globalavgpool") && pool_geometry(n)) return train_pool(n);
  if (activation_of(*node.layer)) return train_activation(n);
  if (kind == "add") return train_add(n);
  if (kind == "concat") return train_concat(n);
  if (kind == "flatten") return train_flatten(n);
  if (is_dropout(*node.layer)) return train_dropout(n);
  if (kind == "lrn" && dynamic_cast<const LocalResponseNorm&>(*node.layer).options().size % 2 == 1) return train_lrn(n);
  throw PlanUnsupported("plan: " + node.name + " (" + kind + ") has no training lowering yet");
}

// ----- gradients -----

void Lowerer::add_grad(int node, int v) {
  if (net_.node(node).inputs.empty()) return;  // a network input: its gradient is not planned
  grad_parts_[static_cast<size_t>(node)].push_back(v);
}

int Lowerer::grad(int node) {
  // dL/dy = sum over the readers of y of their contributions, in the first one's layout.
  auto& parts = grad_parts_[static_cast<size_t>(node)];
  if (parts.empty()) return -1;
  if (parts.size() == 1) return parts[0];
  const Desc want = c_.values[static_cast<size_t>(parts[0])].desc;
  Sources in;
  for (int v : parts) {
    in.values.push_back(convert(v, want, node));
    in.descs.push_back(want);
  }
  const dnnl::sum::primitive_desc pd(want, std::vector<float>(in.descs.size(), 1.0F), in.descs, c_.engine,
                                     scratchpad_attr());
  const int dst = new_value(pd.dst_desc());
  add_multi_source_op(primitive_op(pd, node, net_.node(node).name + " (gradient sum)", "add"), in, dst);
  parts = {dst};
  return dst;
}

void Lowerer::write_gradient(int v, const Desc& plain_grad, float* grad, int node, const std::string& label) {
  const Desc& have = c_.values[static_cast<size_t>(v)].desc;
  const dnnl::reorder::primitive_desc pd(c_.engine, have, c_.engine, plain_grad, scratchpad_attr());
  Op op = primitive_op(pd, node, label, "reorder");
  op.info.formats = format_string(have) + " -> " + format_string(plain_grad);
  op.value_args = {{DNNL_ARG_FROM, v}};
  op.fixed_args = {{DNNL_ARG_TO, memory_for(plain_grad, grad)}};
  add_op(std::move(op));
}

void Lowerer::lower_backward() {
  const int out = net_.output();
  const int g = new_value(plain_desc(batched(out)));
  Op op;
  op.node = out;
  op.info = {net_.node(out).name + " (output gradient)", "input", "host", "copy"};
  op.host_values = {g};
  op.host = [this_c = &c_](std::vector<Tensor>& views) {
    std::memcpy(views[0].data(), this_c->user_grad_output, static_cast<size_t>(views[0].numel()) * sizeof(float));
  };
  add_op(std::move(op));
  add_grad(out, g);
  for (auto it = backward_.rbegin(); it != backward_.rend(); ++it) (*it)();
}

// ----- layers -----

std::optional<Activation> Lowerer::training_post_op(int n, int& next) const {
  next = sole_consumer(n);
  if (next < 0) return std::nullopt;
  const std::optional<Activation> act = activation_of(*net_.node(next).layer);
  if (!act || (act->alg != algorithm::eltwise_tanh && act->alg != algorithm::eltwise_logistic && act->alpha < 0)) {
    return std::nullopt;
  }
  return act;
}

dnnl::primitive_attr Lowerer::post_op_attr(const std::optional<Activation>& act) {
  dnnl::primitive_attr attr = scratchpad_attr();
  if (act) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.0F, act->alg, act->alpha, 0.0F);
    attr.set_post_ops(ops);
  }
  return attr;
}

int Lowerer::activation_gradient_from_output(int n, const Activation& act, int y, int g) {
  // dL/dz = f'(z) dL/dy with f'(z) computed from y = f(z): relu, elu (alpha >= 0), tanh, sigmoid.
  algorithm alg = algorithm::eltwise_relu_use_dst_for_bwd;
  if (act.alg == algorithm::eltwise_elu) alg = algorithm::eltwise_elu_use_dst_for_bwd;
  if (act.alg == algorithm::eltwise_tanh) alg = algorithm::eltwise_tanh_use_dst_for_bwd;
  if (act.alg == algorithm::eltwise_logistic) alg = algorithm::eltwise_logistic_use_dst_for_bwd;
  const Desc y_desc = c_.values[static_cast<size_t>(y)].desc;
  const dnnl::eltwise_forward::primitive_desc hint(
      dnnl::eltwise_forward::desc(prop_kind::forward_training, alg, y_desc, act.alpha, 0.0F), scratchpad_attr(),
      c_.engine);
  const dnnl::eltwise_backward::primitive_desc pd(dnnl::eltwise_backward::desc(alg, y_desc, y_desc, act.alpha, 0.0F),
                                                  scratchpad_attr(), c_.engine, hint);
  const int dz = new_value(pd.diff_src_desc());
  add_primitive(pd, n, net_.node(sole_consumer(n)).name + " (gradient)", "eltwise backward",
                {{DNNL_ARG_DST, y}, {DNNL_ARG_DIFF_DST, convert(g, pd.diff_dst_desc(), n)}, {DNNL_ARG_DIFF_SRC, dz}});
  return dz;
}

template <class WeightsPd, class MakeDataPd>
void Lowerer::weights_backward(int n, int src, int g, const WeightsPd& wpd, const PreparedWeights& pw,
                               const Desc& forward_weights, const Desc& w_plain, const Desc& b_desc,
                               const std::string& kind, MakeDataPd make_data_pd) {
  const Node& node = net_.node(n);
  const bool bias = b_desc.get_size() > 0;
  auto& grads = params_.grads(static_cast<size_t>(n));
  // The gradients are written into the store: directly when oneDNN's format is the store's, else
  // through a value in the arena and a reorder.
  const bool direct = wpd.diff_weights_desc() == w_plain;
  const int dw = direct ? -1 : new_value(wpd.diff_weights_desc());
  std::vector<std::pair<int, int>> values{{DNNL_ARG_SRC, convert(src, wpd.src_desc(), n)},
                                          {DNNL_ARG_DIFF_DST, convert(g, wpd.diff_dst_desc(), n)}};
  if (!direct) values.emplace_back(DNNL_ARG_DIFF_WEIGHTS, dw);
  Args fixed;
  if (direct) fixed.emplace(DNNL_ARG_DIFF_WEIGHTS, memory_for(w_plain, grads[0].data()));
  if (bias) fixed.emplace(DNNL_ARG_DIFF_BIAS, memory_for(b_desc, grads[1].data()));
  add_primitive(wpd, n, node.name + " (weight gradient)", kind, values, fixed);
  if (!direct) write_gradient(dw, w_plain, grads[0].data(), n, node.name + ".weight (gradient)");
  if (net_.node(node.inputs[0]).inputs.empty()) return;  // the network input: no dL/dx
  const auto dpd = make_data_pd();
  // The data gradient reads the weights in its own format: the forward's copy when they agree.
  const dnnl::memory weights =
      dpd.weights_desc() == forward_weights
          ? pw.weights
          : prepare_weights(w_plain, dpd.weights_desc(), b_desc, params_.values(static_cast<size_t>(n))[0].data(),
                            nullptr, false, {})
                .weights;
  const int dx = new_value(dpd.diff_src_desc());
  add_primitive(dpd, n, node.name + " (input gradient)", kind,
                {{DNNL_ARG_DIFF_DST, convert(g, dpd.diff_dst_desc(), n)}, {DNNL_ARG_DIFF_SRC, dx}},
                {{DNNL_ARG_WEIGHTS, weights}});
  add_grad(node.inputs[0], dx);
}

void Lowerer::train_conv(int n) {
  // y = [act](conv(x, w) + b).  dL/dx = conv_transpose(dL/dy, w);  dL/dw = sum_n x (*) dL/dy;  dL/db = sum dL/dy
  const Node& node = net_.node(n);
  const bool bias = dynamic_cast<const Conv2d&>(*node.layer).options().bias;
  const ConvGeometry geo = conv_geometry(n);
  const Desc b_desc = vector_desc(geo.dst[1]);
  int next = -1;
  const std::optional<Activation> act = training_post_op(n, next);
  // bf16: source, weights and output in bf16 (the logits in f32), bias and accumulation in f32.
  const Desc x = activation_desc(geo.src, o_.layout, dt_);
  const Desc w = any_desc(geo.weights, dt_);
  const Desc y = activation_desc(geo.dst, o_.layout, output_type(act ? next : n));
  const auto desc = bias ? dnnl::convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct,
                                                           x, w, b_desc, y, geo.strides, geo.dilates, geo.pad_l,
                                                           geo.pad_r)
                         : dnnl::convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct,
                                                           x, w, y, geo.strides, geo.dilates, geo.pad_l, geo.pad_r);
  const dnnl::convolution_forward::primitive_desc pd(desc, post_op_attr(act), c_.engine);
  const int src = convert(c_.value_of[static_cast<size_t>(node.inputs[0])], pd.src_desc(), n);
  auto& store = params_.values(static_cast<size_t>(n));
  const Desc w_plain = plain_desc(geo.weights);
  const PreparedWeights pw = prepare_weights(w_plain, pd.weights_desc(), b_desc, store[0].data(),
                                             bias ? store[1].data() : nullptr, false, {});
  const int dst = new_value(pd.dst_desc());
  Args fixed{{DNNL_ARG_WEIGHTS, pw.weights}};
  if (bias) fixed.emplace(DNNL_ARG_BIAS, pw.bias);
  add_primitive(pd, n, node.name + (act ? " + " + net_.node(next).name : ""), "conv",
                {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}}, fixed);
  bind_node(n, dst);
  if (act) bind_node(next, dst);
  backward_.push_back([=, this] {
    int g = grad(act ? next : n);
    if (g < 0) return;
    if (act) g = activation_gradient_from_output(n, *act, dst, g);
    // Parameter gradients in f32 (the store's type); activation gradients in the plan's.
    auto make_wpd = [&](const Desc& x_desc) {
      const auto wdesc = bias ? dnnl::convolution_backward_weights::desc(
                                    algorithm::convolution_direct, x_desc, any_desc(geo.weights), b_desc,
                                    any_desc(geo.dst, dt_), geo.strides, geo.dilates, geo.pad_l, geo.pad_r)
                              : dnnl::convolution_backward_weights::desc(
                                    algorithm::convolution_direct, x_desc, any_desc(geo.weights),
                                    any_desc(geo.dst, dt_), geo.strides, geo.dilates, geo.pad_l, geo.pad_r);
      return dnnl::convolution_backward_weights::primitive_desc(wdesc, scratchpad_attr(), c_.engine, pd);
    };
    // The forward's source layout, unless only oneDNN's reference kernel reads it that way (nhwc
    // with a few channels: 25x slower for LeNet-5); then the layout oneDNN prefers, reordered to.
    auto wpd = make_wpd(pd.src_desc());
    if (std::string(wpd.impl_info_str()).rfind("ref", 0) == 0) wpd = make_wpd(any_desc(geo.src, dt_));
    weights_backward(n, src, g, wpd, pw, pd.weights_desc(), w_plain, bias ? b_desc : Desc(), "conv backward", [&] {
      const dnnl::convolution_backward_data::desc ddesc(algorithm::convolution_direct, any_desc(geo.src, dt_),
                                                        any_desc(geo.weights, dt_), any_desc(geo.dst, dt_),
                                                        geo.strides, geo.dilates, geo.pad_l, geo.pad_r);
      return dnnl::convolution_backward_data::primitive_desc(ddesc, scratchpad_attr(), c_.engine, pd);
    });
  });
}

void Lowerer::train_linear(int n) {
  // y = [act](W x + b).  dL/dx = W^T dL/dy;  dL/dW = dL/dy x^T;  dL/db = sum dL/dy
  const Node& node = net_.node(n);
  const LinearOptions& lo = dynamic_cast<const Linear&>(*node.layer).options();
  const int input = c_.value_of[static_cast<size_t>(node.inputs[0])];
  const Dims x_dims = c_.values[static_cast<size_t>(input)].desc.dims();
  Dims w_dims{lo.out_features};
  w_dims.insert(w_dims.end(), x_dims.begin() + 1, x_dims.end());
  const Dims y_dims{o_.batch, lo.out_features};
  const Desc b_desc = vector_desc(lo.out_features);
  int next = -1;
  const std::optional<Activation> act = training_post_op(n, next);
  const Desc x = any_desc(x_dims, dt_);
  const Desc w = any_desc(w_dims, dt_);
  const Desc y = any_desc(y_dims, output_type(act ? next : n));
  const auto desc = lo.bias ? dnnl::inner_product_forward::desc(prop_kind::forward_training, x, w, b_desc, y)
                            : dnnl::inner_product_forward::desc(prop_kind::forward_training, x, w, y);
  const dnnl::inner_product_forward::primitive_desc pd(desc, post_op_attr(act), c_.engine);
  const int src = convert(input, pd.src_desc(), n);
  auto& store = params_.values(static_cast<size_t>(n));
  const Desc w_plain = plain_desc(w_dims);
  const PreparedWeights pw = prepare_weights(w_plain, pd.weights_desc(), b_desc, store[0].data(),
                                             lo.bias ? store[1].data() : nullptr, false, {});
  const int dst = new_value(pd.dst_desc());
  Args fixed{{DNNL_ARG_WEIGHTS, pw.weights}};
  if (lo.bias) fixed.emplace(DNNL_ARG_BIAS, pw.bias);
  add_primitive(pd, n, node.name + (act ? " + " + net_.node(next).name : ""), "fc",
                {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}}, fixed);
  bind_node(n, dst);
  if (act) bind_node(next, dst);
  const bool bias = lo.bias;
  backward_.push_back([=, this] {
    int g = grad(act ? next : n);
    if (g < 0) return;
    if (act) g = activation_gradient_from_output(n, *act, dst, g);
    // dL/dW in the store's own layout, written there directly (fc6 of VGG16 is 411 MB).
    const auto wdesc = bias ? dnnl::inner_product_backward_weights::desc(pd.src_desc(), w_plain, b_desc,
                                                                         any_desc(y_dims, dt_))
                            : dnnl::inner_product_backward_weights::desc(pd.src_desc(), w_plain,
                                                                         any_desc(y_dims, dt_));
    const dnnl::inner_product_backward_weights::primitive_desc wpd(wdesc, scratchpad_attr(), c_.engine, pd);
    weights_backward(n, src, g, wpd, pw, pd.weights_desc(), w_plain, bias ? b_desc : Desc(), "fc backward", [&] {
      const dnnl::inner_product_backward_data::desc ddesc(any_desc(x_dims, dt_), any_desc(w_dims, dt_),
                                                          any_desc(y_dims, dt_));
      return dnnl::inner_product_backward_data::primitive_desc(ddesc, scratchpad_attr(), c_.engine, pd);
    });
  });
}

void Lowerer::train_batch_norm(int n) {
  // y = [relu](gamma xhat + beta), xhat = (x - mean) / sqrt(var + eps) over the batch; running stats updated.
  // dL/dx = gamma / sqrt(var + eps) / m (m dy - sum dy - xhat sum dy xhat); dL/dgamma = sum dy xhat; dL/dbeta = sum dy
  const Node& node = net_.node(n);
  const BatchNormOptions& bo = dynamic_cast<const BatchNorm&>(*node.layer).options();
  const int src = in_plan_type(c_.value_of[static_cast<size_t>(node.inputs[0])], n);
  const Desc src_desc = c_.values[static_cast<size_t>(src)].desc;
  // A ReLU read by nothing else fuses: y = max(0, bn(x)), its mask kept in a workspace for the
  // backward, and bn(x) itself never stored.
  const int next = sole_consumer(n);
  const bool relu = next >= 0 && net_.node(next).layer->kind() == "relu";
  auto flags = dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
  if (relu) flags = flags | dnnl::normalization_flags::fuse_norm_relu;
  const int end = relu ? next : n;
  const auto eps = static_cast<float>(bo.eps);
  const dnnl::batch_normalization_forward::desc desc(prop_kind::forward_training, src_desc, eps, flags);
  const dnnl::batch_normalization_forward::primitive_desc pd(desc, scratchpad_attr(), c_.engine);
  const int64_t channels = node.output[0];
  const Desc c = vector_desc(channels);
  auto& store = params_.values(static_cast<size_t>(n));
  auto& grads = params_.grads(static_cast<size_t>(n));
  const int mean = new_value(c);
  const int var = new_value(c);
  const int dst = new_value(pd.dst_desc());
  const int workspace = relu ? new_value(pd.workspace_desc()) : -1;
  const Args scale_shift{{DNNL_ARG_SCALE, memory_for(c, store[0].data())},
                         {DNNL_ARG_SHIFT, memory_for(c, store[1].data())}};
  std::vector<std::pair<int, int>> values{
      {DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}, {DNNL_ARG_MEAN, mean}, {DNNL_ARG_VARIANCE, var}};
  if (relu) values.emplace_back(DNNL_ARG_WORKSPACE, workspace);
  const std::string label = node.name + (relu ? " + " + net_.node(next).name : "");
  add_primitive(pd, n, label, "batchnorm", values, scale_shift);
  int64_t m = o_.batch;
  for (size_t i = 1; i < node.output.dims().size(); ++i) m *= node.output[i];
  Op update;
  update.node = n;
  update.info = {node.name + " (running statistics)", "batchnorm", "host", "x"};
  update.host_values = {mean, var};
  update.host = [running_mean = store[2].data(), running_var = store[3].data(), tracked = store[4].data(), channels,
                 m, momentum = static_cast<float>(bo.momentum)](std::vector<Tensor>& views) {
    kernels::onednn::update_running_stats(views[0].data(), views[1].data(), channels, m, momentum, running_mean,
                                          running_var);
    tracked[0] += 1.0F;  // num_batches_tracked
  };
  add_op(std::move(update));
  bind_node(n, dst);
  if (relu) bind_node(next, dst);
  backward_.push_back([=, this, &grads] {
    const Node& self = net_.node(n);
    const int g = grad(end);
    if (g < 0) return;
    const dnnl::batch_normalization_backward::desc bdesc(prop_kind::backward, src_desc, src_desc, eps, flags);
    const dnnl::batch_normalization_backward::primitive_desc bpd(bdesc, scratchpad_attr(), c_.engine, pd);
    const int dx = new_value(bpd.diff_src_desc());
    std::vector<std::pair<int, int>> bvalues{{DNNL_ARG_SRC, src},
                                             {DNNL_ARG_DIFF_DST, convert(g, bpd.diff_dst_desc(), n)},
                                             {DNNL_ARG_MEAN, mean},
                                             {DNNL_ARG_VARIANCE, var},
                                             {DNNL_ARG_DIFF_SRC, dx}};
    if (relu) bvalues.emplace_back(DNNL_ARG_WORKSPACE, workspace);
    Args fixed = scale_shift;
    fixed.emplace(DNNL_ARG_DIFF_SCALE, memory_for(c, grads[0].data()));  // written into the store
    fixed.emplace(DNNL_ARG_DIFF_SHIFT, memory_for(c, grads[1].data()));
    add_primitive(bpd, n, label + " (gradient)", "batchnorm backward", bvalues, fixed);
    add_grad(self.inputs[0], dx);
  });
}

void Lowerer::train_pool(int n) {
  // Max: dL/dx routes dL/dy to each window's maximum (the workspace remembers it). Average:
  // dL/dx spreads dL/dy evenly over each window.
  const Node& node = net_.node(n);
  const PoolGeometry geo = *pool_geometry(n);
  const int src = in_plan_type(c_.value_of[static_cast<size_t>(node.inputs[0])], n);
  const Desc src_desc = c_.values[static_cast<size_t>(src)].desc;
  const dnnl::pooling_forward::desc desc(prop_kind::forward_training, geo.alg, src_desc,
                                         activation_desc(geo.dst, o_.layout, output_type(n)), geo.strides, geo.kernel,
                                         geo.pad_l, geo.pad_r);
  const dnnl::pooling_forward::primitive_desc pd(desc, scratchpad_attr(), c_.engine);
  const int dst = new_value(pd.dst_desc());
  const bool max = geo.alg == algorithm::pooling_max;
  const int workspace = max ? new_value(pd.workspace_desc()) : -1;
  std::vector<std::pair<int, int>> values{{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}};
  if (max) values.emplace_back(DNNL_ARG_WORKSPACE, workspace);
  add_primitive(pd, n, node.name, node.layer->kind(), values);
  bind_node(n, dst);
  backward_.push_back([=, this] {
    const Node& self = net_.node(n);
    const int g = grad(n);
    if (g < 0 || net_.node(self.inputs[0]).inputs.empty()) return;
    // The forward's layouts: left to choose ("any"), oneDNN may pick one only its reference kernel
    // runs (global average pooling of nChw16c in 2.6).
    const dnnl::pooling_backward::desc bdesc(geo.alg, src_desc, retype(pd.dst_desc(), dt_), geo.strides, geo.kernel,
                                             geo.pad_l, geo.pad_r);
    const dnnl::pooling_backward::primitive_desc bpd(bdesc, scratchpad_attr(), c_.engine, pd);
    const int dx = new_value(bpd.diff_src_desc());
    std::vector<std::pair<int, int>> bvalues{{DNNL_ARG_DIFF_DST, convert(g, bpd.diff_dst_desc(), n)},
                                             {DNNL_ARG_DIFF_SRC, dx}};
    if (max) bvalues.emplace_back(DNNL_ARG_WORKSPACE, workspace);
    add_primitive(bpd, n, self.name + " (gradient)", self.layer->kind() + " backward", bvalues);
    add_grad(self.inputs[0], dx);
  });
}

void Lowerer::train_activation(int n) {
  // y = f(x).  dL/dx = f'(x) dL/dy
  const Node& node = net_.node(n);
  const Activation a = *activation_of(*node.layer);
  const int src = in_plan_type(c_.value_of[static_cast<size_t>(node.inputs[0])], n);
  const Desc src_desc = c_.values[static_cast<size_t>(src)].desc;
  const dnnl::eltwise_forward::desc desc(prop_kind::forward_training, a.alg, src_desc, a.alpha, 0.0F);
  const dnnl::eltwise_forward::primitive_desc pd(desc, scratchpad_attr(), c_.engine);
  const int dst = new_value(pd.dst_desc());
  add_primitive(pd, n, node.name, node.layer->kind(), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
  bind_node(n, dst);
  backward_.push_back([=, this] {
    const Node& self = net_.node(n);
    const int g = grad(n);
    if (g < 0 || net_.node(self.inputs[0]).inputs.empty()) return;
    const dnnl::eltwise_backward::desc bdesc(a.alg, src_desc, src_desc, a.alpha, 0.0F);
    const dnnl::eltwise_backward::primitive_desc bpd(bdesc, scratchpad_attr(), c_.engine, pd);
    const int dx = new_value(bpd.diff_src_desc());
    add_primitive(bpd, n, self.name + " (gradient)", self.layer->kind() + " backward",
                  {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, convert(g, bpd.diff_dst_desc(), n)}, {DNNL_ARG_DIFF_SRC, dx}});
    add_grad(self.inputs[0], dx);
  });
}

void Lowerer::train_add(int n) {
  // y = sum_i x_i.  dL/dx_i = dL/dy (the same value, read by each input's backward)
  const Sources in = sources(n);
  const dnnl::sum::primitive_desc pd(std::vector<float>(in.descs.size(), 1.0F), in.descs, c_.engine, scratchpad_attr());
  const int dst = new_value(pd.dst_desc());
  add_multi_source_op(primitive_op(pd, n, net_.node(n).name, "add"), in, dst);
  bind_node(n, dst);
  backward_.push_back([=, this] {
    const int g = grad(n);
    if (g < 0) return;
    for (int j : net_.node(n).inputs) add_grad(j, g);
  });
}

void Lowerer::train_concat(int n) {
  // y = [x_0, x_1, ...] along channels.  dL/dx_i = dL/dy's channels of x_i (a plain slice)
  const Sources in = sources(n);
  const dnnl::concat::primitive_desc pd(1, in.descs, c_.engine, scratchpad_attr());
  const int dst = new_value(pd.dst_desc());
  add_multi_source_op(primitive_op(pd, n, net_.node(n).name, "concat"), in, dst);
  bind_node(n, dst);
  backward_.push_back([=, this] {
    const int g = grad(n);
    if (g < 0) return;
    const int whole = plain(g, batched(n), n, dt_);
    const Desc whole_desc = c_.values[static_cast<size_t>(whole)].desc;
    int64_t offset = 0;
    for (int j : net_.node(n).inputs) {
      const Dims dims = batched(j);
      Dims offsets(dims.size(), 0);
      offsets[1] = offset;
      offset += dims[1];
      if (net_.node(j).inputs.empty()) continue;
      const int slice = new_value(whole_desc.submemory_desc(dims, offsets), c_.values[static_cast<size_t>(whole)].storage);
      add_grad(j, convert(slice, plain_desc(dims, dt_), n));
    }
  });
}

void Lowerer::train_flatten(int n) {
  // y = x viewed as (N, C*H*W).  dL/dx = dL/dy viewed as x
  const int input = net_.node(n).inputs[0];
  bind_node(n, plain(c_.value_of[static_cast<size_t>(input)], batched(n), n, dt_));
  backward_.push_back([=, this] {
    const int g = grad(n);
    if (g >= 0) add_grad(input, plain(g, batched(input), n, dt_));
  });
}

namespace {

/// The bytes of one sample when `desc` stores samples one after another (N outermost, as in
/// NCHW, NHWC and nChw16c), else 0.
int64_t sample_bytes(const Desc& desc) {
  const auto& blk = desc.data.format_desc.blocking;
  if (desc.data.format_kind != dnnl_blocked || desc.data.ndims < 2 || desc.data.dims[0] <= 0) return 0;
  for (int i = 0; i < blk.inner_nblks; ++i) {
    if (blk.inner_idxs[i] == 0) return 0;
  }
  const auto bytes = static_cast<int64_t>(desc.get_size());
  const int64_t per_sample = bytes / desc.data.dims[0];
  const int64_t element = static_cast<int64_t>(dnnl::memory::data_type_size(desc.data_type()));
  return per_sample * desc.data.dims[0] == bytes && blk.strides[0] * element == per_sample ? per_sample : 0;
}

}  // namespace

void Lowerer::train_dropout(int n) {
  // y = x s, s = 1/(1 - p) kept or 0 dropped, drawn per element (dropout) or per sample (drop path)
  // in plain order from the run's generator, as the layer-by-layer path draws.  dL/dx = s dL/dy
  const Node& node = net_.node(n);
  const int input = node.inputs[0];
  const bool per_sample = node.layer->kind() == "droppath";
  const auto p = static_cast<float>(per_sample ? dynamic_cast<const DropPath&>(*node.layer).options().p
                                               : dynamic_cast<const Dropout&>(*node.layer).options().p);
  if (p == 0.0F) {  // the identity
    bind_node(n, c_.value_of[static_cast<size_t>(input)]);
    backward_.push_back([=, this] {
      const int g = grad(n);
      if (g >= 0) add_grad(input, g);
    });
    return;
  }
  if (o_.rng == nullptr) throw Error("plan: " + node.name + " needs a generator for its masks (PlanOptions::rng)");
  // Drop path keeps x's layout and type: x's memory seen as (1, N, bytes of a sample), the mask as
  // (1, N, 1), a per-channel broadcast oneDNN's JIT binary kernel runs. Dropout (and a layout
  // that interleaves samples) multiplies in plain f32, the mask in plain order.
  const int64_t chunk = per_sample ? sample_bytes(retype(value(input).desc, dt_)) : 0;
  const int x = chunk > 0 ? in_plan_type(c_.value_of[static_cast<size_t>(input)], n)
                          : plain(c_.value_of[static_cast<size_t>(input)], batched(input), n);
  const Desc x_desc = c_.values[static_cast<size_t>(x)].desc;
  const int64_t batch = o_.batch;
  Dims scale_dims = batched(n);
  Desc view = x_desc;  // how the binary kernel sees x, y, dL/dy and dL/dx
  if (chunk > 0) {
    const auto element = static_cast<int64_t>(dnnl::memory::data_type_size(x_desc.data_type()));
    scale_dims = {1, batch, 1};
    view = Desc({1, batch, chunk / element}, x_desc.data_type(), Tag::abc);
  } else if (per_sample) {
    std::fill(scale_dims.begin() + 1, scale_dims.end(), 1);
  }
  const auto as_view = [=, this](int v) {
    return chunk > 0 ? new_value(view, c_.values[static_cast<size_t>(v)].storage) : v;
  };
  const int scale = new_value(plain_desc(scale_dims));
  Op draw;
  draw.node = n;
  draw.info = {node.name + " (mask)", node.layer->kind(), "host", format_string(plain_desc(scale_dims))};
  draw.host_values = {scale};
  draw.host = [rng = o_.rng, p](std::vector<Tensor>& views) {
    kernels::reference::dropout_scales(views[0].numel(), p, views[0].data(), *rng);
  };
  add_op(std::move(draw));
  const dnnl::binary::desc desc(algorithm::binary_mul, view, plain_desc(scale_dims), view);
  const dnnl::binary::primitive_desc pd(desc, scratchpad_attr(), c_.engine);
  const int dst = new_value(x_desc);
  add_primitive(pd, n, node.name, node.layer->kind(),
                {{DNNL_ARG_SRC_0, as_view(x)}, {DNNL_ARG_SRC_1, scale}, {DNNL_ARG_DST, as_view(dst)}});
  bind_node(n, dst);
  backward_.push_back([=, this] {
    const int g = grad(n);
    if (g < 0 || net_.node(input).inputs.empty()) return;
    const int dx = new_value(x_desc);
    add_primitive(
        pd, n, net_.node(n).name + " (gradient)", net_.node(n).layer->kind() + " backward",
        {{DNNL_ARG_SRC_0, as_view(convert(g, x_desc, n))}, {DNNL_ARG_SRC_1, scale}, {DNNL_ARG_DST, as_view(dx)}});
    add_grad(input, dx);
  });
}

void Lowerer::train_lrn(int n) {
  // y = x (k + alpha/size sum_window x^2)^-beta.  dL/dx from oneDNN's backward with the forward's workspace
  const Node& node = net_.node(n);
  const LocalResponseNormOptions& lo = dynamic_cast<const LocalResponseNorm&>(*node.layer).options();
  const int src = in_plan_type(c_.value_of[static_cast<size_t>(node.inputs[0])], n);
  const Desc src_desc = c_.values[static_cast<size_t>(src)].desc;
  const auto alpha = static_cast<float>(lo.alpha);
  const auto beta = static_cast<float>(lo.beta);
  const auto k = static_cast<float>(lo.k);
  const dnnl::lrn_forward::desc desc(prop_kind::forward_training, algorithm::lrn_across_channels, src_desc, lo.size,
                                     alpha, beta, k);
  const dnnl::lrn_forward::primitive_desc pd(desc, scratchpad_attr(), c_.engine);
  const int dst = new_value(pd.dst_desc());
  const bool has_workspace = pd.workspace_desc().get_size() > 0;
  const int workspace = has_workspace ? new_value(pd.workspace_desc()) : -1;
  std::vector<std::pair<int, int>> values{{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}};
  if (has_workspace) values.emplace_back(DNNL_ARG_WORKSPACE, workspace);
  add_primitive(pd, n, node.name, "lrn", values);
  bind_node(n, dst);
  backward_.push_back([=, this] {
    const int g = grad(n);
    const int input = net_.node(n).inputs[0];
    if (g < 0 || net_.node(input).inputs.empty()) return;
    const dnnl::lrn_backward::desc bdesc(algorithm::lrn_across_channels, src_desc, src_desc, lo.size, alpha, beta, k);
    const dnnl::lrn_backward::primitive_desc bpd(bdesc, scratchpad_attr(), c_.engine, pd);
    const int dx = new_value(bpd.diff_src_desc());
    std::vector<std::pair<int, int>> bvalues{
        {DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, convert(g, bpd.diff_dst_desc(), n)}, {DNNL_ARG_DIFF_SRC, dx}};
    if (has_workspace) bvalues.emplace_back(DNNL_ARG_WORKSPACE, workspace);
    add_primitive(bpd, n, net_.node(n).name + " (gradient)", "lrn backward", bvalues);
    add_grad(input, dx);
  });
}

}  // namespace convnet::engine
