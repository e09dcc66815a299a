// The run-time CPU feature detection against what Linux reports in /proc/cpuinfo.
#include "convnet/cpu_features.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

namespace convnet {
namespace {

std::set<std::string> cpuinfo_flags() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    std::set<std::string> flags;
    for (std::string w; words >> w;) flags.insert(w);
    return flags;
  }
  return {};
}

TEST(CpuFeatures, AgreeWithTheKernelsFlags) {
  const std::set<std::string> flags = cpuinfo_flags();
  ASSERT_FALSE(flags.empty()) << "no flags line in /proc/cpuinfo";
  const CpuFeatures& f = cpu_features();
  auto has = [&](const char* flag) { return flags.count(flag) > 0; };
  EXPECT_EQ(f.avx2, has("avx2"));
  EXPECT_EQ(f.fma, has("fma"));
  EXPECT_EQ(f.avx512f, has("avx512f"));
  EXPECT_EQ(f.avx512_bf16, has("avx512_bf16"));
  EXPECT_EQ(f.avx512_vnni, has("avx512_vnni"));
  EXPECT_EQ(f.amx_tile, has("amx_tile"));
  EXPECT_EQ(f.amx_bf16, has("amx_bf16"));
  EXPECT_EQ(f.amx_int8, has("amx_int8"));
  EXPECT_FALSE(f.onednn_isa.empty());
  EXPECT_NE(f.describe().find("oneDNN dispatches " + f.onednn_isa), std::string::npos) << f.describe();
  EXPECT_EQ(f.describe().find("BF16") != std::string::npos, f.avx512_bf16 || f.amx_bf16) << f.describe();
}

// The probes measure a rate only where the instruction exists. The ratios are wide-bounded:
// a shared machine slows either side, but a probe that measured nothing (0) or timed an empty
// loop (huge) would fail. Known values: bf16 0.5x (Intel without AMX) to 2x (AMD Zen 5); int8
// 2x to 4x.
TEST(CpuFeatures, DotProductProbesMeasureWhatTheCpuHas) {
  const CpuFeatures& f = cpu_features();
  const DotThroughput& d = dot_throughput();
  if (f.avx512_bf16) {
    EXPECT_GT(d.bf16, 0.1);
    EXPECT_LT(d.bf16, 10.0);
  } else {
    EXPECT_EQ(d.bf16, 0.0);
  }
  if (f.avx512_vnni) {
    EXPECT_GT(d.int8, 0.2);
    EXPECT_LT(d.int8, 20.0);
  } else {
    EXPECT_EQ(d.int8, 0.0);
  }
}

}  // namespace
}  // namespace convnet
