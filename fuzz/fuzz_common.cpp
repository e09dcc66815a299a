// Scratch files for the libFuzzer targets (see fuzz_common.hpp).
#include "fuzz_common.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace convnet::fuzz {
namespace {

void remove_scratch() {
  std::error_code ec;
  std::filesystem::remove_all(scratch_dir(), ec);
}

}  // namespace

void expected(const convnet::Error& error) {
  static const bool verbose = std::getenv("CONVNET_FUZZ_VERBOSE") != nullptr;
  if (verbose) std::fprintf(stderr, "convnet::Error: %s\n", error.what());
}

const std::string& scratch_dir() {
  // Never destroyed: remove_scratch runs at exit, after static objects may be gone.
  static const std::string* const dir = [] {
    auto* path = new std::string(
        (std::filesystem::temp_directory_path() / ("convnet-fuzz-" + std::to_string(getpid()))).string());
    std::filesystem::create_directories(*path);
    return path;
  }();
  static const bool registered = std::atexit(remove_scratch) == 0;
  (void)registered;
  return *dir;
}

std::string write_scratch(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = scratch_dir() + "/" + name;
  // A new file each time, not the old one truncated: ext4 flushes a file rewritten after a
  // truncation when it is closed (auto_da_alloc), which made every input wait for the disk.
  std::error_code ec;
  std::filesystem::remove(path, ec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) throw std::runtime_error("fuzz harness: cannot write " + path);  // not convnet::Error: a harness failure
  return path;
}

uint32_t read_u32(const uint8_t* data, size_t size) {
  uint32_t value = 0;
  for (size_t i = 0; i < 4 && i < size; ++i) value |= uint32_t{data[i]} << (8 * i);
  return value;
}

std::string safetensors_file(const uint8_t* data, size_t size) {
  if (size == 0) return {};
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if ((data[0] & 1) == 0) return rest;
  const size_t header_size = std::min(rest.find('\0'), rest.size());
  std::string file(8, '\0');
  for (size_t i = 0; i < 8; ++i) file[i] = static_cast<char>((uint64_t{header_size} >> (8 * i)) & 0xff);
  file += rest.substr(0, header_size);
  if (header_size < rest.size()) file += rest.substr(header_size + 1);
  return file;
}

}  // namespace convnet::fuzz
