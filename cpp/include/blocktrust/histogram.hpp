// HDR-style log-linear latency histogram: 1 µs resolution, 3 significant digits, up to ~71 minutes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "blocktrust/error.hpp"

namespace blocktrust::flows {

/// Raised when serialised histogram bytes are malformed or from an incompatible layout.
class HistogramFormatError : public Error {
 public:
  using Error::Error;
};

/// Log-linear histogram of microsecond values; every recorded value keeps 3 significant digits.
/// Not thread-safe: give each thread its own and merge() them.
class Histogram final {
 public:
  /// Values above this (about 71 minutes) are clamped to it and counted in saturated().
  static constexpr std::int64_t kMaxValueUs = (std::int64_t{2047} << 21);

  Histogram();

  /// Records one value in microseconds (negative values count as 0), `count` times.
  void record_us(std::int64_t value_us, std::int64_t count = 1) noexcept;
  /// Records one value in nanoseconds (rounded to the nearest microsecond).
  void record_ns(std::int64_t value_ns) noexcept { record_us((value_ns + 500) / 1000); }
  /// Adds every count of `other` to this histogram.
  void merge(const Histogram& other) noexcept;
  /// Forgets everything recorded.
  void reset() noexcept;

  /// Number of values recorded.
  [[nodiscard]] std::int64_t count() const noexcept { return total_; }
  /// Smallest recorded value in µs (0 when empty).
  [[nodiscard]] std::int64_t min_us() const noexcept { return total_ ? min_ : 0; }
  /// Largest recorded value in µs (0 when empty).
  [[nodiscard]] std::int64_t max_us() const noexcept { return max_; }
  /// Mean in µs of the recorded values (exact, from the running sum).
  [[nodiscard]] double mean_us() const noexcept;
  /// Values that were above kMaxValueUs and were clamped.
  [[nodiscard]] std::int64_t saturated() const noexcept { return saturated_; }
  /// The value at percentile `p` in [0, 100], in µs, within 0.1 % of the exact sample value.
  [[nodiscard]] std::int64_t percentile_us(double p) const noexcept;

  /// Compact binary form (sparse, varint-coded) for storing or sending between processes.
  [[nodiscard]] std::string serialize() const;
  /// Rebuilds a histogram from serialize() output; HistogramFormatError on bad input.
  [[nodiscard]] static Histogram deserialize(std::string_view bytes);

 private:
  [[nodiscard]] static std::size_t index_of(std::int64_t v) noexcept;
  [[nodiscard]] static std::int64_t lowest_of(std::size_t index) noexcept;
  [[nodiscard]] static std::int64_t highest_of(std::size_t index) noexcept;

  std::vector<std::int64_t> counts_;
  std::int64_t total_ = 0;
  std::int64_t min_ = 0;
  std::int64_t max_ = 0;
  std::int64_t saturated_ = 0;
  long double sum_ = 0;
};

}  // namespace blocktrust::flows
