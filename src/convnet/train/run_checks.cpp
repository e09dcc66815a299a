// The checks a training run passes before its first step, and the output folder's lock.
#include "convnet/train/run_checks.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <sstream>

namespace convnet {
namespace {

std::string number(double v) {
  std::ostringstream out;
  out << v;  // six significant digits: 1e+300, not 300 of them
  return out.str();
}

// One failed check, worded for where the value came from.
class Checker {
 public:
  explicit Checker(std::string checkpoint) : checkpoint_(std::move(checkpoint)) {}
  void require(bool ok, const std::string& option, const std::string& field, const std::string& value,
               const std::string& expected) const {
    if (ok) return;
    if (checkpoint_.empty()) throw SpecError("train: " + option + " " + value + ": " + expected);
    throw IoError(checkpoint_ + ": checkpoint setting '" + field + "' is " + value + ": " + expected);
  }
  void whole(int64_t v, int64_t lo, int64_t hi, const std::string& option, const std::string& field) const {
    require(v >= lo && v <= hi, option, field, std::to_string(v),
            "expected a whole number from " + std::to_string(lo) + " to " + std::to_string(hi));
  }

 private:
  std::string checkpoint_;
};

constexpr int64_t kMaxEpochs = 1'000'000;
constexpr int64_t kMaxBatch = 1 << 20;
constexpr int64_t kMaxCount = int64_t{1} << 40;

}  // namespace

void check_options(const TrainOptions& o, const std::string& checkpoint) {
  const Checker c(checkpoint);
  c.whole(o.epochs, 1, kMaxEpochs, "--epochs", "epochs");
  c.whole(o.batch, 1, kMaxBatch, "--batch", "batch");
  c.require(std::isfinite(o.lr) && o.lr > 0, "--lr", "lr", number(o.lr), "expected a positive finite learning rate");
  const OptimizerOptions& opt = o.optimizer;
  c.require(opt.kind == "sgd" || opt.kind == "adam", "--optimizer", "optimizer", opt.kind, "expected sgd or adam");
  c.require(opt.momentum >= 0 && opt.momentum < 1, "--momentum", "momentum", number(opt.momentum),
            "expected a value in [0, 1) (0.9 is usual; 1 or more never forgets a gradient and diverges)");
  c.require(!opt.nesterov || opt.momentum > 0, "--nesterov", "nesterov", "with momentum 0",
            "Nesterov momentum needs --momentum above 0");
  c.require(opt.weight_decay >= 0 && opt.weight_decay < 1, "--weight-decay", "weight_decay", number(opt.weight_decay),
            "expected a value in [0, 1) (5e-4 is usual)");
  c.require(opt.beta1 >= 0 && opt.beta1 < 1 && opt.beta2 >= 0 && opt.beta2 < 1 && opt.eps > 0 && std::isfinite(opt.eps),
            "--optimizer", "beta1/beta2/eps", number(opt.beta1) + "/" + number(opt.beta2) + "/" + number(opt.eps),
            "expected Adam's betas in [0, 1) and a positive eps");
  const ScheduleOptions& s = o.schedule;
  c.require(s.kind == "constant" || s.kind == "step" || s.kind == "plateau" || s.kind == "cosine", "--schedule",
            "schedule", s.kind, "expected constant, step[:EPOCHS], plateau[:PATIENCE] or cosine");
  c.whole(s.step_epochs, 1, kMaxEpochs, "--schedule step:", "step_epochs");
  c.whole(s.patience, 1, kMaxEpochs, "--schedule plateau:", "patience");
  c.require(s.factor > 0 && s.factor < 1, "--schedule", "factor", number(s.factor), "expected a factor in (0, 1)");
  c.require(s.warmup_epochs >= 0 && (s.warmup_epochs == 0 || s.warmup_epochs < o.epochs), "--warmup", "warmup",
            std::to_string(s.warmup_epochs),
            "expected fewer warm-up epochs than the run's " + std::to_string(o.epochs) + " (0 for none)");
  c.require(o.validation >= 0 && std::isfinite(o.validation) &&
                (o.validation < 1 || (o.validation == std::floor(o.validation) && o.validation <= kMaxCount)),
            "--validation", "validation", number(o.validation),
            "expected a fraction in [0, 1) or a whole number of images");
  c.require(s.kind != "plateau" || o.validation > 0, "--schedule", "schedule", "plateau with --validation 0",
            "plateau lowers the learning rate when validation accuracy stops improving, and --validation 0 leaves "
            "no validation set (it must not be tuned on the test set); keep a validation split or use another schedule");
  c.require(o.normalization == Normalization::Mode::None || o.normalization == Normalization::Mode::MeanImage ||
                o.normalization == Normalization::Mode::PerChannel,
            "--normalize", "normalization", std::to_string(static_cast<int>(o.normalization)),
            "expected none, mean-image or per-channel");
  c.whole(o.augment.crop_padding, 0, kMaxBatch, "--crop-padding", "crop_padding");
  c.require(o.augment.pca_lighting >= 0 && o.augment.pca_lighting <= 1, "--pca-lighting", "pca_lighting",
            number(o.augment.pca_lighting), "expected a standard deviation in [0, 1] (AlexNet used 0.1)");
  c.whole(o.checkpoint_every, 0, kMaxCount, "--checkpoint-every", "checkpoint_every");
  c.whole(o.limit_train, 0, kMaxCount, "--limit", "limit_train");
  const std::string precision = dtype_name(o.precision);
  c.require(o.precision != DType::Int8, "--precision", "precision", precision,
            "expected f32 or bf16 (int8 is post-training: train, then convnet quantize)");
  if (o.precision == DType::F32) return;
  if (o.backend != Backend::OneDnn || o.sync_bn || o.towers > 1) {
    const std::string other = o.backend != Backend::OneDnn ? "--reference (the f32 reference kernels)"
                              : o.sync_bn                  ? "--sync-bn (layer by layer)"
                                                           : "--towers";
    throw SpecError("train: --precision " + precision + " runs through compiled oneDNN training plans, which " + other +
                    " does not use; train in f32 or drop that option");
  }
  if (const std::string why = dtype_unsupported_reason(o.precision); !why.empty() && !o.emulate) {
    throw SpecError("train: --precision " + precision + ": " + why + "; add --emulate to run it anyway");
  }
}

int64_t validation_images(double validation, int64_t train_images) {
  if (validation <= 0) return 0;
  const auto n = validation < 1 ? static_cast<int64_t>(std::llround(validation * static_cast<double>(train_images)))
                                : static_cast<int64_t>(validation);
  const std::string what = "train: --validation " + number(validation) + " of " + std::to_string(train_images) +
                           " training images";
  if (n < 1) throw SpecError(what + " holds out no image; give a larger fraction or count, or 0 for none");
  if (n >= train_images) throw SpecError(what + " leaves no image to train on");
  return n;
}

void check_data(const TrainOptions& o, const DataSplits& data, const Dataset& validation, int64_t classes) {
  const std::string where = "train: " + o.data + ": ";
  if (data.train.size() == 0) throw SpecError(where + "the training set holds no image");
  if (data.test.size() == 0) throw SpecError(where + "the test set holds no image");
  if (o.validation > 0 && validation.size() == 0) throw SpecError(where + "the validation split holds no image");
  if (data.test.image_shape != data.train.image_shape) {
    throw SpecError(where + "test images are " + data.test.image_shape.chw_string() + " but training images are " +
                    data.train.image_shape.chw_string() + "; both sets must share one size");
  }
  if (data.test.class_names.size() != data.train.class_names.size()) {
    throw SpecError(where + "the test set has " + std::to_string(data.test.class_names.size()) +
                    " classes but the training set " + std::to_string(data.train.class_names.size()));
  }
  for (const Dataset* set : {&data.train, &validation, &data.test}) {
    for (size_t i = 0; i < set->labels.size(); ++i) {
      if (set->labels[i] < 0 || set->labels[i] >= classes) {
        throw SpecError(where + set->name + ": image " + std::to_string(i) + " has label " +
                        std::to_string(set->labels[i]) + ", outside the network's " + std::to_string(classes) +
                        " outputs");
      }
    }
  }
  const Shape& shape = data.train.image_shape;
  const int64_t side = std::min(shape.height(), shape.width());
  if (o.augment.crop_padding > side / 2) {
    throw SpecError("train: --crop-padding " + std::to_string(o.augment.crop_padding) + ": at most " +
                    std::to_string(side / 2) + " (half the " + std::to_string(side) +
                    "-pixel side) for these images, or a crop could hold mostly padding");
  }
  if (o.augment.pca_lighting > 0 && shape.channels() != 3) {
    throw SpecError("train: --pca-lighting needs 3-channel images; " + o.data + " has " +
                    std::to_string(shape.channels()));
  }
}

void check_checkpoint_text(const std::string& model_text, const std::string& model_file,
                           const std::vector<std::string>& class_names, const std::string& data) {
  auto utf8 = [](const std::string& text) {
    try {
      (void)nlohmann::json(text).dump();
      return true;
    } catch (const nlohmann::json::exception&) {
      return false;
    }
  };
  const std::string reason = " is not valid UTF-8, which the checkpoint's metadata (JSON) cannot hold";
  if (!utf8(model_text)) throw SpecError("train: the model text of " + model_file + reason);
  if (!utf8(data)) {  // stored (absolute) in the checkpoint, so that eval finds the data again
    const std::string shown = nlohmann::json(data).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    throw SpecError("train: the --data path " + shown + reason + "; rename or link the folder");
  }
  for (size_t c = 0; c < class_names.size(); ++c) {
    if (utf8(class_names[c])) continue;
    const std::string shown = nlohmann::json(class_names[c]).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    throw SpecError("train: " + data + ": the name of class " + std::to_string(c) + " (" + shown + ")" + reason);
  }
}

ResumePoint read_resume_point(const nlohmann::json& meta, const std::string& checkpoint, int64_t epochs,
                              int64_t batches_per_epoch, int64_t batch_size) {
  ResumePoint p;
  p.epoch = checkpoint_field<int64_t>(meta, "epoch", checkpoint);
  p.batch = checkpoint_field<int64_t>(meta, "batch", checkpoint);
  p.step = checkpoint_field<int64_t>(meta, "step", checkpoint);
  p.loss_sum = checkpoint_field<double>(meta, "loss_sum", checkpoint);
  p.correct = checkpoint_field<double>(meta, "correct", checkpoint);
  p.seen = checkpoint_field<double>(meta, "seen", checkpoint);
  p.epoch_seconds = checkpoint_field<double>(meta, "epoch_seconds", checkpoint);
  auto require = [&](bool ok, const std::string& field, const std::string& value, const std::string& expected) {
    if (!ok) throw IoError(checkpoint + ": checkpoint field '" + field + "' is " + value + "; expected " + expected);
  };
  require(p.epoch >= 0 && p.epoch <= epochs, "epoch", std::to_string(p.epoch),
          "0 to " + std::to_string(epochs) + " (the run's epochs)");
  require(p.batch >= 0 && p.batch < batches_per_epoch, "batch", std::to_string(p.batch),
          "0 to " + std::to_string(batches_per_epoch - 1) + " (an epoch has " + std::to_string(batches_per_epoch) +
              " batches; has the data changed?)");
  const int64_t steps = p.epoch * batches_per_epoch + p.batch;
  require(p.step == steps, "step", std::to_string(p.step),
          std::to_string(steps) + " (epoch " + std::to_string(p.epoch) + ", batch " + std::to_string(p.batch) + ")");
  const auto most = static_cast<double>(p.batch * batch_size);
  require(std::isfinite(p.seen) && p.seen >= 0 && p.seen <= most, "seen", number(p.seen),
          "0 to " + number(most) + " images");
  require(std::isfinite(p.correct) && p.correct >= 0 && p.correct <= p.seen, "correct", number(p.correct),
          "0 to " + number(p.seen) + " (the images seen)");
  require(std::isfinite(p.loss_sum) && p.loss_sum >= 0, "loss_sum", number(p.loss_sum), "a finite value >= 0");
  require(std::isfinite(p.epoch_seconds) && p.epoch_seconds >= 0, "epoch_seconds", number(p.epoch_seconds),
          "a finite value >= 0");
  return p;
}

RunLock::RunLock(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw IoError(dir + ": cannot create the output folder: " + ec.message());
  const std::string path = (fs::path(dir) / "train.lock").string();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw IoError(dir + ": the output folder is not writable: " + std::strerror(errno));
  if (::access(dir.c_str(), W_OK) != 0) {
    const std::string reason = std::strerror(errno);
    ::close(fd_);
    throw IoError(dir + ": the output folder is not writable: " + reason);
  }
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    ::close(fd_);
    if (error == EWOULDBLOCK) {
      throw IoError(dir + ": another convnet train is writing to this folder (it holds train.lock); wait for it "
                    "or choose another --out");
    }
    throw IoError(path + ": cannot lock: " + std::strerror(error));
  }
  for (const auto& entry : fs::directory_iterator(dir, ec)) {  // only this run writes here now
    if (entry.path().extension() == ".tmp" && entry.is_regular_file(ec)) fs::remove(entry.path(), ec);
  }
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the lock
}

}  // namespace convnet
