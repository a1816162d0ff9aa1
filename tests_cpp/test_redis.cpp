// Redis client: URL parsing and redaction, cluster key slots (known answers from the Redis
// Cluster spec), a typed error when nothing listens, and the shared pipelined connection under
// 16 threads and a server killed and restarted (a redis-server of the test's own, so this runs
// under ASan and UBSan too). The rest of the server-facing behaviour is tested from Python
// (tests_py/test_ratelimit_redis.py).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "blocktrust/ratelimit_redis.hpp"
#include "blocktrust/redis.hpp"
#include "loopback_io.hpp"

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
  const redis::Config s = redis::parse_url(
      "rediss+sentinel://:pw@s1:26380,[::1],s3/my%20master/2?sentinel_password=sp&timeout=1");
  EXPECT_TRUE(s.tls);
  ASSERT_EQ(s.sentinels.size(), 3U);
  EXPECT_EQ(s.sentinels[0], std::make_pair(std::string("s1"), 26380));
  EXPECT_EQ(s.sentinels[1], std::make_pair(std::string("::1"), 26379));
  EXPECT_EQ(s.sentinels[2], std::make_pair(std::string("s3"), 26379));
  EXPECT_EQ(s.service, "my master");
  EXPECT_EQ(s.db, 2);
  EXPECT_EQ(s.password, "pw");  // the master's
  EXPECT_EQ(s.sentinel_password, "sp");
  const redis::Config bare = redis::parse_url("redis://secret@h");
  EXPECT_EQ(bare.password, "secret");  // a lone userinfo is the password (Redis before ACLs)
  EXPECT_EQ(bare.port, 6379);
}

TEST(RedisUrl, ErrorsNameTheProblemWithoutThePassword) {
  for (const char* url : {"redis+sentinel://:pw@h:26379", "http://:pw@h", "redis://:pw@h:0",
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
  EXPECT_EQ(redis::redact_url("redis+sentinel://:a@h/m?timeout=1&sentinel_password=b&db=1"),
            "redis+sentinel://:***@h/m?timeout=1&sentinel_password=***&db=1");
}

TEST(RedisCluster, KeySlotsFollowTheSpec) {
  EXPECT_EQ(redis::key_slot("123456789"), 0x31C3);  // CRC16/XMODEM check value
  EXPECT_EQ(redis::key_slot("{user1000}.following"), redis::key_slot("{user1000}.followers"));
  EXPECT_NE(redis::key_slot("{}x"), redis::key_slot("x"));  // an empty tag hashes the whole key
  EXPECT_EQ(redis::key_slot("rl:ns|{login:ann}"), redis::key_slot("login:ann"));
}

namespace {

// Debian's redis-server in a temp dir on a free loopback port, no persistence.
class TempRedis {
 public:
  TempRedis() : port_(free_port()) {
    char dir[] = "/tmp/blocktrust-redis-cxx-XXXXXX";
    if (::mkdtemp(dir) != nullptr) dir_ = dir;
  }
  ~TempRedis() {
    kill();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  TempRedis(const TempRedis&) = delete;
  TempRedis& operator=(const TempRedis&) = delete;

  static bool available() { return std::filesystem::exists("/usr/bin/redis-server"); }

  // Starts it and waits (30 s at most) until it answers PING.
  bool start() {
    const std::string port = std::to_string(port_);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::execl("/usr/bin/redis-server", "redis-server", "--port", port.c_str(), "--bind",
              "127.0.0.1", "--dir", dir_.c_str(), "--save", "", "--appendonly", "no", "--logfile",
              (dir_ + "/server.log").c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    redis::Config c = redis::parse_url(url());
    c.timeout = redis::Millis(500);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      try {
        redis::Client probe(c);
        if (probe.command({"PING"}).str == "PONG") return true;
      } catch (const blocktrust::Error&) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  void kill() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

  [[nodiscard]] std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

 private:
  int port_;
  std::string dir_;
  pid_t pid_ = -1;
};

}  // namespace

TEST(RedisClient, NothingListeningIsARedisConnectionError) {
  redis::Config c = redis::parse_url("redis://:pw@127.0.0.1:" + std::to_string(free_port()));
  c.timeout = redis::Millis(500);
  redis::Client client(c);
  EXPECT_THROW((void)client.command({"PING"}), redis::RedisConnectionError);
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

TEST(RedisClient, ThreadsShareOnePipelineAndOutliveARestart) {
  if (!TempRedis::available()) GTEST_SKIP() << "redis-server is not installed";
  TempRedis server;
  ASSERT_TRUE(server.start());
  redis::Config c = redis::parse_url(server.url());
  c.timeout = redis::Millis(2000);
  redis::Client client(c);
  constexpr int kThreads = 16;
  constexpr int kEach = 300;
  std::atomic<int> wrong{0};
  auto count = [&](int t) {
    for (int i = 1; i <= kEach; ++i) {
      const redis::Reply r = client.command({"INCR", "k" + std::to_string(t)});
      if (r.type != redis::Reply::Type::kInteger || r.integer != i) ++wrong;
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(count, t);
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);  // every reply went to its own caller, in order
  redis::Stats s = client.stats();
  EXPECT_EQ(s.requests, static_cast<std::uint64_t>(kThreads * kEach));
  EXPECT_LT(s.writes, s.requests);  // requests that met a write in flight shared the next one
  EXPECT_LE(s.connects, 1U);        // 16 threads gather on the first connection

  // Kill the server under load: every call either answers or fails as a RedisConnectionError.
  std::atomic<bool> stop{false};
  std::atomic<int> answered{0};
  std::atomic<int> failed{0};
  threads.clear();
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      while (!stop) {
        try {
          if (client.command({"PING"}).str == "PONG") ++answered;
        } catch (const redis::RedisConnectionError&) {
          ++failed;
        }
      }
    });
  }
  auto wait_for = [](const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return done();
  };
  EXPECT_TRUE(wait_for([&] { return answered > 100; }));
  server.kill();
  EXPECT_TRUE(wait_for([&] { return failed > 0; }));
  ASSERT_TRUE(server.start());  // same port, empty
  const int before = answered;
  EXPECT_TRUE(wait_for([&] { return answered > before + 100; }));
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_GE(client.stats().broken, 1U);
  EXPECT_EQ(client.command({"INCR", "k0"}).integer, 1);  // the new server, empty
}
