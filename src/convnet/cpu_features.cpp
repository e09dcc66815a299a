// CPUID leaf 7 (subleaf 0: EBX bit 16 AVX-512F, ECX bit 11 AVX512_VNNI, EDX bits 22/24/25
// AMX-BF16/TILE/INT8; subleaf 1: EAX bit 5 AVX512_BF16), leaf 1 (ECX bit 12 FMA, bit 27 OSXSAVE),
// and XCR0 (bits 1-2 SSE/AVX state, 5-7 AVX-512 state, 17-18 AMX tile state).
#include "convnet/cpu_features.hpp"

#include <cpuid.h>
#include <immintrin.h>

#include <algorithm>
#include <chrono>
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
  const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
  f.onednn_isa = isa_name(isa);
  f.onednn_bf16 = isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx;
  f.onednn_avx512 = f.onednn_bf16 || isa == dnnl::cpu_isa::avx512_core || isa == dnnl::cpu_isa::avx512_core_vnni;
  return f;
}

// Each probe runs kChains independent accumulator chains for `steps` steps (values stay finite
// and normal) and returns a sum, so that nothing is optimised away.
constexpr int kChains = 12;

/// The sum of every lane of the chains' accumulators.
__attribute__((target("avx512f"))) float lane_sum(const __m512 (&acc)[kChains]) {
  alignas(64) float lanes[16];
  float sum = 0;
  for (const __m512& v : acc) {
    _mm512_store_ps(lanes, v);
    for (float x : lanes) sum += x;
  }
  return sum;
}

__attribute__((target("avx512f"))) float fma_chains(long steps) {
  __m512 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(1.0F + static_cast<float>(c));
  const __m512 m = _mm512_set1_ps(0.9999999F), a = _mm512_set1_ps(1e-7F);
  for (long i = 0; i < steps; ++i) {
    for (auto& v : acc) v = _mm512_fmadd_ps(v, m, a);
  }
  return lane_sum(acc);
}

__attribute__((target("avx512f,avx512bf16"))) float bf16_chains(long steps) {
  __m512 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(1.0F + static_cast<float>(c));
  const auto x = reinterpret_cast<__m512bh>(_mm512_set1_epi16(0x3F80));  // 1.0
  const auto y = reinterpret_cast<__m512bh>(_mm512_set1_epi16(0x3380));  // 2^-24
  for (long i = 0; i < steps; ++i) {
    for (auto& v : acc) v = _mm512_dpbf16_ps(v, x, y);
  }
  return lane_sum(acc);
}

__attribute__((target("avx512f,avx512vnni"))) float int8_chains(long steps) {
  __m512i acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_epi32(c);
  const __m512i x = _mm512_set1_epi8(1), y = _mm512_set1_epi8(1);
  for (long i = 0; i < steps; ++i) {
    for (auto& v : acc) v = _mm512_dpbusd_epi32(v, x, y);
  }
  alignas(64) int32_t lanes[16];
  float sum = 0;
  for (auto& v : acc) {
    _mm512_store_si512(lanes, v);
    for (int32_t x : lanes) sum += static_cast<float>(x);
  }
  return sum;
}

/// Operations per second of `chains` (ops_per_step per step for all chains), the best of 3 runs.
double best_rate(double ops_per_step, float (*chains)(long)) {
  double best = 0;
  volatile float sink = 0;
  for (int run = 0; run < 3; ++run) {
    constexpr long kSteps = 100'000;
    const auto start = std::chrono::steady_clock::now();
    sink = sink + chains(kSteps);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, ops_per_step * kSteps / std::max(seconds, 1e-9));
  }
  return best;
}

}  // namespace

const DotThroughput& dot_throughput() {
  static const DotThroughput measured = [] {
    DotThroughput d;
    const CpuFeatures& cpu = cpu_features();
    if (!cpu.avx512f) return d;
    const double fma = best_rate(2.0 * 16 * kChains, fma_chains);                    // 16 lanes
    if (cpu.avx512_bf16) d.bf16 = best_rate(4.0 * 16 * kChains, bf16_chains) / fma;  // 2 products per lane
    if (cpu.avx512_vnni) d.int8 = best_rate(2.0 * 64 * kChains, int8_chains) / fma;  // 4 per lane
    return d;
  }();
  return measured;
}

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
