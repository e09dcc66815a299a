// libFuzzer target: image reading (signature and header checks, then libpng or libjpeg-turbo;
// any other format must be refused). Input layout: a flags byte (bit 0: decode to 1 channel
// instead of 3; bits 1-2: the prediction size, 1, 7, 28 or 32 pixels square), then the image
// file. The image is read as `convnet predict` reads it (converted and resized) and, when that
// succeeds, as a one-image class folder.
#include <filesystem>
#include <string>

#include "convnet/data/dataset.hpp"
#include "convnet/error.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int64_t channels = (data[0] & 1) != 0 ? 1 : 3;
  constexpr int64_t kSides[] = {1, 7, 28, 32};
  const int64_t side = kSides[(data[0] >> 1) & 3];
  static const std::string folder = [] {
    const std::string dir = convnet::fuzz::scratch_dir() + "/images";
    std::filesystem::create_directories(dir + "/class");
    return dir;
  }();
  const std::string path = convnet::fuzz::write_scratch("images/class/image.png", data + 1, size - 1);
  try {
    (void)convnet::read_single_image(path, convnet::Shape{channels, side, side});
  } catch (const convnet::Error& e) {
    // The folder reader checks and decodes each image as read_single_image does (the same header
    // checks, the same decoder on the same bytes and channels), so it would refuse this image at
    // the same place: it runs only on images that decode.
    convnet::fuzz::expected(e);
    return 0;
  }
  try {
    (void)convnet::read_image_folder(folder, static_cast<int>(channels));
  } catch (const convnet::Error& e) {
    convnet::fuzz::expected(e);
  }
  return 0;
}
