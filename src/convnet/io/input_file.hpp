// The one way convnet opens a file it reads (datasets, weights, checkpoints, images): regular
// files only, so a FIFO, a device such as /dev/zero, a socket or a folder is refused at once with
// a message naming the path, instead of blocking or filling memory. Its size, known from fstat
// before anything is read, lets each reader check the sizes a file declares before allocating.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace convnet {

class InputFile {
 public:
  /// Opens `path` for reading; throws IoError naming it when it is missing, unreadable, or not a
  /// regular file (a folder, FIFO, device or socket). Symbolic links to regular files are followed.
  explicit InputFile(std::string path);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  [[nodiscard]] const std::string& path() const { return path_; }
  /// The file's size in bytes when it was opened.
  [[nodiscard]] uint64_t size() const { return size_; }
  [[nodiscard]] int fd() const { return fd_; }

  /// Reads exactly `n` bytes at `offset`; throws IoError when the file ends first or a read fails.
  void read_at(uint64_t offset, void* out, size_t n) const;

  /// The whole file; throws IoError naming `what` ("image file") when it is larger than `limit` bytes.
  [[nodiscard]] std::vector<uint8_t> read_all(uint64_t limit, const std::string& what) const;

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

}  // namespace convnet
