// Crash-safe file replacement: write a temporary file beside the target, fsync it, rename it over
// the target and fsync the folder. Until commit() the old file stays intact; a failed or abandoned
// write removes the temporary file. Only regular files are replaced; links to them are followed.
#pragma once

#include <cstddef>
#include <string>

namespace convnet {

class AtomicFile {
 public:
  /// Creates PATH.<pid>.tmp (unique per process); throws IoError when it cannot, or when PATH is
  /// something other than a regular file (a folder, a device, a FIFO). A symbolic link to a
  /// regular file is followed: the file it names is replaced, and the link stays.
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

/// The file a write to `path` replaces: `path` itself, or for a symbolic link the regular file it
/// names (renaming over the link would replace the link). Throws IoError when `path` is a folder,
/// a device such as /dev/null, a FIFO, a socket or a dangling link: renaming over it would destroy
/// it. AtomicFile calls it; a command writing several files calls it for each before the first.
[[nodiscard]] std::string replaceable_target(const std::string& path);

/// Replaces `path` with `text` atomically.
void write_file_atomically(const std::string& path, const std::string& text);

}  // namespace convnet
