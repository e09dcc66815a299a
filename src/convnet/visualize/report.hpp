// `convnet report`: one self-contained HTML page about a network — its architecture drawn as
// volumes like the lecture figures, the summary table with each layer's formulas on hover, and
// receptive fields — and, for a trained run, its curves, first-layer filters, confusion matrix and
// example predictions. No network resources: SVG, CSS and a little JavaScript inline, pictures
// as PNG data URIs.
#pragma once

#include <string>
#include <vector>

#include "convnet/net.hpp"
#include "convnet/train/evaluate.hpp"
#include "convnet/visualize/canvas.hpp"
#include "convnet/visualize/plot.hpp"

namespace convnet {

struct ReportExample {
  Canvas picture;  // the image as given to the network
  std::string truth, predicted;
  float probability = 0;  // of the predicted class
};

/// What a trained run adds to the page (all optional: empty parts are left out).
struct ReportRun {
  std::string name;
  MetricsTable metrics;
  std::vector<Canvas> filters;  // the first convolution's filters (draw_filters)
  Evaluation evaluation;        // on the test set: accuracy and confusion matrix
  std::vector<std::string> class_names;
  std::vector<ReportExample> examples;
};

/// The page for `net` (with `run` when not null). `batch` sizes the memory figures.
[[nodiscard]] std::string report_html(const Net& net, const ReportRun* run, int64_t batch = 1);

/// RFC 4648 base64 of `bytes` (for data: URIs).
[[nodiscard]] std::string base64(const std::vector<uint8_t>& bytes);

}  // namespace convnet
