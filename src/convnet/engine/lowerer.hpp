// The lowering machinery of a plan: values and storages, reorders where a primitive asks for
// another format, fusion chains (which nodes one op absorbs) and when a storage may be overwritten
// in place, and weight copies refreshed per parameter version. lower_layers.cpp lowers each kind.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <optional>
#include <unordered_set>

#include "convnet/checked.hpp"
#include "convnet/engine/lowering.hpp"
#include "convnet/error.hpp"
#include "convnet/kernels/onednn/common.hpp"
#include "convnet/layers/activation.hpp"
#include "convnet/layers/conv2d.hpp"
#include "convnet/layers/linear.hpp"
#include "convnet/layers/normalization.hpp"
#include "convnet/layers/pool2d.hpp"

namespace convnet::engine {

using dnnl::algorithm;
using dnnl::prop_kind;
using Tag = dnnl::memory::format_tag;
using Dims = dnnl::memory::dims;
using kernels::onednn::right_padding;
using kernels::onednn::scratchpad_attr;

using DataType = dnnl::memory::data_type;

/// The element type between primitives: int8 plans choose u8 or s8 per value and use f32 elsewhere.
inline DataType data_type(DType dtype) { return dtype == DType::BF16 ? DataType::bf16 : DataType::f32; }

inline Desc any_desc(const Dims& dims, DataType dt = DataType::f32) { return {dims, dt, Tag::any}; }

/// Biases and batch-norm statistics: f32 in every plan.
inline Desc vector_desc(int64_t n) { return {{n}, DataType::f32, Tag::x}; }

/// An activation's descriptor under PlanOptions::layout: fixed NHWC or nChw16c, or left to oneDNN.
inline Desc activation_desc(const Dims& dims, ActivationLayout layout, DataType dt = DataType::f32) {
  if (layout == ActivationLayout::Nhwc && dims.size() == 4) return {dims, dt, Tag::nhwc};
  if (layout == ActivationLayout::Blocked && dims.size() == 4 && dims[1] % 16 == 0) return {dims, dt, Tag::nChw16c};
  return any_desc(dims, dt);
}

/// `desc` with its layout kept and its element type changed.
inline Desc retype(const Desc& desc, DataType dt) {
  Desc out = desc;
  out.data.data_type = static_cast<dnnl_data_type_t>(dt);
  return out;
}

/// The activation a layer applies, as a oneDNN eltwise algorithm with its alpha.
struct Activation {
  algorithm alg;
  float alpha = 0.0F;
};

inline std::optional<Activation> activation_of(const Layer& layer) {
  const std::string kind = layer.kind();
  if (kind == "relu") return Activation{algorithm::eltwise_relu};
  if (kind == "leakyrelu") {
    return Activation{algorithm::eltwise_relu, static_cast<float>(dynamic_cast<const LeakyReLU&>(layer).options().negative_slope)};
  }
  if (kind == "elu") return Activation{algorithm::eltwise_elu, static_cast<float>(dynamic_cast<const ELU&>(layer).options().alpha)};
  if (kind == "sigmoid") return Activation{algorithm::eltwise_logistic};
  if (kind == "tanh") return Activation{algorithm::eltwise_tanh};
  return std::nullopt;
}

/// Dropout and drop path: random masks in training, the identity at inference.
inline bool is_dropout(const Layer& layer) {
  const std::string kind = layer.kind();
  return kind == "dropout" || kind == "droppath";
}

inline std::string format_string(const Desc& d) {
  const auto& blk = d.data.format_desc.blocking;
  std::string out;
  const int rank = d.data.ndims;
  // Dimension letters ordered by stride (outermost first), then inner blocks: "acdb" = NHWC.
  std::vector<int> order(static_cast<size_t>(rank));
  for (int i = 0; i < rank; ++i) order[static_cast<size_t>(i)] = i;
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return blk.strides[a] > blk.strides[b]; });
  for (int i : order) out += static_cast<char>('a' + i);
  for (int i = 0; i < blk.inner_nblks; ++i) out += std::to_string(blk.inner_blks[i]) + static_cast<char>('a' + blk.inner_idxs[i]);
  return out;
}

/// A reorder whose arguments are bound once and run through the C API: refreshing weight copies
/// (every training step) allocates nothing.
struct BoundReorder {
  dnnl::reorder primitive;
  dnnl::memory from, to;
  std::array<dnnl_exec_arg_t, 2> args{};

  BoundReorder(const dnnl::memory& src, const dnnl::memory& dst)
      : primitive(dnnl::reorder::primitive_desc(src, dst)), from(src), to(dst),
        args{{{DNNL_ARG_FROM, src.get()}, {DNNL_ARG_TO, dst.get()}}} {}

  void run(const dnnl::stream& stream) const {
    if (dnnl_primitive_execute(primitive.get(), stream.get(), 2, args.data()) != dnnl_success) {
      throw Error("plan: oneDNN failed to refresh a weight copy");
    }
  }
};

class Lowerer {
 public:
  Lowerer(const Net& net, ParamStore& params, const PlanOptions& o, Plan::Compiled& c)
      : net_(net), params_(params), o_(o), c_(c), dt_(data_type(o.dtype)), int8_(o.dtype == DType::Int8),
        consumers_(net.nodes().size()) {
    const auto& nodes = net.nodes();
    for (size_t i = 0; i < nodes.size(); ++i) {
      for (int j : nodes[i].inputs) consumers_[static_cast<size_t>(j)].push_back(static_cast<int>(i));
    }
    for (const std::string& name : o.taps) {
      const int id = net.find(name);
      if (id < 0) throw Error("plan: no layer named '" + name + "' to tap in " + net.name());
      taps_.insert(id);
    }
    c_.value_of.assign(nodes.size(), -1);
    grad_parts_.resize(nodes.size());
  }

  void run() {
    const auto& nodes = net_.nodes();
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (c_.value_of[i] >= 0) continue;  // absorbed into an earlier fused op
      try {
        if (o_.training) {
          train_node(static_cast<int>(i));
        } else {
          lower_node(static_cast<int>(i));
        }
      } catch (const dnnl::error& e) {
        throw Error("plan: " + nodes[i].name + " (" + nodes[i].layer->kind() + "): oneDNN has no primitive for it: " +
                    e.what());
      }
    }
    for (int t : taps_) c_.storages[static_cast<size_t>(value(t).storage)].pinned = true;
    const int out = plain(c_.value_of[static_cast<size_t>(net_.output())], batched(net_.output()), net_.output());
    if (o_.allocate) c_.output = Tensor(batched_vector(net_.output()));
    const dnnl::memory out_mem = memory_for(plain_desc(batched(net_.output())), c_.output.data());
    add_reorder_op(out, out_mem, net_.output(), "output");
    c_.forward_ops = static_cast<int>(c_.ops.size());
    if (o_.training) lower_backward();
  }

 private:
  // ----- values, storages, ops -----

  Value& value(int node) { return c_.values[static_cast<size_t>(c_.value_of[static_cast<size_t>(node)])]; }

  int new_value(const Desc& desc, int storage = -1, float scale = 1.0F) {
    if (storage < 0) {
      storage = static_cast<int>(c_.storages.size());
      c_.storages.push_back({.bytes = static_cast<int64_t>(desc.get_size()), .nodes = {}});
    }
    c_.values.push_back({desc, storage, scale});
    return static_cast<int>(c_.values.size()) - 1;
  }

  void bind_node(int node, int value_id) {
    c_.value_of[static_cast<size_t>(node)] = value_id;
    c_.storages[static_cast<size_t>(c_.values[static_cast<size_t>(value_id)].storage)].nodes.push_back(node);
  }

  Dims batched(int node) const {
    Dims dims{o_.batch};
    for (int64_t d : net_.node(node).output.dims()) dims.push_back(d);
    return dims;
  }
  std::vector<int64_t> batched_vector(int node) const {
    const Dims d = batched(node);
    return {d.begin(), d.end()};
  }

  /// Memory over `data`, or (data null) memory oneDNN allocates; never any in a sizes-only plan.
  dnnl::memory memory_for(const Desc& desc, void* data = nullptr) const {
    if (!o_.allocate) return {desc, c_.engine, DNNL_MEMORY_NONE};
    return data != nullptr ? dnnl::memory(desc, c_.engine, data) : dnnl::memory(desc, c_.engine);
  }

  int add_op(Op op) {
    c_.ops.push_back(std::move(op));
    return static_cast<int>(c_.ops.size()) - 1;
  }

  template <class PrimitiveDesc>
  Op primitive_op(const PrimitiveDesc& pd, int node, std::string label, std::string kind) {
    Op op;
    if (o_.allocate) op.primitive = dnnl::primitive(pd.get());  // the JIT-compiled kernel
    op.node = node;
    op.scratchpad = pd.scratchpad_desc();
    op.info = {std::move(label), std::move(kind), pd.impl_info_str(), ""};
    return op;
  }

  void add_reorder_op(int from, const dnnl::memory& to, int node, const std::string& label) {
    const Desc& src = c_.values[static_cast<size_t>(from)].desc;
    const dnnl::reorder::primitive_desc pd(c_.engine, src, c_.engine, to.get_desc(), scratchpad_attr());
    Op op = primitive_op(pd, node, label, "reorder");
    op.info.formats = format_string(src) + " -> " + format_string(to.get_desc());
    op.value_args = {{DNNL_ARG_FROM, from}};
    op.fixed_args = {{DNNL_ARG_TO, to}};
    add_op(std::move(op));
  }

  /// `v` in descriptor `want` (and, for int8, scale `want_scale`): v itself, or a new value filled
  /// by a reorder (which quantizes, dequantizes or requantizes where the scales differ).
  int convert(int v, const Desc& want, int node, float want_scale = 1.0F) {
    const Desc have = c_.values[static_cast<size_t>(v)].desc;
    const float have_scale = c_.values[static_cast<size_t>(v)].scale;
    if (have == want && have_scale == want_scale) return v;
    dnnl::primitive_attr attr = scratchpad_attr();
    if (have_scale != want_scale) attr.set_output_scales(0, {have_scale / want_scale});
    const dnnl::reorder::primitive_desc pd(c_.engine, have, c_.engine, want, attr);
    const int out = new_value(want, -1, want_scale);
    Op op = primitive_op(pd, node, net_.node(node).name + " (reorder)", "reorder");
    op.info.formats = format_string(have) + " -> " + format_string(want);
    op.value_args = {{DNNL_ARG_FROM, v}, {DNNL_ARG_TO, out}};
    add_op(std::move(op));
    return out;
  }

  /// The element type of what an op ending at `node` writes: f32 for the net's output (logits are
  /// never rounded), else the plan's.
  [[nodiscard]] DataType output_type(int node) const { return node == net_.output() ? DataType::f32 : dt_; }

  /// `v` in the plan's element type, its layout kept (values from host code are f32).
  int in_plan_type(int v, int node) {
    const Desc have = c_.values[static_cast<size_t>(v)].desc;
    return have.data_type() == dt_ ? v : convert(v, retype(have, dt_), node);
  }

  // ----- int8 (lower_int8.cpp) -----

  [[nodiscard]] bool quantized(int v) const {
    const DataType t = c_.values[static_cast<size_t>(v)].desc.data_type();
    return t == DataType::u8 || t == DataType::s8;
  }
  /// The node's calibrated range; Error when it is unknown (NaN: a QDQ file that leaves it in f32).
  [[nodiscard]] const ActivationRange& range_of(int node) const;
  /// u8 for a node never negative on the calibration data, else s8.
  [[nodiscard]] DataType quant_type(int node) const;
  /// Real value of one step of the node's quantized output.
  [[nodiscard]] float quant_scale(int node) const;
  struct Quantization {
    DataType type;
    float scale;
  };
  /// How an int8 layer reads the (computed) output of `node`: as stored when it is quantized, else
  /// quantized by the node's calibrated range.
  [[nodiscard]] Quantization source_quantization(int node) const;
  /// What an int8 op ending at `node` writes: f32 for the net's output, else the node's quantization.
  [[nodiscard]] Quantization output_quantization(int node) const;
  /// `v` in f32 (real values), its layout kept.
  int dequantized(int v, int node) {
    if (!quantized(v)) return v;
    return convert(v, retype(c_.values[static_cast<size_t>(v)].desc, DataType::f32), node);
  }
  /// Per-output-channel symmetric s8 weights (after folding), for an int8 convolution or fc:
  /// w_q = round(w / s_w[k]), s_w[k] = max_i |w[k, i]| / 127, and the bias in accumulator units.
  struct QuantizedWeights {
    dnnl::memory weights, bias;
    std::vector<float> scales;  // s_w[k]
  };
  QuantizedWeights quantize_weights(const Desc& plain_w, const Desc& chosen_w, int64_t outputs, int64_t per_output,
                                    const float* store_w, const float* store_b,
                                    const std::function<void(float*, float*)>& fold, float src_scale);
  /// Keeps a weight layer's scales for Plan::node_quantization().
  void record_weight_scales(int node, const std::vector<float>& scales);
  void lower_conv_int8(int n);
  void lower_linear_int8(int n);
  void lower_add_int8(int n);
  void lower_concat_int8(int n);

  /// `v` in plain layout and type `dt` with dims `dims` (same element count): a reorder when the
  /// layout or type differs, then a reshaped alias when the dims differ.
  int plain(int v, const Dims& dims, int node, DataType dt = DataType::f32) {
    const Desc have = c_.values[static_cast<size_t>(v)].desc;
    const int p = convert(v, plain_desc(have.dims(), dt), node);
    if (have.dims() == dims) return p;
    return new_value(plain_desc(dims, dt), c_.values[static_cast<size_t>(p)].storage);
  }

  // ----- fusion legality -----

  [[nodiscard]] int sole_consumer(int node) const {
    const auto& cs = consumers_[static_cast<size_t>(node)];
    if (!o_.fuse || cs.size() != 1 || taps_.count(node) || node == net_.output()) return -1;
    return cs[0];
  }

  /// True when storage `s` may be overwritten by the op lowered at `head` that also computes the
  /// nodes of `chain`: no tap lives there and every reader of it runs no later than that op.
  [[nodiscard]] bool can_overwrite(int s, int head, const std::vector<int>& chain) const {
    if (o_.training) return false;  // the backward reads what the forward computed
    const Storage& st = c_.storages[static_cast<size_t>(s)];
    for (int m : st.nodes) {
      if (taps_.count(m) || m == net_.output()) return false;
      for (int reader : consumers_[static_cast<size_t>(m)]) {
        if (reader > head && std::find(chain.begin(), chain.end(), reader) == chain.end()) return false;
      }
    }
    return true;
  }

  // ----- lowering per kind -----

  void lower_node(int n) {
    const Node& node = net_.node(n);
    const std::string kind = node.layer->kind();
    if (node.inputs.empty()) return lower_input(n);
    if (kind == "conv") return int8_ ? lower_conv_int8(n) : lower_conv(n);
    if (kind == "fc") return int8_ ? lower_linear_int8(n) : lower_linear(n);
    if (kind == "batchnorm") return lower_batch_norm(n);
    if (kind == "maxpool" || kind == "avgpool" || kind == "globalavgpool") {
      if (lower_pool(n)) return;
      return lower_fallback(n);
    }
    if (activation_of(*node.layer)) return lower_activation(n);
    if (kind == "add") return int8_ ? lower_add_int8(n) : lower_add(n);
    if (kind == "concat") return int8_ ? lower_concat_int8(n) : lower_concat(n);
    // oneDNN centres an even LRN window one channel off PyTorch's: the reference kernel instead.
    if (kind == "lrn") return dynamic_cast<const LocalResponseNorm&>(*node.layer).options().size % 2 == 0 ? lower_fallback(n) : lower_lrn(n);
    if (kind == "softmax") return lower_softmax(n);
    if (is_dropout(*node.layer)) return bind_node(n, c_.value_of[static_cast<size_t>(node.inputs[0])]);
    if (kind == "flatten") return lower_flatten(n);
    lower_fallback(n);
  }

  void lower_input(int n) {
    const int v = new_value(plain_desc(batched(n)));
    bind_node(n, v);
    c_.input_values.push_back(v);
    const size_t k = c_.input_values.size() - 1;
    Op op;
    op.node = n;
    op.info = {net_.node(n).name, "input", "host", "copy"};
    op.host_values = {v};
    op.host = [this_c = &c_, k](std::vector<Tensor>& views) {
      std::memcpy(views[0].data(), this_c->user_inputs[k], static_cast<size_t>(views[0].numel()) * sizeof(float));
    };
    add_op(std::move(op));
  }

  /// The chain a weight layer absorbs: [batch norm], [add of an already computed value],
  /// [activation], each only when the previous node is its only reader; in inference also the
  /// dropout and drop path layers (the identity there) before the add.
  struct Chain {
    int end;
    int bn = -1;
    int add = -1;
    int add_other = -1;  // the add's other input
    int act = -1;
    std::vector<int> nodes;  // absorbed nodes, head first
  };

  Chain fusion_chain(int head, bool allow_bn, bool allow_add) {
    Chain ch{.end = head, .nodes = {}};
    ch.nodes.push_back(head);
    int next = sole_consumer(ch.end);
    const auto absorb_identities = [&] {
      while (!o_.training && next >= 0 && is_dropout(*net_.node(next).layer)) {
        ch.end = next;
        ch.nodes.push_back(next);
        next = sole_consumer(ch.end);
      }
    };
    absorb_identities();
    if (allow_bn && next >= 0 && net_.node(next).layer->kind() == "batchnorm") {
      ch.bn = ch.end = next;
      ch.nodes.push_back(next);
      next = sole_consumer(ch.end);
    }
    absorb_identities();
    if (allow_add && next >= 0 && net_.node(next).layer->kind() == "add" && net_.node(next).inputs.size() == 2) {
      const auto& ins = net_.node(next).inputs;
      const int other = ins[0] == ch.end ? ins[1] : ins[0];
      if (other != ch.end && c_.value_of[static_cast<size_t>(other)] >= 0) {
        ch.add = ch.end = next;
        ch.add_other = other;
        ch.nodes.push_back(next);
        next = sole_consumer(ch.end);
      }
    }
    if (next >= 0 && activation_of(*net_.node(next).layer)) {
      ch.act = ch.end = next;
      ch.nodes.push_back(next);
    }
    return ch;
  }

  std::string chain_label(const Chain& ch) const {
    std::string label;
    for (int n : ch.nodes) label += (label.empty() ? "" : " + ") + net_.node(n).name;
    return label;
  }

  dnnl::primitive_attr chain_attr(const Chain& ch, float sum_scale = 1.0F) const {
    dnnl::primitive_attr attr = scratchpad_attr();
    dnnl::post_ops ops;
    if (ch.add >= 0) ops.append_sum(sum_scale);
    if (ch.act >= 0) {
      const Activation a = *activation_of(*net_.node(ch.act).layer);
      ops.append_eltwise(1.0F, a.alg, a.alpha, 0.0F);
    }
    attr.set_post_ops(ops);
    return attr;
  }

  /// The destination of a chain's op: for a fused residual sum, the other operand's storage when
  /// it can be overwritten (else a copy of it made first), since the sum post-op adds into dst.
  /// int8: the residual keeps its scale s in place (`*sum_scale` becomes s / dst_scale), or is
  /// copied at the destination's scale (1).
  int chain_destination(const Chain& ch, const Desc& dst_desc, int src_value, float dst_scale = 1.0F,
                        float* sum_scale = nullptr) {
    if (ch.add < 0) return new_value(dst_desc, -1, dst_scale);
    const int other = c_.value_of[static_cast<size_t>(ch.add_other)];
    const Value& ov = c_.values[static_cast<size_t>(other)];
    if (ov.desc == dst_desc && ov.storage != c_.values[static_cast<size_t>(src_value)].storage &&
        can_overwrite(ov.storage, ch.nodes[0], ch.nodes)) {
      if (sum_scale != nullptr) *sum_scale = ov.scale / dst_scale;
      return new_value(dst_desc, ov.storage, dst_scale);
    }
    if (sum_scale != nullptr) *sum_scale = 1.0F;
    const int dst = new_value(dst_desc, -1, dst_scale);
    dnnl::primitive_attr attr = scratchpad_attr();
    if (ov.scale != dst_scale) attr.set_output_scales(0, {ov.scale / dst_scale});
    const dnnl::reorder::primitive_desc pd(c_.engine, ov.desc, c_.engine, dst_desc, attr);
    Op op = primitive_op(pd, ch.nodes[0], net_.node(ch.add).name, "reorder");
    op.info.formats = format_string(ov.desc) + " -> " + format_string(dst_desc);
    op.value_args = {{DNNL_ARG_FROM, other}, {DNNL_ARG_TO, dst}};
    add_op(std::move(op));
    return dst;
  }

  /// Weights in the primitive's format (and bias), refreshed when the parameter store changes:
  /// straight from the store when the formats agree and nothing is folded, else through a
  /// folding buffer and a reorder. `fold` (may be empty) rewrites plain weights and bias in place.
  struct PreparedWeights {
    dnnl::memory weights, bias;
  };
  PreparedWeights prepare_weights(const Desc& plain_w, const Desc& chosen_w, const Desc& bias_desc,
                                  float* store_w, float* store_b, bool fold_bn,
                                  std::function<void(float*, float*)> fold);

  /// The op of a weight layer's chain (conv, fc): src -> dst with its weights and (when not null)
  /// bias; every node of the chain is bound to dst.
  template <class PrimitiveDesc>
  void add_weight_op(const PrimitiveDesc& pd, const Chain& ch, const std::string& kind, int src, int dst,
                     const dnnl::memory& weights, const dnnl::memory* bias) {
    Op op = primitive_op(pd, ch.nodes[0], chain_label(ch), kind);
    op.info.formats = format_string(pd.src_desc()) + " -> " + format_string(pd.dst_desc()) + ", weights " +
                      format_string(pd.weights_desc());
    op.value_args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}};
    op.fixed_args = {{DNNL_ARG_WEIGHTS, weights}};
    if (bias != nullptr) op.fixed_args.emplace(DNNL_ARG_BIAS, *bias);
    add_op(std::move(op));
    for (int m : ch.nodes) bind_node(m, dst);
  }

  /// Folds inference batch norm into the preceding layer (fold_batch_norm).
  std::function<void(float*, float*)> batch_norm_fold(int bn_node, int64_t outputs, int64_t per_output) {
    auto& store = params_.values(static_cast<size_t>(bn_node));
    const float* gamma = store[0].data();
    const float* beta = store[1].data();
    const float* mean = store[2].data();
    const float* var = store[3].data();
    const double eps = dynamic_cast<const BatchNorm&>(*net_.node(bn_node).layer).options().eps;
    return [=](float* w, float* b) { fold_batch_norm(w, b, outputs, per_output, gamma, beta, mean, var, eps); };
  }

  /// The values a node reads, with their descriptors.
  struct Sources {
    std::vector<int> values;
    std::vector<Desc> descs;
  };
  Sources sources(int n) {
    Sources in;
    for (int j : net_.node(n).inputs) {
      const int v = c_.value_of[static_cast<size_t>(j)];
      in.values.push_back(int8_ ? dequantized(v, n) : in_plan_type(v, n));
      in.descs.push_back(c_.values[static_cast<size_t>(in.values.back())].desc);
    }
    return in;
  }
  /// An op of several sources (sum, concat) writing `dst`.
  void add_multi_source_op(Op op, const Sources& in, int dst) {
    op.info.formats = format_string(c_.values[static_cast<size_t>(dst)].desc);
    for (size_t i = 0; i < in.values.size(); ++i) {
      op.value_args.emplace_back(DNNL_ARG_MULTIPLE_SRC + static_cast<int>(i), in.values[i]);
    }
    op.value_args.emplace_back(DNNL_ARG_DST, dst);
    add_op(std::move(op));
  }

  /// A convolution's oneDNN geometry (grouped weights are 5-D: G, O/G, I/G, KH, KW).
  struct ConvGeometry {
    Dims src, dst, weights, strides, dilates, pad_l, pad_r;
    int64_t per_output = 0;  // weights per output channel
  };
  [[nodiscard]] ConvGeometry conv_geometry(int n) const;
  /// A pooling's oneDNN geometry; none where oneDNN's average would differ from PyTorch's.
  struct PoolGeometry {
    algorithm alg;
    Dims src, dst, strides, kernel, pad_l, pad_r;
  };
  [[nodiscard]] std::optional<PoolGeometry> pool_geometry(int n) const;

  void lower_conv(int n);
  void lower_linear(int n);
  void lower_batch_norm(int n);
  bool lower_pool(int n);
  void lower_activation(int n);
  void lower_add(int n);
  void lower_concat(int n);
  void lower_lrn(int n);
  void lower_softmax(int n);
  void lower_flatten(int n);
  void lower_fallback(int n);

  // ----- training (lower_training.cpp): forward_training ops now, backward ops queued -----

  void train_node(int n);
  void train_conv(int n);
  void train_linear(int n);
  void train_batch_norm(int n);
  void train_pool(int n);
  void train_activation(int n);
  void train_add(int n);
  void train_concat(int n);
  void train_flatten(int n);
  void train_dropout(int n);
  void train_lrn(int n);
  /// The gradient op for dL/d(output of the net) from the caller, then every queued backward in
  /// reverse order.
  void lower_backward();
  /// Records `v` as one contribution to dL/d(output of node); grad() sums them.
  void add_grad(int node, int v);
  /// dL/d(output of node): its one contribution, or the sum of several; -1 when none.
  int grad(int node);
  /// A parameter gradient in the store (plain) = value `v`, through a reorder.
  void write_gradient(int v, const Desc& plain_grad, float* grad, int node, const std::string& label);
  /// The backward of a layer with weights (conv, fc): dL/dW (and dL/db when b_desc is not empty)
  /// from `wpd` written into the store, then dL/dx from make_data_pd()'s primitive unless the
  /// input is the network's.
  template <class WeightsPd, class MakeDataPd>
  void weights_backward(int n, int src, int g, const WeightsPd& wpd, const PreparedWeights& pw,
                        const Desc& forward_weights, const Desc& w_plain, const Desc& b_desc, const std::string& kind,
                        MakeDataPd make_data_pd);
  /// The activation node n's op applies as a post-op in training (in `next`): read by nothing else
  /// and with a gradient oneDNN computes from its output (ReLU and leaky ReLU with a slope >= 0,
  /// ELU with alpha >= 0, tanh, sigmoid), so the value before it is never stored.
  std::optional<Activation> training_post_op(int n, int& next) const;
  static dnnl::primitive_attr post_op_attr(const std::optional<Activation>& act);
  /// dL/d(before the activation) from dL/dy `g` and the activation's output `y`.
  int activation_gradient_from_output(int n, const Activation& act, int y, int g);
  /// A primitive op reading and writing the given values, with fixed (non-arena) arguments.
  template <class PrimitiveDesc>
  void add_primitive(const PrimitiveDesc& pd, int node, const std::string& label, const std::string& kind,
                     std::vector<std::pair<int, int>> values, Args fixed = {}) {
    Op op = primitive_op(pd, node, label, kind);
    op.value_args = std::move(values);
    op.fixed_args = std::move(fixed);
    op.info.formats = format_string(c_.values[static_cast<size_t>(op.value_args.front().second)].desc);
    add_op(std::move(op));
  }

  const Net& net_;
  ParamStore& params_;
  const PlanOptions& o_;
  Plan::Compiled& c_;
  DataType dt_;  // activations and weights between primitives (PlanOptions::dtype; f32 for int8)
  bool int8_;    // int8 plan: weight layers, ReLU, pooling, add and concat on quantized values
  std::vector<std::vector<int>> consumers_;
  std::unordered_set<int> taps_;
  std::vector<std::vector<int>> grad_parts_;     // per node: values summing to dL/d(its output)
  std::vector<std::function<void()>> backward_;  // per trained node, lowered in reverse
};

}  // namespace convnet::engine
