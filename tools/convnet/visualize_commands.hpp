// `convnet visualize filters|activations|occlusion|saliency|deconv`, `convnet plot` and
// `convnet report`.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace convnet {

/// Registers the commands on `app`; the returned function runs whichever was parsed and returns its
/// exit code, or -1 when none of them was.
std::function<int()> add_visualize_commands(CLI::App& app);

}  // namespace convnet
