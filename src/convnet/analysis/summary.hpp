// The analyser: per-layer output volume, parameters, activation memory, multiply-adds and
// receptive field of a built Net, with totals; as a table, as JSON, and explained with formulas.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "convnet/checked.hpp"
#include "convnet/net.hpp"
#include "convnet/text.hpp"

namespace convnet {

/// Counting conventions (docs/analysis.md): activations are the values a layer newly stores per
/// image (in-place layers such as ReLU store none; the input image counts); MACs count only
/// multiplications by weights (conv, local, tiled, fc); FLOPs = 2 * MACs; float32 = 4 bytes.
struct LayerRow {
  std::string name;
  std::string kind;
  std::string args;
  Shape output;
  int64_t weights = 0;      // learnable, not biases (BN's scale and shift count here)
  int64_t biases = 0;       // conv/fc/local/tiled biases
  int64_t buffers = 0;      // running statistics: stored, not learned
  int64_t activations = 0;  // values per image
  int64_t macs = 0;         // per image
  ReceptiveField receptive_field;
  bool in_place = false;
  [[nodiscard]] int64_t parameters() const { return weights + biases; }
};

struct Summary {
  std::string network;
  int64_t batch = 1;
  std::vector<LayerRow> rows;
  int64_t parameters = 0;
  int64_t parameters_without_biases = 0;
  int64_t buffers = 0;
  int64_t activations = 0;   // per image
  int64_t macs = 0;          // per image
  // summarize() checks these products fit kMaxBytes (bytes) and int64 (FLOPs).
  [[nodiscard]] int64_t forward_bytes() const { return checked_product(std::initializer_list<int64_t>{activations, 4, batch}); }
  /// Forward + backward: every stored activation also gets a gradient of the same size.
  [[nodiscard]] int64_t forward_backward_bytes() const { return checked_mul(2, forward_bytes()); }
  [[nodiscard]] int64_t flops() const { return checked_mul(2, macs); }
};

/// Throws SizeError (naming the layer, or the batch, and the figure) when a total does not fit
/// int64 or the batch's activations, forward + backward, would pass kMaxBytes.
[[nodiscard]] Summary summarize(const Net& net, int64_t batch = 1);
[[nodiscard]] std::string format_summary(const Summary& summary);
[[nodiscard]] nlohmann::json summary_json(const Summary& summary);

/// "11x11 /4": the receptive field's size and its step on the input, or "global".
[[nodiscard]] std::string receptive_field_string(const ReceptiveField& rf);

/// Every formula behind one layer's numbers, with the numbers put in. Throws SpecError for an
/// unknown layer name (suggesting close names).
[[nodiscard]] std::string explain_layer(const Net& net, const std::string& layer_name);

}  // namespace convnet
