// libFuzzer target: safetensors weights and checkpoints. Each input (layout: safetensors_file in
// fuzz_common.hpp) is written to a scratch file and loaded as `convnet train --resume` and `--weights` do: the checkpoint metadata, then every
// tensor (weights checked by name, shape and dtype; optimiser state by its parameter's shape) into
// a small network with a convolution, batch norm (an I64 buffer) and a fully connected layer.
#include <memory>
#include <string>

#include "convnet/error.hpp"
#include "convnet/executor.hpp"
#include "convnet/io/safetensors.hpp"
#include "convnet/model/model.hpp"
#include "convnet/train/checkpoint.hpp"
#include "convnet/train/optimizer.hpp"
#include "fuzz_common.hpp"

namespace {

constexpr const char* kSmallNet =
    "network fuzz_small\n"
    "input 1x6x6\n"
    "conv1 conv 2 3x3 pad 1\n"
    "bn1 batchnorm\n"
    "relu\n"
    "fc fc 3\n";

convnet::Executor& small_executor() {
  static convnet::Net net = convnet::load_model_text(kSmallNet, "fuzz_small.cnet");
  static convnet::Executor executor(net, {.backend = convnet::Backend::Reference});
  return executor;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string file = convnet::fuzz::safetensors_file(data, size);
  const std::string path =
      convnet::fuzz::write_scratch("weights.safetensors", reinterpret_cast<const uint8_t*>(file.data()), file.size());
  try {
    (void)convnet::read_checkpoint_meta(path);
  } catch (const convnet::Error& e) {
    convnet::fuzz::expected(e);
  }
  try {
    const std::unique_ptr<convnet::Optimizer> optimizer = convnet::make_optimizer({});
    convnet::load_checkpoint_tensors(path, small_executor(), optimizer.get());
  } catch (const convnet::Error& e) {
    convnet::fuzz::expected(e);
  }
  try {
    convnet::load_weights(small_executor(), path);
  } catch (const convnet::Error& e) {
    convnet::fuzz::expected(e);
  }
  return 0;
}
