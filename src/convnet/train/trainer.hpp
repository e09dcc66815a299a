// The training loop of `convnet train`: data, preprocessing, augmentation, SGD/Adam with a
// schedule, per-epoch evaluation and metrics, crash-safe checkpoints and exact resume.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "convnet/compute.hpp"
#include "convnet/data/dataset.hpp"
#include "convnet/data/loader.hpp"
#include "convnet/distributed/communicator.hpp"
#include "convnet/engine/plan.hpp"
#include "convnet/train/data_parallel.hpp"
#include "convnet/train/optimizer.hpp"
#include "convnet/train/schedule.hpp"

namespace convnet {

struct TrainOptions {
  std::string model;                       // zoo name or model file
  std::string data = kDefaultDataPath;     // stored absolute in the checkpoint
  std::string out_dir;
  bool resume = false;                     // continue the run in out_dir
  int64_t epochs = 10;                     // with resume, 0 keeps the run's own
  int64_t batch = 128;
  double lr = 0.01;
  OptimizerOptions optimizer;
  ScheduleOptions schedule;
  double validation = 1.0 / 12;            // held out of the training set: below 1 a fraction, else a count; 0: none
  Normalization::Mode normalization = Normalization::Mode::PerChannel;
  bool divide_by_std = true;
  AugmentOptions augment;
  uint64_t seed = 0;
  int64_t checkpoint_every = 0;            // steps between mid-epoch checkpoints (0: epoch ends only)
  Backend backend = Backend::OneDnn;
  DType precision = DType::F32;            // bf16: mixed precision (f32 master weights, optimiser
                                           // state, loss, batch-norm statistics and checkpoints)
  int64_t limit_train = 0;                 // use only the first N training images (0: all)
  // How this invocation computes, not what the run is (not stored; give them again on resume):
  int64_t groups = 0;                      // > 0: deterministic gradient groups per batch (DataParallel)
  int64_t towers = 0;                      // > 1: the model split into this many towers, one per rank
  bool sync_bn = false;                    // batch norm with the global batch's statistics (layer by layer)
  bool emulate = false;                    // a precision this CPU has no fast instructions for
  Communicator* comm = nullptr;            // the ranks of a distributed run (nullptr: one process);
                                           // rank 0 writes the output folder, every rank reads the data
                                           // and, on resume, the checkpoint (same paths on every host)
  // Not a setting: polled after every step; when it returns true the run checkpoints and stops.
  std::function<bool()> stop_requested;
};

/// What a run is about to do, once every check has passed (the banner): for a resumed run, the
/// settings stored in its checkpoint.
struct RunInfo {
  TrainOptions settings;
  std::string network;
  int64_t train_images = 0, eval_images = 0, test_images = 0;
  std::string eval_set;                    // "val" (the held-out split) or "test" (--validation 0)
  int64_t start_epoch = 0, start_batch = 0, batches_per_epoch = 0;
};

/// What one epoch reports (a row of metrics.csv).
struct EpochMetrics {
  int64_t epoch = 0;
  double train_loss = 0, train_top1 = 0;
  double eval_loss = 0, eval_top1 = 0, eval_top5 = 0;
  double lr = 0;
  double seconds = 0;
};

/// metrics.csv's header line (no newline); its evaluation columns are named for the set they
/// measured, `eval_name` "val" or "test".
[[nodiscard]] std::string metrics_csv_header(const std::string& eval_name);

/// Progress within an epoch, for the CLI's progress bar.
struct Progress {
  int64_t epoch = 0, epochs = 0;
  int64_t batch = 0, batches = 0;
  double loss = 0, top1 = 0;          // running means over the epoch so far
  double images_per_second = 0;
  double seconds_left = 0;            // estimate for this epoch
};

struct TrainResult {
  std::vector<EpochMetrics> epochs;
  bool interrupted = false;           // stop_requested: stopped early (no test evaluation)
  bool checkpointed = false;          // ... after writing a checkpoint at this position
  int64_t stopped_epoch = 0, stopped_batch = 0;
  double test_top1 = 0, test_top5 = 0, test_loss = 0;
  double seconds = 0;
  StepTiming timing;                  // this invocation's steps (rank 0's), for distributed runs
};

/// Runs training as configured. Every check (options, data, checkpoint, output folder) runs before
/// the first step and throws Error (IoError, SpecError, ...) before anything in the output folder
/// is written; a diverging loss (NaN/Inf) throws Error naming the step, and so do parameters that
/// are no longer finite before an evaluation or a checkpoint (and outputs that are not finite in
/// an evaluation), leaving the last good checkpoint and metrics.csv in place. The per-epoch
/// evaluation uses the validation split (the test set only with validation 0); the test set is
/// evaluated once, after the last epoch.
/// `on_ready` runs once setup has succeeded (data read, network built, folder locked).
TrainResult train(const TrainOptions& options, const std::function<void(const RunInfo&)>& on_ready,
                  const std::function<void(const Progress&)>& on_progress,
                  const std::function<void(const EpochMetrics&)>& on_epoch);

}  // namespace convnet
