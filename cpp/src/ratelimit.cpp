// The in-process rate limiter: per-rule state packed into one 64-bit word, updated with CAS, in a
// sharded hash map whose shards take a reader lock for lookups and a writer lock for inserts only.
#include "blocktrust/ratelimit.hpp"

#include <algorithm>
#include <bit>
#include <chrono>
#include <limits>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>

namespace blocktrust::ratelimit {

__extension__ using i128 = __int128;

namespace {

constexpr std::uint64_t kMask20 = (1ULL << 20) - 1;
constexpr std::uint64_t kMask24 = (1ULL << 24) - 1;
constexpr std::int64_t kMaxSlidingLimit = static_cast<std::int64_t>(kMask20);
constexpr std::int64_t kMaxFixedLimit = std::numeric_limits<std::int32_t>::max();
constexpr std::size_t kMaxRules = 8;
constexpr std::size_t kMaxShards = 1024;
constexpr std::size_t kMinPerShard = 16;

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

// ceil(a / b) for a >= 0, b > 0.
std::int64_t ceil_div(i128 a, i128 b) {
  return static_cast<std::int64_t>((a + b - 1) / b);
}

// One rule's verdict on one state word.
struct Step {
  bool allowed = true;
  std::uint64_t next = 0;  // the state after consuming (only meaningful when allowed)
  std::int64_t remaining = 0;
  std::int64_t reset_after = 0;
  std::int64_t retry_after = 0;
};

}  // namespace

struct RateLimiter::RuleParams {
  std::int64_t limit;
  std::int64_t period;
  std::int64_t emission;  // GCRA: period / limit rounded up, so the rate is never exceeded
  std::int64_t capacity;  // GCRA: limit * emission, the burst tolerance plus one emission
};

// One key's state: a word per rule, the first two inline (one cache line with the map node).
struct RateLimiter::Entry {
  static constexpr std::size_t kInline = 2;
  Entry(std::size_t n, std::uint64_t fresh) {
    if (n > kInline) extra.reset(new std::atomic<std::uint64_t>[n - kInline]);
    for (std::size_t i = 0; i < n; ++i) at(i).store(fresh, std::memory_order_relaxed);
  }
  std::atomic<std::uint64_t>& at(std::size_t i) {
    return i < kInline ? inline_state[i] : extra[i - kInline];
  }
  const std::atomic<std::uint64_t>& at(std::size_t i) const {
    return i < kInline ? inline_state[i] : extra[i - kInline];
  }
  std::atomic<std::uint64_t> inline_state[kInline];
  std::unique_ptr<std::atomic<std::uint64_t>[]> extra;
};

namespace {

// A key with its hash already computed (it also picked the shard), so lookups hash once.
struct HashedKey {
  std::string_view text;
  std::size_t hash;
};

struct KeyHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
  std::size_t operator()(const HashedKey& k) const noexcept { return k.hash; }
};

struct KeyEq {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const noexcept { return a == b; }
  bool operator()(const HashedKey& a, std::string_view b) const noexcept { return a.text == b; }
  bool operator()(std::string_view a, const HashedKey& b) const noexcept { return a == b.text; }
};

}  // namespace

namespace {

// A reader-writer spin lock for the shards: readers (every decision) pay one atomic add and one
// subtract, inline; writers (inserting a new key, evicting) are rare and take precedence, so
// they cannot starve. std::shared_mutex costs about twice as much per decision.
class RwSpinLock {
 public:
  void lock_shared() noexcept {
    while ((state_.fetch_add(1, std::memory_order_acquire) & kWriter) != 0) {
      state_.fetch_sub(1, std::memory_order_relaxed);
      wait_for_writer();
    }
  }
  void unlock_shared() noexcept { state_.fetch_sub(1, std::memory_order_release); }
  void lock() noexcept {
    while ((state_.fetch_or(kWriter, std::memory_order_acquire) & kWriter) != 0) {
      wait_for_writer();
    }
    for (int spins = 0; (state_.load(std::memory_order_acquire) & ~kWriter) != 0; ++spins) {
      backoff(spins);  // readers that got in first finish their (short) decisions
    }
  }
  void unlock() noexcept { state_.fetch_and(~kWriter, std::memory_order_release); }

 private:
  static constexpr std::uint32_t kWriter = 1U << 31;
  void wait_for_writer() const noexcept {
    for (int spins = 0; (state_.load(std::memory_order_relaxed) & kWriter) != 0; ++spins) {
      backoff(spins);
    }
  }
  static void backoff(int spins) noexcept {
    if (spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    } else {
      std::this_thread::yield();
    }
  }
  std::atomic<std::uint32_t> state_{0};
};

}  // namespace

struct alignas(64) RateLimiter::Shard {
  mutable RwSpinLock mu;
  std::unordered_map<std::string, Entry, KeyHash, KeyEq> map;
  std::uint64_t expired = 0;  // guarded by the writer lock
  std::uint64_t evicted = 0;  // guarded by the writer lock
};

namespace {

std::uint64_t fresh_state(Algorithm a) {
  return a == Algorithm::kGcra
             ? std::bit_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::min())
             : 0;
}

template <class R>
Step gcra_step(const R& p, std::uint64_t raw, std::int64_t cost, std::int64_t now, bool consume) {
  Step s;
  const std::int64_t tat = std::max(std::bit_cast<std::int64_t>(raw), now);
  const std::int64_t new_tat = tat + cost * p.emission;
  const std::int64_t backlog = tat - now;  // time until the bucket is full again
  if (new_tat - now > p.capacity) {
    s.allowed = false;
    s.remaining = std::max<std::int64_t>(0, (p.capacity - backlog) / p.emission);
    s.reset_after = backlog;
    s.retry_after = new_tat - p.capacity - now;
    return s;
  }
  const std::int64_t after = consume ? new_tat - now : backlog;
  s.next = std::bit_cast<std::uint64_t>(new_tat);
  s.remaining = std::max<std::int64_t>(0, (p.capacity - after) / p.emission);
  s.reset_after = after;
  return s;
}

template <class R>
Step fixed_step(const R& p, std::uint64_t raw, std::int64_t cost, std::int64_t now, bool consume) {
  Step s;
  const std::int64_t idx = floor_div(now, p.period);
  const auto widx = static_cast<std::uint32_t>(idx);
  const std::int64_t count =
      (raw >> 32) == widx ? static_cast<std::int64_t>(raw & 0xffffffffULL) : 0;
  const std::int64_t to_end = (idx + 1) * p.period - now;
  if (count + cost > p.limit) {
    s.allowed = false;
    s.remaining = p.limit - count;
    s.reset_after = count > 0 ? to_end : 0;
    s.retry_after = to_end;  // cost <= limit, so the next window admits it
    return s;
  }
  const std::int64_t after = consume ? count + cost : count;
  s.next = (static_cast<std::uint64_t>(widx) << 32) | static_cast<std::uint64_t>(count + cost);
  s.remaining = p.limit - after;
  s.reset_after = after > 0 ? to_end : 0;
  return s;
}

template <class R>
Step sliding_step(const R& p, std::uint64_t raw, std::int64_t cost, std::int64_t now,
                  bool consume) {
  Step s;
  const std::int64_t idx = floor_div(now, p.period);
  const std::int64_t e = now - idx * p.period;  // elapsed in the current window
  const std::uint64_t w = static_cast<std::uint64_t>(idx) & kMask24;
  const std::uint64_t sw = raw >> 40;
  std::int64_t prev = 0;
  std::int64_t curr = 0;
  if (sw == w) {
    prev = static_cast<std::int64_t>((raw >> 20) & kMask20);
    curr = static_cast<std::int64_t>(raw & kMask20);
  } else if (sw == ((w - 1) & kMask24)) {
    prev = static_cast<std::int64_t>(raw & kMask20);
  }
  const i128 P = p.period;
  const i128 L = p.limit;
  // weight * period: prev counts for the part of the previous window still inside the slide.
  const i128 used_before = static_cast<i128>(prev) * (P - e) + static_cast<i128>(curr) * P;
  const i128 used_after = used_before + static_cast<i128>(cost) * P;
  auto reset_for = [&](std::int64_t c) -> std::int64_t {
    if (c > 0) return (idx + 2) * p.period - now;
    if (prev > 0) return (idx + 1) * p.period - now;
    return 0;
  };
  if (used_after > L * P) {
    s.allowed = false;
    s.remaining = static_cast<std::int64_t>(std::max<i128>(0, (L * P - used_before) / P));
    s.reset_after = reset_for(curr);
    if (curr + cost <= p.limit) {
      // Admitted once prev's weight has shrunk enough within this window.
      const std::int64_t at = ceil_div(P * (prev - (p.limit - curr - cost)), prev);
      s.retry_after = at - e;
    } else {
      // Needs the next window, where this window's count becomes the weighted one.
      const std::int64_t at = ceil_div(P * (curr - (p.limit - cost)), curr);
      s.retry_after = (idx + 1) * p.period + at - now;
    }
    return s;
  }
  const std::int64_t c_after = curr + cost;
  s.next =
      (w << 40) | (static_cast<std::uint64_t>(prev) << 20) | static_cast<std::uint64_t>(c_after);
  const i128 used = consume ? used_after : used_before;
  s.remaining = static_cast<std::int64_t>((L * P - used) / P);
  s.reset_after = reset_for(consume ? c_after : curr);
  return s;
}

}  // namespace

std::int64_t SteadyClock::now_ns() const noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void ManualClock::advance_ns(std::int64_t delta_ns) {
  if (delta_ns < 0) throw ConfigError("ManualClock.advance: the delta must not be negative");
  now_.fetch_add(delta_ns, std::memory_order_acq_rel);
}

RateLimiter::RateLimiter(std::vector<Rule> rules, Options options)
    : rules_(std::move(rules)),
      algorithm_(options.algorithm),
      max_keys_(options.max_keys),
      clock_(options.clock ? std::move(options.clock) : std::make_shared<SteadyClock>()) {
  if (rules_.empty()) throw ConfigError("a rate limiter needs at least one rule");
  if (rules_.size() > kMaxRules) throw ConfigError("a rate limiter takes at most 8 rules");
  if (max_keys_ < 1) throw ConfigError("max_keys must be at least 1");
  min_limit_ = std::numeric_limits<std::int64_t>::max();
  for (const Rule& r : rules_) {
    if (r.limit < 1 || r.period_ns < 1 || r.limit > r.period_ns) {
      throw ConfigError("invalid rate limit rule '" + r.text + "'");
    }
    if (algorithm_ == Algorithm::kSlidingWindow && r.limit > kMaxSlidingLimit) {
      throw ConfigError("rule '" + r.text + "': sliding_window holds counts up to " +
                        std::to_string(kMaxSlidingLimit) + "; use gcra");
    }
    if (algorithm_ == Algorithm::kFixedWindow && r.limit > kMaxFixedLimit) {
      throw ConfigError("rule '" + r.text + "': fixed_window holds counts up to " +
                        std::to_string(kMaxFixedLimit) + "; use gcra");
    }
    const std::int64_t emission = ceil_div(r.period_ns, r.limit);
    params_.push_back({r.limit, r.period_ns, emission, emission * r.limit});
    min_limit_ = std::min(min_limit_, r.limit);
  }
  std::size_t n = 1;
  while (n * 2 <= kMaxShards && n * 2 * kMinPerShard <= max_keys_) n *= 2;
  per_shard_ = max_keys_ / n;
  shards_.reserve(n);
  for (std::size_t i = 0; i < n; ++i) shards_.push_back(std::make_unique<Shard>());
}

RateLimiter::~RateLimiter() = default;

RateLimiter::Shard& RateLimiter::shard_for(std::string_view key, std::size_t& hash) const {
  hash = KeyHash{}(key);
  // High bits pick the shard so the map (which uses the low bits) stays well spread.
  return *shards_[(hash >> 48) & (shards_.size() - 1)];
}

void RateLimiter::check_cost(std::int64_t cost) const {
  if (cost < 1) throw ConfigError("cost must be at least 1, got " + std::to_string(cost));
  if (cost > min_limit_) {
    throw ConfigError("cost " + std::to_string(cost) + " exceeds the smallest limit (" +
                      std::to_string(min_limit_) + "), so it could never be admitted");
  }
}

namespace {

template <class R>
Step run_step(Algorithm a, const R& p, std::uint64_t raw, std::int64_t cost, std::int64_t now,
              bool consume) {
  switch (a) {
    case Algorithm::kGcra:
      return gcra_step(p, raw, cost, now, consume);
    case Algorithm::kSlidingWindow:
      return sliding_step(p, raw, cost, now, consume);
    case Algorithm::kFixedWindow:
      break;
  }
  return fixed_step(p, raw, cost, now, consume);
}

Decision to_decision(const Step& s, std::int64_t limit, std::size_t index) {
  Decision d;
  d.allowed = s.allowed;
  d.limit = limit;
  d.remaining = s.remaining;
  d.reset_after_ns = s.reset_after;
  d.retry_after_ns = s.retry_after;
  d.rule_index = static_cast<int>(index);
  return d;
}

}  // namespace

Decision RateLimiter::apply(Entry& e, std::int64_t cost, std::int64_t now, bool consume) const {
  const std::size_t n = params_.size();
  if (n == 1) {  // the common case: one word, one CAS loop
    std::atomic<std::uint64_t>& word = e.at(0);
    std::uint64_t raw = word.load(std::memory_order_acquire);
    for (;;) {
      const Step s = run_step(algorithm_, params_[0], raw, cost, now, consume);
      if (!s.allowed || !consume ||
          word.compare_exchange_weak(raw, s.next, std::memory_order_acq_rel,
                                     std::memory_order_acquire)) {
        return to_decision(s, params_[0].limit, 0);
      }
    }
  }

  std::uint64_t raw[kMaxRules];
  Step steps[kMaxRules];
  auto decide = [&](std::size_t upto, bool allowed) {
    // Denied: the rule that keeps it waiting longest. Admitted: the one with least left.
    std::size_t best = upto;
    for (std::size_t i = 0; i < upto; ++i) {
      if (steps[i].allowed != allowed) continue;
      if (best == upto) {
        best = i;
        continue;
      }
      const Step& a = steps[i];
      const Step& b = steps[best];
      if (allowed ? (a.remaining < b.remaining ||
                     (a.remaining == b.remaining && a.reset_after > b.reset_after))
                  : a.retry_after > b.retry_after) {
        best = i;
      }
    }
    return to_decision(steps[best], params_[best].limit, best);
  };

  bool all = true;
  for (std::size_t i = 0; i < n; ++i) {
    raw[i] = e.at(i).load(std::memory_order_acquire);
    steps[i] = run_step(algorithm_, params_[i], raw[i], cost, now, consume);
    all = all && steps[i].allowed;
  }
  if (!all || !consume) return decide(n, all);

  // Every rule admits it: take from each in turn. Another thread may win a word in between; if
  // a rule then refuses, give back what the earlier rules took (the hit never happened).
  for (std::size_t i = 0; i < n; ++i) {
    while (!e.at(i).compare_exchange_weak(raw[i], steps[i].next, std::memory_order_acq_rel,
                                          std::memory_order_acquire)) {
      steps[i] = run_step(algorithm_, params_[i], raw[i], cost, now, consume);
      if (steps[i].allowed) continue;
      for (std::size_t j = 0; j < i; ++j) give_back(e.at(j), params_[j], steps[j].next, cost);
      return decide(i + 1, false);
    }
  }
  return decide(n, true);
}

void RateLimiter::give_back(std::atomic<std::uint64_t>& word, const RuleParams& p,
                            std::uint64_t taken, std::int64_t cost) const {
  const auto c = static_cast<std::uint64_t>(cost);
  std::uint64_t cur = word.load(std::memory_order_acquire);
  for (;;) {
    std::uint64_t back = cur;
    if (algorithm_ == Algorithm::kGcra) {
      // Pulling the TAT back by what we added; if it had been in the past, "now" and the old
      // value both mean a full bucket, so nothing else changes.
      back = std::bit_cast<std::uint64_t>(std::bit_cast<std::int64_t>(cur) - cost * p.emission);
    } else if (algorithm_ == Algorithm::kFixedWindow) {
      if ((cur >> 32) == (taken >> 32)) back = cur - c;  // same window: uncount
    } else {
      const std::uint64_t w = taken >> 40;
      if ((cur >> 40) == w) {
        back = cur - c;
      } else if ((cur >> 40) == ((w + 1) & kMask24)) {
        back = cur - (c << 20);  // the window turned: our units now count as previous
      }
    }
    if (back == cur || word.compare_exchange_weak(cur, back, std::memory_order_acq_rel,
                                                  std::memory_order_acquire)) {
      return;
    }
  }
}

std::int64_t RateLimiter::recovery(const Entry& e, std::int64_t now) const {
  std::int64_t longest = 0;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const std::uint64_t raw = e.at(i).load(std::memory_order_acquire);
    const Step s = run_step(algorithm_, params_[i], raw, 1, now, false);
    longest = std::max(longest, s.remaining == params_[i].limit ? 0 : s.reset_after);
  }
  return longest;
}

void RateLimiter::make_room(Shard& s, std::int64_t now) {
  // Called with the writer lock held and the shard full: drop every key whose quota is back
  // (nothing is lost); only when there is none, drop the one closest to recovering.
  auto soonest = s.map.end();
  std::int64_t soonest_at = 0;
  std::size_t dropped = 0;
  for (auto it = s.map.begin(); it != s.map.end();) {
    const std::int64_t r = recovery(it->second, now);
    if (r == 0) {
      it = s.map.erase(it);
      ++dropped;
      continue;
    }
    if (soonest == s.map.end() || r < soonest_at) {
      soonest = it;
      soonest_at = r;
    }
    ++it;
  }
  s.expired += dropped;
  if (dropped == 0 && soonest != s.map.end()) {
    s.map.erase(soonest);
    ++s.evicted;
  }
}

Decision RateLimiter::hit(std::string_view key, std::int64_t cost) {
  check_cost(cost);
  const std::int64_t now = clock_->now_ns();
  std::size_t hash = 0;
  Shard& s = shard_for(key, hash);
  const HashedKey hk{key, hash};
  {
    std::shared_lock lock(s.mu);
    auto it = s.map.find(hk);
    if (it != s.map.end()) return apply(it->second, cost, now, true);
  }
  std::unique_lock lock(s.mu);
  auto it = s.map.find(hk);
  if (it == s.map.end()) {
    if (s.map.size() >= per_shard_) make_room(s, now);
    it = s.map.try_emplace(std::string(key), params_.size(), fresh_state(algorithm_)).first;
  }
  return apply(it->second, cost, now, true);
}

Decision RateLimiter::test(std::string_view key, std::int64_t cost) const {
  check_cost(cost);
  const std::int64_t now = clock_->now_ns();
  std::size_t hash = 0;
  Shard& s = shard_for(key, hash);
  std::shared_lock lock(s.mu);
  auto it = s.map.find(HashedKey{key, hash});
  if (it != s.map.end()) return apply(it->second, cost, now, false);
  Entry fresh(params_.size(), fresh_state(algorithm_));
  return apply(fresh, cost, now, false);
}

bool RateLimiter::reset(std::string_view key) {
  std::size_t hash = 0;
  Shard& s = shard_for(key, hash);
  std::unique_lock lock(s.mu);
  auto it = s.map.find(HashedKey{key, hash});
  if (it == s.map.end()) return false;
  s.map.erase(it);
  return true;
}

std::size_t RateLimiter::purge_expired() {
  const std::int64_t now = clock_->now_ns();
  std::size_t dropped = 0;
  for (auto& sp : shards_) {
    std::unique_lock lock(sp->mu);
    for (auto it = sp->map.begin(); it != sp->map.end();) {
      if (recovery(it->second, now) == 0) {
        it = sp->map.erase(it);
        ++dropped;
        ++sp->expired;
      } else {
        ++it;
      }
    }
  }
  return dropped;
}

Stats RateLimiter::stats() const {
  Stats st;
  for (const auto& sp : shards_) {
    std::shared_lock lock(sp->mu);
    st.keys += sp->map.size();
    st.expired += sp->expired;
    st.evicted += sp->evicted;
  }
  return st;
}

}  // namespace blocktrust::ratelimit
