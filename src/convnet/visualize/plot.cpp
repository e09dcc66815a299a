// metrics.csv reading, the three training-curve charts, and the values they cannot draw.
#include "convnet/visualize/plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <sstream>

#include "convnet/error.hpp"
#include "convnet/io/input_file.hpp"

namespace convnet {
namespace {

constexpr Rgb kInk{20, 20, 20};
constexpr Rgb kAxis{120, 120, 120};
constexpr Rgb kGrid{225, 225, 225};
constexpr Rgb kTrain{31, 119, 180};  // blue
constexpr Rgb kEval{214, 39, 40};    // red
constexpr int64_t kScale = 2;        // text scale

std::vector<std::string> split_commas(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream s(line);
  std::string field;
  while (std::getline(s, field, ',')) out.push_back(field);
  if (!line.empty() && line.back() == ',') out.emplace_back();
  return out;
}

// A number, or NaN / infinity as a diverged run writes them ("nan", "-nan", "inf").
double parse_number(const std::string& field, const std::string& where) {
  if (field.empty()) throw IoError(where + ": empty field");
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(field, &used);
  } catch (const std::out_of_range&) {
    return field[0] == '-' ? -INFINITY : INFINITY;
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != field.size()) throw IoError(where + ": '" + field + "' is not a number");
  return v;
}

std::string tick_label(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3g", v);
  return text;
}

struct Series {
  std::string name;
  Rgb color;
  std::vector<double> values;
};

// Positions on an axis from lo to hi without overflow, though hi - lo may exceed double's range
// (a loss of 1e308 beside a negative value): through halves.
double fraction_of(double v, double lo, double hi) { return (v / 2 - lo / 2) / (hi / 2 - lo / 2); }
double point_at(double lo, double hi, double t) { return lo * (1 - t) + hi * t; }
double finite_or_max(double v) {
  return std::clamp(v, -std::numeric_limits<double>::max(), std::numeric_limits<double>::max());
}

// One chart: a frame at (x, y) of w x h, a y range from the finite values (NaN and infinities are
// left out: a diverged epoch leaves a gap), epochs 1..n along x; without a finite value, the frame
// says so instead of inventing an axis.
void draw_chart(Canvas& c, int64_t x, int64_t y, int64_t w, int64_t h, const std::string& title,
                const std::vector<Series>& series, int64_t epochs) {
  double lo = INFINITY, hi = -INFINITY;
  for (const Series& s : series) {
    for (double v : s.values) {
      if (!std::isfinite(v)) continue;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  }
  const bool drawable = lo <= hi;
  if (!drawable) lo = 0, hi = 1;
  if (hi / 2 - lo / 2 < 0.5e-12 * std::max(1.0, std::abs(hi))) {  // flat: a band around the value
    const double pad = std::max(std::abs(hi) * 0.1, 1e-6);
    lo = finite_or_max(lo - pad);
    hi = finite_or_max(hi + pad);
  }
  const double margin = (hi / 2 - lo / 2) * 0.1;                           // 5% of the span
  lo = lo >= 0 ? std::max(0.0, lo - margin) : finite_or_max(lo - margin);  // no negative axis for values that cannot be
  hi = finite_or_max(hi + margin);
  const int64_t label_w = 7 * 4 * kScale + 8;  // room for "-0.0123" on the left
  const int64_t fx = x + label_w, fy = y + 5 * kScale + 8, fw = w - label_w - 8,
                fh = h - (5 * kScale + 8) - 5 * kScale - 10;
  c.draw_text(fx, y, title, kInk, kScale);
  auto px = [&](double epoch) {
    return fx + (epochs == 1 ? fw / 2
                             : static_cast<int64_t>(std::lround((epoch - 1) * static_cast<double>(fw) /
                                                                static_cast<double>(epochs - 1))));
  };
  auto py = [&](double v) {
    return fy + fh - static_cast<int64_t>(std::lround(fraction_of(v, lo, hi) * static_cast<double>(fh)));
  };
  for (int k = 0; drawable && k <= 4; ++k) {  // horizontal grid lines with their values
    const double v = point_at(lo, hi, k / 4.0);
    c.draw_line(fx, py(v), fx + fw, py(v), kGrid);
    const std::string t = tick_label(v);
    c.draw_text(fx - 6 - Canvas::text_width(t, kScale), py(v) - 5 * kScale / 2, t, kInk, kScale);
  }
  if (!drawable) {
    const std::string note = "no finite value to draw (NaN or infinite)";
    c.draw_text(fx + (fw - Canvas::text_width(note, kScale)) / 2, fy + fh / 2 - 5 * kScale / 2, note, kInk, kScale);
  }
  const int64_t step = std::max<int64_t>(1, (epochs + 9) / 10);
  for (int64_t e = 1; e <= epochs; e += step) {
    const std::string t = std::to_string(e);
    c.draw_line(px(static_cast<double>(e)), fy + fh, px(static_cast<double>(e)), fy + fh + 4, kAxis);
    c.draw_text(px(static_cast<double>(e)) - Canvas::text_width(t, kScale) / 2, fy + fh + 6, t, kInk, kScale);
  }
  c.draw_line(fx, fy, fx, fy + fh, kAxis);
  c.draw_line(fx, fy + fh, fx + fw, fy + fh, kAxis);
  int64_t legend_x = fx + fw;
  for (auto it = series.rbegin(); it != series.rend(); ++it) {
    legend_x -= Canvas::text_width(it->name, kScale) + 24;
    c.fill_rect(legend_x, y + 3, 14, 4, it->color);
    c.draw_text(legend_x + 18, y, it->name, kInk, kScale);
  }
  for (const Series& s : series) {
    for (size_t i = 0; i < s.values.size(); ++i) {
      if (!std::isfinite(s.values[i])) continue;
      const int64_t ex = px(static_cast<double>(i + 1)), ey = py(s.values[i]);
      c.fill_rect(ex - 2, ey - 2, 5, 5, s.color);
      if (i > 0 && std::isfinite(s.values[i - 1])) {
        const int64_t sx = px(static_cast<double>(i)), sy = py(s.values[i - 1]);
        c.draw_line(sx, sy, ex, ey, s.color);
        c.draw_line(sx, sy + 1, ex, ey + 1, s.color);
      }
    }
  }
}

}  // namespace

MetricsTable read_metrics_csv(const std::string& path) {
  const std::string file =
      std::filesystem::is_directory(path) ? (std::filesystem::path(path) / "metrics.csv").string() : path;
  const std::vector<uint8_t> bytes = InputFile(file).read_all(64 << 20, "metrics file");
  std::stringstream text(std::string(bytes.begin(), bytes.end()));
  std::string line;
  if (!std::getline(text, line)) throw IoError(file + ": empty (expected the header written by convnet train)");
  MetricsTable t;
  t.file = file;
  if (line == metrics_csv_header("test")) t.eval_name = "test";
  if (line != metrics_csv_header(t.eval_name)) {
    throw IoError(file +
                  ":1: not a convnet metrics file (expected the header "
                  "epoch,train_loss,train_top1,"
                  "val_loss,val_top1,val_top5,lr,seconds or with test_ columns)");
  }
  int64_t number = 1;
  while (std::getline(text, line)) {
    ++number;
    if (line.empty()) continue;
    const std::string where = file + ":" + std::to_string(number);
    const std::vector<std::string> f = split_commas(line);
    if (f.size() != 8) throw IoError(where + ": " + std::to_string(f.size()) + " fields, expected 8");
    std::vector<double> v;
    for (const std::string& field : f) v.push_back(parse_number(field, where));
    const int64_t epoch = static_cast<int64_t>(t.rows.size()) + 1;
    if (v[0] != static_cast<double>(epoch))
      throw IoError(where + ": epoch " + f[0] + ", expected " + std::to_string(epoch));
    t.rows.push_back({epoch, v[1], v[2], v[3], v[4], v[5], v[6], v[7]});
  }
  return t;
}

std::vector<std::string> non_finite_values(const MetricsTable& table) {
  const std::string& e = table.eval_name;
  const std::vector<std::pair<std::string, double EpochMetrics::*>> columns{{"train_loss", &EpochMetrics::train_loss},
                                                                            {e + "_loss", &EpochMetrics::eval_loss},
                                                                            {"train_top1", &EpochMetrics::train_top1},
                                                                            {e + "_top1", &EpochMetrics::eval_top1},
                                                                            {"lr", &EpochMetrics::lr}};
  std::vector<std::string> notes;
  for (const auto& [name, field] : columns) {
    std::string epochs;  // "2-4, 7": runs of consecutive epochs
    int count = 0;
    for (size_t i = 0; i < table.rows.size(); ++i) {
      const auto bad = [&](size_t k) { return k < table.rows.size() && !std::isfinite(table.rows[k].*field); };
      if (!bad(i) || (i > 0 && bad(i - 1))) continue;
      size_t last = i;
      while (bad(last + 1)) ++last;
      count += static_cast<int>(last - i + 1);
      epochs += (epochs.empty() ? "" : ", ") + std::to_string(i + 1) + (last > i ? "-" + std::to_string(last + 1) : "");
    }
    if (count > 0) notes.push_back(name + " at epoch" + (count > 1 ? "s " : " ") + epochs);
  }
  return notes;
}

Canvas plot_curves(const MetricsTable& table, const std::string& title) {
  if (table.rows.empty()) throw Error((table.file.empty() ? "" : table.file + ": ") + "no epochs to plot yet");
  const auto epochs = static_cast<int64_t>(table.rows.size());
  Series train_loss{"train", kTrain, {}}, eval_loss{table.eval_name, kEval, {}};
  Series train_top1{"train", kTrain, {}}, eval_top1{table.eval_name, kEval, {}};
  Series lr{"lr", kTrain, {}};
  for (const EpochMetrics& m : table.rows) {
    train_loss.values.push_back(m.train_loss);
    eval_loss.values.push_back(m.eval_loss);
    train_top1.values.push_back(100 * m.train_top1);
    eval_top1.values.push_back(100 * m.eval_top1);
    lr.values.push_back(m.lr);
  }
  constexpr int64_t kWidth = 720, kChart = 230;
  Canvas c(kWidth, 40 + 3 * kChart + 30, {255, 255, 255});
  c.draw_text(10, 10, title, kInk, kScale);
  draw_chart(c, 10, 40, kWidth - 20, kChart - 10, "loss", {train_loss, eval_loss}, epochs);
  draw_chart(c, 10, 40 + kChart, kWidth - 20, kChart - 10, "top-1 accuracy (percent)", {train_top1, eval_top1}, epochs);
  draw_chart(c, 10, 40 + 2 * kChart, kWidth - 20, kChart - 10, "learning rate", {lr}, epochs);
  c.draw_text(kWidth / 2 - Canvas::text_width("epoch", kScale) / 2, 40 + 3 * kChart + 6, "epoch", kInk, kScale);
  return c;
}

}  // namespace convnet
