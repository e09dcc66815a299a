// Tower split: the stages between exchanges, built as model text, and the exchanges themselves.
#include "convnet/distributed/towers.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "convnet/layers/conv2d.hpp"
#include "convnet/layers/linear.hpp"
#include "convnet/model/model.hpp"

namespace convnet {
namespace {

enum class After { Nothing, Exchange, Slice };  // what joins a stage to the next

// Layers that act on each channel alone: they run on whatever slice they are given.
const std::set<std::string> kPerChannel = {"relu",    "leakyrelu", "elu",           "sigmoid",  "tanh",
                                           "maxpool", "avgpool",   "globalavgpool", "batchnorm"};
// Layers that must see every channel: LRN sums over neighbouring channels; dropout's mask (and
// flatten's and softmax's meaning) is the whole volume's.
const std::set<std::string> kWholeVolume = {"lrn", "dropout", "flatten", "softmax"};

std::string shape_text(const Shape& shape) {
  std::string out;
  for (int64_t d : shape.dims()) out += (out.empty() ? "" : "x") + std::to_string(d);
  return out;
}

// Where rank r's slice of a parameter lies: the r-th of T equal first-dimension chunks, or the
// whole tensor when it has no first dimension to cut (a count such as num_batches_tracked).
std::pair<int64_t, int64_t> slice_of(const Tensor& full, int rank, int towers) {
  if (full.dims().empty() || full.dim(0) % towers != 0 || full.dim(0) == 1) return {0, full.numel()};
  const int64_t chunk = full.numel() / towers;
  return {chunk * rank, chunk};
}

// Channel part `rank` of `towers` of every image of (N, C, ...) `whole` into (N, C / towers, ...) `part`.
void take_part(const Tensor& whole, int towers, int rank, Tensor& part) {
  const int64_t batch = whole.dim(0), per_image = whole.numel() / batch, size = per_image / towers;
  for (int64_t n = 0; n < batch; ++n) {
    const float* from = whole.data() + n * per_image + rank * size;
    std::copy(from, from + size, part.data() + n * size);
  }
}

// The reverse: `part` ((N, C / towers, ...) values) written as channel part `rank` of `whole`.
void put_part(const float* part, int towers, int rank, Tensor& whole) {
  const int64_t batch = whole.dim(0), per_image = whole.numel() / batch, size = per_image / towers;
  for (int64_t n = 0; n < batch; ++n) std::copy(part + n * size, part + (n + 1) * size, whole.data() + n * per_image + rank * size);
}

// `t` as a tensor of `dims`, reallocated only when they change (the same every step).
Tensor& sized(Tensor& t, const std::vector<int64_t>& dims) {
  if (t.dims() != dims) t = Tensor(dims);
  return t;
}

}  // namespace

struct TowerSplit::Stage {
  std::string text;                                // model text
  int layers = 0;                                  // 0: no net, the boundary only
  std::unique_ptr<Net> net;
  std::unique_ptr<Executor> executor;
  After after = After::Nothing;
  std::vector<std::pair<size_t, size_t>> nodes;    // (stage node, full node) of every parameterised node
  std::map<std::string, std::string> names;        // stage node name -> the full net's
  Tensor output;                                   // after the boundary
  Tensor gathered;                                 // an exchange's every-rank parts, rank-major
};

TowerSplit::TowerSplit(const Net& full, ParamStore& full_params, Communicator& comm, const ExecutorOptions& options)
    : comm_(comm), rng_(options.seed) {
  const int towers = comm_.size();
  auto refuse = [&](const Node& node, const std::string& why) {
    throw SpecError("--towers " + std::to_string(towers) + ": " + node.name + " (" + node.layer->kind() + "): " + why);
  };
  const auto& nodes = full.nodes();
  if (full.inputs().size() != 1) throw SpecError("--towers splits networks with one input");
  bool split = false;                // the current activation holds this rank's slice only
  Shape shape = full.node(full.inputs()[0]).output;
  auto stage = std::make_unique<Stage>();
  auto begin_stage = [&](const Shape& input) { stage->text = "network tower\ninput " + shape_text(input) + "\n"; };
  auto finish = [&](After after, const Shape& next_input) {
    stage->after = after;
    stages_.push_back(std::move(stage));
    stage = std::make_unique<Stage>();
    begin_stage(next_input);
  };
  begin_stage(shape);
  int previous = full.inputs()[0];
  for (size_t n = 0; n < nodes.size(); ++n) {
    const Node& node = nodes[n];
    if (node.inputs.empty()) continue;
    if (node.inputs.size() != 1 || node.inputs[0] != previous) refuse(node, "only a chain of layers splits into towers");
    previous = static_cast<int>(n);
    const std::string kind = node.layer->kind();
    std::string args = node.layer->args();
    enum { Keep, Whole, Slices } needs = Keep;
    int64_t channels = 0;
    if (const auto* conv = dynamic_cast<const Conv2d*>(node.layer.get())) {
      Conv2dOptions o = conv->options();
      channels = o.out_channels;
      needs = o.groups % towers == 0 ? Slices : Whole;
      if (o.groups != 1 && needs == Whole) refuse(node, "its groups do not divide among the towers");
      o.out_channels /= towers;
      if (needs == Slices) o.groups /= towers;
      args = Conv2d(o).args();
    } else if (const auto* fc = dynamic_cast<const Linear*>(node.layer.get())) {
      LinearOptions o = fc->options();
      channels = o.out_features;
      needs = Whole;
      o.out_features /= towers;
      args = Linear(o).args();
    } else if (kWholeVolume.count(kind) != 0) {
      needs = Whole;
    } else if (kPerChannel.count(kind) == 0) {
      refuse(node, "no tower split for this kind of layer");
    }
    if (channels % towers != 0) refuse(node, std::to_string(channels) + " outputs do not divide among the towers");
    if (needs == Whole && split) {
      finish(After::Exchange, shape);
      split = false;
    } else if (needs == Slices && !split) {
      std::vector<int64_t> dims = shape.dims();
      dims[0] /= towers;
      finish(After::Slice, Shape(dims));
      split = true;
    }
    if (needs == Keep && !split && !node.params.empty()) {
      refuse(node, "a layer with parameters on a volume every tower holds whole (after an exchange)");
    }
    stage->text += "t" + std::to_string(n) + " " + kind + (args.empty() ? "" : " " + args) + "\n";
    ++stage->layers;
    if (!node.params.empty()) {
      stage->nodes.emplace_back(stage->layers, n);  // node 0 is the input
      stage->names["t" + std::to_string(n)] = node.name;
    }
    if (channels > 0) split = true;
    shape = node.output;
  }
  finish(split ? After::Exchange : After::Nothing, shape);
  // Build each stage, every executor computing input gradients but the first (it reads images).
  for (size_t s = 0; s < stages_.size(); ++s) {
    Stage& st = *stages_[s];
    if (st.layers == 0) continue;
    st.net = std::make_unique<Net>(load_model_text(st.text, "tower stage " + std::to_string(s)));
    st.executor = std::make_unique<Executor>(*st.net, options);
    if (s > 0) st.executor->set_input_gradients(true);
    for (const auto& [local, global] : st.nodes) {
      for (size_t p = 0; p < st.net->nodes()[local].params.size(); ++p) {
        const Tensor part = slice(full_params.values(global)[p]);
        Tensor& mine = st.executor->parameter_store().values(local)[p];
        if (mine.numel() != part.numel()) throw Error("--towers: " + nodes[global].name + ": slice size mismatch");
        std::copy(part.data(), part.data() + part.numel(), mine.data());
      }
    }
    st.executor->parameters_changed();
    st.executor->parameter_store().bump_version();
  }
}

TowerSplit::~TowerSplit() = default;

const Tensor& TowerSplit::forward(const Tensor& images, bool training) {
  const int towers = comm_.size();
  const Tensor* x = &images;
  for (auto& stage : stages_) {
    if (stage->executor) {
      stage->executor->rng() = rng_;  // one dropout stream, drawn in the single-process order
      x = &stage->executor->forward(*x, training);
      rng_ = stage->executor->rng();
    }
    std::vector<int64_t> dims = x->dims();
    switch (stage->after) {
      case After::Nothing:
        stage->output = *x;
        break;
      case After::Exchange: {  // (N, c, ...) per rank -> (N, T c, ...): rank r's channels at r c
        Tensor& gathered = sized(stage->gathered, {static_cast<int64_t>(towers) * x->numel()});
        comm_.all_gather(x->span(), gathered.span());
        dims[1] *= towers;
        for (int r = 0; r < towers; ++r) put_part(gathered.data() + r * x->numel(), towers, r, sized(stage->output, dims));
        break;
      }
      case After::Slice:  // (N, C, ...) -> (N, C / T, ...): this rank's channels
        dims[1] /= towers;
        take_part(*x, towers, comm_.rank(), sized(stage->output, dims));
        break;
    }
    x = &stage->output;
  }
  return *x;
}

void TowerSplit::backward(const Tensor& grad_logits) {
  const int towers = comm_.size();
  // Gradients of a volume every rank holds whole are partial per rank (their sum is the gradient):
  // the logits' gradient enters once, on rank 0.
  Tensor grad = comm_.rank() == 0 ? grad_logits : Tensor(grad_logits.dims());
  for (size_t s = stages_.size(); s-- > 0;) {
    Stage& stage = *stages_[s];
    std::vector<int64_t> dims = grad.dims();
    switch (stage.after) {
      case After::Nothing:
        break;
      case After::Exchange: {  // sum the partial gradients over ranks, keep this rank's channels
        comm_.sum(grad.span(), true);
        dims[1] /= towers;
        Tensor mine(dims);
        take_part(grad, towers, comm_.rank(), mine);
        grad = std::move(mine);
        break;
      }
      case After::Slice: {  // this rank's channels' gradient, zero elsewhere
        dims[1] *= towers;
        Tensor whole(dims);
        put_part(grad.data(), towers, comm_.rank(), whole);
        grad = std::move(whole);
        break;
      }
    }
    if (stage.executor) {
      stage.executor->backward(grad);
      if (s > 0) grad = stage.executor->input_gradient(0);
    }
  }
}

void TowerSplit::zero_grad() {
  for (auto& stage : stages_) {
    if (stage->executor) stage->executor->zero_grad();
  }
}

std::vector<NamedParameter> TowerSplit::named_parameters() {
  std::vector<NamedParameter> out;
  for (auto& stage : stages_) {
    if (!stage->executor) continue;
    for (NamedParameter& p : stage->executor->named_parameters()) {
      const size_t dot = p.name.find('.');
      p.name = stage->names.at(p.name.substr(0, dot)) + p.name.substr(dot);
      out.push_back(p);
    }
  }
  return out;
}

void TowerSplit::gather(ParamStore& full_params) {
  for (auto& stage : stages_) {
    if (!stage->executor) continue;
    for (const auto& [local, global] : stage->nodes) {
      for (size_t p = 0; p < stage->net->nodes()[local].params.size(); ++p) {
        Tensor& whole = full_params.values(global)[p];
        const Tensor all = gather(stage->executor->parameter_store().values(local)[p], whole.dims());
        std::copy(all.data(), all.data() + all.numel(), whole.data());
      }
    }
  }
  full_params.bump_version();
}

Tensor TowerSplit::slice(const Tensor& full) const {
  const auto [offset, count] = slice_of(full, comm_.rank(), comm_.size());
  std::vector<int64_t> dims = full.dims();
  if (count != full.numel()) dims[0] /= comm_.size();
  Tensor out(dims);
  std::copy(full.data() + offset, full.data() + offset + count, out.data());
  return out;
}

Tensor TowerSplit::gather(const Tensor& mine, const std::vector<int64_t>& full_dims) {
  Tensor full(full_dims);
  if (mine.numel() == full.numel()) {
    std::copy(mine.data(), mine.data() + mine.numel(), full.data());
  } else {
    comm_.all_gather(mine.span(), full.span());
  }
  return full;
}

std::string TowerSplit::describe() const {
  std::string out;
  for (size_t s = 0; s < stages_.size(); ++s) {
    const Stage& st = *stages_[s];
    out += "stage " + std::to_string(s) + ":";
    if (st.net) {
      for (const Node& node : st.net->nodes()) {
        if (!node.inputs.empty()) out += " " + node.layer->kind();
      }
    }
    out += st.after == After::Exchange ? " -> exchange\n" : st.after == After::Slice ? " -> slice\n" : "\n";
  }
  return out;
}

}  // namespace convnet
