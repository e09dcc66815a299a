// What the commands write, and options they would otherwise ignore (issue 8, a second adversarial
// pass over visualize, report, export, import and quantize): an output that is a device, FIFO,
// folder or dangling link is refused and left as it is, a symbolic link is written through, an
// output that is one of the command's inputs is refused, a failing command leaves existing files
// as they were, a quantized folder is not resumed, a checkpoint's normalisation must fit its input,
// and options that would change nothing are errors.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "convnet/data/dataset.hpp"
#include "convnet/error.hpp"
#include "convnet/executor.hpp"
#include "convnet/interop/onnx.hpp"
#include "convnet/io/atomic_file.hpp"
#include "convnet/model/model.hpp"
#include "convnet/train/trained_model.hpp"
#include "support/cli.hpp"
#include "support/onnx_files.hpp"
#include "support/train_data.hpp"

namespace convnet {
namespace {

using namespace convnet::testing;

bool is_png(const fs::path& path) { return read_file(path).rfind("\x89PNG", 0) == 0; }

// One LeNet-5 run on generated data for the suite, its ONNX export and a quantized copy
// (make_lenet_suite).
class HardenOutputs : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("convnet_harden_outputs_test_" + std::to_string(::getpid()));
    ready_ = make_lenet_suite(root_);
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }
  void SetUp() override {
    ASSERT_TRUE(ready_) << "training, exporting or quantizing the suite's run failed";
    fs::current_path(root_);
  }
  void TearDown() override { fs::current_path(fs::temp_directory_path()); }

  static std::string path(const std::string& name) { return (root_ / name).string(); }

  static fs::path root_;
  static bool ready_;
};

fs::path HardenOutputs::root_;
bool HardenOutputs::ready_ = false;

TEST_F(HardenOutputs, AnOutputThatIsNotARegularFileIsRefusedAndKept) {
  ASSERT_EQ(::mkfifo(path("fifo.png").c_str(), 0644), 0);
  fs::create_symlink("/dev/null", root_ / "null.png");
  fs::create_symlink(root_ / "nothing-here", root_ / "dangling.png");
  fs::create_directory(root_ / "folder.png");
  const std::vector<std::pair<std::string, std::string>> cases{
      {"fifo.png", "fifo.png: is not a regular file (a device, FIFO or socket); not replaced"},
      {"null.png", "null.png: is not a regular file (a device, FIFO or socket); not replaced"},
      {"dangling.png", "dangling.png: is a symbolic link to nothing; not replaced"},
      {"folder.png", "folder.png: is a folder; give a file name to write"}};
  for (const auto& [name, message] : cases) {
    const Result r = run({"visualize", "filters", path("run"), "c1", "-o", path(name)});
    expect_one_line_error(r);
    EXPECT_CONTAINS(r.err, message);
  }
  EXPECT_TRUE(fs::is_fifo(root_ / "fifo.png"));
  EXPECT_TRUE(fs::is_symlink(root_ / "null.png"));
  EXPECT_TRUE(fs::is_character_file("/dev/null"));
  EXPECT_TRUE(fs::is_symlink(root_ / "dangling.png"));
  EXPECT_TRUE(fs::is_directory(root_ / "folder.png"));
  EXPECT_THROW((void)replaceable_target(path("fifo.png")), IoError);
  EXPECT_EQ(replaceable_target(path("new.png")), path("new.png"));
}

TEST_F(HardenOutputs, ASymbolicLinkIsWrittenThrough) {
  write_file(root_ / "real.png", "old");
  fs::create_symlink(root_ / "real.png", root_ / "link.png");
  const Result r = run({"visualize", "filters", path("run"), "c1", "-o", path("link.png")});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::is_symlink(root_ / "link.png"));
  EXPECT_TRUE(is_png(root_ / "real.png"));
}

TEST_F(HardenOutputs, AnOutputThatIsAnInputOrOfAnotherKindIsRefused) {
  const std::string checkpoint = path("run/checkpoint.safetensors");
  fs::create_symlink(checkpoint, root_ / "checkpoint-link.png");  // the same file under a picture's name
  const std::string before = read_file(checkpoint), onnx_before = read_file(root_ / "run.onnx"),
                    image_before = read_file(root_ / "image.png"),
                    metrics_before = read_file(root_ / "run/metrics.csv");
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
      {{"report", path("run"), "-o", checkpoint}, "the output must be a file name ending in .html"},
      {{"plot", path("run"), "-o", path("run/metrics.csv")}, "the output must be a file name ending in .png"},
      {{"visualize", "filters", checkpoint, "c1", "-o", checkpoint}, "the output must be a file name ending in .png"},
      {{"visualize", "occlusion", path("run"), path("image.png"), "-o", path("image.png")},
       "is also what this command reads"},
      {{"visualize", "saliency", path("run"), "image.png", "-o", path("image.png")}, "is also what this command reads"},
      {{"export", path("run.onnx"), "-o", path("run.onnx")}, "is also what this command reads"},
      {{"visualize", "filters", checkpoint, "c1", "-o", path("checkpoint-link.png")},
       "is also what this command reads"},
      {{"forward", "lenet5", "--weights", checkpoint, "--images", checkpoint, "--out", checkpoint},
       "is also what this command reads"},
      {{"visualize", "filters", checkpoint, "c1", "-o", path(".png")}, "must be a file name ending in .png"},
      {{"export", path("run"), "-o", path("run.png")}, "the output must be a file name ending in .onnx"}};
  for (const auto& [args, message] : cases) {
    const Result r = run(args);
    expect_one_line_error(r);
    EXPECT_CONTAINS(r.err, message);
  }
  EXPECT_EQ(read_file(checkpoint), before);
  EXPECT_EQ(read_file(root_ / "run.onnx"), onnx_before);
  EXPECT_EQ(read_file(root_ / "image.png"), image_before);
  EXPECT_EQ(read_file(root_ / "run/metrics.csv"), metrics_before);
}

TEST_F(HardenOutputs, ExportingAnOnnxFileKeepsItsMetadata) {
  const Result r = run({"export", path("run.onnx"), "-o", path("copy.onnx")});
  ASSERT_EQ(r.code, 0) << r.err;
  auto metadata = [](const fs::path& file) {
    std::map<std::string, std::string> m;
    const onnx::ModelProto model = read_model(file);
    for (const auto& entry : model.metadata_props()) m[entry.key()] = entry.value();
    return m;
  };
  const auto original = metadata(root_ / "run.onnx");
  EXPECT_TRUE(original.count(kOnnxNormalizationKey));
  EXPECT_EQ(metadata(root_ / "copy.onnx"), original);
  const Result eval = run({"eval", path("copy.onnx")});
  ASSERT_EQ(eval.code, 0) << eval.err;
  const std::string first = lines_of(eval.out).at(0);
  EXPECT_EQ(first.substr(first.find(" (")), [&] {
    const std::string line = lines_of(run({"eval", path("run")}).out).at(0);
    return line.substr(line.find(" ("));
  }());
}

TEST_F(HardenOutputs, AQdqFileIsNotReExported) {
  ASSERT_EQ(run({"export", path("q"), "-o", path("q.onnx")}).code, 0);
  const Result r = run({"export", path("q.onnx"), "-o", path("q-copy.onnx")});
  expect_one_line_error(r);
  EXPECT_CONTAINS(r.err, "is a QDQ (int8) file, which export does not rewrite; export the quantized run it came from");
  EXPECT_FALSE(fs::exists(root_ / "q-copy.onnx"));
}

TEST_F(HardenOutputs, AFileThatRecordsNoDatasetIsEvaluatedOnTheDefaultOne) {
  ASSERT_TRUE(fs::exists(kDefaultDataPath)) << kDefaultDataPath << " is missing: scripts/setup installs it";
  onnx::ModelProto model = read_model(root_ / "run.onnx");
  model.clear_metadata_props();
  write_model(model, root_ / "bare.onnx");
  const Result r = run({"eval", path("bare.onnx")});  // was an internal error (JSON value() on null metadata)
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_CONTAINS(r.out, "bare.onnx (f32): top-1 ");
  EXPECT_CONTAINS(r.out, " on 10000 test images");
}

TEST_F(HardenOutputs, ImportChecksEveryOutputBeforeWritingOne) {
  fs::create_directories(root_ / "imported" / "model.cnet");  // a folder where the model goes
  write_file(root_ / "imported" / "weights.safetensors", "kept");
  const Result r = run({"import", path("run.onnx"), "-o", path("imported")});
  expect_one_line_error(r);
  EXPECT_CONTAINS(r.err, "model.cnet: is a folder");
  EXPECT_EQ(read_file(root_ / "imported" / "weights.safetensors"), "kept");
}

TEST_F(HardenOutputs, ActivationsLeaveTheFolderAsItWasWhenTheyFail) {
  const Result first =
      run({"visualize", "activations", path("run"), path("image.png"), "--layers", "c1,s2", "-o", path("maps")});
  ASSERT_EQ(first.code, 0) << first.err;
  ASSERT_EQ(lines_of(first.out).size(), 2u) << first.out;
  const fs::path c1 = root_ / "maps" / "00-c1-28x28x6.png", s2 = root_ / "maps" / "01-s2-14x14x6.png";
  ASSERT_TRUE(is_png(c1));
  write_file(c1, "old");
  fs::remove(s2);
  fs::create_directory(s2);  // a folder in the second picture's place
  const Result blocked =
      run({"visualize", "activations", path("run"), path("image.png"), "--layers", "c1,s2", "-o", path("maps")});
  expect_one_line_error(blocked);
  EXPECT_CONTAINS(blocked.err, "01-s2-14x14x6.png: is a folder");
  EXPECT_EQ(read_file(c1), "old");
  EXPECT_EQ(std::distance(fs::directory_iterator(root_ / "maps"), fs::directory_iterator()), 2) << "no staging left";

  const Result unknown =
      run({"visualize", "activations", path("run"), path("image.png"), "--layers", "nosuch", "-o", path("new-maps")});
  expect_one_line_error(unknown);
  EXPECT_CONTAINS(unknown.err, "no layer 'nosuch'");
  EXPECT_FALSE(fs::exists(root_ / "new-maps"));
  const Result stray =
      run({"visualize", "activations", path("run"), path("image.png"), "--layers", ",", "-o", path("new-maps")});
  expect_one_line_error(stray);
  EXPECT_CONTAINS(stray.err, "--layers: '-o' is not a layer name");
}

TEST_F(HardenOutputs, AQuantizedFolderIsNotResumed) {
  const std::string before = read_file(root_ / "q" / "checkpoint.safetensors");
  const Result r = run({"train", "--resume", "--out", path("q"), "--epochs", "2"});
  expect_one_line_error(r);
  EXPECT_CONTAINS(r.err, "holds a quantized model (quantization.json from 'convnet quantize')");
  EXPECT_EQ(read_file(root_ / "q" / "checkpoint.safetensors"), before);
  EXPECT_FALSE(fs::exists(root_ / "q" / "metrics.csv"));
}

TEST_F(HardenOutputs, AReportsGivenDataMustServe) {
  fs::create_directories(root_ / "no-data");
  const Result r = run({"report", path("run"), "--data", path("no-data"), "-o", path("report.html")});
  expect_one_line_error(r);
  EXPECT_CONTAINS(r.err, "--data " + path("no-data") + ": no dataset found");
  EXPECT_FALSE(fs::exists(root_ / "report.html"));
}

TEST_F(HardenOutputs, OptionsThatWouldChangeNothingAreRefused) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
      {{"export", path("run"), "--seed", "5", "-o", path("seeded.onnx")},
       "--seed initialises a model's weights; '" + path("run") + "' has its own"},
      {{"eval", path("run"), "--agreement"}, "eval --agreement compares bf16 or int8 inference with f32"},
      {{"quantize", "lenet5", "-o", path("q2")}, "'lenet5' is not a training folder or checkpoint (.safetensors)"},
      {{"quantize", path("run.onnx"), "-o", path("q2")}, "is not a training folder or checkpoint"},
      {{"predict", "lenet5", path("image.png"), "--weights", path("run.onnx")},
       "an ONNX file holds a network with its weights; give it in place of the model"}};
  for (const auto& [args, message] : cases) {
    const Result r = run(args);
    expect_one_line_error(r);
    EXPECT_CONTAINS(r.err, message);
  }
  EXPECT_FALSE(fs::exists(root_ / "seeded.onnx"));
  EXPECT_FALSE(fs::exists(root_ / "q2"));
}

TEST_F(HardenOutputs, ACheckpointsNormalisationMustFitItsInput) {
  fs::create_directories(root_ / "three-means");
  const fs::path checkpoint = root_ / "three-means" / "checkpoint.safetensors";
  fs::copy_file(root_ / "run" / "checkpoint.safetensors", checkpoint);
  nlohmann::json meta = checkpoint_meta(checkpoint);
  meta["normalization"]["mean"] = {0.1, 0.2, 0.3};
  meta["normalization"]["std"] = {0.3, 0.3, 0.3};
  set_checkpoint_meta(checkpoint, meta);
  const Result r = run({"predict", checkpoint.string(), path("image.png")});  // failed later, naming no file
  expect_one_line_error(r);
  EXPECT_CONTAINS(
      r.err, checkpoint.string() + ": corrupted checkpoint: normalization has 3 mean values, images of 1x28x28 need 1");
}

TEST_F(HardenOutputs, ACheckpointTooSmallForItsNetworkIsRefusedBeforeItsParametersAreMade) {
  // Found by fuzz_checkpoint: 2.9 kB whose model text declared 42 million parameters took 31 s
  // (under ASan) to allocate and initialise them before the tensors were found missing.
  fs::create_directories(root_ / "wide");
  const fs::path checkpoint = root_ / "wide" / "checkpoint.safetensors";
  fs::copy_file(root_ / "run" / "checkpoint.safetensors", checkpoint);
  nlohmann::json meta = checkpoint_meta(checkpoint);
  std::string model = meta.at("model").get<std::string>();
  const size_t c5 = model.find("conv 120 5x5");
  ASSERT_NE(c5, std::string::npos) << model;
  model.replace(c5, std::string("conv 120").size(), "conv 9000000");  // 3.6 billion weights
  meta["model"] = model;
  set_checkpoint_meta(checkpoint, meta);
  const Result r = run({"eval", checkpoint.string(), "--data", (root_ / "data").string()});
  expect_one_line_error(r);
  EXPECT_CONTAINS(r.err, checkpoint.string() + ": its network 'lenet5' has ");
  EXPECT_CONTAINS(r.err, "bytes can hold: truncated, or not this network's checkpoint");
  const Result resume = run({"train", "--resume", "--out", (root_ / "wide").string()});
  expect_one_line_error(resume);
  EXPECT_CONTAINS(resume.err, "bytes can hold: truncated, or not this network's checkpoint");
}

TEST(HardenOutputsLibrary, TheRecordedDatasetOrTheDefault) {
  TrainedModel m;
  EXPECT_EQ(recorded_data_path(m), kDefaultDataPath);  // no metadata at all (a .cfg, a foreign ONNX file)
  m.meta = {{"data", "/data/cifar"}};
  EXPECT_EQ(recorded_data_path(m), "/data/cifar");
  m.meta = {{"data", 5}};
  EXPECT_EQ(recorded_data_path(m), kDefaultDataPath);
}

TEST(HardenOutputsLibrary, AnEmptyBatchSaysSo) {
  Net net = load_model_text("network tiny\ninput x 1x4x4\nfc 2\n", "tiny.cnet");
  Executor executor(net, {.backend = Backend::Reference});
  try {
    (void)executor.forward(Tensor({0, 1, 4, 4}), false);
    FAIL() << "an empty batch ran";
  } catch (const ShapeError& e) {
    EXPECT_CONTAINS(e.what(), "must be N x 1x4x4 with N at least 1, got 0x1x4x4");
  }
}

}  // namespace
}  // namespace convnet
