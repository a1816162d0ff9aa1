// blocktrust_native._native.redis: thin bindings of the Redis client and the Redis-backed rate
// limiter; every call that talks to the server releases the GIL.
#include "blocktrust/redis.hpp"

#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "blocktrust/ratelimit_redis.hpp"

namespace blocktrust::bindings {

namespace {

namespace rl = blocktrust::ratelimit;

py::object to_python(const redis::Reply& r) {
  switch (r.type) {
    case redis::Reply::Type::kNil:
      return py::none();
    case redis::Reply::Type::kInteger:
      return py::int_(r.integer);
    case redis::Reply::Type::kString:
      return py::bytes(r.str);
    case redis::Reply::Type::kStatus:
      return py::str(r.str);
    case redis::Reply::Type::kError:
      break;
    case redis::Reply::Type::kArray: {
      py::list out;
      for (const redis::Reply& e : r.elements) out.append(to_python(e));
      return out;
    }
  }
  set_python_error("RedisError", r.str.c_str());
  throw py::error_already_set();
}

}  // namespace

void register_redis(py::module_& m) {
  auto sub = m.def_submodule("redis", "Redis client and the Redis-backed rate limiter.");

  sub.def("redact_url", &redis::redact_url, py::arg("url"),
          "The URL with its password replaced by ***.");
  sub.def("key_slot", &redis::key_slot, py::arg("key"), "The Redis Cluster hash slot of a key.");

  py::class_<redis::Client, std::shared_ptr<redis::Client>>(
      sub, "Client", "A thread-safe Redis client with a pool of connections per node.")
      .def(py::init([](const std::string& url, std::optional<std::size_t> pool_size,
                       std::optional<double> timeout) {
             redis::Config c = redis::parse_url(url);
             if (pool_size) c.pool_size = *pool_size;
             if (timeout) {
               if (!(*timeout > 0 && *timeout <= 3600)) {
                 throw ConfigError("timeout must be in (0, 3600] seconds");
               }
               c.timeout = redis::Millis(std::max<long>(1, static_cast<long>(*timeout * 1000)));
             }
             return std::make_shared<redis::Client>(std::move(c));
           }),
           py::arg("url"), py::kw_only(), py::arg("pool_size") = py::none(),
           py::arg("timeout") = py::none())
      .def(
          "execute",
          [](redis::Client& c, const std::vector<std::string>& args) {
            redis::Reply r;
            {
              py::gil_scoped_release nogil;
              r = c.command(args);
            }
            return to_python(r);
          },
          py::arg("args"), "Sends one command; error replies raise RedisError.")
      .def("close_idle", &redis::Client::close_idle, py::call_guard<py::gil_scoped_release>(),
           "Closes the idle connections.")
      .def(
          "stats",
          [](const redis::Client& c) {
            const redis::Stats s = c.stats();
            py::dict d;
            d["open"] = s.open;
            d["idle"] = s.idle;
            d["connects"] = s.connects;
            d["broken"] = s.broken;
            d["redirects"] = s.redirects;
            d["requests"] = s.requests;
            d["writes"] = s.writes;
            d["discoveries"] = s.discoveries;
            return d;
          },
          "Pool counters: open, idle, connects, broken, redirects, requests, writes, "
          "discoveries.")
      .def_property_readonly("address", &redis::Client::address,
                             "host:port of the URL's node, or of the master the Sentinels named "
                             "(empty before the first command).")
      .def_property_readonly(
          "sentinel", [](const redis::Client& c) { return !c.config().sentinels.empty(); },
          "Whether the master is found through Sentinel.")
      .def_property_readonly(
          "tls", [](const redis::Client& c) { return c.config().tls; }, "Whether TLS is on.")
      .def_property_readonly(
          "cluster", [](const redis::Client& c) { return c.config().cluster; },
          "Whether MOVED/ASK redirects are followed.")
      .def_property_readonly(
          "pool_size", [](const redis::Client& c) { return c.config().pool_size; },
          "Connections kept at most per node.");

  py::class_<rl::RedisRateLimiter>(sub, "RedisRateLimiter",
                                   "A rate limiter whose state lives in Redis.")
      .def(py::init([](std::shared_ptr<redis::Client> client, const std::vector<rl::Rule>& rules,
                       const std::string& algorithm, std::string prefix) {
             return std::make_unique<rl::RedisRateLimiter>(
                 std::move(client), rules, rl::parse_algorithm(algorithm), std::move(prefix));
           }),
           py::arg("client"), py::arg("rules"), py::arg("algorithm"), py::arg("prefix"))
      .def("hit", &rl::RedisRateLimiter::hit, py::arg("key"), py::arg("cost") = 1,
           py::call_guard<py::gil_scoped_release>(),
           "Consumes `cost` from every rule of `key` if all admit it (one round trip).")
      .def("test", &rl::RedisRateLimiter::test, py::arg("key"), py::arg("cost") = 1,
           py::call_guard<py::gil_scoped_release>(),
           "What hit would decide now, without consuming.")
      .def("reset", &rl::RedisRateLimiter::reset, py::arg("key"),
           py::call_guard<py::gil_scoped_release>(), "Forgets `key`; returns whether it was held.")
      .def("set_fixed_time_us", &rl::RedisRateLimiter::set_fixed_time_us, py::arg("now_us"),
           "Decides at `now_us` instead of the server's TIME (None: the server's).")
      .def("redis_key", &rl::RedisRateLimiter::redis_key, py::arg("key"),
           "The Redis key holding `key`'s state.")
      .def_property_readonly("rules", &rl::RedisRateLimiter::rules, "The rules, in order.")
      .def_property_readonly(
          "algorithm",
          [](const rl::RedisRateLimiter& l) { return rl::algorithm_name(l.algorithm()); },
          "The algorithm's name.")
      .def_property_readonly("prefix", &rl::RedisRateLimiter::prefix, "The key prefix.")
      .def_property_readonly("script_sha", &rl::RedisRateLimiter::script_sha,
                             "SHA-1 of the decision script.")
      .def_property_readonly("client", &rl::RedisRateLimiter::client, "The client.");
  sub.def(
      "script",
      [](const std::string& algorithm) { return rl::redis_script(rl::parse_algorithm(algorithm)); },
      py::arg("algorithm"), "The Lua source of the decision script of an algorithm.");
}

}  // namespace blocktrust::bindings
