// Lookup in the embedded model zoo, with "did you mean" for a misspelt name.
#include "convnet/zoo/zoo.hpp"

#include "convnet/text.hpp"

namespace convnet {

const ZooEntry* find_zoo_model(const std::string& name) {
  for (const ZooEntry& entry : zoo_entries()) {
    if (name == entry.name) return &entry;
  }
  return nullptr;
}

std::string zoo_suggestion(const std::string& name) {
  std::vector<std::string> names;
  for (const ZooEntry& entry : zoo_entries()) names.push_back(entry.name);
  return did_you_mean(closest_words(name, names));
}

}  // namespace convnet
