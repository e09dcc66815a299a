// `convnet train / eval / predict` end to end on small generated IDX data: a run, its metrics and
// checkpoint, evaluation and ensembles, a SIGKILLed run resumed to bit-identical weights, a
// diverging run, and bad input (each one clear error, exit 1, nothing overwritten).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "convnet/io/safetensors.hpp"
#include "support/cli.hpp"

namespace {

using namespace convnet::testing;

void put_be32(std::string& s, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) s += static_cast<char>((v >> shift) & 0xff);
}

// A learnable 10-class set: class c is a bright 6x6 square at one of ten places, plus noise.
void write_idx_set(const fs::path& dir, const std::string& prefix, int count, unsigned seed) {
  std::string images, labels;
  put_be32(images, 0x00000803);
  put_be32(images, static_cast<uint32_t>(count));
  put_be32(images, 28);
  put_be32(images, 28);
  put_be32(labels, 0x00000801);
  put_be32(labels, static_cast<uint32_t>(count));
  uint32_t state = seed;
  auto next = [&] { return state = state * 1664525u + 1013904223u; };
  for (int n = 0; n < count; ++n) {
    const int label = static_cast<int>(next() >> 28) % 10;
    labels += static_cast<char>(label);
    const int top = 2 + (label / 5) * 13, left = 2 + (label % 5) * 5;
    for (int y = 0; y < 28; ++y) {
      for (int x = 0; x < 28; ++x) {
        const bool inside = y >= top && y < top + 6 && x >= left && x < left + 6;
        images += static_cast<char>((inside ? 200 : 0) + static_cast<int>(next() >> 27));
      }
    }
  }
  write_file(dir / (prefix + "-images-idx3-ubyte"), images);
  write_file(dir / (prefix + "-labels-idx1-ubyte"), labels);
}

class TrainCli : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("convnet_train_test_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "data");
    write_idx_set(root_ / "data", "train", 1024, 1);
    write_idx_set(root_ / "data", "t10k", 200, 2);
  }
  void TearDown() override { fs::remove_all(root_); }

  std::vector<std::string> train_args(const std::string& out, std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"train", "lenet5", "--data", (root_ / "data").string(), "--out", (root_ / out).string(),
                                  "--epochs", "2", "--batch", "32", "--lr", "0.05", "--deterministic"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  fs::path root_;
};

TEST_F(TrainCli, TrainsWritesMetricsAndCheckpointThenEvaluatesAndPredicts) {
  const Result r = run(train_args("run"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_CONTAINS(r.out, "epoch 2/2");
  EXPECT_CONTAINS(r.out, "test accuracy: top-1");
  const auto rows = lines_of(read_file(root_ / "run" / "metrics.csv"));
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0], "epoch,train_loss,train_top1,eval_loss,eval_top1,eval_top5,lr,seconds");
  EXPECT_TRUE(fs::exists(root_ / "run" / "checkpoint.safetensors"));

  const Result eval = run({"eval", (root_ / "run").string()});
  ASSERT_EQ(eval.code, 0) << eval.err;
  EXPECT_CONTAINS(eval.out, "top-1");
  EXPECT_CONTAINS(eval.out, "confusion matrix");

  // A PGM image of class 3's square, which stb reads like PNG/JPEG.
  std::string pgm = "P5 28 28 255\n";
  for (int y = 0; y < 28; ++y) {
    for (int x = 0; x < 28; ++x) pgm += static_cast<char>(y >= 2 && y < 8 && x >= 17 && x < 23 ? 220 : 5);
  }
  write_file(root_ / "three.pgm", pgm);
  const Result predict = run({"predict", (root_ / "run").string(), (root_ / "three.pgm").string(), "--top", "3"});
  ASSERT_EQ(predict.code, 0) << predict.err;
  EXPECT_CONTAINS(predict.out, "three.pgm:");
  EXPECT_CONTAINS(predict.out, "%");
}

TEST_F(TrainCli, EnsembleAveragesItsMembers) {
  ASSERT_EQ(run(train_args("a", {"--seed", "1", "--epochs", "1"})).code, 0);
  ASSERT_EQ(run(train_args("b", {"--seed", "2", "--epochs", "1"})).code, 0);
  const Result r = run({"eval", (root_ / "a").string(), (root_ / "b").string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_CONTAINS(r.out, "ensemble of 2 (averaged probabilities)");
}

// Reads every tensor of a checkpoint (weights and optimiser state) as raw floats.
std::map<std::string, std::vector<float>> tensors_of(const fs::path& file) {
  std::map<std::string, std::vector<float>> out;
  for (const auto& [name, t] : convnet::read_safetensors(file.string()).tensors) out[name] = t.values;
  return out;
}

TEST_F(TrainCli, RunKilledMidEpochResumesToBitIdenticalWeights) {
  const std::vector<std::string> extra{"--epochs", "3", "--batch", "16", "--checkpoint-every", "5"};
  ASSERT_EQ(run(train_args("straight", extra)).code, 0);

  // The same run, killed with SIGKILL once its first mid-epoch checkpoint exists.
  std::vector<std::string> args = train_args("killed", extra);
  std::vector<char*> argv{const_cast<char*>(CONVNET_CLI)};
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::freopen("/dev/null", "w", stdout);
    ::execv(CONVNET_CLI, argv.data());
    ::_exit(127);
  }
  const fs::path checkpoint = root_ / "killed" / "checkpoint.safetensors";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!fs::exists(checkpoint) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(30));  // let it run on past the checkpoint
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run finished before it could be killed";

  const Result resumed =
      run({"train", "--resume", "--out", (root_ / "killed").string(), "--epochs", "3", "--deterministic"});
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  const auto straight = tensors_of(root_ / "straight" / "checkpoint.safetensors");
  const auto killed = tensors_of(checkpoint);
  ASSERT_EQ(straight.size(), killed.size());
  for (const auto& [name, values] : straight) {
    ASSERT_TRUE(killed.count(name)) << name;
    EXPECT_EQ(0, std::memcmp(values.data(), killed.at(name).data(), values.size() * sizeof(float)))
        << name << " differs after resume";
  }
  EXPECT_EQ(read_file(root_ / "straight" / "metrics.csv").substr(0, 60),
            read_file(root_ / "killed" / "metrics.csv").substr(0, 60));
}

TEST_F(TrainCli, DivergingRunStopsAndKeepsTheLastGoodCheckpoint) {
  const Result r = run(train_args("diverge", {"--lr", "1e6", "--checkpoint-every", "1"}));
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.err, "training diverged");
  EXPECT_CONTAINS(r.err, "last good checkpoint");
  const fs::path checkpoint = root_ / "diverge" / "checkpoint.safetensors";
  if (fs::exists(checkpoint)) {
    for (const auto& [name, values] : tensors_of(checkpoint)) {
      for (float v : values) ASSERT_TRUE(std::isfinite(v)) << name << " holds a non-finite value";
    }
  }
}

TEST_F(TrainCli, OutputFolderHoldingAnotherRunIsRefusedAndKept) {
  ASSERT_EQ(run(train_args("run", {"--epochs", "1"})).code, 0);
  const std::string metrics = read_file(root_ / "run" / "metrics.csv");
  const std::string weights = read_file(root_ / "run" / "checkpoint.safetensors");
  const Result r = run(train_args("run"));
  expect_one_line_error(r);
  EXPECT_CONTAINS(r.err, "holds another run");
  EXPECT_EQ(read_file(root_ / "run" / "metrics.csv"), metrics);
  EXPECT_EQ(read_file(root_ / "run" / "checkpoint.safetensors"), weights);
}

TEST_F(TrainCli, ResumeRefusesToChangeTheRunsSettings) {
  ASSERT_EQ(run(train_args("run", {"--epochs", "1"})).code, 0);
  const Result r = run({"train", "--resume", "--out", (root_ / "run").string(), "--lr", "0.5"});
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "--resume continues with the run's own settings");
  const Result longer = run({"train", "--resume", "--out", (root_ / "run").string(), "--epochs", "2"});
  ASSERT_EQ(longer.code, 0) << longer.err;
  EXPECT_EQ(lines_of(read_file(root_ / "run" / "metrics.csv")).size(), 3u);  // header + 2 epochs
}

TEST_F(TrainCli, CheckpointOfAnotherNetworkIsRefused) {
  ASSERT_EQ(run(train_args("run", {"--epochs", "1"})).code, 0);
  const Result r = run({"train", "resnet20", "--resume", "--out", (root_ / "run").string()});
  expect_one_line_error(r);
  EXPECT_CONTAINS(r.err, "not of resnet20");
}

TEST_F(TrainCli, CorruptedCheckpointIsAClearError) {
  ASSERT_EQ(run(train_args("run", {"--epochs", "1"})).code, 0);
  const fs::path checkpoint = root_ / "run" / "checkpoint.safetensors";
  std::string bytes = read_file(checkpoint);
  bytes.resize(bytes.size() / 2);
  write_file(checkpoint, bytes);
  const Result eval = run({"eval", (root_ / "run").string()});
  expect_one_line_error(eval);
  EXPECT_CONTAINS(eval.err, "checkpoint.safetensors");
  write_file(checkpoint, "not a checkpoint at all");
  expect_one_line_error(run({"eval", checkpoint.string()}));
  expect_one_line_error(run({"train", "--resume", "--out", (root_ / "run").string()}));
}

TEST_F(TrainCli, BadDataFilesAreClearErrorsAndWriteNothing) {
  const fs::path images = root_ / "data" / "train-images-idx3-ubyte";
  std::string bytes = read_file(images);
  write_file(images, bytes.substr(0, bytes.size() - 10));  // truncated
  Result r = run(train_args("run"));
  expect_one_line_error(r);
  EXPECT_CONTAINS(r.err, "train-images-idx3-ubyte");
  EXPECT_FALSE(fs::exists(root_ / "run"));
  bytes[3] = 0x05;  // wrong magic
  write_file(images, bytes);
  r = run(train_args("run"));
  expect_one_line_error(r);
  EXPECT_CONTAINS(r.err, "magic");
  const Result unreadable = run({"predict", "lenet5-missing", (root_ / "nothing.png").string()});
  expect_one_line_error(unreadable);
}

}  // namespace
