// `convnet train / eval / predict` end to end on small generated IDX data: a run, its metrics and
// checkpoint, evaluation and ensembles, a SIGKILLed run resumed to bit-identical weights, a
// diverging run, and bad input (each one clear error, exit 1, nothing overwritten).
#include <gtest/gtest.h>
#include <signal.h>
#include <stb/stb_image_write.h>
#include <sys/wait.h>

#include <cmath>

#include "support/cli.hpp"
#include "support/train_data.hpp"

namespace {

using namespace convnet::testing;

class TrainCli : public TrainFolderTest {
 protected:
  TrainCli() : TrainFolderTest("convnet_train_test_", 1024, 200) {}
};

TEST_F(TrainCli, TrainsWritesMetricsAndCheckpointThenEvaluatesAndPredicts) {
  const Result r = run(train_args("run"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_CONTAINS(r.out, "epoch 2/2");
  EXPECT_CONTAINS(r.out, "test accuracy: top-1");
  const auto rows = lines_of(read_file(root_ / "run" / "metrics.csv"));
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0], "epoch,train_loss,train_top1,val_loss,val_top1,val_top5,lr,seconds");  // a validation split by default
  EXPECT_TRUE(fs::exists(root_ / "run" / "checkpoint.safetensors"));

  const Result eval = run({"eval", (root_ / "run").string()});
  ASSERT_EQ(eval.code, 0) << eval.err;
  EXPECT_CONTAINS(eval.out, "top-1");
  EXPECT_CONTAINS(eval.out, "confusion matrix");

  // A PNG image of class 3's square.
  std::vector<uint8_t> pixels;
  for (int y = 0; y < 28; ++y) {
    for (int x = 0; x < 28; ++x) pixels.push_back(y >= 2 && y < 8 && x >= 17 && x < 23 ? 220 : 5);
  }
  ASSERT_NE(stbi_write_png((root_ / "three.png").c_str(), 28, 28, 1, pixels.data(), 28), 0);
  const Result predict = run({"predict", (root_ / "run").string(), (root_ / "three.png").string(), "--top", "3"});
  ASSERT_EQ(predict.code, 0) << predict.err;
  EXPECT_CONTAINS(predict.out, "three.png:");
  EXPECT_CONTAINS(predict.out, "%");
}

TEST_F(TrainCli, EnsembleAveragesItsMembers) {
  ASSERT_EQ(run(train_args("a", {"--seed", "1", "--epochs", "1"})).code, 0);
  ASSERT_EQ(run(train_args("b", {"--seed", "2", "--epochs", "1"})).code, 0);
  const Result r = run({"eval", (root_ / "a").string(), (root_ / "b").string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_CONTAINS(r.out, "ensemble of 2 (averaged probabilities)");
}

TEST_F(TrainCli, RunKilledMidEpochResumesToBitIdenticalWeights) {
  const std::vector<std::string> extra{"--epochs", "3", "--batch", "16", "--checkpoint-every", "5"};
  ASSERT_EQ(run(train_args("straight", extra)).code, 0);

  // The same run, killed with SIGKILL once its first mid-epoch checkpoint exists.
  const fs::path checkpoint = root_ / "killed" / "checkpoint.safetensors";
  const int status = signal_at_checkpoint(train_args("killed", extra), checkpoint, root_ / "err.txt", SIGKILL,
                                          std::chrono::milliseconds(30));  // let it run on past the checkpoint
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run finished before it could be killed";

  const Result resumed =
      run({"train", "--resume", "--out", (root_ / "killed").string(), "--epochs", "3", "--deterministic"});
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  expect_identical_tensors(root_ / "straight" / "checkpoint.safetensors", checkpoint);
  EXPECT_EQ(read_file(root_ / "straight" / "metrics.csv").substr(0, 60),
            read_file(root_ / "killed" / "metrics.csv").substr(0, 60));
}

TEST_F(TrainCli, DivergingRunStopsAndKeepsTheLastGoodCheckpoint) {
  const Result r = run(train_args("diverge", {"--lr", "1e6", "--checkpoint-every", "1"}));
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.err, "training diverged");
  const fs::path checkpoint = root_ / "diverge" / "checkpoint.safetensors";
  // The message says what is left: a checkpoint, or (diverged at the first step) nothing.
  EXPECT_CONTAINS(r.err, fs::exists(checkpoint) ? "last good checkpoint is kept in" : "; nothing was saved");
  if (fs::exists(checkpoint)) {
    for (const auto& [name, t] : convnet::read_safetensors(checkpoint.string()).tensors) {
      for (float v : t.values) ASSERT_TRUE(std::isfinite(v)) << name << " holds a non-finite value";
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
  const Result longer = run({"train", "--resume", "--out", (root_ / "run").string(), "--epochs", "2", "--deterministic"});
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
