// Training curves: loss, top-1 accuracy (train and the evaluated split) and the learning rate per
// epoch, drawn as three stacked charts; the reader of a run's metrics.csv they come from; and the
// values a chart cannot draw (NaN, infinities), for the command to name.
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
  std::string file;  // the metrics.csv read (empty for rows from elsewhere)
};

/// Reads PATH (a run folder or its metrics.csv). Throws IoError naming the file and line of any
/// missing column, unreadable number or out-of-order epoch.
[[nodiscard]] MetricsTable read_metrics_csv(const std::string& path);

/// Three charts over the epochs: loss, top-1 accuracy (%) and learning rate, each on an axis
/// spanning its finite values; NaN and infinities (a diverged run writes them) are left out, and a
/// chart without a finite value says so in the picture. Throws Error naming the file when there
/// are no rows.
[[nodiscard]] Canvas plot_curves(const MetricsTable& table, const std::string& title);

/// What plot_curves leaves out, one line per column: "train_loss at epochs 2-3, 5" (the columns
/// drawn: the losses, the top-1 accuracies and lr). Empty when every value is finite.
[[nodiscard]] std::vector<std::string> non_finite_values(const MetricsTable& table);

}  // namespace convnet
