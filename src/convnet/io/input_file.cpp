// POSIX implementation of InputFile: open without blocking (O_NONBLOCK, so opening a FIFO with no
// writer returns at once), fstat the descriptor, and refuse anything that is not a regular file.
#include "convnet/io/input_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "convnet/error.hpp"

namespace convnet {
namespace {

std::string file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a folder";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

}  // namespace

InputFile::InputFile(std::string path) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd_ < 0) {
    const int error = errno;
    if (error == ENOENT) throw IoError(path_ + ": no such file");
    throw IoError(path_ + ": cannot open the file: " + std::strerror(error));
  }
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const int error = errno;
    ::close(fd_);
    throw IoError(path_ + ": cannot read the file's size: " + std::strerror(error));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd_);
    throw IoError(path_ + ": is " + file_kind(st.st_mode) + ", not a regular file");
  }
  size_ = static_cast<uint64_t>(st.st_size);
}

InputFile::~InputFile() { ::close(fd_); }

void InputFile::read_at(uint64_t offset, void* out, size_t n) const {
  auto* p = static_cast<char*>(out);
  while (n > 0) {
    const ssize_t got = ::pread(fd_, p, n, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw IoError(path_ + ": cannot read the file: " + std::strerror(errno));
    if (got == 0) {
      throw IoError(path_ + ": truncated: the file ended at byte " + std::to_string(offset) + ", " +
                    std::to_string(n) + " more bytes were expected");
    }
    p += got;
    n -= static_cast<size_t>(got);
    offset += static_cast<uint64_t>(got);
  }
}

std::vector<uint8_t> InputFile::read_all(uint64_t limit, const std::string& what) const {
  if (size_ > limit) {
    throw IoError(path_ + ": " + what + " of " + std::to_string(size_) + " bytes is larger than the limit of " +
                  std::to_string(limit) + " bytes");
  }
  std::vector<uint8_t> bytes(static_cast<size_t>(size_));
  read_at(0, bytes.data(), bytes.size());
  return bytes;
}

}  // namespace convnet
