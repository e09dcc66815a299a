// Reading an ONNX file for import (internal to interop/): the ModelProto parsed and checked (opset,
// one data input, initializers of the right size, nodes in an order without cycles), constants
// gathered, and the attribute and constant accessors the operator translation uses.
#pragma once

#include <onnx/onnx_pb.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "convnet/engine/plan.hpp"

namespace convnet::onnx_interop {

/// A constant tensor (an initializer or a Constant node), converted to double; integer data is
/// also kept exactly (a double holds int64 values beyond 2^53, such as Slice's INT64_MAX, only
/// approximately, and 2^63 itself not at all).
struct Constant {
  std::vector<int64_t> dims;
  std::vector<double> values;
  std::vector<int64_t> integers;  // INT64 or INT32 data, exact
  bool integer = false;           // INT64 or INT32 data (shapes, indices)
  int32_t type = 0;      // onnx::TensorProto::DataType
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

/// A QDQ graph's quantization taken out: every DequantizeLinear of a constant (int8 weights, int32
/// biases) becomes an f32 constant under its output's name, and every QuantizeLinear whose readers
/// are all DequantizeLinear is removed with them: their outputs alias the quantized tensor, whose
/// scale s becomes a range the int8 plan gives the same scale back ([0, 255 s] for uint8, [-127 s,
/// 127 s] for int8). Other uses of the two operators, a zero point other than 0 or a scale per
/// channel on an activation are SpecErrors naming the node.
struct QdqFold {
  std::map<std::string, std::string> aliases;     // a removed DequantizeLinear's output -> the tensor
  std::map<std::string, ActivationRange> ranges;  // a quantized tensor -> its range
};
[[nodiscard]] QdqFold fold_quantization(OnnxGraph& g);

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
