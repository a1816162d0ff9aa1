// The Redis-backed limiter: the script mirrors the steps of ratelimit.cpp (same verdicts, same
// choice of the deciding rule) in microseconds, the unit in which Lua's doubles stay exact.
#include "blocktrust/ratelimit_redis.hpp"

#include <openssl/sha.h>

#include <algorithm>
#include <cstdio>
#include <limits>

namespace blocktrust::ratelimit {

namespace {

// KEYS[1]: a string holding every rule's state, separated by '|' (one GET, one SET PX: the
// fewest server calls; a hash with a field per rule cost a third more redis-server CPU). ARGV:
// consume (1/0), cost, algorithm (g/s/f), now in us ('' = the server's TIME), then limit, period,
// emission (us) per rule. Returns {allowed, rule index, limit, remaining, reset_after_us,
// retry_after_us}.
constexpr const char* kScript = R"lua(
local consume = ARGV[1] == '1'
local cost = tonumber(ARGV[2])
local algo = ARGV[3]
local now = tonumber(ARGV[4])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local n = (#ARGV - 4) / 3
local function fdiv(a, b)
  local q = math.floor(a / b)
  if q * b > a then q = q - 1 elseif (q + 1) * b <= a then q = q + 1 end
  return q
end
local function cdiv(a, b) return -fdiv(-a, b) end
local function int(x) return string.format('%d', x) end
local raw = {}
local stored = redis.call('GET', KEYS[1])
if stored then
  local i = 0
  for part in string.gmatch(stored, '[^|]+') do
    i = i + 1
    raw[i] = part
  end
end
local steps = {}
local all = true
for i = 1, n do
  local b = 4 + (i - 1) * 3
  local L, P, em = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
  local s = {ok = true, rem = 0, reset = 0, retry = 0}
  if algo == 'g' then
    local cap = em * L
    local tat = tonumber(raw[i]) or now
    if tat < now then tat = now end
    local new = tat + cost * em
    local backlog = tat - now
    if new - now > cap then
      s.ok = false
      s.rem = math.max(0, fdiv(cap - backlog, em))
      s.reset = backlog
      s.retry = new - cap - now
    else
      local after = consume and (new - now) or backlog
      s.next = int(new)
      s.ttl = new - now
      s.rem = math.max(0, fdiv(cap - after, em))
      s.reset = after
    end
  elseif algo == 'f' then
    local idx = fdiv(now, P)
    local count = 0
    if raw[i] then
      local w, c = string.match(raw[i], '^(-?%d+):(%d+)$')
      if tonumber(w) == idx then count = tonumber(c) end
    end
    local to_end = (idx + 1) * P - now
    if count + cost > L then
      s.ok = false
      s.rem = L - count
      s.reset = count > 0 and to_end or 0
      s.retry = to_end
    else
      local after = consume and (count + cost) or count
      s.next = int(idx) .. ':' .. int(count + cost)
      s.ttl = to_end
      s.rem = L - after
      s.reset = after > 0 and to_end or 0
    end
  else
    local idx = fdiv(now, P)
    local e = now - idx * P
    local prev, curr = 0, 0
    if raw[i] then
      local w, p, c = string.match(raw[i], '^(-?%d+):(%d+):(%d+)$')
      w = tonumber(w)
      if w == idx then prev, curr = tonumber(p), tonumber(c)
      elseif w == idx - 1 then prev = tonumber(c) end
    end
    local before = prev * (P - e) + curr * P
    local used_after = before + cost * P
    local function reset_for(c)
      if c > 0 then return (idx + 2) * P - now end
      if prev > 0 then return (idx + 1) * P - now end
      return 0
    end
    if used_after > L * P then
      s.ok = false
      s.rem = math.max(0, fdiv(L * P - before, P))
      s.reset = reset_for(curr)
      if curr + cost <= L then
        s.retry = cdiv(P * (prev - (L - curr - cost)), prev) - e
      else
        s.retry = (idx + 1) * P + cdiv(P * (curr - (L - cost)), curr) - now
      end
    else
      s.next = int(idx) .. ':' .. int(prev) .. ':' .. int(curr + cost)
      s.ttl = (idx + 2) * P - now
      local used = consume and used_after or before
      s.rem = fdiv(L * P - used, P)
      s.reset = reset_for(consume and (curr + cost) or curr)
    end
  end
  s.limit = L
  steps[i] = s
  all = all and s.ok
end
-- Denied: the rule that keeps the caller waiting longest. Admitted: the one with least left.
local best = nil
for i = 1, n do
  local s = steps[i]
  if s.ok == all then
    if best == nil then best = i
    else
      local t = steps[best]
      if all then
        if s.rem < t.rem or (s.rem == t.rem and s.reset > t.reset) then best = i end
      elseif s.retry > t.retry then best = i end
    end
  end
end
if all and consume then
  local states, ttl = {}, 0
  for i = 1, n do
    states[i] = steps[i].next
    if steps[i].ttl > ttl then ttl = steps[i].ttl end
  end
  redis.call('SET', KEYS[1], table.concat(states, '|'), 'PX', math.max(1, cdiv(ttl, 1000)))
end
local d = steps[best]
return {all and 1 or 0, best - 1, d.limit, d.rem, d.reset, d.retry}
)lua";

struct Script {
  std::string text = kScript;
  std::string sha;
  Script() {
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
    char hex[2 * SHA_DIGEST_LENGTH + 1];
    for (int i = 0; i < SHA_DIGEST_LENGTH; ++i) std::snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    sha.assign(hex, 2 * SHA_DIGEST_LENGTH);
  }
};

const Script& script() {
  static const Script s;
  return s;
}

constexpr std::int64_t kExact = std::int64_t{1} << 53;  // integers below it: exact doubles

std::int64_t reply_int(const redis::Reply& r, std::size_t i) {
  if (r.type != redis::Reply::Type::kArray || r.elements.size() <= i ||
      r.elements[i].type != redis::Reply::Type::kInteger) {
    throw redis::ReplyError("Redis rate limit script: unexpected reply");
  }
  return r.elements[i].integer;
}

}  // namespace

const std::string& redis_script() {
  return script().text;
}

const std::string& RedisRateLimiter::script_sha() const noexcept {
  return script().sha;
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
    const std::int64_t emission = (period_us + r.limit - 1) / r.limit;
    rule_args_.push_back(std::to_string(r.limit));
    rule_args_.push_back(std::to_string(period_us));
    rule_args_.push_back(std::to_string(emission));
    min_limit_ = std::min(min_limit_, r.limit);
  }
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
  const char algo = algorithm_ == Algorithm::kGcra            ? 'g'
                    : algorithm_ == Algorithm::kSlidingWindow ? 's'
                                                              : 'f';
  const std::string rkey = redis_key(key);
  std::vector<std::string> args;
  args.reserve(8 + rule_args_.size());
  args.insert(args.end(), {"EVALSHA", script().sha, "1", rkey, consume ? "1" : "0",
                           std::to_string(cost), std::string(1, algo),
                           fixed_now_us_ ? std::to_string(*fixed_now_us_) : std::string()});
  args.insert(args.end(), rule_args_.begin(), rule_args_.end());
  redis::Reply r = client_->command(args, rkey);
  if (r.is_error() && r.str.rfind("NOSCRIPT", 0) == 0) {
    // A fresh or restarted server: EVAL runs it once and caches it for the next EVALSHA.
    args[0] = "EVAL";
    args[1] = script().text;
    r = client_->command(args, rkey);
  }
  if (r.is_error()) throw redis::ReplyError("Redis rate limit script failed: " + r.str);
  Decision d;
  d.allowed = reply_int(r, 0) == 1;
  d.rule_index = static_cast<int>(reply_int(r, 1));
  d.limit = reply_int(r, 2);
  d.remaining = reply_int(r, 3);
  d.reset_after_ns = reply_int(r, 4) * 1000;
  d.retry_after_ns = reply_int(r, 5) * 1000;
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
  if (r.is_error()) throw redis::ReplyError("Redis DEL failed: " + r.str);
  return r.type == redis::Reply::Type::kInteger && r.integer > 0;
}

}  // namespace blocktrust::ratelimit
