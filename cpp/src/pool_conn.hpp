// One physical PostgreSQL connection of the pool: opened through libpqxx, driven through its
// libpq handle (parameters with type OIDs, binary bytea, transaction status, cancel).
#pragma once

#include <libpq-fe.h>

#include <atomic>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "blocktrust/pool.hpp"

namespace blocktrust::pool {

class PqxxHandle;  // pg_conn.cpp: the libpqxx connection object that owns the PGconn

struct PhysConn {
  /// Opens a connection; throws OperationalError (message names the redacted DSN).
  PhysConn(const std::string& conninfo, const std::string& redacted, std::uint64_t id, bool prepare,
           std::size_t cache_size);
  ~PhysConn();
  PhysConn(const PhysConn&) = delete;
  PhysConn& operator=(const PhysConn&) = delete;

  /// Runs a statement: unnamed (PgBouncer-safe) or through the prepared-statement cache.
  Result exec(std::string_view sql, const std::vector<Param>& params);
  /// An empty-query round trip; false when the connection is unusable.
  bool ping() noexcept;
  /// Without a round trip: whether the server closed the connection or sent an error.
  bool looks_broken() noexcept;
  /// Whether libpq considers the connection alive.
  [[nodiscard]] bool ok() const noexcept;
  [[nodiscard]] TxStatus tx_status() const noexcept;
  /// ROLLBACK; false when that failed.
  bool rollback() noexcept;
  /// Sends a cancel request for the running statement (thread-safe).
  void cancel() noexcept;
  /// Waits for notifications (see Connection::wait_notifications).
  std::vector<Notification> wait_notifications(Millis timeout);
  /// In a forked child: forget the session without telling the server (the parent owns it);
  /// closes this process's copy of the descriptor only.
  void abandon() noexcept;

  PGconn* raw = nullptr;
  std::uint64_t id;
  int pid;  ///< The process that opened it.
  Clock::time_point created, expires, last_used;
  Clock::time_point acquired_at;
  std::string where;
  bool leak_warned = false;
  bool dedicated = false;  ///< Closed on release, exempt from leak warnings.
  std::mutex busy;         ///< Held while a statement runs, to refuse concurrent use.

 private:
  std::unique_ptr<PqxxHandle> handle_;
  PGcancel* cancel_ = nullptr;
  std::mutex cancel_mu_;
  bool prepare_;
  std::size_t cache_size_;
  std::uint64_t next_stmt_ = 0;
  // sql + parameter OIDs -> statement name; LRU order in lru_ (front: most recent).
  std::list<std::string> lru_;
  std::unordered_map<std::string, std::pair<std::string, std::list<std::string>::iterator>> cache_;
  Result run(PGresult* res, std::string_view sql);
};

/// Throws the DatabaseError family for a failed result (consumes `res`).
[[noreturn]] void throw_result_error(PGresult* res, PGconn* conn);

}  // namespace blocktrust::pool
