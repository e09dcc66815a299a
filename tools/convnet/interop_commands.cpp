// `convnet import FILE.cfg|FILE.onnx [--weights FILE.weights] -o DIR`: translates the model, checks
// that it builds and that the weights fit, then writes DIR/model.cnet and DIR/weights.safetensors.
// `convnet export NET|RUN -o model.onnx`: a network with its weights as ONNX (opset 13).
#include "interop_commands.hpp"

#include <filesystem>
#include <iostream>
#include <memory>

#include "cli_checks.hpp"
#include "convnet/error.hpp"
#include "convnet/executor.hpp"
#include "convnet/interop/darknet.hpp"
#include "convnet/interop/onnx.hpp"
#include "convnet/io/atomic_file.hpp"
#include "convnet/io/safetensors.hpp"
#include "convnet/model/model.hpp"
#include "convnet/text.hpp"
#include "convnet/train/quantize.hpp"
#include "convnet/train/trained_model.hpp"

namespace convnet {
namespace {

namespace fs = std::filesystem;

struct ImportArgs {
  std::string source, weights, out;
};

struct ExportArgs {
  std::string source, weights, input, out;
  uint64_t seed = 0;
  bool seed_given = false;
};

int run_import(const ImportArgs& a) {
  const bool onnx = onnx_interop::is_onnx_path(a.source);
  if (!darknet::is_cfg_path(a.source) && !onnx) {
    throw SpecError("import: '" + a.source +
                    "' is neither a Darknet .cfg nor an ONNX file (.onnx), the formats convnet imports");
  }
  if (onnx && !a.weights.empty()) throw SpecError("import: an ONNX file carries its weights; --weights is for a .cfg");
  std::string model_text;
  SafetensorsContent weights;
  if (onnx) {
    onnx_interop::Import imported = onnx_interop::import_onnx_file(a.source);
    model_text = std::move(imported.model_text);
    weights = std::move(imported.weights);
  } else {
    const darknet::Translation translation = darknet::translate_cfg_file(a.source);
    model_text = translation.model_text;
    // Read and checked before anything is written, so a bad weights file leaves the folder as it was.
    if (!a.weights.empty()) weights = darknet::read_weights(translation, a.weights);
  }
  Net net = load_model_text(model_text, a.source + " (translated)");
  std::error_code ec;
  fs::create_directories(a.out, ec);
  if (ec || !fs::is_directory(a.out)) throw IoError("import: cannot create the folder '" + a.out + "'");
  const std::string model_path = (fs::path(a.out) / "model.cnet").string();
  const std::string weights_path = (fs::path(a.out) / "weights.safetensors").string();
  const bool with_weights = onnx || !a.weights.empty();
  // Both outputs checked before the first is written: a folder in model.cnet's place must not
  // leave the old weights replaced and the model not.
  (void)replaceable_target(model_path);
  if (with_weights) {
    (void)replaceable_target(weights_path);
    Executor executor(net, {.backend = Backend::Reference});
    load_parameters(weights, executor, onnx ? a.source : a.weights);
    save_weights(executor, weights_path);
    std::cout << "wrote " << weights_path << " ("
              << with_commas(static_cast<int64_t>(executor.named_parameters().size())) << " tensors from "
              << (onnx ? a.source : a.weights) << ")\n";
  }
  write_file_atomically(model_path, model_text);
  std::cout << "wrote " << model_path << " (network " << net.name() << ", "
            << with_commas(static_cast<int64_t>(net.nodes().size() - net.inputs().size())) << " layers)\n";
  return 0;
}

int run_export(const ExportArgs& a) {
  check_output_file(a.out, ".onnx", {a.source, a.weights});
  const bool onnx_source = onnx_interop::is_onnx_path(a.source);
  if (a.seed_given && (is_trained_run(a.source) || onnx_source || !a.weights.empty())) {
    throw SpecError("export: --seed initialises a model's weights; '" + a.source + "'" +
                    (a.weights.empty() ? " has its own" : " takes them from --weights"));
  }
  if (is_trained_run(a.source)) {
    if (!a.input.empty() || !a.weights.empty()) {
      throw SpecError("export: --input and --weights apply to a model, not a trained run (it has both)");
    }
    // The run's preprocessing and class names go into the file's metadata, for eval and predict.
    const TrainedModel m = open_trained_model(a.source, {.backend = Backend::Reference});
    std::map<std::string, std::string> metadata = onnx_metadata(m);
    std::vector<ActivationRange> ranges;  // a quantized run: the QDQ graph of its int8 plan
    const std::string quantization = quantization_file_of(a.source);
    if (!quantization.empty()) {
      ranges = read_quantization(quantization, *m.net);
      metadata[kOnnxQuantizationKey] = kOnnxQuantizationValue;
    }
    onnx_interop::export_onnx(*m.executor, a.out, metadata, ranges);
    if (!ranges.empty())
      std::cout << "int8 as QDQ (QuantizeLinear/DequantizeLinear), scales from " << quantization << "\n";
  } else if (onnx_source && a.input.empty()) {
    // Another ONNX file: its metadata (a run's preprocessing and class names) goes along.
    onnx_interop::Import imported = onnx_interop::import_onnx_file(a.source);
    if (!imported.ranges.empty()) {
      throw SpecError("export: " + a.source +
                      " is a QDQ (int8) file, which export does not rewrite; export the quantized run it came from");
    }
    Net net = load_model_text(imported.model_text, a.source + " (translated)");
    Executor executor(net, {.backend = Backend::Reference});
    if (a.weights.empty()) {
      load_parameters(imported.weights, executor, a.source);
    } else {
      darknet::load_network_weights(executor, a.source, a.weights);
    }
    onnx_interop::export_onnx(executor, a.out, imported.metadata);
  } else {
    LoadOptions options;
    if (!a.input.empty()) options.input_shape = parse_input_option(a.input);
    Net net = load_model(a.source, options);
    Executor executor(net, {.backend = Backend::Reference, .seed = a.seed});
    if (!a.weights.empty()) {
      darknet::load_network_weights(executor, a.source, a.weights);
    } else if (onnx_source) {
      onnx_interop::load_onnx_weights(executor, a.source);
    }
    onnx_interop::export_onnx(executor, a.out);
  }
  std::cout << "wrote " << a.out << " (ONNX opset " << onnx_interop::kExportOpset << ")\n";
  return 0;
}

}  // namespace

std::function<int()> add_interop_commands(CLI::App& app) {
  auto a = std::make_shared<ImportArgs>();
  auto* import = app.add_subcommand("import",
                                    "translate a Darknet .cfg (and its .weights) or an ONNX file into a model file "
                                    "and convnet weights: DIR/model.cnet, DIR/weights.safetensors");
  import->add_option("FILE", a->source, "a Darknet classification .cfg or an ONNX model (.onnx)")->required();
  import->add_option("--weights", a->weights, "the Darknet .weights file saved for that cfg");
  import->add_option("-o,--out", a->out, "the folder to write (created when missing)")->required();

  auto e = std::make_shared<ExportArgs>();
  auto* exp = app.add_subcommand("export",
                                 "write a network with its weights as ONNX (opset 13); a run 'convnet quantize' made "
                                 "as a QDQ graph of its int8 model (s8 weights, QuantizeLinear/DequantizeLinear)");
  exp->add_option("NET", e->source, "a zoo model, a model file (.cnet, .cfg, .onnx), or a training folder / checkpoint")
      ->required();
  exp->add_option("-o,--out", e->out, "the ONNX file to write")->required();
  exp->add_option("--weights", e->weights, "weights for a model (default: He-initialised from --seed)");
  exp->add_option("--input", e->input, "input shape CxHxW, replacing the model's");
  exp->add_option("--seed", e->seed, "seed of the He initialisation (default 0)");
  return [=]() -> int {
    if (import->parsed()) return run_import(*a);
    if (!exp->parsed()) return -1;
    e->seed_given = exp->get_option("--seed")->count() > 0;
    return run_export(*e);
  };
}

}  // namespace convnet
