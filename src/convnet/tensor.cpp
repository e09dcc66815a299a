// Aligned allocation with byte accounting.
#include "convnet/tensor.hpp"

#include <atomic>
#include <cstdlib>
#include <new>

namespace convnet {
namespace {

std::atomic<int64_t> current_bytes{0};
std::atomic<int64_t> peak_bytes{0};

}  // namespace

TensorMemoryStats tensor_memory_stats() { return {current_bytes.load(), peak_bytes.load()}; }

void reset_tensor_peak() { peak_bytes.store(current_bytes.load()); }

namespace detail {

void* aligned_allocate(int64_t bytes) {
  if (bytes <= 0) return nullptr;
  const size_t rounded = (static_cast<size_t>(bytes) + 63) / 64 * 64;
  void* pointer = std::aligned_alloc(64, rounded);
  if (pointer == nullptr) throw std::bad_alloc();
  const int64_t now = current_bytes.fetch_add(bytes) + bytes;
  int64_t peak = peak_bytes.load();
  while (now > peak && !peak_bytes.compare_exchange_weak(peak, now)) {
  }
  return pointer;
}

void aligned_free(void* pointer, int64_t bytes) {
  if (pointer == nullptr) return;
  current_bytes.fetch_sub(bytes);
  std::free(pointer);
}

}  // namespace detail
}  // namespace convnet
