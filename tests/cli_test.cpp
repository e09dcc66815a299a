// Runs the built `convnet` tool (CONVNET_CLI) on zoo models and on the model files in
// tests/data (CONVNET_TEST_DATA), checking stdout, stderr and the exit code of each command.
#include <gtest/gtest.h>

#include "support/cli.hpp"
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace convnet::testing;

namespace fs = std::filesystem;

std::string data(const std::string& file) { return std::string(CONVNET_TEST_DATA) + "/" + file; }

// ---------------------------------------------------------------------------------------------
// list, show

TEST(CliList, ListsTheZooModelsOnePerLine) {
  const Result r = run({"list"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.err, "");
  std::vector<std::string> names;
  for (const std::string& line : lines_of(r.out)) names.push_back(line.substr(0, line.find(' ')));
  for (const char* model : {"alexnet", "resnet18", "vgg16", "lenet5"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), model), names.end()) << model << " missing from:\n" << r.out;
  }
}

TEST(CliShow, PrintsTheZooModelFileStartingWithAComment) {
  const Result r = run({"show", "lenet5"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.err, "");
  ASSERT_FALSE(r.out.empty());
  EXPECT_EQ(r.out[0], '#');
  EXPECT_CONTAINS(r.out, "network lenet5");
  EXPECT_CONTAINS(r.out, "input 1x28x28");
}

TEST(CliShow, UnknownModelIsAOneLineError) {
  const Result r = run({"show", "no_such_net"});
  expect_one_line_error(r);
  EXPECT_CONTAINS(r.err, "no_such_net");
}

// ---------------------------------------------------------------------------------------------
// summary, explain

TEST(CliSummary, AlexNetTableShowsConv1VolumeAndParameters) {
  const Result r = run({"summary", "alexnet"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.err, "");
  bool found = false;
  for (const std::string& line : lines_of(r.out)) {
    if (line.rfind("conv1 ", 0) == 0) {
      found = true;
      EXPECT_CONTAINS(line, "55x55x96");
      EXPECT_CONTAINS(line, "34,944");
    }
  }
  EXPECT_TRUE(found) << r.out;
  EXPECT_CONTAINS(r.out, "62,378,344");
}

TEST(CliSummary, JsonParsesAndTotalsAlexNetParameters) {
  const Result r = run({"summary", "alexnet", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  nlohmann::json j;
  ASSERT_NO_THROW(j = nlohmann::json::parse(r.out)) << r.out;
  EXPECT_EQ(j.at("network"), "alexnet");
  EXPECT_EQ(j.at("totals").at("parameters").get<int64_t>(), 62378344);
  bool found = false;
  for (const auto& layer : j.at("layers")) {
    if (layer.at("name") == "conv1") {
      found = true;
      EXPECT_EQ(layer.at("parameters").get<int64_t>(), 34944);
      EXPECT_EQ(layer.at("output"), nlohmann::json({96, 55, 55}));
      EXPECT_EQ(layer.at("output_volume"), "55x55x96");
    }
  }
  EXPECT_TRUE(found);
}

TEST(CliSummary, InputOverrideRunsResNet18OnCifarSizedImages) {
  const Result r = run({"summary", "resnet18", "--input", "3x32x32", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  const auto& layers = j.at("layers");
  ASSERT_FALSE(layers.empty());
  EXPECT_EQ(layers.front().at("output"), nlohmann::json({3, 32, 32}));
  EXPECT_EQ(layers.back().at("output"), nlohmann::json({1000}));
  // The parameter count does not depend on the image size (global pooling before fc).
  EXPECT_EQ(j.at("totals").at("parameters").get<int64_t>(), 11689512);

  const Result table = run({"summary", "resnet18", "--input", "3x32x32"});
  EXPECT_EQ(table.code, 0) << table.err;
  EXPECT_CONTAINS(table.out, "32x32x3");
  EXPECT_CONTAINS(table.out, "1000");
}

TEST(CliSummary, InputThatTheNetworkCannotTakeIsAOneLineError) {
  const Result r = run({"summary", "alexnet", "--input", "3x32x32"});
  expect_one_line_error(r);
  EXPECT_CONTAINS(r.err, "alexnet.cnet:");
  EXPECT_CONTAINS(r.err, "(32 - 11 + 2*0)/4 + 1 = 6.25");
}

TEST(CliSummary, MalformedInputShapeIsAOneLineError) {
  const Result r = run({"summary", "alexnet", "--input", "abc"});
  expect_one_line_error(r);
  EXPECT_CONTAINS(r.err, "--input");
  EXPECT_CONTAINS(r.err, "'abc'");
}

TEST(CliSummary, ModelFileFromDiskIsSummarised) {
  const Result r = run({"summary", data("good_small.cnet")});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_CONTAINS(r.out, "network small");
  EXPECT_CONTAINS(r.out, "layer2.conv1");
}

TEST(CliExplain, AlexNetConv1ShowsTheOutputSizeFormulaWithNumbers) {
  const Result r = run({"explain", "alexnet", "conv1"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_CONTAINS(r.out, "(227 - 11 + 2*0)/4 + 1 = 55");
  EXPECT_CONTAINS(r.out, "(11*11*3 + 1)*96 = 34944");
}

TEST(CliExplain, UnknownLayerIsAOneLineErrorSuggestingCloseNames) {
  const Result r = run({"explain", "alexnet", "conv9"});
  expect_one_line_error(r);
  EXPECT_CONTAINS(r.err, "conv9");
  // conv1 .. conv5 are one edit away from conv9; any of them is a useful suggestion.
  EXPECT_TRUE(std::regex_search(r.err, std::regex("conv[1-5]"))) << r.err;
}

// ---------------------------------------------------------------------------------------------
// Bad model files: one line on stderr naming file:line:col, exit code 1, no crash

struct BadFile {
  std::string file;
  std::string location;  // "file:line:" or "file:line:col"
  std::string detail;    // a piece of the message
};

class CliBadModel : public ::testing::TestWithParam<BadFile> {};

TEST_P(CliBadModel, SummaryPrintsOneLocatedLineAndExitsWithOne) {
  const BadFile& bad = GetParam();
  const Result r = run({"summary", data(bad.file)});
  expect_one_line_error(r);
  EXPECT_CONTAINS(r.err, bad.location);
  EXPECT_TRUE(std::regex_search(r.err, std::regex(std::regex_replace(bad.file, std::regex("\\."), "\\.") +
                                                  ":[0-9]+:[0-9]+: ")))
      << "no file:line:col in: " << r.err;
  EXPECT_CONTAINS(r.err, bad.detail);
}

TEST_P(CliBadModel, FormatReportsTheSameErrorAsSummary) {
  const BadFile& bad = GetParam();
  const Result summary = run({"summary", data(bad.file)});
  const Result format = run({"format", data(bad.file)});
  expect_one_line_error(format);
  EXPECT_EQ(format.err, summary.err);
}

INSTANTIATE_TEST_SUITE_P(
    Files, CliBadModel,
    ::testing::Values(BadFile{"bad_unknown_kind.cnet", "bad_unknown_kind.cnet:4:7: ", "unknown layer kind 'convolution'"},
                      BadFile{"bad_number.cnet", "bad_number.cnet:4:26: ", "stride, found 'abc'"},
                      BadFile{"bad_block_arity.cnet", "bad_block_arity.cnet:8:", "pair(width)"},
                      BadFile{"bad_add.cnet", "bad_add.cnet:6:1: ", "32x32x16 vs 32x32x32"},
                      BadFile{"bad_concat.cnet", "bad_concat.cnet:6:1: ", "32x32x16 vs 16x16x16"},
                      BadFile{"bad_filter.cnet", "bad_filter.cnet:4:1: ", "(7 - 3 + 2*0)/3 + 1 = 2.33"},
                      BadFile{"bad_empty.cnet", "bad_empty.cnet:1:1: ", "empty"},
                      BadFile{"bad_missing_end.cnet", "bad_missing_end.cnet:4:", "'end'"}),
    [](const ::testing::TestParamInfo<BadFile>& info) {
      std::string name = info.param.file.substr(4, info.param.file.size() - 4 - 5);  // bad_X.cnet -> X
      for (char& c : name) {
        if (c == '_') c = 'X';
      }
      return name;
    });

TEST(CliBadModelFile, MissingFileIsAOneLineErrorNamingIt) {
  const std::string path = data("no_such_file.cnet");
  const Result r = run({"summary", path});
  expect_one_line_error(r);
  EXPECT_CONTAINS(r.err, "no_such_file.cnet");
}

TEST(CliBadModelFile, BrokenFileWrittenOnTheFlyGivesItsLineAndColumn) {
  TempFile model(".cnet");
  write_file(model.path(), "network t\ninput 3x8x8\nconv1 conv 4 3x3\nrelu\nfc ten\n");
  const Result r = run({"summary", model.path().string()});
  expect_one_line_error(r);
  EXPECT_CONTAINS(r.err, model.path().string() + ":5:4: ");
  EXPECT_CONTAINS(r.err, "'ten'");
}

// ---------------------------------------------------------------------------------------------
// Usage errors exit 2

TEST(CliUsage, SummaryWithoutAModelExitsWithTwo) {
  const Result r = run({"summary"});
  EXPECT_FALSE(r.signalled);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_FALSE(r.err.empty());
}

TEST(CliUsage, NoSubcommandExitsWithTwo) {
  const Result r = run({});
  EXPECT_EQ(r.code, 2) << r.err;
}

TEST(CliUsage, UnknownOptionExitsWithTwo) {
  const Result r = run({"summary", "alexnet", "--frobnicate"});
  EXPECT_EQ(r.code, 2) << r.err;
}

TEST(CliUsage, HelpExitsWithZero) {
  const Result r = run({"--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_CONTAINS(r.out, "summary");
}

// ---------------------------------------------------------------------------------------------
// format round-trips

// format(file) -> text1; format(text1) -> text2; text1 == text2, and both summarise alike.
void expect_format_round_trips(const std::string& model) {
  SCOPED_TRACE(model);
  const Result first = run({"format", model});
  ASSERT_EQ(first.code, 0) << first.err;
  EXPECT_EQ(first.err, "");
  TempFile once(".cnet");
  write_file(once.path(), first.out);
  const Result second = run({"format", once.path().string()});
  ASSERT_EQ(second.code, 0) << second.err;
  EXPECT_EQ(second.out, first.out);

  const Result original = run({"summary", model});
  const Result formatted = run({"summary", once.path().string()});
  EXPECT_EQ(formatted.code, 0) << formatted.err;
  EXPECT_EQ(formatted.out, original.out);
}

TEST(CliFormat, ModelFileRoundTrips) { expect_format_round_trips(data("good_small.cnet")); }

TEST(CliFormat, ZooModelsRoundTrip) {
  for (const std::string model : {"alexnet", "resnet18", "googlenet", "densenet121", "lenet5"}) {
    expect_format_round_trips(model);
  }
}

}  // namespace
