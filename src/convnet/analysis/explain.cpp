// `convnet explain`: one layer's numbers, each with its formula and the numbers put in.
#include <algorithm>
#include <sstream>

#include "convnet/analysis/summary.hpp"
#include "convnet/error.hpp"
#include "convnet/text.hpp"

namespace convnet {
namespace {

// Caffe's names for the layers of a chain (no branches), as VGG's prototxt files number them:
// convS_I is the I-th convolution of stage S (a stage ends at a pooling layer), poolS the pooling
// that ends it, fcN the fully connected layers numbered on from the last stage. On VGG-16 this gives
// conv1_1 .. conv5_3, pool1 .. pool5 and fc6, fc7, fc8 = classifier.0, .3, .6. Only layers named by
// position get one: a layer the model file names (AlexNet's fc6) is already known by that name.
std::vector<std::pair<std::string, std::string>> caffe_names(const Net& net) {
  std::vector<std::pair<std::string, std::string>> names;  // (Caffe's name, layer name)
  int stage = 1;
  int conv = 0;
  int fc = 0;
  for (const Node& node : net.nodes()) {
    if (node.inputs.size() > 1) return {};
    const std::string kind = node.layer->kind();
    std::string alias;
    if (kind == "conv") {
      alias = "conv" + std::to_string(stage) + "_" + std::to_string(++conv);
    } else if (kind == "maxpool" || kind == "avgpool") {
      alias = "pool" + std::to_string(stage++);
      conv = 0;
    } else if (kind == "fc") {
      alias = "fc" + std::to_string(stage + fc++);
    }
    const std::string last = node.name.substr(node.name.rfind('.') + 1);  // npos + 1 = 0: the whole name
    const bool positional = last.find_first_not_of("0123456789") == std::string::npos;
    if (!alias.empty() && positional) names.emplace_back(alias, node.name);
  }
  return names;
}

// "; did you mean ...?" for a name the network does not have: a layer Caffe's numbering calls so
// ("fc6" -> classifier.0; "conv5" -> conv5_1 .. conv5_3), layers whose last part is the name
// ("conv1" -> layer1.0.conv1, ...), or names within a small edit distance.
std::string suggestion(const Net& net, const std::string& wanted) {
  constexpr size_t kMost = 5;
  std::vector<std::string> layers;
  std::vector<std::string> aliases;
  for (const auto& [alias, layer] : caffe_names(net)) {
    if (layers.size() < kMost && (alias == wanted || alias.rfind(wanted + "_", 0) == 0)) {
      layers.push_back(layer);
      aliases.push_back(alias);
    }
  }
  if (!layers.empty()) {
    std::string as;
    for (size_t i = 0; i < aliases.size(); ++i) as += (i ? ", " : "") + aliases[i];
    return "; did you mean " + either_of(layers) + "? (" + as + " in Caffe's numbering, where stages end at pooling layers)";
  }
  std::vector<std::string> names;
  for (const Node& node : net.nodes()) {
    names.push_back(node.name);
    const size_t dot = node.name.rfind('.');
    if (layers.size() < kMost && dot != std::string::npos && node.name.compare(dot + 1, std::string::npos, wanted) == 0) {
      layers.push_back(node.name);
    }
  }
  if (layers.empty()) layers = closest_words(wanted, names, kMost);
  if (layers.empty()) return "; 'convnet summary' lists the layers";
  return "; did you mean " + either_of(layers) + "?";
}

void line(std::ostringstream& out, const Formula& f) {
  out << "  " << f.quantity << ": " << f.formula << "\n";
  out << "      = " << f.substituted;
  if (f.substituted != f.result) out << " = " << f.result;
  out << "\n";
}

}  // namespace

std::string explain_layer(const Net& net, const std::string& layer_name) {
  const int id = net.find(layer_name);
  if (id < 0) throw SpecError("network '" + net.name() + "' has no layer '" + layer_name + "'" + suggestion(net, layer_name));
  const Node& node = net.node(id);
  const std::vector<Shape> inputs = net.input_shapes(node);
  std::ostringstream out;
  const std::string args = node.layer->args();
  out << node.name << ": " << node.layer->kind() << (args.empty() ? "" : " " + args);
  if (node.where.line > 0) out << "  (" << node.where.str() << ")";
  out << "\n";
  for (size_t i = 0; i < inputs.size(); ++i) {
    out << "  input" << (inputs.size() > 1 ? " " + std::to_string(i + 1) : std::string()) << ": "
        << inputs[i].volume_string() << " from " << net.node(node.inputs[i]).name << "\n";
  }
  out << "  output: " << node.output.volume_string() << "\n";
  if (node.layer->min_inputs() > 0) {
    for (const Formula& f : node.layer->explain(inputs, node.output)) line(out, f);
  }

  const Shape& o = node.output;
  if (node.layer->in_place()) {
    out << "  activations: none new: the layer works in place on its input's "
        << with_commas(o.numel()) << " values\n";
  } else {
    const std::string dims = o.is_volume() ? std::to_string(o.width()) + "*" + std::to_string(o.height()) + "*" +
                                                 std::to_string(o.channels())
                                           : std::to_string(o.numel());
    line(out, {"activations per image", o.is_volume() ? "W2*H2*D2" : "N", dims, with_commas(o.numel())});
    line(out, {"activation memory per image", "values * 4 bytes (float32); x2 with gradients for backward",
               with_commas(o.numel()) + " * 4", compact(4.0 * static_cast<double>(o.numel()), true)});
  }
  int64_t learnable = 0;
  for (const ParamSpec& p : node.params) {
    std::string dims;
    for (size_t i = 0; i < p.dims.size(); ++i) dims += (i ? "x" : "") + std::to_string(p.dims[i]);
    out << "  " << node.name << "." << p.name << ": " << (dims.empty() ? "scalar" : dims) << " = "
        << with_commas(p.numel()) << (p.is_buffer ? " (buffer, not learned)" : "") << "\n";
    if (!p.is_buffer) learnable = checked_add(learnable, p.numel(), "the learnable parameter count");
  }
  out << "  learnable parameters: " << with_commas(learnable) << "\n";
  const int64_t macs = node.layer->macs(inputs, node.output);
  if (macs > 0) {
    out << "  FLOPs: 2 * MACs = 2 * " << with_commas(macs) << " = " << with_commas(checked_mul(2, macs, "the FLOP count")) << "\n";
  }
  const ReceptiveField& rf = node.receptive_field;
  if (rf.global) {
    out << "  receptive field: the whole input (every output reads every input value)\n";
  } else if (!node.inputs.empty()) {
    const ReceptiveField& in = net.node(node.inputs[0]).receptive_field;
    // Recover the window's effective extent and stride from the fields before and after.
    const int64_t extent = (rf.size_w - in.size_w) / in.jump_w + 1;
    const int64_t stride = rf.jump_w / in.jump_w;
    out << "  receptive field: R2 = R1 + (F - 1)*J1, step J2 = J1*S (F, S: effective extent and stride)\n";
    out << "      = " << in.size_w << " + (" << extent << " - 1)*" << in.jump_w << " = " << rf.size_w
        << (rf.size_h != rf.size_w ? " wide (" + std::to_string(rf.size_h) + " high)" : std::string())
        << "; J2 = " << in.jump_w << "*" << stride << " = " << rf.jump_w << " pixels of the input\n";
  }
  return out.str();
}

}  // namespace convnet
