// `convnet explain`: one layer's numbers, each with its formula and the numbers put in.
#include <algorithm>
#include <sstream>

#include "convnet/analysis/summary.hpp"
#include "convnet/error.hpp"
#include "convnet/text.hpp"

namespace convnet {
namespace {

// Up to five layer names nearest to `wanted` (edit distance at most a third of its length, min 2).
std::string closest_names(const Net& net, const std::string& wanted) {
  std::vector<std::pair<size_t, std::string>> scored;
  const size_t limit = std::max<size_t>(2, wanted.size() / 3);
  for (const Node& node : net.nodes()) {
    const size_t d = edit_distance(wanted, node.name);
    if (d <= limit) scored.emplace_back(d, node.name);
  }
  std::stable_sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string out;
  for (size_t i = 0; i < scored.size() && i < 5; ++i) out += (i ? ", " : "") + scored[i].second;
  return out;
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
  if (id < 0) {
    const std::string near = closest_names(net, layer_name);
    throw SpecError("network '" + net.name() + "' has no layer '" + layer_name + "'" +
                    (near.empty() ? std::string("; 'convnet summary' lists the layers") : "; similar: " + near));
  }
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
    if (!p.is_buffer) learnable += p.numel();
  }
  out << "  learnable parameters: " << with_commas(learnable) << "\n";
  const int64_t macs = node.layer->macs(inputs, node.output);
  if (macs > 0) {
    out << "  FLOPs: 2 * MACs = 2 * " << with_commas(macs) << " = " << with_commas(2 * macs) << "\n";
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
