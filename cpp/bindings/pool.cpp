// blocktrust_native._native.pool: the pool, its settings and its leases, with the GIL released
// around every wait on the network or on the pool. Values cross through pool_values.cpp.
#include "blocktrust/pool.hpp"

#include <pybind11/functional.h>
#include <pybind11/stl.h>

#include <optional>

#include "bindings.hpp"
#include "pool_values.hpp"

// Py_IsFinalizing is public from Python 3.13 on, where the private _Py_IsFinalizing is gone.
#if PY_VERSION_HEX < 0x030D0000
#define Py_IsFinalizing _Py_IsFinalizing
#endif

namespace blocktrust::bindings {

namespace {

namespace pg = blocktrust::pool;

pg::Millis millis(double seconds, const char* name) {
  if (!(seconds >= 0) || seconds > 1e9) {
    throw blocktrust::ConfigError(std::string("pool: ") + name +
                                  " must be a non-negative number of seconds");
  }
  return pg::Millis(static_cast<long long>(seconds * 1000.0 + 0.5));
}

double seconds(pg::Millis ms) {
  return static_cast<double>(ms.count()) / 1000.0;
}

// An optional duration: None (or 0) is off.
py::object optional_seconds(pg::Millis ms) {
  return ms.count() == 0 ? py::object(py::none()) : py::object(py::float_(seconds(ms)));
}
pg::Millis optional_millis(const std::optional<double>& s, const char* name) {
  return s ? millis(*s, name) : pg::Millis(0);
}
py::object optional_text(const std::string& s) {
  return s.empty() ? py::object(py::none()) : py::object(py::str(s));
}

std::size_t size(long long n, const char* name) {
  if (n < 0) throw blocktrust::ConfigError(std::string("pool: ") + name + " must not be negative");
  return static_cast<std::size_t>(n);
}

pg::PoolConfig make_config(long long min_size, long long max_size, double acquire_timeout,
                           long long max_waiting, const std::optional<double>& max_lifetime,
                           const std::optional<double>& idle_timeout, double validation_threshold,
                           const std::optional<double>& leak_threshold,
                           const std::optional<double>& statement_timeout,
                           const std::optional<std::string>& application_name, int connect_timeout,
                           bool pgbouncer, long long statement_cache_size,
                           double maintenance_interval) {
  pg::PoolConfig c;
  c.min_size = size(min_size, "min_size");
  c.max_size = size(max_size, "max_size");
  c.acquire_timeout = millis(acquire_timeout, "acquire_timeout");
  c.max_waiting = size(max_waiting, "max_waiting");
  c.max_lifetime = optional_millis(max_lifetime, "max_lifetime");
  c.idle_timeout = optional_millis(idle_timeout, "idle_timeout");
  c.validation_threshold = millis(validation_threshold, "validation_threshold");
  c.leak_threshold = optional_millis(leak_threshold, "leak_threshold");
  c.statement_timeout = optional_millis(statement_timeout, "statement_timeout");
  c.application_name = application_name.value_or("");
  c.connect_timeout = connect_timeout;
  c.pgbouncer = pgbouncer;
  c.statement_cache_size = size(statement_cache_size, "statement_cache_size");
  c.maintenance_interval = millis(maintenance_interval, "maintenance_interval");
  return c;
}

// The binding's lease: the native lease plus the row count of its last statement.
struct PyConn {
  pg::Connection conn;
  std::int64_t rowcount = -1;
};

// Deleters that drop the GIL: closing may wait for the maintainer thread or roll back on the
// server, and the maintainer may itself be waiting for the GIL (leak handler).
template <class T>
struct NoGilDelete {
  void operator()(T* p) const {
    if (PyGILState_Check()) {
      py::gil_scoped_release nogil;
      delete p;
    } else {
      delete p;
    }
  }
};

// Lets Ctrl-C (and other signal handlers) end a wait for a connection: the handler runs with
// the GIL and leaves its exception set, which acquire_or_raise turns back into a Python error.
bool signal_pending() {
  py::gil_scoped_acquire gil;
  return PyErr_CheckSignals() != 0;
}

pg::Connection acquire_or_raise(pg::Pool& pool, pg::Millis timeout) {
  try {
    py::gil_scoped_release nogil;
    return pool.acquire(timeout, signal_pending);
  } catch (const pg::AcquireAbandoned&) {
    throw py::error_already_set();
  }
}

const char* tx_name(pg::TxStatus s) {
  switch (s) {
    case pg::TxStatus::kIdle:
      return "idle";
    case pg::TxStatus::kActive:
      return "active";
    case pg::TxStatus::kInTransaction:
      return "intrans";
    case pg::TxStatus::kInError:
      return "inerror";
    default:
      return "unknown";
  }
}

}  // namespace

void register_pool(py::module_& parent) {
  init_pool_values();
  auto m = parent.def_submodule("pool", "Native PostgreSQL pool; use blocktrust_native.pool.");

  const pg::PoolConfig defaults{};  // the defaults, from the C++ struct only
  py::class_<pg::PoolConfig>(
      m, "PoolConfig",
      "Settings of a Pool (seconds; None or 0 switches an optional feature off); immutable.")
      .def(py::init(&make_config), py::kw_only(), py::arg("min_size") = defaults.min_size,
           py::arg("max_size") = defaults.max_size,
           py::arg("acquire_timeout") = seconds(defaults.acquire_timeout),
           py::arg("max_waiting") = defaults.max_waiting,
           py::arg("max_lifetime") = optional_seconds(defaults.max_lifetime),
           py::arg("idle_timeout") = optional_seconds(defaults.idle_timeout),
           py::arg("validation_threshold") = seconds(defaults.validation_threshold),
           py::arg("leak_threshold") = optional_seconds(defaults.leak_threshold),
           py::arg("statement_timeout") = optional_seconds(defaults.statement_timeout),
           py::arg("application_name") = optional_text(defaults.application_name),
           py::arg("connect_timeout") = defaults.connect_timeout,
           py::arg("pgbouncer") = defaults.pgbouncer,
           py::arg("statement_cache_size") = defaults.statement_cache_size,
           py::arg("maintenance_interval") = seconds(defaults.maintenance_interval))
      .def_readonly("min_size", &pg::PoolConfig::min_size,
                    "Connections the maintainer keeps open (idle or in use).")
      .def_readonly("max_size", &pg::PoolConfig::max_size,
                    "Hard cap on open connections, including ones being opened.")
      .def_property_readonly(
          "acquire_timeout", [](const pg::PoolConfig& c) { return seconds(c.acquire_timeout); },
          "Seconds acquire() waits before PoolTimeout.")
      .def_readonly(
          "max_waiting", &pg::PoolConfig::max_waiting,
          "Callers allowed to wait at once; beyond that acquire() fails fast (0: no cap).")
      .def_property_readonly(
          "max_lifetime", [](const pg::PoolConfig& c) { return optional_seconds(c.max_lifetime); },
          "A connection is closed after this age, minus a random up to 10% (None: never).")
      .def_property_readonly(
          "idle_timeout", [](const pg::PoolConfig& c) { return optional_seconds(c.idle_timeout); },
          "An idle connection above min_size is closed after this long (None: never).")
      .def_property_readonly(
          "validation_threshold",
          [](const pg::PoolConfig& c) { return seconds(c.validation_threshold); },
          "A connection idle longer than this gets a round trip before it is handed out.")
      .def_property_readonly(
          "leak_threshold",
          [](const pg::PoolConfig& c) { return optional_seconds(c.leak_threshold); },
          "Warn when a connection is held longer (None: off).")
      .def_property_readonly(
          "statement_timeout",
          [](const pg::PoolConfig& c) { return optional_seconds(c.statement_timeout); },
          "Server-side statement_timeout of every session (None: the server's).")
      .def_property_readonly(
          "application_name",
          [](const pg::PoolConfig& c) { return optional_text(c.application_name); },
          "application_name in pg_stat_activity (None: the DSN's, else 'blocktrust_native').")
      .def_readonly("connect_timeout", &pg::PoolConfig::connect_timeout,
                    "libpq connect_timeout in seconds.")
      .def_readonly("pgbouncer", &pg::PoolConfig::pgbouncer,
                    "PgBouncer transaction pooling: no server-side prepared statements.")
      .def_readonly("statement_cache_size", &pg::PoolConfig::statement_cache_size,
                    "Prepared statements cached per connection.")
      .def_property_readonly(
          "maintenance_interval",
          [](const pg::PoolConfig& c) { return seconds(c.maintenance_interval); },
          "How often the maintainer wakes up (seconds).");

  py::class_<PyConn, std::unique_ptr<PyConn, NoGilDelete<PyConn>>>(
      m, "Connection", "A leased connection; release() returns it to the pool.")
      .def(
          "execute",
          [](PyConn& self, const std::string& sql, const py::object& params, bool as_dict) {
            auto ps = to_params(params);
            pg::Result r;
            {
              py::gil_scoped_release nogil;
              r = self.conn.execute(sql, ps);
            }
            self.rowcount = r.affected();
            return to_rows(r, as_dict);
          },
          py::arg("sql"), py::arg("params") = py::none(), py::arg("as_dict") = false,
          "Runs one statement with $1..$n parameters; returns the rows.")
      .def(
          "execute_many",
          [](PyConn& self, const std::string& sql, const py::iterable& sets) {
            std::vector<std::vector<pg::Param>> all;
            for (auto s : sets) all.push_back(to_params(py::reinterpret_borrow<py::object>(s)));
            py::gil_scoped_release nogil;
            self.rowcount = self.conn.execute_many(sql, all);
            return self.rowcount;
          },
          py::arg("sql"), py::arg("params_seq"),
          "Runs one statement per parameter set; returns the total of affected rows.")
      .def(
          "cancel",
          [](PyConn& self) {
            py::gil_scoped_release nogil;
            self.conn.cancel();
          },
          "Asks the server to cancel the running statement (callable from any thread).")
      .def(
          "release",
          [](PyConn& self) {
            py::gil_scoped_release nogil;
            self.conn.release();
          },
          "Returns the connection to the pool (rolled back or discarded if dirty).")
      .def(
          "wait_notifications",
          [](PyConn& self, double timeout) {
            auto t = millis(timeout, "timeout");
            std::vector<pg::Notification> got;
            {
              py::gil_scoped_release nogil;
              got = self.conn.wait_notifications(t);
            }
            py::list out;
            for (auto& n : got) out.append(py::make_tuple(n.channel, n.payload, n.backend_pid));
            return out;
          },
          py::arg("timeout"),
          "Waits up to timeout s for NOTIFY messages: [(channel, payload, backend_pid)].")
      .def(
          "keep_out_of_pool", [](PyConn& self) { self.conn.keep_out_of_pool(); },
          "Dedicated session: closed on release, never reported as a leak.")
      .def(
          "set_where", [](PyConn& self, std::string w) { self.conn.set_where(std::move(w)); },
          "Records where the connection was acquired, for leak warnings.")
      .def_property_readonly(
          "rowcount", [](const PyConn& s) { return s.rowcount; },
          "Rows affected by the last statement (-1: not applicable).")
      .def_property_readonly(
          "active", [](const PyConn& s) { return s.conn.active(); },
          "Whether the lease still holds a connection.")
      .def_property_readonly(
          "tx_status", [](const PyConn& s) { return tx_name(s.conn.tx_status()); },
          "idle, active, intrans, inerror or unknown.")
      .def_property_readonly(
          "id", [](const PyConn& s) { return s.conn.id(); },
          "Pool-unique id of the physical connection.")
      .def_property_readonly(
          "backend_pid", [](const PyConn& s) { return s.conn.backend_pid(); },
          "Server process id of the session.");

  py::class_<pg::Pool, std::unique_ptr<pg::Pool, NoGilDelete<pg::Pool>>>(
      m, "Pool", "A thread-safe PostgreSQL connection pool.")
      .def(py::init([](const std::string& dsn, const pg::PoolConfig& config) {
             pg::PoolConfig c = config;
             c.dsn = dsn;
             return std::unique_ptr<pg::Pool, NoGilDelete<pg::Pool>>(new pg::Pool(std::move(c)));
           }),
           py::arg("dsn"), py::arg("config"))
      .def(
          "acquire",
          [](pg::Pool& self, const py::object& timeout) {
            auto t = timeout.is_none() ? self.config().acquire_timeout
                                       : millis(timeout.cast<double>(), "timeout");
            return std::unique_ptr<PyConn, NoGilDelete<PyConn>>(
                new PyConn{acquire_or_raise(self, t)});
          },
          py::arg("timeout") = py::none(), "Waits (FIFO) for a connection.")
      .def(
          "execute",
          [](pg::Pool& self, const std::string& sql, const py::object& params, bool as_dict) {
            auto ps = to_params(params);
            auto c = acquire_or_raise(self, self.config().acquire_timeout);
            pg::Result r;
            {
              py::gil_scoped_release nogil;
              pg::Connection lease = std::move(c);  // returned here, without the GIL, on any exit
              r = lease.execute(sql, ps);
            }
            return to_rows(r, as_dict);
          },
          py::arg("sql"), py::arg("params") = py::none(), py::arg("as_dict") = false,
          "Acquires, runs one statement, releases; returns the rows.")
      .def(
          "open_min",
          [](pg::Pool& self, double timeout) {
            auto t = millis(timeout, "timeout");
            py::gil_scoped_release nogil;
            self.open_min(t);
          },
          py::arg("timeout"), "Opens min_size connections now.")
      .def(
          "stats",
          [](const pg::Pool& self) {
            auto s = self.stats();
            py::dict d;
            d["size"] = s.size;
            d["idle"] = s.idle;
            d["in_use"] = s.in_use;
            d["waiting"] = s.waiting;
            d["connecting"] = s.connecting;
            d["min_size"] = s.min_size;
            d["max_size"] = s.max_size;
            d["acquired"] = s.acquired;
            d["timeouts"] = s.timeouts;
            d["errors"] = s.errors;
            d["connections_opened"] = s.connections_opened;
            d["connections_closed"] = s.connections_closed;
            d["validations"] = s.validations;
            d["rollbacks"] = s.rollbacks;
            d["discarded_dirty"] = s.discarded_dirty;
            d["leaks"] = s.leaks;
            d["wait_p50"] = s.wait_p50;
            d["wait_p90"] = s.wait_p90;
            d["wait_p99"] = s.wait_p99;
            d["wait_max"] = s.wait_max;
            d["closed"] = s.closed;
            return d;
          },
          "Counters and acquire-wait percentiles (seconds).")
      .def(
          "check",
          [](pg::Pool& self, double timeout) {
            auto t = millis(timeout, "timeout");
            pg::CheckResult r;
            {
              py::gil_scoped_release nogil;
              r = self.check(t);
            }
            py::dict d;
            d["ok"] = r.ok;
            d["seconds"] = r.seconds;
            d["error"] = r.ok ? py::object(py::none()) : py::object(py::str(r.error));
            return d;
          },
          py::arg("timeout"), "Runs SELECT 1 through the pool.")
      .def(
          "close",
          [](pg::Pool& self, double deadline) {
            auto t = millis(deadline, "deadline");
            py::gil_scoped_release nogil;
            self.close(t);
          },
          py::arg("deadline") = 0.0, "Drains the pool, waiting up to deadline seconds.")
      .def(
          "set_leak_handler",
          [](pg::Pool& self, const py::function& fn) {
            // The maintainer copies the handler without the GIL: share it through a pointer
            // whose last owner takes the GIL to drop the reference.
            std::shared_ptr<py::object> held(new py::object(fn), [](py::object* o) {
              if (Py_IsInitialized() == 0 || Py_IsFinalizing()) return;  // leak at exit
              py::gil_scoped_acquire gil;
              delete o;
            });
            self.set_leak_handler([held](const pg::LeakReport& r) {
              if (Py_IsInitialized() == 0 || Py_IsFinalizing()) return;
              py::gil_scoped_acquire gil;
              try {
                (*held)(r.where, r.held_seconds, r.connection_id);
              } catch (py::error_already_set& e) {
                e.discard_as_unraisable("blocktrust_native.pool leak handler");
              }
            });
          },
          py::arg("handler"), "Calls handler(where, held_seconds, connection_id) on leaks.")
      .def_property_readonly("redacted_dsn", &pg::Pool::redacted_dsn,
                             "The DSN with its password replaced by ***.");

  m.def(
      "redact_dsn", [](const std::string& dsn) { return pg::redact_dsn(dsn); }, py::arg("dsn"),
      "Returns the DSN with any password replaced by ***.");
}

}  // namespace blocktrust::bindings
