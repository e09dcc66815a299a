// The arena planner: greedy placement of buffers by decreasing size, and for plans too large for
// its quadratic search, placement in the order buffers are born.
#include "convnet/engine/arena.hpp"

#include <algorithm>
#include <functional>
#include <iterator>
#include <map>
#include <numeric>
#include <queue>
#include <set>
#include <utility>

#include "convnet/checked.hpp"

namespace convnet {
namespace {

constexpr int64_t kAlign = 64;

int64_t aligned_size(int64_t bytes) { return checked_add(bytes, kAlign - 1, "arena size") / kAlign * kAlign; }

// Each buffer, largest first, is checked against every placed one: O(n^2) comparisons, about a
// second for 20,000 buffers of a training plan's shape.
ArenaLayout greedy_by_size(const std::vector<BufferLifetime>& buffers) {
  ArenaLayout layout;
  layout.offsets.assign(buffers.size(), 0);
  std::vector<size_t> order(buffers.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return buffers[a].bytes > buffers[b].bytes; });
  std::vector<size_t> placed;  // by offset
  for (size_t i : order) {
    const BufferLifetime& b = buffers[i];
    const int64_t size = aligned_size(b.bytes);
    // The lowest gap between regions taken during this buffer's lifetime, scanned by offset.
    int64_t offset = 0;
    for (size_t j : placed) {
      const BufferLifetime& o = buffers[j];
      if (o.first > b.last || b.first > o.last) continue;
      if (offset + size <= layout.offsets[j]) break;
      offset = std::max(offset, aligned_size(checked_add(layout.offsets[j], o.bytes, "arena size")));
    }
    layout.offsets[i] = offset;
    layout.bytes = std::max(layout.bytes, checked_add(offset, size, "arena size"));
    const auto at = std::upper_bound(placed.begin(), placed.end(), offset,
                                     [&](int64_t value, size_t j) { return value < layout.offsets[j]; });
    placed.insert(at, i);
  }
  return layout;
}

// In the order buffers are born: the buffers dead by then give their regions back (merged with
// free neighbours), and each new one takes the smallest free region that holds it, else the top
// of the arena. O(n log n).
ArenaLayout in_birth_order(const std::vector<BufferLifetime>& buffers) {
  ArenaLayout layout;
  layout.offsets.assign(buffers.size(), 0);
  std::vector<size_t> order(buffers.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return buffers[a].first < buffers[b].first; });
  std::map<int64_t, int64_t> free_at;             // offset -> size, below `end`
  std::set<std::pair<int64_t, int64_t>> by_size;  // (size, offset) of the same regions
  int64_t end = 0;                                // where the regions in use end now
  auto release = [&](int64_t offset, int64_t size) {
    auto next = free_at.lower_bound(offset);
    if (next != free_at.end() && next->first == offset + size) {
      size += next->second;
      by_size.erase({next->second, next->first});
      next = free_at.erase(next);
    }
    if (next != free_at.begin()) {
      const auto before = std::prev(next);
      if (before->first + before->second == offset) {
        offset = before->first;
        size += before->second;
        by_size.erase({before->second, before->first});
        free_at.erase(before);
      }
    }
    if (offset + size == end) {  // what is free at the top is not a region
      end = offset;
      return;
    }
    free_at.emplace(offset, size);
    by_size.emplace(size, offset);
  };
  using Death = std::pair<int, size_t>;  // (last step, buffer)
  std::priority_queue<Death, std::vector<Death>, std::greater<>> alive;
  for (size_t i : order) {
    const BufferLifetime& b = buffers[i];
    while (!alive.empty() && alive.top().first < b.first) {
      const size_t dead = alive.top().second;
      alive.pop();
      release(layout.offsets[dead], aligned_size(buffers[dead].bytes));
    }
    const int64_t size = aligned_size(b.bytes);
    const auto fit = by_size.lower_bound({size, 0});
    if (fit != by_size.end()) {
      const auto [region, offset] = *fit;
      by_size.erase(fit);
      free_at.erase(offset);
      layout.offsets[i] = offset;
      if (region > size) {
        free_at.emplace(offset + size, region - size);
        by_size.emplace(region - size, offset + size);
      }
    } else {
      layout.offsets[i] = end;
      end = checked_add(end, size, "arena size");
      layout.bytes = std::max(layout.bytes, end);
    }
    alive.emplace(b.last, i);
  }
  return layout;
}

}  // namespace

ArenaLayout plan_arena(const std::vector<BufferLifetime>& buffers) {
  return buffers.size() <= kGreedyArenaLimit ? greedy_by_size(buffers) : in_birth_order(buffers);
}

}  // namespace convnet
