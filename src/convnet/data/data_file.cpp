// DataFile: a dataset file (IDX, CIFAR) opened through InputFile (regular files only) and read
// from its start through zlib, which decompresses gzip and passes a plain file through unchanged.
// Reads are bounded by what the caller expects, so a decompression bomb is stopped at the size
// its header declares instead of being inflated whole.
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unistd.h>

#include "convnet/data/internal.hpp"
#include "convnet/error.hpp"

namespace convnet::detail {
namespace {

constexpr size_t kChunk = size_t{1} << 20;   // the most one read asks of zlib
constexpr size_t kFirst = size_t{64} << 10;  // read_rest's first buffer, doubled up to kChunk

}  // namespace

DataFile::DataFile(const std::string& path) : file_(path) {
  const int fd = ::dup(file_.fd());
  if (fd < 0) throw IoError(path + ": cannot open the file: " + std::strerror(errno));
  gz_ = gzdopen(fd, "rb");
  if (gz_ == nullptr) {
    ::close(fd);
    throw IoError(path + ": cannot open the file: out of memory");
  }
  gzbuffer(gz_, 64 << 10);  // zlib's input buffer (and twice that for output): 1 MB cost 3 MB per file
  compressed_ = gzdirect(gz_) == 0;
}

DataFile::~DataFile() { gzclose(gz_); }

std::string DataFile::zlib_message() const {
  int err = 0;
  const char* message = gzerror(gz_, &err);
  std::string text = message ? message : "read error";
  // zlib puts its name for the file in front: "<fd:N>: " for a descriptor.
  if (text.starts_with("<fd:")) text.erase(0, std::min(text.size(), text.find(">: ") + 3));
  return text;
}

size_t DataFile::read(uint8_t* out, size_t n) {
  size_t total = 0;
  while (total < n) {
    const auto want = static_cast<unsigned>(std::min(n - total, kChunk));
    const int got = gzread(gz_, out + total, want);
    if (got < 0) {
      throw IoError(path() + ": cannot read the file (corrupt gzip data?) after " + std::to_string(position_ + total) +
                    " bytes: " + zlib_message());
    }
    total += static_cast<size_t>(got);
    if (got == 0) break;
  }
  position_ += total;
  if (total < n) {
    int err = Z_OK;
    gzerror(gz_, &err);
    if (err != Z_OK) {
      throw IoError(path() + ": truncated or corrupt gzip data after " + std::to_string(position_) +
                    " decompressed bytes: " + zlib_message());
    }
  }
  return total;
}

std::vector<uint8_t> DataFile::read_exactly(uint64_t n, const std::string& what) {
  const uint64_t expected = position_ + n;
  std::vector<uint8_t> bytes;
  // The buffer grows with the data that arrives, so a short file never gets its declared size allocated.
  if (!compressed_) bytes.reserve(static_cast<size_t>(std::min<uint64_t>(n, file_.size())));
  while (bytes.size() < n) {
    const size_t have = bytes.size();
    bytes.resize(have + static_cast<size_t>(std::min<uint64_t>(n - have, kChunk)));
    const size_t got = read(bytes.data() + have, bytes.size() - have);
    if (have + got < bytes.size()) {
      throw IoError(path() + ": truncated " + what + ": expected " + std::to_string(expected) + " bytes, found " +
                    std::to_string(position_));
    }
  }
  return bytes;
}

void DataFile::expect_end(const std::string& what) {
  const uint64_t declared = position_;
  uint8_t byte = 0;
  if (read(&byte, 1) == 0) return;
  if (compressed_) {
    throw IoError(path() + ": " + what + " decompresses to more than the " + std::to_string(declared) +
                  " bytes its header declares (trailing data); stopped reading there");
  }
  throw IoError(path() + ": " + what + " has trailing data: expected " + std::to_string(declared) + " bytes, found " +
                std::to_string(file_.size()));
}

std::vector<uint8_t> DataFile::read_rest(uint64_t limit, const std::string& what) {
  if (!compressed_ && file_.size() > limit) {
    throw IoError(path() + ": " + what + " of " + std::to_string(file_.size()) + " bytes is larger than the limit of " +
                  std::to_string(limit) + " bytes");
  }
  std::vector<uint8_t> bytes;
  for (size_t step = kFirst;; step = std::min(2 * step, kChunk)) {  // small files get small buffers
    const size_t have = bytes.size();
    bytes.resize(have + step);
    const size_t got = read(bytes.data() + have, step);
    bytes.resize(have + got);
    if (bytes.size() > limit) {
      throw IoError(path() + ": " + what + " decompresses to more than the limit of " + std::to_string(limit) +
                    " bytes; stopped reading there");
    }
    if (got < step) break;
  }
  bytes.shrink_to_fit();
  return bytes;
}

}  // namespace convnet::detail
