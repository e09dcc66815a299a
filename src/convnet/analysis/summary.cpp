// Summary rows and totals, the text table and the JSON form.
#include "convnet/analysis/summary.hpp"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "convnet/error.hpp"

namespace convnet {
namespace {

// One layer's row, added to the totals; every sum is checked.
void add_row(Summary& s, const Net& net, const Node& node) {
  LayerRow row;
  row.name = node.name;
  row.kind = node.layer->kind();
  row.args = node.layer->args();
  row.output = node.output;
  for (const ParamSpec& p : node.params) {
    int64_t& count = p.is_buffer ? row.buffers : p.is_bias ? row.biases : row.weights;
    count = checked_add(count, p.numel(), "the layer's parameter count");
  }
  row.in_place = node.layer->in_place();
  row.activations = row.in_place ? 0 : node.output.numel();
  row.macs = node.layer->macs(net.input_shapes(node), node.output);
  row.receptive_field = node.receptive_field;
  (void)checked_add(row.weights, row.biases, "the layer's parameter count");
  s.parameters = checked_add(s.parameters, row.parameters(), "the network's parameter count");
  s.parameters_without_biases += row.weights;
  s.buffers = checked_add(s.buffers, row.buffers, "the network's buffer count");
  s.activations = checked_add(s.activations, row.activations, "the network's activation count");
  s.macs = checked_add(s.macs, row.macs, "the network's multiply-add count");
  s.rows.push_back(std::move(row));
}

}  // namespace

Summary summarize(const Net& net, int64_t batch) {
  if (batch < 1) throw SpecError("the batch must be at least 1, got " + std::to_string(batch));
  Summary s;
  s.network = net.name();
  s.batch = batch;
  for (const Node& node : net.nodes()) {
    try {
      add_row(s, net, node);
    } catch (const SizeError& e) {
      throw SizeError(node.name + " (" + node.layer->kind() + "): " + e.what());
    }
  }
  check_float_bytes({s.activations, batch, 2},
                    "a batch of " + with_commas(batch) + " images (activations, forward + backward)");
  (void)s.flops();  // a total past int64 throws here, not while printing
  return s;
}

namespace {


std::string pad_right(const std::string& s, size_t width) { return s.size() >= width ? s : s + std::string(width - s.size(), ' '); }
std::string pad_left(const std::string& s, size_t width) { return s.size() >= width ? s : std::string(width - s.size(), ' ') + s; }

}  // namespace

std::string format_summary(const Summary& s) {
  std::vector<std::vector<std::string>> table;
  table.push_back({"layer", "kind", "output", "params", "activations", "MACs", "receptive field"});
  for (const LayerRow& r : s.rows) {
    table.push_back({r.name, r.kind, r.output.volume_string(), with_commas(r.parameters()),
                     r.in_place ? "(in place)" : with_commas(r.activations), with_commas(r.macs),
                     receptive_field_string(r.receptive_field)});
  }
  std::vector<size_t> widths(table[0].size(), 0);
  for (const auto& row : table) {
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  }
  std::ostringstream out;
  out << "network " << s.network << " (batch " << s.batch << "; output written HxWxC as in the notes; float32)\n\n";
  for (size_t i = 0; i < table.size(); ++i) {
    const auto& row = table[i];
    out << pad_right(row[0], widths[0]) << "  " << pad_right(row[1], widths[1]) << "  " << pad_left(row[2], widths[2]);
    for (size_t c = 3; c < 6; ++c) out << "  " << pad_left(row[c], widths[c]);
    out << "  " << row[6] << "\n";
    if (i == 0) {
      size_t total = 0;
      for (size_t w : widths) total += w + 2;
      out << std::string(total - 2, '-') << "\n";
    }
  }
  const double fwd = static_cast<double>(s.forward_bytes());
  out << "\n";
  out << "parameters              " << pad_left(with_commas(s.parameters), 16) << "  (" << compact(static_cast<double>(s.parameters)) << ")\n";
  out << "  without biases        " << pad_left(with_commas(s.parameters_without_biases), 16) << "\n";
  if (s.buffers > 0) out << "  buffers (not learned) " << pad_left(with_commas(s.buffers), 16) << "  running statistics\n";
  out << "activations per image   " << pad_left(with_commas(s.activations), 16) << "  (" << compact(static_cast<double>(s.activations)) << " values)\n";
  out << "activation memory       " << pad_left(compact(fwd, true), 16) << "  forward, batch " << s.batch << "\n";
  out << "                        " << pad_left(compact(2 * fwd, true), 16) << "  forward + backward (a gradient per activation)\n";
  out << "parameter memory        " << pad_left(compact(4.0 * (static_cast<double>(s.parameters) + static_cast<double>(s.buffers)), true), 16) << "\n";
  out << "MACs per image          " << pad_left(with_commas(s.macs), 16) << "  (" << compact(static_cast<double>(s.macs)) << " multiply-adds)\n";
  out << "FLOPs per image         " << pad_left(with_commas(s.flops()), 16) << "  (" << compact(static_cast<double>(s.flops())) << ", 2 per MAC)\n";
  return out.str();
}

nlohmann::json summary_json(const Summary& s) {
  nlohmann::json layers = nlohmann::json::array();
  for (const LayerRow& r : s.rows) {
    layers.push_back({{"name", r.name},
                      {"kind", r.kind},
                      {"args", r.args},
                      {"output", r.output.dims()},
                      {"output_volume", r.output.volume_string()},
                      {"parameters", r.parameters()},
                      {"weights", r.weights},
                      {"biases", r.biases},
                      {"buffers", r.buffers},
                      {"activations", r.activations},
                      {"in_place", r.in_place},
                      {"macs", r.macs},
                      {"receptive_field",
                       {{"size", {r.receptive_field.size_h, r.receptive_field.size_w}},
                        {"step", {r.receptive_field.jump_h, r.receptive_field.jump_w}},
                        {"global", r.receptive_field.global}}}});
  }
  return {{"network", s.network},
          {"batch", s.batch},
          {"layers", layers},
          {"totals",
           {{"parameters", s.parameters},
            {"parameters_without_biases", s.parameters_without_biases},
            {"buffers", s.buffers},
            {"activations_per_image", s.activations},
            {"activation_bytes_forward", s.forward_bytes()},
            {"activation_bytes_forward_backward", s.forward_backward_bytes()},
            {"macs_per_image", s.macs},
            {"flops_per_image", s.flops()}}}};
}

std::string receptive_field_string(const ReceptiveField& rf) {
  if (rf.global) return "global";
  std::string size = std::to_string(rf.size_h) + "x" + std::to_string(rf.size_w);
  std::string step = rf.jump_h == rf.jump_w ? std::to_string(rf.jump_h)
                                            : std::to_string(rf.jump_h) + "x" + std::to_string(rf.jump_w);
  return size + " /" + step;
}

}  // namespace convnet
