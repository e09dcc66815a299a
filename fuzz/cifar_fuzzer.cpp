// libFuzzer target: CIFAR-10 / CIFAR-100 binary batches (plain, or gzip: the reader detects it).
// Input layout: a flags byte (bit 0: CIFAR-100's coarse+fine records; bit 1: pass class names),
// then the batch file.
#include <string>
#include <vector>

#include "convnet/data/dataset.hpp"
#include "convnet/error.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool coarse_and_fine = (data[0] & 1) != 0;
  const bool named = (data[0] & 2) != 0;
  const std::string path = convnet::fuzz::write_scratch("data_batch.bin", data + 1, size - 1);
  std::vector<std::string> names;
  if (named) names = {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
  try {
    (void)convnet::read_cifar({path}, coarse_and_fine, names);
  } catch (const convnet::Error& e) {
    convnet::fuzz::expected(e);
  }
  return 0;
}
