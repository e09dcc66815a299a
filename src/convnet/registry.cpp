// The built-in layer kinds, one line each: word, usage, factory, and whether the arguments name
// input tensors. `input` is not here: the parser handles input lines itself.
#include "convnet/registry.hpp"

#include <stdexcept>

#include "convnet/layers/activation.hpp"
#include "convnet/layers/conv2d.hpp"
#include "convnet/layers/dropout.hpp"
#include "convnet/layers/flatten.hpp"
#include "convnet/layers/linear.hpp"
#include "convnet/layers/local2d.hpp"
#include "convnet/layers/maxout.hpp"
#include "convnet/layers/merge.hpp"
#include "convnet/layers/normalization.hpp"
#include "convnet/layers/pad_channels.hpp"
#include "convnet/layers/pool2d.hpp"
#include "convnet/layers/tiled_conv2d.hpp"

namespace convnet {

void LayerRegistry::add(LayerKind kind) {
  const std::string name = kind.name;
  if (!kinds_.emplace(name, std::move(kind)).second) {
    throw std::logic_error("layer kind '" + name + "' registered twice");
  }
}

const LayerKind* LayerRegistry::find(const std::string& name) const {
  const auto it = kinds_.find(name);
  return it == kinds_.end() ? nullptr : &it->second;
}

std::vector<std::string> LayerRegistry::names() const {
  std::vector<std::string> out;
  out.reserve(kinds_.size());
  for (const auto& [name, kind] : kinds_) out.push_back(name);
  return out;
}

void register_builtin_layers(LayerRegistry& r) {
  r.add({"conv", Conv2d::kUsage, &Conv2d::from_args});
  r.add({"local", LocallyConnected2d::kUsage, &LocallyConnected2d::from_args});
  r.add({"tiled", TiledConv2d::kUsage, &TiledConv2d::from_args});
  r.add({"maxpool", MaxPool2d::kUsage, &MaxPool2d::from_args});
  r.add({"avgpool", AvgPool2d::kUsage, &AvgPool2d::from_args});
  r.add({"globalavgpool", GlobalAvgPool2d::kUsage, &GlobalAvgPool2d::from_args});
  r.add({"fc", Linear::kUsage, &Linear::from_args});
  r.add({"relu", ReLU::kUsage, &ReLU::from_args});
  r.add({"leakyrelu", LeakyReLU::kUsage, &LeakyReLU::from_args});
  r.add({"elu", ELU::kUsage, &ELU::from_args});
  r.add({"sigmoid", Sigmoid::kUsage, &Sigmoid::from_args});
  r.add({"tanh", Tanh::kUsage, &Tanh::from_args});
  r.add({"softmax", Softmax::kUsage, &Softmax::from_args});
  r.add({"maxout", Maxout::kUsage, &Maxout::from_args});
  r.add({"padchannels", PadChannels::kUsage, &PadChannels::from_args});
  r.add({"lrn", LocalResponseNorm::kUsage, &LocalResponseNorm::from_args});
  r.add({"batchnorm", BatchNorm::kUsage, &BatchNorm::from_args});
  r.add({"dropout", Dropout::kUsage, &Dropout::from_args});
  r.add({"droppath", DropPath::kUsage, &DropPath::from_args});
  r.add({"flatten", Flatten::kUsage, &Flatten::from_args});
  r.add({"add", Add::kUsage, &Add::from_args, true});
  r.add({"mul", Mul::kUsage, &Mul::from_args, true});
  r.add({"concat", Concat::kUsage, &Concat::from_args, true});
}

const LayerRegistry& builtin_layers() {
  static const LayerRegistry registry = [] {
    LayerRegistry r;
    register_builtin_layers(r);
    return r;
  }();
  return registry;
}

}  // namespace convnet
