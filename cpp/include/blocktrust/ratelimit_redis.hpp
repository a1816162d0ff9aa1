// The rate limiter shared through Redis / Valkey: a server-side Lua script per algorithm holds the
// GCRA, sliding-window or fixed-window arithmetic of ratelimit.hpp, in microseconds on the
// server's clock; every decision, whatever the number of rules, is one EVALSHA on one key.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "blocktrust/ratelimit.hpp"
#include "blocktrust/redis.hpp"

namespace blocktrust::ratelimit {

/// A limiter whose state lives in Redis, shared by every process that uses the same key prefix,
/// rules and algorithm. Methods throw redis::RedisConnectionError when the store is unreachable
/// (the Python face turns that into the rules' failure policy).
class RedisRateLimiter final {
 public:
  /// `prefix` starts every Redis key; ConfigError for no rules, more than 8, or a rule whose
  /// arithmetic would not be exact in the script's doubles.
  RedisRateLimiter(std::shared_ptr<redis::Client> client, std::vector<Rule> rules,
                   Algorithm algorithm, std::string prefix);

  /// Consumes `cost` units from every rule of `key` if all of them admit it (one round trip).
  [[nodiscard]] Decision hit(std::string_view key, std::int64_t cost = 1);
  /// What hit(key, cost) would decide now, without consuming.
  [[nodiscard]] Decision test(std::string_view key, std::int64_t cost = 1);
  /// Forgets `key`; returns whether it was held.
  bool reset(std::string_view key);
  /// Uses `now_us` instead of the server's TIME (deterministic tests); nullopt: the server's.
  void set_fixed_time_us(std::optional<std::int64_t> now_us) noexcept { fixed_now_us_ = now_us; }
  /// The Redis key holding `key`'s state: `<prefix>{<key>}` (a hash tag: one cluster slot).
  [[nodiscard]] std::string redis_key(std::string_view key) const;
  /// The rules, in order.
  [[nodiscard]] const std::vector<Rule>& rules() const noexcept { return rules_; }
  /// The algorithm.
  [[nodiscard]] Algorithm algorithm() const noexcept { return algorithm_; }
  /// The key prefix.
  [[nodiscard]] const std::string& prefix() const noexcept { return prefix_; }
  /// The SHA-1 of the algorithm's script (what EVALSHA calls).
  [[nodiscard]] const std::string& script_sha() const noexcept;
  /// The client.
  [[nodiscard]] const std::shared_ptr<redis::Client>& client() const noexcept { return client_; }

 private:
  Decision run(std::string_view key, std::int64_t cost, bool consume);

  std::shared_ptr<redis::Client> client_;
  std::vector<Rule> rules_;
  Algorithm algorithm_;
  std::string prefix_;
  std::vector<std::string> rule_args_;  // two numbers (us) per rule: see the script
  std::string rule_resp_;               // the same as RESP bulk strings
  std::string header_;                  // "*<argument count>\r\n"
  std::int64_t min_limit_ = 0;
  std::optional<std::int64_t> fixed_now_us_;
};

/// The Lua source of the decision script of `algorithm` (for inspection and tests).
[[nodiscard]] const std::string& redis_script(Algorithm algorithm);

}  // namespace blocktrust::ratelimit
