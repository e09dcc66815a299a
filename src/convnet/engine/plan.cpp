// Compiling a plan (lowering, lifetimes, arena layout, binding) and running it.
#include "convnet/engine/plan.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "convnet/checked.hpp"
#include "convnet/cpu_features.hpp"
#include "convnet/engine/arena.hpp"
#include "convnet/engine/lowering.hpp"
#include "convnet/error.hpp"
#include "convnet/kernels/onednn/engine.hpp"

namespace convnet {
namespace {

std::string dims_string(const std::vector<int64_t>& dims) {
  std::string out;
  for (size_t i = 0; i < dims.size(); ++i) out += (i ? "x" : "") + std::to_string(dims[i]);
  return out;
}

/// Floats needed to hold `bytes` (rounded up), for the arena and scratchpad tensors.
int64_t floats_for(int64_t bytes) { return checked_add(bytes, 3, "plan memory") / 4; }

}  // namespace

const char* dtype_name(DType dtype) {
  return dtype == DType::BF16 ? "bf16" : dtype == DType::Int8 ? "int8" : "f32";
}

DType parse_dtype(const std::string& text, const std::string& what) {
  if (text == "f32") return DType::F32;
  if (text == "bf16") return DType::BF16;
  if (text == "int8") return DType::Int8;
  throw SpecError(what + ": unknown precision '" + text + "' (choose f32, bf16 or int8)");
}

std::string dtype_unsupported_reason(DType dtype) {
  const CpuFeatures& cpu = cpu_features();
  if (dtype == DType::F32) return "";
  if (dtype == DType::Int8) {
    if (cpu.avx512_vnni || cpu.amx_int8) return "";
    return "int8 needs a CPU with AVX512_VNNI or AMX (this one: " + cpu.describe() + ")";
  }
  if (!cpu.onednn_bf16) return "bf16 needs a CPU with AVX512_BF16 or AMX (this one: " + cpu.describe() + ")";
  if (cpu.onednn_isa == "avx512_core_amx") return "";
  // AVX512_BF16 without AMX: fast only where its dot products outrun f32 FMAs.
  if (const double ratio = dot_throughput().bf16; ratio < 1.0) {
    char figure[32];
    std::snprintf(figure, sizeof figure, "%.2f", ratio);
    return std::string("this CPU computes bf16 dot products at ") + figure +
           "x its f32 FMA rate (AVX512_BF16 without AMX), so bf16 would run slower than f32";
  }
  return "";
}

Plan::Plan(const Net& net, ParamStore& params, onednn::Engine& engine, PlanOptions options)
    : net_(net), params_(params), options_(std::move(options)), compiled_(std::make_unique<Compiled>()) {
  if (options_.batch < 1) throw Error("plan: the batch size must be at least 1");
  if (options_.dtype == DType::Int8 && options_.ranges.size() != net.nodes().size()) {
    throw Error("plan: an int8 plan needs every node's calibrated range (" + std::to_string(options_.ranges.size()) +
                " given for " + std::to_string(net.nodes().size()) + " nodes)");
  }
  if (options_.dtype == DType::Int8 && options_.training) {
    throw Error("plan: int8 is for inference (post-training quantization); train in f32 or bf16");
  }
  if (const std::string why = dtype_unsupported_reason(options_.dtype); !why.empty() && options_.allocate) {
    if (!options_.emulate) throw Error(why + "; --emulate runs it anyway");
    if (options_.dtype == DType::BF16 && !cpu_features().onednn_avx512) {
      throw Error(why + "; oneDNN cannot emulate it without AVX-512 either");
    }
  }
  Compiled& c = *compiled_;
  c.engine = engine.engine();
  c.stream = engine.stream();
  if (options_.training && options_.allocate) params.allocate_grads();  // the backward adds into them
  engine::lower(net, params, options_, c);
  if (options_.dtype == DType::Int8) c.weights_version = params.version();  // quantized while lowering
  if (options_.allocate) c.fold_buffer = Tensor({c.fold_floats});
  c.weight_bytes = checked_add(c.weight_bytes, c.fold_floats * 4, "plan memory");
  c.user_inputs.assign(c.input_values.size(), nullptr);

  // Lifetimes: each storage lives from the first to the last op that touches one of its values.
  const int end = static_cast<int>(c.ops.size());
  auto touch = [&](int value, int op) {
    engine::Storage& s = c.storages[static_cast<size_t>(c.values[static_cast<size_t>(value)].storage)];
    s.first = s.first < 0 ? op : std::min(s.first, op);
    s.last = std::max(s.last, op);
  };
  for (int i = 0; i < end; ++i) {
    for (const auto& [arg, v] : c.ops[static_cast<size_t>(i)].value_args) touch(v, i);
    for (int v : c.ops[static_cast<size_t>(i)].host_values) touch(v, i);
  }
  std::vector<BufferLifetime> lifetimes;
  for (engine::Storage& s : c.storages) {
    if (s.first < 0) s.first = s.last = 0;
    if (s.pinned) s.last = end;
    lifetimes.push_back({s.bytes, s.first, s.last});
  }
  const ArenaLayout layout = plan_arena(lifetimes);
  for (size_t i = 0; i < c.storages.size(); ++i) c.storages[i].offset = layout.offsets[i];
  int64_t scratch = 0;
  for (const engine::Op& op : c.ops) scratch = std::max(scratch, static_cast<int64_t>(op.scratchpad.get_size()));
  c.arena_bytes = floats_for(layout.bytes) * 4;
  c.scratchpad_bytes = floats_for(scratch) * 4;
  c.output_bytes = checked_mul(net.node(net.output()).output.numel(), checked_mul(options_.batch, 4, "plan output"),
                               "plan output");
  c.node_seconds.assign(net.nodes().size(), 0.0);
  c.node_backward_seconds.assign(net.nodes().size(), 0.0);
  // A node's parameter gradients are written by backward ops charged to it; they are final after
  // the last of them (or, for a node none is charged to, after the last op of all).
  c.grads_final_after.assign(c.ops.size(), {});
  if (options_.training && !c.ops.empty()) {
    std::vector<size_t> last(net.nodes().size(), c.ops.size() - 1);  // per node: its last backward op
    for (size_t i = static_cast<size_t>(c.forward_ops); i < c.ops.size(); ++i) {
      if (c.ops[i].node >= 0) last[static_cast<size_t>(c.ops[i].node)] = i;
    }
    for (size_t n = 0; n < net.nodes().size(); ++n) {
      if (net.nodes()[n].learnable()) c.grads_final_after[last[n]].push_back(static_cast<int>(n));
    }
  }
  if (!options_.allocate) return;

  // Binding: every argument of every op is a fixed memory now; one scratchpad serves all ops.
  c.arena = Tensor({c.arena_bytes / 4});
  c.scratchpad = Tensor({c.scratchpad_bytes / 4});
  auto* base = reinterpret_cast<char*>(c.arena.data());
  auto address = [&](int value) {
    return base + c.storages[static_cast<size_t>(c.values[static_cast<size_t>(value)].storage)].offset;
  };
  for (engine::Op& op : c.ops) {
    op.bound = op.fixed_args;
    for (const auto& [arg, v] : op.value_args) {
      op.bound[arg] = dnnl::memory(c.values[static_cast<size_t>(v)].desc, c.engine, address(v));
    }
    if (op.scratchpad.get_size() > 0) {
      op.bound[DNNL_ARG_SCRATCHPAD] = dnnl::memory(op.scratchpad, c.engine, c.scratchpad.data());
    }
    for (const auto& [arg, memory] : op.bound) op.c_args.push_back({arg, memory.get()});
    for (int v : op.host_values) {
      const auto dims = c.values[static_cast<size_t>(v)].desc.dims();
      op.views.push_back(Tensor::view(reinterpret_cast<float*>(address(v)), {dims.begin(), dims.end()}));
    }
  }
}

Plan::~Plan() = default;

const Tensor& Plan::forward(std::span<const Tensor* const> inputs) {
  Compiled& c = *compiled_;
  if (!options_.allocate) throw Error("plan: compiled for its sizes only (allocate = false); it cannot run");
  if (inputs.size() != net_.inputs().size()) {
    throw ShapeError(net_.name() + ": expected " + std::to_string(net_.inputs().size()) + " input tensor(s), got " +
                     std::to_string(inputs.size()));
  }
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Node& node = net_.node(net_.inputs()[k]);
    const auto& dims = inputs[k]->dims();
    const auto& shape = node.output.dims();
    if (dims.size() != shape.size() + 1 || dims[0] != options_.batch ||
        !std::equal(shape.begin(), shape.end(), dims.begin() + 1)) {
      throw ShapeError(net_.name() + ": input '" + node.name + "' must be " + std::to_string(options_.batch) + "x" +
                       node.output.chw_string() + " for this plan, got " + dims_string(dims));
    }
    c.user_inputs[k] = inputs[k]->data();
  }
  if (c.weights_version != params_.version()) {
    if (options_.dtype == DType::Int8) {
      throw Error("plan: an int8 plan quantizes the weights it was compiled with; compile a new one after they change");
    }
    for (auto& update : c.weight_updates) update();
    c.weights_version = params_.version();
  }
  run_ops(0, c.forward_ops, c.node_seconds);
  forwarded_ = true;
  return c.output;
}

void Plan::backward(const Tensor& grad_output, bool accumulate, const std::function<void(int node)>& on_grads_final) {
  Compiled& c = *compiled_;
  if (!options_.training) throw Error("plan: backward needs a plan compiled for training (PlanOptions::training)");
  if (!forwarded_) throw Error("plan: backward needs a forward first");
  if (grad_output.dims() != c.output.dims()) {
    throw ShapeError("backward: the output gradient must be " + dims_string(c.output.dims()) + ", got " +
                     dims_string(grad_output.dims()));
  }
  c.user_grad_output = grad_output.data();
  const std::span<float> grads = params_.grad_block();
  if (accumulate) {  // gradients so far, added back after the backward overwrote them
    if (c.saved_grads.numel() != static_cast<int64_t>(grads.size())) c.saved_grads = Tensor({static_cast<int64_t>(grads.size())});
    std::copy(grads.begin(), grads.end(), c.saved_grads.data());
  }
  run_ops(c.forward_ops, static_cast<int>(c.ops.size()), c.node_backward_seconds,
          accumulate ? std::function<void(int)>() : on_grads_final);
  if (accumulate) {
    const float* saved = c.saved_grads.data();
    for (size_t i = 0; i < grads.size(); ++i) grads[i] += saved[i];
    if (on_grads_final) {
      for (const std::vector<int>& nodes : c.grads_final_after) {
        for (int node : nodes) on_grads_final(node);
      }
    }
  }
}

void Plan::run_ops(int begin, int end, std::vector<double>& seconds, const std::function<void(int node)>& on_grads_final) {
  Compiled& c = *compiled_;
  for (int i = begin; i < end; ++i) {
    engine::Op& op = c.ops[static_cast<size_t>(i)];
    if (options_.poison_dead) poison_dead_storages(i);
    const auto start = std::chrono::steady_clock::now();
    if (op.host) {
      op.host(op.views);
    } else {
      const dnnl_status_t status = dnnl_primitive_execute(op.primitive.get(), c.stream.get(),
                                                          static_cast<int>(op.c_args.size()), op.c_args.data());
      if (status != dnnl_success) throw Error("plan: oneDNN failed in " + op.info.label + " (status " + std::to_string(status) + ")");
    }
    if (c.profiling && op.node >= 0) {
      c.stream.wait();
      seconds[static_cast<size_t>(op.node)] += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    if (on_grads_final && !c.grads_final_after[static_cast<size_t>(i)].empty()) {
      c.stream.wait();
      for (int node : c.grads_final_after[static_cast<size_t>(i)]) on_grads_final(node);
    }
  }
  c.stream.wait();
}

void Plan::poison_dead_storages(int op) {
  // Every arena byte that no storage live at this op covers becomes 0xFF: NaN as f32 and as bf16.
  Compiled& c = *compiled_;
  std::vector<bool> live(static_cast<size_t>(c.arena.numel()), false);
  for (const engine::Storage& s : c.storages) {
    if (op < s.first || op > s.last) continue;
    std::fill_n(live.begin() + s.offset / 4, (s.bytes + 3) / 4, true);
  }
  auto* bytes = reinterpret_cast<unsigned char*>(c.arena.data());
  for (int64_t i = 0; i < c.arena.numel(); ++i) {
    if (!live[static_cast<size_t>(i)]) std::memset(bytes + i * 4, 0xFF, 4);
  }
}

Tensor Plan::tap(const std::string& name) const {
  const Compiled& c = *compiled_;
  const int node = net_.find(name);
  if (node < 0) throw Error("plan: no layer named '" + name + "' in " + net_.name());
  bool tapped = false;
  for (const std::string& t : options_.taps) tapped = tapped || t == name;
  if (!tapped) throw Error("plan: '" + name + "' was not tapped when the plan was compiled (PlanOptions::taps)");
  const engine::Value& v = c.values[static_cast<size_t>(c.value_of[static_cast<size_t>(node)])];
  const auto dims = v.desc.dims();
  Tensor out(std::vector<int64_t>(dims.begin(), dims.end()));
  const char* base = reinterpret_cast<const char*>(c.arena.data());
  dnnl::memory src(v.desc, c.engine, const_cast<char*>(base) + c.storages[static_cast<size_t>(v.storage)].offset);
  dnnl::memory dst(engine::plain_desc(dims), c.engine, out.data());
  dnnl::stream stream = c.stream;
  dnnl::primitive_attr attr;
  if (v.scale != 1.0F) attr.set_output_scales(0, {v.scale});  // int8: the real values
  dnnl::reorder(dnnl::reorder::primitive_desc(src, dst, attr)).execute(stream, src, dst);
  stream.wait();
  std::vector<int64_t> logical{options_.batch};
  logical.insert(logical.end(), net_.node(node).output.dims().begin(), net_.node(node).output.dims().end());
  out.reshape(logical);
  return out;
}

int64_t Plan::arena_bytes() const { return compiled_->arena_bytes; }
int64_t Plan::scratchpad_bytes() const { return compiled_->scratchpad_bytes; }
int64_t Plan::weight_bytes() const { return compiled_->weight_bytes; }
int64_t Plan::peak_bytes() const {
  return arena_bytes() + scratchpad_bytes() + weight_bytes() + compiled_->output_bytes;
}

std::vector<PlanStep> Plan::describe() const {
  std::vector<PlanStep> out;
  for (const engine::Op& op : compiled_->ops) out.push_back(op.info);
  return out;
}

std::vector<NodeQuantization> Plan::node_quantization() const {
  const Compiled& c = *compiled_;
  std::vector<NodeQuantization> out(c.value_of.size());
  for (size_t i = 0; i < out.size(); ++i) {
    NodeQuantization& q = out[i];
    q.value = c.value_of[i];
    if (q.value < 0) continue;
    const engine::Value& v = c.values[static_cast<size_t>(q.value)];
    const auto type = v.desc.data_type();
    q.quantized = type == dnnl::memory::data_type::u8 || type == dnnl::memory::data_type::s8;
    q.is_unsigned = type == dnnl::memory::data_type::u8;
    q.scale = v.scale;
    if (i < c.weight_scales.size()) q.weight_scales = c.weight_scales[i];
  }
  return out;
}

void Plan::set_profiling(bool on) {
  compiled_->profiling = on;
  compiled_->node_seconds.assign(net_.nodes().size(), 0.0);
  compiled_->node_backward_seconds.assign(net_.nodes().size(), 0.0);
}

const std::vector<double>& Plan::node_seconds() const { return compiled_->node_seconds; }
const std::vector<double>& Plan::node_backward_seconds() const { return compiled_->node_backward_seconds; }

PlanMemory plan_memory(const Net& net, int64_t batch, bool training, DType dtype) {
  ParamStore params(net, false);
  onednn::Engine engine;
  std::mt19937_64 unused_rng;  // dropout's generator: no mask is drawn in a sizes-only plan
  PlanOptions options;
  options.batch = batch;
  options.training = training;
  options.dtype = dtype;
  options.rng = &unused_rng;
  options.allocate = false;
  const Plan plan(net, params, engine, options);
  return {plan.arena_bytes(), plan.scratchpad_bytes(), plan.weight_bytes(),
          plan.peak_bytes() - plan.arena_bytes() - plan.scratchpad_bytes() - plan.weight_bytes(), plan.peak_bytes()};
}

}  // namespace convnet
