// Option checks for CLI11 with readable bounds ("a whole number from 1 to 1048576", never
// DBL_MAX in 300 digits), the thread limit shared by every command that takes --threads, the
// --precision options, the checks of an output file, and the one-line message for an exception
// that is not a convnet::Error.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include "convnet/engine/plan.hpp"

namespace convnet {

/// --precision f32|bf16|int8 and --emulate, as the inference commands share them.
struct PrecisionOptions {
  std::string precision;  // empty: the model's own (int8 for a quantized model, else f32)
  bool emulate = false;
  void add_to(CLI::App* command, const std::string& int8_note);
  /// The element type asked for (`model_default` when none was); throws SpecError when this CPU
  /// cannot run it fast and --emulate was not given (before any data is read).
  [[nodiscard]] DType dtype(DType model_default = DType::F32) const;
};

/// Accepts a whole number in [min, max]; the message names the bounds and the value given.
[[nodiscard]] CLI::Validator whole_number(int64_t min, int64_t max);

/// The most threads --threads accepts: 16 per core, at most 1024 (the OpenMP runtime crashes
/// on absurd counts such as 100000).
[[nodiscard]] int max_threads();

/// --threads: 0 (all cores) to max_threads().
[[nodiscard]] CLI::Validator thread_count();

/// An output file the command is about to write (-o): a file name ending in `extension` (".png",
/// as the readers name formats: in lower case), not one of the files the command reads (`inputs`, empty ones skipped;
/// compared by identity, so another path to the same file counts): writing it would replace what was read. Throws
/// SpecError naming the output, before any work is done.
void check_output_file(const std::string& out, const std::string& extension, const std::vector<std::string>& inputs);

/// One line for an exception the library did not turn into a convnet::Error, naming `command`:
/// a filesystem error with its paths, a oneDNN error with its status, out of memory, or anything
/// else as an internal error.
[[nodiscard]] std::string describe_exception(std::exception_ptr error, const std::string& command);

}  // namespace convnet
