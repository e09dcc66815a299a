// Error types thrown by the convnet library. The library reports every user-facing problem with
// one of these exceptions (never exit/abort); the CLI catches them and prints one line.
#pragma once

#include <stdexcept>
#include <string>

namespace convnet {

/// Base of every error convnet throws on bad input.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A layer's input shape does not fit its options (a filter that does not fit, a mismatched add).
class ShapeError : public Error {
 public:
  using Error::Error;
};

/// A model file or a layer specification is malformed (unknown layer, bad number, arity).
class SpecError : public Error {
 public:
  using Error::Error;
};

/// A file could not be read or written, or its content is not what it claims to be.
class IoError : public Error {
 public:
  using Error::Error;
};

}  // namespace convnet
