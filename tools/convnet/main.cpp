// The convnet command-line tool: the zoo (list, show, layers, format), analysis (summary,
// explain), running (forward, bench), training (train, eval, predict) and pictures (visualize, plot).
// Every convnet::Error becomes one line on stderr and exit code 1; usage errors exit 2.
#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <optional>
#include <thread>

#include "bench.hpp"
#include "cli_checks.hpp"
#include "interop_commands.hpp"
#include "quantize_command.hpp"
#include "train_commands.hpp"
#include "visualize_commands.hpp"
#include "convnet/analysis/summary.hpp"
#include "convnet/distributed/communicator.hpp"
#include "convnet/engine/plan.hpp"
#include "convnet/error.hpp"
#include "convnet/executor.hpp"
#include "convnet/interop/darknet.hpp"
#include "convnet/interop/onnx.hpp"
#include "convnet/io/safetensors.hpp"
#include "convnet/model/model.hpp"
#include "convnet/registry.hpp"
#include "convnet/train/quantize.hpp"
#include "convnet/zoo/zoo.hpp"

namespace {

using namespace convnet;

LoadOptions load_options(const std::string& input) {
  LoadOptions options;
  if (!input.empty()) options.input_shape = parse_input_option(input);
  return options;
}

/// The compiled plans' memory (inference; training, or why it trains layer by layer), under the
/// summary's own figures.
std::string format_plan_memory(const PlanMemory& plan, const std::optional<PlanMemory>& training,
                               const std::string& layer_by_layer, int64_t batch) {
  auto line = [](const std::string& label, int64_t bytes, const std::string& note) {
    std::string text = compact(static_cast<double>(bytes), true);
    return label + std::string(24 - label.size(), ' ') + std::string(16 - std::min<size_t>(16, text.size()), ' ') +
           text + "  " + note + "\n";
  };
  const std::string b = std::to_string(batch);
  std::string out = line("plan memory", plan.peak, "inference plan (oneDNN, f32, batch " + b + "): all of it") +
                    line("  activations", plan.arena, "one arena, buffers reused once dead") +
                    line("  weight copies", plan.weights, "reordered / batch norm folded, beside the parameters") +
                    line("  scratchpad", plan.scratchpad, "shared by every primitive");
  if (!training) return out + "training plan: none, trains layer by layer (" + layer_by_layer + ")\n";
  return out +
         line("training plan memory", training->peak, "forward + backward (batch " + b + "), beside parameters and gradients") +
         line("  activations", training->arena, "forward values the backward reads, and their gradients") +
         line("  weight copies", training->weights, "reordered for the primitives, refreshed every step") +
         line("  scratchpad", training->scratchpad, "shared by every primitive");
}

nlohmann::json plan_memory_json(const PlanMemory& plan) {
  return {{"arena", plan.arena}, {"scratchpad", plan.scratchpad}, {"weight_copies", plan.weights},
          {"output", plan.output}, {"peak", plan.peak}};
}

void add_net_argument(CLI::App* command, std::string& net) {
  command->add_option("NET", net, "a zoo model name ('convnet list'), a model file (.cnet), a Darknet .cfg or an ONNX file")
      ->required();
}

// One line on stderr and exit code 1. In a distributed run a rank's failure stops every rank
// (MPI_Abort); a rank other than 0 waits a moment first, so that when every rank failed alike
// (bad options, a diverged loss) rank 0's line is the one printed.
int fail(const std::string& message) {
  if (launched_by_mpirun() && built_with_mpi() && world().size() > 1) {
    Communicator& comm = world();
    if (comm.rank() != 0) std::this_thread::sleep_for(std::chrono::seconds(2));
    std::cerr << "convnet: " << (comm.rank() == 0 ? "" : comm.where() + ": ") << message << std::endl;
    abort_job(1);
  }
  std::cerr << "convnet: " << message << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"convnet: define, analyse and run convolutional networks.\n"
               "Model files use the model language (docs/model-language.md); zoo models are built in."};
  app.require_subcommand(1);

  auto* list = app.add_subcommand("list", "list the zoo's models");
  auto* layers = app.add_subcommand("layers", "list the layer kinds of the model language with their usage");

  std::string net;
  std::string input;
  int64_t batch = 1;
  bool json = false;
  std::string layer_name;

  auto* show = app.add_subcommand("show", "print a zoo model's file");
  show->add_option("NAME", net, "a zoo model name")->required();

  auto* format = app.add_subcommand("format", "parse a model and print it back in normalised form");
  add_net_argument(format, net);

  auto* summary = app.add_subcommand(
      "summary", "per-layer output volume, parameters, activation memory, multiply-adds and receptive field");
  add_net_argument(summary, net);
  summary->add_option("--input", input, "input shape CxHxW, replacing the model's (e.g. 3x32x32)");
  summary->add_option("--batch", batch, "batch size for the memory figures")->check(whole_number(1, int64_t{1} << 40));
  summary->add_flag("--json", json, "print JSON instead of a table");

  auto* explain = app.add_subcommand("explain", "every formula behind one layer's numbers, with the numbers put in");
  add_net_argument(explain, net);
  explain->add_option("LAYER", layer_name, "the layer's full name, as 'convnet summary' prints it")->required();
  explain->add_option("--input", input, "input shape CxHxW, replacing the model's");

  BenchOptions bench_options;
  auto* bench = app.add_subcommand("bench", "time forward (or forward + backward) passes: images/s, ms per batch, "
                                            "per-layer breakdown, achieved GFLOP/s");
  bench->add_option("NET", bench_options.net, "a zoo model name or a model file (.cnet, .cfg, .onnx)")->required();
  bench->add_option("--input", bench_options.input, "input shape CxHxW, replacing the model's");
  bench->add_option("--batch", bench_options.batch, "images per batch (default 32)")->check(whole_number(1, 1 << 20));
  bench->add_flag("--train", bench_options.train, "time forward + backward (training) instead of inference");
  bench->add_option("--threads", bench_options.threads, "threads (default: all cores)")->check(thread_count());
  bench->add_option("--reps", bench_options.repetitions, "timed repetitions (median reported; default 10)")
      ->check(whole_number(1, 1'000'000));
  bench->add_option("--warmup", bench_options.warmup, "untimed warm-up batches (default 2)")->check(whole_number(0, 1'000'000));
  bench->add_flag("--reference", bench_options.reference, "time the reference kernels instead of oneDNN");
  bench->add_flag("--layer-by-layer", bench_options.layer_by_layer,
                  "without the compiled plan: each layer's oneDNN kernel on plain NCHW (the path before the engine)");
  bench->add_option("--layout", bench_options.layout,
                    "the plan's activation layout: any (oneDNN chooses; default), nhwc, or blocked (nChw16c)")
      ->check(CLI::IsMember({"any", "nhwc", "blocked"}));
  bench_options.precision.add_to(bench, "scales calibrated on the timed batch: for timing");

  std::string weights;
  std::string images;
  std::string out;
  bool reference = false;
  auto* forward = app.add_subcommand(
      "forward", "run a network on a batch stored as safetensors ('input', N x C x H x W) and save its output");
  add_net_argument(forward, net);
  forward->add_option("--weights", weights,
                      "safetensors weights (torchvision names); default: an ONNX file's own, else He-initialised");
  forward->add_option("--images", images, "safetensors file holding a tensor named 'input'")->required();
  forward->add_option("--out", out, "where to write the output tensor 'output' (safetensors)")->required();
  forward->add_flag("--reference", reference, "use the reference kernels instead of oneDNN");
  PrecisionOptions forward_precision;
  forward_precision.add_to(forward, "a QDQ ONNX file's scales, else scales calibrated on this batch");

  const std::function<int()> run_training_command = add_train_commands(app, argv[0]);
  const std::function<int()> run_visualize_command = add_visualize_commands(app);
  const std::function<int()> run_quantize_command = add_quantize_command(app);
  const std::function<int()> run_interop_command = add_interop_commands(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help, or the usage error
    return code == 0 ? 0 : 2;
  }

  try {
    if (list->parsed()) {
      for (const ZooEntry& entry : zoo_entries()) {
        const std::string text = entry.text;
        const size_t hash = text.find('#');
        const std::string about = hash == std::string::npos ? "" : text.substr(hash + 1, text.find('\n', hash) - hash - 1);
        std::cout << entry.name << std::string(entry.name ? 26 - std::min<size_t>(25, std::string(entry.name).size()) : 1, ' ')
                  << about << "\n";
      }
    } else if (layers->parsed()) {
      for (const std::string& name : builtin_layers().names()) std::cout << builtin_layers().find(name)->usage << "\n";
    } else if (show->parsed()) {
      const ZooEntry* entry = find_zoo_model(net);
      if (entry == nullptr) throw SpecError("no zoo model named '" + net + "'" + zoo_suggestion(net) + "; 'convnet list' shows them");
      std::cout << entry->text;
    } else if (format->parsed()) {
      std::string file;
      const std::string text = read_model_source(net, file);
      const model::ModelAst ast = model::parse(text, file);
      (void)build_net(ast);  // check it builds before printing it back
      std::cout << model::print(ast);
    } else if (summary->parsed()) {
      const Net built = load_model(net, load_options(input));
      const Summary s = summarize(built, batch);
      const PlanMemory plan = plan_memory(built, batch);
      std::optional<PlanMemory> training;
      std::string layer_by_layer;
      try {
        training = plan_memory(built, batch, true);
      } catch (const PlanUnsupported& e) {
        layer_by_layer = e.what();
      }
      if (json) {
        nlohmann::json j = summary_json(s);
        j["plan_inference_bytes"] = plan_memory_json(plan);
        j["plan_training_bytes"] = training ? plan_memory_json(*training) : nlohmann::json();
        std::cout << j.dump(2) << "\n";
      } else {
        std::cout << format_summary(s) << format_plan_memory(plan, training, layer_by_layer, batch);
      }
    } else if (explain->parsed()) {
      const Net built = load_model(net, load_options(input));
      std::cout << explain_layer(built, layer_name);
    } else if (forward->parsed()) {
      check_output_file(out, ".safetensors", {images, weights, net});
      const SafetensorsContent batch = read_safetensors(images);
      auto it = batch.tensors.find("input");
      if (it == batch.tensors.end()) throw IoError(images + ": no tensor named 'input'");
      LoadOptions options;
      std::vector<int64_t> dims(it->second.shape.begin() + (it->second.shape.empty() ? 0 : 1), it->second.shape.end());
      if (!dims.empty()) options.input_shape = Shape(dims);
      const DType dtype = forward_precision.dtype();
      if (reference && dtype != DType::F32) throw SpecError("forward: --reference computes in f32 only");
      Net built = load_model(net, options);
      Executor executor(built, {.backend = reference ? Backend::Reference : Backend::OneDnn,
                                .precision = dtype,
                                .emulate = forward_precision.emulate});
      if (!weights.empty()) {
        darknet::load_network_weights(executor, net, weights);
      } else if (onnx_interop::is_onnx_path(net)) {
        onnx_interop::load_onnx_weights(executor, net);  // an ONNX file carries its weights
      }
      Tensor input(it->second.shape);
      std::copy(it->second.values.begin(), it->second.values.end(), input.data());
      if (dtype == DType::Int8) {
        // A QDQ file's own scales; else scales from this batch.
        std::vector<ActivationRange> ranges;
        if (onnx_interop::is_onnx_path(net)) ranges = onnx_interop::import_onnx_file(net).ranges;
        if (ranges.empty()) observe_ranges(executor, input, ranges);
        executor.set_activation_ranges(std::move(ranges));
      }
      const Tensor& output = executor.forward(input, false);
      write_safetensors(out, {{"output", &output}});
    } else if (bench->parsed()) {
      return run_bench(bench_options);
    } else {
      for (const auto& run : {run_training_command, run_visualize_command, run_quantize_command, run_interop_command}) {
        if (const int code = run(); code != -1) return code;
      }
    }
  } catch (const Error& e) {
    return fail(e.what());
  } catch (...) {
    // A failure the library did not turn into a convnet::Error: still one line, naming the command.
    return fail(describe_exception(std::current_exception(), app.get_subcommands().front()->get_name()));
  }
  return 0;
}
