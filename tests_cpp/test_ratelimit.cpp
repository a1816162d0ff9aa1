// Rate limiter: rule parsing, known-answer decisions per algorithm on a manual clock, multi-rule
// semantics, bounded memory and exactness under 16 contending threads.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "blocktrust/ratelimit.hpp"

namespace rl = blocktrust::ratelimit;

namespace {

constexpr std::int64_t kS = 1'000'000'000;

struct Fixture {
  std::shared_ptr<rl::ManualClock> clock = std::make_shared<rl::ManualClock>(1000 * kS);
  rl::RateLimiter make(const std::string& rules, rl::Algorithm a = rl::Algorithm::kGcra,
                       std::size_t max_keys = 1000) {
    return rl::RateLimiter(rl::parse_rules(rules), rl::Options{a, max_keys, clock});
  }
};

std::string numbered(const char* prefix, int i) {
  std::string s(prefix);
  s += std::to_string(i);
  return s;
}

std::string config_error(const std::string& text) {
  try {
    (void)rl::parse_rules(text);
  } catch (const blocktrust::ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(RateLimitRules, ParsesLimitsNotation) {
  auto r = rl::parse_rules("5/15minutes");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].limit, 5);
  EXPECT_EQ(r[0].period_ns, 900 * kS);
  EXPECT_EQ(r[0].text, "5/15minutes");
  r = rl::parse_rules(" 10 per hour ");
  EXPECT_EQ(r[0].limit, 10);
  EXPECT_EQ(r[0].period_ns, 3600 * kS);
  EXPECT_EQ(r[0].text, "10 per hour");
  r = rl::parse_rules("100/second;1000/hour");
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[1].limit, 1000);
  r = rl::parse_rules("1/Second, 2 per 3 days | 4/month;5/2 years");
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0].period_ns, kS);
  EXPECT_EQ(r[1].period_ns, 3 * 86400 * kS);
  EXPECT_EQ(r[2].period_ns, 30 * 86400 * kS);
  EXPECT_EQ(r[3].period_ns, 2 * 360 * 86400 * kS);
}

TEST(RateLimitRules, BadRulesNameTheRule) {
  for (const char* bad : {"", "5", "5/", "/hour", "five/hour", "5/fortnight", "5 hour", "0/second",
                          "5/0 seconds", "5/second extra", "99999999999999999999/second"}) {
    EXPECT_FALSE(config_error(bad).empty()) << bad;
  }
  const std::string msg = config_error("100/second;10/fortnight");
  EXPECT_NE(msg.find("'10/fortnight'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("fortnight"), std::string::npos) << msg;
  EXPECT_THROW((void)rl::parse_algorithm("leaky"), blocktrust::ConfigError);
  EXPECT_EQ(rl::parse_algorithm("Sliding-Window"), rl::Algorithm::kSlidingWindow);
}

TEST(RateLimitGcra, BurstThenExactRetryAfter) {
  Fixture f;
  auto lim = f.make("5/15minutes");
  for (int i = 0; i < 5; ++i) {
    auto d = lim.hit("login:ann");
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.remaining, 4 - i);
    EXPECT_EQ(d.limit, 5);
    EXPECT_EQ(d.reset_after_ns, (i + 1) * 180 * kS);
  }
  auto d = lim.hit("login:ann");
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.remaining, 0);
  EXPECT_EQ(d.retry_after_ns, 180 * kS);
  EXPECT_EQ(d.reset_after_ns, 900 * kS);
  f.clock->advance_ns(180 * kS - 1);
  d = lim.hit("login:ann");
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after_ns, 1);
  f.clock->advance_ns(1);
  EXPECT_TRUE(lim.hit("login:ann").allowed);
  EXPECT_FALSE(lim.hit("login:ann").allowed);
  EXPECT_TRUE(lim.hit("login:bob").allowed);  // keys are independent
}

TEST(RateLimitGcra, UnevenEmissionRoundsUpAndCostWeighs) {
  Fixture f;
  auto lim = f.make("3/second");
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(lim.hit("k").allowed);
  auto d = lim.hit("k");
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after_ns, 333'333'334);  // 1s / 3 rounded up: never faster than the rule
  auto w = f.make("10/minute");
  EXPECT_EQ(w.hit("k", 4).remaining, 6);
  EXPECT_EQ(w.hit("k", 6).remaining, 0);
  d = w.hit("k", 3);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after_ns, 18 * kS);
  EXPECT_THROW((void)w.hit("k", 11), blocktrust::ConfigError);
  EXPECT_THROW((void)w.hit("k", 0), blocktrust::ConfigError);
}

TEST(RateLimitGcra, TestPeeksAndResetForgets) {
  Fixture f;
  auto lim = f.make("2/minute");
  auto t = lim.test("k");
  EXPECT_TRUE(t.allowed);
  EXPECT_EQ(t.remaining, 2);
  EXPECT_EQ(lim.stats().keys, 0u);
  (void)lim.hit("k");
  (void)lim.hit("k");
  t = lim.test("k");
  EXPECT_FALSE(t.allowed);
  EXPECT_EQ(t.retry_after_ns, 30 * kS);
  EXPECT_FALSE(lim.test("k").allowed);  // testing consumed nothing, and changed nothing
  EXPECT_TRUE(lim.reset("k"));
  EXPECT_FALSE(lim.reset("k"));
  EXPECT_TRUE(lim.hit("k").allowed);
}

TEST(RateLimitFixed, CountsPerWindow) {
  Fixture f;
  f.clock->set_ns(1000 * kS + kS / 2);
  auto lim = f.make("3/second", rl::Algorithm::kFixedWindow);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(lim.hit("k").remaining, 2 - i);
  auto d = lim.hit("k");
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after_ns, kS / 2);
  f.clock->advance_ns(kS / 2);
  d = lim.hit("k");
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.remaining, 2);
  EXPECT_EQ(d.reset_after_ns, kS);
}

TEST(RateLimitSliding, WeightsThePreviousWindow) {
  Fixture f;
  f.clock->set_ns(60 * kS * 100);  // the start of a window
  auto lim = f.make("10/minute", rl::Algorithm::kSlidingWindow);
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(lim.hit("k").allowed);
  auto d = lim.hit("k");
  EXPECT_FALSE(d.allowed);
  // All 10 sit in the current window: the next window starts with weight 1 for them, and one
  // unit frees up once a tenth of it has passed.
  EXPECT_EQ(d.retry_after_ns, 66 * kS);
  f.clock->advance_ns(66 * kS - 1);
  EXPECT_FALSE(lim.hit("k").allowed);
  EXPECT_EQ(lim.test("k").retry_after_ns, 1);
  f.clock->advance_ns(1);
  d = lim.hit("k");
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.remaining, 0);     // 10 * 0.9 + 1 = 10
  f.clock->advance_ns(27 * kS);  // 10 * 0.45 + 1 = 5.5
  d = lim.hit("k", 4);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.remaining, 0);  // 4.5 + 5 = 9.5 -> 0 whole units left
  d = lim.hit("k");
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after_ns, 3 * kS);  // 5 + 1 fits once prev's weight is 0.4, 36s in
}

TEST(RateLimitRules, AllRulesMustPassAndTheStrictestDecides) {
  Fixture f;
  auto lim = f.make("2/second;3/minute");
  EXPECT_TRUE(lim.hit("k").allowed);
  auto d = lim.hit("k");
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.rule_index, 0);
  EXPECT_EQ(d.remaining, 0);
  d = lim.hit("k");
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.rule_index, 0);
  EXPECT_EQ(d.retry_after_ns, kS / 2);
  f.clock->advance_ns(kS / 2);
  d = lim.hit("k");
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.rule_index, 1);
  f.clock->advance_ns(kS / 2);
  d = lim.hit("k");
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.rule_index, 1);
  EXPECT_EQ(d.limit, 3);
  EXPECT_EQ(d.retry_after_ns, 19 * kS);
  EXPECT_EQ(lim.test("k").retry_after_ns, 19 * kS);  // the denied hit consumed nothing
}

TEST(RateLimitStore, MaxKeysDropsIdleFirstThenOldest) {
  Fixture f;
  auto lim = f.make("1/minute", rl::Algorithm::kGcra, 16);
  EXPECT_EQ(lim.max_keys(), 16u);
  for (int i = 0; i < 20; ++i) {
    f.clock->advance_ns(1);
    (void)lim.hit(numbered("k", i));
  }
  auto st = lim.stats();
  EXPECT_LE(st.keys, 16u);
  EXPECT_EQ(st.evicted, 4u);
  EXPECT_FALSE(lim.hit("k19").allowed);  // the most recent keys were kept
  f.clock->advance_ns(61 * kS);
  (void)lim.hit("fresh");
  st = lim.stats();
  EXPECT_GE(st.expired, 15u);
  EXPECT_EQ(st.evicted, 4u);
  EXPECT_EQ(lim.purge_expired(), 0u);
  f.clock->advance_ns(61 * kS);
  EXPECT_EQ(lim.purge_expired(), st.keys);
  EXPECT_EQ(lim.stats().keys, 0u);
}

TEST(RateLimitStore, SixteenThreadsNeverAdmitMoreThanTheLimit) {
  for (auto algo :
       {rl::Algorithm::kGcra, rl::Algorithm::kSlidingWindow, rl::Algorithm::kFixedWindow}) {
    for (const char* rules : {"1000/hour", "50/second;100/hour"}) {
      Fixture f;
      auto lim = f.make(rules, algo);
      const std::int64_t expected = lim.rules()[0].limit;
      std::atomic<std::int64_t> admitted{0};
      std::vector<std::thread> threads;
      for (int t = 0; t < 16; ++t) {
        threads.emplace_back([&] {
          for (int i = 0; i < 400; ++i) {
            if (lim.hit("hot").allowed) admitted.fetch_add(1);
            (void)lim.hit(numbered("other", i % 50));
          }
        });
      }
      for (auto& th : threads) th.join();
      EXPECT_EQ(admitted.load(), expected) << rl::algorithm_name(algo) << " " << rules;
    }
  }
}

TEST(RateLimitStore, InsertsAndEvictionsRaceWithDecisions) {
  // A tiny store under churn: writers (new keys, evictions) interleave with readers all along.
  Fixture f;
  auto lim = f.make("3/second;10/minute", rl::Algorithm::kGcra, 64);
  std::vector<std::thread> threads;
  std::atomic<std::int64_t> decisions{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 3000; ++i) {
        (void)lim.hit(numbered(t % 2 == 0 ? "churn" : "hot", (i * 7 + t) % (t % 2 == 0 ? 500 : 8)));
        if (i % 100 == 0) f.clock->advance_ns(kS / 10);
        if (i % 500 == 0) (void)lim.purge_expired();
        decisions.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  const auto st = lim.stats();
  EXPECT_EQ(decisions.load(), 8 * 3000);
  EXPECT_LE(st.keys, 64u);
  EXPECT_GT(st.expired + st.evicted, 0u);
}
