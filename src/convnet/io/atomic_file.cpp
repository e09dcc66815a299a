// POSIX implementation of AtomicFile.
#include "convnet/io/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "convnet/error.hpp"

namespace convnet {

std::string replaceable_target(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status link = fs::symlink_status(path, ec);
  if (ec || !fs::exists(link)) return path;
  const fs::file_status target = fs::status(path, ec);
  if (fs::is_regular_file(target) && !fs::is_symlink(link)) return path;
  if (fs::is_regular_file(target)) {
    const fs::path real = fs::canonical(path, ec);
    if (ec) throw IoError(path + ": cannot follow the symbolic link: " + ec.message());
    return real.string();
  }
  if (fs::is_directory(target)) throw IoError(path + ": is a folder; give a file name to write");
  if (fs::is_symlink(link) && !fs::exists(target))
    throw IoError(path + ": is a symbolic link to nothing; not replaced");
  throw IoError(path + ": is not a regular file (a device, FIFO or socket); not replaced");
}

AtomicFile::AtomicFile(std::string path)
    : path_(replaceable_target(path)), temp_(path_ + "." + std::to_string(::getpid()) + ".tmp") {  // unique per process
  fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd_ < 0) throw IoError(temp_ + ": cannot create: " + std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(temp_.c_str());
  }
}

void AtomicFile::write(const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd_, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw IoError(temp_ + ": write failed: " + std::strerror(errno));
    p += n;
    size -= static_cast<size_t>(n);
  }
}

void AtomicFile::commit() {
  if (::fsync(fd_) != 0) throw IoError(temp_ + ": fsync failed: " + std::strerror(errno));
  if (::close(fd_) != 0) {
    fd_ = -1;
    ::unlink(temp_.c_str());
    throw IoError(temp_ + ": close failed: " + std::strerror(errno));
  }
  fd_ = -1;
  if (std::rename(temp_.c_str(), path_.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(temp_.c_str());
    throw IoError(path_ + ": cannot replace: " + reason);
  }
  // Make the rename itself durable.
  std::string folder = std::filesystem::path(path_).parent_path().string();
  if (folder.empty()) folder = ".";
  const int dir = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

void write_file_atomically(const std::string& path, const std::string& text) {
  AtomicFile file(path);
  file.write(text.data(), text.size());
  file.commit();
}

}  // namespace convnet
