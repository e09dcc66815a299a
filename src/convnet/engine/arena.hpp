// Static memory planning: buffers with a size and a lifetime (first and last step that touch them)
// get fixed offsets in one arena so that no two buffers alive at the same step overlap.
#pragma once

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

/// Greedy first-fit by decreasing size: each buffer takes the lowest 64-byte aligned offset where it
/// overlaps no already-placed buffer whose lifetime intersects its own.
[[nodiscard]] ArenaLayout plan_arena(const std::vector<BufferLifetime>& buffers);

}  // namespace convnet
