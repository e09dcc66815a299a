// The explicit table of layer kinds the model language knows: word -> usage and factory.
// Adding a layer kind adds one line to register_builtin_layers() (registry.cpp); nothing else.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "convnet/layer.hpp"
#include "convnet/layer_args.hpp"

namespace convnet {

struct LayerKind {
  std::string name;                                    // "conv"
  std::string usage;                                   // "conv OUT_CHANNELS KxK [stride S] ..."
  std::unique_ptr<Layer> (*from_args)(LayerArgs&);     // reads the layer line's arguments
  bool takes_input_names = false;                      // "q add x y": arguments name input tensors
};

class LayerRegistry {
 public:
  void add(LayerKind kind);
  [[nodiscard]] const LayerKind* find(const std::string& name) const;
  [[nodiscard]] std::vector<std::string> names() const;

 private:
  std::map<std::string, LayerKind> kinds_;
};

/// Adds every built-in layer kind, one line each.
void register_builtin_layers(LayerRegistry& registry);

/// The registry with the built-in kinds, built on first use.
[[nodiscard]] const LayerRegistry& builtin_layers();

}  // namespace convnet
