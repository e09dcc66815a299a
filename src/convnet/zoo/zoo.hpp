// The model zoo: the classic architectures of the lecture notes as model-language files
// embedded in the binary (src/convnet/zoo/models/*.cnet).
#pragma once

#include <string>
#include <vector>

namespace convnet {

struct ZooEntry {
  const char* name;   // "resnet18"
  const char* text;   // the model file
};

/// Every zoo model, sorted by name (generated at build time).
[[nodiscard]] const std::vector<ZooEntry>& zoo_entries();

/// The model file of a zoo model, or nullptr.
[[nodiscard]] const ZooEntry* find_zoo_model(const std::string& name);

/// " (did you mean 'vgg16'?)" naming the zoo models closest to a name that is not one, or "".
[[nodiscard]] std::string zoo_suggestion(const std::string& name);

}  // namespace convnet
