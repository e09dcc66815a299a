// Shared by the training CLI tests: a learnable IDX set (class c is a bright 6x6 square at one of
// ten places, plus noise) of any size, a fixture with a data folder, a training started in the
// background and signalled at its first checkpoint, weight comparison, checkpoint metadata editing.
#pragma once

#include <signal.h>
#include <stb/stb_image_write.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "cli.hpp"
#include "convnet/io/safetensors.hpp"

namespace convnet::testing {

inline void put_be32(std::string& s, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) s += static_cast<char>((v >> shift) & 0xff);
}

// Writes DIR/PREFIX-images-idx3-ubyte and DIR/PREFIX-labels-idx1-ubyte: `count` images of
// side x side pixels (side >= 28 puts the squares where LeNet-5 can learn them).
inline void write_idx_set(const fs::path& dir, const std::string& prefix, int count, unsigned seed, int side = 28) {
  std::string images, labels;
  put_be32(images, 0x00000803);
  put_be32(images, static_cast<uint32_t>(count));
  put_be32(images, static_cast<uint32_t>(side));
  put_be32(images, static_cast<uint32_t>(side));
  put_be32(labels, 0x00000801);
  put_be32(labels, static_cast<uint32_t>(count));
  uint32_t state = seed;
  auto next = [&] { return state = state * 1664525u + 1013904223u; };
  for (int n = 0; n < count; ++n) {
    const int label = static_cast<int>(next() >> 28) % 10;
    labels += static_cast<char>(label);
    const int top = 2 + (label / 5) * 13, left = 2 + (label % 5) * 5;
    for (int y = 0; y < side; ++y) {
      for (int x = 0; x < side; ++x) {
        const bool inside = y >= top && y < top + 6 && x >= left && x < left + 6;
        images += static_cast<char>((inside ? 200 : 0) + static_cast<int>(next() >> 27));
      }
    }
  }
  write_file(dir / (prefix + "-images-idx3-ubyte"), images);
  write_file(dir / (prefix + "-labels-idx1-ubyte"), labels);
}

// A suite's shared folder, made once by its SetUpTestSuite: data/ (generated IDX, 512 training and
// 100 test images), image.png (a 28x28 grey ramp), run/ (LeNet-5 trained one epoch), its ONNX
// export run.onnx and its int8 copy q/ (ranges of 100 images). True when every command succeeded.
inline bool make_lenet_suite(const fs::path& root) {
  fs::remove_all(root);
  fs::create_directories(root / "data");
  write_idx_set(root / "data", "train", 512, 1);
  write_idx_set(root / "data", "t10k", 100, 2);
  std::vector<uint8_t> pixels;
  for (int i = 0; i < 28 * 28; ++i) pixels.push_back(static_cast<uint8_t>(i % 200));
  if (stbi_write_png((root / "image.png").c_str(), 28, 28, 1, pixels.data(), 28) == 0) return false;
  const std::string run_dir = (root / "run").string();
  return run({"train", "lenet5", "--data", (root / "data").string(), "--out", run_dir, "--epochs", "1", "--batch", "32",
              "--lr", "0.05", "--deterministic"})
                 .code == 0 &&
         run({"export", run_dir, "-o", (root / "run.onnx").string()}).code == 0 &&
         run({"quantize", run_dir, "-o", (root / "q").string(), "--calibrate", "100", "--emulate"}).code == 0;
}

// A folder per test holding data/ (IDX train and t10k sets); removed afterwards.
class TrainFolderTest : public ::testing::Test {
 protected:
  TrainFolderTest(std::string prefix, int train_images, int test_images)
      : prefix_(std::move(prefix)), train_images_(train_images), test_images_(test_images) {}
  void SetUp() override {
    root_ = fs::temp_directory_path() / (prefix_ + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "data");
    write_idx_set(root_ / "data", "train", train_images_, 1);
    write_idx_set(root_ / "data", "t10k", test_images_, 2);
  }
  void TearDown() override {
    fs::current_path(fs::temp_directory_path());
    fs::remove_all(root_);
  }
  // A quick deterministic LeNet-5 run on data/ into OUT.
  [[nodiscard]] std::vector<std::string> train_args(const std::string& out, std::vector<std::string> extra = {}) const {
    std::vector<std::string> args{"train", "lenet5", "--data", (root_ / "data").string(), "--out", (root_ / out).string(),
                                  "--epochs", "2", "--batch", "32", "--lr", "0.05", "--deterministic"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  fs::path root_;

 private:
  std::string prefix_;
  int train_images_, test_images_;
};

// Starts `convnet ARGS...` (stdout to /dev/null, stderr to `err`), waits until `checkpoint`
// exists, lets it run on for `after`, sends `signal` and returns the wait status.
inline int signal_at_checkpoint(std::vector<std::string> args, const fs::path& checkpoint, const fs::path& err,
                                int signal, std::chrono::milliseconds after = std::chrono::milliseconds(0)) {
  std::vector<char*> argv{const_cast<char*>(CONVNET_CLI)};
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (::freopen("/dev/null", "w", stdout) == nullptr || ::freopen(err.c_str(), "w", stderr) == nullptr) ::_exit(126);
    ::execv(CONVNET_CLI, argv.data());
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!fs::exists(checkpoint) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  std::this_thread::sleep_for(after);
  ::kill(pid, signal);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

// Every tensor of two checkpoints (weights and optimiser state) is bit-identical.
inline void expect_identical_tensors(const fs::path& a, const fs::path& b) {
  const auto first = convnet::read_safetensors(a.string()).tensors;
  const auto second = convnet::read_safetensors(b.string()).tensors;
  ASSERT_EQ(first.size(), second.size());
  for (const auto& [name, t] : first) {
    ASSERT_TRUE(second.count(name)) << name;
    ASSERT_EQ(t.values.size(), second.at(name).values.size()) << name;
    EXPECT_EQ(0, std::memcmp(t.values.data(), second.at(name).values.data(), t.values.size() * sizeof(float)))
        << name << " differs between " << a << " and " << b;
  }
}

// A checkpoint's convnet metadata (the JSON inside the safetensors header).
inline nlohmann::json checkpoint_meta(const fs::path& file) {
  const std::string bytes = read_file(file);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<size_t>(i)]);
  const auto header = nlohmann::json::parse(bytes.substr(8, n));
  return nlohmann::json::parse(header.at("__metadata__").at("convnet").get<std::string>());
}

// Rewrites a checkpoint with `meta` as its convnet metadata, tensors unchanged.
inline void set_checkpoint_meta(const fs::path& file, const nlohmann::json& meta) {
  const std::string bytes = read_file(file);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<size_t>(i)]);
  auto header = nlohmann::json::parse(bytes.substr(8, n));
  header["__metadata__"]["convnet"] = meta.dump();
  const std::string text = header.dump();
  std::string out;
  for (int i = 0; i < 8; ++i) out += static_cast<char>((text.size() >> (8 * i)) & 0xff);
  write_file(file, out + text + bytes.substr(8 + n));
}

}  // namespace convnet::testing
