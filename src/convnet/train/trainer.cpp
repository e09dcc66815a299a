// The training loop, its checkpoints and exact resume.
#include "convnet/train/trainer.hpp"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "convnet/error.hpp"
#include "convnet/io/atomic_file.hpp"
#include "convnet/io/safetensors.hpp"
#include "convnet/loss.hpp"
#include "convnet/model/model.hpp"
#include "convnet/train/checkpoint.hpp"
#include "convnet/train/evaluate.hpp"

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
// a crash between the two writes can never leave a duplicated or missing row after resume.
void write_metrics_csv(const fs::path& dir, const std::vector<EpochMetrics>& rows) {
  std::ostringstream text;
  text << "epoch,train_loss,train_top1,eval_loss,eval_top1,eval_top5,lr,seconds\n";
  for (const EpochMetrics& m : rows) {
    text << m.epoch << "," << m.train_loss << "," << m.train_top1 << "," << m.eval_loss << "," << m.eval_top1 << ","
         << m.eval_top5 << "," << m.lr << "," << m.seconds << "\n";
  }
  write_file_atomically((dir / "metrics.csv").string(), text.str());
}

// The settings a run keeps for its whole life; --resume takes them from the checkpoint.
nlohmann::json settings_json(const TrainOptions& o) {
  return {{"data", o.data}, {"batch", o.batch}, {"lr", o.lr}, {"optimizer", o.optimizer.kind},
          {"momentum", o.optimizer.momentum}, {"nesterov", o.optimizer.nesterov},
          {"weight_decay", o.optimizer.weight_decay}, {"beta1", o.optimizer.beta1}, {"beta2", o.optimizer.beta2},
          {"eps", o.optimizer.eps}, {"schedule", o.schedule.kind}, {"step_epochs", o.schedule.step_epochs},
          {"factor", o.schedule.factor}, {"patience", o.schedule.patience}, {"warmup", o.schedule.warmup_epochs},
          {"validation", o.validation}, {"normalization", static_cast<int>(o.normalization)},
          {"divide_by_std", o.divide_by_std}, {"crop_padding", o.augment.crop_padding},
          {"flip", o.augment.horizontal_flip}, {"pca_lighting", o.augment.pca_lighting}, {"seed", o.seed},
          {"checkpoint_every", o.checkpoint_every}, {"limit_train", o.limit_train}};
}

TrainOptions settings_from_json(const nlohmann::json& j, TrainOptions o) {
  o.data = j.at("data");
  o.batch = j.at("batch");
  o.lr = j.at("lr");
  o.optimizer = {j.at("optimizer"), j.at("momentum"), j.at("nesterov"), j.at("weight_decay"), j.at("beta1"),
                 j.at("beta2"), j.at("eps")};
  o.schedule = {j.at("schedule"), j.at("step_epochs"), j.at("factor"), j.at("patience"), j.at("warmup")};
  o.validation = j.at("validation");
  o.normalization = static_cast<Normalization::Mode>(j.at("normalization").get<int>());
  o.divide_by_std = j.at("divide_by_std");
  o.augment = {j.at("crop_padding"), j.at("flip"), j.at("pca_lighting")};
  o.seed = j.at("seed");
  o.checkpoint_every = j.at("checkpoint_every");
  o.limit_train = j.at("limit_train");
  return o;
}

void check_options(const TrainOptions& o) {
  auto require = [](bool ok, const std::string& message) {
    if (!ok) throw SpecError("train: " + message);
  };
  require(o.epochs >= 1 && o.batch >= 1, "--epochs and --batch must be at least 1");
  require(o.lr > 0 && std::isfinite(o.lr), "--lr must be positive");
  require(o.optimizer.momentum >= 0 && o.optimizer.weight_decay >= 0, "--momentum and --weight-decay must be >= 0");
  require(o.augment.crop_padding >= 0 && o.augment.pca_lighting >= 0, "--crop-padding and --pca-lighting must be >= 0");
  require(o.checkpoint_every >= 0 && o.limit_train >= 0 && o.schedule.warmup_epochs >= 0,
          "--checkpoint-every, --limit and --warmup must be >= 0");
  require(o.validation >= 0 && o.validation < 1, "--validation must be in [0, 1)");
}

std::string rng_string(const std::mt19937_64& rng) {
  std::ostringstream out;
  out << rng;
  return out.str();
}

}  // namespace

TrainResult train(const TrainOptions& given, const std::function<void()>& on_ready,
                  const std::function<void(const Progress&)>& on_progress,
                  const std::function<void(const EpochMetrics&)>& on_epoch) {
  const auto run_start = Clock::now();
  const fs::path dir(given.out_dir);
  const fs::path checkpoint_path = dir / kCheckpointFile;
  if (given.out_dir.empty()) throw SpecError("train: --out DIR is required");
  std::error_code ec;
  const bool has_run = fs::exists(checkpoint_path, ec) || fs::exists(dir / "metrics.csv", ec);
  if (has_run && !given.resume) {
    throw IoError(given.out_dir + ": holds another run (checkpoint.safetensors / metrics.csv); use --resume to "
                  "continue it or choose another --out");
  }
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) throw IoError(given.out_dir + ": exists and is not a folder");
  if (given.resume && !fs::is_regular_file(checkpoint_path, ec)) {
    throw IoError(checkpoint_path.string() + ": no checkpoint to resume");
  }

  // Everything that can fail on bad input happens before the first write.
  nlohmann::json meta;
  TrainOptions o = given;
  if (given.resume) {
    meta = read_checkpoint_meta(checkpoint_path.string());
    try {
      o = settings_from_json(meta.at("settings"), given);  // the run's own settings; only epochs may change
    } catch (const nlohmann::json::exception& e) {
      throw IoError(checkpoint_path.string() + ": corrupted checkpoint metadata: " + e.what());
    }
  }
  check_options(o);
  DataSplits data = load_dataset(o.data);
  if (o.limit_train > 0 && o.limit_train < data.train.size()) {
    data.train.labels.resize(static_cast<size_t>(o.limit_train));
    data.train.pixels.resize(static_cast<size_t>(o.limit_train * data.train.image_size()));
  }
  Dataset validation = o.validation > 0 ? split_validation(data.train, o.validation, o.seed) : Dataset{};
  const Dataset& eval_set = o.validation > 0 ? validation : data.test;

  std::string model_file;
  const std::string model_text = o.resume ? meta["model"].get<std::string>() : read_model_source(o.model, model_file);
  if (o.resume && !o.model.empty()) {
    std::string file;
    if (read_model_source(o.model, file) != model_text) {
      throw IoError(checkpoint_path.string() + ": the checkpoint is of network '" + meta["network"].get<std::string>() +
                    "', not of " + o.model);
    }
  }
  Net net = load_model_text(model_text, o.resume ? "checkpoint model" : model_file,
                            {.input_shape = data.train.image_shape});
  const int64_t classes = net.node(net.output()).output.numel();
  if (classes != static_cast<int64_t>(data.train.class_names.size())) {
    throw SpecError(net.name() + " outputs " + std::to_string(classes) + " values but " + o.data + " has " +
                    std::to_string(data.train.class_names.size()) + " classes");
  }
  Executor executor(net, {.backend = o.backend, .seed = o.seed});
  std::unique_ptr<Optimizer> optimizer = make_optimizer(o.optimizer);
  const int64_t batches_per_epoch = (data.train.size() + o.batch - 1) / o.batch;
  Schedule schedule(o.schedule, o.lr, o.epochs);
  Normalization norm = compute_normalization(data.train, o.normalization, o.divide_by_std);

  int64_t epoch = 0, first_batch = 0;
  double loss_sum = 0, correct = 0, seen = 0, epoch_seconds = 0;
  std::vector<EpochMetrics> history;
  if (o.resume) {
    load_checkpoint_tensors(checkpoint_path.string(), executor, optimizer.get());
    try {
      norm = Normalization::from_json(meta.at("normalization"));
      optimizer->set_steps(meta.at("step").get<int64_t>());
      epoch = meta.at("epoch").get<int64_t>();
      first_batch = meta.at("batch").get<int64_t>();
      loss_sum = meta.at("loss_sum").get<double>();
      correct = meta.at("correct").get<double>();
      seen = meta.at("seen").get<double>();
      epoch_seconds = meta.at("epoch_seconds").get<double>();
      schedule.load_state(meta.at("schedule"));
      std::istringstream rng_state(meta.at("rng").get<std::string>());
      rng_state >> executor.rng();
      if (!rng_state) throw IoError(checkpoint_path.string() + ": corrupted checkpoint metadata: bad RNG state");
      for (const auto& row : meta.at("metrics")) history.push_back(metrics_from_json(row));
    } catch (const nlohmann::json::exception& e) {
      throw IoError(checkpoint_path.string() + ": corrupted checkpoint metadata: " + e.what());
    }
  }
  if (o.augment.pca_lighting > 0 && data.train.image_shape.channels() != 3) {
    throw SpecError("train: --pca-lighting needs 3-channel images; " + o.data + " has " +
                    std::to_string(data.train.image_shape.channels()));
  }
  if (on_ready) on_ready();
  fs::create_directories(dir, ec);
  if (ec) throw IoError(o.out_dir + ": cannot create the folder: " + ec.message());
  if (o.resume) write_metrics_csv(dir, history);  // a crash may have come between checkpoint and CSV

  LoaderOptions loader_options{.batch_size = o.batch, .shuffle = true, .augment = o.augment, .seed = o.seed};
  auto save = [&](int64_t at_epoch, int64_t at_batch) {
    nlohmann::json m = {{"network", net.name()}, {"model", model_text}, {"input_shape", data.train.image_shape.dims()},
                        {"normalization", norm.to_json()}, {"class_names", data.train.class_names},
                        {"epoch", at_epoch}, {"batch", at_batch}, {"step", optimizer->steps()},
                        {"loss_sum", loss_sum}, {"correct", correct}, {"seen", seen},
                        {"epoch_seconds", epoch_seconds}, {"schedule", schedule.state()},
                        {"rng", rng_string(executor.rng())}, {"data", o.data}, {"settings", settings_json(o)}};
    m["metrics"] = nlohmann::json::array();
    for (const EpochMetrics& row : history) m["metrics"].push_back(metrics_json(row));
    save_checkpoint(checkpoint_path.string(), executor, optimizer.get(), m);
  };

  Tensor images, grad_logits;
  std::vector<int64_t> labels;
  std::vector<NamedParameter> params = executor.named_parameters();
  for (; epoch < o.epochs; ++epoch, first_batch = 0) {
    BatchLoader loader(data.train, norm, loader_options, epoch, first_batch);
    auto segment_start = Clock::now();
    const double seconds_before = epoch_seconds;
    double lr = 0;
    while (loader.next(images, labels)) {
      const int64_t b = loader.position() - 1;
      lr = schedule.lr(static_cast<double>(epoch) + static_cast<double>(b) / static_cast<double>(batches_per_epoch));
      const Tensor& logits = executor.forward(images, true);
      const double loss = softmax_cross_entropy(logits, labels, grad_logits);
      if (!std::isfinite(loss)) {
        throw Error("training diverged: the loss is " + std::to_string(loss) + " at epoch " + std::to_string(epoch + 1) +
                    ", batch " + std::to_string(b + 1) + " (learning rate " + std::to_string(lr) +
                    "); the last good checkpoint is kept in " + o.out_dir + "; try a lower --lr");
      }
      for (size_t n = 0; n < labels.size(); ++n) {
        const float* row = logits.data() + static_cast<int64_t>(n) * classes;
        correct += static_cast<double>(std::max_element(row, row + classes) - row == labels[n]);
      }
      loss_sum += loss * static_cast<double>(labels.size());
      seen += static_cast<double>(labels.size());
      executor.zero_grad();
      executor.backward(grad_logits);
      optimizer->step(params, lr);
      epoch_seconds = seconds_before + std::chrono::duration<double>(Clock::now() - segment_start).count();
      if (on_progress) {
        const double rate = seen / std::max(epoch_seconds, 1e-9);
        on_progress({epoch, o.epochs, b + 1, batches_per_epoch, loss_sum / seen, correct / seen, rate,
                     (static_cast<double>(data.train.size()) - seen) / std::max(rate, 1e-9)});
      }
      if (o.checkpoint_every > 0 && optimizer->steps() % o.checkpoint_every == 0 && loader.position() < batches_per_epoch) {
        save(epoch, loader.position());
      }
    }
    const Evaluation eval = evaluate(executor, eval_set, norm, std::max<int64_t>(o.batch, 256));
    schedule.end_epoch(eval.top1);
    EpochMetrics m{epoch + 1, loss_sum / seen, correct / seen, eval.loss, eval.top1, eval.top5, lr, epoch_seconds};
    history.push_back(m);
    loss_sum = correct = seen = epoch_seconds = 0;
    save(epoch + 1, 0);
    write_metrics_csv(dir, history);
    if (on_epoch) on_epoch(m);
  }

  TrainResult result;
  result.epochs = history;
  const Evaluation test = evaluate(executor, data.test, norm, std::max<int64_t>(o.batch, 256));
  result.test_top1 = test.top1;
  result.test_top5 = test.top5;
  result.test_loss = test.loss;
  result.seconds = std::chrono::duration<double>(Clock::now() - run_start).count();
  return result;
}

}  // namespace convnet
