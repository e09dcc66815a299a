// Training curves: loss, top-1 accuracy (train and the evaluated split) and the learning rate per
// epoch, drawn as three stacked charts; and the reader of a run's metrics.csv they come from.
#pragma once

#include <string>
#include <vector>

#include "convnet/train/trainer.hpp"
#include "convnet/visualize/canvas.hpp"

namespace convnet {

/// The rows of a metrics.csv written by `convnet train`, and the name of its evaluation columns
/// ("val" or "test").
struct MetricsTable {
  std::vector<EpochMetrics> rows;
  std::string eval_name = "val";
};

/// Reads PATH (a run folder or its metrics.csv). Throws IoError naming the file and line of any
/// missing column, unreadable number or out-of-order epoch.
[[nodiscard]] MetricsTable read_metrics_csv(const std::string& path);

/// Three charts over the epochs: loss, top-1 accuracy (%) and learning rate. Throws Error when
/// there are no rows.
[[nodiscard]] Canvas plot_curves(const MetricsTable& table, const std::string& title);

}  // namespace convnet
