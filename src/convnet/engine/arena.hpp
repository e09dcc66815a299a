// Static memory planning: buffers with a size and a lifetime (first and last step that touch them)
// get fixed offsets in one arena so that no two buffers alive at the same step overlap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace convnet {

struct BufferLifetime {
  int64_t bytes = 0;
  int first = 0;  // first step that writes it
  int last = 0;   // last step that reads it (inclusive)
};

struct ArenaLayout {
  std::vector<int64_t> offsets;  // per buffer, multiples of 64 bytes
  int64_t bytes = 0;             // arena size: the peak of the plan's live buffers
};

/// Plans of more buffers than this are placed in birth order: greedy placement compares each
/// buffer with every placed one (a network of 80,000 layers ran over 10 minutes in it).
inline constexpr size_t kGreedyArenaLimit = 20'000;

/// Offsets where no two buffers alive at the same step overlap. Up to kGreedyArenaLimit buffers:
/// greedy first-fit by decreasing size, each buffer at the lowest 64-byte aligned offset where it
/// overlaps no already-placed buffer whose lifetime intersects its own. Beyond: in order of first
/// step, each buffer in the smallest region freed by the buffers dead by then, else on top.
[[nodiscard]] ArenaLayout plan_arena(const std::vector<BufferLifetime>& buffers);

}  // namespace convnet
