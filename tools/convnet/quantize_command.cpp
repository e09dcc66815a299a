// `convnet quantize RUN --calibrate N -o OUT`: calibrates every layer's range on N training images,
// compares f32 and int8 on the test set, and writes OUT/checkpoint.safetensors (the f32 weights,
// unchanged) with OUT/quantization.json; eval, predict and bench then run OUT in int8.
#include "quantize_command.hpp"

#include <omp.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli_checks.hpp"
#include "convnet/error.hpp"
#include "convnet/io/atomic_file.hpp"
#include "convnet/train/checkpoint.hpp"
#include "convnet/train/trained_model.hpp"
#include "convnet/train/evaluate.hpp"
#include "convnet/train/quantize.hpp"

namespace convnet {
namespace {

namespace fs = std::filesystem;

struct QuantizeArgs {
  std::string checkpoint;
  std::string out;
  std::string data;
  int64_t calibrate = 1000;
  int64_t batch = 256;
  int threads = 0;
  bool emulate = false;
};

int run_quantize(const QuantizeArgs& a) {
  if (a.threads > 0) omp_set_num_threads(a.threads);
  if (const std::string why = dtype_unsupported_reason(DType::Int8); !why.empty() && !a.emulate) {
    throw SpecError("quantize: " + why + "; add --emulate to run it anyway");
  }
  if (!is_trained_run(a.checkpoint)) {
    throw SpecError("quantize: '" + a.checkpoint +
                    "' is not a training folder or checkpoint (.safetensors); quantize calibrates a trained run");
  }
  std::error_code ec;
  const std::string source =
      fs::is_directory(a.checkpoint, ec) ? (fs::path(a.checkpoint) / kCheckpointFile).string() : a.checkpoint;
  TrainedModel m = open_trained_model(source, {});
  const fs::path out(a.out);
  if (fs::exists(out / kCheckpointFile, ec) || fs::exists(out / kQuantizationFile, ec)) {
    throw SpecError("quantize: " + a.out + " already holds a model; choose another -o");
  }
  const std::string data_path = !a.data.empty() ? a.data : recorded_data_path(m);
  const DataSplits data = load_dataset(data_path);
  const Shape& input = m.net->node(m.net->inputs().at(0)).output;
  if (data.train.image_shape != input || data.test.image_shape != input) {
    throw SpecError("quantize: " + data_path + " holds " + data.train.image_shape.chw_string() + " images but " +
                    a.checkpoint + " takes " + input.chw_string());
  }
  if (data.test.size() == 0) throw SpecError("quantize: " + data_path + ": the test set holds no image");

  const std::vector<ActivationRange> ranges = calibrate(*m.executor, data.train, m.normalization, a.calibrate);
  const Evaluation f32 = evaluate(*m.executor, data.test, m.normalization, a.batch, true);
  Executor int8(*m.net, {.precision = DType::Int8, .emulate = a.emulate, .ranges = ranges});
  load_checkpoint_tensors(source, int8, nullptr);
  const Evaluation q = evaluate(int8, data.test, m.normalization, a.batch, true);
  const double agreement =
      top1_agreement(q.probabilities, f32.probabilities, static_cast<int64_t>(m.class_names.size()));

  fs::create_directories(out, ec);
  if (ec) throw IoError(a.out + ": cannot create the folder (" + ec.message() + ")");
  const fs::path tmp = out / (std::string(kCheckpointFile) + ".tmp");
  fs::copy_file(source, tmp, fs::copy_options::overwrite_existing, ec);
  if (!ec) fs::rename(tmp, out / kCheckpointFile, ec);
  if (ec) throw IoError(a.out + ": cannot write " + kCheckpointFile + " (" + ec.message() + ")");
  const nlohmann::json meta = {{"source", fs::absolute(source).string()},
                               {"data", fs::absolute(data_path).string()},
                               {"calibration_images", std::min(a.calibrate, data.train.size())},
                               {"test_top1_f32", f32.top1},
                               {"test_top1_int8", q.top1},
                               {"test_top1_agreement", agreement}};
  write_file_atomically((out / kQuantizationFile).string(), quantization_json(*m.net, ranges, meta).dump(1) + "\n");
  std::printf("quantized %s to int8 with the ranges of %lld training images: %s\n", m.net->name().c_str(),
              static_cast<long long>(std::min(a.calibrate, data.train.size())), a.out.c_str());
  std::printf("  test top-1: f32 %.2f%%, int8 %.2f%% (%+.2f points); the two agree on %.2f%% of %lld images\n",
              100 * f32.top1, 100 * q.top1, 100 * (q.top1 - f32.top1), 100 * agreement,
              static_cast<long long>(q.count));
  return 0;
}

}  // namespace

std::function<int()> add_quantize_command(CLI::App& app) {
  auto args = std::make_shared<QuantizeArgs>();
  auto* quantize = app.add_subcommand("quantize",
                                      "post-training int8 quantization of a trained model: per-channel "
                                      "s8 weights, activation scales calibrated on training images");
  quantize->add_option("CKPT", args->checkpoint, "checkpoint file or training folder")->required();
  quantize
      ->add_option("-o,--out", args->out,
                   "folder for the quantized model (its f32 checkpoint and "
                   "quantization.json)")
      ->required();
  quantize->add_option("--calibrate", args->calibrate, "training images whose ranges set the scales (default 1000)")
      ->check(whole_number(1, 10'000'000));
  quantize->add_option("--data", args->data, "dataset folder (default: the one the model trained on)");
  quantize->add_option("--batch", args->batch, "images per batch for the test-set comparison")
      ->check(whole_number(1, 1 << 20));
  quantize->add_option("--threads", args->threads, "threads (default: all cores)")->check(thread_count());
  quantize->add_flag("--emulate", args->emulate, "quantize on a CPU without int8 dot products (VNNI / AMX)");
  return [=]() -> int { return quantize->parsed() ? run_quantize(*args) : -1; };
}

}  // namespace convnet
