// libFuzzer target: Darknet cfg import. Translates a cfg; the model text it writes must parse
// (a translation that does not is a translator bug: abort), then builds and summarises it. For a
// translation with at most 2^18 weights, a .weights file of exactly the size the cfg needs must
// read, and one a byte short must be refused with an IoError.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "convnet/analysis/summary.hpp"
#include "convnet/checked.hpp"
#include "convnet/error.hpp"
#include "convnet/interop/darknet.hpp"
#include "convnet/model/model.hpp"
#include "fuzz_common.hpp"

namespace {

[[noreturn]] void bug(const std::string& what, const std::string& detail) {
  std::fprintf(stderr, "darknet import: %s\n%s\n", what.c_str(), detail.c_str());
  std::abort();
}

void check_weights(const convnet::darknet::Translation& t) {
  int64_t floats = 0;
  try {
    for (const auto& layer : t.weights) {
      for (const auto& run : layer.runs) floats = convnet::checked_add(floats, convnet::checked_product(run.dims));
    }
  } catch (const convnet::SizeError&) {
    return;  // read_weights refuses such a cfg with the same SizeError
  }
  if (floats > (int64_t{1} << 18)) return;
  std::string bytes(20 + 4 * static_cast<size_t>(floats), '\0');
  bytes[4] = 2;  // version 0.2.0: a 64-bit `seen`
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  try {
    (void)convnet::darknet::read_weights(t, convnet::fuzz::write_scratch("exact.weights", data, bytes.size()));
  } catch (const convnet::Error& e) {
    bug("a .weights file of the right size was refused", e.what());
  }
  try {
    (void)convnet::darknet::read_weights(t, convnet::fuzz::write_scratch("short.weights", data, bytes.size() - 1));
    bug("a .weights file a byte short was read", t.model_text);
  } catch (const convnet::IoError&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  convnet::darknet::Translation t;
  try {
    t = convnet::darknet::translate_cfg(text, "fuzz.cfg");
  } catch (const convnet::Error& e) {
    convnet::fuzz::expected(e);
    return 0;
  }
  convnet::model::ModelAst ast;
  try {
    ast = convnet::model::parse(t.model_text, "fuzz.cfg (translated)");
  } catch (const convnet::Error& e) {
    bug(std::string("the translation does not parse: ") + e.what(), t.model_text);
  }
  check_weights(t);
  try {
    const convnet::Net net = convnet::build_net(ast);
    (void)convnet::format_summary(convnet::summarize(net));
  } catch (const convnet::Error& e) {
    convnet::fuzz::expected(e);
  }
  return 0;
}
