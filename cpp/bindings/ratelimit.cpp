// blocktrust_native._native.ratelimit: thin bindings of the rate limiter. Decisions take well under
// a microsecond and never wait on I/O, so hit/test keep the GIL (releasing it would cost more).
#include "blocktrust/ratelimit.hpp"

#include <pybind11/stl.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "bindings.hpp"

namespace blocktrust::bindings {

namespace {

namespace rl = blocktrust::ratelimit;

constexpr double kNs = 1e9;

std::int64_t seconds_to_ns(double s, const char* what) {
  if (!std::isfinite(s) || s < 0 || s > 9.0e9) {
    throw ConfigError(std::string(what) + " must be a finite number of seconds >= 0");
  }
  return static_cast<std::int64_t>(std::llround(s * kNs));
}

std::string decision_repr(const rl::Decision& d) {
  return "Decision(allowed=" + std::string(d.allowed ? "True" : "False") +
         ", limit=" + std::to_string(d.limit) + ", remaining=" + std::to_string(d.remaining) +
         ", reset_after=" + py::repr(py::float_(d.reset_after_ns / kNs)).cast<std::string>() +
         ", retry_after=" + py::repr(py::float_(d.retry_after_ns / kNs)).cast<std::string>() +
         (d.degraded ? ", degraded=True)" : ")");
}

}  // namespace

void register_ratelimit(py::module_& m) {
  auto sub = m.def_submodule("ratelimit", "Rate limiting core (GCRA, sliding and fixed windows).");

  py::class_<rl::Rule>(sub, "Rule", "One limit: at most `limit` units per `period` seconds.")
      .def_readonly("limit", &rl::Rule::limit, "Units of cost allowed per period.")
      .def_readonly("period_ns", &rl::Rule::period_ns, "The period in nanoseconds.")
      .def_property_readonly(
          "period", [](const rl::Rule& r) { return static_cast<double>(r.period_ns) / kNs; },
          "The period in seconds.")
      .def_readonly("text", &rl::Rule::text, "The rule as written.")
      .def("__repr__", [](const rl::Rule& r) {
        return "Rule(" + py::repr(py::str(r.text)).cast<std::string>() + ")";
      });

  sub.def("parse_rules", &rl::parse_rules, py::arg("text"),
          "Parses '5/15minutes', '10 per hour', '100/second;1000/hour'; ConfigError names a bad "
          "rule.");

  py::class_<rl::Decision>(sub, "Decision", "The outcome of a hit or test.")
      .def(py::init([](bool allowed, std::int64_t limit, std::int64_t remaining, double reset_after,
                       double retry_after, int rule_index, bool degraded) {
             rl::Decision d;
             d.allowed = allowed;
             d.limit = limit;
             d.remaining = remaining;
             d.reset_after_ns = seconds_to_ns(reset_after, "reset_after");
             d.retry_after_ns = seconds_to_ns(retry_after, "retry_after");
             d.rule_index = rule_index;
             d.degraded = degraded;
             return d;
           }),
           py::kw_only(), py::arg("allowed"), py::arg("limit"), py::arg("remaining"),
           py::arg("reset_after") = 0.0, py::arg("retry_after") = 0.0, py::arg("rule_index") = 0,
           py::arg("degraded") = false)
      .def_readonly("allowed", &rl::Decision::allowed, "Whether the hit is (or would be) admitted.")
      .def_readonly("limit", &rl::Decision::limit, "The limit of the deciding rule.")
      .def_readonly("remaining", &rl::Decision::remaining, "Units left under the deciding rule.")
      .def_readonly("reset_after_ns", &rl::Decision::reset_after_ns,
                    "Nanoseconds until the full quota is back.")
      .def_readonly("retry_after_ns", &rl::Decision::retry_after_ns,
                    "Nanoseconds until the same hit would pass (0 when allowed).")
      .def_property_readonly(
          "reset_after", [](const rl::Decision& d) { return d.reset_after_ns / kNs; },
          "Seconds until the full quota is back.")
      .def_property_readonly(
          "retry_after", [](const rl::Decision& d) { return d.retry_after_ns / kNs; },
          "Seconds until the same hit would pass (0 when allowed).")
      .def_readonly("rule_index", &rl::Decision::rule_index, "Index of the deciding rule.")
      .def_readonly("degraded", &rl::Decision::degraded,
                    "True when decided without the store (shared store unreachable).")
      .def("__bool__", [](const rl::Decision& d) { return d.allowed; })
      .def("__repr__", &decision_repr);

  py::class_<rl::Clock, std::shared_ptr<rl::Clock>>(sub, "Clock", "A monotonic time source.")
      .def("now_ns", &rl::Clock::now_ns, "The current time in nanoseconds.");
  py::class_<rl::SteadyClock, rl::Clock, std::shared_ptr<rl::SteadyClock>>(
      sub, "SteadyClock", "The system's monotonic clock.")
      .def(py::init<>());
  py::class_<rl::ManualClock, rl::Clock, std::shared_ptr<rl::ManualClock>>(
      sub, "ManualClock", "A clock that moves only when told to (for deterministic tests).")
      .def(py::init([](double start) {
             return std::make_shared<rl::ManualClock>(seconds_to_ns(start, "start"));
           }),
           py::arg("start") = 0.0)
      .def(
          "advance",
          [](rl::ManualClock& c, double seconds) {
            c.advance_ns(seconds_to_ns(seconds, "advance"));
          },
          py::arg("seconds"), "Moves the clock forward by `seconds`.")
      .def("advance_ns", &rl::ManualClock::advance_ns, py::arg("ns"),
           "Moves the clock forward by `ns` nanoseconds.")
      .def("set_ns", &rl::ManualClock::set_ns, py::arg("ns"), "Sets the time in nanoseconds.")
      .def_property_readonly(
          "now", [](const rl::ManualClock& c) { return c.now_ns() / kNs; },
          "The current time in seconds.");

  py::class_<rl::RateLimiter>(sub, "RateLimiter", "An in-process, thread-safe rate limiter.")
      .def(py::init([](const std::vector<rl::Rule>& rules, const std::string& algorithm,
                       std::size_t max_keys, std::shared_ptr<rl::Clock> clock) {
             return std::make_unique<rl::RateLimiter>(
                 rules, rl::Options{rl::parse_algorithm(algorithm), max_keys, std::move(clock)});
           }),
           py::arg("rules"), py::arg("algorithm") = "gcra", py::arg("max_keys") = 100'000,
           py::arg("clock") = nullptr)
      .def("hit", &rl::RateLimiter::hit, py::arg("key"), py::arg("cost") = 1,
           "Consumes `cost` from every rule of `key` if all admit it.")
      .def("test", &rl::RateLimiter::test, py::arg("key"), py::arg("cost") = 1,
           "What hit would decide now, without consuming.")
      .def("reset", &rl::RateLimiter::reset, py::arg("key"),
           "Forgets `key`; returns whether it was held.")
      .def("purge_expired", &rl::RateLimiter::purge_expired,
           "Drops every idle key; returns how many.")
      .def(
          "stats",
          [](const rl::RateLimiter& l) {
            const rl::Stats s = l.stats();
            py::dict d;
            d["keys"] = s.keys;
            d["expired"] = s.expired;
            d["evicted"] = s.evicted;
            return d;
          },
          "Store counters: keys, expired, evicted.")
      .def_property_readonly("rules", &rl::RateLimiter::rules, "The rules, in order.")
      .def_property_readonly(
          "algorithm", [](const rl::RateLimiter& l) { return rl::algorithm_name(l.algorithm()); },
          "The algorithm's name.")
      .def_property_readonly("max_keys", &rl::RateLimiter::max_keys, "The key capacity.");
}

}  // namespace blocktrust::bindings
