// `convnet import` (a Darknet .cfg with its .weights, or an ONNX file, written as DIR/model.cnet and
// DIR/weights.safetensors) and `convnet export` (a network with its weights as ONNX).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace convnet {

/// Registers the commands on `app`; the returned function runs whichever was parsed and returns its
/// exit code, or -1 when none of them was.
std::function<int()> add_interop_commands(CLI::App& app);

}  // namespace convnet
