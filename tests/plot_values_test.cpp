// `convnet plot` on metrics a diverged or absurd run writes: NaN and infinities are left out of
// charts drawn on their finite values' axes and named on stderr, a chart with no finite value says
// so, values near double's limit keep their axis; a metrics.csv without rows is an error naming
// it; and the picture goes beside the metrics.csv by default.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "convnet/error.hpp"
#include "convnet/visualize/plot.hpp"
#include "support/cli.hpp"
#include "support/data_files.hpp"

namespace convnet {
namespace {

using namespace convnet::testing;

constexpr Rgb kGrid{225, 225, 225};  // the charts' grid lines
constexpr Rgb kTrain{31, 119, 180};  // the train series
constexpr Rgb kInk{20, 20, 20};

// Pixels of `colour` inside the loss chart's frame (the first chart: x 74 to 702, y 58 to 240),
// with the points on its edges, without the tick labels around it.
int64_t in_loss_frame(const Canvas& c, Rgb colour) {
  int64_t n = 0;
  for (int64_t y = 58; y < 240 + 3; ++y) {
    for (int64_t x = 74 - 3; x < 702 + 3; ++x) n += c.at(x, y) == colour;
  }
  return n;
}

MetricsTable table_of_losses(const std::vector<double>& train_loss) {
  MetricsTable t;
  for (size_t i = 0; i < train_loss.size(); ++i) {
    t.rows.push_back({static_cast<int64_t>(i + 1), train_loss[i], 0.5, 0.4, 0.6, 0.9, 0.1, 1});
  }
  return t;
}

TEST(PlotValues, ValuesNearDoublesLimitKeepTheirAxisAndPoints) {
  constexpr double kMax = std::numeric_limits<double>::max();
  for (const std::vector<double>& losses : {std::vector<double>{0.5, 1e308, 0.4}, {-kMax, kMax, 0.0}}) {
    const Canvas c = plot_curves(table_of_losses(losses), "huge");
    EXPECT_GT(in_loss_frame(c, kGrid), 500) << "the loss chart lost its grid: " << losses[1];
    EXPECT_GT(in_loss_frame(c, kTrain), 100) << "the train points and lines are missing: " << losses[1];
  }
}

TEST(PlotValues, AChartWithoutAFiniteValueSaysSoInsteadOfInventingAnAxis) {
  MetricsTable diverged = table_of_losses({NAN, INFINITY});
  for (EpochMetrics& row : diverged.rows) row.eval_loss = -NAN;
  const Canvas c = plot_curves(diverged, "diverged");
  EXPECT_EQ(in_loss_frame(c, kGrid), 0) << "an axis for values that do not exist";
  EXPECT_GT(in_loss_frame(c, kInk), 200) << "no note in the empty chart";
  const Canvas fine = plot_curves(table_of_losses({0.5, 0.4}), "fine");
  EXPECT_EQ(in_loss_frame(fine, kInk), 0) << "a note in a chart with values";
}

TEST(PlotValues, NonFiniteValuesAreNamedByColumnAndEpochs) {
  MetricsTable t = table_of_losses({0.5, NAN, -INFINITY, 0.3, NAN});
  t.eval_name = "test";
  t.rows[2].eval_loss = INFINITY;
  t.rows[0].lr = NAN;
  EXPECT_EQ(non_finite_values(t),
            (std::vector<std::string>{"train_loss at epochs 2-3, 5", "test_loss at epoch 3", "lr at epoch 1"}));
  EXPECT_TRUE(non_finite_values(table_of_losses({0.5, 0.4})).empty());
}

class PlotCli : public ::testing::Test {
 protected:
  void TearDown() override { fs::current_path(fs::temp_directory_path()); }
  TempDir dir_{"plot_values"};
  const std::string header_ = "epoch,train_loss,train_top1,val_loss,val_top1,val_top5,lr,seconds\n";
};

TEST_F(PlotCli, NonFiniteValuesAreDrawnAroundAndNamedOnStderr) {
  fs::create_directories(dir_.file("run"));
  const std::string csv = dir_.file("run/metrics.csv");
  write_file(csv,
             header_ + "1,0.5,0.8,0.4,0.8,0.9,0.1,2\n2,nan,0.1,-nan,0.1,0.5,0.1,2\n3,inf,0.1,1e308,0.1,0.5,0.1,2\n");
  const Result r = run({"plot", csv, "-o", dir_.file("c.png")});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "convnet plot: note: " + csv + ": not drawn (NaN or infinite): train_loss at epochs 2-3\n" +
                       "convnet plot: note: " + csv + ": not drawn (NaN or infinite): val_loss at epoch 2\n");
  EXPECT_TRUE(fs::exists(dir_.file("c.png")));
}

TEST_F(PlotCli, AMetricsFileWithoutRowsIsAnErrorNamingIt) {
  const std::string csv = dir_.file("header.csv");
  write_file(csv, header_);
  const Result r = run({"plot", csv, "-o", dir_.file("c.png")});
  expect_one_line_error(r);
  EXPECT_CONTAINS(r.err, csv + ": no epochs to plot yet");
  EXPECT_FALSE(fs::exists(dir_.file("c.png")));
}

TEST_F(PlotCli, TheDefaultPictureGoesBesideTheMetricsFile) {
  fs::create_directories(dir_.file("run"));
  fs::create_directories(dir_.file("elsewhere"));
  write_file(dir_.file("run/metrics.csv"), header_ + "1,0.5,0.8,0.4,0.8,0.9,0.1,2\n");
  fs::current_path(dir_.file("elsewhere"));
  for (const std::string& given : {dir_.file("run/metrics.csv"), std::string("../run/metrics.csv"), dir_.file("run")}) {
    fs::remove(dir_.file("run/curves.png"));
    const Result r = run({"plot", given});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(fs::exists(dir_.file("run/curves.png"))) << given;
    EXPECT_FALSE(fs::exists(dir_.file("elsewhere/curves.png"))) << given;
  }
}

}  // namespace
}  // namespace convnet
