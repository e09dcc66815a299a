// libFuzzer target: ONNX import. The bytes are written to a .onnx file and translated; the model
// text a translation writes must parse (one that does not is a translator bug: abort), build with
// the weights it carries, and summarise.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "convnet/analysis/summary.hpp"
#include "convnet/error.hpp"
#include "convnet/interop/onnx.hpp"
#include "convnet/model/model.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = convnet::fuzz::write_scratch("fuzz.onnx", data, size);
  convnet::onnx_interop::Import imported;
  try {
    imported = convnet::onnx_interop::import_onnx_file(path);
  } catch (const convnet::Error& e) {
    convnet::fuzz::expected(e);
    return 0;
  }
  convnet::model::ModelAst ast;
  try {
    ast = convnet::model::parse(imported.model_text, "fuzz.onnx (translated)");
  } catch (const convnet::Error& e) {
    std::fprintf(stderr, "onnx import: the translation does not parse: %s\n%s\n", e.what(),
                 imported.model_text.c_str());
    std::abort();
  }
  try {
    const convnet::Net net = convnet::build_net(ast);
    (void)convnet::format_summary(convnet::summarize(net));
  } catch (const convnet::Error& e) {
    convnet::fuzz::expected(e);
  }
  return 0;
}
