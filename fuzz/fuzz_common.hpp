// Shared by the libFuzzer targets: a per-process scratch folder under /tmp for the readers that
// take a path, and the rule every target follows: convnet::Error is the expected answer to bad
// input and is caught; anything else (another exception, a sanitizer report, a hang) is a finding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "convnet/error.hpp"

namespace convnet::fuzz {

/// The expected outcome of a bad input: nothing, or its message on stderr when the environment
/// sets CONVNET_FUZZ_VERBOSE (to see why a seed is rejected: `CONVNET_FUZZ_VERBOSE=1 fuzz_X FILE`).
void expected(const convnet::Error& error);

/// $TMPDIR/convnet-fuzz-<pid>/ (/tmp without TMPDIR), created on first use and removed when the
/// process exits normally (a crashing run leaves it; scripts/fuzz points TMPDIR at its work folder).
[[nodiscard]] const std::string& scratch_dir();

/// Writes `size` bytes to scratch_dir()/name, replacing the file, and returns its path.
std::string write_scratch(const std::string& name, const uint8_t* data, size_t size);

/// Little-endian uint32 from the first 4 of `size` bytes (missing bytes read as 0); used to
/// split one fuzz input into several files.
[[nodiscard]] uint32_t read_u32(const uint8_t* data, size_t size);

/// A safetensors file from a fuzz input (the safetensors and checkpoint targets). Layout: a flags
/// byte; bit 0 clear: the rest is the file as is; bit 0 set: the rest is the JSON header, a NUL,
/// then the data, and the 8-byte header length is put in front, so that the mutations that
/// insert or delete header bytes still give a file whose header is read whole.
[[nodiscard]] std::string safetensors_file(const uint8_t* data, size_t size);

}  // namespace convnet::fuzz
