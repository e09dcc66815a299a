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
  bool onednn_bf16 = false;    // oneDNN runs bf16 natively (avx512_core_bf16 or AMX; DNNL_MAX_CPU_ISA
                               // may cap it below what the CPU has)
  bool onednn_avx512 = false;  // oneDNN may use AVX-512 (bf16 can at least be emulated)
  /// "AVX-512 with BF16 and VNNI, no AMX; oneDNN dispatches avx512_core_bf16".
  [[nodiscard]] std::string describe() const;
};

/// Dot-product throughput of one core in the reduced precisions, relative to its f32 FMA rate
/// (FLOPs, or int8 operations, per second), measured by a few milliseconds of independent
/// VDPBF16PS / VPDPBUSD / VFMADD chains on first use. 0 where the instruction is missing.
/// Measured because CPUID cannot tell: on some Intel cores without AMX, bf16 dot products run at
/// half the f32 rate; on AMD Zen 5 at twice.
struct DotThroughput {
  double bf16 = 0;  // VDPBF16PS FLOPs / FMA FLOPs
  double int8 = 0;  // VPDPBUSD operations / FMA FLOPs
};
[[nodiscard]] const DotThroughput& dot_throughput();

/// Read once, on first use.
[[nodiscard]] const CpuFeatures& cpu_features();

}  // namespace convnet
