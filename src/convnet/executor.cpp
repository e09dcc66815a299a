// Forward, backward and the inference memory plan.
#include "convnet/executor.hpp"

#include <algorithm>
#include <chrono>

#include "convnet/checked.hpp"
#include "convnet/error.hpp"
#include "convnet/init.hpp"
#include "convnet/kernels/onednn/engine.hpp"

namespace convnet {
namespace {

std::vector<int64_t> batched(int64_t batch, const Shape& shape) {
  std::vector<int64_t> dims{batch};
  dims.insert(dims.end(), shape.dims().begin(), shape.dims().end());
  return dims;
}

std::string dims_string(const std::vector<int64_t>& dims) {
  std::string out;
  for (size_t i = 0; i < dims.size(); ++i) out += (i ? "x" : "") + std::to_string(dims[i]);
  return out;
}

}  // namespace

Executor::Executor(Net& net, ExecutorOptions options) : net_(net), options_(options), rng_(options.seed) {
  if (options_.backend == Backend::OneDnn) engine_ = std::make_unique<onednn::Engine>();
  context_.backend = options_.backend;
  context_.engine = engine_.get();
  context_.rng = &rng_;
  const size_t n = net_.nodes().size();
  store_ = std::make_unique<ParamStore>(net_);
  owned_.resize(n);
  values_.assign(n, nullptr);
  grad_values_.resize(n);
  last_reader_.assign(n, -1);
  for (size_t i = 0; i < n; ++i) {
    const Node& node = net_.nodes()[i];
    for (int input : node.inputs) last_reader_[static_cast<size_t>(input)] = static_cast<int>(i);
  }
  initialize_parameters(options_.seed);
}

Executor::~Executor() = default;

std::vector<NamedParameter> Executor::named_parameters() {
  params_dirty_ = true;
  grads_zero_ = false;  // the caller may write gradients through these pointers
  std::vector<NamedParameter> out;
  for (size_t i = 0; i < net_.nodes().size(); ++i) {
    const Node& node = net_.nodes()[i];
    auto& values = store_->values(i);
    auto& grads = store_->grads(i);
    for (size_t p = 0; p < values.size(); ++p) {
      const ParamSpec& spec = node.params[p];
      out.push_back({node.name + "." + spec.name, &values[p], spec.is_buffer ? nullptr : &grads[p], &spec});
    }
  }
  return out;
}

void Executor::initialize_parameters(uint64_t seed) {
  params_dirty_ = true;
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i < net_.nodes().size(); ++i) {
    const Node& node = net_.nodes()[i];
    auto& values = store_->values(i);
    for (size_t p = 0; p < values.size(); ++p) {
      const ParamSpec& spec = node.params[p];
      const int64_t fan_in = spec.input_fan();
      const int64_t fan_out = spec.dims.empty() ? 1 : spec.numel() / fan_in;
      initialize(values[p], spec.init, fan_in, fan_out, rng);
    }
  }
}

const Tensor& Executor::forward(const Tensor& input, bool training) {
  const Tensor* inputs[] = {&input};
  return forward(inputs, training);
}

const Tensor& Executor::forward(std::span<const Tensor* const> inputs, bool training) {
  if (inputs.size() != net_.inputs().size()) {
    throw ShapeError(net_.name() + ": expected " + std::to_string(net_.inputs().size()) + " input tensor(s), got " +
                     std::to_string(inputs.size()));
  }
  const int64_t batch = inputs.empty() || inputs[0]->dims().empty() ? 0 : inputs[0]->dim(0);
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Node& node = net_.node(net_.inputs()[k]);
    const auto& dims = inputs[k]->dims();
    const auto& shape = node.output.dims();
    if (batch < 1 || dims.size() != shape.size() + 1 || dims[0] != batch ||
        !std::equal(shape.begin(), shape.end(), dims.begin() + 1)) {  // compared without allocating
      const std::string expected =
          batch < 1 ? "N x " + node.output.chw_string() + " with N at least 1"
                    : dims_string(batched(batch, node.output)) + " (N x " + node.output.chw_string() + ")";
      throw ShapeError(net_.name() + ": input '" + node.name + "' must be " + expected + ", got " + dims_string(dims));
    }
    values_[static_cast<size_t>(net_.inputs()[k])] = inputs[k];
  }
  training_plan_ = nullptr;
  inference_backward_ = false;
  if (!training && options_.backend == Backend::OneDnn && options_.plan_inference && !input_gradients_) {
    return planned_forward(inputs, batch, false);
  }
  const bool reduced = options_.precision != DType::F32;
  if (training && options_.backend == Backend::OneDnn && options_.plan_training && training_plannable_ &&
      !input_gradients_) {
    try {
      return planned_forward(inputs, batch, true);
    } catch (const PlanUnsupported& e) {
      if (reduced) throw Error(std::string(dtype_name(options_.precision)) + " training needs a training plan: " + e.what());
      training_plannable_ = false;  // a layer kind without a training lowering: layer by layer from now on
    }
  }
  // Layer by layer is f32: for a reduced-precision executor only where asked for explicitly, by
  // wanting input gradients (calibration and the visualisations read f32 activations).
  if (reduced && !input_gradients_) {
    throw Error(std::string(dtype_name(options_.precision)) + " runs through compiled oneDNN plans only" +
                (options_.backend == Backend::OneDnn ? "" : ", not the reference kernels"));
  }
  params_dirty_ = true;  // a training step follows: the optimiser will change the values
  // With input gradients wanted, an inference forward keeps every output for a backward too.
  const bool keep = training || input_gradients_;
  if (keep) store_->allocate_grads();
  last_plan_ = nullptr;
  context_.training = training;
  context_.backward_follows = keep;
  trained_forward_ = keep;
  inference_backward_ = keep && !training;
  const auto& nodes = net_.nodes();
  for (size_t i = 0; i < nodes.size(); ++i) {
    const Node& node = nodes[i];
    if (node.inputs.empty()) continue;  // a network input, already placed
    std::vector<const Tensor*> in;
    for (int j : node.inputs) in.push_back(values_[static_cast<size_t>(j)]);
    std::vector<Tensor*> params;
    for (Tensor& t : store_->values(i)) params.push_back(&t);
    const auto j0 = static_cast<size_t>(node.inputs[0]);
    const bool reuse = !keep && node.layer->in_place() && node.inputs.size() == 1 && !owned_[j0].empty() &&
                       last_reader_[j0] == static_cast<int>(i) && static_cast<int>(j0) != net_.output();
    if (reuse) {
      owned_[i] = std::move(owned_[j0]);  // in place: the input's buffer becomes the output
      owned_[i].reshape(batched(batch, node.output));
      values_[j0] = nullptr;
      in[0] = &owned_[i];
    } else if (owned_[i].dims() != batched(batch, node.output)) {
      owned_[i] = Tensor(batched(batch, node.output));
    }
    values_[i] = &owned_[i];
    const auto start = std::chrono::steady_clock::now();
    node.layer->forward(context_, in, params, owned_[i]);
    if (profiling_) forward_seconds_[i] += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!keep) {
      // The memory plan: free every input whose last reader this was.
      for (int j : node.inputs) {
        const auto js = static_cast<size_t>(j);
        if (last_reader_[js] == static_cast<int>(i) && j != net_.output() && !owned_[js].empty()) {
          owned_[js] = Tensor();
          values_[js] = nullptr;
        }
      }
    }
  }
  return *values_[static_cast<size_t>(net_.output())];
}

const Tensor& Executor::planned_forward(std::span<const Tensor* const> inputs, int64_t batch, bool training) {
  trained_forward_ = false;
  if (params_dirty_) {
    store_->bump_version();
    params_dirty_ = false;
    if (options_.precision == DType::Int8) plans_.clear();  // they quantized the old weights
  }
  Plan* plan = nullptr;
  for (auto& p : plans_) {
    if (p->options().batch == batch && p->options().training == training) plan = p.get();
  }
  if (plan == nullptr) {
    // The training batch and its last partial batch, the evaluation batch and its last one.
    constexpr size_t kKeptPlans = 4;
    PlanOptions plan_options;
    plan_options.batch = batch;
    plan_options.layout = options_.plan_layout;
    plan_options.training = training;
    plan_options.rng = &rng_;
    plan_options.dtype = options_.precision;
    plan_options.emulate = options_.emulate;
    plan_options.ranges = options_.ranges;
    auto compiled = std::make_unique<Plan>(net_, *store_, *engine_, plan_options);  // may throw PlanUnsupported
    if (plans_.size() == kKeptPlans) plans_.erase(plans_.begin());
    plans_.push_back(std::move(compiled));
    plan = plans_.back().get();
    plan->set_profiling(profiling_);
  }
  last_plan_ = plan;
  const Tensor& out = plan->forward(inputs);
  if (training) {
    training_plan_ = plan;
    trained_forward_ = true;
    params_dirty_ = true;  // the optimiser will change the values before the next forward
  }
  if (profiling_) {
    const auto& seconds = plan->node_seconds();
    for (size_t i = 0; i < seconds.size(); ++i) forward_seconds_[i] += seconds[i];
    if (!training) plan->set_profiling(true);
  }
  return out;
}

void Executor::set_activation_ranges(std::vector<ActivationRange> ranges) {
  options_.ranges = std::move(ranges);
  plans_.clear();
  last_plan_ = nullptr;
  training_plan_ = nullptr;
}

void Executor::backward(const Tensor& grad_output, const std::function<void(int node)>& on_grads_final) {
  backward_from(net_.output(), grad_output, on_grads_final);
}

void Executor::backward_from(int node, const Tensor& grad, const std::function<void(int node)>& on_grads_final) {
  if (!trained_forward_) {
    throw Error("backward needs a forward in training mode first (or, with input gradients wanted, any forward)");
  }
  if (node < 0 || static_cast<size_t>(node) >= net_.nodes().size()) throw Error("backward: no such node");
  const Tensor& grad_output = grad;
  params_dirty_ = true;
  if (training_plan_ != nullptr) {
    if (node != net_.output()) throw Error("backward from an inner node needs input gradients wanted");
    training_plan_->backward(grad_output, !grads_zero_, on_grads_final);
    grads_zero_ = false;
    if (profiling_) {
      const auto& backward = training_plan_->node_backward_seconds();
      for (size_t i = 0; i < backward.size(); ++i) backward_seconds_[i] += backward[i];
      training_plan_->set_profiling(true);
    }
    return;
  }
  const auto out = static_cast<size_t>(node);
  if (grad_output.dims() != values_[out]->dims()) {
    throw ShapeError("backward: the gradient of '" + net_.node(node).name + "' must be " + dims_string(values_[out]->dims()) + ", got " +
                     dims_string(grad_output.dims()));
  }
  for (Tensor& g : grad_values_) {
    if (!g.empty()) spare_.push_back(std::move(g));
  }
  grad_values_[out] = take_buffer(grad_output.dims());
  std::copy(grad_output.data(), grad_output.data() + grad_output.numel(), grad_values_[out].data());
  const auto& nodes = net_.nodes();
  for (size_t i = nodes.size(); i-- > 0;) {
    const Node& node = nodes[i];
    if (node.inputs.empty() || grad_values_[i].empty()) continue;
    std::vector<const Tensor*> in;
    std::vector<GradTarget> targets;
    for (int j : node.inputs) {
      const auto js = static_cast<size_t>(j);
      in.push_back(values_[js]);
      const bool is_input = nodes[js].inputs.empty();
      if (is_input && !input_gradients_) {
        targets.push_back({});
      } else if (grad_values_[js].empty()) {
        grad_values_[js] = take_buffer(values_[js]->dims());  // written whole by the first gradient
        targets.push_back({&grad_values_[js], false});
      } else {
        targets.push_back({&grad_values_[js], true});  // a fan-out: sum the branches' gradients
      }
    }
    // The same tensor read twice by one layer: its second gradient adds to the first.
    for (size_t a = 0; a < targets.size(); ++a) {
      for (size_t b = 0; b < a; ++b) {
        if (targets[a].tensor != nullptr && targets[a].tensor == targets[b].tensor) targets[a].accumulate = true;
      }
    }
    std::vector<Tensor*> params;
    std::vector<Tensor*> grads;
    for (size_t p = 0; p < node.params.size(); ++p) {
      params.push_back(&store_->values(i)[p]);
      grads.push_back(node.params[p].is_buffer ? nullptr : &store_->grads(i)[p]);
    }
    const auto start = std::chrono::steady_clock::now();
    node.layer->backward(context_, in, *values_[i], grad_values_[i], params, grads, targets);
    if (profiling_) backward_seconds_[i] += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (i != out) spare_.push_back(std::move(grad_values_[i]));  // consumed
  }
  grads_zero_ = false;
  if (on_grads_final) {
    for (size_t i = nodes.size(); i-- > 0;) {
      if (nodes[i].learnable()) on_grads_final(static_cast<int>(i));
    }
  }
}

Tensor Executor::take_buffer(const std::vector<int64_t>& dims) {
  const int64_t numel = checked_product(dims, "gradient element count");
  for (size_t k = 0; k < spare_.size(); ++k) {
    if (spare_[k].numel() != numel) continue;
    Tensor out = std::move(spare_[k]);
    spare_[k] = std::move(spare_.back());
    spare_.pop_back();
    out.reshape(dims);
    return out;
  }
  return Tensor(dims);
}

void Executor::set_input_gradients(bool wanted) {
  input_gradients_ = wanted;
  if (!wanted && inference_backward_) trained_forward_ = false;  // backward again needs a training forward
  inference_backward_ = false;
}

void Executor::set_profiling(bool on) {
  profiling_ = on;
  for (auto& plan : plans_) plan->set_profiling(on);
  forward_seconds_.assign(net_.nodes().size(), 0.0);
  backward_seconds_.assign(net_.nodes().size(), 0.0);
}

void Executor::zero_grad() {
  store_->zero_grad();
  grads_zero_ = true;
}

const Tensor& Executor::input_gradient(size_t input_index) const {
  const Tensor& g = grad_values_.at(static_cast<size_t>(net_.inputs().at(input_index)));
  if (g.empty()) throw Error("no input gradient: call set_input_gradients(true) before backward");
  return g;
}

}  // namespace convnet
