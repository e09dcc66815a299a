// Learning-rate schedules: constant, step (divide by 10 every K epochs), reduce-on-plateau (the
// notes' rule: divide by 10 when validation accuracy stops improving), cosine, plus linear warm-up.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace convnet {

struct ScheduleOptions {
  std::string kind = "constant";  // constant | step | plateau | cosine
  int64_t step_epochs = 30;       // step: divide every this many epochs
  double factor = 0.1;            // step and plateau: multiply by this
  int64_t patience = 2;           // plateau: epochs without improvement before a drop
  int64_t warmup_epochs = 0;      // linear ramp from ~0 to the scheduled lr over these epochs
};

/// Parses "constant", "step:30", "plateau", "plateau:3", "cosine"; throws SpecError otherwise.
[[nodiscard]] ScheduleOptions parse_schedule(const std::string& text);

class Schedule {
 public:
  Schedule(ScheduleOptions options, double base_lr, int64_t total_epochs)
      : options_(options), base_lr_(base_lr), total_epochs_(total_epochs), plateau_lr_(base_lr) {}
  /// Learning rate for a step at `progress` epochs into training (fractional within an epoch).
  [[nodiscard]] double lr(double progress) const;
  /// Reports an epoch's validation accuracy (plateau decisions happen here).
  void end_epoch(double validation_accuracy);

  [[nodiscard]] nlohmann::json state() const;
  void load_state(const nlohmann::json& state);

 private:
  ScheduleOptions options_;
  double base_lr_;
  int64_t total_epochs_;
  double plateau_lr_;
  double best_ = -1.0;
  int64_t bad_epochs_ = 0;
};

}  // namespace convnet
