// Compiling a plan (lowering, lifetimes, arena layout, binding) and running it.
#include "convnet/engine/plan.hpp"

#include <algorithm>
#include <chrono>
#include <limits>

#include "convnet/checked.hpp"
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

Plan::Plan(const Net& net, ParamStore& params, onednn::Engine& engine, PlanOptions options)
    : net_(net), params_(params), options_(std::move(options)), compiled_(std::make_unique<Compiled>()) {
  if (options_.batch < 1) throw Error("plan: the batch size must be at least 1");
  Compiled& c = *compiled_;
  c.engine = engine.engine();
  c.stream = engine.stream();
  if (options_.training && options_.allocate) params.allocate_grads();  // the backward adds into them
  engine::lower(net, params, options_, c);
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
    for (auto& update : c.weight_updates) update();
    c.weights_version = params_.version();
  }
  run_ops(0, c.forward_ops, c.node_seconds);
  forwarded_ = true;
  return c.output;
}

void Plan::backward(const Tensor& grad_output, bool accumulate) {
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
  run_ops(c.forward_ops, static_cast<int>(c.ops.size()), c.node_backward_seconds);
  if (accumulate) {
    const float* saved = c.saved_grads.data();
    for (size_t i = 0; i < grads.size(); ++i) grads[i] += saved[i];
  }
}

void Plan::run_ops(int begin, int end, std::vector<double>& seconds) {
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
  }
  c.stream.wait();
}

void Plan::poison_dead_storages(int op) {
  // Every arena float that no storage live at this op covers becomes NaN.
  Compiled& c = *compiled_;
  std::vector<bool> live(static_cast<size_t>(c.arena.numel()), false);
  for (const engine::Storage& s : c.storages) {
    if (op < s.first || op > s.last) continue;
    std::fill_n(live.begin() + s.offset / 4, (s.bytes + 3) / 4, true);
  }
  for (int64_t i = 0; i < c.arena.numel(); ++i) {
    if (!live[static_cast<size_t>(i)]) c.arena[i] = std::numeric_limits<float>::quiet_NaN();
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
  dnnl::reorder(src, dst).execute(stream, src, dst);
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

void Plan::set_profiling(bool on) {
  compiled_->profiling = on;
  compiled_->node_seconds.assign(net_.nodes().size(), 0.0);
  compiled_->node_backward_seconds.assign(net_.nodes().size(), 0.0);
}

const std::vector<double>& Plan::node_seconds() const { return compiled_->node_seconds; }
const std::vector<double>& Plan::node_backward_seconds() const { return compiled_->node_backward_seconds; }

PlanMemory plan_memory(const Net& net, int64_t batch, bool training) {
  ParamStore params(net, false);
  onednn::Engine engine;
  std::mt19937_64 unused_rng;  // dropout's generator: no mask is drawn in a sizes-only plan
  PlanOptions options;
  options.batch = batch;
  options.training = training;
  options.rng = &unused_rng;
  options.allocate = false;
  const Plan plan(net, params, engine, options);
  return {plan.arena_bytes(), plan.scratchpad_bytes(), plan.weight_bytes(),
          plan.peak_bytes() - plan.arena_bytes() - plan.scratchpad_bytes() - plan.weight_bytes(), plan.peak_bytes()};
}

}  // namespace convnet
