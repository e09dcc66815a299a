// `convnet train`, `convnet eval` and `convnet predict`.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace convnet {

/// Registers the three subcommands on `app`; the returned function runs whichever was parsed
/// (returning its exit code), or returns -1 when none of them was.
std::function<int()> add_train_commands(CLI::App& app);

}  // namespace convnet
