// eval, predict and visualize on files of other formats: an ONNX file exported from a trained run
// (its metadata carries the preprocessing and class names: the same numbers as the checkpoint), the
// same file without that metadata (preprocessing and classes from the command line or the dataset),
// a Darknet .cfg with its .weights, and bad input (truncated files, bad metadata, counts that do not
// match), each one clear error.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <stb/stb_image_write.h>

#include <cmath>
#include <fstream>

#include "convnet/data/dataset.hpp"
#include "convnet/error.hpp"
#include "convnet/interop/onnx.hpp"
#include "convnet/kernels/reference/softmax.hpp"
#include "convnet/train/trained_model.hpp"
#include "convnet/visualize/views.hpp"
#include "support/cli.hpp"
#include "support/onnx_files.hpp"
#include "support/train_data.hpp"

namespace convnet {
namespace {

using namespace convnet::testing;

std::map<std::string, std::string> metadata_of(const onnx::ModelProto& model) {
  std::map<std::string, std::string> metadata;
  for (const auto& entry : model.metadata_props()) metadata[entry.key()] = entry.value();
  return metadata;
}

// A copy of the exported file with its metadata replaced by `metadata`.
fs::path with_metadata(const fs::path& source, const fs::path& out,
                       const std::map<std::string, std::string>& metadata) {
  onnx::ModelProto model = read_model(source);
  model.clear_metadata_props();
  for (const auto& [key, value] : metadata) {
    auto* entry = model.add_metadata_props();
    entry->set_key(key);
    entry->set_value(value);
  }
  write_model(model, out);
  return out;
}

// The first line of an eval's output without the model's name: "(f32): top-1 ..., top-5 ..., loss ...".
std::string scores(const Result& r) {
  const std::string first = lines_of(r.out).at(0);
  return first.substr(first.find(" ("));
}

// One LeNet-5 run on generated data, trained once for the suite, and its ONNX export.
class InteropEval : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("convnet_interop_eval_test_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "data");
    write_idx_set(root_ / "data", "train", 1024, 1);
    write_idx_set(root_ / "data", "t10k", 200, 2);
    std::vector<uint8_t> pixels;  // class 3's square
    for (int y = 0; y < 28; ++y) {
      for (int x = 0; x < 28; ++x) pixels.push_back(y >= 2 && y < 8 && x >= 17 && x < 23 ? 220 : 5);
    }
    stbi_write_png((root_ / "three.png").c_str(), 28, 28, 1, pixels.data(), 28);
    ready_ = run({"train", "lenet5", "--data", data(), "--out", run_dir(), "--epochs", "2", "--batch", "32", "--lr",
                  "0.05", "--deterministic"})
                 .code == 0 &&
             run({"export", run_dir(), "-o", onnx_file()}).code == 0;
    if (ready_) with_metadata(onnx_file(), foreign_file(), {});
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }
  void SetUp() override { ASSERT_TRUE(ready_) << "training or exporting the suite's run failed"; }

  static std::string data() { return (root_ / "data").string(); }
  static std::string run_dir() { return (root_ / "run").string(); }
  static std::string onnx_file() { return (root_ / "run.onnx").string(); }
  static std::string foreign_file() { return (root_ / "foreign.onnx").string(); }  // no metadata
  static std::string image() { return (root_ / "three.png").string(); }

  static fs::path root_;
  static bool ready_;
};

fs::path InteropEval::root_;
bool InteropEval::ready_ = false;

TEST_F(InteropEval, ExportWritesThePreprocessingAndClassNamesAsMetadata) {
  const std::map<std::string, std::string> metadata = metadata_of(read_model(onnx_file()));
  const nlohmann::json meta = checkpoint_meta(root_ / "run" / "checkpoint.safetensors");
  ASSERT_TRUE(metadata.count(kOnnxNormalizationKey));
  EXPECT_EQ(nlohmann::json::parse(metadata.at(kOnnxNormalizationKey)), meta.at("normalization"));
  EXPECT_EQ(nlohmann::json::parse(metadata.at(kOnnxClassNamesKey)), meta.at("class_names"));
  EXPECT_EQ(metadata.at(kOnnxInputShapeKey), "[1,28,28]");
  EXPECT_EQ(metadata.at(kOnnxDataKey), meta.at("data").get<std::string>());
}

TEST_F(InteropEval, EvalOfTheExportedFileGivesTheCheckpointsNumbers) {
  const Result checkpoint = run({"eval", run_dir()});
  const Result onnx = run({"eval", onnx_file()});  // no options: the data folder is in the metadata too
  ASSERT_EQ(checkpoint.code, 0) << checkpoint.err;
  ASSERT_EQ(onnx.code, 0) << onnx.err;
  EXPECT_EQ(scores(onnx), scores(checkpoint));
  // The confusion matrix, with the class names, is the same to the character.
  EXPECT_EQ(onnx.out.substr(onnx.out.find('\n')), checkpoint.out.substr(checkpoint.out.find('\n')));
}

TEST_F(InteropEval, PredictOfTheExportedFileGivesTheCheckpointsProbabilities) {
  const Result checkpoint = run({"predict", run_dir(), image(), "--top", "10"});
  const Result onnx = run({"predict", onnx_file(), image(), "--top", "10"});
  ASSERT_EQ(checkpoint.code, 0) << checkpoint.err;
  ASSERT_EQ(onnx.code, 0) << onnx.err;
  EXPECT_EQ(onnx.out, checkpoint.out);

  // In full precision, on test images: every probability within 1e-5.
  TrainedModel a = open_trained_model(run_dir(), {});
  TrainedModel b = open_trained_model(onnx_file(), {});
  EXPECT_EQ(a.class_names, b.class_names);
  EXPECT_EQ(a.normalization.to_json(), b.normalization.to_json());
  const Dataset test = load_dataset(data()).test;
  for (int64_t i = 0; i < 20; ++i) {
    const ViewImage x = view_image(test, i, a.normalization);
    std::vector<float> p(10), q(10);
    const Tensor& la = a.executor->forward(x.input, false);
    kernels::reference::softmax_forward<float>({1, 10, 1}, la.data(), p.data());
    const Tensor& lb = b.executor->forward(x.input, false);
    kernels::reference::softmax_forward<float>({1, 10, 1}, lb.data(), q.data());
    for (size_t k = 0; k < 10; ++k) EXPECT_NEAR(p[k], q[k], 1e-5) << "image " << i << ", class " << k;
    EXPECT_EQ(std::max_element(p.begin(), p.end()) - p.begin(), std::max_element(q.begin(), q.end()) - q.begin());
  }
}

TEST_F(InteropEval, AForeignFileTakesItsPreprocessingFromOptionsAndItsClassesFromTheData) {
  // The run's own normalisation given as --mean/--std: exactly the checkpoint's numbers.
  const Normalization norm =
      Normalization::from_json(checkpoint_meta(root_ / "run" / "checkpoint.safetensors").at("normalization"));
  ASSERT_EQ(norm.mean.size(), 1u);
  char mean[64], std[64];
  std::snprintf(mean, sizeof mean, "%.9g", static_cast<double>(norm.mean[0]));
  std::snprintf(std, sizeof std, "%.9g", static_cast<double>(norm.std[0]));
  const Result checkpoint = run({"eval", run_dir()});
  const Result given = run({"eval", foreign_file(), "--data", data(), "--mean", mean, "--std", std});
  ASSERT_EQ(given.code, 0) << given.err;
  EXPECT_EQ(scores(given), scores(checkpoint));

  // By default: per-channel, computed on all the dataset's training images (the run held 1/12 out).
  const Result computed = run({"eval", foreign_file(), "--data", data()});
  ASSERT_EQ(computed.code, 0) << computed.err;
  EXPECT_CONTAINS(computed.out, "top-1");
  const Result none = run({"eval", foreign_file(), "--data", data(), "--normalize", "none"});
  ASSERT_EQ(none.code, 0) << none.err;

  // predict: the preprocessing from --data (its class names too), from --mean/--std, or none.
  const Result with_data = run({"predict", foreign_file(), image(), "--data", data()});
  ASSERT_EQ(with_data.code, 0) << with_data.err;
  const Result numbered = run({"predict", foreign_file(), image(), "--mean", mean, "--std", std, "--top", "10"});
  ASSERT_EQ(numbered.code, 0) << numbered.err;
  EXPECT_EQ(numbered.out, run({"predict", run_dir(), image(), "--top", "10"}).out);  // this data's names are 0..9
  write_file(root_ / "classes.txt", "cls0\ncls1\n\ncls2\ncls3\ncls4\ncls5\ncls6\ncls7\ncls8\n  cls9  \n");
  const Result named = run({"predict", foreign_file(), image(), "--normalize", "none", "--classes",
                            (root_ / "classes.txt").string()});
  ASSERT_EQ(named.code, 0) << named.err;
  EXPECT_CONTAINS(named.out, "three.png:  cls");  // blank lines and surrounding spaces dropped
}

TEST_F(InteropEval, AMissingPieceIsOneErrorNamingWhatToPass) {
  const Result no_preprocessing = run({"predict", foreign_file(), image()});
  expect_one_line_error(no_preprocessing);
  EXPECT_CONTAINS(no_preprocessing.err, "stores no preprocessing; pass --data DIR");
  EXPECT_CONTAINS(no_preprocessing.err, "--normalize none");

  const Result no_weights = run({"predict", "lenet5", image()});
  expect_one_line_error(no_weights);
  EXPECT_CONTAINS(no_weights.err, "pass --weights");

  write_file(root_ / "three-names.txt", "a\nb\nc\n");
  const Result classes = run({"predict", onnx_file(), image(), "--classes", (root_ / "three-names.txt").string()});
  expect_one_line_error(classes);
  EXPECT_CONTAINS(classes.err, "3 names, but");
  EXPECT_CONTAINS(classes.err, "outputs 10 values");

  const Result both = run({"predict", foreign_file(), image(), "--normalize", "none", "--mean", "0.5"});
  expect_one_line_error(both);
  EXPECT_CONTAINS(both.err, "pass one of them");

  const Result channels = run({"predict", foreign_file(), image(), "--mean", "0.5,0.5,0.5"});
  expect_one_line_error(channels);
  EXPECT_CONTAINS(channels.err, "--mean: 3 values");

  const Result int8 = run({"eval", onnx_file(), "--precision", "int8", "--emulate"});
  expect_one_line_error(int8);
  EXPECT_CONTAINS(int8.err, "int8 needs the activation ranges");

  const Result weights_of_a_run = run({"eval", run_dir(), "--weights", onnx_file()});
  expect_one_line_error(weights_of_a_run);
  EXPECT_CONTAINS(weights_of_a_run.err, "holds its weights");
}

TEST_F(InteropEval, ACheckpointOrTrainingFolderStillWorksAsBefore) {
  const Result missing = run({"eval", (root_ / "none").string()});
  expect_one_line_error(missing);
  EXPECT_CONTAINS(missing.err, "no such checkpoint");
  // The model's weights through --weights: a zoo model with a checkpoint's weights.
  const std::string weights = (root_ / "run" / "checkpoint.safetensors").string();
  const Result zoo = run({"predict", "lenet5", image(), "--weights", weights, "--data", data(), "--top", "1"});
  ASSERT_EQ(zoo.code, 0) << zoo.err;
  EXPECT_CONTAINS(zoo.out, "three.png:  ");
}

TEST_F(InteropEval, BadFilesAreOneErrorEach) {
  const std::string bytes = read_file(onnx_file());
  write_file(root_ / "truncated.onnx", bytes.substr(0, bytes.size() / 2));
  write_file(root_ / "garbage.onnx", std::string(1000, '\xff'));
  const std::map<std::string, std::string> good = metadata_of(read_model(onnx_file()));
  auto bad = [&](const std::string& name, const char* key, const std::string& value) {
    std::map<std::string, std::string> metadata = good;
    metadata[key] = value;
    return with_metadata(onnx_file(), root_ / name, metadata).string();
  };
  const std::vector<std::pair<std::string, std::string>> cases{
      {(root_ / "truncated.onnx").string(), "not a readable ONNX model"},
      {(root_ / "garbage.onnx").string(), "not a readable ONNX model"},
      {bad("json.onnx", kOnnxNormalizationKey, "{\"mode\": "), "metadata convnet.normalization is not what"},
      {bad("mode.onnx", kOnnxNormalizationKey, "{\"mode\": \"sideways\", \"mean\": [], \"std\": []}"),
       "metadata convnet.normalization: normalization: unknown mode"},
      {bad("channels.onnx", kOnnxNormalizationKey,
           "{\"mode\": \"per_channel\", \"mean\": [0.1, 0.2, 0.3], \"std\": []}"),
       "metadata convnet.normalization: normalization has 3 mean values"},
      {bad("deep.onnx", kOnnxClassNamesKey, std::string(100, '[')), "nested more than"},
      {bad("names.onnx", kOnnxClassNamesKey, "[\"a\", \"b\", \"c\"]"),
       "metadata convnet.class_names: 3 names, but the network outputs 10 values"},
      {bad("types.onnx", kOnnxClassNamesKey, "[1, 2]"), "metadata convnet.class_names is not what"},
      {bad("shape.onnx", kOnnxInputShapeKey, "[3, 32, 32]"), "but the graph's input is 1x28x28"},
  };
  for (const auto& [file, message] : cases) {
    for (const std::vector<std::string>& args : {std::vector<std::string>{"eval", file},
                                                 std::vector<std::string>{"predict", file, image()},
                                                 std::vector<std::string>{"visualize", "activations", file, image()}}) {
      const Result r = run(args);
      expect_one_line_error(r);
      EXPECT_CONTAINS(r.err, message);
    }
  }
}

TEST_F(InteropEval, VisualizeDrawsTheExportedFileAsItsCheckpoint) {
  fs::current_path(root_);
  ASSERT_EQ(run({"visualize", "filters", run_dir(), "c1", "-o", "run-c1.png"}).code, 0);
  const Result filters = run({"visualize", "filters", foreign_file(), "c1", "-o", "onnx-c1.png"});
  ASSERT_EQ(filters.code, 0) << filters.err;  // filters need no preprocessing, even without metadata
  EXPECT_EQ(read_file(root_ / "onnx-c1.png"), read_file(root_ / "run-c1.png"));

  ASSERT_EQ(run({"visualize", "activations", run_dir(), image(), "--layers", "c1", "-o", "run-maps"}).code, 0);
  const Result maps = run({"visualize", "activations", onnx_file(), image(), "--layers", "c1", "-o", "onnx-maps"});
  ASSERT_EQ(maps.code, 0) << maps.err;
  ASSERT_EQ(lines_of(maps.out).size(), 1u) << maps.out;
  const fs::path picture = fs::path(lines_of(maps.out)[0].substr(std::string("wrote ").size())).filename();
  EXPECT_EQ(read_file(root_ / "onnx-maps" / picture), read_file(root_ / "run-maps" / picture));

  const Result saliency = run({"visualize", "saliency", foreign_file(), image(), "--data", data(), "-o", "s.png"});
  ASSERT_EQ(saliency.code, 0) << saliency.err;
  fs::current_path(fs::temp_directory_path());
}

// A Darknet classifier: one connected layer over a 28x28 grey image, its .weights written here.
TEST_F(InteropEval, ADarknetCfgWithItsWeightsIsEvaluatedAndPredicts) {
  write_file(root_ / "linear.cfg",
             "[net]\nheight=28\nwidth=28\nchannels=1\n\n[connected]\noutput=10\nactivation=linear\n");
  std::string weights;
  auto put32 = [&](uint32_t v) { weights.append(reinterpret_cast<const char*>(&v), 4); };
  put32(0), put32(2), put32(0), put32(0), put32(0);  // major 0, minor 2, revision 0, seen (int64) 0
  uint32_t state = 7;
  for (int i = 0; i < 10 + 10 * 784; ++i) {  // biases, then weights (outputs x inputs)
    state = state * 1664525u + 1013904223u;
    const float v = static_cast<float>(state >> 8) / static_cast<float>(1 << 24) * 0.02f - 0.01f;
    weights.append(reinterpret_cast<const char*>(&v), 4);
  }
  write_file(root_ / "linear.weights", weights);
  const std::string cfg = (root_ / "linear.cfg").string(), w = (root_ / "linear.weights").string();

  const Result eval = run({"eval", cfg, "--weights", w, "--data", data()});
  ASSERT_EQ(eval.code, 0) << eval.err;
  EXPECT_CONTAINS(eval.out, "linear.cfg (f32): top-1");
  // Darknet's preprocessing (pixel/255) is the default for a cfg.
  EXPECT_EQ(scores(eval), scores(run({"eval", cfg, "--weights", w, "--data", data(), "--normalize", "none"})));
  const Result predict = run({"predict", cfg, image(), "--weights", w, "--top", "2"});
  ASSERT_EQ(predict.code, 0) << predict.err;
  EXPECT_CONTAINS(predict.out, "three.png:  ");

  const Result no_weights = run({"eval", cfg, "--data", data()});
  expect_one_line_error(no_weights);
  EXPECT_CONTAINS(no_weights.err, "a Darknet .cfg holds no weights; pass --weights FILE.weights");
  write_file(root_ / "short.weights", weights.substr(0, 100));
  const Result short_weights = run({"eval", cfg, "--weights", (root_ / "short.weights").string(), "--data", data()});
  expect_one_line_error(short_weights);
  EXPECT_CONTAINS(short_weights.err, "short.weights: 100 bytes");
}

}  // namespace
}  // namespace convnet
