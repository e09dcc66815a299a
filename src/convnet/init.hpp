// Parameter initialisers by name: He/Kaiming normal (std sqrt(2/n), the notes' rule), Xavier,
// small Gaussian, zeros, ones. Only the choice lives here; filling tensors is the compute layer's.
#pragma once

#include <optional>
#include <string_view>

namespace convnet {

enum class Init { KaimingNormal, XavierUniform, SmallGaussian, Zeros, Ones };

[[nodiscard]] const char* init_name(Init init);
[[nodiscard]] std::optional<Init> init_from_name(std::string_view name);

}  // namespace convnet

#include <cstdint>
#include <random>

#include "convnet/tensor.hpp"

namespace convnet {

/// Fills `tensor` for `init`: He/Kaiming normal std sqrt(2 / fan_in) (PyTorch's kaiming_normal_,
/// fan-in mode: the notes' sqrt(2/n) with n the inputs of a neuron), Xavier uniform
/// +-sqrt(6 / (fan_in + fan_out)), small Gaussian std 0.01, zeros, ones.
void initialize(Tensor& tensor, Init init, int64_t fan_in, int64_t fan_out, std::mt19937_64& rng);

}  // namespace convnet
