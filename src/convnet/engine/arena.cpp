// The arena planner: greedy placement of buffers by decreasing size.
#include "convnet/engine/arena.hpp"

#include <algorithm>
#include <numeric>

#include "convnet/checked.hpp"

namespace convnet {

ArenaLayout plan_arena(const std::vector<BufferLifetime>& buffers) {
  constexpr int64_t kAlign = 64;
  ArenaLayout layout;
  layout.offsets.assign(buffers.size(), 0);
  std::vector<size_t> order(buffers.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return buffers[a].bytes > buffers[b].bytes; });
  std::vector<size_t> placed;
  for (size_t i : order) {
    const BufferLifetime& b = buffers[i];
    const int64_t size = checked_add(b.bytes, kAlign - 1, "arena size") / kAlign * kAlign;
    // Regions already taken during this buffer's lifetime, by offset.
    std::vector<std::pair<int64_t, int64_t>> taken;
    for (size_t j : placed) {
      const BufferLifetime& o = buffers[j];
      if (o.first <= b.last && b.first <= o.last) {
        taken.emplace_back(layout.offsets[j], checked_add(layout.offsets[j], o.bytes, "arena size"));
      }
    }
    std::sort(taken.begin(), taken.end());
    int64_t offset = 0;
    for (const auto& [begin, end] : taken) {
      if (offset + size <= begin) break;
      offset = std::max(offset, (end + kAlign - 1) / kAlign * kAlign);
    }
    layout.offsets[i] = offset;
    layout.bytes = std::max(layout.bytes, checked_add(offset, size, "arena size"));
    placed.push_back(i);
  }
  return layout;
}

}  // namespace convnet
