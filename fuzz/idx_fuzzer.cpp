// libFuzzer target: IDX image and label files (MNIST / Fashion-MNIST), plain or gzip-compressed.
// Input layout: a flags byte (bit 0: pass ten class names instead of deriving them from the
// labels), a little-endian uint32 image-file length, the image file, then the label file.
#include <algorithm>
#include <string>
#include <vector>

#include "convnet/data/dataset.hpp"
#include "convnet/error.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 5) return 0;
  const bool named = (data[0] & 1) != 0;
  const size_t rest = size - 5;
  const size_t images_size = std::min<size_t>(convnet::fuzz::read_u32(data + 1, 4), rest);
  const uint8_t* images = data + 5;
  const std::string images_path = convnet::fuzz::write_scratch("images-idx3-ubyte", images, images_size);
  const std::string labels_path =
      convnet::fuzz::write_scratch("labels-idx1-ubyte", images + images_size, rest - images_size);
  std::vector<std::string> names;
  if (named) names = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
  try {
    (void)convnet::read_idx(images_path, labels_path, names);
  } catch (const convnet::Error& e) {
    convnet::fuzz::expected(e);
  }
  return 0;
}
