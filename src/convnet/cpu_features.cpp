// CPUID leaf 7 (subleaf 0: EBX bit 16 AVX-512F, ECX bit 11 AVX512_VNNI, EDX bits 22/24/25
// AMX-BF16/TILE/INT8; subleaf 1: EAX bit 5 AVX512_BF16), leaf 1 (ECX bit 12 FMA, bit 27 OSXSAVE),
// and XCR0 (bits 1-2 SSE/AVX state, 5-7 AVX-512 state, 17-18 AMX tile state).
#include "convnet/cpu_features.hpp"

#include <cpuid.h>

#include <cstdint>
#include <oneapi/dnnl/dnnl.hpp>

namespace convnet {
namespace {

bool bit(uint32_t value, int n) { return ((value >> n) & 1U) != 0; }

uint64_t xcr0() {
  uint32_t eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

std::string isa_name(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::sse41:
      return "sse41";
    case dnnl::cpu_isa::avx:
      return "avx";
    case dnnl::cpu_isa::avx2:
      return "avx2";
    case dnnl::cpu_isa::avx2_vnni:
      return "avx2_vnni";
    case dnnl::cpu_isa::avx512_core:
      return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx:
      return "avx512_core_amx";
    default:
      return "other";
  }
}

CpuFeatures detect() {
  CpuFeatures f;
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0 || !bit(ecx, 27)) return f;  // no OSXSAVE: no AVX state
  const bool fma = bit(ecx, 12);
  const uint64_t state = xcr0();
  const bool os_avx = (state & 0x6U) == 0x6U;
  const bool os_avx512 = os_avx && (state & 0xe0U) == 0xe0U;
  const bool os_amx = (state & 0x60000U) == 0x60000U;
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(7, 0, eax, ebx, ecx, edx);
  f.fma = os_avx && fma;
  f.avx2 = os_avx && bit(ebx, 5);
  f.avx512f = os_avx512 && bit(ebx, 16);
  f.avx512_vnni = f.avx512f && bit(ecx, 11);
  f.amx_bf16 = os_amx && bit(edx, 22);
  f.amx_tile = os_amx && bit(edx, 24);
  f.amx_int8 = os_amx && bit(edx, 25);
  const uint32_t subleaves = eax;
  if (subleaves >= 1) {
    __cpuid_count(7, 1, eax, ebx, ecx, edx);
    f.avx512_bf16 = f.avx512f && bit(eax, 5);
  }
  f.onednn_isa = isa_name(dnnl::get_effective_cpu_isa());
  return f;
}

}  // namespace

std::string CpuFeatures::describe() const {
  std::string s = avx512f ? "AVX-512" : avx2 ? "AVX2" : "no AVX2";
  if (avx512_bf16 || avx512_vnni) {
    s += " with ";
    s += avx512_bf16 ? "BF16" : "";
    s += avx512_bf16 && avx512_vnni ? " and " : "";
    s += avx512_vnni ? "VNNI" : "";
  }
  s += amx_tile ? std::string(", AMX") + (amx_bf16 ? " BF16" : "") + (amx_int8 ? " INT8" : "") : ", no AMX";
  return s + "; oneDNN dispatches " + onednn_isa;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

}  // namespace convnet
