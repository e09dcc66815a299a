// `convnet import FILE.cfg [--weights FILE.weights] -o DIR`: translates the cfg, checks that it
// builds and that the weights fit, then writes DIR/model.cnet and DIR/weights.safetensors.
#include "interop_commands.hpp"

#include <filesystem>
#include <iostream>
#include <memory>

#include "convnet/error.hpp"
#include "convnet/executor.hpp"
#include "convnet/interop/darknet.hpp"
#include "convnet/io/atomic_file.hpp"
#include "convnet/io/safetensors.hpp"
#include "convnet/model/model.hpp"
#include "convnet/text.hpp"

namespace convnet {
namespace {

namespace fs = std::filesystem;

struct ImportArgs {
  std::string source, weights, out;
};

int run_import(const ImportArgs& a) {
  if (!darknet::is_cfg_path(a.source)) {
    throw SpecError("import: '" + a.source + "' is not a Darknet .cfg (the formats convnet imports)");
  }
  const darknet::Translation translation = darknet::translate_cfg_file(a.source);
  Net net = load_model_text(translation.model_text, a.source + " (translated)");
  std::error_code ec;
  fs::create_directories(a.out, ec);
  if (ec || !fs::is_directory(a.out)) throw IoError("import: cannot create the folder '" + a.out + "'");
  const std::string model_path = (fs::path(a.out) / "model.cnet").string();
  if (!a.weights.empty()) {
    // Read and checked before anything is written, so a bad weights file leaves the folder as it was.
    Executor executor(net, {.backend = Backend::Reference});
    load_parameters(darknet::read_weights(translation, a.weights), executor, a.weights);
    const std::string weights_path = (fs::path(a.out) / "weights.safetensors").string();
    save_weights(executor, weights_path);
    std::cout << "wrote " << weights_path << " ("
              << with_commas(static_cast<int64_t>(executor.named_parameters().size())) << " tensors from " << a.weights
              << ")\n";
  }
  write_file_atomically(model_path, translation.model_text);
  std::cout << "wrote " << model_path << " (network " << net.name() << ", "
            << with_commas(static_cast<int64_t>(net.nodes().size() - net.inputs().size())) << " layers)\n";
  return 0;
}

}  // namespace

std::function<int()> add_interop_commands(CLI::App& app) {
  auto a = std::make_shared<ImportArgs>();
  auto* import = app.add_subcommand("import",
                                    "translate a Darknet .cfg (and its .weights) into a model file and convnet "
                                    "weights: DIR/model.cnet, DIR/weights.safetensors");
  import->add_option("FILE", a->source, "a Darknet classification .cfg")->required();
  import->add_option("--weights", a->weights, "the Darknet .weights file saved for that cfg");
  import->add_option("-o,--out", a->out, "the folder to write (created when missing)")->required();
  return [=]() -> int { return import->parsed() ? run_import(*a) : -1; };
}

}  // namespace convnet
