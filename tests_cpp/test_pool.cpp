// Pool core: DSN redaction, text-form parsers, settings validation, and a live round trip against
// BLOCKTRUST_TEST_DSN or a throwaway cluster this test starts (most behaviour is tested in pytest).
#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "blocktrust/pool.hpp"
#include "loopback_io.hpp"
#include "pool_dsn.hpp"

namespace pg = blocktrust::pool;

TEST(PgDsn, RedactsEveryForm) {
  EXPECT_EQ(pg::redact_dsn("postgresql://u:secret@h:5/d"), "postgresql://u:***@h:5/d");
  EXPECT_EQ(pg::redact_dsn("postgresql://u@h/d?password=secret&x=1"),
            "postgresql://u@h/d?password=***&x=1");
  EXPECT_EQ(pg::redact_dsn("host=h password='a b' user=u"), "host=h password=*** user=u");
  EXPECT_EQ(pg::redact_dsn("postgresql://h/d"), "postgresql://h/d");
}

TEST(PgDsn, AcceptsSqlalchemyDriverUrls) {
  EXPECT_EQ(pg::strip_driver("postgresql+psycopg2://u@h/d"), "postgresql://u@h/d");
  EXPECT_EQ(pg::strip_driver("postgres+asyncpg://h/d"), "postgres://h/d");
  pg::PoolConfig c;
  c.dsn = "postgresql+psycopg2://u:pw@h:6543/d";
  c.statement_timeout = pg::Millis(250);
  const auto info = pg::build_conninfo(c);
  EXPECT_NE(info.find("port='6543'"), std::string::npos);
  EXPECT_NE(info.find("statement_timeout=250"), std::string::npos);
  EXPECT_NE(info.find("application_name='blocktrust_native'"), std::string::npos);
  c.pgbouncer = true;
  EXPECT_EQ(pg::build_conninfo(c).find("options="), std::string::npos);
}

TEST(PgDsn, BadDsnIsConfigErrorWithoutPassword) {
  pg::PoolConfig c;
  c.dsn = "postgresql://u:topsecret@h/d?bogus_option=1";
  try {
    (void)pg::build_conninfo(c);
    FAIL() << "expected ConfigError";
  } catch (const blocktrust::ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).find("topsecret"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("***"), std::string::npos) << e.what();
  }
}

TEST(PgText, Timestamps) {
  pg::text::DateTime d;
  ASSERT_TRUE(pg::text::parse_timestamp("2024-02-29 13:14:15.5+05:30", d));
  EXPECT_EQ(d.year, 2024);
  EXPECT_EQ(d.day, 29);
  EXPECT_EQ(d.micro, 500000);
  EXPECT_TRUE(d.has_tz);
  EXPECT_EQ(d.tz_seconds, 5 * 3600 + 30 * 60);
  ASSERT_TRUE(pg::text::parse_timestamp("2024-01-01 00:00:00-08", d));
  EXPECT_EQ(d.tz_seconds, -8 * 3600);
  ASSERT_TRUE(pg::text::parse_time("23:59:59.000001", d));
  EXPECT_FALSE(d.has_tz);
  EXPECT_EQ(d.micro, 1);
  EXPECT_FALSE(pg::text::parse_timestamp("infinity", d));
  EXPECT_FALSE(pg::text::parse_date("0044-03-15 BC", d));
  EXPECT_FALSE(pg::text::parse_date("12345-01-01", d));
  EXPECT_TRUE(pg::text::parse_date("2000-12-31", d));
}

TEST(PgText, Bytea) {
  EXPECT_EQ(pg::text::decode_bytea("\\x00ff41"), std::string("\0\xff"
                                                             "A",
                                                             3));
  EXPECT_EQ(pg::text::decode_bytea("\\x"), "");
  EXPECT_THROW(pg::text::decode_bytea("\\x0g"), blocktrust::ConfigError);
  EXPECT_THROW(pg::text::decode_bytea("abc"), blocktrust::ConfigError);
}

TEST(PgPool, RejectsBadSettings) {
  pg::PoolConfig c;
  c.dsn = "postgresql://h/d";
  c.max_size = 0;
  EXPECT_THROW(pg::Pool{c}, blocktrust::ConfigError);
  c.max_size = 2;
  c.min_size = 3;
  EXPECT_THROW(pg::Pool{c}, blocktrust::ConfigError);
}

// A throwaway cluster for the live tests (initdb + pg_ctl, as postgres when we are root). No
// PostgreSQL binaries: the live tests skip; binaries that fail to start a cluster: they fail, with
// the server's log.
class Cluster {
 public:
  Cluster() {
    if (const char* env = std::getenv("BLOCKTRUST_TEST_DSN")) {
      dsn_ = env;
      return;
    }
    std::string bindir;
    for (int v = 20; v >= 12 && bindir.empty(); --v) {
      auto dir = "/usr/lib/postgresql/" + std::to_string(v) + "/bin";
      if (std::filesystem::exists(dir + "/initdb")) bindir = dir;
    }
    if (bindir.empty()) return;
    char tmpl[] = "/tmp/bt-pool-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      error_ = "mkdtemp failed";
      return;
    }
    root_ = tmpl;
    std::string as;
    if (geteuid() == 0) {
      passwd* pw = getpwnam("postgres");
      if (pw == nullptr || chown(root_.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
        error_ = "cannot hand " + root_ + " to the postgres user";
        return;
      }
      as = "runuser -u postgres -- ";
    }
    ctl_ = as + bindir + "/pg_ctl -D " + root_ + "/data";
    // Our shell writes initdb's and pg_ctl's output (as root); the server writes its own log.
    const std::string init_out = root_ + "/initdb.out", ctl_out = root_ + "/pg_ctl.out";
    const std::string log = root_ + "/server.log";
    const std::string init = as + bindir + "/initdb -D " + root_ +
                             "/data -U postgres --auth=trust -E UTF8 --locale=C -N >" + init_out +
                             " 2>&1";
    if (std::system(init.c_str()) != 0) {
      error_ = "initdb failed: " + read_tail(init_out);
      return;
    }
    // A port free a moment ago can be taken before the server binds it: try a few.
    for (int attempt = 0; attempt < 3; ++attempt) {
      const int port = free_port();
      std::string start = ctl_ + " -l " + log;
      start += " -w -o \"-c listen_addresses=127.0.0.1 -p " + std::to_string(port);
      start += " -k " + root_ + " -c fsync=off\" start >" + ctl_out + " 2>&1";
      if (port != 0 && std::system(start.c_str()) == 0) {
        dsn_ = "postgresql://postgres@127.0.0.1:" + std::to_string(port) + "/postgres";
        return;
      }
    }
    error_ = "pg_ctl start failed three times: " + read_tail(ctl_out) + read_tail(log);
  }
  ~Cluster() {
    if (!ctl_.empty()) (void)std::system((ctl_ + " -m immediate -w stop >/dev/null 2>&1").c_str());
    if (!root_.empty()) std::filesystem::remove_all(root_);
  }
  [[nodiscard]] const std::string& dsn() const { return dsn_; }
  [[nodiscard]] const std::string& error() const { return error_; }

 private:
  static std::string read_tail(const std::string& path) {
    std::ifstream in(path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return text.size() > 2000 ? text.substr(text.size() - 2000) : text;
  }
  std::string dsn_, error_, root_, ctl_;
};

// One cluster for the live tests of this binary.
const Cluster& cluster_once() {
  static Cluster c;
  return c;
}

TEST(PgPool, LiveRoundTripsAndRecovery) {
  const Cluster& cluster = cluster_once();
  ASSERT_EQ(cluster.error(), "");
  if (cluster.dsn().empty()) GTEST_SKIP() << "no PostgreSQL binaries and no BLOCKTRUST_TEST_DSN";
  pg::PoolConfig c;
  c.dsn = cluster.dsn();
  c.min_size = 1;
  c.max_size = 2;
  pg::Pool pool(c);
  pool.open_min(pg::Millis(10000));
  {
    auto conn = pool.acquire();
    auto r = conn.execute("SELECT $1::int + 1, $2::text, NULL::int", {{"41", 23}, {"x", 0}});
    ASSERT_EQ(r.rows(), 1);
    EXPECT_EQ(r.value(0, 0), "42");
    EXPECT_EQ(r.value(0, 1), "x");
    EXPECT_TRUE(r.is_null(0, 2));
    EXPECT_THROW(conn.execute("SELECT * FROM missing_table"), pg::DatabaseError);
    conn.execute("BEGIN");
    EXPECT_EQ(conn.tx_status(), pg::TxStatus::kInTransaction);
  }
  {
    auto conn = pool.acquire();  // rolled back on return
    EXPECT_EQ(conn.tx_status(), pg::TxStatus::kIdle);
    // Kill our own session: the statement fails with OperationalError, the pool replaces it.
    EXPECT_THROW(conn.execute("SELECT pg_terminate_backend(pg_backend_pid())"),
                 pg::OperationalError);
  }
  auto conn = pool.acquire();
  EXPECT_EQ(conn.execute("SELECT 1").value(0, 0), "1");
  auto other = pool.acquire();
  EXPECT_THROW(pool.acquire(pg::Millis(100)), pg::PoolTimeout);
  conn.release();
  other.release();
  const auto s = pool.stats();
  EXPECT_EQ(s.in_use, 0u);
  EXPECT_EQ(s.timeouts, 1u);
  EXPECT_GE(s.rollbacks, 1u);
  EXPECT_TRUE(pool.check(pg::Millis(1000)).ok);
  pool.close(pg::Millis(1000));
  EXPECT_THROW(pool.acquire(), pg::PoolClosed);
}

TEST(PgPool, ManyThreadsShareFewConnections) {
  const Cluster& cluster = cluster_once();
  ASSERT_EQ(cluster.error(), "");
  if (cluster.dsn().empty()) GTEST_SKIP() << "no PostgreSQL binaries and no BLOCKTRUST_TEST_DSN";
  pg::PoolConfig c;
  c.dsn = cluster.dsn();
  c.min_size = 1;
  c.max_size = 3;
  c.max_lifetime = pg::Millis(150);  // connections expire and get replaced while in use
  c.maintenance_interval = pg::Millis(10);
  c.validation_threshold = pg::Millis(0);
  pg::Pool pool(c);
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> threads;
  const auto until = pg::Clock::now() + pg::Millis(600);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; pg::Clock::now() < until; ++i) {
        try {
          auto conn = pool.acquire(pg::Millis(5000));
          auto r = conn.execute("SELECT $1::int", {{std::to_string(t * 100000 + i), 23}});
          if (r.value(0, 0) == std::to_string(t * 100000 + i)) ++ok;
        } catch (const std::exception&) {
          ++failed;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_GT(ok.load(), 100);
  EXPECT_EQ(failed.load(), 0);
  const auto s = pool.stats();
  EXPECT_EQ(s.in_use, 0u);
  EXPECT_LE(s.size, 3u);
  EXPECT_EQ(s.acquired, static_cast<std::uint64_t>(ok.load()));
  EXPECT_GT(s.connections_opened, 3u);  // lifetimes forced replacements
}
