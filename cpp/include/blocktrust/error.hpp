// The root of every exception blocktrust throws, and the families shared by several capabilities.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

namespace blocktrust {

/// Root of every exception the library throws; catch this to catch them all.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Raised when a setting or argument is invalid (unknown algorithm, short secret, bad rule).
class ConfigError : public Error {
 public:
  using Error::Error;
};

/// Raised when a file cannot be opened or read; carries the path and the OS error number.
class FileReadError : public Error {
 public:
  FileReadError(std::string path, int errnum, const std::string& what)
      : Error(what), path_(std::move(path)), errno_(errnum) {}
  /// The path that could not be read.
  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  /// The errno value reported by the OS (0 when not an OS error).
  [[nodiscard]] int error_number() const noexcept { return errno_; }

 private:
  std::string path_;
  int errno_;
};

}  // namespace blocktrust
