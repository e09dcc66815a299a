// Lookup in the embedded model zoo.
#include "convnet/zoo/zoo.hpp"

namespace convnet {

const ZooEntry* find_zoo_model(const std::string& name) {
  for (const ZooEntry& entry : zoo_entries()) {
    if (name == entry.name) return &entry;
  }
  return nullptr;
}

}  // namespace convnet
