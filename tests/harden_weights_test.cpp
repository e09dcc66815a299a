// Hostile safetensors files (issue 8) and the weights loaders: header lengths beyond the file or
// the format's limit, shapes whose size overflows 64 bits (the ~100-byte [1,1,2^32,2^32] file),
// offsets outside the data, of the wrong size or overlapping, unknown dtypes and malformed
// entries, each at its boundary; F16/BF16 converted exactly; torchvision weights without
// num_batches_tracked; training checkpoints accepted as weights; and the CLI's exit codes for
// /dev/zero, a FIFO, a non-UTF-8 class folder, an empty dataset and 20 IDX classes.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "convnet/executor.hpp"
#include "convnet/io/safetensors.hpp"
#include "convnet/model/model.hpp"
#include "convnet/train/checkpoint.hpp"
#include "support/cli.hpp"
#include "support/data_files.hpp"

namespace convnet {
namespace {

using namespace convnet::testing;
using nlohmann::json;

// Writes <8-byte little-endian length><header text><data>, the header exactly as given.
void write_safetensors_raw(const std::string& path, const std::string& header, const Bytes& data,
                           uint64_t declared_length = UINT64_MAX) {
  const uint64_t length = declared_length == UINT64_MAX ? header.size() : declared_length;
  Bytes out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(length >> (8 * i)));
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  write_file(path, out);
}

// One tensor entry as the format writes it.
json entry(const std::string& dtype, const json& shape, uint64_t begin, uint64_t end) {
  return {{"dtype", dtype}, {"shape", shape}, {"data_offsets", {begin, end}}};
}

class Safetensors : public ::testing::Test {
 protected:
  // Expects reading a file with this header (and data) to fail with a message holding `parts`.
  void expect_refused(const json& header, const Bytes& data, const std::vector<std::string>& parts) {
    write_safetensors_raw(path_, header.dump(), data);
    std::vector<std::string> all = parts;
    all.push_back(path_);
    expect_io_error([&] { (void)read_safetensors(path_); }, all);
  }
  TempDir dir_{"safetensors"};
  std::string path_ = dir_.file("t.safetensors");
};

TEST_F(Safetensors, ShapesWhoseSizeOverflowsAreErrorsNamingTheTensor) {
  // The file: about 100 bytes, shape [1, 1, 2^32, 2^32], no data.
  const json huge = {{"t", entry("F32", {1, 1, 4294967296LL, 4294967296LL}, 0, 0)}};
  EXPECT_LT(huge.dump().size() + 8, 110u);
  expect_refused(huge, {}, {"tensor 't'", "[1, 1, 4294967296, 4294967296]", "element count is too large"});
  // 2^62 elements fit, their 2^64 bytes do not.
  expect_refused({{"t", entry("F32", {1, 1, 2147483648LL, 2147483648LL}, 0, 0)}}, {}, {"tensor 't'", "byte size is too large"});
  // 2^62 bytes fit in 64 bits but not in the file.
  expect_refused({{"t", entry("F32", {1073741824, 1073741824}, 0, 0)}}, {},
                 {"tensor 't'", "needs 4611686018427387904 bytes but its data offsets span 0"});
  // A zero dimension makes any other dimension harmless: an empty tensor.
  write_safetensors_raw(path_, json{{"t", entry("F32", {0, 4611686018427387904LL, 4}, 0, 0)}}.dump(), {});
  EXPECT_TRUE(read_safetensors(path_).tensors.at("t").values.empty());
}

TEST_F(Safetensors, HeaderLengthIsCheckedAgainstTheFileAndTheFormatLimit) {
  write_safetensors_raw(path_, "{}", {}, 3);  // 3 > the 2 bytes after the length
  expect_io_error([&] { (void)read_safetensors(path_); }, {path_, "header length 3 is larger than the 2 bytes after it"});
  write_safetensors_raw(path_, "{}", {}, UINT64_MAX - 1);
  expect_io_error([&] { (void)read_safetensors(path_); }, {path_, "header length 18446744073709551614"});
  write_safetensors_raw(path_, "{}", {});  // exactly the file: an empty but valid file
  EXPECT_TRUE(read_safetensors(path_).tensors.empty());
  // 200 MB (sparse) file, header length 150 MB: inside the file, beyond the format's 100 MB.
  write_safetensors_raw(path_, "{", {}, 150u << 20);
  fs::resize_file(path_, 200u << 20);
  expect_io_error([&] { (void)read_safetensors(path_); }, {path_, "header length 157286400 is beyond the format's limit"});
  write_file(path_, Bytes(7, 0));
  expect_io_error([&] { (void)read_safetensors(path_); }, {path_, "shorter than its 8-byte header length"});
  write_safetensors_raw(path_, "{not json", {});
  expect_io_error([&] { (void)read_safetensors(path_); }, {path_, "corrupted safetensors header"});
  write_safetensors_raw(path_, "[1, 2]", {});
  expect_io_error([&] { (void)read_safetensors(path_); }, {path_, "not a JSON object"});
}

TEST_F(Safetensors, OffsetsOutsideWrongSizedOrOverlappingAreErrors) {
  const Bytes eight(8, 0);
  expect_refused({{"t", entry("F32", {2}, 0, 12)}}, eight, {"tensor 't'", "[0, 12] are outside the 8 bytes of data"});
  expect_refused({{"t", entry("F32", {1}, 8, 4)}}, eight, {"tensor 't'", "[8, 4] are outside"});
  expect_refused({{"t", entry("F32", {1}, 0, 8)}}, eight, {"tensor 't'", "needs 4 bytes but its data offsets span 8"});
  expect_refused({{"a", entry("F32", {1}, 0, 4)}, {"b", entry("F32", {1}, 3, 7)}}, eight,
                 {"tensors 'a' [0, 4] and 'b' [3, 7] overlap"});
  expect_refused({{"a", entry("F32", {2}, 0, 8)}, {"b", entry("F32", {2}, 0, 8)}}, eight, {"'a'", "'b'", "overlap"});
  expect_refused({{"t", {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {-4, 0}}}}}, eight, {"\"data_offsets\" is [-4,0]"});
  expect_refused({{"t", {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {0, 4, 8}}}}}, eight, {"not [begin, end]"});
  // The boundary: adjacent tensors and an empty tensor between them are fine.
  write_safetensors_raw(path_, json{{"a", entry("F32", {1}, 0, 4)}, {"e", entry("F32", {0}, 4, 4)}, {"b", entry("F32", {1}, 4, 8)}}.dump(), eight);
  EXPECT_EQ(read_safetensors(path_).tensors.size(), 3u);
}

TEST_F(Safetensors, MalformedEntriesAndUnknownDtypesAreErrors) {
  const Bytes four(4, 0);
  expect_refused({{"t", entry("I8", {4}, 0, 4)}}, four, {"tensor 't' has unsupported dtype I8", "F32, F16, BF16"});
  expect_refused({{"t", entry("F8_E4M3", {4}, 0, 4)}}, four, {"unsupported dtype F8_E4M3"});
  expect_refused({{"t", {{"dtype", 5}, {"shape", {1}}, {"data_offsets", {0, 4}}}}}, four, {"\"dtype\" is not a string"});
  expect_refused({{"t", {{"shape", {1}}, {"data_offsets", {0, 4}}}}}, four, {"tensor 't'", "no \"dtype\""});
  expect_refused({{"t", entry("F32", {-1}, 0, 4)}}, four, {"tensor 't'", "holds -1, not a dimension"});
  expect_refused({{"t", entry("F32", {1.5}, 0, 4)}}, four, {"holds 1.5, not a dimension"});
  expect_refused({{"t", entry("F32", {"1"}, 0, 4)}}, four, {"not a dimension"});
  expect_refused({{"t", entry("F32", {9223372036854775808ULL}, 0, 4)}}, four, {"holds 9223372036854775808"});
  expect_refused({{"t", entry("F32", 1, 0, 4)}}, four, {"\"shape\" is not an array"});
  expect_refused({{"t", 3}}, four, {"tensor 't'", "not a JSON object"});
  expect_refused({{"__metadata__", 3}}, {}, {"\"__metadata__\" is not an object"});
  expect_refused({{"__metadata__", {{"k", 1}}}}, {}, {"metadata \"k\" is not a string"});
}

TEST_F(Safetensors, DeeplyNestedJsonIsRefusedBeforeParsing) {
  // Parsing 5 million nested arrays took 387 MB; the header's shape allows 3 levels.
  write_safetensors_raw(path_, std::string(5'000'000, '[') + std::string(5'000'000, ']'), {});
  expect_io_error([&] { (void)read_safetensors(path_); }, {path_, "nested more than 3 levels deep (at byte 3)"});
  expect_refused({{"t", entry("F32", {{1}}, 0, 4)}}, Bytes(4, 0), {"nested more than 3 levels"});
  // Brackets inside strings (names, metadata) do not count.
  write_safetensors_raw(path_, json{{"[[[[\"{{", entry("F32", {1}, 0, 4)}, {"__metadata__", {{"k", "[[[[[["}}}}.dump(),
                        Bytes(4, 0));
  EXPECT_EQ(read_safetensors(path_).metadata.at("k"), "[[[[[[");
  // A checkpoint's metadata is JSON inside a string: 32 levels are parsed, 33 are not.
  const auto meta_of_depth = [&](int depth) {
    const json header = {{"__metadata__", {{"convnet", std::string(depth, '[') + std::string(depth, ']')}}}};
    write_safetensors_raw(path_, header.dump(), {});
  };
  meta_of_depth(32);
  expect_io_error([&] { (void)read_checkpoint_meta(path_); }, {path_, "corrupted checkpoint metadata: no model text"});
  meta_of_depth(33);
  expect_io_error([&] { (void)read_checkpoint_meta(path_); },
                  {path_, "corrupted checkpoint metadata: it is nested more than 32 levels deep"});
}

Bytes halves(std::initializer_list<uint16_t> values) {
  Bytes out;
  for (uint16_t v : values) out.insert(out.end(), {static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8)});
  return out;
}

TEST_F(Safetensors, F16AndBf16ConvertExactly) {
  const Bytes f16 = halves({0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x7c00, 0x8000, 0x3555});
  const Bytes bf16 = halves({0x3f80, 0xc049, 0x7f80, 0x0001});
  Bytes data = f16;
  data.insert(data.end(), bf16.begin(), bf16.end());
  write_safetensors_raw(path_, json{{"h", entry("F16", {8}, 0, 16)}, {"b", entry("BF16", {2, 2}, 16, 24)}}.dump(), data);
  const SafetensorsContent c = read_safetensors(path_);
  const std::vector<float>& h = c.tensors.at("h").values;
  EXPECT_EQ(c.tensors.at("h").dtype, "F16");
  EXPECT_EQ(h[0], 1.0f);
  EXPECT_EQ(h[1], -2.0f);
  EXPECT_EQ(h[2], 65504.0f);
  EXPECT_EQ(h[3], std::ldexp(1.0f, -24));         // smallest subnormal
  EXPECT_EQ(h[4], std::ldexp(1023.0f, -24));      // largest subnormal
  EXPECT_EQ(h[5], std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::signbit(h[6]) && h[6] == 0.0f);
  EXPECT_EQ(h[7], 0.333251953125f);
  const std::vector<float>& b = c.tensors.at("b").values;
  EXPECT_EQ(c.tensors.at("b").shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(b[0], 1.0f);
  EXPECT_EQ(b[1], -3.140625f);
  EXPECT_EQ(b[2], std::numeric_limits<float>::infinity());
  EXPECT_EQ(b[3], std::ldexp(1.0f, -133));  // a float subnormal
}

// ---- weights into a network ----

const char* kTinyNet = "network tiny\ninput 1x4x4\nc conv 2 3x3\nbn batchnorm\nf fc 3\n";

// The tiny network's parameters, each filled with `value`, written in `dtype` (F32 or F16),
// leaving out `skip` and adding `extra` F32 tensors.
void write_tiny_weights(const std::string& path, Executor& executor, const std::string& dtype, float value,
                        const std::string& skip = "", const std::vector<std::pair<std::string, std::vector<int64_t>>>& extra = {}) {
  json header = json::object();
  Bytes data;
  const auto add = [&](const std::string& name, const std::vector<int64_t>& dims, const std::string& type) {
    int64_t count = 1;
    for (int64_t d : dims) count *= d;
    const uint64_t begin = data.size();
    for (int64_t i = 0; i < count; ++i) {
      if (type == "F16") {
        const Bytes h = halves({static_cast<uint16_t>(value == 0.5f ? 0x3800 : 0x3c00)});  // 0.5 or 1
        data.insert(data.end(), h.begin(), h.end());
      } else {
        uint8_t b[4];
        std::memcpy(b, &value, 4);
        data.insert(data.end(), b, b + 4);
      }
    }
    header[name] = entry(type, dims, begin, data.size());
  };
  for (const NamedParameter& p : executor.named_parameters()) {
    if (p.name != skip) add(p.name, p.value->dims(), dtype);
  }
  for (const auto& [name, dims] : extra) add(name, dims, "F32");
  write_safetensors_raw(path, header.dump(), data);
}

float value_of(Executor& executor, const std::string& name) {
  for (const NamedParameter& p : executor.named_parameters()) {
    if (p.name == name) return p.value->data()[0];
  }
  ADD_FAILURE() << "no parameter " << name;
  return 0;
}

TEST(WeightsLoading, F16WeightsWithoutNumBatchesTrackedLoad) {
  TempDir dir;
  Net net = load_model_text(kTinyNet, "tiny.cnet");
  Executor executor(net, {.backend = Backend::Reference});
  for (const NamedParameter& p : executor.named_parameters()) {
    if (p.name == "bn.num_batches_tracked") p.value->data()[0] = 7;
  }
  write_tiny_weights(dir.file("w.safetensors"), executor, "F16", 0.5f, "bn.num_batches_tracked");
  load_weights(executor, dir.file("w.safetensors"));
  EXPECT_EQ(value_of(executor, "c.weight"), 0.5f);
  EXPECT_EQ(value_of(executor, "bn.running_var"), 0.5f);
  EXPECT_EQ(value_of(executor, "bn.num_batches_tracked"), 0.0f);  // absent: 0, as PyTorch starts it
}

TEST(WeightsLoading, ATrainingCheckpointLoadsAsWeights) {
  TempDir dir;
  Net net = load_model_text(kTinyNet, "tiny.cnet");
  Executor executor(net, {.backend = Backend::Reference});
  write_tiny_weights(dir.file("ckpt.safetensors"), executor, "F32", 0.25f, "",
                     {{"optimizer.momentum.c.weight", {2, 1, 3, 3}}, {"optimizer.momentum.f.bias", {3}}});
  load_weights(executor, dir.file("ckpt.safetensors"));
  EXPECT_EQ(value_of(executor, "f.bias"), 0.25f);
  load_checkpoint_tensors(dir.file("ckpt.safetensors"), executor, nullptr);
  EXPECT_EQ(value_of(executor, "c.bias"), 0.25f);
}

TEST(WeightsLoading, EveryMismatchIsStillListedInOneMessageAndNothingChanges) {
  TempDir dir;
  Net net = load_model_text(kTinyNet, "tiny.cnet");
  Executor executor(net, {.backend = Backend::Reference});
  const float before = value_of(executor, "c.weight");
  // f.bias missing, an unknown tensor, c.weight stored as I64, bn.bias of the wrong shape.
  json header = json::object();
  Bytes data;
  for (const NamedParameter& p : executor.named_parameters()) {
    if (p.name == "f.bias") continue;
    std::vector<int64_t> dims = p.name == "bn.bias" ? std::vector<int64_t>{5} : p.value->dims();
    const std::string dtype = p.name == "c.weight" ? "I64" : "F32";
    int64_t count = 1;
    for (int64_t d : dims) count *= d;
    const uint64_t begin = data.size();
    data.resize(data.size() + static_cast<size_t>(count) * (dtype == "I64" ? 8 : 4), 0);
    header[p.name] = entry(dtype, dims, begin, data.size());
  }
  header["extra.weight"] = entry("F32", {1}, data.size(), data.size() + 4);
  data.resize(data.size() + 4, 0);
  write_safetensors_raw(dir.file("w.safetensors"), header.dump(), data);
  expect_io_error([&] { load_weights(executor, dir.file("w.safetensors")); },
                  {dir.file("w.safetensors"), "4 problem(s)", "missing 'f.bias' [3]", "unexpected 'extra.weight' [1]",
                   "'c.weight' is I64, expected a floating-point dtype", "'bn.bias' has shape [5], expected [2]"});
  EXPECT_EQ(value_of(executor, "c.weight"), before);
  // Without num_batches_tracked the other mismatches are still all reported.
  write_tiny_weights(dir.file("w2.safetensors"), executor, "F32", 1.0f, "bn.running_mean");
  expect_io_error([&] { load_weights(executor, dir.file("w2.safetensors")); },
                  {"1 problem(s)", "missing 'bn.running_mean' [2]"});
}

// ---- through the CLI ----

const char* kTwentyClassNet = "network n\ninput 1x2x2\nf fc 20\n";

Bytes text_bytes(const std::string& text) { return Bytes(text.begin(), text.end()); }

class HardenCli : public ::testing::Test {
 protected:
  void SetUp() override {
    write_file(dir_.file("tiny.cnet"), text_bytes(kTinyNet));
    Tensor input({1, 1, 4, 4});
    for (int64_t i = 0; i < input.numel(); ++i) input.data()[i] = static_cast<float>(i);
    write_safetensors(dir_.file("x.safetensors"), {{"input", &input}});
  }
  std::vector<std::string> forward(const std::string& weights, const std::string& images) {
    return {"forward", dir_.file("tiny.cnet"), "--weights", weights, "--images", images, "--out", dir_.file("y.safetensors")};
  }
  TempDir dir_{"harden-cli"};
};

TEST_F(HardenCli, DevZeroAndAFifoAreRefusedAtOnce) {
  Result r = run(forward(dir_.file("none.safetensors"), "/dev/zero"));
  expect_one_line_error(r);
  EXPECT_CONTAINS(r.err, "/dev/zero: is a character device, not a regular file");
  const std::string fifo = dir_.file("w.fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  r = run(forward(fifo, dir_.file("x.safetensors")));
  expect_one_line_error(r);
  EXPECT_CONTAINS(r.err, fifo + ": is a FIFO (named pipe), not a regular file");
  EXPECT_FALSE(fs::exists(dir_.file("y.safetensors")));
}

TEST_F(HardenCli, ForwardTakesF16WeightsAndTrainingCheckpoints) {
  Net net = load_model_text(kTinyNet, "tiny.cnet");
  Executor executor(net, {.backend = Backend::Reference});
  write_tiny_weights(dir_.file("half.safetensors"), executor, "F16", 0.5f, "bn.num_batches_tracked");
  Result r = run(forward(dir_.file("half.safetensors"), dir_.file("x.safetensors")));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_safetensors(dir_.file("y.safetensors")).tensors.at("output").shape, (std::vector<int64_t>{1, 3}));
  write_tiny_weights(dir_.file("ckpt.safetensors"), executor, "F32", 0.5f, "", {{"optimizer.momentum.f.weight", {3, 8}}});
  r = run(forward(dir_.file("ckpt.safetensors"), dir_.file("x.safetensors")));
  EXPECT_EQ(r.code, 0) << r.err;
  write_safetensors_raw(dir_.file("bad.safetensors"), json{{"t", entry("F32", {1, 1, 4294967296LL, 4294967296LL}, 0, 0)}}.dump(), {});
  r = run(forward(dir_.file("bad.safetensors"), dir_.file("x.safetensors")));
  expect_one_line_error(r);
  EXPECT_CONTAINS(r.err, "tensor 't'");
}

std::vector<std::string> train(const TempDir& dir, const std::string& data) {
  return {"train", dir.file("net.cnet"), "--data", data, "--out", dir.file("run"), "--epochs", "1", "--batch", "4",
          "--validation", "0", "--deterministic"};
}

TEST_F(HardenCli, TrainRefusesBadDataBeforeTheFirstStepAndWritesNothing) {
  write_file(dir_.file("net.cnet"), text_bytes(kTwentyClassNet));
  // A class folder whose name is not UTF-8.
  const std::string bad = dir_.file("folders/train/caf\xe9");
  write_png(bad + "/1.png", 2, 2, 1, 0);
  write_png(dir_.file("folders/test/caf\xe9/1.png"), 2, 2, 1, 0);
  Result r = run(train(dir_, dir_.file("folders")));
  expect_one_line_error(r);
  EXPECT_CONTAINS(r.err, bad + ": class name is not valid UTF-8");
  EXPECT_FALSE(fs::exists(dir_.file("run")));
  // An IDX set with no training images.
  write_file(dir_.file("empty/train-images-idx3-ubyte"), idx_images(0, 2, 2));
  write_file(dir_.file("empty/train-labels-idx1-ubyte"), idx_labels({}));
  write_file(dir_.file("empty/t10k-images-idx3-ubyte"), idx_images(1, 2, 2));
  write_file(dir_.file("empty/t10k-labels-idx1-ubyte"), idx_labels({0}));
  r = run(train(dir_, dir_.file("empty")));
  expect_one_line_error(r);
  EXPECT_CONTAINS(r.err, dir_.file("empty/train-images-idx3-ubyte") + ": IDX image file holds no images");
  EXPECT_FALSE(fs::exists(dir_.file("run")));
}

TEST_F(HardenCli, TrainsOnIdxWithTwentyClasses) {
  write_file(dir_.file("net.cnet"), text_bytes(kTwentyClassNet));
  Bytes labels;
  for (int i = 0; i < 20; ++i) labels.push_back(static_cast<uint8_t>(i));
  write_file(dir_.file("idx/train-images-idx3-ubyte"), idx_images(20, 2, 2));
  write_file(dir_.file("idx/train-labels-idx1-ubyte"), idx_labels(labels));
  write_file(dir_.file("idx/t10k-images-idx3-ubyte"), idx_images(2, 2, 2));
  write_file(dir_.file("idx/t10k-labels-idx1-ubyte"), idx_labels({19, 0}));
  const Result r = run(train(dir_, dir_.file("idx")));
  ASSERT_EQ(r.code, 0) << r.err;
  const json meta = read_checkpoint_meta(dir_.file("run/checkpoint.safetensors"));
  EXPECT_EQ(meta.at("class_names").size(), 20u);
  EXPECT_EQ(meta.at("class_names")[19], "19");
}

}  // namespace
}  // namespace convnet
