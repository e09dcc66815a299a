// Learning-rate schedules.
#include "convnet/train/schedule.hpp"


#include <cmath>
#include <numbers>

#include "convnet/error.hpp"
#include "convnet/train/run_checks.hpp"

namespace convnet {

ScheduleOptions parse_schedule(const std::string& text) {
  ScheduleOptions o;
  const size_t colon = text.find(':');
  o.kind = text.substr(0, colon);
  const std::string arg = colon == std::string::npos ? "" : text.substr(colon + 1);
  auto number = [&](int64_t fallback) {
    if (arg.empty()) return fallback;
    char* end = nullptr;
    const long long v = std::strtoll(arg.c_str(), &end, 10);
    if (end != arg.c_str() + arg.size() || v < 1) throw SpecError("--schedule " + text + ": expected a positive whole number after ':'");
    return static_cast<int64_t>(v);
  };
  if (o.kind == "step") o.step_epochs = number(30);
  else if (o.kind == "plateau") o.patience = number(2);
  else if ((o.kind == "constant" || o.kind == "cosine") && arg.empty()) {
  } else {
    throw SpecError("--schedule " + text + ": expected constant, step[:EPOCHS], plateau[:PATIENCE] or cosine");
  }
  return o;
}

double Schedule::lr(double progress) const {
  double lr = base_lr_;
  if (options_.kind == "step") {
    lr = base_lr_ * std::pow(options_.factor, std::floor(progress / static_cast<double>(options_.step_epochs)));
  } else if (options_.kind == "plateau") {
    lr = plateau_lr_;
  } else if (options_.kind == "cosine") {
    lr = 0.5 * base_lr_ * (1.0 + std::cos(std::numbers::pi * progress / static_cast<double>(total_epochs_)));
  }
  if (progress < static_cast<double>(options_.warmup_epochs)) {
    lr *= (progress + 1e-3) / static_cast<double>(options_.warmup_epochs);  // linear ramp from ~0
  }
  return lr;
}

void Schedule::end_epoch(double validation_accuracy) {
  if (options_.kind != "plateau") return;
  if (validation_accuracy > best_) {
    best_ = validation_accuracy;
    bad_epochs_ = 0;
  } else if (++bad_epochs_ >= options_.patience) {
    plateau_lr_ *= options_.factor;  // the notes: divide by 10 when validation accuracy plateaus
    bad_epochs_ = 0;
  }
}

nlohmann::json Schedule::state() const {
  return {{"plateau_lr", plateau_lr_}, {"best", best_}, {"bad_epochs", bad_epochs_}};
}

void Schedule::load_state(const nlohmann::json& state) {
  double plateau_lr = 0, best = 0;
  int64_t bad_epochs = 0;
  try {
    plateau_lr = json_value<double>(state.at("plateau_lr"));
    best = json_value<double>(state.at("best"));
    bad_epochs = json_value<int64_t>(state.at("bad_epochs"));
  } catch (const nlohmann::json::exception&) {
    throw IoError("schedule: expected numbers plateau_lr, best and bad_epochs, got " + state.dump());
  }
  if (!(std::isfinite(plateau_lr) && plateau_lr > 0 && plateau_lr <= base_lr_)) {
    throw IoError("schedule: plateau_lr " + std::to_string(plateau_lr) + " is not in (0, the base rate " +
                  std::to_string(base_lr_) + "]");
  }
  if (!(best >= -1 && best <= 1) || bad_epochs < 0 || bad_epochs >= options_.patience) {
    throw IoError("schedule: best " + std::to_string(best) + " / bad_epochs " + std::to_string(bad_epochs) +
                  " are outside [-1, 1] / [0, patience " + std::to_string(options_.patience) + ")");
  }
  plateau_lr_ = plateau_lr;
  best_ = best;
  bad_epochs_ = bad_epochs;
}

}  // namespace convnet
