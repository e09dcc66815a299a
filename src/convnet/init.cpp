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

#include <cmath>

namespace convnet {

void initialize(Tensor& tensor, Init init, int64_t fan_in, int64_t fan_out, std::mt19937_64& rng) {
  switch (init) {
    case Init::KaimingNormal: {
      std::normal_distribution<float> normal(0.0f, static_cast<float>(std::sqrt(2.0 / static_cast<double>(fan_in))));
      for (float& v : tensor.span()) v = normal(rng);
      return;
    }
    case Init::XavierUniform: {
      const auto bound = static_cast<float>(std::sqrt(6.0 / static_cast<double>(fan_in + fan_out)));
      std::uniform_real_distribution<float> uniform(-bound, bound);
      for (float& v : tensor.span()) v = uniform(rng);
      return;
    }
    case Init::SmallGaussian: {
      std::normal_distribution<float> normal(0.0f, 0.01f);  // the notes' "small random numbers"
      for (float& v : tensor.span()) v = normal(rng);
      return;
    }
    case Init::Zeros: tensor.fill(0.0f); return;
    case Init::Ones: tensor.fill(1.0f); return;
  }
}

}  // namespace convnet
