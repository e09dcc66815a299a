// libFuzzer target: the model language. Parses a model text, prints it back and checks that the
// printed form parses to the same print (what `convnet format` relies on), builds the graph, and
// runs the analyser (table, JSON, and the formulas of a few layers).
#include <cstdio>
#include <cstdlib>
#include <string>

#include "convnet/analysis/summary.hpp"
#include "convnet/error.hpp"
#include "convnet/model/model.hpp"
#include "fuzz_common.hpp"

namespace {

// A printed model that does not parse back, or prints differently, is a printer bug: abort so
// libFuzzer saves the input.
void check_round_trip(const std::string& printed) {
  std::string again;
  try {
    again = convnet::model::print(convnet::model::parse(printed, "printed.cnet"));
  } catch (const convnet::Error& e) {
    std::fprintf(stderr, "round trip: the printed model does not parse: %s\n--- printed ---\n%s\n", e.what(),
                 printed.c_str());
    std::abort();
  }
  if (again != printed) {
    std::fprintf(stderr, "round trip: printing is not stable\n--- first ---\n%s\n--- second ---\n%s\n", printed.c_str(),
                 again.c_str());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const convnet::model::ModelAst ast = convnet::model::parse(text, "fuzz.cnet");
    check_round_trip(convnet::model::print(ast));
    const convnet::Net net = convnet::build_net(ast);
    // The analyser is linear in the layers, but instrumented it needs 26 s for the 80,000 layers a
    // 1.2 kB text can expand to, past the run's timeout: larger networks are built, not analysed.
    if (net.nodes().size() > 20'000) return 0;
    const convnet::Summary summary = convnet::summarize(net);
    (void)convnet::format_summary(summary);
    (void)convnet::summary_json(summary).dump();
    for (size_t i = 0; i < summary.rows.size() && i < 4; ++i) (void)convnet::explain_layer(net, summary.rows[i].name);
    if (!summary.rows.empty()) (void)convnet::explain_layer(net, summary.rows.back().name);
  } catch (const convnet::Error& e) {
    convnet::fuzz::expected(e);
  }
  return 0;
}
