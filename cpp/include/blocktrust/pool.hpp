// A PostgreSQL connection pool on libpqxx: bounded fair FIFO waiting, a background maintainer
// (min_size, idle and lifetime reaping, broken-connection replacement), validation of connections
// that sat idle, dirty-return rollback, leak warnings, fork detection and stats.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "blocktrust/error.hpp"

struct pg_result;

namespace blocktrust::pool {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

/// Settings of a Pool; durations of zero switch the feature off where noted. These defaults are
/// the only ones: the Python face (blocktrust_native.pool.PoolConfig) reads them.
struct PoolConfig {
  /// libpq URL or key=value string; `postgresql+driver://` (SQLAlchemy) is accepted too.
  std::string dsn;
  /// Connections the maintainer keeps open (idle or in use).
  std::size_t min_size = 1;
  /// Hard cap on open connections, including ones being opened.
  std::size_t max_size = 10;
  /// How long acquire() waits before PoolTimeout (bounded by default).
  Millis acquire_timeout{30'000};
  /// Callers allowed to wait at once; beyond that acquire() fails fast (0: no cap).
  std::size_t max_waiting = 0;
  /// A connection is closed after this age, minus a random up to 10% (0: never).
  Millis max_lifetime{30 * 60'000};
  /// An idle connection above min_size is closed after this long (0: never).
  Millis idle_timeout{10 * 60'000};
  /// A connection idle longer than this gets a round trip before it is handed out.
  Millis validation_threshold{1'000};
  /// Warn (through the leak handler) when a connection is held longer (0: off).
  Millis leak_threshold{0};
  /// Server-side statement_timeout for every session (0: server default).
  Millis statement_timeout{0};
  /// application_name shown in pg_stat_activity ("": the DSN's, else "blocktrust_native").
  std::string application_name;
  /// libpq connect_timeout in seconds (libpq's minimum is 2).
  int connect_timeout = 10;
  /// PgBouncer transaction pooling: no server-side prepared statements, no startup options.
  bool pgbouncer = false;
  /// Prepared statements cached per connection (ignored in PgBouncer mode; 0: none).
  std::size_t statement_cache_size = 128;
  /// How often the maintainer wakes up.
  Millis maintenance_interval{500};
};

/// A statement failed on the server; carries SQLSTATE, primary message and detail.
class DatabaseError : public Error {
 public:
  DatabaseError(const std::string& what, std::string sqlstate, std::string detail,
                std::string hint = {})
      : Error(what),
        sqlstate_(std::move(sqlstate)),
        detail_(std::move(detail)),
        hint_(std::move(hint)) {}
  /// Five-character SQLSTATE ('' when the server sent none, e.g. a lost connection).
  [[nodiscard]] const std::string& sqlstate() const noexcept { return sqlstate_; }
  /// The server's DETAIL line ('' when none).
  [[nodiscard]] const std::string& detail() const noexcept { return detail_; }
  /// The server's HINT line ('' when none).
  [[nodiscard]] const std::string& hint() const noexcept { return hint_; }

 private:
  std::string sqlstate_, detail_, hint_;
};

/// A constraint was violated (SQLSTATE class 23).
class IntegrityError : public DatabaseError {
 public:
  using DatabaseError::DatabaseError;
};

/// The connection was lost or could not be opened, or the statement was cancelled.
class OperationalError : public DatabaseError {
 public:
  using DatabaseError::DatabaseError;
};

/// acquire() waited acquire_timeout without getting a connection.
class PoolTimeout : public Error {
 public:
  PoolTimeout(const std::string& what, double waited) : Error(what), waited_(waited) {}
  /// Seconds the caller waited.
  [[nodiscard]] double waited() const noexcept { return waited_; }

 private:
  double waited_;
};

/// acquire() stopped waiting because its abandon callback asked it to (e.g. Ctrl-C in Python).
class AcquireAbandoned : public Error {
 public:
  AcquireAbandoned() : Error("acquire abandoned") {}
};

/// The pool was closed (or is closing) when a connection was asked for.
class PoolClosed : public Error {
 public:
  using Error::Error;
};

/// One statement parameter in text form (bytea in binary), with its type OID (0: let the server
/// infer it).
struct Param {
  std::string value;
  std::uint32_t oid = 0;
  bool is_null = false;
  bool binary = false;
};

/// The rows of one statement in libpq text format; owns the PGresult.
class Result final {
 public:
  Result() = default;
  explicit Result(pg_result* res) noexcept;
  /// Number of rows returned.
  [[nodiscard]] int rows() const noexcept;
  /// Number of columns returned.
  [[nodiscard]] int columns() const noexcept;
  /// Name of column `c`.
  [[nodiscard]] const char* column_name(int c) const noexcept;
  /// Type OID of column `c`.
  [[nodiscard]] std::uint32_t column_type(int c) const noexcept;
  /// Whether the value at (r, c) is NULL.
  [[nodiscard]] bool is_null(int r, int c) const noexcept;
  /// The text of the value at (r, c).
  [[nodiscard]] std::string_view value(int r, int c) const noexcept;
  /// Rows affected by INSERT/UPDATE/DELETE (or returned by SELECT); -1 when not applicable.
  [[nodiscard]] std::int64_t affected() const noexcept;

 private:
  struct Clear {
    void operator()(pg_result* r) const noexcept;
  };
  std::unique_ptr<pg_result, Clear> res_;
};

/// Server transaction state of a connection, as libpq reports it.
enum class TxStatus { kIdle, kActive, kInTransaction, kInError, kUnknown };

/// A NOTIFY received on a channel the session LISTENs to.
struct Notification {
  std::string channel, payload;
  int backend_pid = 0;  ///< The server process that sent it.
};

/// Pool counters and the spread of recent acquire waits.
struct PoolStats {
  std::size_t size = 0, idle = 0, in_use = 0, waiting = 0, connecting = 0;
  std::size_t min_size = 0, max_size = 0;
  std::uint64_t acquired = 0, timeouts = 0, errors = 0, connections_opened = 0,
                connections_closed = 0, validations = 0, rollbacks = 0, discarded_dirty = 0,
                leaks = 0;
  /// Acquire-wait percentiles over the last 4096 acquires, in seconds.
  double wait_p50 = 0, wait_p90 = 0, wait_p99 = 0, wait_max = 0;
  bool closed = false;
};

/// What the leak handler receives: where the connection was acquired and how long it is held.
struct LeakReport {
  std::string where;
  double held_seconds = 0;
  std::uint64_t connection_id = 0;
};

class Pool;
struct PoolCore;
struct PhysConn;

/// A connection leased from a Pool; returns itself when released or destroyed. One thread at a
/// time (a concurrent call raises Error); cancel() may be called from any thread.
class Connection final {
 public:
  Connection(Connection&&) noexcept;
  Connection& operator=(Connection&&) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  /// Runs one statement ($1..$n parameters); without parameters several statements may be sent.
  Result execute(std::string_view sql, const std::vector<Param>& params = {});
  /// Runs one statement once per parameter set; returns the total of affected rows.
  std::int64_t execute_many(std::string_view sql, const std::vector<std::vector<Param>>& sets);
  /// Asks the server to cancel the statement running on this connection (thread-safe).
  void cancel() noexcept;
  /// The server's transaction state.
  [[nodiscard]] TxStatus tx_status() const noexcept;
  /// Waits up to `timeout` for NOTIFY messages (after LISTEN); throws OperationalError when the
  /// connection is lost.
  std::vector<Notification> wait_notifications(Millis timeout);
  /// Makes this lease a dedicated session (LISTEN, session settings): never reported as a leak,
  /// and closed instead of pooled when released.
  void keep_out_of_pool();
  /// Returns the connection to the pool now (rolled back or discarded if dirty).
  void release() noexcept;
  /// Whether this lease still holds a connection.
  [[nodiscard]] bool active() const noexcept { return conn_ != nullptr; }
  /// Records where the connection was acquired, for leak reports.
  void set_where(std::string where);
  /// Pool-unique id of the physical connection.
  [[nodiscard]] std::uint64_t id() const noexcept;
  /// Backend process id on the server.
  [[nodiscard]] int backend_pid() const noexcept;

 private:
  friend class Pool;
  Connection(std::shared_ptr<PoolCore> core, std::unique_ptr<PhysConn> conn) noexcept;
  PhysConn& live();
  // Leased by the parent before this process was forked.
  [[nodiscard]] bool inherited() const noexcept;
  std::shared_ptr<PoolCore> core_;
  std::unique_ptr<PhysConn> conn_;
};

/// Result of Pool::check(): a round trip through a pooled connection.
struct CheckResult {
  bool ok = false;
  double seconds = 0;
  std::string error;
};

/// A thread-safe pool of PostgreSQL connections.
class Pool final {
 public:
  /// Validates the settings, starts the maintainer; throws ConfigError on bad settings.
  explicit Pool(PoolConfig config);
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  /// Closes with a deadline of zero.
  ~Pool();

  /// Waits (fair FIFO) up to acquire_timeout for a connection.
  Connection acquire();
  /// Waits up to `timeout` for a connection.
  Connection acquire(Millis timeout);
  /// Like acquire(timeout), calling `abandon` (without any pool lock) every 100 ms while it
  /// waits; when that returns true the wait ends with AcquireAbandoned and leaks nothing.
  Connection acquire(Millis timeout, const std::function<bool()>& abandon);
  /// Opens min_size connections now; throws OperationalError when the server cannot be reached.
  void open_min(Millis timeout);
  /// Counters and wait percentiles.
  [[nodiscard]] PoolStats stats() const;
  /// Acquires a connection and runs SELECT 1.
  CheckResult check(Millis timeout);
  /// Refuses new acquires, waits up to `deadline` for leases to return, cancels what still runs.
  void close(Millis deadline);
  /// The DSN with its password replaced by ***.
  [[nodiscard]] std::string redacted_dsn() const;
  /// Receives leak warnings on the maintainer thread.
  void set_leak_handler(std::function<void(const LeakReport&)> handler);
  /// The settings in use.
  [[nodiscard]] const PoolConfig& config() const noexcept { return config_; }

 private:
  // The core of this process: a forked child swaps in a fresh one on first use.
  std::shared_ptr<PoolCore> core() const;
  PoolConfig config_;
  mutable std::atomic<std::shared_ptr<PoolCore>> core_;
  mutable std::atomic<int> pid_{0};
};

/// Helpers for the text forms libpq returns, shared with the bindings.
namespace text {
/// Decodes bytea hex output ("\\x0a1b"); throws ConfigError on malformed input.
std::string decode_bytea(std::string_view hex);
/// Parsed date/time fields of an ISO timestamp, date, time or timetz.
struct DateTime {
  int year = 1, month = 1, day = 1, hour = 0, minute = 0, second = 0, micro = 0;
  bool has_tz = false;
  int tz_seconds = 0;  ///< Offset east of UTC.
};
/// Parses "YYYY-MM-DD"; false on anything else (BC, infinity).
bool parse_date(std::string_view s, DateTime& out);
/// Parses "HH:MM:SS[.ffffff][+HH[:MM[:SS]]]".
bool parse_time(std::string_view s, DateTime& out);
/// Parses "YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM[:SS]]]".
bool parse_timestamp(std::string_view s, DateTime& out);
}  // namespace text

/// Returns `dsn` with any password replaced by *** (URL and key=value forms).
std::string redact_dsn(std::string_view dsn);

}  // namespace blocktrust::pool
