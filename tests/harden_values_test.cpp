// Values that pass every format check but make numbers meaningless, each one clear error naming its
// source instead of a printed NaN: a std below 1e-6 (options, checkpoint and ONNX metadata), NaN and
// infinite weights (checkpoints, ONNX files, optimiser state on --resume), finite weights whose
// outputs overflow f32 (eval, predict, visualize, calibration), a training step that leaves
// weights beyond f32, and quantization ranges that give no int8 scale (quantization.json, QDQ).
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cstring>
#include <fstream>
#include <limits>

#include "convnet/error.hpp"
#include "convnet/executor.hpp"
#include "convnet/finite.hpp"
#include "convnet/io/safetensors.hpp"
#include "convnet/model/model.hpp"
#include "convnet/train/quantize.hpp"
#include "convnet/visualize/views.hpp"
#include "support/cli.hpp"
#include "support/data_files.hpp"
#include "support/onnx_files.hpp"
#include "support/train_data.hpp"

namespace convnet {
namespace {

using namespace convnet::testing;
using nlohmann::json;

// Writes `bytes` over a checkpoint's tensor `name`, `offset` bytes into its data.
void overwrite_tensor(const fs::path& file, const std::string& name, size_t offset, const std::string& bytes) {
  const std::string text = read_file(file);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(text[static_cast<size_t>(i)]);
  const auto begin = json::parse(text.substr(8, n)).at(name).at("data_offsets").at(0).get<size_t>();
  std::fstream out(file, std::ios::in | std::ios::out | std::ios::binary);
  out.seekp(static_cast<std::streamoff>(8 + n + begin + offset));
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string floats(float value, size_t count) {
  std::string bytes(count * 4, '\0');
  for (size_t i = 0; i < count; ++i) std::memcpy(bytes.data() + 4 * i, &value, 4);
  return bytes;
}

// One LeNet-5 run on generated data, its ONNX export and its quantized copy, made once; each test
// tampers with a copy.
class HardenValues : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("convnet_harden_values_test_" + std::to_string(::getpid()));
    ready_ = make_lenet_suite(root_);
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }
  void SetUp() override { ASSERT_TRUE(ready_) << "training, exporting or quantizing the suite's run failed"; }

  // A copy of the run (or of `what` in the suite's folder) to tamper with.
  static fs::path copy(const std::string& name, const std::string& what = "run") {
    const fs::path to = root_ / name;
    fs::remove_all(to);
    fs::copy(root_ / what, to, fs::copy_options::recursive);
    return to;
  }
  static std::string image() { return (root_ / "image.png").string(); }
  // Every command that reads the model's weights and prints or draws from its outputs.
  static std::vector<std::vector<std::string>> readers(const std::string& model) {
    return {{"eval", model},
            {"predict", model, image()},
            {"visualize", "occlusion", model, image(), "-o", (root_ / "o.png").string()},
            {"visualize", "saliency", model, image(), "-o", (root_ / "s.png").string()}};
  }

  static fs::path root_;
  static bool ready_;
};

fs::path HardenValues::root_;
bool HardenValues::ready_ = false;

TEST_F(HardenValues, AStdBelowOneMillionthIsRefusedFromEverySource) {
  const std::string run_dir = (root_ / "run").string();
  for (const char* std : {"1e-45", "1e-39", "9e-7"}) {
    for (const char* command : {"predict", "eval"}) {
      std::vector<std::string> args{command, run_dir, "--mean", "0.5", "--std", std};
      if (std::string(command) == "predict") args.push_back(image());
      const Result r = run(args);
      expect_one_line_error(r);
      EXPECT_CONTAINS(r.err, "--std: ");
      EXPECT_CONTAINS(r.err, " of channel 0 is below 1e-06, the smallest std an image is divided by");
    }
  }
  const Result smallest = run({"predict", run_dir, "--mean", "0.5", "--std", "1e-6", image()});
  EXPECT_EQ(smallest.code, 0) << smallest.err;
  EXPECT_EQ(smallest.out.find("nan"), std::string::npos) << smallest.out;

  const fs::path tampered = copy("std_checkpoint");
  json meta = checkpoint_meta(tampered / "checkpoint.safetensors");
  meta["normalization"]["std"] = {1e-45};
  set_checkpoint_meta(tampered / "checkpoint.safetensors", meta);
  const Result checkpoint = run({"eval", tampered.string()});
  expect_one_line_error(checkpoint);
  EXPECT_CONTAINS(checkpoint.err,
                  (tampered / "checkpoint.safetensors").string() +
                      ": checkpoint field normalization: \"std\": 1.4013e-45 of channel 0 is below 1e-06");

  onnx::ModelProto model = read_model(root_ / "run.onnx");
  for (auto& entry : *model.mutable_metadata_props()) {
    if (entry.key() == "convnet.normalization") entry.set_value(R"({"mode":"per_channel","mean":[0.5],"std":[1e-39]})");
  }
  const fs::path onnx_file = root_ / "std.onnx";
  write_model(model, onnx_file);
  const Result onnx = run({"predict", onnx_file.string(), image()});
  expect_one_line_error(onnx);
  EXPECT_CONTAINS(onnx.err, onnx_file.string() + ": metadata convnet.normalization: normalization: \"std\": ");
  EXPECT_CONTAINS(onnx.err, " of channel 0 is below 1e-06");
}

TEST_F(HardenValues, NonFiniteWeightsAreRefusedByEveryReaderNamingTheTensorAndIndex) {
  const fs::path nan_run = copy("nan_run");
  overwrite_tensor(nan_run / "checkpoint.safetensors", "c3.weight", 40, std::string(400, '\xff'));  // from index 10
  auto readers_nan = readers(nan_run.string());
  readers_nan.push_back({"quantize", nan_run.string(), "-o", (root_ / "nan_q").string(), "--emulate"});
  for (const std::vector<std::string>& args : readers_nan) {
    const Result r = run(args);
    expect_one_line_error(r);
    EXPECT_CONTAINS(r.err, (nan_run / "checkpoint.safetensors").string() +
                               ": tensor 'c3.weight' holds -nan at index 10, not a finite number");
  }
  EXPECT_FALSE(fs::exists(root_ / "nan_q")) << "quantize wrote a model of NaN weights";

  const fs::path inf_run = copy("inf_run");
  overwrite_tensor(inf_run / "checkpoint.safetensors", "output.weight", 12, floats(INFINITY, 1));
  const Result inf = run({"eval", inf_run.string()});
  expect_one_line_error(inf);
  EXPECT_CONTAINS(inf.err, "tensor 'output.weight' holds inf at index 3, not a finite number");

  // The same bytes inside the exported ONNX file's initializer.
  std::string onnx_bytes = read_file(root_ / "run.onnx");
  const std::string checkpoint = read_file(root_ / "run" / "checkpoint.safetensors");
  const auto c3 =
      convnet::read_safetensors((root_ / "run" / "checkpoint.safetensors").string()).tensors.at("c3.weight");
  const std::string weights(reinterpret_cast<const char*>(c3.values.data()), 440);
  const size_t at = onnx_bytes.find(weights);
  ASSERT_NE(at, std::string::npos) << "c3's weights are not stored raw in the ONNX file";
  onnx_bytes.replace(at + 40, 400, std::string(400, '\xff'));
  const fs::path onnx_file = root_ / "nan.onnx";
  write_file(onnx_file, onnx_bytes);
  for (const std::vector<std::string>& args : readers(onnx_file.string())) {
    const Result r = run(args);
    expect_one_line_error(r);
    EXPECT_CONTAINS(r.err, onnx_file.string() + ": tensor 'c3.weight' holds -nan at index 10, not a finite number");
  }
}

TEST_F(HardenValues, ResumeRefusesNonFiniteOptimiserStateAndResumesAHealthyRun) {
  const fs::path healthy = copy("healthy");
  const Result resumed = run({"train", "--resume", "--out", healthy.string(), "--epochs", "2", "--deterministic"});
  EXPECT_EQ(resumed.code, 0) << resumed.err;
  const fs::path tampered = copy("nan_momentum");
  overwrite_tensor(tampered / "checkpoint.safetensors", "optimizer.momentum.c1.weight", 8, floats(NAN, 1));
  const std::string before = read_file(tampered / "checkpoint.safetensors");
  const Result r = run({"train", "--resume", "--out", tampered.string(), "--epochs", "2", "--deterministic"});
  expect_one_line_error(r);
  EXPECT_CONTAINS(r.err, (tampered / "checkpoint.safetensors").string() +
                             ": tensor 'optimizer.momentum.c1.weight' holds nan at index 2, not a finite number");
  EXPECT_EQ(read_file(tampered / "checkpoint.safetensors"), before);
}

TEST_F(HardenValues, AStepThatLeavesWeightsBeyondF32StopsTrainingBeforeTheyAreWritten) {
  // One step per epoch: epoch 1's step leaves finite but huge weights, epoch 2's infinite ones
  // with a finite loss. The run stops before evaluating or writing them.
  const fs::path out = root_ / "diverged";
  const Result r = run({"train", "lenet5", "--data", (root_ / "data").string(), "--out", out.string(), "--epochs", "2",
                        "--batch", "512", "--lr", "1e30", "--deterministic"});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_CONTAINS(r.err, "training diverged: parameter '");
  EXPECT_CONTAINS(r.err, "after step 2; the last good checkpoint is kept in " + out.string());
  const std::string metrics = read_file(out / "metrics.csv");
  EXPECT_EQ(lines_of(metrics).size(), 2U) << metrics;  // the header and epoch 1
  EXPECT_EQ(metrics.find("nan"), std::string::npos) << metrics;
  EXPECT_EQ(checkpoint_meta(out / "checkpoint.safetensors").at("epoch"), 1);
  for (const auto& [name, tensor] : read_safetensors((out / "checkpoint.safetensors").string()).tensors) {
    EXPECT_EQ(first_non_finite(tensor.values), -1) << name;  // epoch 1's weights, huge but finite
  }
}

TEST_F(HardenValues, OutputsThatOverflowAreAnErrorNotANumber) {
  // Finite weights: f6's outputs all tanh(10) = 1, so every logit is 84 * 3e38 = inf.
  const fs::path big = copy("big_run");
  overwrite_tensor(big / "checkpoint.safetensors", "f6.weight", 0, floats(0, 84 * 120));
  overwrite_tensor(big / "checkpoint.safetensors", "f6.bias", 0, floats(10, 84));
  overwrite_tensor(big / "checkpoint.safetensors", "output.weight", 0, floats(3e38F, 10 * 84));
  const std::vector<std::string> images{"image 0 of ", image(), "image.png", "image.png"};
  const auto commands = readers(big.string());
  for (size_t i = 0; i < commands.size(); ++i) {
    const Result r = run(commands[i]);
    expect_one_line_error(r);
    EXPECT_CONTAINS(r.err, "the network's output for " + images[i]);
    EXPECT_CONTAINS(r.err, " is not finite (NaN or Inf): its weights or preprocessing overflow f32");
  }
  EXPECT_FALSE(fs::exists(root_ / "o.png"));
  // Calibration sees the same infinities: no quantized model is written.
  const Result q = run({"quantize", big.string(), "-o", (root_ / "big_q").string(), "--emulate"});
  expect_one_line_error(q);
  EXPECT_CONTAINS(q.err, "calibration: the outputs of layer 'output' on ");
  EXPECT_CONTAINS(q.err, "is not finite with min <= max");
  EXPECT_FALSE(fs::exists(root_ / "big_q" / "quantization.json"));
}

TEST_F(HardenValues, QuantizationRangesWithoutAnInt8ScaleAreRefusedNamingTheFileAndLayer) {
  const fs::path q = copy("ranges", "q");
  const fs::path file = q / "quantization.json";
  const json original = json::parse(read_file(file));
  auto eval_with = [&](const std::string& layer, const json& range) {
    json j = original;
    j["ranges"][layer] = range;
    write_file(file, j.dump());
    return run({"eval", q.string(), "--emulate"});
  };
  const std::vector<std::pair<std::string, json>> bad{{"input", {-1e-44, 1e-44}},
                                                      {"input", {-1e38, 3e38}},
                                                      {"9", {-3e38, 3e38}},
                                                      {"c1", {-1e16, 1}},
                                                      {"c1", {0, 1e-20}}};
  for (const auto& [layer, range] : bad) {
    const Result r = eval_with(layer, range);
    expect_one_line_error(r);
    EXPECT_CONTAINS(r.err, file.string() + ": the range of '" + layer + "' [");
    EXPECT_CONTAINS(r.err,
                    "an int8 scale needs a largest magnitude of 0 (a layer that is always 0) or between 1e-15 "
                    "and 1e+15");
  }
  const Result beyond = eval_with("9", {-1e39, 1});  // beyond f32: read as an infinity
  expect_one_line_error(beyond);
  EXPECT_CONTAINS(beyond.err, "the range of '9' [-inf, 1] is not finite with min <= max");
  const Result dead = eval_with("9", {0, 0});  // a layer that is always 0 (a dead ReLU) is legitimate
  EXPECT_EQ(dead.code, 0) << dead.err;
  EXPECT_CONTAINS(dead.out, "(int8): top-1 ");
}

TEST(HardenValuesCalibration, TinyRangesBecomeZeroAndHugeOnesNameTheLayer) {
  Net net = load_model_text("network t\ninput 1x1x2\nh fc 2\nout fc 2\n", "t.cnet");
  Executor executor(net, {});
  auto set = [&](float weight) {
    for (NamedParameter& p : executor.named_parameters()) {
      const bool h = p.name.rfind("h.", 0) == 0;
      std::fill_n(p.value->data(), p.value->numel(), p.name.ends_with("weight") ? (h ? weight : 1.0F) : 0.0F);
    }
    executor.parameters_changed();
  };
  Dataset data{"d", Shape({1, 1, 2}), {255, 128, 64, 3}, {0, 1}, {"a", "b"}};
  const Normalization none{.mode = Normalization::Mode::None};
  set(1e-20F);  // h's outputs are at most 1e-20: int8 rounds them to 0, a scale of 1 as for a dead layer
  const std::vector<ActivationRange> tiny = calibrate(executor, data, none, 2);
  EXPECT_EQ(tiny[static_cast<size_t>(net.find("h"))].min, 0.0F);
  EXPECT_EQ(tiny[static_cast<size_t>(net.find("h"))].max, 0.0F);
  set(1e20F);
  expect_error<Error>([&] { (void)calibrate(executor, data, none, 2); },
                      {"calibration: the outputs of layer 'h' on 2 training images: [2.62745e+19, 1.50196e+20] reaches "
                       "1.50196e+20: an int8 scale needs"});
}

TEST(HardenValuesViews, AGradientBeyondF32IsAnErrorNamingTheImage) {
  // Scores 0 for a zero input, but d score / d input = 3e38 * 3e38.
  Net net = load_model_text("network g\ninput 1\na fc 1 bias false\nb fc 1 bias false\n", "g.cnet");
  Executor executor(net, {});
  for (NamedParameter& p : executor.named_parameters()) p.value->fill(3e38F);
  executor.parameters_changed();
  ViewImage image{Tensor({1, 1}), {0.0F}, 1, 1, 1, "zero.png"};
  int64_t target = -1;
  expect_error<Error>([&] { (void)input_gradient(executor, image, GradientMethod::Saliency, target); },
                      {"the gradient of class 0's score for zero.png is not finite (NaN or Inf)"});
}

TEST(HardenValuesLoad, EveryLoadRefusesANonFiniteValueNamingSourceTensorAndIndex) {
  Net net = load_model_text("network w\ninput 3\nfc1 fc 2\n", "w.cnet");
  Executor executor(net, {});
  SafetensorsContent content;
  for (const NamedParameter& p : executor.named_parameters()) {
    content.tensors[p.name] = {"F32", p.value->dims(), std::vector<float>(static_cast<size_t>(p.value->numel()), 0.5F)};
  }
  content.tensors.at("fc1.weight").values[4] = -INFINITY;
  expect_io_error([&] { load_parameters(content, executor, "w.weights"); },
                  {"w.weights: tensor 'fc1.weight' holds -inf at index 4, not a finite number"});
  for (const NamedParameter& p : executor.named_parameters()) {  // nothing was copied in
    for (int64_t i = 0; i < p.value->numel(); ++i) EXPECT_NE(p.value->data()[i], 0.5F) << p.name;
  }
  content.tensors.at("fc1.weight").values[4] = std::numeric_limits<float>::max();  // large but finite
  load_parameters(content, executor, "w.weights");
  EXPECT_EQ(executor.named_parameters().at(0).value->data()[0], 0.5F);
}

}  // namespace
}  // namespace convnet
