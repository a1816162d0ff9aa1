#include "pool_conn.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <pqxx/connection>
#include <pqxx/errorhandler>

namespace blocktrust::pool {

namespace {

// A connect_direct policy that remembers the PGconn it opened, so the pool can drive libpq
// directly (typed parameters, binary bytea, transaction status, cancel requests).
class CapturePolicy final : public pqxx::connect_direct {
 public:
  explicit CapturePolicy(const std::string& opts) : pqxx::connect_direct(opts) {}
  handle do_startconnect(handle h) override {
    raw = pqxx::connect_direct::do_startconnect(h);
    return raw;
  }
  handle do_disconnect(handle h) noexcept override {
    raw = nullptr;
    return pqxx::connect_direct::do_disconnect(h);
  }
  handle raw = nullptr;
};

// Notices (e.g. "there is no transaction in progress") are not errors; keep them off stderr.
class QuietNotices final : public pqxx::errorhandler {
 public:
  using pqxx::errorhandler::errorhandler;
  bool operator()(const char[]) noexcept override { return false; }
};

// libpq sets TCP_USER_TIMEOUT only together with keepalives: with keepalives=0 in a DSN it drops
// tcp_user_timeout silently, and a statement sent to a server that vanished without a FIN would
// wait for the kernel's retransmissions (some fifteen minutes). The pool applies it itself then.
void apply_user_timeout_without_keepalives(PGconn* conn) noexcept {
  PQconninfoOption* opts = PQconninfo(conn);
  if (opts == nullptr) return;
  bool keepalives_off = false;
  long timeout_ms = 0;
  for (auto* o = opts; o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    if (std::strcmp(o->keyword, "keepalives") == 0)
      keepalives_off = std::strtol(o->val, nullptr, 10) == 0;
    if (std::strcmp(o->keyword, "tcp_user_timeout") == 0)
      timeout_ms = std::strtol(o->val, nullptr, 10);
  }
  PQconninfoFree(opts);
  const int fd = PQsocket(conn);
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (!keepalives_off || timeout_ms <= 0 || timeout_ms > INT32_MAX || fd < 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
      (addr.ss_family != AF_INET && addr.ss_family != AF_INET6)) {
    return;  // libpq applied it, or there is nothing to apply (Unix sockets have no TCP)
  }
  const auto ms = static_cast<unsigned int>(timeout_ms);
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms);
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

class PqxxHandle final : public pqxx::connection_base {
 public:
  explicit PqxxHandle(const std::string& opts) : pqxx::connection_base(policy_), policy_(opts) {
    init();
    quiet_ = std::make_unique<QuietNotices>(*this);
  }
  ~PqxxHandle() {
    quiet_.reset();
    close();
  }
  PqxxHandle(const PqxxHandle&) = delete;
  PqxxHandle& operator=(const PqxxHandle&) = delete;
  [[nodiscard]] PGconn* raw() const noexcept { return policy_.raw; }

 private:
  CapturePolicy policy_;
  std::unique_ptr<QuietNotices> quiet_;
};

// ---- Result -------------------------------------------------------------------------------------

void Result::Clear::operator()(pg_result* r) const noexcept {
  PQclear(r);
}
Result::Result(pg_result* res) noexcept : res_(res) {}
int Result::rows() const noexcept {
  return res_ ? PQntuples(res_.get()) : 0;
}
int Result::columns() const noexcept {
  return res_ ? PQnfields(res_.get()) : 0;
}
const char* Result::column_name(int c) const noexcept {
  return PQfname(res_.get(), c);
}
std::uint32_t Result::column_type(int c) const noexcept {
  return PQftype(res_.get(), c);
}
bool Result::is_null(int r, int c) const noexcept {
  return PQgetisnull(res_.get(), r, c) != 0;
}
std::string_view Result::value(int r, int c) const noexcept {
  return {PQgetvalue(res_.get(), r, c), static_cast<std::size_t>(PQgetlength(res_.get(), r, c))};
}
std::int64_t Result::affected() const noexcept {
  if (!res_) return -1;
  const char* n = PQcmdTuples(res_.get());
  if (n == nullptr || *n == '\0') return -1;
  return std::strtoll(n, nullptr, 10);
}

// ---- errors -------------------------------------------------------------------------------------

void throw_result_error(PGresult* res, PGconn* conn) {
  if (res == nullptr) {
    throw OperationalError("connection lost: " + trim(PQerrorMessage(conn)), "08006", "");
  }
  auto field = [&](int code) {
    const char* v = PQresultErrorField(res, code);
    return std::string(v ? v : "");
  };
  std::string state = field(PG_DIAG_SQLSTATE), msg = field(PG_DIAG_MESSAGE_PRIMARY);
  std::string detail = field(PG_DIAG_MESSAGE_DETAIL), hint = field(PG_DIAG_MESSAGE_HINT);
  if (msg.empty()) msg = trim(PQresultErrorMessage(res));
  if (msg.empty()) msg = trim(PQerrorMessage(conn));
  PQclear(res);
  const bool lost = PQstatus(conn) != CONNECTION_OK;
  if (lost || state.rfind("08", 0) == 0 || state.rfind("57P", 0) == 0 || state == "57014") {
    if (state.empty()) state = "08006";
    throw OperationalError(msg, state, detail, hint);
  }
  if (state.rfind("23", 0) == 0) throw IntegrityError(msg, state, detail, hint);
  throw DatabaseError(msg, state, detail, hint);
}

// ---- PhysConn -----------------------------------------------------------------------------------

PhysConn::PhysConn(const std::string& conninfo, const std::string& redacted, std::uint64_t id_,
                   bool prepare, std::size_t cache_size)
    : id(id_), pid(::getpid()), prepare_(prepare), cache_size_(cache_size) {
  try {
    handle_ = std::make_unique<PqxxHandle>(conninfo);
  } catch (const std::exception& e) {
    throw OperationalError("could not connect to " + redacted + ": " + trim(e.what()), "08001", "");
  }
  raw = handle_->raw();
  if (raw == nullptr || PQstatus(raw) != CONNECTION_OK) {
    throw OperationalError("could not connect to " + redacted, "08001", "");
  }
  apply_user_timeout_without_keepalives(raw);
  cancel_ = PQgetCancel(raw);
  created = last_used = Clock::now();
}

PhysConn::~PhysConn() {
  if (cancel_ != nullptr) PQfreeCancel(cancel_);
}

void PhysConn::abandon() noexcept {
  // The parent process still talks over this socket: never send Terminate (or a TLS
  // close_notify), never PQfinish. Closing our copy of the descriptor says nothing to the server
  // while the parent has it open, and lets the session end when the parent ends it. libpq's and
  // libpqxx's memory for it is leaked on purpose (freeing it would speak on the socket).
  if (raw != nullptr && PQsocket(raw) >= 0) (void)::close(PQsocket(raw));
  (void)handle_.release();
  cancel_ = nullptr;
  raw = nullptr;
}

bool PhysConn::ok() const noexcept {
  return raw != nullptr && PQstatus(raw) == CONNECTION_OK;
}

TxStatus PhysConn::tx_status() const noexcept {
  if (raw == nullptr) return TxStatus::kUnknown;
  switch (PQtransactionStatus(raw)) {
    case PQTRANS_IDLE:
      return TxStatus::kIdle;
    case PQTRANS_ACTIVE:
      return TxStatus::kActive;
    case PQTRANS_INTRANS:
      return TxStatus::kInTransaction;
    case PQTRANS_INERROR:
      return TxStatus::kInError;
    default:
      return TxStatus::kUnknown;
  }
}

bool PhysConn::ping() noexcept {
  PGresult* r = PQexec(raw, "");
  const bool good = r != nullptr && PQresultStatus(r) == PGRES_EMPTY_QUERY;
  PQclear(r);
  return good && ok();
}

bool PhysConn::looks_broken() noexcept {
  if (!ok()) return true;
  pollfd p{PQsocket(raw), POLLIN, 0};
  if (p.fd < 0) return true;
  const int n = ::poll(&p, 1, 0);
  if (n == 0) return false;
  // An idle session only ever receives notifications; anything else (a FATAL before the
  // server hangs up, EOF) means it is gone.
  if (n < 0 || !PQconsumeInput(raw) || !ok()) return true;
  bool notified = false;
  while (PGnotify* note = PQnotifies(raw)) {
    notified = true;
    PQfreemem(note);
  }
  return !notified;
}

std::vector<Notification> PhysConn::wait_notifications(Millis timeout) {
  std::vector<Notification> out;
  auto drain = [&] {
    while (PGnotify* n = PQnotifies(raw)) {
      out.push_back({n->relname ? n->relname : "", n->extra ? n->extra : "", n->be_pid});
      PQfreemem(n);
    }
  };
  auto lost = [&] {
    return OperationalError(
        "connection lost while waiting for notifications: " + trim(PQerrorMessage(raw)), "08006",
        "");
  };
  if (!ok()) throw lost();
  if (!PQconsumeInput(raw)) throw lost();
  drain();
  if (!out.empty()) return out;
  pollfd p{PQsocket(raw), POLLIN, 0};
  const int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (n > 0) {
    if (!PQconsumeInput(raw)) throw lost();
    drain();
  }
  if (!ok()) throw lost();
  return out;
}

bool PhysConn::rollback() noexcept {
  PGresult* r = PQexec(raw, "ROLLBACK");
  const bool good = r != nullptr && PQresultStatus(r) == PGRES_COMMAND_OK;
  PQclear(r);
  return good && tx_status() == TxStatus::kIdle;
}

void PhysConn::cancel() noexcept {
  std::lock_guard lk(cancel_mu_);
  if (cancel_ == nullptr) return;
  char buf[256];
  (void)PQcancel(cancel_, buf, sizeof buf);  // best effort: the statement may just have ended
}

Result PhysConn::run(PGresult* res, std::string_view) {
  if (res == nullptr) throw_result_error(res, raw);
  switch (PQresultStatus(res)) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
    case PGRES_EMPTY_QUERY:
      return Result(res);
    case PGRES_COPY_IN:
    case PGRES_COPY_OUT:
    case PGRES_COPY_BOTH: {
      PQclear(res);
      // Leaving COPY mode cleanly is not worth it here: end it and let the pool discard us.
      (void)PQputCopyEnd(raw, "COPY is not supported through the pool");
      while (PGresult* r = PQgetResult(raw)) PQclear(r);
      throw DatabaseError("COPY is not supported by execute()", "0A000", "");
    }
    default:
      throw_result_error(res, raw);
  }
}

Result PhysConn::exec(std::string_view sql, const std::vector<Param>& params) {
  const std::string text(sql);
  if (params.empty()) return run(PQexec(raw, text.c_str()), sql);

  const int n = static_cast<int>(params.size());
  std::vector<const char*> values(params.size());
  std::vector<int> lengths(params.size()), formats(params.size());
  std::vector<Oid> oids(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    const Param& p = params[i];
    values[i] = p.is_null ? nullptr : p.value.data();
    lengths[i] = static_cast<int>(p.value.size());
    formats[i] = p.binary ? 1 : 0;
    oids[i] = p.oid;
  }
  if (!prepare_ || cache_size_ == 0) {
    return run(PQexecParams(raw, text.c_str(), n, oids.data(), values.data(), lengths.data(),
                            formats.data(), 0),
               sql);
  }
  std::string key = text;
  key.push_back('\0');
  key.append(reinterpret_cast<const char*>(oids.data()), oids.size() * sizeof(Oid));
  for (int attempt = 0;; ++attempt) {
    auto it = cache_.find(key);
    if (it == cache_.end()) {
      std::string name = "bt_" + std::to_string(++next_stmt_);
      run(PQprepare(raw, name.c_str(), text.c_str(), n, oids.data()), sql);
      lru_.push_front(key);
      it = cache_.emplace(key, std::make_pair(name, lru_.begin())).first;
      if (cache_.size() > cache_size_) {
        auto old = cache_.find(lru_.back());
        PQclear(PQexec(raw, ("DEALLOCATE " + old->second.first).c_str()));
        cache_.erase(old);
        lru_.pop_back();
      }
    } else {
      lru_.splice(lru_.begin(), lru_, it->second.second);
    }
    try {
      return run(PQexecPrepared(raw, it->second.first.c_str(), n, values.data(), lengths.data(),
                                formats.data(), 0),
                 sql);
    } catch (const DatabaseError& e) {
      // The plan went stale (ALTER TABLE) or someone ran DISCARD/DEALLOCATE: forget it and, if
      // no transaction was aborted by the failure, prepare it again once.
      const bool stale = e.sqlstate() == "0A000" || e.sqlstate() == "26000";
      if (!stale) throw;
      PQclear(PQexec(raw, ("DEALLOCATE " + it->second.first).c_str()));
      lru_.erase(it->second.second);
      cache_.erase(it);
      if (attempt > 0 || tx_status() != TxStatus::kIdle) throw;
    }
  }
}

}  // namespace blocktrust::pool
