// Redis client: URL parsing and redaction, cluster key slots (known answers from the Redis
// Cluster spec), and a typed error when nothing listens. The server-facing behaviour is tested
// from Python against a real redis-server (tests_py/test_ratelimit_redis.py).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "blocktrust/ratelimit_redis.hpp"
#include "blocktrust/redis.hpp"

namespace redis = blocktrust::redis;

TEST(RedisUrl, ParsesEveryPart) {
  const redis::Config c =
      redis::parse_url("rediss://app:p%40ss@cache.internal:6380/3?timeout=0.5&pool_size=8");
  EXPECT_TRUE(c.tls);
  EXPECT_TRUE(c.tls_verify);
  EXPECT_EQ(c.host, "cache.internal");
  EXPECT_EQ(c.port, 6380);
  EXPECT_EQ(c.username, "app");
  EXPECT_EQ(c.password, "p@ss");
  EXPECT_EQ(c.db, 3);
  EXPECT_EQ(c.timeout.count(), 500);
  EXPECT_EQ(c.pool_size, 8U);
  const redis::Config v6 = redis::parse_url("redis+cluster://[::1]:7000");
  EXPECT_TRUE(v6.cluster);
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.port, 7000);
  const redis::Config bare = redis::parse_url("redis://secret@h");
  EXPECT_EQ(bare.password, "secret");  // a lone userinfo is the password (Redis before ACLs)
  EXPECT_EQ(bare.port, 6379);
}

TEST(RedisUrl, ErrorsNameTheProblemWithoutThePassword) {
  for (const char* url : {"redis+sentinel://:pw@h:26379/m", "http://:pw@h", "redis://:pw@h:0",
                          "redis://:pw@h/x", "redis://:pw@h/0?nope=1"}) {
    try {
      (void)redis::parse_url(url);
      FAIL() << url;
    } catch (const blocktrust::ConfigError& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.find("pw@"), std::string::npos) << what;
      EXPECT_NE(what.find("***"), std::string::npos) << what;
    }
  }
  EXPECT_EQ(redis::redact_url("redis://u:pw@h:1/0"), "redis://u:***@h:1/0");
  EXPECT_EQ(redis::redact_url("redis://h:1/0"), "redis://h:1/0");
}

TEST(RedisCluster, KeySlotsFollowTheSpec) {
  EXPECT_EQ(redis::key_slot("123456789"), 0x31C3);  // CRC16/XMODEM check value
  EXPECT_EQ(redis::key_slot("{user1000}.following"), redis::key_slot("{user1000}.followers"));
  EXPECT_NE(redis::key_slot("{}x"), redis::key_slot("x"));  // an empty tag hashes the whole key
  EXPECT_EQ(redis::key_slot("rl:ns|{login:ann}"), redis::key_slot("login:ann"));
}

TEST(RedisClient, NothingListeningIsAConnectionError) {
  // A port that was free a moment ago: bind, read it, close.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  redis::Config c =
      redis::parse_url("redis://:pw@127.0.0.1:" + std::to_string(ntohs(addr.sin_port)));
  c.timeout = redis::Millis(500);
  redis::Client client(c);
  EXPECT_THROW((void)client.command({"PING"}), redis::ConnectionError);
  EXPECT_EQ(client.stats().open, 0U);
}

TEST(RedisRateLimiter, RejectsRulesTheScriptCannotHoldExactly) {
  auto client = std::make_shared<redis::Client>(redis::parse_url("redis://127.0.0.1:1"));
  namespace rl = blocktrust::ratelimit;
  EXPECT_THROW(rl::RedisRateLimiter(client, rl::parse_rules("1000000/day"),
                                    rl::Algorithm::kSlidingWindow, "p:"),
               blocktrust::ConfigError);
  EXPECT_NO_THROW(
      rl::RedisRateLimiter(client, rl::parse_rules("5/15minutes"), rl::Algorithm::kGcra, "p:"));
  for (const auto a :
       {rl::Algorithm::kGcra, rl::Algorithm::kSlidingWindow, rl::Algorithm::kFixedWindow}) {
    EXPECT_NE(rl::redis_script(a).find("redis.call('TIME')"), std::string::npos);
  }
}
