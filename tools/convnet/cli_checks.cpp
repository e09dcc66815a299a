// Readable CLI11 validators, the --precision options, output file checks, and messages for foreign exceptions.
#include "cli_checks.hpp"

#include <omp.h>

#include <algorithm>
#include <charconv>
#include <dnnl.hpp>
#include <filesystem>
#include <new>
#include <string>

#include "convnet/error.hpp"

namespace convnet {

CLI::Validator whole_number(int64_t min, int64_t max) {
  const std::string expected = "expected a whole number from " + std::to_string(min) + " to " + std::to_string(max);
  return CLI::Validator(
      [=](std::string& input) -> std::string {
        int64_t value = 0;
        const auto [end, error] = std::from_chars(input.data(), input.data() + input.size(), value);
        if (error != std::errc() || end != input.data() + input.size() || value < min || value > max) {
          return expected + ", got " + input;
        }
        return "";
      },
      "INT in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
}

void PrecisionOptions::add_to(CLI::App* command, const std::string& int8_note) {
  command->add_option("--precision", precision,
                      "f32, bf16 (bf16 activations and weights, f32 accumulation) or int8 (" + int8_note +
                          "); logits stay f32")
      ->check(CLI::IsMember({"f32", "bf16", "int8"}));
  command->add_flag("--emulate", emulate,
                    "run a precision this CPU has no fast instructions for (slower than f32; oneDNN emulates bf16 "
                    "without AVX512_BF16)");
}

DType PrecisionOptions::dtype(DType model_default) const {
  const DType dtype = precision.empty() ? model_default : parse_dtype(precision, "--precision");
  if (const std::string why = dtype_unsupported_reason(dtype); !why.empty() && !emulate) {
    throw SpecError("--precision " + std::string(dtype_name(dtype)) + ": " + why + "; add --emulate to run it anyway");
  }
  return dtype;
}

int max_threads() { return std::min(1024, 16 * std::max(1, omp_get_num_procs())); }

CLI::Validator thread_count() {
  const int most = max_threads();
  return CLI::Validator(
      [most](std::string& input) -> std::string {
        int value = 0;
        const auto [end, error] = std::from_chars(input.data(), input.data() + input.size(), value);
        if (error != std::errc() || end != input.data() + input.size() || value < 0 || value > most) {
          return "expected 0 (all cores) to " + std::to_string(most) + " threads (16 per core on this " +
                 std::to_string(omp_get_num_procs()) + "-core machine, at most 1024), got " + input;
        }
        return "";
      },
      "0 to " + std::to_string(most));
}

void check_output_file(const std::string& out, const std::string& extension, const std::vector<std::string>& inputs) {
  const std::string name = std::filesystem::path(out).filename().string();
  if (name.size() <= extension.size() || !name.ends_with(extension)) {
    throw SpecError("-o " + out + ": the output must be a file name ending in " + extension);
  }
  for (const std::string& input : inputs) {
    std::error_code ec;
    if (!input.empty() && std::filesystem::equivalent(input, out, ec)) {
      throw SpecError("-o " + out + ": is also what this command reads (" + input +
                      "); writing it would replace it: choose another output");
    }
  }
}

std::string describe_exception(std::exception_ptr error, const std::string& command) {
  try {
    std::rethrow_exception(error);
  } catch (const std::filesystem::filesystem_error& e) {
    std::string paths = e.path1().string();
    if (!e.path2().empty()) paths += ", " + e.path2().string();
    return command + ": " + (paths.empty() ? "" : paths + ": ") + e.code().message();
  } catch (const dnnl::error& e) {
    return command + ": oneDNN failed (status " + std::to_string(static_cast<int>(e.status)) + "): " + e.what();
  } catch (const std::bad_alloc&) {
    return command + ": out of memory";
  } catch (const std::exception& e) {
    return command + ": internal error (please report it): " + e.what();
  } catch (...) {
    return command + ": internal error (please report it): an unknown exception";
  }
}

}  // namespace convnet
