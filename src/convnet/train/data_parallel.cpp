// Data-parallel steps: the fast bucketed all-reduce and the deterministic group tree.
#include "convnet/train/data_parallel.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "convnet/error.hpp"
#include "convnet/loss.hpp"

namespace convnet {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

bool power_of_two(int64_t n) { return n > 0 && (n & (n - 1)) == 0; }

constexpr uint64_t kDropoutStream = 0x64726f706f7574ULL;  // "dropout"

}  // namespace

DataParallel::DataParallel(Communicator& comm, Executor& executor, DataParallelOptions options)
    : comm_(comm), executor_(executor), options_(options) {
  const int64_t ranks = comm_.size();
  if (options_.groups > 0) {
    if (!power_of_two(options_.groups) || !power_of_two(ranks) || options_.groups % ranks != 0) {
      throw SpecError("--deterministic sums " + std::to_string(options_.groups) + " gradient groups per batch in a "
                      "fixed tree: the groups (--groups) must be a power of two and a multiple of the ranks (" +
                      std::to_string(ranks) + "), themselves a power of two");
    }
  }
  // Buckets of whole nodes, from the last node back (the order their gradients complete in), each
  // reaching from its first node's first gradient to where the next bucket begins.
  ParamStore& store = executor_.parameter_store();
  const std::span<float> block = store.grad_block();
  const auto& nodes = executor_.net().nodes();
  bucket_of_node_.assign(nodes.size(), -1);
  const int64_t bucket_floats = std::max<int64_t>(options_.bucket_bytes / 4, 1);
  for (size_t n = nodes.size(); n-- > 0;) {
    if (!nodes[n].learnable()) continue;
    int64_t begin = static_cast<int64_t>(block.size());
    for (const Tensor& g : store.grads(n)) {
      if (!g.empty()) begin = std::min<int64_t>(begin, g.data() - block.data());
    }
    if (buckets_.empty() || buckets_.back().second - buckets_.back().first >= bucket_floats) {
      const int64_t end = buckets_.empty() ? static_cast<int64_t>(block.size()) : buckets_.back().first;
      buckets_.emplace_back(end, end);
      waiting_.push_back(0);
    }
    buckets_.back().first = begin;
    bucket_of_node_[n] = static_cast<int64_t>(buckets_.size()) - 1;
    ++waiting_.back();
  }
  if (!buckets_.empty()) buckets_.back().first = 0;  // the padding before the first gradient
  if (ranks > 1) timing_.bytes_per_step = static_cast<int64_t>(block.size() * sizeof(float));
}

LoaderOptions DataParallel::shard(LoaderOptions options) const {
  const int64_t ranks = comm_.size(), rank = comm_.rank();
  options.parts = options_.groups > 0 ? options_.groups : ranks;
  options.part_begin = options.parts * rank / ranks;
  options.part_end = options.parts * (rank + 1) / ranks;
  return options;
}

void DataParallel::seed_dropout(int64_t step, uint64_t part) {
  executor_.rng().seed(seed_combine(seed_combine(seed_combine(options_.seed, kDropoutStream), static_cast<uint64_t>(step)),
                                    part));
}

double DataParallel::forward_backward(const Tensor& images, std::span<const int64_t> labels, int64_t batch_images,
                                      double& correct, const std::function<void(int)>& on_grads_final) {
  const Tensor& logits = executor_.forward(images, true);
  const double loss = softmax_cross_entropy(logits, labels, grad_logits_, batch_images);
  correct += static_cast<double>(count_top1(logits, labels));
  executor_.zero_grad();
  executor_.backward(grad_logits_, on_grads_final);
  return loss * static_cast<double>(labels.size());
}

StepTotals DataParallel::step(const Tensor& images, std::span<const int64_t> labels, int64_t batch_images,
                              int64_t step, bool stop_requested) {
  const auto start = Clock::now();
  StepTotals totals;
  if (options_.groups > 0) {
    sum_deterministic(images, labels, batch_images, step, totals);
  } else {
    if (comm_.size() > 1) seed_dropout(step, static_cast<uint64_t>(comm_.rank()));
    sum_fast(images, labels, batch_images, totals);
  }
  if (comm_.size() > 1) {
    double values[4] = {totals.loss_sum, totals.correct, totals.images, stop_requested ? 1.0 : 0.0};
    comm_.sum(std::span<double>(values, 4));
    totals = {values[0], values[1], values[2], values[3] > 0};
  } else {
    totals.stop = stop_requested;
  }
  ++timing_.steps;
  timing_.seconds += seconds_since(start);
  return totals;
}

void DataParallel::sum_fast(const Tensor& images, std::span<const int64_t> labels, int64_t batch_images,
                            StepTotals& totals) {
  totals.images = static_cast<double>(labels.size());
  if (comm_.size() == 1) {
    totals.loss_sum = forward_backward(images, labels, batch_images, totals.correct, {});
    return;
  }
  ParamStore& store = executor_.parameter_store();
  std::vector<int> waiting = waiting_;
  size_t started = 0;  // buckets start in one fixed order on every rank, as MPI requires
  auto start_ready = [&] {
    const std::span<float> block = store.grad_block();
    while (started < buckets_.size() && waiting[started] == 0) {
      const auto [begin, end] = buckets_[started++];
      comm_.start_sum(block.subspan(static_cast<size_t>(begin), static_cast<size_t>(end - begin)));
    }
    comm_.progress();
  };
  if (labels.empty()) {
    executor_.zero_grad();  // nothing to add but zeros
  } else {
    totals.loss_sum = forward_backward(images, labels, batch_images, totals.correct, [&](int node) {
      const int64_t bucket = bucket_of_node_[static_cast<size_t>(node)];
      if (bucket >= 0) --waiting[static_cast<size_t>(bucket)];
      start_ready();
    });
  }
  std::fill(waiting.begin(), waiting.end(), 0);  // every gradient is final now
  start_ready();
  const auto waiting_start = Clock::now();
  comm_.finish_sums();
  timing_.waiting_seconds += seconds_since(waiting_start);
}

void DataParallel::sum_deterministic(const Tensor& images, std::span<const int64_t> labels, int64_t batch_images,
                                     int64_t step, StepTotals& totals) {
  ParamStore& store = executor_.parameter_store();
  const std::span<float> block = store.grad_block();
  const LoaderOptions mine = shard({});
  const int64_t first = piece_start(batch_images, mine.part_begin, mine.parts);
  const int64_t per_image = images.dims().empty() ? 0 : images.numel() / std::max<int64_t>(images.dim(0), 1);
  std::vector<int64_t> dims = images.dims();
  tree_level_.clear();  // the stack of partial sums: tree_level_[k] is the level of the sum in tree_[k]
  for (int64_t g = mine.part_begin; g < mine.part_end; ++g) {
    const int64_t begin = piece_start(batch_images, g, mine.parts) - first;
    const int64_t count = piece_start(batch_images, g + 1, mine.parts) - first - begin;
    const size_t top = tree_level_.size();
    if (tree_.size() <= top) tree_.emplace_back(block.size());  // kept for later steps
    std::vector<float>& leaf = tree_[top];
    if (count > 0) {
      seed_dropout(step, static_cast<uint64_t>(g));
      dims[0] = count;
      const Tensor group = Tensor::view(const_cast<float*>(images.data()) + begin * per_image, dims);
      totals.loss_sum += forward_backward(group, labels.subspan(static_cast<size_t>(begin), static_cast<size_t>(count)),
                                          batch_images, totals.correct, {});
      std::copy(block.begin(), block.end(), leaf.begin());
    } else {
      std::fill(leaf.begin(), leaf.end(), 0.0f);
    }
    totals.images += static_cast<double>(count);
    // Push the leaf, then merge equal levels: (lower + upper), the binary tree over the groups.
    tree_level_.push_back(0);
    for (size_t n = tree_level_.size(); n >= 2 && tree_level_[n - 1] == tree_level_[n - 2]; --n) {
      std::vector<float>& lower = tree_[n - 2];
      const std::vector<float>& upper = tree_[n - 1];
      for (size_t i = 0; i < lower.size(); ++i) lower[i] = lower[i] + upper[i];
      tree_level_.pop_back();
      ++tree_level_.back();
    }
  }
  std::copy(tree_.front().begin(), tree_.front().end(), block.begin());
  const auto waiting_start = Clock::now();
  comm_.sum(block, true);
  timing_.waiting_seconds += seconds_since(waiting_start);
}

void DataParallel::broadcast_parameters() {
  if (comm_.size() == 1) return;
  comm_.broadcast(executor_.parameter_store().value_block());
  executor_.parameters_changed();
  executor_.parameter_store().bump_version();
}

void DataParallel::average_buffers() {
  if (comm_.size() == 1) return;
  ParamStore& store = executor_.parameter_store();
  const auto& nodes = executor_.net().nodes();
  std::vector<double> values;
  for (size_t n = 0; n < nodes.size(); ++n) {
    for (size_t p = 0; p < nodes[n].params.size(); ++p) {
      if (!nodes[n].params[p].is_buffer) continue;
      const Tensor& t = store.values(n)[p];
      values.insert(values.end(), t.data(), t.data() + t.numel());
    }
  }
  if (values.empty()) return;
  comm_.sum(std::span<double>(values));
  size_t at = 0;
  for (size_t n = 0; n < nodes.size(); ++n) {
    for (size_t p = 0; p < nodes[n].params.size(); ++p) {
      if (!nodes[n].params[p].is_buffer) continue;
      Tensor& t = store.values(n)[p];
      for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<float>(values[at++] / comm_.size());
    }
  }
  executor_.parameters_changed();
  store.bump_version();
}

Evaluation DataParallel::evaluate(const Dataset& data, const Normalization& norm, int64_t batch) {
  if (comm_.size() == 1) return convnet::evaluate(executor_, data, norm, batch);
  const int64_t begin = piece_start(data.size(), comm_.rank(), comm_.size());
  const int64_t end = piece_start(data.size(), comm_.rank() + 1, comm_.size());
  // Named so that an error's "image i of NAME" counts within this rank's share.
  Dataset share{data.name + " (the share of rank " + std::to_string(comm_.rank()) + ": images " +
                    std::to_string(begin) + " to " + std::to_string(end - 1) + ")",
                data.image_shape,
                {},
                {},
                data.class_names};
  share.pixels.assign(data.pixels.begin() + begin * data.image_size(), data.pixels.begin() + end * data.image_size());
  share.labels.assign(data.labels.begin() + begin, data.labels.begin() + end);
  Evaluation e;
  std::string error;  // a rank's failure (outputs that are not finite) stops every rank
  try {
    if (share.size() > 0) e = convnet::evaluate(executor_, share, norm, batch);
  } catch (const Error& failure) {
    error = failure.what();
  }
  comm_.agree(error);
  const auto n = static_cast<double>(e.count);
  double sums[4] = {n, e.loss * n, std::round(e.top1 * n), std::round(e.top5 * n)};
  comm_.sum(std::span<double>(sums, 4));
  Evaluation total;
  total.count = static_cast<int64_t>(sums[0]);
  if (total.count > 0) {
    total.loss = sums[1] / sums[0];
    total.top1 = sums[2] / sums[0];
    total.top5 = sums[3] / sums[0];
  }
  return total;
}

}  // namespace convnet
