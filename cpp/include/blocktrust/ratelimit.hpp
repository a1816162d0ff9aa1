// Rate limiting: rules in the `limits` notation, GCRA / sliding-window / fixed-window decisions,
// and a sharded in-process store that updates each key's state with compare-and-swap.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "blocktrust/error.hpp"

namespace blocktrust::ratelimit {

/// One limit: at most `limit` units of cost per `period_ns` nanoseconds.
struct Rule {
  /// Units of cost allowed per period (at least 1).
  std::int64_t limit = 0;
  /// The period in nanoseconds (a second up to 100 years).
  std::int64_t period_ns = 0;
  /// The rule as written, trimmed (e.g. "5/15minutes").
  std::string text;
};

/// Parses `limits` notation: "5/15minutes", "10 per hour", "100/second;1000/hour" (`;`, `,` or `|`
/// separate rules that must all pass); throws ConfigError naming the bad rule.
[[nodiscard]] std::vector<Rule> parse_rules(std::string_view text);

/// The decision algorithm of a limiter.
enum class Algorithm {
  kGcra,           ///< generic cell rate: a token bucket with burst = limit, one 64-bit TAT a rule
  kSlidingWindow,  ///< sliding-window counter: previous window weighted by its remaining overlap
  kFixedWindow,    ///< fixed window: a counter that resets at each period boundary
};

/// Parses "gcra", "sliding_window" (or "sliding-window", "sliding"), "fixed_window" (or
/// "fixed-window", "fixed"); throws ConfigError naming the bad value.
[[nodiscard]] Algorithm parse_algorithm(std::string_view name);

/// The canonical name of an algorithm ("gcra", "sliding_window", "fixed_window").
[[nodiscard]] const char* algorithm_name(Algorithm a) noexcept;

/// The outcome of a hit or test; durations in nanoseconds, never negative.
struct Decision {
  /// Whether the hit is (or would be) admitted.
  bool allowed = true;
  /// The limit of the deciding rule (the most restrictive one).
  std::int64_t limit = 0;
  /// Units still available under the deciding rule after this decision.
  std::int64_t remaining = 0;
  /// Time until the deciding rule's full quota is back, with no further hits.
  std::int64_t reset_after_ns = 0;
  /// Time until the same hit would be admitted (0 when allowed); exact, never optimistic.
  std::int64_t retry_after_ns = 0;
  /// Index of the deciding rule in the limiter's rules.
  int rule_index = 0;
  /// True when the decision was made without the store (shared store unreachable).
  bool degraded = false;
};

/// A source of monotonic time in nanoseconds; inject a ManualClock for deterministic tests.
class Clock {
 public:
  virtual ~Clock() = default;
  /// The current time in nanoseconds on a monotonic scale.
  [[nodiscard]] virtual std::int64_t now_ns() const noexcept = 0;
};

/// std::chrono::steady_clock.
class SteadyClock final : public Clock {
 public:
  /// Nanoseconds of steady_clock.
  [[nodiscard]] std::int64_t now_ns() const noexcept override;
};

/// A clock that only moves when told to; safe to read and move from any thread.
class ManualClock final : public Clock {
 public:
  /// Starts at `start_ns`.
  explicit ManualClock(std::int64_t start_ns = 0) noexcept : now_(start_ns) {}
  /// The time set last.
  [[nodiscard]] std::int64_t now_ns() const noexcept override {
    return now_.load(std::memory_order_acquire);
  }
  /// Sets the time (it may go backwards; the limiter treats that as no time passing).
  void set_ns(std::int64_t t) noexcept { now_.store(t, std::memory_order_release); }
  /// Moves the time forward by `delta_ns` (must be >= 0, else ConfigError).
  void advance_ns(std::int64_t delta_ns);

 private:
  std::atomic<std::int64_t> now_;
};

/// Settings of a RateLimiter.
struct Options {
  /// The decision algorithm.
  Algorithm algorithm = Algorithm::kGcra;
  /// Keys kept at most; when full, idle (fully recovered) keys go first, then the one closest to
  /// recovering (its usage is forgotten, so size this above the keys active within a period).
  std::size_t max_keys = 100'000;
  /// Time source; nullptr means SteadyClock.
  std::shared_ptr<const Clock> clock;
};

/// Counters of a RateLimiter's store.
struct Stats {
  /// Keys held now.
  std::size_t keys = 0;
  /// Keys dropped because they were idle (their state was back to fresh).
  std::uint64_t expired = 0;
  /// Keys dropped while still holding usage, because the store was full.
  std::uint64_t evicted = 0;
};

/// An in-process rate limiter over many keys; every method is thread-safe and lock-free on the
/// hot path except for a per-shard reader lock (inserts and evictions take the shard's writer
/// lock).
class RateLimiter final {
 public:
  /// Throws ConfigError for no rules, more than 8 rules, or limits the algorithm cannot hold.
  RateLimiter(std::vector<Rule> rules, Options options);
  ~RateLimiter();
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  /// Consumes `cost` units from every rule of `key` if all of them admit it.
  [[nodiscard]] Decision hit(std::string_view key, std::int64_t cost = 1);
  /// What hit(key, cost) would decide now, without consuming (remaining is before the hit).
  [[nodiscard]] Decision test(std::string_view key, std::int64_t cost = 1) const;
  /// Forgets `key`; returns whether it was held.
  bool reset(std::string_view key);
  /// Drops every idle key now; returns how many were dropped.
  std::size_t purge_expired();
  /// Store counters.
  [[nodiscard]] Stats stats() const;
  /// The rules, in the order given.
  [[nodiscard]] const std::vector<Rule>& rules() const noexcept { return rules_; }
  /// The algorithm.
  [[nodiscard]] Algorithm algorithm() const noexcept { return algorithm_; }
  /// The key capacity.
  [[nodiscard]] std::size_t max_keys() const noexcept { return max_keys_; }
  /// The clock in use.
  [[nodiscard]] const Clock& clock() const noexcept { return *clock_; }

 private:
  struct Entry;
  struct Shard;
  struct RuleParams;

  Decision apply(Entry& e, std::int64_t cost, std::int64_t now, bool consume) const;
  [[nodiscard]] std::int64_t recovery(const Entry& e, std::int64_t now) const;
  void give_back(std::atomic<std::uint64_t>& word, const RuleParams& p, std::uint64_t taken,
                 std::int64_t cost) const;
  void make_room(Shard& s, std::int64_t now);
  void check_cost(std::int64_t cost) const;
  Shard& shard_for(std::string_view key, std::size_t& hash) const;

  std::vector<Rule> rules_;
  std::vector<RuleParams> params_;
  Algorithm algorithm_;
  std::size_t max_keys_;
  std::size_t per_shard_;
  std::shared_ptr<const Clock> clock_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::int64_t min_limit_ = 0;
};

}  // namespace blocktrust::ratelimit
