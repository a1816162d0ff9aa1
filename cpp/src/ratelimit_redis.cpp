// The Redis-backed limiter: the script mirrors the steps of ratelimit.cpp (same verdicts, same
// choice of the deciding rule) in microseconds, the unit in which Lua's doubles stay exact.
#include "blocktrust/ratelimit_redis.hpp"

#include <openssl/sha.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <limits>

namespace blocktrust::ratelimit {

namespace {

// One script per algorithm, each the same three parts. KEYS[1]: a string holding every rule's
// state, rules separated by '|' (one GET, at most one write: the fewest server calls). ARGV: the
// cost (negative: test, consume nothing), the time in us ('' = the server's TIME), then two
// numbers per rule (gcra: emission interval and capacity in us; the windows: limit and period in
// us). Returns {allowed, rule index, remaining, reset_after_us, retry_after_us}. Every number is
// an integer below 2^53, so Lua's doubles hold them and math.floor of a quotient is exact. The
// code keeps to locals (no table per rule, no closures, no string work for one rule): the
// server's time per call is what limits throughput on a busy Redis.
constexpr const char* kPrologue = R"lua(
local cost = tonumber(ARGV[1])
local consume = cost > 0
if not consume then cost = -cost end
local now = tonumber(ARGV[2])
local slack = 0
if now then
  slack = 60000
else
  local t = redis.call('TIME')
  now = t[1] * 1000000 + t[2]
end
local floor = math.floor
local n = (#ARGV - 2) / 2
local raw = redis.call('GET', KEYS[1])
local parts
if raw and n > 1 then
  parts = {}
  local j = 0
  for p in string.gmatch(raw, '[^|]+') do
    j = j + 1
    parts[j] = p
  end
end
local all = true
local best, brem, breset = 0, 0, 0
local deny, drem, dreset, dretry = 0, 0, 0, -1
local nx = {}
local ttl = 0
local incr = false
for i = 1, n do
  local a, b = tonumber(ARGV[2 * i + 1]), tonumber(ARGV[2 * i + 2])
  local st = raw
  if parts then st = parts[i] end
  local ok, rem, reset, retry = true, 0, 0, 0
)lua";

// a: emission interval, b: capacity (emission x limit). State: the theoretical arrival time.
constexpr const char* kGcra = R"lua(
  local tat = st and tonumber(st) or now
  if tat < now then tat = now end
  local new = tat + cost * a
  local backlog = tat - now
  if new - now > b then
    ok = false
    rem = floor((b - backlog) / a)
    reset = backlog
    retry = new - b - now
  else
    local after = backlog
    if consume then after = new - now end
    rem = floor((b - after) / a)
    reset = after
    nx[i] = new
    if new - now > ttl then ttl = new - now end
  end
  if rem < 0 then rem = 0 end
)lua";

// a: limit, b: period. State: window index x (limit + 1) + count, one integer, so one rule's
// next hit in the same window is an INCRBY.
constexpr const char* kFixed = R"lua(
  local idx = floor(now / b)
  local base = idx * (a + 1)
  local v = st and tonumber(st)
  local count = 0
  if v and v >= base then count = v - base end
  local to_end = (idx + 1) * b - now
  if count + cost > a then
    ok = false
    rem = a - count
    if count > 0 then reset = to_end end
    retry = to_end
  else
    local after = count
    if consume then after = count + cost end
    rem = a - after
    if after > 0 then reset = to_end end
    nx[i] = base + count + cost
    incr = count > 0
    if to_end > ttl then ttl = to_end end
  end
)lua";

// a: limit, b: period. State: 'window:previous count:current count'.
constexpr const char* kSliding = R"lua(
  local idx = floor(now / b)
  local e = now - idx * b
  local prev, curr = 0, 0
  if st then
    local w, p, c = string.match(st, '^(%-?%d+):(%d+):(%d+)$')
    w = tonumber(w)
    if w == idx then
      prev, curr = tonumber(p), tonumber(c)
    elseif w == idx - 1 then
      prev = tonumber(c)
    end
  end
  local before = prev * (b - e) + curr * b
  local c = curr
  if consume then c = curr + cost end
  if before + cost * b > a * b then
    ok = false
    rem = floor((a * b - before) / b)
    if rem < 0 then rem = 0 end
    c = curr
    if curr + cost <= a then
      retry = -floor(-(b * (prev - (a - curr - cost))) / prev) - e
    else
      retry = (idx + 1) * b - floor(-(b * (curr - (a - cost))) / curr) - now
    end
  else
    local used = before
    if consume then used = before + cost * b end
    rem = floor((a * b - used) / b)
    nx[i] = string.format('%d:%d:%d', idx, prev, curr + cost)
    if (idx + 2) * b - now > ttl then ttl = (idx + 2) * b - now end
  end
  if c > 0 then
    reset = (idx + 2) * b - now
  elseif prev > 0 then
    reset = (idx + 1) * b - now
  end
)lua";

// Denied: the rule that keeps the caller waiting longest. Admitted: the one with least left,
// then the longest reset. Ties: the first rule. One write when every rule admits a hit.
constexpr const char* kEpilogue = R"lua(
  if ok then
    if best == 0 or rem < brem or (rem == brem and reset > breset) then
      best, brem, breset = i, rem, reset
    end
  else
    all = false
    if retry > dretry then
      deny, drem, dreset, dretry = i, rem, reset, retry
    end
  end
end
if not all then return {0, deny - 1, drem, dreset, dretry} end
if consume then
  if n == 1 then
    if incr then
      redis.call('INCRBY', KEYS[1], cost)
    else
      redis.call('SET', KEYS[1], nx[1], 'PX', floor((ttl + 999) / 1000) + slack)
    end
  else
    for i = 1, n do
      if type(nx[i]) == 'number' then nx[i] = string.format('%d', nx[i]) end
    end
    redis.call('SET', KEYS[1], table.concat(nx, '|'), 'PX', floor((ttl + 999) / 1000) + slack)
  end
end
return {1, best - 1, brem, breset, 0}
)lua";

struct Script {
  std::string text;
  std::string sha;
  explicit Script(const char* body) : text(std::string(kPrologue) + body + kEpilogue) {
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
    char hex[2 * SHA_DIGEST_LENGTH + 1];
    for (int i = 0; i < SHA_DIGEST_LENGTH; ++i) std::snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    sha.assign(hex, 2 * SHA_DIGEST_LENGTH);
  }
};

const Script& script(Algorithm a) {
  static const Script gcra(kGcra);
  static const Script fixed(kFixed);
  static const Script sliding(kSliding);
  switch (a) {
    case Algorithm::kGcra:
      return gcra;
    case Algorithm::kSlidingWindow:
      return sliding;
    case Algorithm::kFixedWindow:
      break;
  }
  return fixed;
}

constexpr std::int64_t kExact = std::int64_t{1} << 53;  // integers below it: exact doubles

std::int64_t reply_int(const redis::Reply& r, std::size_t i) {
  if (r.type != redis::Reply::Type::kArray || r.elements.size() <= i ||
      r.elements[i].type != redis::Reply::Type::kInteger) {
    throw redis::RedisError("Redis rate limit script: unexpected reply");
  }
  return r.elements[i].integer;
}

}  // namespace

const std::string& redis_script(Algorithm algorithm) {
  return script(algorithm).text;
}

const std::string& RedisRateLimiter::script_sha() const noexcept {
  return script(algorithm_).sha;
}

RedisRateLimiter::RedisRateLimiter(std::shared_ptr<redis::Client> client, std::vector<Rule> rules,
                                   Algorithm algorithm, std::string prefix)
    : client_(std::move(client)),
      rules_(std::move(rules)),
      algorithm_(algorithm),
      prefix_(std::move(prefix)) {
  if (!client_) throw ConfigError("RedisRateLimiter needs a client");
  if (rules_.empty()) throw ConfigError("a rate limiter needs at least one rule");
  if (rules_.size() > 8) throw ConfigError("a rate limiter takes at most 8 rules");
  min_limit_ = std::numeric_limits<std::int64_t>::max();
  for (const Rule& r : rules_) {
    const std::int64_t period_us = r.period_ns / 1000;
    if (r.limit < 1 || period_us < r.limit || r.period_ns % 1000 != 0) {
      throw ConfigError("rule '" + r.text + "': the Redis store needs whole microseconds and " +
                        "at most one unit per microsecond");
    }
    // The sliding window multiplies counts by the period; keep every product exact.
    if (algorithm_ == Algorithm::kSlidingWindow &&
        static_cast<double>(r.limit) * 2.0 * static_cast<double>(period_us) >=
            static_cast<double>(kExact)) {
      throw ConfigError("rule '" + r.text + "': limit x period too large for the Redis store");
    }
    // The fixed window stores window x (limit + 1) + count: below 2^53 until 2112 (2^52 us).
    if (algorithm_ == Algorithm::kFixedWindow && r.limit + 1 >= 2 * period_us) {
      throw ConfigError("rule '" + r.text +
                        "': too many units per microsecond for the Redis store");
    }
    if (algorithm_ == Algorithm::kGcra) {
      const std::int64_t emission = (period_us + r.limit - 1) / r.limit;
      rule_args_.push_back(std::to_string(emission));
      rule_args_.push_back(std::to_string(emission * r.limit));
    } else {
      rule_args_.push_back(std::to_string(r.limit));
      rule_args_.push_back(std::to_string(period_us));
    }
    min_limit_ = std::min(min_limit_, r.limit);
  }
  for (const std::string& a : rule_args_) redis::append_arg(rule_resp_, a);
  header_ = '*';
  header_ += std::to_string(6 + rule_args_.size());
  header_ += "\r\n";
}

std::string RedisRateLimiter::redis_key(std::string_view key) const {
  std::string out;
  out.reserve(prefix_.size() + key.size() + 2);
  out += prefix_;
  out += '{';
  out += key;
  out += '}';
  return out;
}

Decision RedisRateLimiter::run(std::string_view key, std::int64_t cost, bool consume) {
  if (cost < 1) throw ConfigError("cost must be at least 1, got " + std::to_string(cost));
  if (cost > min_limit_) {
    throw ConfigError("cost " + std::to_string(cost) + " exceeds the smallest limit (" +
                      std::to_string(min_limit_) + "), so it could never be admitted");
  }
  const Script& sc = script(algorithm_);
  const std::string rkey = redis_key(key);
  char cost_text[24];
  const auto cost_end =
      std::to_chars(cost_text, cost_text + sizeof cost_text, consume ? cost : -cost).ptr;
  char now_text[24];
  char* now_end = now_text;
  if (fixed_now_us_)
    now_end = std::to_chars(now_text, now_text + sizeof now_text, *fixed_now_us_).ptr;
  // EVALSHA <sha> 1 <key> <cost> <now> <rule args>, straight into RESP.
  auto request = [&](std::string_view verb, std::string_view body) {
    std::string resp;
    resp.reserve(64 + body.size() + rkey.size() + rule_resp_.size());
    resp += header_;
    redis::append_arg(resp, verb);
    redis::append_arg(resp, body);
    redis::append_arg(resp, "1");
    redis::append_arg(resp, rkey);
    redis::append_arg(resp, std::string_view(cost_text, cost_end - cost_text));
    redis::append_arg(resp, std::string_view(now_text, now_end - now_text));
    resp += rule_resp_;
    return resp;
  };
  redis::Reply r = client_->command_resp(request("EVALSHA", sc.sha), rkey);
  if (r.is_error() && r.str.rfind("NOSCRIPT", 0) == 0) {
    // A fresh or restarted server: EVAL runs it once and caches it for the next EVALSHA.
    r = client_->command_resp(request("EVAL", sc.text), rkey);
  }
  if (r.is_error()) throw redis::RedisError("Redis rate limit script failed: " + r.str);
  Decision d;
  d.allowed = reply_int(r, 0) == 1;
  const std::int64_t index = reply_int(r, 1);
  if (index < 0 || index >= static_cast<std::int64_t>(rules_.size())) {
    throw redis::RedisError("Redis rate limit script: rule index out of range");
  }
  d.rule_index = static_cast<int>(index);
  d.limit = rules_[static_cast<std::size_t>(index)].limit;
  d.remaining = reply_int(r, 2);
  d.reset_after_ns = reply_int(r, 3) * 1000;
  d.retry_after_ns = reply_int(r, 4) * 1000;
  return d;
}

Decision RedisRateLimiter::hit(std::string_view key, std::int64_t cost) {
  return run(key, cost, true);
}

Decision RedisRateLimiter::test(std::string_view key, std::int64_t cost) {
  return run(key, cost, false);
}

bool RedisRateLimiter::reset(std::string_view key) {
  const std::string rkey = redis_key(key);
  const redis::Reply r = client_->command({"DEL", rkey}, rkey);
  if (r.is_error()) throw redis::RedisError("Redis DEL failed: " + r.str);
  return r.type == redis::Reply::Type::kInteger && r.integer > 0;
}

}  // namespace blocktrust::ratelimit
