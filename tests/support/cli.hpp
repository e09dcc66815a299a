// Helpers for tests that run the convnet command line: temp files, running a command with its
// stdout, stderr and exit code, and the one-line error contract.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#ifndef EXPECT_CONTAINS
#define EXPECT_CONTAINS(text, part)                                                        \
  EXPECT_NE(std::string(text).find(part), std::string::npos)                               \
      << "expected to find: " << (part) << "\n              in: " << (text)
#endif

namespace convnet::testing {

namespace fs = std::filesystem;

// A file in the system temp directory, unique to this process, removed when it goes.
class TempFile {
 public:
  explicit TempFile(const std::string& suffix) {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            ("convnet_cli_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + suffix);
  }
  ~TempFile() {
    std::error_code ec;
    fs::remove(path_, ec);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

inline std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

inline void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

// Single-quotes a word for /bin/sh.
inline std::string quote(const std::string& word) {
  std::string out = "'";
  for (char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct Result {
  std::string out;
  std::string err;
  int code = -1;
  bool signalled = false;  // killed by a signal: a crash
};

// Runs `PROGRAM ARGS...` (found on PATH), capturing stdout through the pipe and stderr through a
// temp file.
inline Result run_program(const std::string& program, const std::vector<std::string>& args) {
  TempFile err(".err");
  std::string command = quote(program);
  for (const std::string& a : args) command += " " + quote(a);
  command += " 2> " + quote(err.path().string());
  Result r;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    ADD_FAILURE() << "popen failed: " << command;
    return r;
  }
  char buffer[4096];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) r.out.append(buffer, n);
  const int status = ::pclose(pipe);
  if (WIFEXITED(status)) r.code = WEXITSTATUS(status);
  r.signalled = WIFSIGNALED(status);
  r.err = read_file(err.path());
  return r;
}

// Runs `convnet ARGS...`.
inline Result run(const std::vector<std::string>& args) { return run_program(CONVNET_CLI, args); }


inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The error contract: exit 1, nothing on stdout, exactly one line on stderr starting "convnet: ".
inline void expect_one_line_error(const Result& r) {
  EXPECT_FALSE(r.signalled) << "crashed";
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err.rfind("convnet: ", 0), 0u) << r.err;
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.back(), '\n') << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

}  // namespace convnet::testing
