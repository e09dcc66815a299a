// Darknet cfg -> model language. Each section computes its output volume with Darknet's own
// rules (parser.c and the *_layer.c files), checks what convnet cannot express, and writes the
// equivalent layer lines, named after Darknet's layer index so they line up with darknet's table.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "convnet/checked.hpp"
#include "convnet/error.hpp"
#include "convnet/interop/darknet.hpp"
#include "convnet/interop/darknet_section.hpp"
#include "convnet/model/ast.hpp"

namespace convnet::darknet {
namespace {

// Darknet's output of a layer: an image (c, h, w), or a vector of c values once convnet flattened it.
struct Volume {
  int64_t c = 0;
  int64_t h = 1;
  int64_t w = 1;
  bool vector = false;
  bool operator==(const Volume&) const = default;
};

std::string volume_text(const Volume& v) {
  return v.vector ? std::to_string(v.c) : std::to_string(v.h) + "x" + std::to_string(v.w) + "x" + std::to_string(v.c);
}

// The shortest text that reads back as `value` ("0.3", "1e-12").
std::string number(double value) {
  char buffer[40];
  for (int digits = 6; digits <= 17; ++digits) {
    std::snprintf(buffer, sizeof buffer, "%.*g", digits, value);
    if (std::strtod(buffer, nullptr) == value) break;
  }
  return buffer;
}

// One line of the model text: indentation level, node name (may be empty), the rest, a comment.
struct Line {
  int indent = 0;
  std::string name;
  std::string body;
  std::string comment;
};

// The lines of Darknet layers first..last (a residual structure spans several).
struct Item {
  int first = 0;
  int last = 0;
  std::vector<Line> lines;
};

// A convolutional or local section's filters: count, square size, stride, padding on every side.
struct Filters {
  int64_t n = 1;
  int64_t size = 1;
  int64_t stride = 1;
  int64_t padding = 0;
};

// Sections that are not classification layers, with what they are.
const char* non_classification(const std::string& type) {
  static const std::set<std::string> detection{"yolo", "region", "detection", "Gaussian_yolo", "iseg"};
  static const std::set<std::string> recurrent{"rnn", "lstm", "gru", "crnn", "conv_lstm"};
  static const std::set<std::string> other{
      "upsample",   "reorg",         "reorg3d",   "deconvolutional", "deconv",   "batchnorm",
      "activation", "normalization", "lrn",       "l2norm",          "logistic", "scale_channels",
      "sam",        "local_avgpool", "local_avg", "empty",           "xor"};
  if (detection.count(type)) return "a detection layer";
  if (recurrent.count(type)) return "a recurrent layer";
  if (other.count(type)) return "a layer convnet's Darknet import does not translate";
  return nullptr;
}

// Darknet's short section names.
std::string canonical(const std::string& type) {
  if (type == "conv") return "convolutional";
  if (type == "conn") return "connected";
  if (type == "max") return "maxpool";
  if (type == "avg") return "avgpool";
  if (type == "soft") return "softmax";
  if (type == "network") return "net";
  return type;
}

class Translator {
 public:
  explicit Translator(std::string file) : file_(std::move(file)) {}

  Translation run(const std::vector<CfgSection>& sections) {
    Section net(sections[0], file_);
    input_ = {net.required_integer("channels", 1), net.required_integer("height", 1), net.required_integer("width", 1)};
    for (const CfgOption& option : sections[0].options) net.ignore({option.key.c_str()});  // training settings
    for (size_t s = 1; s < sections.size(); ++s) layer(sections[s], static_cast<int>(s) - 1);
    if (items_.empty()) net.fail("is followed by no layer convnet computes ([crop] and [cost] add none)");
    return {text(), std::move(weights_)};
  }

 private:
  void layer(const CfgSection& cfg, int index) {
    const std::string type = canonical(cfg.type);
    Section s(cfg, file_);
    if (const char* what = non_classification(type)) {
      s.fail(std::string("is ") + what + "; convnet imports Darknet's classification networks: [net], " +
             "[convolutional], [connected], [local], [maxpool], [avgpool], [dropout], [softmax], [shortcut], " +
             "[route], [crop] (first) and [cost]");
    }
    const Volume in = index == 0 ? input_ : out_.back();
    lines_.clear();
    Volume out;
    if (type == "convolutional") {
      out = convolutional(s, index, in);
    } else if (type == "connected") {
      out = connected(s, index, in);
    } else if (type == "local") {
      out = local(s, index, in);
    } else if (type == "maxpool") {
      out = maxpool(s, index, in);
    } else if (type == "avgpool") {
      require_image(s, in);
      out = {in.c, 1, 1};
      lines_.push_back({0, "avgpool" + std::to_string(index), "globalavgpool", {}});
    } else if (type == "dropout") {
      const double p = s.real("probability", 0.5);
      if (p < 0 || p >= 1) s.fail("probability=" + number(p) + " must be in [0, 1)");
      out = in;
      lines_.push_back({0, "dropout" + std::to_string(index), "dropout" + (p == 0.5 ? "" : " p " + number(p)), {}});
    } else if (type == "softmax") {
      out = softmax(s, index, in);
    } else if (type == "shortcut") {
      out = shortcut(s, index, in);
    } else if (type == "route") {
      out = route(s, index);
    } else if (type == "cost") {
      s.ignore({"type", "scale", "ratio", "noobject_scale", "thresh"});  // the loss: no inference effect
      out = in;
    } else if (type == "crop") {
      out = crop(s, index, in);
    } else {
      s.fail("is not a Darknet section convnet knows");
    }
    s.finish();
    out_.push_back(out);
    if (lines_.empty()) {
      names_.push_back(index == 0 ? "input" : names_.back());
      return;
    }
    lines_.back().comment = "[" + std::to_string(index) + "] " + volume_text(out) + lines_.back().comment;
    names_.push_back(output_name_.empty() ? lines_.back().name : output_name_);
    items_.push_back({body_first_ >= 0 ? body_first_ : index, index, lines_});
    output_name_.clear();
    body_first_ = -1;
  }

  void require_image(const Section& s, const Volume& in) const {
    if (in.vector) s.fail("needs an image input, but the layer before gives a vector of " + std::to_string(in.c));
  }

  // Darknet's convolution output: (in + 2*padding - size)/stride + 1, rounded down.
  int64_t window_out(const Section& s, int64_t in, int64_t size, int64_t stride, int64_t pads, const char* axis) const {
    const int64_t span = checked_add(in, pads, "the padded input") - size;
    if (span < 0) {
      s.fail("a window of " + std::to_string(size) + " does not fit the " + axis + " " + std::to_string(in) +
             " padded by " + std::to_string(pads) + " in all");
    }
    return span / stride + 1;
  }

  // The activation line; returns the factor to fold into the layer's weights (ramp = 1.1 * leaky).
  float activation(Section& s, int index, const char* fallback, bool can_fold) {
    const std::string a = s.word("activation", fallback);
    const std::string i = std::to_string(index);
    if (a == "linear") return 1.0f;
    if (a == "relu") {
      lines_.push_back({0, "relu" + i, "relu", {}});
    } else if (a == "leaky") {
      lines_.push_back({0, "leaky" + i, "leakyrelu slope 0.1", {}});
    } else if (a == "logistic") {
      lines_.push_back({0, "sigmoid" + i, "sigmoid", {}});
    } else if (a == "tanh") {
      lines_.push_back({0, "tanh" + i, "tanh", {}});
    } else if (a == "elu") {
      lines_.push_back({0, "elu" + i, "elu", {}});
    } else if (a == "ramp" && can_fold) {
      // ramp(x) = x*(x>0) + 0.1x = 1.1 * leaky(x, slope 1/11), and 1.1 * leaky(z) = leaky(1.1 z).
      lines_.push_back({0, "ramp" + i, "leakyrelu slope " + number(1.0 / 11.0), " (ramp: weights x1.1)"});
      return 1.1f;
    } else {
      s.fail("activation=" + shown(a) + " is not supported" +
             (a == "ramp" ? " here (it folds into the weights of a convolutional, connected or local layer)" : "") +
             "; convnet translates linear, relu, leaky, logistic, tanh, elu and ramp");
    }
    return 1.0f;
  }

  // Batch norm after a weight layer: Darknet's layer adds its biases after the normalisation.
  void batch_norm_runs(int index, int64_t n, LayerWeights& w) {
    const std::string bn = "bn" + std::to_string(index);
    lines_.push_back({0, bn, "batchnorm eps " + number(kBatchNormEps), {}});
    w.runs.push_back({bn + ".weight", {n}, WeightRun::Kind::Plain, 1.0f});
    w.runs.push_back({bn + ".running_mean", {n}, WeightRun::Kind::Plain, 1.0f});
    w.runs.push_back({bn + ".running_var", {n}, WeightRun::Kind::RollingVariance, 1.0f});
  }

  Filters read_filters(Section& s, const Volume& in) const {
    require_image(s, in);
    return {s.integer("filters", 1, 1), s.integer("size", 1, 1), s.integer("stride", 1, 1), 0};
  }

  // The layer line "KIND N FxF [stride S] [pad P]EXTRA [round floor]" and the output volume.
  Volume filter_line(const Section& s, const std::string& name, const std::string& kind, const Filters& f,
                     const Volume& in, const std::string& extra) {
    const int64_t pads = checked_mul(2, f.padding, "the padding");
    const Volume out{f.n, window_out(s, in.h, f.size, f.stride, pads, "height"),
                     window_out(s, in.w, f.size, f.stride, pads, "width")};
    std::string body = kind + " " + std::to_string(f.n) + " " + std::to_string(f.size) + "x" + std::to_string(f.size);
    if (f.stride != 1) body += " stride " + std::to_string(f.stride);
    if (f.padding != 0) body += " pad " + std::to_string(f.padding);
    body += extra;
    if ((in.h + pads - f.size) % f.stride != 0 || (in.w + pads - f.size) % f.stride != 0) body += " round floor";
    lines_.push_back({0, name, body, {}});
    return out;
  }

  Volume convolutional(Section& s, int index, const Volume& in) {
    Filters f = read_filters(s, in);
    const int64_t n = f.n, size = f.size;
    const int64_t groups = s.integer("groups", 1, 1);
    f.padding = s.integer("padding", 0, 0);
    if (s.integer("pad", 0, 0) != 0) f.padding = size / 2;
    const bool bn = s.integer("batch_normalize", 0, 0, 1) == 1;
    for (const char* key : {"binary", "xnor", "flipped"}) {
      if (s.integer(key, 0, 0, 1) != 0) s.fail(std::string(key) + "=1 convolutions are not supported");
    }
    if (in.c % groups != 0 || n % groups != 0) {
      s.fail("groups=" + std::to_string(groups) + " must divide the input depth " + std::to_string(in.c) +
             " and filters=" + std::to_string(n));
    }
    const std::string i = std::to_string(index);
    const std::string extra = (groups != 1 ? " groups " + std::to_string(groups) : "") + (bn ? " bias false" : "");
    const Volume out = filter_line(s, "conv" + i, "conv", f, in, extra);
    LayerWeights w{index, "convolutional", s.line(), {}};
    const float scale = fold_activation(s, index, bn, n, w, "conv" + i);
    w.runs.push_back({"conv" + i + ".weight", {n, in.c / groups, size, size}, WeightRun::Kind::Plain, scale});
    weights_.push_back(std::move(w));
    return out;
  }

  // The biases (and batch norm) of a weight layer, then its activation; the runs before the weights.
  float fold_activation(Section& s, int index, bool bn, int64_t n, LayerWeights& w, const std::string& layer) {
    LayerWeights bn_runs;
    if (bn) batch_norm_runs(index, n, bn_runs);
    const float scale = activation(s, index, "logistic", true);
    w.runs.push_back({(bn ? "bn" + std::to_string(index) : layer) + ".bias", {n}, WeightRun::Kind::Plain, scale});
    for (WeightRun& run : bn_runs.runs) {
      if (run.parameter.ends_with(".weight")) run.scale = scale;
      w.runs.push_back(run);
    }
    return scale;
  }

  Volume connected(Section& s, int index, const Volume& in) {
    const int64_t outputs = s.integer("output", 1, 1);
    const bool bn = s.integer("batch_normalize", 0, 0, 1) == 1;
    const int64_t inputs = checked_product(std::initializer_list<int64_t>{in.c, in.h, in.w}, "the connected inputs");
    const std::string i = std::to_string(index);
    lines_.push_back({0, "fc" + i, "fc " + std::to_string(outputs) + (bn ? " bias false" : ""), {}});
    // File order: biases, weights, then scales, rolling mean and variance.
    LayerWeights w{index, "connected", s.line(), {}};
    LayerWeights after;
    if (bn) batch_norm_runs(index, outputs, after);
    const float scale = activation(s, index, "logistic", true);
    w.runs.push_back({(bn ? "bn" + i : "fc" + i) + ".bias", {outputs}, WeightRun::Kind::Plain, scale});
    w.runs.push_back({"fc" + i + ".weight", {outputs, inputs}, WeightRun::Kind::FcWeight, scale});
    for (WeightRun& run : after.runs) {
      if (run.parameter.ends_with(".weight")) run.scale = scale;
      w.runs.push_back(run);
    }
    weights_.push_back(std::move(w));
    return {outputs, 1, 1, true};
  }

  Volume local(Section& s, int index, const Volume& in) {
    Filters f = read_filters(s, in);
    const int64_t n = f.n, size = f.size;
    const int64_t pad = s.integer("pad", 0, 0);
    // local_layer.c sizes the output as (in - 1)/stride + 1 when pad != 0 but pads by `pad` pixels:
    // the two agree only when 2*pad = size - 1.
    if (pad != 0 && 2 * pad != size - 1) {
      s.fail("pad=" + std::to_string(pad) + " with size=" + std::to_string(size) +
             ": Darknet's local layer is consistent only with pad=0 or 2*pad = size - 1");
    }
    f.padding = pad;
    const std::string i = std::to_string(index);
    const Volume out = filter_line(s, "local" + i, "local", f, in, "");
    const float scale = activation(s, index, "logistic", true);
    LayerWeights w{index, "local", s.line(), {}};
    w.runs.push_back({"local" + i + ".bias", {n, out.h, out.w}, WeightRun::Kind::Plain, scale});
    w.runs.push_back({"local" + i + ".weight", {out.h, out.w, n, in.c, size, size}, WeightRun::Kind::Plain, scale});
    weights_.push_back(std::move(w));
    return out;
  }

  // maxpool_layer.c: out = (in + padding - size)/stride + 1, windows start padding/2 before the
  // input; the bottom/right padding written is what the last window reads.
  Volume maxpool(Section& s, int index, const Volume& in) {
    require_image(s, in);
    const int64_t stride = s.integer("stride", 1, 1);
    const int64_t size = s.integer("size", stride, 1);
    const int64_t padding = s.integer("padding", size - 1, 0);
    const int64_t begin = padding / 2;
    const Volume out{in.c, window_out(s, in.h, size, stride, padding, "height"),
                     window_out(s, in.w, size, stride, padding, "width")};
    const int64_t end_h = (out.h - 1) * stride + size - in.h - begin;
    const int64_t end_w = (out.w - 1) * stride + size - in.w - begin;
    const int64_t most = std::max({begin, end_h, end_w});
    if (most > size / 2) {
      s.fail("padding=" + std::to_string(padding) + " pads " + std::to_string(most) + " on a side of a window of " +
             std::to_string(size) + "; convnet, like PyTorch, pads at most half the window");
    }
    std::string body = "maxpool " + std::to_string(size) + "x" + std::to_string(size);
    if (stride != size) body += " stride " + std::to_string(stride);
    if (begin != 0) body += " pad " + std::to_string(begin);
    const int64_t eh = std::max<int64_t>(end_h, 0), ew = std::max<int64_t>(end_w, 0);
    if (eh != begin || ew != begin) {
      body += " pad_end " + (eh == ew ? std::to_string(eh) : std::to_string(eh) + "x" + std::to_string(ew));
    }
    if (end_h < 0 || end_w < 0) body += " round floor";  // the last rows or columns are never read
    lines_.push_back({0, "maxpool" + std::to_string(index), body, {}});
    return out;
  }

  Volume softmax(Section& s, int index, const Volume& in) {
    if (s.integer("groups", 1, 1) != 1) s.fail("groups other than 1 are not supported");
    if (s.real("temperature", 1.0) != 1.0) s.fail("temperature other than 1 is not supported");
    if (s.has("tree")) s.fail("tree= (hierarchical softmax) is not supported");
    if (s.integer("spatial", 0, 0, 1) != 0) s.fail("spatial=1 is not supported");
    s.ignore({"noloss"});
    Volume out = in;
    // Darknet normalises over all c*h*w values; convnet's softmax works per position.
    if (!in.vector && in.h * in.w > 1) {
      lines_.push_back({0, "flatten" + std::to_string(index), "flatten", {}});
      out = {checked_product(std::initializer_list<int64_t>{in.c, in.h, in.w}, "the softmax inputs"), 1, 1, true};
    }
    lines_.push_back({0, "softmax" + std::to_string(index), "softmax", {}});
    return out;
  }

  int earlier_layer(Section& s, int index, int64_t value, const char* key) const {
    const int64_t target = value < 0 ? index + value : value;
    if (target < 0 || target >= index) {
      s.fail(std::string(key) + "=" + std::to_string(value) + " refers to layer " + std::to_string(target) +
             "; this is layer " + std::to_string(index) + ", which can read layers 0 to " + std::to_string(index - 1));
    }
    return static_cast<int>(target);
  }

  Volume route(Section& s, int index) {
    std::vector<int> from;
    for (int64_t value : s.integers("layers")) from.push_back(earlier_layer(s, index, value, "layers"));
    if (from.size() == 1) {
      s.fail("of one layer (a branch from layer " + std::to_string(from[0]) +
             ") is not supported: convnet's model language reads an earlier tensor only through add, mul or concat");
    }
    Volume out{0, out_[static_cast<size_t>(from[0])].h, out_[static_cast<size_t>(from[0])].w};
    std::string body = "concat";
    for (int f : from) {
      const Volume& v = out_[static_cast<size_t>(f)];
      if (v.vector || v.h != out.h || v.w != out.w) {
        s.fail("concatenates layer " + std::to_string(f) + "'s " + volume_text(v) + " with layer " +
               std::to_string(from[0]) + "'s " + volume_text(out_[static_cast<size_t>(from[0])]) +
               ": the images must have the same height and width");
      }
      out.c = checked_add(out.c, v.c, "the route's depth");
      body += " " + names_[static_cast<size_t>(f)];
    }
    lines_.push_back({0, "route" + std::to_string(index), body, {}});
    return out;
  }

  Volume shortcut(Section& s, int index, const Volume& in) {
    const int from = earlier_layer(s, index, s.required_integer("from", -kMaxInt), "from");
    if (s.real("alpha", 1.0) != 1.0 || s.real("beta", 1.0) != 1.0)
      s.fail("alpha and beta other than 1 are not supported");
    const Volume& x = out_[static_cast<size_t>(from)];
    const std::string i = std::to_string(index);
    if (x == in) {
      lines_.push_back({0, "shortcut" + i, "add " + names_.back() + " " + names_[static_cast<size_t>(from)], {}});
      (void)activation(s, index, "linear", false);
      return in;
    }
    // shortcut_cpu adds x sampled every `stride` pixels into the first channels: option A.
    const int64_t stride = x.vector || in.vector || in.h == 0 ? 0 : x.h / in.h;
    if (stride < 1 || x.h != stride * in.h || x.w != stride * in.w || x.c > in.c) {
      s.fail("adds layer " + std::to_string(from) + "'s " + volume_text(x) + " to layer " + std::to_string(index - 1) +
             "'s " + volume_text(in) + ": convnet translates equal shapes, or the first subsampled by a whole stride " +
             "and with no more channels (zero-padded)");
    }
    (void)activation(s, index, "linear", false);
    const std::vector<Line> activation_line = std::move(lines_);
    lines_.clear();
    std::vector<Line> body = take_body(s, from, index);
    lines_.push_back({0, "", "residual",
                      " layer " + i + ", a shortcut: layers " + std::to_string(from + 1) + " to " +
                          std::to_string(index - 1) + " added to layer " + std::to_string(from) + "'s output"});
    for (Line& line : body) {
      ++line.indent;
      lines_.push_back(line);
    }
    lines_.push_back({0, "", "shortcut", {}});
    if (stride > 1)
      lines_.push_back({1, "subsample" + i, "maxpool 1x1 stride " + std::to_string(stride) + " round floor", {}});
    if (x.c < in.c) lines_.push_back({1, "pad" + i, "padchannels " + std::to_string(in.c), {}});
    const std::string add = residuals_ == 0 ? "add" : "add" + std::to_string(residuals_);
    ++residuals_;
    lines_.push_back({0, "", "end", activation_line.empty() ? " (" + add + ")" : ""});
    for (const Line& line : activation_line) lines_.push_back(line);
    if (activation_line.empty()) output_name_ = add;
    return in;
  }

  // Removes the items of layers from+1 .. index-1 (the residual's body) and returns their lines.
  std::vector<Line> take_body(const Section& s, int from, int index) {
    size_t k = items_.size();
    while (k > 0 && items_[k - 1].first > from) --k;
    if (k > 0 && items_[k - 1].last > from) {
      s.fail("needs a residual structure around layers " + std::to_string(from + 1) + " to " +
             std::to_string(index - 1) + ", which would cut the structure of layers " +
             std::to_string(items_[k - 1].first) + " to " + std::to_string(items_[k - 1].last));
    }
    std::vector<Line> body;
    for (size_t j = k; j < items_.size(); ++j) body.insert(body.end(), items_[j].lines.begin(), items_[j].lines.end());
    if (body.empty()) s.fail("needs layers between layer " + std::to_string(from) + " and itself");
    int depth = 1;
    for (const Line& line : body) depth = std::max(depth, line.indent + 1);
    if (depth > model::kMaxNesting) {
      s.fail("would nest residual structures " + std::to_string(depth) + " deep, more than the model language's " +
             std::to_string(model::kMaxNesting));
    }
    body_first_ = items_[k].first;
    items_.resize(k);
    return body;
  }

  Volume crop(Section& s, int index, const Volume& in) {
    if (index != 0) s.fail("is supported only as the first layer (it crops the input image)");
    const int64_t h = s.required_integer("crop_height", 1), w = s.required_integer("crop_width", 1);
    if (h > in.h || w > in.w) {
      s.fail("crops " + std::to_string(h) + "x" + std::to_string(w) + " out of a " + std::to_string(in.h) + "x" +
             std::to_string(in.w) + " input");
    }
    s.ignore({"flip", "angle", "saturation", "exposure", "shift", "noadjust"});
    crop_note_ = "[0] crop: the network reads the centre " + std::to_string(h) + "x" + std::to_string(w) + " of the " +
                 std::to_string(in.h) + "x" + std::to_string(in.w) + " image" +
                 (s.integer("noadjust", 0, 0, 1) == 0 ? ", scaled to [-1, 1] (x*2 - 1) as Darknet's crop does" : "");
    input_ = {in.c, h, w};
    return input_;
  }

  std::string text() const {
    const std::string stem = std::filesystem::path(file_).stem().string();
    std::string name;
    for (char c : stem) name += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ? c : '_';
    std::string out =
        "# Translated by convnet from " + shown(std::filesystem::path(file_).filename().string()) +
        ", a Darknet cfg. Layers are named after Darknet's layer\n"
        "# index (conv3, bn3 and leaky3 are layer 3); '# [N] HxWxC' ends layer N with Darknet's volume.\n";
    if (!crop_note_.empty()) out += "# " + crop_note_ + "\n";
    out += "network " +
           (name.empty() || !std::isalpha(static_cast<unsigned char>(name[0])) ? "darknet_" + name : name) +
           "\ninput " + std::to_string(input_.c) + "x" + std::to_string(input_.h) + "x" + std::to_string(input_.w) +
           "\n\n";
    // Names in one column, comments in another (past the longest line, at most column 72).
    size_t width = 0, comment_column = 0;
    for (const Item& item : items_) {
      for (const Line& line : item.lines)
        width = std::max(width, 2 * static_cast<size_t>(line.indent) + line.name.size());
    }
    for (const Item& item : items_) {
      for (const Line& line : item.lines) comment_column = std::max(comment_column, width + 3 + line.body.size());
    }
    comment_column = std::min<size_t>(comment_column, 72);
    for (const Item& item : items_) {
      for (const Line& line : item.lines) {
        std::string row(2 * static_cast<size_t>(line.indent), ' ');
        row += line.name;
        row += std::string(width + 1 - row.size(), ' ') + line.body;
        if (!line.comment.empty()) {
          row += std::string(row.size() + 1 < comment_column ? comment_column - row.size() : 1, ' ') + "#" +
                 (line.comment[0] == ' ' ? "" : " ") + line.comment;
        }
        out += row + "\n";
      }
    }
    return out;
  }

  std::string file_;
  Volume input_;
  std::vector<Volume> out_;         // per Darknet layer
  std::vector<std::string> names_;  // per Darknet layer: the node holding its output
  std::vector<Item> items_;
  std::vector<Line> lines_;  // the current layer's lines
  std::vector<LayerWeights> weights_;
  std::string crop_note_;
  int residuals_ = 0;
  std::string output_name_;  // the current layer's output when not its last line's name (a residual's add)
  int body_first_ = -1;      // the current layer's first Darknet layer when it wraps earlier ones
};

}  // namespace

bool is_cfg_path(const std::string& path) { return path.size() > 4 && path.ends_with(".cfg"); }

bool is_weights_path(const std::string& path) { return path.size() > 8 && path.ends_with(".weights"); }

Translation translate_cfg(const std::string& text, const std::string& file) {
  return Translator(file).run(read_cfg(text, file));
}

}  // namespace convnet::darknet
