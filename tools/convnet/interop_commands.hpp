// `convnet import`: a model of another format (a Darknet .cfg, with its .weights) written as a
// model file (model.cnet) and convnet weights (weights.safetensors).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace convnet {

/// Registers the commands on `app`; the returned function runs whichever was parsed and returns its
/// exit code, or -1 when none of them was.
std::function<int()> add_interop_commands(CLI::App& app);

}  // namespace convnet
