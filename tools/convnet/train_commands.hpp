// `convnet train`, `convnet eval` and `convnet predict`.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace convnet {

/// Registers the three subcommands on `app`; the returned function runs whichever was parsed
/// (returning its exit code: 130 when SIGINT/SIGTERM stopped a training), or returns -1 when none
/// of them was. `program` (argv[0]) starts the resume command an interrupted training prints.
std::function<int()> add_train_commands(CLI::App& app, const std::string& program);

}  // namespace convnet
