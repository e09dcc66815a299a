// Layout of the parameter store: offsets rounded up to 16 floats (64 bytes) per tensor.
#include "convnet/engine/param_store.hpp"

#include "convnet/checked.hpp"

namespace convnet {
namespace {

constexpr int64_t kAlignFloats = 16;

int64_t aligned(int64_t n) { return checked_add(n, kAlignFloats - 1, "parameter store size") / kAlignFloats * kAlignFloats; }

}  // namespace

ParamStore::ParamStore(const Net& net, bool allocate) {
  const auto& nodes = net.nodes();
  int64_t value_total = 0;
  int64_t grad_total = 0;
  for (const Node& node : nodes) {
    for (const ParamSpec& spec : node.params) {
      const int64_t n = aligned(checked_product(spec.dims, node.name + "." + spec.name + " element count"));
      value_total = checked_add(value_total, n, "parameter store size");
      if (!spec.is_buffer) grad_total = checked_add(grad_total, n, "gradient store size");
    }
  }
  if (allocate) values_block_ = Tensor({value_total});
  grad_total_ = grad_total;
  values_.resize(nodes.size());
  grads_.resize(nodes.size());
  grad_offsets_.resize(nodes.size());
  int64_t value_offset = 0;
  int64_t grad_offset = 0;
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (const ParamSpec& spec : nodes[i].params) {
      values_[i].push_back(Tensor::view(allocate ? values_block_.data() + value_offset : nullptr, spec.dims));
      const int64_t n = aligned(spec.numel());
      value_offset += n;
      grads_[i].emplace_back();
      grad_offsets_[i].push_back(spec.is_buffer ? -1 : grad_offset);
      if (!spec.is_buffer) grad_offset += n;
    }
  }
}

void ParamStore::allocate_grads() {
  if (has_grads()) return;
  grads_block_ = Tensor({grad_total_});
  for (size_t i = 0; i < grads_.size(); ++i) {
    for (size_t p = 0; p < grads_[i].size(); ++p) {
      const int64_t offset = grad_offsets_[i][p];
      if (offset >= 0) grads_[i][p] = Tensor::view(grads_block_.data() + offset, values_[i][p].dims());
    }
  }
}

}  // namespace convnet
