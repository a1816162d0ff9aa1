// The pool core. Locking: PoolCore::mu guards every field below it; connecting, validating and
// closing connections happen outside the lock so one slow server does not stall the pool.
#include "blocktrust/pool.hpp"

#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include "pool_conn.hpp"
#include "pool_dsn.hpp"

namespace blocktrust::pool {

namespace {

constexpr std::size_t kWaitSamples = 4096;

double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

struct Waiter {
  std::condition_variable cv;
  std::unique_ptr<PhysConn> conn;  ///< Handed over by a releasing thread.
};

double jitter_fraction() {
  thread_local std::minstd_rand rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 0.1)(rng);
}

}  // namespace

struct PoolCore {
  PoolCore(PoolConfig c, std::string info, std::string red)
      : cfg(std::move(c)), conninfo(std::move(info)), redacted(std::move(red)), pid(::getpid()) {}
  ~PoolCore() { stop_maintainer(); }

  const PoolConfig cfg;
  const std::string conninfo, redacted;
  const int pid;

  mutable std::mutex mu;
  std::condition_variable maint_cv, drained_cv;
  std::vector<std::unique_ptr<PhysConn>> idle;  // back: most recently returned
  std::deque<Waiter*> waiters;
  std::unordered_map<std::uint64_t, PhysConn*> leased;
  std::size_t total = 0, connecting = 0;
  bool closed = false, stopping = false;
  std::uint64_t next_id = 0;
  PoolStats counters;
  std::vector<double> waits;
  std::size_t wait_pos = 0;
  std::string last_error;
  std::function<void(const LeakReport&)> leak_handler;
  std::thread maintainer;

  std::unique_ptr<PhysConn> open(std::uint64_t id) {
    auto c = std::make_unique<PhysConn>(conninfo, redacted, id, !cfg.pgbouncer,
                                        cfg.statement_cache_size);
    if (cfg.max_lifetime.count() > 0) {
      // Spread expiry so connections opened together do not all reconnect together.
      auto life = std::chrono::duration<double, std::milli>(cfg.max_lifetime.count() *
                                                            (1.0 - jitter_fraction()));
      c->expires = c->created + std::chrono::duration_cast<Clock::duration>(life);
    } else {
      c->expires = Clock::time_point::max();
    }
    return c;
  }

  // With mu held: a healthy connection goes to the first waiter, else to the idle stack.
  void give_back_locked(std::unique_ptr<PhysConn> c, std::vector<std::unique_ptr<PhysConn>>& out) {
    if (closed) {
      --total;
      ++counters.connections_closed;
      out.push_back(std::move(c));
      return;
    }
    if (!waiters.empty()) {
      Waiter* w = waiters.front();
      waiters.pop_front();
      w->conn = std::move(c);
      w->cv.notify_one();
      return;
    }
    idle.push_back(std::move(c));
  }

  // With mu held: a slot was freed or the pool changed state; every waiter re-checks.
  void wake_waiters_locked() {
    for (Waiter* w : waiters) w->cv.notify_one();
    drained_cv.notify_all();
    maint_cv.notify_one();
  }

  std::string state_locked() const {
    char buf[200];
    std::snprintf(buf, sizeof buf,
                  "size %zu/%zu, idle %zu, in use %zu, waiting %zu, connecting %zu", total,
                  cfg.max_size, idle.size(), leased.size(), waiters.size(), connecting);
    return buf;
  }

  void record_wait_locked(double s) {
    if (waits.size() < kWaitSamples) {
      waits.push_back(s);
    } else {
      waits[wait_pos] = s;
      wait_pos = (wait_pos + 1) % kWaitSamples;
    }
  }

  void put_back(std::unique_ptr<PhysConn> c) noexcept {
    if (c->pid != ::getpid() || pid != ::getpid()) {
      c->abandon();  // forked child: the parent owns this socket and this pool's lock
      (void)c.release();
      return;
    }
    bool discard = !c->ok() || c->dedicated;
    bool rolled_back = false, dirty = false;
    if (!discard) {
      switch (c->tx_status()) {
        case TxStatus::kIdle:
          break;
        case TxStatus::kInTransaction:
        case TxStatus::kInError:
          rolled_back = c->rollback();
          discard = !rolled_back;
          dirty = discard;
          break;
        default:
          discard = dirty = true;
      }
    }
    const auto now = Clock::now();
    if (c->expires <= now) discard = true;
    c->last_used = now;
    c->where.clear();
    std::vector<std::unique_ptr<PhysConn>> to_close;
    {
      std::lock_guard lk(mu);
      leased.erase(c->id);
      if (rolled_back) ++counters.rollbacks;
      if (dirty) ++counters.discarded_dirty;
      if (discard) {
        --total;
        ++counters.connections_closed;
        to_close.push_back(std::move(c));
        wake_waiters_locked();
      } else {
        give_back_locked(std::move(c), to_close);
      }
      if (leased.empty()) drained_cv.notify_all();
    }
  }

  void maintain() {
    std::unique_lock lk(mu);
    auto backoff = cfg.maintenance_interval;
    while (!stopping) {
      maint_cv.wait_for(lk, backoff, [&] { return stopping; });
      if (stopping) break;
      const auto now = Clock::now();
      std::vector<std::unique_ptr<PhysConn>> to_close;
      // Oldest-returned first, so the idle surplus above min_size is what gets reaped.
      for (auto it = idle.begin(); it != idle.end();) {
        PhysConn& c = **it;
        const bool expired = c.expires <= now;
        const bool stale = cfg.idle_timeout.count() > 0 && now - c.last_used > cfg.idle_timeout &&
                           total > cfg.min_size;
        if (expired || stale || c.looks_broken()) {
          to_close.push_back(std::move(*it));
          it = idle.erase(it);
          --total;
          ++counters.connections_closed;
        } else {
          ++it;
        }
      }
      std::vector<LeakReport> leaks;
      if (cfg.leak_threshold.count() > 0) {
        for (auto& [id, c] : leased) {
          if (!c->leak_warned && now - c->acquired_at > cfg.leak_threshold) {
            c->leak_warned = true;
            ++counters.leaks;
            leaks.push_back({c->where, seconds(now - c->acquired_at), id});
          }
        }
      }
      auto handler = leak_handler;
      lk.unlock();
      to_close.clear();
      if (handler) {
        for (const auto& l : leaks) handler(l);
      }
      lk.lock();
      backoff = cfg.maintenance_interval;
      while (!closed && !stopping && total + connecting < cfg.min_size) {
        const auto id = ++next_id;
        ++connecting;
        lk.unlock();
        std::unique_ptr<PhysConn> c;
        std::string err;
        try {
          c = open(id);
        } catch (const std::exception& e) {
          err = e.what();
        }
        lk.lock();
        --connecting;
        if (!c) {
          ++counters.errors;
          last_error = err;
          backoff = std::min<Millis>(cfg.maintenance_interval * 4, Millis(2000));
          break;
        }
        ++total;
        ++counters.connections_opened;
        std::vector<std::unique_ptr<PhysConn>> spill;
        give_back_locked(std::move(c), spill);
        lk.unlock();
        spill.clear();
        lk.lock();
      }
    }
  }

  void stop_maintainer() {
    {
      std::lock_guard lk(mu);
      stopping = true;
      maint_cv.notify_all();
    }
    if (maintainer.joinable() && maintainer.get_id() != std::this_thread::get_id()) {
      maintainer.join();
    }
  }
};

// ---- Connection ---------------------------------------------------------------------------------

Connection::Connection(std::shared_ptr<PoolCore> core, std::unique_ptr<PhysConn> conn) noexcept
    : core_(std::move(core)), conn_(std::move(conn)) {}
Connection::Connection(Connection&&) noexcept = default;
Connection& Connection::operator=(Connection&& o) noexcept {
  if (this != &o) {
    release();
    core_ = std::move(o.core_);
    conn_ = std::move(o.conn_);
  }
  return *this;
}
Connection::~Connection() {
  release();
}

void Connection::release() noexcept {
  if (conn_) {
    if (conn_->pid != ::getpid()) {
      // Leased before fork(): the parent owns the session (its statement may still run, holding
      // `busy` in a thread this process does not have). Forget it without a word to the server.
      conn_->abandon();
      (void)conn_.release();  // leaked: its `busy` lock may be held by a thread not copied here
      core_.reset();
      return;
    }
    // Misuse guard: a statement still running on another thread finishes before we return it.
    {
      std::lock_guard wait_idle(conn_->busy);
    }
    core_->put_back(std::move(conn_));
  }
  core_.reset();
}

bool Connection::inherited() const noexcept {
  return conn_ && conn_->pid != ::getpid();
}

PhysConn& Connection::live() {
  if (!conn_) throw Error("the connection was already returned to the pool");
  if (inherited()) {
    throw OperationalError(
        "this connection was leased by the parent process before fork(); a child cannot use it "
        "(release it, and acquire a connection in the child: the pool opens the child's own)",
        "08003", "");
  }
  return *conn_;
}

Result Connection::execute(std::string_view sql, const std::vector<Param>& params) {
  PhysConn& c = live();
  std::unique_lock busy(c.busy, std::try_to_lock);
  if (!busy.owns_lock()) throw Error("the connection is in use by another thread");
  return c.exec(sql, params);
}

std::int64_t Connection::execute_many(std::string_view sql,
                                      const std::vector<std::vector<Param>>& sets) {
  PhysConn& c = live();
  std::unique_lock busy(c.busy, std::try_to_lock);
  if (!busy.owns_lock()) throw Error("the connection is in use by another thread");
  std::int64_t total = 0;
  for (const auto& params : sets) {
    const auto n = c.exec(sql, params).affected();
    if (n > 0) total += n;
  }
  return total;
}

std::vector<Notification> Connection::wait_notifications(Millis timeout) {
  PhysConn& c = live();
  std::unique_lock busy(c.busy, std::try_to_lock);
  if (!busy.owns_lock()) throw Error("the connection is in use by another thread");
  return c.wait_notifications(timeout);
}

void Connection::keep_out_of_pool() {
  PhysConn& c = live();
  std::lock_guard lk(core_->mu);
  c.dedicated = true;
  c.leak_warned = true;
}

void Connection::cancel() noexcept {
  // Never from a forked child: the cancel key is the parent's, so it would stop its statement.
  if (conn_ && !inherited()) conn_->cancel();
}

TxStatus Connection::tx_status() const noexcept {
  return conn_ ? conn_->tx_status() : TxStatus::kUnknown;
}

void Connection::set_where(std::string where) {
  if (!conn_ || inherited()) return;
  std::lock_guard lk(core_->mu);
  conn_->where = std::move(where);
}

std::uint64_t Connection::id() const noexcept {
  return conn_ ? conn_->id : 0;
}
int Connection::backend_pid() const noexcept {
  return conn_ && conn_->raw ? PQbackendPID(conn_->raw) : 0;
}

// ---- Pool ---------------------------------------------------------------------------------------

namespace {

void validate(const PoolConfig& c) {
  auto fail = [](const std::string& m) { throw ConfigError("pool: " + m); };
  if (c.dsn.empty()) fail("dsn is empty");
  if (c.max_size == 0) fail("max_size must be at least 1");
  if (c.min_size > c.max_size) fail("min_size must not exceed max_size");
  if (c.acquire_timeout.count() < 0) fail("acquire_timeout must not be negative");
  if (c.max_lifetime.count() < 0 || c.idle_timeout.count() < 0 || c.leak_threshold.count() < 0 ||
      c.statement_timeout.count() < 0 || c.validation_threshold.count() < 0) {
    fail("durations must not be negative");
  }
  if (c.connect_timeout < 0) fail("connect_timeout must not be negative");
  if (c.maintenance_interval.count() <= 0) fail("maintenance_interval must be positive");
}

std::shared_ptr<PoolCore> make_core(const PoolConfig& cfg) {
  auto core = std::make_shared<PoolCore>(cfg, build_conninfo(cfg), redact_dsn(cfg.dsn));
  core->maintainer = std::thread([c = core.get()] { c->maintain(); });
  return core;
}

// In a forked child: the pool state the parent had at fork() time, taken without waiting (a
// thread of the parent may have held the lock; that thread does not exist here). The parent's
// idle sessions are dropped without a protocol message: their descriptors are closed in this
// process only, so the parent keeps them and the server sees nothing.
struct Inherited {
  bool closed = false;
  std::function<void(const LeakReport&)> leak_handler;
};

Inherited forget_parent_core(PoolCore& old) noexcept {
  Inherited out;
  std::unique_lock lk(old.mu, std::try_to_lock);
  if (!lk.owns_lock()) return out;  // mid-update in the parent: leave it all alone
  out.closed = old.closed;
  try {
    out.leak_handler = old.leak_handler;
  } catch (...) {  // NOLINT(bugprone-empty-catch): std::bad_alloc, the child has no leak handler
  }
  for (auto& c : old.idle) c->abandon();
  return out;
}

}  // namespace

Pool::Pool(PoolConfig config) : config_(std::move(config)) {
  validate(config_);
  pid_ = ::getpid();
  core_ = make_core(config_);
}

Pool::~Pool() {
  auto c = core_.load();
  if (c && c->pid != ::getpid()) {
    // Forked child that never used the pool: the parent owns these sockets and this thread handle.
    new std::shared_ptr<PoolCore>(std::move(c));  // deliberately leaked
    core_.store(nullptr);
    return;
  }
  close(Millis(0));
}

std::shared_ptr<PoolCore> Pool::core() const {
  const int now = ::getpid();
  // Whose core it is, not who claimed the swap: until the new core is in place every thread of
  // a child must wait for it (never hand out the parent's connections meanwhile).
  auto current = core_.load();
  if (current && current->pid == now) return current;
  int seen = pid_.load(std::memory_order_acquire);
  if (seen != now && pid_.compare_exchange_strong(seen, now)) {
    // First use in a forked child (gunicorn's pre-fork workers): a core of our own, with no
    // connection yet; the parent's one is dropped without a word to the server, and leaked (its
    // maintainer thread does not exist here, so it cannot be destroyed).
    Inherited from;
    if (current) from = forget_parent_core(*current);
    auto fresh = make_core(config_);
    {
      std::lock_guard lk(fresh->mu);
      fresh->closed = from.closed;
      fresh->leak_handler = std::move(from.leak_handler);
    }
    auto old = core_.exchange(fresh);
    new std::shared_ptr<PoolCore>(std::move(old));  // deliberately leaked
    return fresh;
  }
  for (;;) {
    auto c = core_.load();
    if (c && c->pid == now) return c;
    std::this_thread::yield();
  }
}

Connection Pool::acquire() {
  return acquire(config_.acquire_timeout, {});
}

Connection Pool::acquire(Millis timeout) {
  return acquire(timeout, {});
}

namespace {

// One caller's way to a connection, in the steps Pool::acquire repeats: take what a releasing
// thread handed over or an idle connection, else open a new one, else wait for a turn; then check
// the lease before handing it out. Every step runs with the pool lock held.
class Acquisition {
 public:
  Acquisition(PoolCore& core, const PoolConfig& config, Millis timeout,
              const std::function<bool()>& abandon)
      : core_(core),
        config_(config),
        abandon_(abandon),
        start_(Clock::now()),
        deadline_(start_ + timeout),
        lk_(core.mu) {}

  // A checked connection, with the pool lock released. Throws PoolClosed, PoolTimeout,
  // AcquireAbandoned, or the error of opening a connection.
  std::unique_ptr<PhysConn> run() {
    for (;;) {
      std::unique_ptr<PhysConn> c = take_handed_over();
      if (!c && core_.closed) {
        dequeue();
        throw PoolClosed("the pool is closed (" + core_.redacted + ")");
      }
      if (!c) c = take_idle();
      if (!c && core_.total + core_.connecting < config_.max_size) c = open_new();
      if (!c) {
        wait_turn();
        continue;
      }
      if (check_lease(c)) return c;
    }
  }

 private:
  // The connection a releasing thread gave this waiter (it also took the waiter off the queue).
  std::unique_ptr<PhysConn> take_handed_over() {
    if (!w_.conn) return nullptr;
    queued_ = false;
    return std::move(w_.conn);
  }

  // An idle connection, when nobody waits or this caller is first in line (FIFO).
  std::unique_ptr<PhysConn> take_idle() {
    const bool my_turn = core_.waiters.empty() || (queued_ && core_.waiters.front() == &w_);
    if (core_.idle.empty() || !my_turn) return nullptr;
    std::unique_ptr<PhysConn> c = std::move(core_.idle.back());
    core_.idle.pop_back();
    dequeue();
    return c;
  }

  // A new connection (opened without the lock), or the one handed over meanwhile (the new one
  // then goes to the pool). A failed open is rethrown unless a connection was handed over.
  std::unique_ptr<PhysConn> open_new() {
    const auto id = ++core_.next_id;
    ++core_.connecting;
    lk_.unlock();
    std::unique_ptr<PhysConn> c;
    std::exception_ptr err;
    try {
      c = core_.open(id);
    } catch (...) {
      err = std::current_exception();
    }
    lk_.lock();
    --core_.connecting;
    if (err) {
      ++core_.counters.errors;
      try {
        std::rethrow_exception(err);
      } catch (const std::exception& e) {
        core_.last_error = e.what();
      }
      if (!w_.conn) {
        dequeue();
        core_.wake_waiters_locked();
        std::rethrow_exception(err);
      }
      return take_handed_over();
    }
    ++core_.total;
    ++core_.counters.connections_opened;
    if (w_.conn) {  // handed one while connecting: pass the new one on
      std::vector<std::unique_ptr<PhysConn>> spill;
      core_.give_back_locked(std::move(c), spill);
      return take_handed_over();
    }
    dequeue();
    return c;
  }

  // Joins the queue (PoolTimeout at once when it is full), then waits until handed a connection,
  // woken, or 100 ms passed with an abandon callback (which may end the wait), or the deadline
  // (PoolTimeout).
  void wait_turn() {
    if (!queued_) {
      if (config_.max_waiting > 0 && core_.waiters.size() >= config_.max_waiting) {
        ++core_.counters.timeouts;
        throw PoolTimeout("pool wait queue is full (" + std::to_string(config_.max_waiting) +
                              " waiting; " + core_.state_locked() + ")",
                          0.0);
      }
      core_.waiters.push_back(&w_);
      queued_ = true;
    }
    const auto until = abandon_ ? std::min(deadline_, Clock::now() + Millis(100)) : deadline_;
    (void)w_.cv.wait_until(lk_, until);
    if (w_.conn) return;
    if (abandon_ && Clock::now() < deadline_) {
      lk_.unlock();  // the callback may take the GIL: never while holding the pool lock
      const bool stop = abandon_();
      lk_.lock();
      if (stop) {
        dequeue();
        std::vector<std::unique_ptr<PhysConn>> spill;
        if (w_.conn) core_.give_back_locked(std::move(w_.conn), spill);
        lk_.unlock();
        throw AcquireAbandoned();
      }
      return;
    }
    if (Clock::now() >= deadline_) {
      dequeue();
      ++core_.counters.timeouts;
      const double waited = seconds(Clock::now() - start_);
      char head[96];
      std::snprintf(head, sizeof head, "no connection available after %.3fs (", waited);
      std::string msg = head + core_.state_locked() + "; " + core_.redacted + ")";
      if (!core_.last_error.empty()) msg += "; last connection error: " + core_.last_error;
      throw PoolTimeout(msg, waited);
    }
  }

  // Checks the connection outside the lock (expired, broken, or idle past the validation
  // threshold and not answering a round trip). True: it is this caller's, the lock released.
  // False: it was closed, the next waiter woken, the lock held again.
  bool check_lease(std::unique_ptr<PhysConn>& c) {
    core_.leased.emplace(c->id, c.get());
    lk_.unlock();
    auto now = Clock::now();
    bool bad = c->expires <= now || c->looks_broken();
    bool validated = false;
    if (!bad && now - c->last_used > config_.validation_threshold) {
      validated = true;
      bad = !c->ping();  // HikariCP's rule: only connections idle for a while get a round trip
      now = Clock::now();
    }
    lk_.lock();
    if (validated) ++core_.counters.validations;
    if (!bad) {
      ++core_.counters.acquired;
      core_.record_wait_locked(seconds(now - start_));
      c->acquired_at = now;
      c->leak_warned = false;
      lk_.unlock();
      return true;
    }
    core_.leased.erase(c->id);
    --core_.total;
    ++core_.counters.connections_closed;
    lk_.unlock();
    c.reset();
    lk_.lock();
    core_.wake_waiters_locked();
    return false;
  }

  // Leaves the wait queue (if in it) and lets the next in line look at the idle connections.
  void dequeue() {
    if (!queued_) return;
    auto it = std::find(core_.waiters.begin(), core_.waiters.end(), &w_);
    if (it != core_.waiters.end()) core_.waiters.erase(it);
    queued_ = false;
    core_.wake_waiters_locked();
  }

  PoolCore& core_;
  const PoolConfig& config_;
  const std::function<bool()>& abandon_;
  const Clock::time_point start_, deadline_;
  Waiter w_;
  bool queued_ = false;
  std::unique_lock<std::mutex> lk_;
};

}  // namespace

Connection Pool::acquire(Millis timeout, const std::function<bool()>& abandon) {
  auto core = this->core();
  std::unique_ptr<PhysConn> c = Acquisition(*core, config_, timeout, abandon).run();
  return Connection(core, std::move(c));
}

void Pool::open_min(Millis timeout) {
  // Holding min_size leases at once makes the pool open that many (or reuse idle ones).
  std::vector<Connection> held;
  const auto deadline = Clock::now() + timeout;
  while (held.size() < config_.min_size) {
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
    held.push_back(acquire(std::max(left, Millis(0))));
  }
}

PoolStats Pool::stats() const {
  auto core = this->core();
  PoolStats s;
  std::vector<double> w;
  {
    std::lock_guard lk(core->mu);
    s = core->counters;
    s.size = core->total;
    s.idle = core->idle.size();
    s.in_use = core->leased.size();
    s.waiting = core->waiters.size();
    s.connecting = core->connecting;
    s.closed = core->closed;
    w = core->waits;
  }
  s.min_size = config_.min_size;
  s.max_size = config_.max_size;
  if (!w.empty()) {
    std::sort(w.begin(), w.end());
    auto pct = [&](double p) {
      return w[std::min(w.size() - 1, static_cast<std::size_t>(p * static_cast<double>(w.size())))];
    };
    s.wait_p50 = pct(0.50);
    s.wait_p90 = pct(0.90);
    s.wait_p99 = pct(0.99);
    s.wait_max = w.back();
  }
  return s;
}

CheckResult Pool::check(Millis timeout) {
  CheckResult r;
  const auto start = Clock::now();
  try {
    auto c = acquire(timeout);
    (void)c.execute("SELECT 1");
    r.ok = true;
  } catch (const std::exception& e) {
    r.error = e.what();
  }
  r.seconds = seconds(Clock::now() - start);
  return r;
}

void Pool::close(Millis deadline) {
  auto core = core_.load();
  if (!core) return;
  // A forked child that never used the pool: what there is belongs to the parent (closing it
  // would send Terminate on the parent's sessions). Take the child's own, empty core and close
  // that: later calls here see a closed pool, the parent sees nothing.
  if (core->pid != ::getpid()) core = this->core();
  std::vector<std::unique_ptr<PhysConn>> to_close;
  {
    std::unique_lock lk(core->mu);
    core->closed = true;
    core->counters.connections_closed += core->idle.size();
    core->total -= core->idle.size();
    to_close.swap(core->idle);
    core->wake_waiters_locked();
  }
  to_close.clear();
  {
    std::unique_lock lk(core->mu);
    if (!core->drained_cv.wait_for(lk, deadline, [&] { return core->leased.empty(); })) {
      // Past the deadline: ask the server to stop what still runs; the leases close their
      // connections when they come back.
      for (auto& [id, c] : core->leased) c->cancel();
    }
  }
  core->stop_maintainer();
}

std::string Pool::redacted_dsn() const {
  return redact_dsn(config_.dsn);
}

void Pool::set_leak_handler(std::function<void(const LeakReport&)> handler) {
  auto core = this->core();
  std::lock_guard lk(core->mu);
  core->leak_handler = std::move(handler);
}

}  // namespace blocktrust::pool
