// `convnet quantize`: post-training int8 quantization of a trained model.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace convnet {

/// Registers the command on `app`; the returned function runs it when parsed and returns its exit
/// code, or -1 when it was not.
std::function<int()> add_quantize_command(CLI::App& app);

}  // namespace convnet
