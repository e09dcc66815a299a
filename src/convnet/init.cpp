// Names of the initialisers as the model language writes them.
#include "convnet/init.hpp"

namespace convnet {

const char* init_name(Init init) {
  switch (init) {
    case Init::KaimingNormal: return "kaiming";
    case Init::XavierUniform: return "xavier";
    case Init::SmallGaussian: return "gaussian";
    case Init::Zeros: return "zeros";
    case Init::Ones: return "ones";
  }
  return "kaiming";
}

std::optional<Init> init_from_name(std::string_view name) {
  for (Init init : {Init::KaimingNormal, Init::XavierUniform, Init::SmallGaussian, Init::Zeros, Init::Ones}) {
    if (name == init_name(init)) return init;
  }
  return std::nullopt;
}

}  // namespace convnet
