// Distributed training: the backward's gradient-ready hook that the bucketed all-reduce rides
// on, and `mpirun -np N convnet train` on localhost: deterministic ranks give the single process's
// checkpoint bit for bit, the fast mode stays close to it, a killed or hung rank stops the job
// with a message naming it, and the run resumes with another rank count to the same bits; one
// rank's failure reaches every rank (this binary run by mpirun).
#include <gtest/gtest.h>
#include <signal.h>
#include <stb/stb_image_write.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <random>
#include <thread>

#include "convnet/distributed/communicator.hpp"
#include "convnet/distributed/towers.hpp"
#include "convnet/model/model.hpp"
#include "support/cli.hpp"
#include "support/plan_checks.hpp"
#include "support/train_data.hpp"

namespace {

using namespace convnet;
using namespace convnet::testing;
using Clock = std::chrono::steady_clock;

// The hook fires once per learnable node, when its gradients are complete: a snapshot taken in
// the hook equals the final gradient (so an all-reduce started there sums the right values).
TEST(GradientHook, ReportsEachNodeOnceWhenItsGradientsAreFinal) {
  for (const auto& [name, input_shape] : {std::pair{"lenet5", "1x28x28"}, std::pair{"resnet20", "1x28x28"},
                                          std::pair{"cifar10-quick", "3x32x32"}, std::pair{"resnet110-sd", "3x32x32"},
                                          std::pair{"densenet121", "3x32x32"}}) {
    LoadOptions load;
    load.input_shape = parse_input_option(input_shape);
    Net net = load_model(name, load);
    Executor executor(net, {.backend = Backend::OneDnn, .seed = 7});
    const Tensor input = random_tensor(batched(net, net.inputs()[0], 2), 3);
    const Tensor grad_output = random_tensor(batched(net, net.output(), 2), 5);
    executor.forward(input, true);
    ASSERT_NE(executor.last_plan(), nullptr) << name;
    executor.zero_grad();
    ParamStore& store = executor.parameter_store();
    std::vector<std::vector<std::vector<float>>> seen(net.nodes().size());
    std::vector<int> calls(net.nodes().size(), 0);
    executor.backward(grad_output, [&](int node) {
      ++calls[static_cast<size_t>(node)];
      for (const Tensor& g : store.grads(static_cast<size_t>(node))) {
        seen[static_cast<size_t>(node)].push_back(g.empty() ? std::vector<float>() : std::vector<float>(g.span().begin(), g.span().end()));
      }
    });
    for (size_t n = 0; n < net.nodes().size(); ++n) {
      const bool learnable = net.nodes()[n].learnable();
      ASSERT_EQ(calls[n], learnable ? 1 : 0) << name << ": " << net.nodes()[n].name;
      for (size_t p = 0; p < seen[n].size(); ++p) {
        const Tensor& g = store.grads(n)[p];
        if (g.empty()) continue;  // a buffer's
        ASSERT_EQ(0, std::memcmp(seen[n][p].data(), g.data(), seen[n][p].size() * sizeof(float)))
            << name << ": " << net.nodes()[n].name << " parameter " << p << " changed after the hook";
      }
    }
  }
}

// The synchronised batch norm's own maths (statistics summed through the hook, here over one
// process) gives the gradients of the compiled training plan's oneDNN batch norm.
TEST(SyncBatchNorm, OneRankEqualsThePlannedBatchNorm) {
  LoadOptions load;
  load.input_shape = parse_input_option("1x28x28");
  Net net = load_model("resnet20", load);
  const Tensor input = random_tensor(batched(net, net.inputs()[0], 8), 1);
  const Tensor grad_output = random_tensor(batched(net, net.output(), 8), 2);
  auto gradients = [&](bool synchronized) {
    Executor executor(net, {.backend = Backend::OneDnn, .seed = 7, .plan_training = !synchronized});
    int sums = 0;
    if (synchronized) executor.context().sum_over_ranks = [&](std::span<double>) { ++sums; };
    executor.forward(input, true);
    executor.zero_grad();
    executor.backward(grad_output);
    EXPECT_EQ(sums, synchronized ? 2 * 21 : 0) << "a forward and a backward sum per batch norm (21 of them)";
    const std::span<float> block = executor.parameter_store().grad_block();
    return std::vector<float>(block.begin(), block.end());
  };
  const std::vector<float> planned = gradients(false), synchronized = gradients(true);
  float scale = 0, diff = 0;
  for (size_t i = 0; i < planned.size(); ++i) {
    scale = std::max(scale, std::abs(planned[i]));
    diff = std::max(diff, std::abs(planned[i] - synchronized[i]));
  }
  EXPECT_LT(diff, 1e-5f * scale);
}

// Rank 0 of two, for splitting without talking (the constructor only slices).
struct FirstOfTwo : Communicator {
  [[nodiscard]] int size() const override { return 2; }
};

// The notes' AlexNet on two GPUs: conv2, conv4 and conv5 read their own GPU's half, conv3 and the
// fc layers read both; here LRN and dropout also see the whole volume (their single-process maths).
TEST(TowerSplit, AlexNetExchangesWhereALayerReadsEveryChannel) {
  Net net = load_model("alexnet-2gpu");
  ParamStore store(net);
  for (size_t p = 0; p < store.value_block().size(); ++p) store.value_block()[p] = static_cast<float>(p % 1000);
  FirstOfTwo comm;
  TowerSplit towers(net, store, comm, {.backend = Backend::OneDnn});
  EXPECT_EQ(towers.describe(),
            "stage 0: conv relu -> exchange\n"
            "stage 1: lrn maxpool -> slice\n"
            "stage 2: conv relu -> exchange\n"
            "stage 3: lrn maxpool conv relu conv relu conv relu maxpool -> exchange\n"
            "stage 4: fc relu -> exchange\n"
            "stage 5: dropout fc relu -> exchange\n"
            "stage 6: dropout fc -> exchange\n");
  // Rank 0 holds the first half of every parameter's rows, under the full net's names.
  int64_t held = 0;
  for (const NamedParameter& p : towers.named_parameters()) {
    const int node = net.find(p.name.substr(0, p.name.rfind('.')));
    ASSERT_GE(node, 0) << p.name;
    const Tensor& full = store.values(static_cast<size_t>(node))[p.name.ends_with("weight") ? 0 : 1];
    ASSERT_EQ(p.value->numel() * 2, full.numel()) << p.name;
    EXPECT_EQ(0, std::memcmp(p.value->data(), full.data(), static_cast<size_t>(p.value->numel()) * sizeof(float))) << p.name;
    held += p.value->numel();
  }
  EXPECT_EQ(held * 2, 60'965'224);
}

TEST(TowerSplit, RefusesWhatDoesNotSplitNamingTheLayer) {
  FirstOfTwo comm;
  auto refusal = [&](const std::string& text) {
    Net net = load_model_text(text, "t.cnet");
    ParamStore store(net);
    try {
      TowerSplit towers(net, store, comm, {.backend = Backend::OneDnn});
    } catch (const SpecError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_CONTAINS(refusal("network r\ninput 4x8x8\nc conv 4 3x3 pad 1\nresidual\n  d conv 4 3x3 pad 1\nend\nf fc 2\n"),
                  "only a chain of layers splits into towers");
  EXPECT_CONTAINS(refusal("network r\ninput 4x8x8\nc conv 3 3x3 pad 1\nf fc 2\n"), "c (conv): 3 outputs do not divide");
  EXPECT_CONTAINS(refusal("network r\ninput 6x8x8\nc conv 6 3x3 pad 1 groups 3\nf fc 2\n"), "groups do not divide");
  EXPECT_CONTAINS(refusal("network r\ninput 4x8x8\nc conv 4 3x3 pad 1\nm maxout 2\nf fc 2\n"), "m (maxout): no tower split");
}

// Runs mpirun with `ranks` copies of `PROGRAM ARGS...` (convnet by default) on this host.
std::vector<std::string> mpirun(int ranks, const std::vector<std::string>& args,
                                const std::string& program = CONVNET_CLI) {
  std::vector<std::string> command{"--oversubscribe", "-np", std::to_string(ranks)};
  if (::geteuid() == 0) command.insert(command.begin(), "--allow-run-as-root");
  command.push_back(program);
  command.insert(command.end(), args.begin(), args.end());
  return command;
}

// OpenMPI's own allocations are not ours to leak-check (the sanitizer build).
class DistributedTraining : public TrainFolderTest {
 protected:
  DistributedTraining() : TrainFolderTest("convnet_mpi_test_", 6400, 200) {}
  void SetUp() override {
    if (!built_with_mpi()) GTEST_SKIP() << "built without MPI (install libopenmpi-dev and openmpi-bin)";
    ::setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
    TrainFolderTest::SetUp();
  }
  [[nodiscard]] std::vector<std::string> run_args(const std::string& out, std::vector<std::string> extra = {}) const {
    std::vector<std::string> args{"train", "lenet5", "--data", (root_ / "data").string(), "--out",
                                  (root_ / out).string(), "--batch", "64", "--lr", "0.05", "--validation", "0"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
};

// Processes whose command line holds `marker` and whose MPI rank is `rank`.
std::vector<pid_t> rank_processes(const std::string& marker, int rank) {
  std::vector<pid_t> found;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string pid = entry.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string cmdline = read_file(entry.path() / "cmdline");
    if (cmdline.find(CONVNET_CLI) != 0 || cmdline.find(marker) == std::string::npos) continue;
    std::string environ = read_file(entry.path() / "environ");
    std::replace(environ.begin(), environ.end(), '\0', '\n');
    if (("\n" + environ).find("\nOMPI_COMM_WORLD_RANK=" + std::to_string(rank) + "\n") != std::string::npos) {
      found.push_back(static_cast<pid_t>(std::stoi(pid)));
    }
  }
  return found;
}

// Starts mpirun in the background; once `checkpoint` exists sends `signal` to rank 1 and returns
// the seconds until mpirun exited, with its exit code and stderr.
struct Stopped {
  double seconds = 0;
  int code = -1;
  std::string err;
};
Stopped signal_rank_one(const std::vector<std::string>& command, const fs::path& checkpoint, const fs::path& out,
                        int signal) {
  std::vector<std::string> args = command;
  std::vector<char*> argv{const_cast<char*>("mpirun")};
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const fs::path err = out.string() + ".err";
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::freopen("/dev/null", "w", stdout) == nullptr || ::freopen(err.c_str(), "w", stderr) == nullptr) ::_exit(126);
    ::execvp("mpirun", argv.data());
    ::_exit(127);
  }
  const auto deadline = Clock::now() + std::chrono::seconds(120);
  while (!fs::exists(checkpoint) && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const std::vector<pid_t> victims = rank_processes(out.string(), 1);
  EXPECT_EQ(victims.size(), 1u) << "rank 1 of the run not found";
  for (pid_t v : victims) ::kill(v, signal);
  const auto sent = Clock::now();
  int status = 0;
  ::waitpid(pid, &status, 0);
  Stopped s{std::chrono::duration<double>(Clock::now() - sent).count(), WIFEXITED(status) ? WEXITSTATUS(status) : -1,
            read_file(err)};
  for (pid_t v : victims) ::kill(v, SIGKILL);  // a stopped rank that outlived the job
  return s;
}

TEST_F(DistributedTraining, DeterministicRanksGiveTheSingleProcessCheckpointBitForBit) {
  // 6,400 images, batch 64: 100 steps an epoch, 300 in all.
  const std::vector<std::string> extra{"--epochs", "3", "--deterministic"};
  const Result one = run(run_args("one", extra));
  ASSERT_EQ(one.code, 0) << one.err;
  const Result two = run_program("mpirun", mpirun(2, run_args("two", extra)));
  ASSERT_EQ(two.code, 0) << two.err;
  EXPECT_CONTAINS(two.out, "2 ranks (deterministic: 8 gradient groups per batch)");
  EXPECT_EQ(two.out.find("test accuracy"), two.out.rfind("test accuracy")) << "rank 0 alone reports:\n" << two.out;
  EXPECT_CONTAINS(two.out, "MB of gradients summed per step");
  expect_identical_tensors(root_ / "one" / "checkpoint.safetensors", root_ / "two" / "checkpoint.safetensors");
  // The metrics too, but for the seconds column.
  auto without_seconds = [](const fs::path& csv) {
    std::string rows;
    for (const std::string& line : lines_of(read_file(csv))) rows += line.substr(0, line.rfind(',')) + "\n";
    return rows;
  };
  EXPECT_EQ(without_seconds(root_ / "one" / "metrics.csv"), without_seconds(root_ / "two" / "metrics.csv"));
}

TEST_F(DistributedTraining, FastModeStaysCloseToTheSingleProcess) {
  // Sums in MPI's order, each rank half the batch: the same maths, other roundings (20 steps).
  const std::vector<std::string> extra{"--epochs", "1", "--limit", "1280"};
  ASSERT_EQ(run(run_args("one", extra)).code, 0);
  const Result two = run_program("mpirun", mpirun(2, run_args("two", extra)));
  ASSERT_EQ(two.code, 0) << two.err;
  EXPECT_CONTAINS(two.out, "gradients all-reduced in buckets during the backward pass");
  const auto a = read_safetensors((root_ / "one" / "checkpoint.safetensors").string()).tensors;
  const auto b = read_safetensors((root_ / "two" / "checkpoint.safetensors").string()).tensors;
  for (const auto& [name, t] : a) {
    double diff = 0, norm = 0;
    for (size_t i = 0; i < t.values.size(); ++i) {
      diff += std::pow(t.values[i] - b.at(name).values[i], 2);
      norm += std::pow(t.values[i], 2);
    }
    EXPECT_LT(std::sqrt(diff), 1e-4 * std::sqrt(norm) + 1e-6) << name;
  }
}

// The largest difference between two checkpoints' tensors, relative to each tensor's largest value.
double largest_relative_difference(const fs::path& a, const fs::path& b) {
  const auto first = read_safetensors(a.string()).tensors;
  const auto second = read_safetensors(b.string()).tensors;
  double worst = 0;
  for (const auto& [name, t] : first) {
    double scale = 0, diff = 0;
    for (size_t i = 0; i < t.values.size(); ++i) {
      scale = std::max(scale, static_cast<double>(std::abs(t.values[i])));
      diff = std::max(diff, static_cast<double>(std::abs(t.values[i] - second.at(name).values[i])));
    }
    worst = std::max(worst, diff / std::max(scale, 1e-30));
  }
  return worst;
}

TEST_F(DistributedTraining, SyncBatchNormGivesTheSingleProcessStatistics) {
  // ResNet-20, one step of 64 images: with --sync-bn two ranks of 32 normalise with the 64 images'
  // statistics, as one process does; without it, each with its own 32 (another step altogether).
  const std::vector<std::string> extra{"--epochs", "1", "--limit", "64", "--threads", "1"};
  auto args = [&](const std::string& out, bool sync) {
    std::vector<std::string> a = run_args(out, extra);
    a[1] = "resnet20";
    if (sync) a.push_back("--sync-bn");
    return a;
  };
  ASSERT_EQ(run(args("one", true)).code, 0);
  const Result synced = run_program("mpirun", mpirun(2, args("synced", true)));
  ASSERT_EQ(synced.code, 0) << synced.err;
  const Result apart = run_program("mpirun", mpirun(2, args("apart", false)));
  ASSERT_EQ(apart.code, 0) << apart.err;
  const fs::path one = root_ / "one" / "checkpoint.safetensors";
  EXPECT_LT(largest_relative_difference(one, root_ / "synced" / "checkpoint.safetensors"), 1e-5);
  EXPECT_GT(largest_relative_difference(one, root_ / "apart" / "checkpoint.safetensors"), 1e-2);
}

TEST_F(DistributedTraining, KilledRankStopsTheJobAndTheRunResumesOnOneProcessToTheSameBits) {
  const std::vector<std::string> extra{"--epochs", "2", "--deterministic", "--checkpoint-every", "30"};
  ASSERT_EQ(run(run_args("straight", extra)).code, 0);
  const fs::path out = root_ / "killed";
  const Stopped s = signal_rank_one(mpirun(2, run_args("killed", extra)), out / "checkpoint.safetensors", out, SIGKILL);
  EXPECT_NE(s.code, 0);
  EXPECT_LT(s.seconds, 30);
  EXPECT_CONTAINS(s.err, "rank 1");
  const Result resumed = run({"train", "--resume", "--out", out.string(), "--deterministic"});
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  expect_identical_tensors(root_ / "straight" / "checkpoint.safetensors", out / "checkpoint.safetensors");
}

TEST_F(DistributedTraining, HungRankIsNamedAfterTheTimeout) {
  const fs::path out = root_ / "hung";
  const std::vector<std::string> extra{"--epochs", "3", "--deterministic", "--checkpoint-every", "10", "--timeout", "3"};
  const Stopped s = signal_rank_one(mpirun(2, run_args("hung", extra)), out / "checkpoint.safetensors", out, SIGSTOP);
  EXPECT_NE(s.code, 0);
  EXPECT_LT(s.seconds, 30);
  EXPECT_CONTAINS(s.err, "rank(s) 1 stopped or hung");
  EXPECT_TRUE(fs::exists(out / "checkpoint.safetensors"));
}

TEST_F(DistributedTraining, TwoTowerAlexNetStepEqualsTheSingleProcessStep) {
  // alexnet-2gpu with two classes, on 227x227 noise images in class folders; one step of 4 images.
  const fs::path data = root_ / "images";
  std::mt19937 rng(3);
  std::vector<uint8_t> pixels(227 * 227 * 3);
  for (const char* split : {"train", "test"}) {
    for (const char* label : {"a", "b"}) {
      fs::create_directories(data / split / label);
      for (int i = 0; i < 2; ++i) {
        for (uint8_t& p : pixels) p = static_cast<uint8_t>(rng() & 255);
        const fs::path file = data / split / label / (std::to_string(i) + ".png");
        ASSERT_NE(stbi_write_png(file.c_str(), 227, 227, 3, pixels.data(), 227 * 3), 0);
      }
    }
  }
  std::string model = run({"show", "alexnet-2gpu"}).out;
  model.replace(model.find("fc8   fc 1000"), 13, "fc8   fc 2");
  write_file(root_ / "alexnet2.cnet", model);
  auto args = [&](const std::string& out) {
    return std::vector<std::string>{"train", (root_ / "alexnet2.cnet").string(), "--data", data.string(), "--out",
                                    (root_ / out).string(), "--epochs", "1", "--batch", "4", "--validation", "0",
                                    "--threads", "1"};
  };
  const Result one = run(args("one"));
  ASSERT_EQ(one.code, 0) << one.err;
  std::vector<std::string> towers = args("towers");
  towers.insert(towers.end(), {"--towers", "2"});
  const Result two = run_program("mpirun", mpirun(2, towers));
  ASSERT_EQ(two.code, 0) << two.err;
  EXPECT_CONTAINS(two.out, "2 towers, one per rank");
  // Weights and momentum (the first step's gradient plus weight decay) in the single-process
  // layout; f32 sums over the same terms in other orders: 1e-5 of each tensor's scale.
  const auto a = read_safetensors((root_ / "one" / "checkpoint.safetensors").string()).tensors;
  const auto b = read_safetensors((root_ / "towers" / "checkpoint.safetensors").string()).tensors;
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    ASSERT_EQ(t.shape, b.at(name).shape) << name;
    float scale = 0, diff = 0;
    for (size_t i = 0; i < t.values.size(); ++i) {
      scale = std::max(scale, std::abs(t.values[i]));
      diff = std::max(diff, std::abs(t.values[i] - b.at(name).values[i]));
    }
    EXPECT_LE(diff, 1e-5f * scale) << name;
  }
}

TEST_F(DistributedTraining, DeterministicModeRefusesRankCountsItCannotSplitEvenly) {
  const Result r = run_program("mpirun", mpirun(3, run_args("three", {"--epochs", "1", "--deterministic"})));
  EXPECT_NE(r.code, 0);
  EXPECT_CONTAINS(r.err, "must be a power of two and a multiple of the ranks (3)");
  EXPECT_FALSE(fs::exists(root_ / "three" / "checkpoint.safetensors"));
}

// Each rank of `mpirun -np 2 convnet_tests --gtest_filter=MpiRanks.*` (started by the test after
// it): a failure one rank saw reaches every rank as the same CollectiveError, the lowest failing
// rank's message wins, and the ranks still talk afterwards. Skipped outside mpirun.
TEST(MpiRanks, AFailureOfOneRankIsEveryRanksError) {
  if (!launched_by_mpirun()) GTEST_SKIP() << "runs under mpirun, from MpiRanks.AgreementRunsOnTwoRanks";
  Communicator& comm = world();
  ASSERT_EQ(comm.size(), 2);
  comm.set_timeout(60);
  EXPECT_NO_THROW(comm.agree(""));
  const auto message_of = [&](const std::string& mine) -> std::string {
    try {
      comm.agree(mine);
    } catch (const CollectiveError& e) {
      return e.what();
    }
    return "(no error)";
  };
  EXPECT_EQ(message_of(comm.rank() == 1 ? "image 7 is not finite" : ""), "rank 1: image 7 is not finite");
  EXPECT_EQ(message_of(comm.rank() == 0 ? "bad label" : ""), "bad label");
  EXPECT_EQ(message_of("failed on rank " + std::to_string(comm.rank())), "failed on rank 0");
  double value = comm.rank() + 1.0;
  comm.sum(std::span<double>(&value, 1));
  EXPECT_EQ(value, 3.0);
}

TEST(MpiRanks, AgreementRunsOnTwoRanks) {
  if (!built_with_mpi()) GTEST_SKIP() << "built without MPI (install libopenmpi-dev and openmpi-bin)";
  ::setenv("ASAN_OPTIONS", "detect_leaks=0", 1);  // OpenMPI's own allocations
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  const Result r = run_program(
      "mpirun", mpirun(2, {"--gtest_color=no", "--gtest_filter=MpiRanks.AFailureOfOneRankIsEveryRanksError"}, self));
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  size_t passed = 0;
  for (size_t at = r.out.find("[       OK ] MpiRanks."); at != std::string::npos;
       at = r.out.find("[       OK ] MpiRanks.", at + 1)) {
    ++passed;
  }
  EXPECT_EQ(passed, 2u) << r.out;  // one per rank, neither skipped
}

}  // namespace
