// Loading networks from the model language: a zoo name or a .cnet file -> a built Net.
#pragma once

#include <optional>
#include <string>

#include "convnet/model/ast.hpp"
#include "convnet/net.hpp"

namespace convnet {

struct LoadOptions {
  std::optional<Shape> input_shape;  // replaces the first input's declared shape (--input)
};

/// Parses a command line's --input value ("3x32x32"); throws SpecError naming --input.
[[nodiscard]] Shape parse_input_option(const std::string& text);

/// Expands blocks and structures of a parsed model into a graph, inferring every shape.
[[nodiscard]] Net build_net(const model::ModelAst& ast, const LoadOptions& options = {});

/// Parses and builds model text; `file` names it in error messages.
[[nodiscard]] Net load_model_text(const std::string& text, const std::string& file, const LoadOptions& options = {});

/// The text of a zoo model (by name) or of a model file (by path); throws IoError if neither.
/// A Darknet .cfg or an ONNX file is translated into the model language (interop/darknet.hpp, onnx.hpp).
/// `file` receives the name to use in messages (the path, or "NAME.cnet").
[[nodiscard]] std::string read_model_source(const std::string& name_or_path, std::string& file);

/// read_model_source + load_model_text.
[[nodiscard]] Net load_model(const std::string& name_or_path, const LoadOptions& options = {});

}  // namespace convnet
