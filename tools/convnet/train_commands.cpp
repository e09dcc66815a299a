// The training-side commands: option parsing, a progress bar on terminals, plain lines otherwise.
#include "train_commands.hpp"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <numeric>

#include "convnet/data/dataset.hpp"
#include "convnet/error.hpp"
#include "convnet/kernels/reference/softmax.hpp"
#include "convnet/train/checkpoint.hpp"
#include "convnet/train/evaluate.hpp"
#include "convnet/train/trainer.hpp"

namespace convnet {
namespace {

struct TrainArgs {
  TrainOptions options;
  std::string schedule = "step:10";
  std::string normalization = "per-channel";
  int threads = 0;
  bool deterministic = false;
  bool reference = false;
  int64_t warmup = 0;
};

struct EvalArgs {
  std::vector<std::string> checkpoints;
  std::string data;
  int64_t batch = 256;
  int threads = 0;
};

struct PredictArgs {
  std::string checkpoint;
  std::vector<std::string> images;
  int64_t top = 5;
};

void set_threads(int threads) {
  if (threads > 0) omp_set_num_threads(threads);
}

std::string clock_string(double seconds) {
  const auto s = static_cast<long long>(seconds + 0.5);
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%lld:%02lld", s / 60, s % 60);
  return buffer;
}

int run_train(TrainArgs& a) {
  if (a.deterministic) a.threads = 1;
  set_threads(a.threads);
  a.options.schedule = parse_schedule(a.schedule);
  a.options.schedule.warmup_epochs = a.warmup;
  if (a.normalization == "none") a.options.normalization = Normalization::Mode::None;
  else if (a.normalization == "mean-image") a.options.normalization = Normalization::Mode::MeanImage;
  else if (a.normalization == "per-channel") a.options.normalization = Normalization::Mode::PerChannel;
  else throw SpecError("--normalize " + a.normalization + ": expected none, mean-image or per-channel");
  a.options.backend = a.reference ? Backend::Reference : Backend::OneDnn;
  const bool terminal = ::isatty(STDOUT_FILENO) != 0;
  auto ready = [&] {
    std::printf("training %s on %s for %lld epoch(s), batch %lld, lr %g, %s%s; output in %s\n",
                a.options.resume && a.options.model.empty() ? "(resumed)" : a.options.model.c_str(),
                a.options.data.c_str(), static_cast<long long>(a.options.epochs),
                static_cast<long long>(a.options.batch), a.options.lr, a.options.optimizer.kind.c_str(),
                a.options.resume ? ", resuming" : "", a.options.out_dir.c_str());
    std::fflush(stdout);
  };
  auto progress = [&](const Progress& p) {
    if (!terminal) return;
    const int width = 24;
    const int filled = static_cast<int>(width * p.batch / std::max<int64_t>(1, p.batches));
    std::printf("\repoch %lld/%lld [%s%s] %lld/%lld  loss %.4f  acc %.2f%%  %.0f img/s  ETA %s   ",
                static_cast<long long>(p.epoch + 1), static_cast<long long>(p.epochs),
                std::string(static_cast<size_t>(filled), '=').c_str(),
                std::string(static_cast<size_t>(width - filled), ' ').c_str(), static_cast<long long>(p.batch),
                static_cast<long long>(p.batches), p.loss, 100 * p.top1, p.images_per_second,
                clock_string(p.seconds_left).c_str());
    std::fflush(stdout);
  };
  auto epoch_done = [&](const EpochMetrics& m) {
    if (terminal) std::printf("\r%s\r", std::string(100, ' ').c_str());
    std::printf("epoch %lld/%lld: train loss %.4f acc %.2f%% | eval loss %.4f top-1 %.2f%% top-5 %.2f%% | lr %g | %.1f s\n",
                static_cast<long long>(m.epoch), static_cast<long long>(a.options.epochs), m.train_loss,
                100 * m.train_top1, m.eval_loss, 100 * m.eval_top1, 100 * m.eval_top5, m.lr, m.seconds);
    std::fflush(stdout);
  };
  const TrainResult result = train(a.options, ready, progress, epoch_done);
  std::printf("test accuracy: top-1 %.2f%%, top-5 %.2f%% (loss %.4f) after %.1f s\n", 100 * result.test_top1,
              100 * result.test_top5, result.test_loss, result.seconds);
  return 0;
}

int run_eval(const EvalArgs& a) {
  set_threads(a.threads);
  std::vector<TrainedModel> models;
  for (const std::string& path : a.checkpoints) models.push_back(open_trained_model(path, Backend::OneDnn));
  const std::string data_path = !a.data.empty() ? a.data : models.front().meta.value("data", std::string(kDefaultDataPath));
  const DataSplits data = load_dataset(data_path);
  const auto classes = static_cast<int64_t>(models.front().class_names.size());
  if (static_cast<int64_t>(data.test.class_names.size()) != classes) {
    throw SpecError(data_path + " has " + std::to_string(data.test.class_names.size()) + " classes, the model " +
                    std::to_string(classes));
  }
  std::vector<float> sum;
  for (size_t i = 0; i < models.size(); ++i) {
    TrainedModel& m = models[i];
    if (static_cast<int64_t>(m.class_names.size()) != classes) {
      throw SpecError(a.checkpoints[i] + ": has " + std::to_string(m.class_names.size()) + " classes, the first checkpoint " +
                      std::to_string(classes) + "; an ensemble needs the same classes");
    }
    const Evaluation e = evaluate(*m.executor, data.test, m.normalization, a.batch, models.size() > 1);
    std::printf("%s: top-1 %.2f%%, top-5 %.2f%%, loss %.4f on %lld test images\n", a.checkpoints[i].c_str(),
                100 * e.top1, 100 * e.top5, e.loss, static_cast<long long>(e.count));
    if (models.size() == 1) {
      std::printf("%s", format_confusion(e, m.class_names).c_str());
      return 0;
    }
    if (sum.empty()) sum.assign(e.probabilities.size(), 0.0f);
    for (size_t k = 0; k < sum.size(); ++k) sum[k] += e.probabilities[k] / static_cast<float>(models.size());
  }
  const Evaluation ensemble = score_probabilities(sum, data.test.labels, classes);
  std::printf("ensemble of %zu (averaged probabilities): top-1 %.2f%%, top-5 %.2f%%, loss %.4f\n", models.size(),
              100 * ensemble.top1, 100 * ensemble.top5, ensemble.loss);
  std::printf("%s", format_confusion(ensemble, models.front().class_names).c_str());
  return 0;
}

int run_predict(const PredictArgs& a) {
  TrainedModel m = open_trained_model(a.checkpoint, Backend::OneDnn);
  const Shape& shape = m.net->node(m.net->inputs().at(0)).output;
  for (const std::string& path : a.images) {
    const Dataset image = read_single_image(path, shape);
    Tensor input({1, shape.channels(), shape.height(), shape.width()});
    normalized_image(image, 0, m.normalization, input.data());
    const Tensor& logits = m.executor->forward(input, false);
    std::vector<float> p(static_cast<size_t>(logits.numel()));
    kernels::reference::softmax_forward<float>({1, logits.numel(), 1}, logits.data(), p.data());
    std::vector<size_t> order(p.size());
    std::iota(order.begin(), order.end(), 0);
    const size_t k = std::min<size_t>(static_cast<size_t>(a.top), p.size());
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                      [&](size_t x, size_t y) { return p[x] > p[y]; });
    std::printf("%s:", path.c_str());
    for (size_t i = 0; i < k; ++i) {
      std::printf("  %s %.1f%%", m.class_names[order[i]].c_str(), 100 * p[order[i]]);
    }
    std::printf("\n");
  }
  return 0;
}

}  // namespace

std::function<int()> add_train_commands(CLI::App& app) {
  auto train_args = std::make_shared<TrainArgs>();
  auto eval_args = std::make_shared<EvalArgs>();
  auto predict_args = std::make_shared<PredictArgs>();
  TrainOptions& t = train_args->options;

  auto* train = app.add_subcommand("train", "train a network on image data (Fashion-MNIST by default)");
  train->add_option("NET", t.model, "a zoo model name or a model file (omit with --resume)");
  train->add_option("--data", t.data, "dataset folder: IDX, CIFAR binary, or images in class folders")
      ->capture_default_str();
  train->add_option("--out", t.out_dir, "folder for checkpoints and metrics.csv (must not hold another run)")->required();
  train->add_flag("--resume", t.resume, "continue the run in --out exactly where it stopped, with its own settings");
  train->add_option("--epochs", t.epochs, "epochs to train")->capture_default_str()->check(CLI::PositiveNumber);
  train->add_option("--batch", t.batch, "images per batch")->capture_default_str()->check(CLI::PositiveNumber);
  train->add_option("--lr", t.lr, "base learning rate")->capture_default_str()->check(CLI::PositiveNumber);
  train->add_option("--optimizer", t.optimizer.kind, "sgd or adam")->capture_default_str();
  train->add_option("--momentum", t.optimizer.momentum, "SGD momentum")->capture_default_str()->check(CLI::NonNegativeNumber);
  train->add_flag("--nesterov", t.optimizer.nesterov, "Nesterov momentum");
  train->add_option("--weight-decay", t.optimizer.weight_decay, "L2 weight decay")->capture_default_str()->check(CLI::NonNegativeNumber);
  train->add_option("--schedule", train_args->schedule, "constant, step:EPOCHS, plateau[:PATIENCE] or cosine")
      ->capture_default_str();
  train->add_option("--warmup", train_args->warmup, "epochs of linear learning-rate warm-up")->capture_default_str()->check(CLI::NonNegativeNumber);
  train->add_option("--validation", t.validation, "fraction of the training set held out for evaluation each epoch")
      ->check(CLI::Range(0.0, 0.5));
  train->add_option("--normalize", train_args->normalization, "none, mean-image or per-channel")->capture_default_str();
  train->add_option("--crop-padding", t.augment.crop_padding, "random crops from images padded by this much")->check(CLI::NonNegativeNumber);
  train->add_flag("--flip", t.augment.horizontal_flip, "random horizontal flips");
  train->add_option("--pca-lighting", t.augment.pca_lighting, "AlexNet's PCA colour noise std (3-channel data)")->check(CLI::NonNegativeNumber);
  train->add_option("--seed", t.seed, "seed for initialisation, shuffling, augmentation and dropout")->capture_default_str();
  train->add_option("--checkpoint-every", t.checkpoint_every, "also checkpoint every N steps (0: at epoch ends)")->check(CLI::NonNegativeNumber);
  train->add_option("--threads", train_args->threads, "threads (default: all cores)")->check(CLI::NonNegativeNumber);
  train->add_flag("--deterministic", train_args->deterministic, "one thread: bit-identical runs and resumes");
  train->add_flag("--reference", train_args->reference, "reference kernels instead of oneDNN (slow)");
  train->add_option("--limit", t.limit_train, "train on the first N images only (quick experiments)")->check(CLI::NonNegativeNumber);

  auto* eval = app.add_subcommand("eval", "top-1/top-5 and confusion matrix on the test set; several checkpoints "
                                          "form an ensemble averaging probabilities");
  eval->add_option("CKPT", eval_args->checkpoints, "checkpoint files or training folders")->required();
  eval->add_option("--data", eval_args->data, "dataset folder (default: the one the model trained on)");
  eval->add_option("--batch", eval_args->batch, "images per batch")->check(CLI::PositiveNumber);
  eval->add_option("--threads", eval_args->threads, "threads (default: all cores)")->check(CLI::NonNegativeNumber);

  auto* predict = app.add_subcommand("predict", "top-k labels with probabilities for image files");
  predict->add_option("CKPT", predict_args->checkpoint, "checkpoint file or training folder")->required();
  predict->add_option("IMAGE", predict_args->images, "PNG or JPEG images")->required();
  predict->add_option("--top", predict_args->top, "labels to show")->check(CLI::PositiveNumber);

  // A later occurrence of an option wins, so scripts can append overrides.
  for (CLI::Option* option : train->get_options()) option->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  // A resumed run keeps the settings it started with (they are in its checkpoint).
  train->callback([train] {
    if (train->get_option("--resume")->count() == 0) return;
    for (const char* name : {"--data", "--batch", "--lr", "--optimizer", "--momentum", "--nesterov", "--weight-decay",
                             "--schedule", "--warmup", "--validation", "--normalize", "--crop-padding", "--flip",
                             "--pca-lighting", "--seed", "--checkpoint-every", "--limit"}) {
      if (train->get_option(name)->count() > 0) {
        throw CLI::ValidationError(std::string(name) + ": --resume continues with the run's own settings; only "
                                   "--epochs, --threads, --deterministic and --reference may be given");
      }
    }
  });

  return [=]() -> int {
    if (train->parsed()) return run_train(*train_args);
    if (eval->parsed()) return run_eval(*eval_args);
    if (predict->parsed()) return run_predict(*predict_args);
    return -1;
  };
}

}  // namespace convnet
