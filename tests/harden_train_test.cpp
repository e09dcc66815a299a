// Hardening of `convnet train` and the command line: every run is checked before its first step
// (data, options, output folder and its lock), the per-epoch evaluation uses a validation split,
// SIGINT/SIGTERM checkpoint and print the resume command (exit 130), resume keeps the run's
// settings and refuses corrupted metadata, and option errors have readable bounds. Each case
// asserts the exit code, a message naming the problem and that the output folder is untouched.
#include <gtest/gtest.h>
#include <omp.h>
#include <signal.h>
#include <stb/stb_image_write.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <functional>
#include <map>

#include "support/cli.hpp"
#include "support/train_data.hpp"

namespace {

using namespace convnet::testing;

class HardenTrain : public TrainFolderTest {
 protected:
  HardenTrain() : TrainFolderTest("convnet_harden_train_", 512, 100) {}

  // The folder's files and their bytes, to show that a refused command changed nothing.
  std::map<std::string, std::string> snapshot(const std::string& out) const {
    std::map<std::string, std::string> files;
    if (!fs::exists(root_ / out)) return files;
    for (const auto& entry : fs::directory_iterator(root_ / out)) files[entry.path().filename()] = read_file(entry.path());
    return files;
  }
};

// ---- data, checked before anything is written ----

TEST_F(HardenTrain, EmptyTrainingOrTestSetIsRefusedBeforeTraining) {
  write_idx_set(root_ / "data", "t10k", 0, 2);
  Result r = run(train_args("run"));
  expect_one_line_error(r);
  EXPECT_CONTAINS(r.err, "t10k-images-idx3-ubyte: IDX image file holds no images (an empty dataset)");
  EXPECT_FALSE(fs::exists(root_ / "run"));
  write_idx_set(root_ / "data", "t10k", 100, 2);
  write_idx_set(root_ / "data", "train", 0, 1);
  r = run(train_args("run"));
  expect_one_line_error(r);
  EXPECT_CONTAINS(r.err, "train-images-idx3-ubyte: IDX image file holds no images (an empty dataset)");
  EXPECT_FALSE(fs::exists(root_ / "run"));
}

TEST_F(HardenTrain, TestSetOfAnotherImageSizeIsRefusedBeforeTheFirstEpoch) {
  write_idx_set(root_ / "data", "t10k", 100, 2, 20);
  const Result r = run(train_args("run"));
  expect_one_line_error(r);
  EXPECT_CONTAINS(r.err, "test images are 1x20x20 but training images are 1x28x28");
  EXPECT_FALSE(fs::exists(root_ / "run"));
}

void write_png(const fs::path& path) {
  fs::create_directories(path.parent_path());
  std::vector<uint8_t> pixels(8 * 8, 128);
  ASSERT_NE(stbi_write_png(path.c_str(), 8, 8, 1, pixels.data(), 8), 0);
}

TEST_F(HardenTrain, TestSetWithOtherClassesIsRefused) {
  for (const char* c : {"a", "b", "c"}) {
    write_png(root_ / "folders" / "train" / c / "1.png");
    write_png(root_ / "folders" / "train" / c / "2.png");
  }
  for (const char* c : {"a", "b"}) write_png(root_ / "folders" / "test" / c / "1.png");
  write_file(root_ / "three.cnet", "network three\ninput 1x8x8\nout fc 3\n");
  const Result r = run({"train", (root_ / "three.cnet").string(), "--data", (root_ / "folders").string(), "--out",
                        (root_ / "run").string(), "--validation", "0"});
  expect_one_line_error(r);
  EXPECT_CONTAINS(r.err, "train/ and test/ have different class sub-folders (3 and 2 classes)");
  EXPECT_FALSE(fs::exists(root_ / "run"));
}

TEST_F(HardenTrain, NamesTheCheckpointCannotHoldAreRefusedBeforeTraining) {
  // A non-UTF-8 byte in a model comment: JSON (the checkpoint's metadata) cannot hold the model text.
  write_file(root_ / "latin1.cnet", "# caf\xe9\nnetwork latin1\ninput 1x28x28\nout fc 10\n");
  Result r = run({"train", (root_ / "latin1.cnet").string(), "--data", (root_ / "data").string(), "--out",
                  (root_ / "run").string()});
  expect_one_line_error(r);
  // The lexer refuses it (line and column of the byte) before training starts.
  EXPECT_CONTAINS(r.err, (root_ / "latin1.cnet").string() + ":1:6: the model file is not valid UTF-8 here");
  EXPECT_FALSE(fs::exists(root_ / "run"));
  // ... nor a class folder's name.
  for (const char* c : {"a", "b\xff"}) {
    write_png(root_ / "folders" / "train" / c / "1.png");
    write_png(root_ / "folders" / "train" / c / "2.png");
    write_png(root_ / "folders" / "test" / c / "1.png");
  }
  write_file(root_ / "two.cnet", "network two\ninput 1x8x8\nout fc 2\n");
  r = run({"train", (root_ / "two.cnet").string(), "--data", (root_ / "folders").string(), "--out",
           (root_ / "run").string(), "--validation", "0"});
  expect_one_line_error(r);
  // The image-folder reader refuses the name as it loads the data, naming the folder.
  EXPECT_CONTAINS(r.err, "class name is not valid UTF-8 (byte 0xff at offset 1)");
  EXPECT_FALSE(fs::exists(root_ / "run"));
  // ... nor the data folder's own path, which the checkpoint stores too.
  fs::copy(root_ / "data", root_ / "d\xff", fs::copy_options::recursive);
  write_file(root_ / "ten.cnet", "network ten\ninput 1x28x28\nout fc 10\n");
  r = run({"train", (root_ / "ten.cnet").string(), "--data", (root_ / "d\xff").string(), "--out",
           (root_ / "run").string()});
  expect_one_line_error(r);
  EXPECT_CONTAINS(r.err, "train: the --data path");
  EXPECT_CONTAINS(r.err, "is not valid UTF-8, which the checkpoint's metadata (JSON) cannot hold");
  EXPECT_FALSE(fs::exists(root_ / "run"));
}

TEST_F(HardenTrain, ValidationSplitMustLeaveImagesOnBothSides) {
  Result r = run(train_args("run", {"--validation", "0.0001"}));  // 0.05 of an image
  expect_one_line_error(r);
  EXPECT_CONTAINS(r.err, "--validation 0.0001 of 512 training images holds out no image");
  r = run(train_args("run", {"--validation", "512"}));
  expect_one_line_error(r);
  EXPECT_CONTAINS(r.err, "--validation 512 of 512 training images leaves no image to train on");
  r = run(train_args("run", {"--validation", "2.5"}));
  expect_one_line_error(r);
  EXPECT_CONTAINS(r.err, "--validation 2.5: expected a fraction in [0, 1) or a whole number of images");
  EXPECT_FALSE(fs::exists(root_ / "run"));
}

// ---- options ----

TEST_F(HardenTrain, OutOfRangeOptionsAreRefusedWithTheirBounds) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--crop-padding", "1000"}, "--crop-padding 1000: at most 14 (half the 28-pixel side)"},
      {{"--crop-padding", "15"}, "--crop-padding 15: at most 14"},
      {{"--momentum", "5"}, "--momentum 5: expected a value in [0, 1)"},
      {{"--momentum", "1"}, "--momentum 1: expected a value in [0, 1)"},
      {{"--momentum", "-0.1"}, "--momentum -0.1: expected a value in [0, 1)"},
      {{"--warmup", "2"}, "--warmup 2: expected fewer warm-up epochs than the run's 2"},
      {{"--warmup", "-1"}, "--warmup -1: expected fewer warm-up epochs"},
      {{"--lr", "0"}, "--lr 0: expected a positive finite learning rate"},
      {{"--lr", "-1"}, "--lr -1: expected a positive finite learning rate"},
      {{"--lr", "inf"}, "--lr inf: expected a positive finite learning rate"},
      {{"--lr", "nan"}, "--lr nan: expected a positive finite learning rate"},
      {{"--epochs", "0"}, "--epochs 0: expected a whole number from 1 to 1000000"},
      {{"--batch", "0"}, "--batch 0: expected a whole number from 1 to 1048576"},
      {{"--batch", "9999999999999"}, "--batch 9999999999999: expected a whole number from 1 to 1048576"},
      {{"--weight-decay", "1"}, "--weight-decay 1: expected a value in [0, 1)"},
      {{"--pca-lighting", "5"}, "--pca-lighting 5: expected a standard deviation in [0, 1]"},
      {{"--optimizer", "rmsprop"}, "--optimizer rmsprop: expected sgd or adam"},
      {{"--nesterov", "--momentum", "0"}, "Nesterov momentum needs --momentum above 0"},
      {{"--validation", "-1"}, "--validation -1: expected a fraction in [0, 1)"},
      {{"--checkpoint-every", "-3"}, "--checkpoint-every -3: expected a whole number from 0"},
      {{"--validation", "0", "--schedule", "plateau"}, "--validation 0 leaves no validation set"},
  };
  for (const auto& [extra, message] : cases) {
    SCOPED_TRACE(extra.front() + " " + extra.back());
    const Result r = run(train_args("run", extra));
    expect_one_line_error(r);
    EXPECT_CONTAINS(r.err, message);
    EXPECT_FALSE(fs::exists(root_ / "run"));
  }
}

TEST_F(HardenTrain, ThreadCountsBeyondTheLimitAreUsageErrors) {
  const int most = std::min(1024, 16 * omp_get_num_procs());
  const std::string over = std::to_string(most + 1);
  const std::string expected = "expected 0 (all cores) to " + std::to_string(most) + " threads";
  for (const std::vector<std::string>& args :
       {train_args("run", {"--threads", "100000"}), train_args("run", {"--threads", over}),
        std::vector<std::string>{"eval", (root_ / "run").string(), "--threads", over},
        std::vector<std::string>{"bench", "lenet5", "--threads", over}, train_args("run", {"--threads", "-1"})}) {
    const Result r = run(args);
    EXPECT_FALSE(r.signalled);
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_CONTAINS(r.err, "--threads");
    EXPECT_CONTAINS(r.err, expected);
  }
  // The limit itself passes the option check (eval then fails on the missing checkpoint).
  const Result at_limit = run({"eval", (root_ / "none").string(), "--threads", std::to_string(most)});
  expect_one_line_error(at_limit);
  EXPECT_CONTAINS(at_limit.err, "no such checkpoint");
  EXPECT_FALSE(fs::exists(root_ / "run"));
}

TEST_F(HardenTrain, RangeErrorsPrintReadableBounds) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"summary", "lenet5", "--batch", "0"},
        std::vector<std::string>{"bench", "lenet5", "--batch", "-4"},
        std::vector<std::string>{"eval", "x", "--batch", "0"},
        std::vector<std::string>{"predict", "x", "y.png", "--top", "0"}}) {
    const Result r = run(args);
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_CONTAINS(r.err, "expected a whole number from 1 to ");
    EXPECT_EQ(r.err.find("179769"), std::string::npos) << r.err;  // DBL_MAX
    EXPECT_LT(r.err.size(), 300u) << r.err;
  }
}

TEST_F(HardenTrain, ParametersThatDoNotFitAreNotBlamedOnTheBatch) {
#ifdef __SANITIZE_ADDRESS__
  GTEST_SKIP() << "ASan aborts on an allocation this large instead of throwing std::bad_alloc";
#endif
  // 50 billion weights (200 GB) in one fc layer: no batch size makes them fit.
  write_file(root_ / "huge.cnet", "network huge\ninput 1x28x28\nwide fc 50000000000\nout fc 10\n");
  const Result r = run({"train", (root_ / "huge.cnet").string(), "--data", (root_ / "data").string(), "--out",
                        (root_ / "run").string(), "--batch", "1"});
  expect_one_line_error(r);
  EXPECT_EQ(r.err.find("--batch"), std::string::npos) << r.err;
  if (r.err.find("out of memory") != std::string::npos) {
    EXPECT_CONTAINS(r.err, "out of memory creating huge's parameters");
  }
  EXPECT_FALSE(fs::exists(root_ / "run"));
}

TEST_F(HardenTrain, FilesystemErrorsNameTheCommandAndThePath) {
  // A relative --data cannot be made absolute (stored so) when the current folder was deleted:
  // std::filesystem throws, and the message names the command and the path instead of
  // "unexpected error: filesystem error: ...".
  fs::create_directories(root_ / "gone");
  fs::current_path(root_ / "gone");
  fs::remove(root_ / "gone");
  const Result r = run({"train", "lenet5", "--data", "data", "--out", (root_ / "run").string()});
  expect_one_line_error(r);
  EXPECT_EQ(r.err.rfind("convnet: train: data: ", 0), 0u) << r.err;
  EXPECT_EQ(r.err.find("unexpected"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(root_ / "run"));
}

// ---- the output folder ----

// Runs `convnet ARGS...` as the unprivileged user `nobody` (root ignores folder permissions);
// stderr goes to `err`, the exit code is returned (-1 when it did not exit).
int run_as_nobody(std::vector<std::string> args, const fs::path& err) {
  std::vector<char*> argv{const_cast<char*>(CONVNET_CLI)};
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::freopen("/dev/null", "w", stdout) == nullptr || ::freopen(err.c_str(), "w", stderr) == nullptr) ::_exit(126);
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(125);
    if (::access(CONVNET_CLI, X_OK) != 0) ::_exit(124);  // the checkout is in a folder nobody cannot enter
    ::execv(CONVNET_CLI, argv.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_F(HardenTrain, UnwritableOutputFolderIsFoundBeforeTheFirstEpoch) {
  write_file(root_ / "a-file", "not a folder");
  const Result r = run(train_args("a-file/run"));
  expect_one_line_error(r);
  EXPECT_CONTAINS(r.err, "cannot create the output folder");
  EXPECT_EQ(read_file(root_ / "a-file"), "not a folder");

  fs::create_directories(root_ / "read-only");
  fs::permissions(root_ / "read-only", fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                                           fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec);
  const fs::path err = root_ / "err.txt";
  int code = 0;
  std::string message;
  if (::geteuid() == 0) {
    code = run_as_nobody(train_args("read-only"), err);
    message = read_file(err);
  } else {
    const Result r = run(train_args("read-only"));
    code = r.code;
    message = r.err;
  }
  fs::permissions(root_ / "read-only", fs::perms::owner_all);
  if (code == 124) GTEST_SKIP() << "user nobody cannot run " << CONVNET_CLI << " (a checkout in a private folder)";
  EXPECT_EQ(code, 1) << message;
  EXPECT_CONTAINS(message, (root_ / "read-only").string() + ": the output folder is not writable: Permission denied");
  EXPECT_EQ(std::count(message.begin(), message.end(), '\n'), 1) << message;
  EXPECT_TRUE(fs::is_empty(root_ / "read-only"));
}

TEST_F(HardenTrain, SecondRunIntoALockedFolderIsRefused) {
  fs::create_directories(root_ / "run");
  const int fd = ::open((root_ / "run" / "train.lock").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);  // as a running `convnet train` holds it
  const Result r = run(train_args("run"));
  ::close(fd);
  expect_one_line_error(r);
  EXPECT_CONTAINS(r.err, "another convnet train is writing to this folder");
  EXPECT_EQ(snapshot("run").size(), 1u);  // only the lock file
  ASSERT_EQ(run(train_args("run", {"--epochs", "1"})).code, 0);  // released: the folder is usable
}

TEST_F(HardenTrain, TemporaryFilesOfAKilledRunAreRemovedByTheNextOne) {
  ASSERT_EQ(run(train_args("run", {"--epochs", "1"})).code, 0);
  write_file(root_ / "run" / "checkpoint.safetensors.4242.tmp", "half a checkpoint");
  const auto checkpoint = read_file(root_ / "run" / "checkpoint.safetensors");
  ASSERT_EQ(run({"train", "--resume", "--out", (root_ / "run").string(), "--deterministic"}).code, 0);
  EXPECT_FALSE(fs::exists(root_ / "run" / "checkpoint.safetensors.4242.tmp"));
  EXPECT_EQ(read_file(root_ / "run" / "checkpoint.safetensors"), checkpoint);  // the run was complete: untouched
}

// ---- validation split and reporting ----

TEST_F(HardenTrain, EpochsAreEvaluatedOnValidationAndTheTestSetOnceAtTheEnd) {
  Result r = run(train_args("val", {"--epochs", "1"}));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_CONTAINS(r.out, "data " + (root_ / "data").string() + ": 469 train, 43 validation, 100 test images");
  EXPECT_CONTAINS(r.out, "| val loss");
  EXPECT_CONTAINS(r.out, "test accuracy: top-1");
  EXPECT_CONTAINS(r.out, "on 100 test images");
  EXPECT_EQ(lines_of(read_file(root_ / "val" / "metrics.csv")).at(0),
            "epoch,train_loss,train_top1,val_loss,val_top1,val_top5,lr,seconds");

  r = run(train_args("test", {"--epochs", "1", "--validation", "0"}));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_CONTAINS(r.out, "512 train, 100 test (no validation split: --validation 0), 100 test images");
  EXPECT_CONTAINS(r.out, "| test loss");
  EXPECT_EQ(lines_of(read_file(root_ / "test" / "metrics.csv")).at(0),
            "epoch,train_loss,train_top1,test_loss,test_top1,test_top5,lr,seconds");

  r = run(train_args("count", {"--epochs", "1", "--validation", "100"}));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_CONTAINS(r.out, "412 train, 100 validation, 100 test images");
}

TEST_F(HardenTrain, EvalRefusesAnEmptyOrMismatchedTestSet) {
  ASSERT_EQ(run(train_args("run", {"--epochs", "1"})).code, 0);
  fs::create_directories(root_ / "empty");
  write_idx_set(root_ / "empty", "train", 10, 1);
  write_idx_set(root_ / "empty", "t10k", 0, 2);
  Result r = run({"eval", (root_ / "run").string(), "--data", (root_ / "empty").string()});
  expect_one_line_error(r);
  // The IDX reader refuses an image file with no images before eval's own check is reached.
  EXPECT_CONTAINS(r.err, "t10k-images-idx3-ubyte: IDX image file holds no images (an empty dataset)");
  fs::create_directories(root_ / "small");
  write_idx_set(root_ / "small", "train", 10, 1, 20);
  write_idx_set(root_ / "small", "t10k", 10, 2, 20);
  r = run({"eval", (root_ / "run").string(), "--data", (root_ / "small").string()});
  expect_one_line_error(r);
  EXPECT_CONTAINS(r.err, "test images are 1x20x20 but " + (root_ / "run").string() + " takes 1x28x28");
}

// ---- SIGINT / SIGTERM ----

TEST_F(HardenTrain, SigintCheckpointsPrintsTheResumeCommandAndExits130) {
  const std::vector<std::string> extra{"--epochs", "3", "--batch", "16", "--checkpoint-every", "3"};
  ASSERT_EQ(run(train_args("straight", extra)).code, 0);

  const fs::path checkpoint = root_ / "stopped" / "checkpoint.safetensors";
  const int status = signal_at_checkpoint(train_args("stopped", extra), checkpoint, root_ / "err.txt", SIGINT);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by the signal instead of stopping";
  EXPECT_EQ(WEXITSTATUS(status), 130);
  const std::string err = read_file(root_ / "err.txt");
  EXPECT_CONTAINS(err, "convnet: interrupted by SIGINT at epoch ");
  EXPECT_CONTAINS(err, "checkpoint saved in " + (root_ / "stopped").string());
  const std::string command = std::string(CONVNET_CLI) + " train --resume --out " + (root_ / "stopped").string() +
                              " --deterministic";
  EXPECT_CONTAINS(err, "; resume with: " + command + "\n");
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  const auto meta = checkpoint_meta(checkpoint);
  EXPECT_LT(meta.at("epoch").get<int>(), 3) << "the run finished before the signal";

  // The printed command continues the run to the same weights as the uninterrupted run.
  const Result resumed = run({"train", "--resume", "--out", (root_ / "stopped").string(), "--deterministic"});
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_CONTAINS(resumed.out, "test accuracy: top-1");
  expect_identical_tensors(root_ / "straight" / "checkpoint.safetensors", checkpoint);
}

TEST_F(HardenTrain, SigtermStopsTheSameWay) {
  const fs::path checkpoint = root_ / "run" / "checkpoint.safetensors";
  const int status = signal_at_checkpoint(train_args("run", {"--epochs", "3", "--batch", "16", "--checkpoint-every", "3"}),
                                        checkpoint, root_ / "err.txt", SIGTERM);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130);
  EXPECT_CONTAINS(read_file(root_ / "err.txt"), "convnet: interrupted by SIGTERM at epoch ");
  EXPECT_CONTAINS(read_file(root_ / "err.txt"), "resume with: ");
}

// ---- resume ----

TEST_F(HardenTrain, ResumeBannerShowsTheRunsStoredSettings) {
  ASSERT_EQ(run(train_args("run", {"--epochs", "1", "--batch", "16", "--lr", "0.07", "--momentum", "0.8",
                                   "--schedule", "step:5"})).code, 0);
  const Result r = run({"train", "--resume", "--out", (root_ / "run").string(), "--epochs", "2", "--deterministic"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_CONTAINS(r.out, "resuming lenet5 at epoch 2, batch 0/30, with the run's stored settings:");
  EXPECT_CONTAINS(r.out, "2 epochs, batch 16, sgd lr 0.07 momentum 0.8, weight decay 0.0005, step schedule every 5 epochs");
  EXPECT_CONTAINS(r.out, "epoch 2/2");
  // Without --epochs a finished run stays finished: its length is stored.
  const Result again = run({"train", "--resume", "--out", (root_ / "run").string(), "--deterministic"});
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_CONTAINS(again.out, "2 epochs, batch 16");
  EXPECT_EQ(lines_of(read_file(root_ / "run" / "metrics.csv")).size(), 3u);
}

TEST_F(HardenTrain, ResumeRefusesToChangeACosineSchedulesLength) {
  ASSERT_EQ(run(train_args("run", {"--epochs", "1", "--schedule", "cosine"})).code, 0);
  const auto before = snapshot("run");
  Result r = run({"train", "--resume", "--out", (root_ / "run").string(), "--epochs", "3"});
  expect_one_line_error(r);
  EXPECT_CONTAINS(r.err, "--epochs 3: this run's cosine schedule spans 1 epochs");
  EXPECT_EQ(snapshot("run"), before);
  ASSERT_EQ(run({"train", "--resume", "--out", (root_ / "run").string(), "--epochs", "1", "--deterministic"}).code, 0);
}

TEST_F(HardenTrain, ResumeRefusesFewerEpochsThanAlreadyDone) {
  ASSERT_EQ(run(train_args("run")).code, 0);
  const auto before = snapshot("run");
  const Result r = run({"train", "--resume", "--out", (root_ / "run").string(), "--epochs", "1"});
  expect_one_line_error(r);
  EXPECT_CONTAINS(r.err, "--epochs 1: the run in " + (root_ / "run").string() + " has already completed 2 epochs");
  EXPECT_EQ(snapshot("run"), before);
}

TEST_F(HardenTrain, RelativeDataPathIsStoredAbsoluteSoEvalWorksElsewhere) {
  fs::current_path(root_);
  ASSERT_EQ(run({"train", "lenet5", "--data", "data", "--out", "run", "--epochs", "1", "--deterministic"}).code, 0);
  EXPECT_EQ(checkpoint_meta(root_ / "run" / "checkpoint.safetensors").at("data"), (root_ / "data").string());
  fs::create_directories(root_ / "elsewhere");
  fs::current_path(root_ / "elsewhere");
  const Result r = run({"eval", "../run"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_CONTAINS(r.out, "on 100 test images");
}

TEST_F(HardenTrain, CheckpointInputShapeOfNonIntegersIsRefusedByEval) {
  // Found by fuzz_checkpoint: an input_shape entry of 1.8e20 was cast to an integer (undefined).
  ASSERT_EQ(run(train_args("run", {"--epochs", "1", "--batch", "16"})).code, 0);
  const fs::path checkpoint = root_ / "run" / "checkpoint.safetensors";
  nlohmann::json meta = checkpoint_meta(checkpoint);
  for (const nlohmann::json& shape : {nlohmann::json{1, 1.8e20, 28}, nlohmann::json{1, 28.5, 28}}) {
    meta["input_shape"] = shape;
    set_checkpoint_meta(checkpoint, meta);
    const Result r = run({"eval", (root_ / "run").string()});
    expect_one_line_error(r);
    EXPECT_CONTAINS(r.err, checkpoint.string() + ": corrupted checkpoint metadata");
  }
}

TEST_F(HardenTrain, CorruptedCheckpointMetadataNamesTheCheckpointAndField) {
  ASSERT_EQ(run(train_args("run", {"--epochs", "1", "--batch", "16"})).code, 0);
  const fs::path checkpoint = root_ / "run" / "checkpoint.safetensors";
  const nlohmann::json good = checkpoint_meta(checkpoint);
  const std::vector<std::pair<std::function<void(nlohmann::json&)>, std::string>> cases = {
      {[](nlohmann::json& m) { m["epoch"] = -5; }, "checkpoint field 'epoch' is -5; expected 0 to 2"},
      {[](nlohmann::json& m) { m["epoch"] = 7; }, "checkpoint field 'epoch' is 7; expected 0 to 2"},
      {[](nlohmann::json& m) { m["batch"] = 500; }, "checkpoint field 'batch' is 500; expected 0 to 29"},
      {[](nlohmann::json& m) { m["batch"] = 30; }, "checkpoint field 'batch' is 30; expected 0 to 29"},
      {[](nlohmann::json& m) { m["step"] = 3; }, "checkpoint field 'step' is 3; expected 30"},
      {[](nlohmann::json& m) { m["epoch"] = "one"; }, "checkpoint field 'epoch' has the wrong type"},
      // Numbers a cast would make undefined (found by fuzz_checkpoint: 1.8e20 as an integer).
      {[](nlohmann::json& m) { m["epoch"] = 1.8e20; }, "checkpoint field 'epoch' has the wrong type"},
      {[](nlohmann::json& m) { m["batch"] = 2.5; }, "checkpoint field 'batch' has the wrong type"},
      {[](nlohmann::json& m) { m["settings"]["crop_padding"] = 1e20; },
       "checkpoint field 'crop_padding' has the wrong type"},
      {[](nlohmann::json& m) { m["schedule"]["bad_epochs"] = -1e300; }, "checkpoint field schedule: expected numbers"},
      {[](nlohmann::json& m) { m.erase("rng"); }, "checkpoint field 'rng' is missing"},
      {[](nlohmann::json& m) { m["rng"] = "garbage"; }, "checkpoint field 'rng' is not a generator state"},
      {[](nlohmann::json& m) { m["metrics"] = nlohmann::json::array(); }, "checkpoint field 'metrics' holds 0 rows"},
      {[](nlohmann::json& m) { m["seen"] = -1; }, "checkpoint field 'seen' is -1"},
      {[](nlohmann::json& m) { m["settings"]["schedule"] = "sawtooth"; },
       "checkpoint setting 'schedule' is sawtooth: expected constant"},
      {[](nlohmann::json& m) { m["settings"]["momentum"] = 5; }, "checkpoint setting 'momentum' is 5"},
      {[](nlohmann::json& m) { m["settings"]["batch"] = 0; }, "checkpoint setting 'batch' is 0"},
      {[](nlohmann::json& m) { m["settings"]["normalization"] = 9; }, "checkpoint setting 'normalization' is 9"},
      {[](nlohmann::json& m) { m["settings"].erase("lr"); }, "checkpoint field 'lr' is missing"},
      {[](nlohmann::json& m) { m["schedule"]["plateau_lr"] = -1; }, "checkpoint field schedule: plateau_lr"},
      {[](nlohmann::json& m) { m["normalization"]["mode"] = "odd"; }, "checkpoint field normalization: unknown mode"},
      {[](nlohmann::json& m) { m.erase("schedule"); }, "checkpoint field 'schedule' is missing"},
  };
  for (const auto& [corrupt, message] : cases) {
    SCOPED_TRACE(message);
    nlohmann::json meta = good;
    corrupt(meta);
    set_checkpoint_meta(checkpoint, meta);
    const auto before = snapshot("run");
    const Result r = run({"train", "--resume", "--out", (root_ / "run").string(), "--epochs", "2"});
    expect_one_line_error(r);
    EXPECT_CONTAINS(r.err, checkpoint.string() + ": ");
    EXPECT_EQ(r.err.find(checkpoint.string()), r.err.rfind(checkpoint.string())) << "named twice: " << r.err;
    EXPECT_CONTAINS(r.err, message);
    EXPECT_EQ(snapshot("run"), before);
  }
}

}  // namespace
