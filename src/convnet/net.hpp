// The static graph: a DAG of named layers in topological order. Building it infers and checks
// every shape, so the analyser reads exactly the graph that runs. NetBuilder is the C++ API.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "convnet/layer.hpp"
#include "convnet/layer_args.hpp"

namespace convnet {

/// One layer of a built graph with everything shape inference found out about it.
struct Node {
  std::string name;                 // full path: "layer1.0.conv1"
  std::unique_ptr<Layer> layer;
  std::vector<int> inputs;          // ids of the nodes it reads (empty for graph inputs)
  SourceLocation where;             // model-file line that made it
  Shape output;                     // per image: (C, H, W) or (F)
  std::vector<ParamSpec> params;    // named "weight", "bias", ... (prefix with name + ".")
  ReceptiveField receptive_field;   // of one output element on the network input
  /// True when some parameter is learnable (has a gradient), not only buffers.
  [[nodiscard]] bool learnable() const;
};

class Net {
 public:
  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] const std::vector<Node>& nodes() const { return nodes_; }
  [[nodiscard]] const Node& node(int id) const { return nodes_.at(static_cast<size_t>(id)); }
  [[nodiscard]] const std::vector<int>& inputs() const { return inputs_; }
  [[nodiscard]] int output() const { return output_; }
  /// Node id by full name, or -1 (a hashed lookup).
  [[nodiscard]] int find(const std::string& name) const;
  /// The output shapes of a node's inputs, in order.
  [[nodiscard]] std::vector<Shape> input_shapes(const Node& node) const;

 private:
  friend class NetBuilder;
  std::string name_;
  std::vector<Node> nodes_;
  std::unordered_map<std::string, int> ids_;  // node id by name
  std::vector<int> inputs_;
  int output_ = -1;
};

/// Builds a Net node by node, inferring each shape as it is added (so errors point at the line).
/// Each node's output and parameters, and the network's running totals of both, must fit
/// kMaxBytes in float32; the node that would pass the limit is refused with the figure.
///   NetBuilder b("tiny");
///   int x = b.input("input", {3, 32, 32});
///   b.add("conv1", std::make_unique<Conv2d>(Conv2dOptions{.out_channels = 10, ...}));
///   Net net = std::move(b).build();
class NetBuilder {
 public:
  explicit NetBuilder(std::string name);

  int input(const std::string& name, Shape shape, SourceLocation where = {});
  /// Adds a layer reading `inputs` (the last added node when empty); returns its id.
  int add(const std::string& name, std::unique_ptr<Layer> layer, std::vector<int> inputs = {},
          SourceLocation where = {});
  [[nodiscard]] const Shape& shape(int id) const;
  [[nodiscard]] int last() const { return static_cast<int>(net_.nodes_.size()) - 1; }
  [[nodiscard]] int find(const std::string& name) const { return net_.find(name); }
  [[nodiscard]] bool empty() const { return net_.nodes_.empty(); }

  /// Finishes the graph; its output is the last node added.
  [[nodiscard]] Net build() &&;

 private:
  Net net_;
  int64_t activation_values_ = 0;  // per image, outputs of the nodes not in place
  int64_t parameter_values_ = 0;   // parameters and buffers
};

}  // namespace convnet
