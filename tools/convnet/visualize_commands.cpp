// The visualisation commands: each opens a trained model (a training folder, a checkpoint, an ONNX
// file, or a Darknet .cfg or model file with --weights), reads
// an image the way `predict` does, runs one analysis from convnet/visualize and writes PNGs.
#include "visualize_commands.hpp"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "cli_checks.hpp"
#include "convnet/error.hpp"
#include "convnet/io/atomic_file.hpp"
#include "convnet/model/model.hpp"
#include "convnet/train/evaluate.hpp"
#include "convnet/train/trained_model.hpp"
#include "convnet/visualize/plot.hpp"
#include "convnet/visualize/report.hpp"
#include "convnet/visualize/views.hpp"
#include "model_options.hpp"

namespace convnet {
namespace {

namespace fs = std::filesystem;

struct VisualizeArgs {
  std::string checkpoint, image, layer, out, target;
  std::vector<std::string> layers;
  int64_t patch = 0, stride = 0, top = 9;
  bool guided = false;
  ModelArgs model;
};

/// --class: a class index or one of the model's class names.
int64_t class_index(const std::string& given, const std::vector<std::string>& names) {
  if (given.empty()) return -1;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == given) return static_cast<int64_t>(i);
  }
  size_t used = 0;
  int64_t index = -1;
  try {
    index = std::stoll(given, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != given.size() || index < 0) {
    std::string known;
    for (const std::string& n : names) known += (known.empty() ? "" : ", ") + n;
    throw Error("--class '" + given + "' is neither a class index nor one of the model's classes: " + known);
  }
  return index;
}

std::string class_name(int64_t index, const std::vector<std::string>& names) {
  return index >= 0 && static_cast<size_t>(index) < names.size() ? names[static_cast<size_t>(index)]
                                                                 : "class " + std::to_string(index);
}

ViewImage open_image(const TrainedModel& m, const std::string& path) {
  const Shape& shape = m.net->node(m.net->inputs().at(0)).output;
  return view_image(read_single_image(path, shape), 0, m.normalization);
}

void wrote(const std::string& path) { std::printf("wrote %s\n", path.c_str()); }

std::string file_safe(std::string name) {
  for (char& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '-' && ch != '_') ch = '_';
  }
  return name;
}

// The PNG a command writes: not the model, its weights or the image it reads.
void check_output(const VisualizeArgs& a, const std::string& out) {
  check_output_file(out, ".png", {a.checkpoint, a.model.options.weights, a.image});
}

int run_filters(const VisualizeArgs& a) {
  const std::string out = a.out.empty() ? "filters-" + file_safe(a.layer) + ".png" : a.out;
  check_output(a, out);
  const TrainedModel m = open_model(a.checkpoint, {}, a.model.options);  // filters need no preprocessing
  draw_filters(*m.net, *m.executor, a.layer).save_png(out);
  wrote(out);
  return 0;
}

int run_activations(const VisualizeArgs& a) {
  for (const std::string& layer : a.layers) {
    if (layer.empty() || layer.starts_with('-')) {
      throw SpecError("--layers: '" + layer + "' is not a layer name (give names separated by commas: --layers c1,s2)");
    }
  }
  TrainedModel m = a.model.open(a.checkpoint, {});
  const ViewImage image = open_image(m, a.image);
  const fs::path dir = a.out.empty() ? "activations" : a.out;
  std::error_code ec;
  const bool created = fs::create_directories(dir, ec);
  if (!fs::is_directory(dir))
    throw IoError(dir.string() + ": cannot create the output folder" + (ec ? ": " + ec.message() : ""));
  // Drawn into a staging folder, then moved into place once every picture is written, so that a
  // failure (an unknown layer, a full disk, a folder in a picture's place) leaves the output folder
  // as it was (and removes it if this command created it).
  const fs::path staging = dir / (".staging-" + std::to_string(::getpid()));
  struct Cleanup {
    fs::path staging, dir;
    bool created;
    ~Cleanup() {
      std::error_code ignored;
      fs::remove_all(staging, ignored);
      if (created) fs::remove(dir, ignored);  // only when empty
    }
  } cleanup{staging, dir, created};
  fs::create_directory(staging, ec);
  if (ec) throw IoError(staging.string() + ": cannot create: " + ec.message());
  // Numbered in drawing order, with as many digits as the largest number needs (so they sort).
  const size_t count = a.layers.empty() ? m.net->nodes().size() : a.layers.size();
  const int digits = std::max<int>(2, static_cast<int>(std::to_string(count).size()));
  std::vector<std::string> names;
  draw_activations(*m.net, *m.executor, image, a.layers, [&](const ActivationView& v) {
    char prefix[32];
    std::snprintf(prefix, sizeof prefix, "%0*d-", digits, static_cast<int>(names.size()));
    names.push_back(prefix + file_safe(v.name) + "-" + v.shape + ".png");
    v.picture.save_png((staging / names.back()).string());
  });
  std::vector<std::string> targets;
  for (const std::string& name : names) targets.push_back(replaceable_target((dir / name).string()));
  for (size_t i = 0; i < names.size(); ++i) {
    fs::rename(staging / names[i], targets[i], ec);
    if (ec == std::errc::cross_device_link) {  // a link to a picture on another file system
      ec.clear();
      std::ifstream picture(staging / names[i], std::ios::binary);
      write_file_atomically(targets[i], std::string(std::istreambuf_iterator<char>(picture), {}));
    }
    if (ec) throw IoError(targets[i] + ": cannot replace: " + ec.message());
    wrote((dir / names[i]).string());
  }
  cleanup.created = false;
  return 0;
}

int run_occlusion(const VisualizeArgs& a) {
  const std::string out = a.out.empty() ? "occlusion.png" : a.out;
  check_output(a, out);
  TrainedModel m = a.model.open(a.checkpoint, {});
  const ViewImage image = open_image(m, a.image);
  const OcclusionMap r = occlusion(
      *m.executor, image, {.target = class_index(a.target, m.class_names), .patch = a.patch, .stride = a.stride});
  const std::string name = class_name(r.target, m.class_names);
  char title[256];
  std::snprintf(title, sizeof title, "p(%s) with a %lldx%lld grey patch: %.3f whole, lowest %.3f", name.c_str(),
                static_cast<long long>(r.patch), static_cast<long long>(r.patch), r.unoccluded, r.lowest);
  draw_heat_map(image, r.per_pixel, title, "p 0", "p 1").save_png(out);
  std::printf("%s\n", title);
  wrote(out);
  return 0;
}

int run_saliency(const VisualizeArgs& a) {
  const std::string out = a.out.empty() ? "saliency.png" : a.out;
  check_output(a, out);
  TrainedModel m = a.model.open(a.checkpoint, {});
  const ViewImage image = open_image(m, a.image);
  int64_t target = class_index(a.target, m.class_names);
  const std::vector<float> g =
      input_gradient(*m.executor, image, a.guided ? GradientMethod::Guided : GradientMethod::Saliency, target);
  std::vector<float> map = pixel_strength(g, image.channels, image.height * image.width);
  normalize_min_max(map);
  const std::string title = std::string(a.guided ? "guided backpropagation" : "saliency") + ": |d score(" +
                            class_name(target, m.class_names) + ") / d pixel|, max over channels";
  draw_heat_map(image, map, title, "0", "max").save_png(out);
  wrote(out);
  return 0;
}

int run_deconv(const VisualizeArgs& a) {
  const std::string out = a.out.empty() ? "deconv-" + file_safe(a.layer) + ".png" : a.out;
  check_output(a, out);
  TrainedModel m = a.model.open(a.checkpoint, {});
  const ViewImage image = open_image(m, a.image);
  const std::vector<Projection> p = deconv_projections(*m.net, *m.executor, image, a.layer, a.top);
  if (p.empty()) throw Error("no activation of '" + a.layer + "' is above zero for this image: nothing to project");
  draw_projections(image, p,
                   "deconvnet: the strongest activation of " + std::to_string(p.size()) + " channels of " + a.layer +
                       ", projected to pixels")
      .save_png(out);
  wrote(out);
  return 0;
}

struct ReportArgs {
  std::string source, out, input, data;
  int64_t batch = 1;
};

/// The run's parts of the report; a dataset it cannot use is an error when --data names it, and
/// else (the run's own data moved away) left out with a note.
ReportRun report_run(TrainedModel& m, const std::string& source, const std::string& data_given) {
  ReportRun r;
  const fs::path folder = fs::is_directory(source) ? fs::path(source) : fs::path(source).parent_path();
  r.name = fs::absolute(folder).filename().string();
  r.class_names = m.class_names;
  if (fs::exists(folder / "metrics.csv")) r.metrics = read_metrics_csv((folder / "metrics.csv").string());
  for (const Node& n : m.net->nodes()) {
    if (!n.params.empty() && n.params[0].dims.size() == 4) {
      r.filters.push_back(draw_filters(*m.net, *m.executor, n.name));
      break;
    }
  }
  const std::string data = !data_given.empty() ? data_given : recorded_data_path(m);
  Dataset test;
  try {
    test = load_dataset(data).test;
    if (const Shape& input = m.net->node(m.net->inputs().at(0)).output; test.image_shape != input) {
      throw SpecError(data + ": its images are " + test.image_shape.chw_string() + " but " + source + " takes " +
                      input.chw_string());
    }
    if (test.size() == 0) throw SpecError(data + ": the test set holds no image");
  } catch (const Error& e) {  // unreadable, or not data this network reads
    if (!data_given.empty()) throw SpecError(std::string("--data ") + e.what());
    std::fprintf(stderr, "convnet report: note: %s; the confusion matrix and examples are left out\n", e.what());
    return r;
  }
  r.evaluation = evaluate(*m.executor, test, m.normalization, 256, true);
  const int64_t classes = static_cast<int64_t>(r.evaluation.probabilities.size()) / test.size();
  for (int64_t i = 0; i < std::min<int64_t>(12, test.size()); ++i) {
    const float* p = r.evaluation.probabilities.data() + i * classes;
    const int64_t best = std::max_element(p, p + classes) - p;
    const ViewImage image = view_image(test, i, m.normalization);
    r.examples.push_back({picture_of(image, std::max<int64_t>(1, 84 / std::max(image.height, image.width))),
                          class_name(test.labels[static_cast<size_t>(i)], m.class_names),
                          class_name(best, m.class_names), p[best]});
  }
  return r;
}

int run_report(const ReportArgs& a) {
  const std::string out = a.out.empty() ? "report.html" : a.out;
  check_output_file(out, ".html", {a.source});
  std::string html;
  if (is_trained_run(a.source)) {
    if (!a.input.empty()) throw Error("--input applies to a model, not a trained run (its input is fixed)");
    TrainedModel m = open_trained_model(a.source, {});
    const ReportRun run = report_run(m, a.source, a.data);
    html = report_html(*m.net, &run, a.batch);
  } else {
    LoadOptions options;
    if (!a.input.empty()) options.input_shape = parse_input_option(a.input);
    html = report_html(load_model(a.source, options), nullptr, a.batch);
  }
  write_file_atomically(out, html);
  wrote(out);
  return 0;
}

int run_plot(const std::string& run, const std::string& out_given) {
  const MetricsTable table = read_metrics_csv(run);
  const std::string out =
      out_given.empty() ? (fs::path(table.file).parent_path() / "curves.png").string() : out_given;  // beside it
  check_output_file(out, ".png", {table.file});
  std::error_code ec;
  const std::string run_name = fs::weakly_canonical(fs::absolute(table.file), ec).parent_path().filename().string();
  plot_curves(table, run_name + ": " + std::to_string(table.rows.size()) + " epochs").save_png(out);
  wrote(out);
  for (const std::string& values : non_finite_values(table)) {
    std::fprintf(stderr, "convnet plot: note: %s: not drawn (NaN or infinite): %s\n", table.file.c_str(),
                 values.c_str());
  }
  return 0;
}

}  // namespace

std::function<int()> add_visualize_commands(CLI::App& app) {
  auto a = std::make_shared<VisualizeArgs>();
  auto plot_out = std::make_shared<std::string>();
  auto plot_run = std::make_shared<std::string>();
  auto* visualize = app.add_subcommand("visualize", "pictures of what a trained network learned (docs/visualize.md)");
  visualize->require_subcommand(1);
  // Filters need only the weights; the other views also read an image as the model was trained to.
  auto checkpoint = [&](CLI::App* c, bool preprocessing = true) {
    c->add_option("MODEL", a->checkpoint,
                  "training folder, checkpoint, ONNX file, or a Darknet .cfg / model file with --weights")
        ->required();
    a->model.add_weights(c);
    if (preprocessing) a->model.add_preprocessing(c, true);
  };
  auto image = [&](CLI::App* c) {
    c->add_option("IMAGE", a->image, "a PNG or JPEG image (resized to the input)")->required();
  };

  auto* filters = visualize->add_subcommand("filters", "a grid of a convolution's learned filters");
  checkpoint(filters, false);
  filters->add_option("LAYER", a->layer, "a layer with filters (conv1, features.0, ...)")->required();
  filters->add_option("-o,--out", a->out, "PNG to write (default filters-LAYER.png)");

  auto* activations = visualize->add_subcommand("activations", "one grid of activation maps per layer for an image");
  checkpoint(activations);
  image(activations);
  activations->add_option("--layers", a->layers, "layers to draw, comma-separated (default: all)")->delimiter(',');
  activations->add_option("-o,--out", a->out, "folder for the PNGs, created if missing (default activations/)");

  auto* occlusion_cmd = visualize->add_subcommand("occlusion",
                                                  "ZFNet's experiment: the class probability as a grey patch "
                                                  "slides over the image");
  checkpoint(occlusion_cmd);
  image(occlusion_cmd);
  occlusion_cmd->add_option("--class", a->target, "class index or name (default: the predicted class)");
  occlusion_cmd->add_option("--patch", a->patch, "patch side in pixels (default: max(2, side/7))")
      ->check(whole_number(1, 1 << 16));
  occlusion_cmd->add_option("--stride", a->stride, "pixels between patch positions (default: patch/2)")
      ->check(whole_number(1, 1 << 16));
  occlusion_cmd->add_option("-o,--out", a->out, "PNG to write (default occlusion.png)");

  auto* saliency = visualize->add_subcommand("saliency", "the class score's gradient with respect to the pixels");
  checkpoint(saliency);
  image(saliency);
  saliency->add_option("--class", a->target, "class index or name (default: the predicted class)");
  saliency->add_flag("--guided", a->guided, "guided backpropagation: ReLUs also drop negative gradients");
  saliency->add_option("-o,--out", a->out, "PNG to write (default saliency.png)");

  auto* deconv = visualize->add_subcommand("deconv",
                                           "ZFNet's deconvnet: a layer's strongest activations projected "
                                           "back to pixel space");
  checkpoint(deconv);
  image(deconv);
  deconv->add_option("--layer", a->layer, "the layer whose activations are projected")->required();
  deconv->add_option("--top", a->top, "channels to project, strongest first (default 9)")->check(whole_number(1, 4096));
  deconv->add_option("-o,--out", a->out, "PNG to write (default deconv-LAYER.png)");

  auto* plot = app.add_subcommand("plot",
                                  "training curves (loss, accuracy, learning "
                                  "rate) from a run's metrics.csv");
  plot->add_option("RUN", *plot_run, "a training folder or its metrics.csv")->required();
  plot->add_option("-o,--out", *plot_out, "PNG to write (default RUN/curves.png, beside the metrics.csv)");

  auto r = std::make_shared<ReportArgs>();
  auto* report =
      app.add_subcommand("report",
                         "one self-contained HTML page: the architecture drawn as volumes, the layer table "
                         "with formulas on hover; for a run also curves, filters, confusion matrix, examples");
  report->add_option("SOURCE", r->source, "a zoo model, a model file (.cnet, .cfg, .onnx), or a training folder / checkpoint")
      ->required();
  report->add_option("-o,--out", r->out, "HTML file to write (default report.html)");
  report->add_option("--input", r->input, "input shape CxHxW, replacing the model's (models only)");
  report->add_option("--batch", r->batch, "batch size for the memory figures (default 1)")
      ->check(whole_number(1, 1 << 20));
  report->add_option("--data", r->data, "dataset folder for a run's confusion matrix and examples (default: its own)");

  return [=]() -> int {
    if (report->parsed()) return run_report(*r);
    if (filters->parsed()) return run_filters(*a);
    if (activations->parsed()) return run_activations(*a);
    if (occlusion_cmd->parsed()) return run_occlusion(*a);
    if (saliency->parsed()) return run_saliency(*a);
    if (deconv->parsed()) return run_deconv(*a);
    if (plot->parsed()) return run_plot(*plot_run, *plot_out);
    return -1;
  };
}

}  // namespace convnet
