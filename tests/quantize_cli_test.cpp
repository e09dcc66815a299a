// `convnet quantize` and the precisions of eval, predict, forward and bench end to end on small
// generated IDX data: a quantized folder runs in int8 by default and agrees with f32, bad or
// mismatched quantization files and repeated outputs are one clear error each, nothing
// overwritten. --emulate keeps the tests meaningful on CPUs without int8 dot products.
#include <gtest/gtest.h>

#include <algorithm>

#include "convnet/io/safetensors.hpp"
#include "support/cli.hpp"
#include "support/train_data.hpp"

namespace {

using namespace convnet::testing;

class QuantizeCli : public TrainFolderTest {
 protected:
  QuantizeCli() : TrainFolderTest("convnet_quantize_test_", 1024, 200) {}
  void SetUp() override {
    TrainFolderTest::SetUp();
    const Result r = run(train_args("run"));
    ASSERT_EQ(r.code, 0) << r.err;
  }
  [[nodiscard]] Result quantize(const std::string& out) const {
    return run({"quantize", (root_ / "run").string(), "-o", (root_ / out).string(), "--calibrate", "200", "--emulate"});
  }
};

TEST_F(QuantizeCli, QuantizedFolderRunsInInt8AndAgreesWithF32) {
  const Result q = quantize("q");
  ASSERT_EQ(q.code, 0) << q.err;
  EXPECT_CONTAINS(q.out, "quantized lenet5 to int8 with the ranges of 200 training images");
  EXPECT_CONTAINS(q.out, "test top-1: f32 ");
  EXPECT_CONTAINS(q.out, "agree on ");
  EXPECT_EQ(read_file(root_ / "q" / "checkpoint.safetensors"), read_file(root_ / "run" / "checkpoint.safetensors"));
  const auto meta = nlohmann::json::parse(read_file(root_ / "q" / "quantization.json"));
  EXPECT_EQ(meta["format"], "convnet-int8-v1");
  EXPECT_EQ(meta["calibration_images"], 200);
  EXPECT_EQ(meta["ranges"].size(), 12U);  // every node of LeNet-5, input included
  EXPECT_GE(meta["test_top1_agreement"].get<double>(), 0.95);
  EXPECT_LE(meta["ranges"]["c1"][0].get<double>(), meta["ranges"]["c1"][1].get<double>());

  const Result int8 = run({"eval", (root_ / "q").string(), "--emulate"});
  ASSERT_EQ(int8.code, 0) << int8.err;
  EXPECT_CONTAINS(int8.out, "(int8): top-1 ");
  const Result both = run({"eval", (root_ / "q").string(), "--emulate", "--agreement"});
  ASSERT_EQ(both.code, 0) << both.err;
  EXPECT_CONTAINS(both.out, "int8 and f32 agree on the top-1 class of ");
  const Result f32 = run({"eval", (root_ / "q").string(), "--precision", "f32"});
  ASSERT_EQ(f32.code, 0) << f32.err;
  EXPECT_CONTAINS(f32.out, "(f32): top-1 ");
  const Result predict =
      run({"predict", (root_ / "q").string(), "--emulate", "--top", "2", (root_ / "data" / "missing.png").string()});
  EXPECT_EQ(predict.code, 1);  // the model opened in int8; the image is what is missing
  EXPECT_CONTAINS(predict.err, "missing.png");
}

TEST_F(QuantizeCli, ExistingOutputIsRefusedAndKept) {
  ASSERT_EQ(quantize("q").code, 0);
  const std::string before = read_file(root_ / "q" / "quantization.json");
  const Result again = quantize("q");
  expect_one_line_error(again);
  EXPECT_CONTAINS(again.err, "already holds a model; choose another -o");
  EXPECT_EQ(read_file(root_ / "q" / "quantization.json"), before);
}

TEST_F(QuantizeCli, BadOrMissingQuantizationIsAClearError) {
  const Result plain = run({"eval", (root_ / "run").string(), "--precision", "int8", "--emulate"});
  expect_one_line_error(plain);
  EXPECT_CONTAINS(plain.err, "not quantized (no quantization.json); 'convnet quantize ");

  ASSERT_EQ(quantize("q").code, 0);
  auto meta = nlohmann::json::parse(read_file(root_ / "q" / "quantization.json"));
  meta["ranges"].erase("f6");
  write_file(root_ / "q" / "quantization.json", meta.dump());
  const Result missing = run({"eval", (root_ / "q").string(), "--emulate"});
  expect_one_line_error(missing);
  EXPECT_CONTAINS(missing.err, "quantization.json: no range for layer 'f6' of lenet5");

  meta["ranges"]["f6"] = {3.0, -1.0};
  write_file(root_ / "q" / "quantization.json", meta.dump());
  const Result inverted = run({"eval", (root_ / "q").string(), "--emulate"});
  expect_one_line_error(inverted);
  EXPECT_CONTAINS(inverted.err, "the range of 'f6' [3, -1] is not finite with min <= max");

  write_file(root_ / "q" / "quantization.json", "{\"format\": \"something else\"}");
  const Result foreign = run({"eval", (root_ / "q").string(), "--emulate"});
  expect_one_line_error(foreign);
  EXPECT_CONTAINS(foreign.err, "not a convnet quantization file");
}

TEST_F(QuantizeCli, ExportIsQdqAndEvalsLikeTheQuantizedFolder) {
  ASSERT_EQ(quantize("q").code, 0);
  const std::string onnx = (root_ / "q.onnx").string();
  const Result exported = run({"export", (root_ / "q").string(), "-o", onnx});
  ASSERT_EQ(exported.code, 0) << exported.err;
  EXPECT_CONTAINS(exported.out, "int8 as QDQ (QuantizeLinear/DequantizeLinear)");
  const Result folder = run({"eval", (root_ / "q").string(), "--emulate"});
  const Result file = run({"eval", onnx, "--emulate"});  // int8: a QDQ file's default, with its scales
  ASSERT_EQ(file.code, 0) << file.err;
  ASSERT_EQ(folder.code, 0) << folder.err;
  EXPECT_CONTAINS(file.out, "(int8): top-1 ");
  // The same numbers and confusion matrix, to the character, after the model's name.
  EXPECT_EQ(file.out.substr(file.out.find(" (int8)")), folder.out.substr(folder.out.find(" (int8)")));
  const Result f32 = run({"eval", onnx, "--precision", "f32"});  // the dequantized weights in f32
  ASSERT_EQ(f32.code, 0) << f32.err;
  EXPECT_CONTAINS(f32.out, "(f32): top-1 ");

  // forward --precision int8 takes the file's scales, not the batch's: two images give the same
  // logits alone and next to two images 50 times larger (which would widen calibrated ranges).
  convnet::Tensor batch({4, 1, 28, 28});
  for (int64_t i = 0; i < batch.numel(); ++i)
    batch.data()[i] = static_cast<float>(i % 97) / 97.0F * (i < 1568 ? 1 : 50);
  convnet::Tensor pair({2, 1, 28, 28});
  std::copy_n(batch.data(), pair.numel(), pair.data());
  convnet::write_safetensors((root_ / "x4.safetensors").string(), {{"input", &batch}});
  convnet::write_safetensors((root_ / "x2.safetensors").string(), {{"input", &pair}});
  for (const char* n : {"2", "4"}) {
    const Result r = run({"forward", onnx, "--precision", "int8", "--emulate", "--images",
                          (root_ / ("x" + std::string(n) + ".safetensors")).string(), "--out",
                          (root_ / ("y" + std::string(n) + ".safetensors")).string()});
    ASSERT_EQ(r.code, 0) << r.err;
  }
  const auto two = convnet::read_safetensors((root_ / "y2.safetensors").string()).tensors.at("output").values;
  const auto four = convnet::read_safetensors((root_ / "y4.safetensors").string()).tensors.at("output").values;
  ASSERT_EQ(four.size(), 2 * two.size());
  EXPECT_TRUE(std::equal(two.begin(), two.end(), four.begin()));
}

TEST(QuantizeCliBench, BenchTimesInt8InferenceAndRefusesInt8Training) {
  const Result r = run({"bench", "lenet5", "--precision", "int8", "--emulate", "--batch", "4", "--reps", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_CONTAINS(r.out, "oneDNN plan kernels, int8");
  const Result train = run({"bench", "lenet5", "--precision", "int8", "--emulate", "--train", "--reps", "1"});
  expect_one_line_error(train);
  EXPECT_CONTAINS(train.err, "int8 is for inference (post-training quantization); drop --train");
}

}  // namespace
