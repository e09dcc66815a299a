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
