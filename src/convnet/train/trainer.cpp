// The training loop, its checkpoints and exact resume.
#include "convnet/train/trainer.hpp"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "convnet/error.hpp"
#include "convnet/finite.hpp"
#include "convnet/io/atomic_file.hpp"
#include "convnet/io/safetensors.hpp"
#include "convnet/loss.hpp"
#include "convnet/model/model.hpp"
#include "convnet/train/checkpoint.hpp"
#include "convnet/train/data_parallel.hpp"
#include "convnet/train/evaluate.hpp"
#include "convnet/train/quantize.hpp"
#include "convnet/train/run_checks.hpp"
#include "convnet/train/tower_training.hpp"
#include "convnet/visualize/plot.hpp"

namespace convnet {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

nlohmann::json metrics_json(const EpochMetrics& m) {
  return {{"epoch", m.epoch}, {"train_loss", m.train_loss}, {"train_top1", m.train_top1}, {"eval_loss", m.eval_loss},
          {"eval_top1", m.eval_top1}, {"eval_top5", m.eval_top5}, {"lr", m.lr}, {"seconds", m.seconds}};
}

EpochMetrics metrics_from_json(const nlohmann::json& j) {
  return {j.at("epoch"), j.at("train_loss"), j.at("train_top1"), j.at("eval_loss"), j.at("eval_top1"),
          j.at("eval_top5"), j.at("lr"), j.at("seconds")};
}

// metrics.csv is rewritten whole from the rows the checkpoint holds (temp file, fsync, rename), so
// a crash between the two writes can never leave a duplicated or missing row after resume; the
// curves drawn from them (curves.png) likewise.
// The evaluation columns are named for the set they measured: "val" or "test".
void write_metrics_csv(const fs::path& dir, const std::vector<EpochMetrics>& rows, const std::string& eval_name) {
  std::ostringstream text;
  text << metrics_csv_header(eval_name) << "\n";
  for (const EpochMetrics& m : rows) {
    text << m.epoch << "," << m.train_loss << "," << m.train_top1 << "," << m.eval_loss << "," << m.eval_top1 << ","
         << m.eval_top5 << "," << m.lr << "," << m.seconds << "\n";
  }
  write_file_atomically((dir / "metrics.csv").string(), text.str());
  if (!rows.empty()) {
    plot_curves({rows, eval_name, (dir / "metrics.csv").string()},
                dir.filename().string() + ": " + std::to_string(rows.size()) + " epochs")
        .save_png((dir / "curves.png").string());
  }
}

// The settings a run keeps for its whole life; --resume takes them from the checkpoint.
nlohmann::json settings_json(const TrainOptions& o) {
  return {{"data", o.data}, {"epochs", o.epochs}, {"batch", o.batch}, {"lr", o.lr}, {"optimizer", o.optimizer.kind},
          {"momentum", o.optimizer.momentum}, {"nesterov", o.optimizer.nesterov},
          {"weight_decay", o.optimizer.weight_decay}, {"beta1", o.optimizer.beta1}, {"beta2", o.optimizer.beta2},
          {"eps", o.optimizer.eps}, {"schedule", o.schedule.kind}, {"step_epochs", o.schedule.step_epochs},
          {"factor", o.schedule.factor}, {"patience", o.schedule.patience}, {"warmup", o.schedule.warmup_epochs},
          {"validation", o.validation}, {"normalization", static_cast<int>(o.normalization)},
          {"divide_by_std", o.divide_by_std}, {"crop_padding", o.augment.crop_padding},
          {"flip", o.augment.horizontal_flip}, {"pca_lighting", o.augment.pca_lighting}, {"seed", o.seed},
          {"checkpoint_every", o.checkpoint_every}, {"limit_train", o.limit_train},
          {"precision", dtype_name(o.precision)}};
}

// Reads the stored settings into `o` (epochs excepted: train() decides those); every field is
// required and type-checked, naming the checkpoint and the field.
TrainOptions settings_from_json(const nlohmann::json& j, const std::string& path, TrainOptions o) {
  auto get = [&]<typename T>(const char* field, T& into) { into = checkpoint_field<T>(j, field, path); };
  get("data", o.data);
  get("batch", o.batch);
  get("lr", o.lr);
  get("optimizer", o.optimizer.kind);
  get("momentum", o.optimizer.momentum);
  get("nesterov", o.optimizer.nesterov);
  get("weight_decay", o.optimizer.weight_decay);
  get("beta1", o.optimizer.beta1);
  get("beta2", o.optimizer.beta2);
  get("eps", o.optimizer.eps);
  get("schedule", o.schedule.kind);
  get("step_epochs", o.schedule.step_epochs);
  get("factor", o.schedule.factor);
  get("patience", o.schedule.patience);
  get("warmup", o.schedule.warmup_epochs);
  get("validation", o.validation);
  int normalization = 0;
  get("normalization", normalization);
  o.normalization = static_cast<Normalization::Mode>(normalization);
  get("divide_by_std", o.divide_by_std);
  get("crop_padding", o.augment.crop_padding);
  get("flip", o.augment.horizontal_flip);
  get("pca_lighting", o.augment.pca_lighting);
  get("seed", o.seed);
  get("checkpoint_every", o.checkpoint_every);
  get("limit_train", o.limit_train);
  // Runs from before bf16 training store no precision: they trained in f32.
  const nlohmann::json precision = j.contains("precision") ? j["precision"] : nlohmann::json("f32");
  if (!precision.is_string()) throw IoError(path + ": checkpoint field 'settings.precision' is not a string");
  try {
    o.precision = parse_dtype(precision.get<std::string>(), "checkpoint field 'settings.precision'");
  } catch (const SpecError& e) {
    throw IoError(path + ": " + e.what());
  }
  return o;
}

// The run's length on resume: its stored epochs unless --epochs changes them, which a cosine
// schedule refuses (its rate at every step depends on the length, so the steps already taken
// would belong to another schedule); the other schedules do not depend on the length.
int64_t resumed_epochs(const TrainOptions& given, const TrainOptions& run, int64_t stored, const std::string& path) {
  if (given.epochs == 0 && stored == 0) {
    throw IoError(path + ": the checkpoint does not store the run's length (an older convnet wrote it); give --epochs");
  }
  if (given.epochs == 0 || given.epochs == stored) return stored != 0 ? stored : given.epochs;
  if (stored != 0 && run.schedule.kind == "cosine") {
    throw SpecError("train: --epochs " + std::to_string(given.epochs) + ": this run's cosine schedule spans " +
                    std::to_string(stored) + " epochs, and its learning rate at every step depends on that length; "
                    "resume without --epochs, or start a new run for " + std::to_string(given.epochs) + " epochs");
  }
  return given.epochs;
}

// Runs `body`, turning an allocation failure into an Error that says what needed the memory.
template <typename F>
auto with_memory_context(const std::string& what, F&& body) {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    throw Error("out of memory " + what);
  }
}

std::string rng_string(const std::mt19937_64& rng) {
  std::ostringstream out;
  out << rng;
  return out.str();
}

}  // namespace

std::string metrics_csv_header(const std::string& eval_name) {
  return "epoch,train_loss,train_top1," + eval_name + "_loss," + eval_name + "_top1," + eval_name + "_top5,lr,seconds";
}

TrainResult train(const TrainOptions& given, const std::function<void(const RunInfo&)>& on_ready,
                  const std::function<void(const Progress&)>& on_progress,
                  const std::function<void(const EpochMetrics&)>& on_epoch) {
  const auto run_start = Clock::now();
  Communicator one_process;
  Communicator& comm = given.comm != nullptr ? *given.comm : one_process;
  const bool root = comm.rank() == 0;  // writes the output folder and reports
  if (given.out_dir.empty()) throw SpecError("train: --out DIR is required");
  const fs::path dir(given.out_dir);
  const fs::path checkpoint_path = dir / kCheckpointFile;
  const std::string checkpoint = checkpoint_path.string();
  std::error_code ec;
  auto holds_run = [&] { return fs::exists(checkpoint_path, ec) || fs::exists(dir / "metrics.csv", ec); };
  if (root && holds_run() && !given.resume) {
    throw IoError(given.out_dir + ": holds another run (checkpoint.safetensors / metrics.csv); use --resume to "
                  "continue it or choose another --out");
  }
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) throw IoError(given.out_dir + ": exists and is not a folder");
  if (given.resume && !fs::is_regular_file(checkpoint_path, ec)) throw IoError(checkpoint + ": no checkpoint to resume");
  if (given.resume && fs::exists(dir / kQuantizationFile, ec)) {
    throw IoError(given.out_dir + ": holds a quantized model (" + kQuantizationFile +
                  " from 'convnet quantize'), whose scales fit these weights only; resume the run it was quantized "
                  "from instead");
  }

  // Everything that can fail on bad input happens before the first write.
  nlohmann::json meta;
  TrainOptions o = given;
  if (given.resume) {
    meta = read_checkpoint_meta(checkpoint);
    const nlohmann::json settings = checkpoint_field<nlohmann::json>(meta, "settings", checkpoint);
    if (given.epochs != 0) check_options(given);  // the command line's --epochs (the rest is refused by the CLI)
    o = settings_from_json(settings, checkpoint, given);  // the run's own settings
    const int64_t stored = settings.value("epochs", int64_t{0});
    o.epochs = resumed_epochs(given, o, stored, checkpoint);
    const auto done = checkpoint_field<int64_t>(meta, "epoch", checkpoint);
    if (given.epochs != 0 && done > given.epochs && (stored == 0 || done <= stored)) {
      throw SpecError("train: --epochs " + std::to_string(given.epochs) + ": the run in " + given.out_dir +
                      " has already completed " + std::to_string(done) + " epochs");
    }
    check_options(o, checkpoint);
  } else {
    check_options(o);
    o.data = fs::absolute(o.data).lexically_normal().string();  // eval works from any folder
  }
  DataSplits data = with_memory_context("reading the dataset at " + o.data, [&] { return load_dataset(o.data); });
  if (o.limit_train > 0 && o.limit_train < data.train.size()) {
    data.train.labels.resize(static_cast<size_t>(o.limit_train));
    data.train.pixels.resize(static_cast<size_t>(o.limit_train * data.train.image_size()));
  }
  Dataset validation;
  if (o.validation > 0 && data.train.size() > 0) {
    const int64_t held_out = validation_images(o.validation, data.train.size());
    validation = split_validation(data.train, static_cast<double>(held_out) / static_cast<double>(data.train.size()),
                                  o.seed);
  }
  const Dataset& eval_set = o.validation > 0 ? validation : data.test;

  std::string model_file;
  const std::string model_text =
      o.resume ? meta["model"].get<std::string>() : read_model_source(o.model, model_file);
  if (o.resume && !o.model.empty()) {
    std::string file;
    if (read_model_source(o.model, file) != model_text) {
      throw IoError(checkpoint + ": the checkpoint is of network '" + meta["network"].get<std::string>() +
                    "', not of " + o.model);
    }
  }
  Net net = load_model_text(model_text, o.resume ? checkpoint + " (model)" : model_file,
                            {.input_shape = data.train.image_shape});
  const int64_t classes = net.node(net.output()).output.numel();
  if (classes != static_cast<int64_t>(data.train.class_names.size())) {
    throw SpecError(net.name() + " outputs " + std::to_string(classes) + " values but " + o.data + " has " +
                    std::to_string(data.train.class_names.size()) + " classes");
  }
  check_data(o, data, validation, classes);
  check_checkpoint_text(model_text, o.resume ? checkpoint : model_file, data.train.class_names, o.data);
  if (o.resume) check_checkpoint_size(checkpoint, net);
  Executor executor = with_memory_context("creating " + net.name() + "'s parameters", [&] {
    return Executor(net, {.backend = o.backend,
                          .seed = o.seed,
                          .plan_training = !o.sync_bn,
                          .precision = o.precision,
                          .emulate = o.emulate});
  });
  std::unique_ptr<Optimizer> optimizer = make_optimizer(o.optimizer);
  const int64_t batches_per_epoch = (data.train.size() + o.batch - 1) / o.batch;
  Schedule schedule(o.schedule, o.lr, o.epochs);
  Normalization norm = compute_normalization(data.train, o.normalization, o.divide_by_std);

  ResumePoint at;
  std::vector<EpochMetrics> history;
  if (o.resume) {
    at = read_resume_point(meta, checkpoint, o.epochs, batches_per_epoch, o.batch);
    load_checkpoint_tensors(checkpoint, executor, optimizer.get());
    optimizer->set_steps(at.step);
    const auto stored_norm = checkpoint_field<nlohmann::json>(meta, "normalization", checkpoint);
    const auto stored_schedule = checkpoint_field<nlohmann::json>(meta, "schedule", checkpoint);
    try {
      norm = Normalization::from_json(stored_norm);
      check_normalization(norm, data.train.image_shape);
      schedule.load_state(stored_schedule);
    } catch (const Error& e) {
      throw IoError(checkpoint + ": checkpoint field " + e.what());
    }
    std::istringstream rng_state(checkpoint_field<std::string>(meta, "rng", checkpoint));
    rng_state >> executor.rng();
    if (!rng_state) throw IoError(checkpoint + ": checkpoint field 'rng' is not a generator state");
    const auto rows = checkpoint_field<nlohmann::json>(meta, "metrics", checkpoint);
    try {
      for (const auto& row : rows) history.push_back(metrics_from_json(row));
    } catch (const nlohmann::json::exception&) {
      throw IoError(checkpoint + ": checkpoint field 'metrics' holds a malformed row");
    }
    if (!rows.is_array() || static_cast<int64_t>(history.size()) != at.epoch) {
      throw IoError(checkpoint + ": checkpoint field 'metrics' holds " + std::to_string(history.size()) +
                    " rows for " + std::to_string(at.epoch) + " completed epochs");
    }
  }
  const std::string eval_name = o.validation > 0 ? "val" : "test";
  if (o.towers > 1 && o.groups > 0) throw SpecError("train: --towers and --deterministic do not go together yet");
  if (o.sync_bn && (o.groups > 0 || o.towers > 1)) {
    throw SpecError("train: --sync-bn needs the whole batch's statistics at once, which --deterministic (one group "
                    "at a time) and --towers do not have");
  }
  if (o.sync_bn) executor.context().sum_over_ranks = [&comm](std::span<double> sums) { comm.sum(sums); };
  // With towers every rank reads the whole batch: the data-parallel side is one process.
  DataParallel parallel(o.towers > 1 ? one_process : comm, executor, {.groups = o.groups, .seed = o.seed});
  parallel.broadcast_parameters();
  std::unique_ptr<TowerTraining> towers;
  if (o.towers > 1) {
    towers = std::make_unique<TowerTraining>(comm, o.towers, net, executor, *optimizer,
                                             ExecutorOptions{.backend = o.backend, .seed = o.seed});
  }
  std::optional<RunLock> lock;
  if (root) {
    if (holds_run() && !o.resume) throw IoError(o.out_dir + ": holds another run; use --resume or choose another --out");
    lock.emplace(o.out_dir);
    if (holds_run() && !o.resume) throw IoError(o.out_dir + ": another run started writing here; choose another --out");
  }
  if (root && on_ready) {
    on_ready({o, net.name(), data.train.size(), eval_set.size(), data.test.size(), eval_name, at.epoch, at.batch,
              batches_per_epoch});
  }
  if (root && o.resume) write_metrics_csv(dir, history, eval_name);  // a crash may have come between checkpoint and CSV

  double loss_sum = at.loss_sum, correct = at.correct, seen = at.seen, epoch_seconds = at.epoch_seconds;
  const LoaderOptions loader_options =
      parallel.shard({.batch_size = o.batch, .shuffle = true, .augment = o.augment, .seed = o.seed});
  // One model for evaluation and checkpoints: the ranks' running statistics averaged, the towers
  // gathered; once per optimiser step at most (every rank counts the same steps).
  int64_t synced_at = -1;
  // What a diverged run leaves: its last checkpoint, if one was written (a run stopped in its first
  // epoch without --checkpoint-every has none).
  auto kept = [&]() -> std::string {
    return fs::exists(checkpoint_path, ec) ? "; the last good checkpoint is kept in " + o.out_dir
                                           : "; nothing was saved";
  };
  auto sync_model = [&] {
    if (synced_at == optimizer->steps()) return;
    parallel.average_buffers();
    if (towers) towers->gather_parameters();
    synced_at = optimizer->steps();
    // A step can leave a finite loss and weights beyond f32 (the next step's loss would show it):
    // stop before they are evaluated or written over the last good checkpoint. Every rank holds the
    // same parameters, so every rank stops here.
    for (const NamedParameter& p : executor.named_parameters()) {
      if (const int64_t i = first_non_finite({p.value->data(), static_cast<size_t>(p.value->numel())}); i >= 0) {
        throw CollectiveError("training diverged: parameter '" + p.name + "' holds " +
                              std::to_string(p.value->data()[i]) + " (index " + std::to_string(i) + ") after step " +
                              std::to_string(optimizer->steps()) + kept() + "; try a lower --lr");
      }
    }
  };
  auto save = [&](int64_t at_epoch, int64_t at_batch) {
    sync_model();
    std::unique_ptr<Optimizer> full_state;
    if (towers) full_state = towers->full_optimizer_state(o.optimizer);
    if (!root) return;
    nlohmann::json m = {{"network", net.name()}, {"model", model_text}, {"input_shape", data.train.image_shape.dims()},
                        {"normalization", norm.to_json()}, {"class_names", data.train.class_names},
                        {"epoch", at_epoch}, {"batch", at_batch}, {"step", optimizer->steps()},
                        {"loss_sum", loss_sum}, {"correct", correct}, {"seen", seen},
                        {"epoch_seconds", epoch_seconds}, {"schedule", schedule.state()},
                        {"rng", rng_string(executor.rng())}, {"data", o.data}, {"settings", settings_json(o)}};
    m["metrics"] = nlohmann::json::array();
    for (const EpochMetrics& row : history) m["metrics"].push_back(metrics_json(row));
    save_checkpoint(checkpoint, executor, towers ? full_state.get() : optimizer.get(), m);
  };
  TrainResult result;
  auto stop_requested = [&] { return o.stop_requested && o.stop_requested(); };
  auto any_rank_stops = [&] { return comm.any(stop_requested()); };  // every rank leaves at the same step
  auto interrupted = [&](int64_t at_epoch, int64_t at_batch, bool checkpointed) {
    result.epochs = history;
    result.interrupted = true;
    result.checkpointed = checkpointed;
    result.stopped_epoch = at_epoch;
    result.stopped_batch = at_batch;
    result.seconds = std::chrono::duration<double>(Clock::now() - run_start).count();
    result.timing = parallel.timing();
    return result;
  };
  if (any_rank_stops()) return interrupted(at.epoch, at.batch, false);

  const std::string batch_memory = "for a batch of " + std::to_string(o.batch) + " (try a smaller --batch)";
  const int64_t eval_batch = std::max<int64_t>(o.batch, 256);
  Tensor images;
  std::vector<int64_t> labels;
  std::vector<NamedParameter> params = towers ? towers->parameters() : executor.named_parameters();
  for (int64_t epoch = at.epoch, first_batch = at.batch; epoch < o.epochs; ++epoch, first_batch = 0) {
    BatchLoader loader(data.train, norm, loader_options, epoch, first_batch);
    auto segment_start = Clock::now();
    const double seconds_before = epoch_seconds;
    double lr = 0;
    while (loader.next(images, labels)) {
      const int64_t b = loader.position() - 1;
      lr = schedule.lr(static_cast<double>(epoch) + static_cast<double>(b) / static_cast<double>(batches_per_epoch));
      comm.set_phase("epoch " + std::to_string(epoch + 1) + ", batch " + std::to_string(b + 1));
      const int64_t batch_images = std::min(o.batch, data.train.size() - b * o.batch);
      const StepTotals step = with_memory_context(batch_memory, [&] {
        return towers ? towers->step(images, labels, stop_requested())
                      : parallel.step(images, labels, batch_images, optimizer->steps(), stop_requested());
      });
      const double loss = step.loss_sum / std::max(step.images, 1.0);
      if (!std::isfinite(loss)) {
        throw CollectiveError("training diverged: the loss is " + std::to_string(loss) + " at epoch " +
                              std::to_string(epoch + 1) + ", batch " + std::to_string(b + 1) + " (learning rate " +
                              std::to_string(lr) + ")" + kept() + "; try a lower --lr");
      }
      loss_sum += step.loss_sum;
      correct += step.correct;
      seen += step.images;
      optimizer->step(params, lr);
      epoch_seconds = seconds_before + std::chrono::duration<double>(Clock::now() - segment_start).count();
      if (root && on_progress) {
        const double rate = seen / std::max(epoch_seconds, 1e-9);
        on_progress({epoch, o.epochs, b + 1, batches_per_epoch, loss_sum / seen, correct / seen, rate,
                     (static_cast<double>(data.train.size()) - seen) / std::max(rate, 1e-9)});
      }
      if (loader.position() < batches_per_epoch) {
        const bool stop = step.stop;
        if (stop || (o.checkpoint_every > 0 && optimizer->steps() % o.checkpoint_every == 0)) {
          save(epoch, loader.position());
        }
        if (stop) return interrupted(epoch, loader.position(), true);
      }
    }
    const Evaluation eval = with_memory_context("evaluating a batch of " + std::to_string(eval_batch) +
                                                    " (try a smaller --batch)",
                                                [&] {
                                                  sync_model();
                                                  return parallel.evaluate(eval_set, norm, eval_batch);
                                                });
    schedule.end_epoch(eval.top1);
    EpochMetrics m{epoch + 1, loss_sum / seen, correct / seen, eval.loss, eval.top1, eval.top5, lr, epoch_seconds};
    history.push_back(m);
    loss_sum = correct = seen = epoch_seconds = 0;
    save(epoch + 1, 0);
    if (root) write_metrics_csv(dir, history, eval_name);
    if (root && on_epoch) on_epoch(m);
    if (epoch + 1 < o.epochs && any_rank_stops()) return interrupted(epoch + 1, 0, true);
  }

  result.epochs = history;
  const Evaluation test = with_memory_context("evaluating the test set (try a smaller --batch)",
                                              [&] {
                                                sync_model();
                                                return parallel.evaluate(data.test, norm, eval_batch);
                                              });
  result.test_top1 = test.top1;
  result.test_top5 = test.top5;
  result.test_loss = test.loss;
  result.seconds = std::chrono::duration<double>(Clock::now() - run_start).count();
  result.timing = parallel.timing();
  return result;
}

}  // namespace convnet
