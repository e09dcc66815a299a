// The HTML report: the volume diagram (SVG), the summary table with formulas on hover, and a run's
// curves (SVG), filters, confusion matrix and examples. Every string from a model or a dataset is
// escaped; the page loads nothing from anywhere.
#include "convnet/visualize/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <sstream>

#include "convnet/analysis/summary.hpp"
#include "convnet/layers/conv2d.hpp"
#include "convnet/layers/local2d.hpp"
#include "convnet/layers/pool2d.hpp"
#include "convnet/layers/tiled_conv2d.hpp"
#include "convnet/text.hpp"

namespace convnet {
namespace {

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// SVG coordinates to a tenth of a pixel by default (a tall DenseNet diagram is 20,000 pixels).
std::string number(double v, const char* format = "%.1f") {
  char text[64];
  std::snprintf(text, sizeof text, format, v);
  return text;
}

bool is_pointwise(const std::string& kind) {
  for (const char* k : {"relu", "leakyrelu", "elu", "sigmoid", "tanh", "batchnorm", "dropout", "droppath", "lrn"}) {
    if (kind == k) return true;
  }
  return false;
}

// A node drawn inside its input's box: a pointwise layer right after the one it reads.
bool folded(const Net& net, size_t i) {
  const Node& n = net.nodes()[i];
  return n.inputs.size() == 1 && static_cast<size_t>(n.inputs[0]) + 1 == i && is_pointwise(n.layer->kind()) &&
         n.output == net.nodes()[i - 1].output;
}

// The sliding window of a windowed layer (conv, pooling, locally connected, tiled), else null.
const Window* window_of(const Layer& layer) {
  if (const auto* l = dynamic_cast<const Conv2d*>(&layer)) return &l->options().window;
  if (const auto* l = dynamic_cast<const MaxPool2d*>(&layer)) return &l->options().window;
  if (const auto* l = dynamic_cast<const AvgPool2d*>(&layer)) return &l->options().window;
  if (const auto* l = dynamic_cast<const LocallyConnected2d*>(&layer)) return &l->options().window;
  if (const auto* l = dynamic_cast<const TiledConv2d*>(&layer)) return &l->options().window;
  return nullptr;
}

// "conv 6 5x5 pad 2 stride 1": the model-language line, with the stride even where it is the default.
std::string layer_label(const Node& n) {
  std::string args = n.layer->args();
  const Window* w = window_of(*n.layer);
  if (w != nullptr && args.find("stride") == std::string::npos) {
    args += " stride " + (w->stride.h == w->stride.w ? std::to_string(w->stride.h)
                                                     : std::to_string(w->stride.h) + "x" + std::to_string(w->stride.w));
  }
  return n.layer->kind() + (args.empty() ? "" : " " + args);
}

double scaled(int64_t v, double per_octave) {
  return per_octave * std::log2(static_cast<double>(std::max<int64_t>(v, 1)) + 1);
}

// Each volume as a box like the lecture figures: depth (channels) across, height down, width
// receding; log scales so that 3 and 2048 channels both fit. A chain goes down one column; a layer
// that reads a box further up starts a branch in the next free column to the right (inception
// branches side by side, a residual block's projection beside it), and a layer reading several
// boxes (add, concat) sits under the lowest of them in the leftmost one's column. An identity
// shortcut within a column is an arc on the left.
std::string diagram_svg(const Net& net) {
  struct Box {
    size_t node = 0;
    std::string incoming;      // the layer (and folded layers) producing this volume
    std::vector<size_t> from;  // boxes it reads, first input first
    int64_t col = 0, row = 0;
    double x = 0, y = 0, w = 0, h = 0, o = 0;
  };
  std::vector<Box> boxes;
  std::vector<size_t> box_of(net.nodes().size());
  for (size_t i = 0; i < net.nodes().size(); ++i) {
    const Node& n = net.nodes()[i];
    if (i > 0 && folded(net, i)) {
      box_of[i] = box_of[i - 1];
      boxes[box_of[i]].incoming += " + " + layer_label(n);
      continue;
    }
    box_of[i] = boxes.size();
    Box b;
    b.node = i;
    b.incoming = n.inputs.empty() ? "" : layer_label(n);
    for (int j : n.inputs) {
      const size_t p = box_of[static_cast<size_t>(j)];
      if (std::find(b.from.begin(), b.from.end(), p) == b.from.end()) b.from.push_back(p);
    }
    boxes.push_back(std::move(b));
  }
  // Grid places: columns and rows, a place taken once.
  std::set<std::pair<int64_t, int64_t>> taken;
  int64_t columns = 1, rows = 1;
  for (size_t k = 0; k < boxes.size(); ++k) {
    Box& b = boxes[k];
    if (b.from.size() == 1 && b.from[0] + 1 == k) {  // the chain continues
      b.col = boxes[k - 1].col;
      b.row = boxes[k - 1].row + 1;
    } else if (b.from.size() == 1) {  // a branch from further up: the next column right of those used since
      const size_t p = b.from[0];
      int64_t used = boxes[p].col;
      for (size_t q = p + 1; q < k; ++q) used = std::max(used, boxes[q].col);
      b.col = used + 1;
      b.row = boxes[p].row + 1;
    } else if (!b.from.empty()) {  // a merge
      b.col = boxes[b.from[0]].col;
      for (size_t p : b.from) {
        b.col = std::min(b.col, boxes[p].col);
        b.row = std::max(b.row, boxes[p].row + 1);
      }
    }
    while (taken.count({b.col, b.row}) > 0) ++b.row;
    taken.insert({b.col, b.row});
    columns = std::max(columns, b.col + 1);
    rows = std::max(rows, b.row + 1);
  }
  constexpr double kLeft = 150, kArrow = 46;
  double widest = 0, label = 0;
  std::vector<double> row_height(static_cast<size_t>(rows), 0);
  for (Box& b : boxes) {
    const Shape& s = net.nodes()[b.node].output;
    const bool volume = s.dims().size() == 3;
    b.w = volume ? 6 + scaled(s.channels(), 7) : 10;
    b.h = std::min(180.0, 6 + scaled(volume ? s.height() : s.numel(), volume ? 9 : 6));
    b.o = volume ? 3 + scaled(s.width(), 2.5) : 4;
    widest = std::max(widest, b.w + b.o);
    label = std::max(label, 6.2 * static_cast<double>(b.incoming.size()));
    row_height[static_cast<size_t>(b.row)] = std::max(row_height[static_cast<size_t>(b.row)], b.h + b.o);
  }
  const double column = widest + std::clamp(label, 200.0, 460.0) + 40;
  std::vector<double> row_top(static_cast<size_t>(rows) + 1, 20);
  for (size_t r = 0; r < row_height.size(); ++r) row_top[r + 1] = row_top[r] + row_height[r] + kArrow;
  for (Box& b : boxes) {
    b.x = kLeft + static_cast<double>(b.col) * column + (widest - b.w - b.o) / 2;  // centred in its column
    b.y = row_top[static_cast<size_t>(b.row)] + b.o;
  }
  const double width = kLeft + static_cast<double>(columns) * column, height = row_top.back();
  std::ostringstream svg;
  svg << "<svg width=\"" << number(width, "%.0f") << "\" height=\"" << number(height, "%.0f") << "\" viewBox=\"0 0 "
      << number(width, "%.0f") << " " << number(height, "%.0f") << "\">\n"
      << "<defs><marker id=\"head\" markerWidth=\"8\" markerHeight=\"8\" refX=\"6\" refY=\"3\" orient=\"auto\">"
         "<path d=\"M0,0 L6,3 L0,6 z\" fill=\"#555\"/></marker></defs>\n";
  for (size_t k = 0; k < boxes.size(); ++k) {
    const Box& b = boxes[k];
    const Node& n = net.nodes()[b.node];
    const double top = b.y - b.o - 4;  // where arrows end, above the box's top face
    for (size_t p : b.from) {
      const Box& a = boxes[p];
      const double ax = a.x + a.w / 2, bottom = a.y + a.h + 2, bx = b.x + b.w / 2;
      bool clear = a.col == b.col;  // nothing in the column between the two: a straight arrow
      for (int64_t r = a.row + 1; clear && r < b.row; ++r) clear = taken.count({a.col, r}) == 0;
      if (clear) {
        svg << "<line class=\"flow\" x1=\"" << number(ax) << "\" y1=\"" << number(bottom) << "\" x2=\"" << number(bx)
            << "\" y2=\"" << number(top) << "\" marker-end=\"url(#head)\"/>\n";
      } else if (a.col == b.col) {  // an identity shortcut past boxes of the column
        const double sy = a.y + a.h / 2, dy = b.y + b.h / 2;
        const double bend = std::min(kLeft - 10, 20 + 6 * std::sqrt(static_cast<double>(b.row - a.row)));
        svg << "<path class=\"skip\" d=\"M" << number(a.x) << "," << number(sy) << " C" << number(a.x - bend) << ","
            << number(sy) << " " << number(b.x - bend) << "," << number(dy) << " " << number(b.x - 4) << ","
            << number(dy) << "\" marker-end=\"url(#head)\"/>\n";
      } else {  // into or out of a branch: down, across in the gap between rows, down
        const double across = b.col > a.col ? bottom + 12 : top - 12;
        svg << "<path class=\"branch\" d=\"M" << number(ax) << "," << number(bottom) << " V" << number(across) << " H"
            << number(bx) << " V" << number(top) << "\" marker-end=\"url(#head)\"/>\n";
      }
    }
    if (!b.from.empty()) {
      svg << "<text class=\"op\" x=\"" << number(b.x + b.w / 2 + 12) << "\" y=\"" << number(top - kArrow / 2 + 14)
          << "\">" << escape(b.incoming) << "</text>\n";
    }
    svg << "<g class=\"node\" data-node=\"" << escape(n.name) << "\"><title>" << escape(n.name) << ": "
        << escape(n.output.volume_string()) << "</title>";
    // Front face, top face, side face.
    svg << "<rect class=\"front\" x=\"" << number(b.x) << "\" y=\"" << number(b.y) << "\" width=\"" << number(b.w)
        << "\" height=\"" << number(b.h) << "\"/>";
    svg << "<path class=\"top\" d=\"M" << number(b.x) << "," << number(b.y) << " l" << number(b.o) << ","
        << number(-b.o) << " h" << number(b.w) << " l" << number(-b.o) << "," << number(b.o) << " z\"/>";
    svg << "<path class=\"side\" d=\"M" << number(b.x + b.w) << "," << number(b.y) << " l" << number(b.o) << ","
        << number(-b.o) << " v" << number(b.h) << " l" << number(-b.o) << "," << number(b.o) << " z\"/>";
    const double tx = b.x + b.w + b.o + 10;
    svg << "<text class=\"name\" x=\"" << number(tx) << "\" y=\"" << number(b.y + 10) << "\">" << escape(n.name)
        << "</text><text class=\"volume\" x=\"" << number(tx) << "\" y=\"" << number(b.y + 24) << "\">"
        << escape(n.output.volume_string()) << "</text></g>\n";
  }
  svg << "</svg>";
  return svg.str();
}

std::string layer_table(const Net& net, const Summary& s) {
  std::ostringstream t;
  t << "<table id=\"layers\"><thead><tr><th>layer</th><th>kind</th><th>arguments</th><th>output</th>"
       "<th>params</th><th>activations</th><th>MACs</th><th>receptive field</th></tr></thead><tbody>\n";
  for (const LayerRow& r : s.rows) {
    t << "<tr id=\"row-" << escape(r.name) << "\" title=\"" << escape(explain_layer(net, r.name)) << "\"><td>"
      << escape(r.name) << "</td><td>" << escape(r.kind) << "</td><td>" << escape(r.args) << "</td><td>"
      << escape(r.output.volume_string()) << "</td><td class=\"n\">" << with_commas(r.parameters())
      << "</td><td class=\"n\">" << with_commas(r.activations) << "</td><td class=\"n\">" << with_commas(r.macs)
      << "</td><td>" << escape(receptive_field_string(r.receptive_field)) << "</td></tr>\n";
  }
  t << "</tbody><tfoot><tr><td>total</td><td></td><td></td><td></td><td class=\"n\">" << with_commas(s.parameters)
    << "</td><td class=\"n\">" << with_commas(s.activations) << "</td><td class=\"n\">" << with_commas(s.macs)
    << "</td><td></td></tr></tfoot></table>\n";
  return t.str();
}

// One small line chart per quantity, epochs along x.
std::string curves_svg(const MetricsTable& m) {
  struct Chart {
    const char* title;
    std::vector<std::pair<std::string, std::vector<double>>> series;
  };
  auto column = [&](auto get) {
    std::vector<double> v;
    for (const EpochMetrics& e : m.rows) v.push_back(get(e));
    return v;
  };
  const std::vector<Chart> charts{{"loss",
                                   {{"train", column([](const EpochMetrics& e) { return e.train_loss; })},
                                    {m.eval_name, column([](const EpochMetrics& e) { return e.eval_loss; })}}},
                                  {"top-1 accuracy (%)",
                                   {{"train", column([](const EpochMetrics& e) { return 100 * e.train_top1; })},
                                    {m.eval_name, column([](const EpochMetrics& e) { return 100 * e.eval_top1; })}}},
                                  {"learning rate", {{"lr", column([](const EpochMetrics& e) { return e.lr; })}}}};
  constexpr double kW = 300, kH = 170, kPad = 34;
  std::ostringstream svg;
  svg << "<svg width=\"" << 3 * kW + 40 << "\" height=\"" << kH + 30 << "\">\n";
  const char* colours[] = {"#1f77b4", "#d62728"};
  for (size_t c = 0; c < charts.size(); ++c) {
    const double x0 = static_cast<double>(c) * (kW + 20) + kPad, y0 = 20, w = kW - kPad - 6, h = kH - 30;
    double lo = INFINITY, hi = -INFINITY;  // over the finite values: a diverged epoch is left out
    for (const auto& [name, v] : charts[c].series) {
      for (double x : v) {
        if (!std::isfinite(x)) continue;
        lo = std::min(lo, x);
        hi = std::max(hi, x);
      }
    }
    if (lo > hi) lo = hi = 0;
    if (hi <= lo) hi = lo + 1;
    svg << "<text class=\"chart\" x=\"" << x0 << "\" y=\"12\">" << charts[c].title << "</text>"
        << "<rect class=\"frame\" x=\"" << x0 << "\" y=\"" << y0 << "\" width=\"" << w << "\" height=\"" << h << "\"/>"
        << "<text class=\"tick\" x=\"" << x0 - 3 << "\" y=\"" << y0 + 8 << "\" text-anchor=\"end\">"
        << number(hi, "%.4g") << "</text><text class=\"tick\" x=\"" << x0 - 3 << "\" y=\"" << y0 + h
        << "\" text-anchor=\"end\">" << number(lo, "%.4g") << "</text><text class=\"tick\" x=\"" << x0 + w << "\" y=\""
        << y0 + h + 14 << "\" text-anchor=\"end\">epoch " << m.rows.size() << "</text>\n";
    for (size_t s = 0; s < charts[c].series.size(); ++s) {
      const auto& [name, v] = charts[c].series[s];
      svg << "<polyline class=\"curve\" stroke=\"" << colours[s] << "\" points=\"";
      for (size_t i = 0; i < v.size(); ++i) {
        if (!std::isfinite(v[i])) continue;
        const double x = x0 + (v.size() == 1 ? w / 2 : w * static_cast<double>(i) / static_cast<double>(v.size() - 1));
        svg << number(x) << "," << number(y0 + h - (v[i] - lo) / (hi - lo) * h) << " ";
      }
      svg << "\"/><text class=\"tick\" fill=\"" << colours[s] << "\" x=\"" << x0 + w - 4 << "\" y=\""
          << y0 + 14 + 12 * static_cast<double>(s) << "\" text-anchor=\"end\">" << escape(name) << "</text>\n";
    }
  }
  svg << "</svg>";
  return svg.str();
}

std::string png_image(const Canvas& c, const std::string& alt) {
  return "<img alt=\"" + escape(alt) + "\" width=\"" + std::to_string(c.width()) + "\" height=\"" +
         std::to_string(c.height()) + "\" src=\"data:image/png;base64," + base64(c.encode_png()) + "\">";
}

std::string confusion_table(const Evaluation& e, const std::vector<std::string>& names) {
  const auto k = static_cast<size_t>(std::sqrt(static_cast<double>(e.confusion.size())));
  if (k * k != e.confusion.size() || k == 0) return "";
  std::ostringstream t;
  t << "<table class=\"confusion\"><thead><tr><th>true \\ predicted</th>";
  auto name = [&](size_t i) { return i < names.size() ? names[i] : std::to_string(i); };
  for (size_t j = 0; j < k; ++j) t << "<th>" << escape(name(j)) << "</th>";
  t << "</tr></thead><tbody>\n";
  for (size_t i = 0; i < k; ++i) {
    int64_t total = 0;
    for (size_t j = 0; j < k; ++j) total += e.confusion[i * k + j];
    t << "<tr><th>" << escape(name(i)) << "</th>";
    for (size_t j = 0; j < k; ++j) {
      const int64_t v = e.confusion[i * k + j];
      const double share = total > 0 ? static_cast<double>(v) / static_cast<double>(total) : 0;
      t << "<td class=\"n\" style=\"background:rgba(31,119,180," << number(share, "%.3f") << ")\">" << v << "</td>";
    }
    t << "</tr>\n";
  }
  t << "</tbody></table>\n";
  return t.str();
}

constexpr const char* kStyle = R"(
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
h1 { margin-bottom: 0; } .totals { color: #555; }
.pair { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; } .pair > section { flex: none; }
p { max-width: 60em; } .pair p { max-width: 36em; }
#diagram { border: 1px solid #ddd; padding: 8px; }
.front { fill: #9ecae1; stroke: #3182bd; } .top { fill: #c6dbef; stroke: #3182bd; } .side { fill: #6baed6; stroke: #3182bd; }
g.node { cursor: pointer; } g.node.hot .front, g.node:hover .front { fill: #fdae6b; }
.flow { stroke: #555; stroke-width: 1.5; } .skip, .branch { fill: none; stroke: #888; stroke-width: 1.5; }
text { font: 12px system-ui, sans-serif; } .op { fill: #555; } .name { font-weight: 600; } .volume { fill: #3182bd; }
table { border-collapse: collapse; margin: 8px 0; } td, th { border: 1px solid #ddd; padding: 2px 8px; }
td.n { text-align: right; font-variant-numeric: tabular-nums; } tr.hot { background: #fdd0a2; }
.frame { fill: none; stroke: #bbb; } .curve { fill: none; stroke-width: 2; } .tick, .chart { font-size: 11px; }
figure { display: inline-block; margin: 4px 8px; text-align: center; } .wrong { color: #d62728; } .right { color: #2ca02c; }
)";

// Hovering a box highlights its table row and the other way round; clicking a box scrolls to its
// row. On load it records what rendered (sizes and counts) in #check, for scripts/check-report.
constexpr const char* kScript = R"(
document.addEventListener('DOMContentLoaded', function () {
  var boxes = document.querySelectorAll('#diagram g.node');
  boxes.forEach(function (g) {
    var row = document.getElementById('row-' + g.dataset.node);
    if (!row) return;
    var on = function () { g.classList.add('hot'); row.classList.add('hot'); };
    var off = function () { g.classList.remove('hot'); row.classList.remove('hot'); };
    g.addEventListener('mouseenter', on); g.addEventListener('mouseleave', off);
    row.addEventListener('mouseenter', on); row.addEventListener('mouseleave', off);
    g.addEventListener('click', function () { row.scrollIntoView({block: 'center'}); });
  });
  var svg = document.querySelector('#diagram svg').getBoundingClientRect();
  var table = document.getElementById('layers').getBoundingClientRect();
  document.getElementById('check').textContent = 'rendered: diagram ' + Math.round(svg.width) + 'x' +
      Math.round(svg.height) + ' boxes ' + boxes.length + ' table ' + Math.round(table.width) + 'x' +
      Math.round(table.height) + ' rows ' + document.querySelectorAll('#layers tbody tr').length +
      ' sections ' + document.querySelectorAll('h2').length;
});
)";

}  // namespace

std::string base64(const std::vector<uint8_t>& bytes) {
  static constexpr char kDigits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const uint32_t a = bytes[i];
    const uint32_t b = i + 1 < bytes.size() ? bytes[i + 1] : 0;
    const uint32_t c = i + 2 < bytes.size() ? bytes[i + 2] : 0;
    const uint32_t v = a << 16 | b << 8 | c;  // 24 bits: four 6-bit digits
    out += kDigits[v >> 18 & 63];
    out += kDigits[v >> 12 & 63];
    out += i + 1 < bytes.size() ? kDigits[v >> 6 & 63] : '=';
    out += i + 2 < bytes.size() ? kDigits[v & 63] : '=';
  }
  return out;
}

std::string report_html(const Net& net, const ReportRun* run, int64_t batch) {
  const Summary s = summarize(net, batch);
  std::ostringstream h;
  const std::string title = run != nullptr ? run->name + " (" + net.name() + ")" : net.name();
  h << "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>convnet report: " << escape(title)
    << "</title><style>" << kStyle << "</style></head><body>\n<h1>" << escape(title) << "</h1>\n<p class=\"totals\">"
    << with_commas(s.parameters) << " parameters (" << with_commas(s.parameters_without_biases) << " without biases) · "
    << compact(static_cast<double>(s.macs)) << " multiply-adds per image · "
    << compact(static_cast<double>(s.forward_bytes()), true) << " of activations for a forward pass, "
    << compact(static_cast<double>(s.forward_backward_bytes()), true) << " with the backward (batch " << batch << ")";
  if (run != nullptr && run->evaluation.count > 0) {
    h << " · test top-1 " << number(100 * run->evaluation.top1, "%.2f") << "% on " << with_commas(run->evaluation.count)
      << " images";
  }
  h << "</p>\n<div class=\"pair\"><section><h2>Architecture</h2>\n<p>Each box is a layer's output volume: "
       "channels across, height down, width receding (log scales). Arrows carry the layer that makes the next "
       "volume (pointwise layers after it joined with +). Branches (inception, a residual block's projection) "
       "run side by side; an identity shortcut or dense connection is an arc on the left. Hover a box or a row "
       "to find its partner; click a box to go to its row.</p>\n<div id=\"diagram\">"
    << diagram_svg(net) << "</div></section>\n<section><h2>Layers</h2>\n<p>Hover a row for the formulas behind "
    << "its numbers (<code>convnet explain</code>). MACs count multiplications by weights; the receptive field "
       "is one output value's window on the input and its step.</p>\n"
    << layer_table(net, s) << "</section></div>\n";
  if (run != nullptr) {
    if (!run->metrics.rows.empty()) h << "<h2>Training</h2>\n" << curves_svg(run->metrics) << "\n";
    if (!run->filters.empty()) {
      h << "<h2>First-layer filters</h2>\n";
      for (const Canvas& f : run->filters) h << png_image(f, "first-layer filters") << "\n";
    }
    if (!run->evaluation.confusion.empty()) {
      h << "<h2>Confusion matrix (test set)</h2>\n" << confusion_table(run->evaluation, run->class_names);
    }
    if (!run->examples.empty()) {
      h << "<h2>Example predictions</h2>\n<div>";
      for (const ReportExample& e : run->examples) {
        h << "<figure>" << png_image(e.picture, e.truth) << "<figcaption class=\""
          << (e.truth == e.predicted ? "right" : "wrong") << "\">" << escape(e.predicted) << " "
          << number(100 * e.probability, "%.0f") << "%<br>true: " << escape(e.truth) << "</figcaption></figure>";
      }
      h << "</div>\n";
    }
  }
  h << "<pre id=\"check\" hidden></pre>\n<script>" << kScript << "</script>\n</body></html>\n";
  return h.str();
}

}  // namespace convnet
