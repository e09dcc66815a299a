// Crash-safe file replacement: write a temporary file beside the target, fsync it, rename it over
// the target and fsync the folder. Until commit() the old file stays intact; a failed or abandoned
// write removes the temporary file.
#pragma once

#include <cstddef>
#include <string>

namespace convnet {

class AtomicFile {
 public:
  /// Creates PATH.<pid>.tmp (unique per process); throws IoError when it cannot.
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t size);
  /// fsync, rename over the target, fsync the folder; throws IoError on failure.
  void commit();

 private:
  std::string path_;
  std::string temp_;
  int fd_ = -1;
};

/// Replaces `path` with `text` atomically.
void write_file_atomically(const std::string& path, const std::string& text);

}  // namespace convnet
