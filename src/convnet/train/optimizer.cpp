// SGD and Adam updates, in float like PyTorch's (the order of operations follows torch.optim).
#include "convnet/train/optimizer.hpp"

#include <cmath>

#include "convnet/error.hpp"

namespace convnet {

std::map<std::string, Tensor*> Optimizer::state() {
  std::map<std::string, Tensor*> out;
  for (auto& [name, tensor] : buffers_) out[name] = &tensor;
  return out;
}

Tensor& Optimizer::buffer(const std::string& kind, const NamedParameter& p) {
  auto [it, inserted] = buffers_.try_emplace(kind + "." + p.name);
  if (inserted) it->second = Tensor(p.value->dims());
  return it->second;
}

std::unique_ptr<Optimizer> make_optimizer(const OptimizerOptions& options) {
  if (options.kind == "sgd") return std::make_unique<Sgd>(options);
  if (options.kind == "adam") return std::make_unique<Adam>(options);
  throw SpecError("unknown optimiser '" + options.kind + "': expected sgd or adam");
}

void Sgd::step(std::vector<NamedParameter>& params, double lr) {
  const auto momentum = static_cast<float>(options_.momentum);
  const auto decay = static_cast<float>(options_.weight_decay);
  const auto rate = static_cast<float>(lr);
  for (NamedParameter& p : params) {
    if (p.grad == nullptr) continue;
    float* w = p.value->data();
    const float* g = p.grad->data();
    const int64_t n = p.value->numel();
    if (momentum == 0.0f) {
      for (int64_t i = 0; i < n; ++i) w[i] -= rate * (g[i] + decay * w[i]);
      continue;
    }
    Tensor& velocity = buffer("momentum", p);
    float* v = velocity.data();
    const bool first = steps_ == 0;  // PyTorch starts the buffer at the first gradient
    for (int64_t i = 0; i < n; ++i) {
      const float d = g[i] + decay * w[i];
      v[i] = first ? d : momentum * v[i] + d;
      w[i] -= rate * (options_.nesterov ? d + momentum * v[i] : v[i]);
    }
  }
  ++steps_;
}

void Adam::step(std::vector<NamedParameter>& params, double lr) {
  ++steps_;
  const double correction1 = 1.0 - std::pow(options_.beta1, static_cast<double>(steps_));
  const double correction2 = 1.0 - std::pow(options_.beta2, static_cast<double>(steps_));
  const auto b1 = static_cast<float>(options_.beta1);
  const auto b2 = static_cast<float>(options_.beta2);
  const auto decay = static_cast<float>(options_.weight_decay);
  const auto step_size = static_cast<float>(lr / correction1);
  const auto root_correction2 = static_cast<float>(std::sqrt(correction2));
  const auto eps = static_cast<float>(options_.eps);
  for (NamedParameter& p : params) {
    if (p.grad == nullptr) continue;
    float* w = p.value->data();
    const float* g = p.grad->data();
    float* m = buffer("exp_avg", p).data();
    float* v = buffer("exp_avg_sq", p).data();
    for (int64_t i = 0; i < p.value->numel(); ++i) {
      const float d = g[i] + decay * w[i];
      m[i] = b1 * m[i] + (1.0f - b1) * d;
      v[i] = b2 * v[i] + (1.0f - b2) * d * d;
      w[i] -= step_size * m[i] / (std::sqrt(v[i]) / root_correction2 + eps);
    }
  }
}

}  // namespace convnet
