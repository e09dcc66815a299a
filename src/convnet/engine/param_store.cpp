// Layout of the parameter store: offsets rounded up to 16 floats (64 bytes) per tensor.
#include "convnet/engine/param_store.hpp"

#include "convnet/checked.hpp"

namespace convnet {
namespace {

constexpr int64_t kAlignFloats = 16;

int64_t aligned(int64_t n) { return checked_add(n, kAlignFloats - 1, "parameter store size") / kAlignFloats * kAlignFloats; }

}  // namespace

ParamStore::ParamStore(const Net& net) {
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
  values_block_ = Tensor({value_total});
  grads_block_ = Tensor({grad_total});
  values_.resize(nodes.size());
  grads_.resize(nodes.size());
  int64_t value_offset = 0;
  int64_t grad_offset = 0;
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (const ParamSpec& spec : nodes[i].params) {
      values_[i].push_back(Tensor::view(values_block_.data() + value_offset, spec.dims));
      const int64_t n = aligned(spec.numel());
      value_offset += n;
      if (spec.is_buffer) {
        grads_[i].emplace_back();
      } else {
        grads_[i].push_back(Tensor::view(grads_block_.data() + grad_offset, spec.dims));
        grad_offset += n;
      }
    }
  }
}

}  // namespace convnet
