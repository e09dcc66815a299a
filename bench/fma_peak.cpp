// FP32 FMA peak of this CPU for bench/compare: each of T threads runs independent chains of vector FMAs
// (AVX-512 when the compiler targets it, else AVX2), enough chains to hide the FMA latency on current
// x86 cores. Prints one JSON line: the best of several timed runs, in GFLOP/s for all T threads together.
// Build: g++ -O3 -march=native -pthread fma_peak.cpp -o fma_peak; run: fma_peak T
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#if defined(__AVX512F__)
using Vec = __m512;
constexpr int kLanes = 16;
constexpr int kChains = 12;  // 12 accumulators + 2 constants fit the 32 zmm registers
constexpr const char* kIsa = "avx512";
inline Vec splat(float v) { return _mm512_set1_ps(v); }
inline Vec fma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
inline float sum(Vec v) { return _mm512_reduce_add_ps(v); }
#elif defined(__AVX2__) && defined(__FMA__)
using Vec = __m256;
constexpr int kLanes = 8;
constexpr int kChains = 10;  // 10 accumulators + 2 constants fit the 16 ymm registers
constexpr const char* kIsa = "avx2";
inline Vec splat(float v) { return _mm256_set1_ps(v); }
inline Vec fma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
inline float sum(Vec v) {
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, v);
  float s = 0;
  for (float x : lanes) s += x;
  return s;
}
#else
#error "fma_peak needs AVX-512 or AVX2 with FMA (compile with -march=native on such a CPU)"
#endif

// kChains independent dependency chains a = a * m + c; values stay near 1 (no denormals, no overflow).
float chains(long iterations) {
  Vec acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = splat(1.0f + 0.001f * static_cast<float>(c));
  const Vec m = splat(0.9999999f);
  const Vec add = splat(1e-7f);
  for (long i = 0; i < iterations; ++i) {
    for (int c = 0; c < kChains; ++c) acc[c] = fma(acc[c], m, add);
  }
  float s = 0;
  for (int c = 0; c < kChains; ++c) s += sum(acc[c]);
  return s;
}

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  if (threads < 1 || threads > 1024) {
    std::fprintf(stderr, "fma_peak: threads must be 1..1024, got %s\n", argv[1]);
    return 2;
  }
  const long iterations = 50'000'000;  // about 0.2 s per thread on a 3 GHz core issuing 2 FMAs a cycle
  std::vector<float> sinks(static_cast<size_t>(threads));
  double best = 0;
  for (int run = 0; run < 5; ++run) {
    std::vector<std::thread> pool;
    const auto start = std::chrono::steady_clock::now();
    for (int t = 0; t < threads; ++t) pool.emplace_back([&, t] { sinks[static_cast<size_t>(t)] = chains(iterations); });
    for (auto& thread : pool) thread.join();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double flops = 2.0 * kLanes * kChains * static_cast<double>(iterations) * threads;
    best = std::max(best, flops / seconds / 1e9);
  }
  float sink = 0;
  for (float s : sinks) sink += s;
  std::printf("{\"gflops\": %.1f, \"threads\": %d, \"isa\": \"%s\", \"chains\": %d, \"sink\": %g}\n", best, threads,
              kIsa, kChains, static_cast<double>(sink));
  return 0;
}
