// Helpers for tests that write dataset files in their real formats: a temp folder, plain and gzip
// files, IDX images and labels, CIFAR records, PNGs (Debian's stb_image_write), and the check that
// a call throws IoError with a message naming what it should.
#pragma once

#include <gtest/gtest.h>
#include <stb/stb_image_write.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "convnet/error.hpp"

namespace convnet::testing {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

inline std::vector<std::string> digits(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(std::to_string(i));
  return out;
}

// A fresh folder under the system temp dir, removed with everything in it at the end of the test.
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "data") {
    static int counter = 0;
    path_ = fs::temp_directory_path() /
            ("convnet-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] std::string file(const std::string& name) const { return (path_ / name).string(); }
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

inline void write_file(const std::string& path, const Bytes& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

inline Bytes read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline void write_gz(const std::string& path, const Bytes& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

inline void put32(Bytes& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}

// An IDX image header declaring n images of h x w.
inline Bytes idx_header(uint32_t n, uint32_t h, uint32_t w) {
  Bytes out;
  put32(out, 0x00000803);
  put32(out, n);
  put32(out, h);
  put32(out, w);
  return out;
}

// n images of h x w with pixel (i, k) = (i * h * w + k) % 256.
inline Bytes idx_images(uint32_t n, uint32_t h, uint32_t w) {
  Bytes out = idx_header(n, h, w);
  for (uint32_t k = 0; k < n * h * w; ++k) out.push_back(static_cast<uint8_t>(k % 256));
  return out;
}

inline Bytes idx_labels(const Bytes& labels) {
  Bytes out;
  put32(out, 0x00000801);
  put32(out, static_cast<uint32_t>(labels.size()));
  out.insert(out.end(), labels.begin(), labels.end());
  return out;
}

// A CIFAR record: label byte(s), then 3072 pixels with pixel k = (seed + k) % 256.
inline Bytes cifar_record(std::initializer_list<uint8_t> labels, int seed) {
  Bytes out(labels);
  for (int k = 0; k < 3072; ++k) out.push_back(static_cast<uint8_t>((seed + k) % 256));
  return out;
}

inline Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// Writes a w x h PNG with `channels` channels, pixel (y, x, c) = (base + 10*y + 3*x + 50*c) % 256.
inline void write_png(const std::string& path, int w, int h, int channels, int base) {
  fs::create_directories(fs::path(path).parent_path());
  Bytes pixels;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < channels; ++c) pixels.push_back(static_cast<uint8_t>((base + 10 * y + 3 * x + 50 * c) % 256));
  ASSERT_NE(stbi_write_png(path.c_str(), w, h, channels, pixels.data(), w * channels), 0);
}

// Expects `fn` to throw an Error of type E whose message contains every one of `parts`.
template <class E = IoError>
void expect_error(const std::function<void()>& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "expected an error";
  } catch (const E& e) {
    const std::string message = e.what();
    for (const std::string& part : parts) EXPECT_NE(message.find(part), std::string::npos) << message << "\nlacks: " << part;
  }
}

inline void expect_io_error(const std::function<void()>& fn, const std::vector<std::string>& parts) {
  expect_error<IoError>(fn, parts);
}

}  // namespace convnet::testing
