// What this CPU computes fast, read at run time (the machines change between runs): CPUID's
// feature bits for the vector, bf16, int8 (VNNI) and AMX instructions, whether the operating system
// saves their registers (XGETBV), and the instruction set oneDNN dispatches to.
#pragma once

#include <string>

namespace convnet {

struct CpuFeatures {
  bool avx2 = false, fma = false;
  bool avx512f = false;                                       // with the OS saving the 512-bit state
  bool avx512_bf16 = false;                                   // bf16 dot products (VDPBF16PS)
  bool avx512_vnni = false;                                   // int8 dot products (VPDPBUSD)
  bool amx_tile = false, amx_bf16 = false, amx_int8 = false;  // with the OS saving the tile state
  std::string onednn_isa;  // "avx512_core_bf16": the kernels oneDNN picks on this machine
  /// "AVX-512 with BF16 and VNNI, no AMX; oneDNN dispatches avx512_core_bf16".
  [[nodiscard]] std::string describe() const;
};

/// Read once, on first use.
[[nodiscard]] const CpuFeatures& cpu_features();

}  // namespace convnet
