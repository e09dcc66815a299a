// The training-side commands: option parsing, a progress bar on terminals, plain lines otherwise.
#include "train_commands.hpp"

#include <omp.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <numeric>

#include "cli_checks.hpp"
#include "convnet/data/dataset.hpp"
#include "convnet/distributed/communicator.hpp"
#include "convnet/error.hpp"
#include "convnet/train/data_parallel.hpp"
#include "convnet/train/evaluate.hpp"
#include "convnet/train/quantize.hpp"
#include "convnet/train/trained_model.hpp"
#include "convnet/train/trainer.hpp"
#include "model_options.hpp"

namespace convnet {
namespace {

struct TrainArgs {
  std::string program;  // argv[0], for the resume command
  TrainOptions options;
  std::string schedule = "step:10";
  std::string normalization = "per-channel";
  int threads = 0;
  bool deterministic = false;
  int64_t groups = kDefaultGradientGroups;
  int64_t towers = 0;
  bool sync_bn = false;
  double timeout = 60;
  bool reference = false;
  int64_t warmup = 0;
  std::string precision = "f32";
};

struct EvalArgs {
  std::vector<std::string> checkpoints;
  std::string data;
  int64_t batch = 256;
  int threads = 0;
  PrecisionOptions precision;
  ModelArgs model;
  bool agreement = false;  // also run f32 and count the images whose top-1 is the same
};

struct PredictArgs {
  std::string checkpoint;
  std::vector<std::string> images;
  int64_t top = 5;
  PrecisionOptions precision;
  ModelArgs model;
};

// --threads was checked by thread_count(): 0 keeps OpenMP's default (all cores).
void set_threads(int threads) {
  if (threads > 0) omp_set_num_threads(threads);
}

std::string clock_string(double seconds) {
  const auto s = static_cast<long long>(seconds + 0.5);
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%lld:%02lld", s / 60, s % 60);
  return buffer;
}

// SIGINT/SIGTERM ask a training to stop after its current step; the handler is reset on the
// first signal, so a second one stops the process at once.
volatile std::sig_atomic_t g_stop_signal = 0;

extern "C" void on_stop_signal(int signal) { g_stop_signal = signal; }

void install_stop_handlers() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART | SA_RESETHAND;
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
}

// A word for a POSIX shell: as is when it is safe, else single-quoted.
std::string shell_word(const std::string& word) {
  const bool plain = !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || std::strchr("/._-+=:,@%", c) != nullptr;
  });
  if (plain) return word;
  std::string out = "'";
  for (char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string describe_settings(const TrainOptions& o) {
  char text[512];
  std::snprintf(text, sizeof text, "%lld epochs, batch %lld, %s lr %g", static_cast<long long>(o.epochs),
                static_cast<long long>(o.batch), o.optimizer.kind.c_str(), o.lr);
  std::string out = text;
  if (o.optimizer.kind == "sgd") {
    std::snprintf(text, sizeof text, " momentum %g%s", o.optimizer.momentum, o.optimizer.nesterov ? " (Nesterov)" : "");
    out += text;
  }
  std::snprintf(text, sizeof text, ", weight decay %g, %s schedule", o.optimizer.weight_decay, o.schedule.kind.c_str());
  out += text;
  if (o.schedule.kind == "step") out += " every " + std::to_string(o.schedule.step_epochs) + " epochs";
  if (o.schedule.kind == "plateau") out += " (patience " + std::to_string(o.schedule.patience) + ")";
  if (o.schedule.warmup_epochs > 0) out += ", warm-up " + std::to_string(o.schedule.warmup_epochs) + " epochs";
  if (o.augment.crop_padding > 0) out += ", crops padded by " + std::to_string(o.augment.crop_padding);
  if (o.augment.horizontal_flip) out += ", flips";
  if (o.augment.pca_lighting > 0) {
    std::snprintf(text, sizeof text, ", PCA lighting %g", static_cast<double>(o.augment.pca_lighting));
    out += text;
  }
  if (o.precision != DType::F32) out += std::string(", ") + dtype_name(o.precision) + " mixed precision";
  return out + ", seed " + std::to_string(o.seed);
}

// Under mpirun, each rank takes an equal share of this host's cores unless --threads says.
int default_threads(const TrainArgs& a) {
  if (a.deterministic) return 1;
  if (a.threads > 0) return a.threads;
  const char* local_ranks = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  const int ranks = local_ranks != nullptr ? std::atoi(local_ranks) : 1;
  return ranks > 1 ? std::max(1, omp_get_num_procs() / ranks) : 0;
}

int run_train(TrainArgs& a) {
  a.threads = default_threads(a);
  set_threads(a.threads);
  Communicator& comm = world();
  comm.set_timeout(a.timeout);
  a.options.comm = &comm;
  a.options.groups = a.deterministic ? a.groups : 0;
  a.options.towers = a.towers;
  a.options.sync_bn = a.sync_bn;
  a.options.schedule = parse_schedule(a.schedule);
  a.options.schedule.warmup_epochs = a.warmup;
  a.options.normalization = parse_normalization_mode(a.normalization, "--normalize");
  a.options.backend = a.reference ? Backend::Reference : Backend::OneDnn;
  a.options.precision = parse_dtype(a.precision, "--precision");
  install_stop_handlers();
  a.options.stop_requested = [] { return g_stop_signal != 0; };
  const bool terminal = ::isatty(STDOUT_FILENO) != 0 && comm.size() == 1;
  RunInfo run;
  auto ready = [&](const RunInfo& info) {
    run = info;
    const TrainOptions& o = info.settings;
    if (o.resume) {
      std::printf("resuming %s at epoch %lld, batch %lld/%lld, with the run's stored settings:\n  ",
                  info.network.c_str(), static_cast<long long>(info.start_epoch + 1),
                  static_cast<long long>(info.start_batch), static_cast<long long>(info.batches_per_epoch));
    } else {
      std::printf("training %s: ", info.network.c_str());
    }
    if (comm.size() > 1) {
      const std::string how = a.towers > 1 ? std::to_string(a.towers) + " towers, one per rank"
                              : a.deterministic ? "deterministic: " + std::to_string(a.groups) + " gradient groups per batch"
                                                : "gradients all-reduced in buckets during the backward pass";
      std::printf("%d ranks (%s), %d thread(s) each, ", comm.size(), how.c_str(), omp_get_max_threads());
    }
    std::printf("%s\n  data %s: %lld train, %lld %s, %lld test images; output in %s\n", describe_settings(o).c_str(),
                o.data.c_str(), static_cast<long long>(info.train_images), static_cast<long long>(info.eval_images),
                info.eval_set == "val" ? "validation" : "test (no validation split: --validation 0)",
                static_cast<long long>(info.test_images), o.out_dir.c_str());
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
    std::printf("epoch %lld/%lld: train loss %.4f acc %.2f%% | %s loss %.4f top-1 %.2f%% top-5 %.2f%% | lr %g | %.1f s\n",
                static_cast<long long>(m.epoch), static_cast<long long>(run.settings.epochs), m.train_loss,
                100 * m.train_top1, run.eval_set.c_str(), m.eval_loss, 100 * m.eval_top1, 100 * m.eval_top5, m.lr,
                m.seconds);
    std::fflush(stdout);
  };
  const TrainResult result = train(a.options, ready, progress, epoch_done);
  if (comm.rank() != 0) return result.interrupted ? 130 : 0;  // rank 0 reports
  if (result.interrupted) {
    if (terminal) std::printf("\r%s\r", std::string(100, ' ').c_str());
    std::fflush(stdout);
    const char* signal_name = g_stop_signal == SIGTERM ? "SIGTERM" : "SIGINT";
    std::string resume = shell_word(a.program) + " train --resume --out " + shell_word(a.options.out_dir);
    if (a.deterministic && a.groups != kDefaultGradientGroups) resume += " --groups " + std::to_string(a.groups);
    if (a.deterministic) resume += " --deterministic";
    else if (a.threads > 0) resume += " --threads " + std::to_string(a.threads);
    if (a.reference) resume += " --reference";
    if (a.options.emulate) resume += " --emulate";
    std::string message = "convnet: interrupted by " + std::string(signal_name);
    if (result.checkpointed) {
      message += " at epoch " + std::to_string(result.stopped_epoch + 1) + ", batch " +
                 std::to_string(result.stopped_batch) + "; checkpoint saved in " + a.options.out_dir +
                 "; resume with: " + resume;
    } else if (a.options.resume) {
      message += " before the first step; the run's checkpoint is unchanged; resume with: " + resume;
    } else {
      message += " before the first step; no checkpoint was written";
    }
    std::fprintf(stderr, "%s\n", message.c_str());
    return 130;
  }
  std::printf("test accuracy: top-1 %.2f%%, top-5 %.2f%% (loss %.4f) on %lld test images, after %.1f s\n",
              100 * result.test_top1, 100 * result.test_top5, result.test_loss,
              static_cast<long long>(run.test_images), result.seconds);
  if (comm.size() > 1 && result.timing.steps > 0 && a.towers < 2) {
    const StepTiming& t = result.timing;
    std::printf("%d ranks: %lld steps, %.2f MB of gradients summed per step, %.1f%% of step time waiting for the "
                "sum after the backward (rank 0)\n",
                comm.size(), static_cast<long long>(t.steps), static_cast<double>(t.bytes_per_step) / 1e6,
                100 * t.waiting_seconds / std::max(t.seconds, 1e-9));
  }
  return 0;
}

int run_eval(const EvalArgs& a) {
  set_threads(a.threads);
  std::vector<TrainedModel> models;
  std::vector<DType> precisions;
  for (const std::string& path : a.checkpoints) {
    precisions.push_back(a.precision.dtype(default_precision(path)));
    models.push_back(open_model(path, {.precision = precisions.back(), .emulate = a.precision.emulate}, a.model.options));
  }
  if (a.agreement && std::all_of(precisions.begin(), precisions.end(), [](DType d) { return d == DType::F32; })) {
    throw SpecError(
        "eval --agreement compares bf16 or int8 inference with f32, and these models run in f32; add "
        "--precision bf16 or int8");
  }
  const std::string data_path = !a.data.empty() ? a.data : recorded_data_path(models.front());
  const DataSplits data = load_dataset(data_path);
  for (TrainedModel& m : models) complete_model(m, &data.train);  // class names, a computed normalisation
  const auto classes = static_cast<int64_t>(models.front().class_names.size());
  if (static_cast<int64_t>(data.test.class_names.size()) != classes) {
    throw SpecError(data_path + " has " + std::to_string(data.test.class_names.size()) + " classes, the model " +
                    std::to_string(classes));
  }
  if (data.test.size() == 0) throw SpecError("eval: " + data_path + ": the test set holds no image");
  const TrainedModel& first = models.front();
  const Shape& input = first.net->node(first.net->inputs().at(0)).output;
  if (data.test.image_shape != input) {
    throw SpecError("eval: " + data_path + ": test images are " + data.test.image_shape.chw_string() + " but " +
                    a.checkpoints.front() + " takes " + input.chw_string());
  }
  std::vector<float> sum;
  for (size_t i = 0; i < models.size(); ++i) {
    TrainedModel& m = models[i];
    if (static_cast<int64_t>(m.class_names.size()) != classes) {
      throw SpecError(a.checkpoints[i] + ": has " + std::to_string(m.class_names.size()) + " classes, the first checkpoint " +
                      std::to_string(classes) + "; an ensemble needs the same classes");
    }
    const bool compare = a.agreement && precisions[i] != DType::F32;
    const Evaluation e = evaluate(*m.executor, data.test, m.normalization, a.batch, models.size() > 1 || compare);
    std::printf("%s (%s): top-1 %.2f%%, top-5 %.2f%%, loss %.4f on %lld test images\n", a.checkpoints[i].c_str(),
                dtype_name(precisions[i]), 100 * e.top1, 100 * e.top5, e.loss, static_cast<long long>(e.count));
    if (compare) {
      const TrainedModel f32 = open_model(a.checkpoints[i], {}, a.model.options);
      const Evaluation reference = evaluate(*f32.executor, data.test, m.normalization, a.batch, true);
      std::printf("  f32: top-1 %.2f%%; %s and f32 agree on the top-1 class of %.2f%% of the images\n",
                  100 * reference.top1, dtype_name(precisions[i]),
                  100 * top1_agreement(e.probabilities, reference.probabilities, classes));
    }
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
  TrainedModel m = a.model.open(a.checkpoint, {.precision = a.precision.dtype(default_precision(a.checkpoint)),
                                               .emulate = a.precision.emulate});
  const Shape& shape = m.net->node(m.net->inputs().at(0)).output;
  for (const std::string& path : a.images) {
    const Dataset image = read_single_image(path, shape);
    Tensor input({1, shape.channels(), shape.height(), shape.width()});
    normalized_image(image, 0, m.normalization, input.data());
    const Tensor& logits = m.executor->forward(input, false);
    std::vector<float> p(static_cast<size_t>(logits.numel()));
    class_probabilities(logits, p.data(), [&](int64_t) { return path; });
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

std::function<int()> add_train_commands(CLI::App& app, const std::string& program) {
  auto train_args = std::make_shared<TrainArgs>();
  auto eval_args = std::make_shared<EvalArgs>();
  auto predict_args = std::make_shared<PredictArgs>();
  train_args->program = program;
  TrainOptions& t = train_args->options;

  // The training options' ranges are checked by the library (check_options), which also checks
  // the settings stored in a checkpoint, so the command line and a resumed run get the same rules.
  auto* train = app.add_subcommand("train", "train a network on image data (Fashion-MNIST by default)");
  train->add_option("NET", t.model, "a zoo model name or a model file (omit with --resume)");
  train->add_option("--data", t.data, "dataset folder: IDX, CIFAR binary, or images in class folders")
      ->capture_default_str();
  train->add_option("--out", t.out_dir, "folder for checkpoints and metrics.csv (must not hold another run)")->required();
  train->add_flag("--resume", t.resume, "continue the run in --out exactly where it stopped, with its own settings");
  train->add_option("--epochs", t.epochs, "epochs to train (with --resume: the run's own; a cosine schedule's "
                                          "length cannot change)")->capture_default_str();
  train->add_option("--batch", t.batch, "images per batch")->capture_default_str();
  train->add_option("--lr", t.lr, "base learning rate")->capture_default_str();
  train->add_option("--optimizer", t.optimizer.kind, "sgd or adam")->capture_default_str();
  train->add_option("--momentum", t.optimizer.momentum, "SGD momentum, in [0, 1)")->capture_default_str();
  train->add_flag("--nesterov", t.optimizer.nesterov, "Nesterov momentum");
  train->add_option("--weight-decay", t.optimizer.weight_decay, "L2 weight decay, in [0, 1)")->capture_default_str();
  train->add_option("--schedule", train_args->schedule, "constant, step:EPOCHS, plateau[:PATIENCE] or cosine")
      ->capture_default_str();
  train->add_option("--warmup", train_args->warmup, "epochs of linear learning-rate warm-up (fewer than --epochs)")
      ->capture_default_str();
  train->add_option("--validation", t.validation,
                    "held out of the training set for the per-epoch evaluation: a fraction below 1 or a number of "
                    "images (default 1/12: 5,000 of Fashion-MNIST's 60,000); 0: none, the test set is evaluated "
                    "each epoch and --schedule plateau is refused");
  train->add_option("--normalize", train_args->normalization, "none, mean-image or per-channel")->capture_default_str();
  train->add_option("--crop-padding", t.augment.crop_padding, "random crops from images padded by this much "
                                                              "(at most half the image side)");
  train->add_flag("--flip", t.augment.horizontal_flip, "random horizontal flips");
  train->add_option("--pca-lighting", t.augment.pca_lighting, "AlexNet's PCA colour noise std, in [0, 1] (3-channel data)");
  train->add_option("--seed", t.seed, "seed for the split, initialisation, shuffling, augmentation and dropout")
      ->capture_default_str();
  train->add_option("--checkpoint-every", t.checkpoint_every, "also checkpoint every N steps (0: at epoch ends)");
  train->add_option("--threads", train_args->threads, "threads (default: all cores)")->check(thread_count());
  train->add_flag("--deterministic", train_args->deterministic,
                  "one thread per process and each batch's gradient summed from --groups groups in a fixed order: "
                  "bit-identical runs and resumes, and the same bits from 1, 2, 4 ... --groups ranks under mpirun");
  train->add_option("--groups", train_args->groups, "with --deterministic: gradient groups per batch (a power of two)")
      ->check(whole_number(1, 1 << 20))
      ->capture_default_str();
  train->add_option("--towers", train_args->towers,
                    "under mpirun -np N: split the network's channels into N towers, one per rank, exchanging "
                    "activations where a layer reads every channel (AlexNet's two-GPU training: alexnet-2gpu)")
      ->check(whole_number(2, 1024));
  train->add_flag("--sync-bn", train_args->sync_bn,
                  "under mpirun: batch norm normalises with the statistics of the whole global batch (every rank's "
                  "piece), as one process would; trains layer by layer (slower)");
  train->add_option("--timeout", train_args->timeout,
                    "under mpirun: seconds a rank waits for the others before it declares one stopped or hung")
      ->check(CLI::Range(1.0, 86400.0))
      ->capture_default_str();
  train->add_flag("--reference", train_args->reference, "reference kernels instead of oneDNN (slow)");
  train->add_option("--precision", train_args->precision,
                    "f32, or bf16: mixed precision (bf16 activations, weights and activation gradients with f32 "
                    "accumulation; f32 master weights, optimiser state, loss, batch-norm statistics and checkpoints)")
      ->check(CLI::IsMember({"f32", "bf16"}))
      ->capture_default_str();
  train->add_flag("--emulate", t.emulate, "train in a precision this CPU has no fast instructions for (slower than f32)");
  train->add_option("--limit", t.limit_train, "train on the first N images only (quick experiments)");

  auto* eval = app.add_subcommand("eval", "top-1/top-5 and confusion matrix on the test set; several models "
                                          "form an ensemble averaging probabilities");
  eval->add_option("MODEL", eval_args->checkpoints,
                   "training folders, checkpoints, ONNX files, or a Darknet .cfg / model file with --weights")
      ->required();
  eval->add_option("--data", eval_args->data,
                   "dataset folder (default: the one the model trained on, else Fashion-MNIST); for a model file "
                   "that stores no preprocessing its training images give the normalisation, and its classes the "
                   "names");
  eval_args->model.add_weights(eval);
  eval_args->model.add_preprocessing(eval, false);
  eval->add_option("--batch", eval_args->batch, "images per batch")->check(whole_number(1, 1 << 20));
  eval->add_option("--threads", eval_args->threads, "threads (default: all cores)")->check(thread_count());
  eval_args->precision.add_to(eval, "a model made by 'convnet quantize' or its QDQ ONNX export: their default");
  eval->add_flag("--agreement", eval_args->agreement,
                 "with bf16 or int8: also evaluate in f32 and print how often the two agree on the top-1 class");

  auto* predict = app.add_subcommand("predict", "top-k labels with probabilities for image files");
  predict->add_option("MODEL", predict_args->checkpoint,
                      "training folder, checkpoint, ONNX file, or a Darknet .cfg / model file with --weights")
      ->required();
  predict->add_option("IMAGE", predict_args->images, "PNG or JPEG images")->required();
  predict_args->model.add_weights(predict);
  predict_args->model.add_preprocessing(predict, true);
  predict->add_option("--top", predict_args->top, "labels to show")->check(whole_number(1, 1'000'000));
  predict_args->precision.add_to(predict, "a model made by 'convnet quantize' or its QDQ ONNX export: their default");

  // A later occurrence of an option wins, so scripts can append overrides.
  for (CLI::Option* option : train->get_options()) option->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  // A resumed run keeps the settings it started with (they are in its checkpoint).
  train->callback([train, train_args] {
    if (train->get_option("--resume")->count() == 0) return;
    if (train->get_option("--epochs")->count() == 0) train_args->options.epochs = 0;  // the run's own
    for (const char* name : {"--data", "--batch", "--lr", "--optimizer", "--momentum", "--nesterov", "--weight-decay",
                             "--schedule", "--warmup", "--validation", "--normalize", "--crop-padding", "--flip",
                             "--pca-lighting", "--seed", "--checkpoint-every", "--limit", "--precision"}) {
      if (train->get_option(name)->count() > 0) {
        throw CLI::ValidationError(std::string(name) + ": --resume continues with the run's own settings; only "
                                   "--epochs, --threads, --deterministic, --groups, --towers, --sync-bn, --timeout, "
                                   "--reference and --emulate may be given");
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
