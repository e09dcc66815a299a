// libFuzzer target: opening a trained model as `convnet eval` and `predict` do (input layout:
// safetensors_file in fuzz_common.hpp). The checkpoint's metadata carries the model text,
// preprocessing and class names; the network is built from it, its weights loaded, and (when the
// network is small enough to run within the time limit) one zero image is run forward.
#include <string>
#include <vector>

#include "convnet/analysis/summary.hpp"
#include "convnet/error.hpp"
#include "convnet/train/trained_model.hpp"
#include "fuzz_common.hpp"

namespace {

// Forward only networks that run in well under a millisecond; bigger ones are legitimate but
// would make every input slow.
constexpr int64_t kMaxMacs = 2'000'000;
constexpr int64_t kMaxActivations = 200'000;

void run_forward(convnet::TrainedModel& model) {
  const convnet::Summary summary = convnet::summarize(*model.net);
  if (summary.macs > kMaxMacs || summary.activations > kMaxActivations) return;
  std::vector<convnet::Tensor> inputs;
  for (int id : model.net->inputs()) {
    std::vector<int64_t> dims{1};
    for (int64_t d : model.net->node(id).output.dims()) dims.push_back(d);
    inputs.emplace_back(dims);
  }
  std::vector<const convnet::Tensor*> pointers;
  for (const convnet::Tensor& t : inputs) pointers.push_back(&t);
  (void)model.executor->forward(pointers, false);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string file = convnet::fuzz::safetensors_file(data, size);
  const std::string path =
      convnet::fuzz::write_scratch("checkpoint.safetensors", reinterpret_cast<const uint8_t*>(file.data()), file.size());
  try {
    convnet::TrainedModel model = convnet::open_trained_model(path, {.backend = convnet::Backend::Reference});
    run_forward(model);
  } catch (const convnet::Error& e) {
    convnet::fuzz::expected(e);
  }
  return 0;
}
