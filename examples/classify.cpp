// Loads a zoo model (or a .cnet file), optionally its weights (safetensors, torchvision names),
// and classifies an image: the five most probable class indices with their probabilities.
//   classify resnet18 cat.png --weights resnet18.safetensors
// The image is resized to the model's input and scaled to [0, 1] (no mean/std normalisation).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "convnet/data/dataset.hpp"
#include "convnet/executor.hpp"
#include "convnet/io/safetensors.hpp"
#include "convnet/model/model.hpp"

using namespace convnet;

int main(int argc, char** argv) {
  if (argc != 3 && !(argc == 5 && std::string(argv[3]) == "--weights")) {
    std::fprintf(stderr, "usage: classify MODEL IMAGE [--weights FILE.safetensors]\n");
    return 2;
  }
  try {
    Net net = load_model(argv[1]);
    Executor executor(net);
    if (argc == 5) load_weights(executor, argv[4]);
    const Shape& shape = net.node(net.inputs().at(0)).output;
    const Dataset image = read_single_image(argv[2], shape);
    Tensor input({1, shape.channels(), shape.height(), shape.width()});
    for (int64_t i = 0; i < input.numel(); ++i)
      input[i] = static_cast<float>(image.pixels[static_cast<size_t>(i)]) / 255.0F;
    const Tensor& logits = executor.forward(input, false);
    std::vector<double> p(static_cast<size_t>(logits.numel()));
    const float top = *std::max_element(logits.data(), logits.data() + logits.numel());
    double sum = 0;
    for (size_t k = 0; k < p.size(); ++k)
      sum += p[k] = std::exp(static_cast<double>(logits[static_cast<int64_t>(k)] - top));
    std::vector<size_t> order(p.size());
    std::iota(order.begin(), order.end(), 0);
    const size_t shown = std::min<size_t>(5, p.size());
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(shown), order.end(),
                      [&](size_t a, size_t b) { return p[a] > p[b]; });
    std::printf("%s on %s (%s):\n", net.name().c_str(), argv[2], shape.chw_string().c_str());
    for (size_t i = 0; i < shown; ++i) std::printf("  class %zu: %.2f%%\n", order[i], 100 * p[order[i]] / sum);
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "classify: %s\n", e.what());
    return 1;
  }
}
