// Reading an ONNX file for import (internal to interop/): the ModelProto parsed and checked (opset,
// one data input, initializers of the right size, nodes in an order without cycles), constants
// gathered, and the attribute and constant accessors the operator translation uses.
#pragma once

#include <onnx/onnx_pb.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace convnet::onnx_interop {

/// A constant tensor (an initializer or a Constant node), converted to double.
struct Constant {
  std::vector<int64_t> dims;
  std::vector<double> values;
  bool integer = false;  // INT64 or INT32 data (shapes, indices)
};

/// A parsed and checked ONNX graph.
struct OnnxGraph {
  std::string file;  // for messages
  onnx::ModelProto model;
  int64_t opset = 0;
  std::string input;                          // the data input's name
  std::vector<int64_t> input_shape;           // without the batch dimension
  std::vector<const onnx::NodeProto*> nodes;  // in an order where every input comes first
  std::map<std::string, Constant> constants;  // initializers and Constant nodes' outputs
  std::string output;                         // the graph output's name

  /// "node NAME (OpType)", or the node's first output when it has no name.
  [[nodiscard]] static std::string describe(const onnx::NodeProto& node);
};

/// Reads `path`: IoError when it is not a readable ModelProto (or is past 2 GiB); SpecError for
/// an unsupported opset, a graph without exactly one data input and one output, an initializer
/// whose data does not match its dims, a tensor computed twice, a cycle, or an input no one computes.
[[nodiscard]] OnnxGraph read_onnx_graph(const std::string& path);

/// Attribute accessors; `fallback` when absent. A present attribute of another type is a SpecError.
[[nodiscard]] int64_t int_attribute(const OnnxGraph& g, const onnx::NodeProto& node, const char* name,
                                    int64_t fallback);
[[nodiscard]] double float_attribute(const OnnxGraph& g, const onnx::NodeProto& node, const char* name,
                                     double fallback);
[[nodiscard]] std::vector<int64_t> ints_attribute(const OnnxGraph& g, const onnx::NodeProto& node, const char* name,
                                                  std::vector<int64_t> fallback);
[[nodiscard]] std::string string_attribute(const OnnxGraph& g, const onnx::NodeProto& node, const char* name,
                                           const std::string& fallback);

}  // namespace convnet::onnx_interop
