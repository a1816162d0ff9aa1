// The synthetic flow runner: compiled multi-step flows driven by many virtual users on all cores.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "blocktrust/error.hpp"
#include "blocktrust/http.hpp"

namespace blocktrust::flows {

/// Raised when a compiled flow or the run options are malformed (spec errors are reported by the
/// Python loader first, with the place in the spec).
class FlowSpecError : public ConfigError {
 public:
  using ConfigError::ConfigError;
};

/// How a run is driven. Closed model: `vus` users each run `iterations` (or until `duration_s`).
/// Open model (rate > 0): iterations start at `rate` per second, at most `vus` in flight.
struct RunOptions {
  /// Prefix for step paths that are not absolute URLs, e.g. "http://127.0.0.1:8080".
  std::string base_url;
  /// Virtual users (closed model) or the cap on concurrent iterations (open model).
  int vus = 1;
  /// Iterations per VU (closed) or in total (open); 0 means run for duration_s.
  std::int64_t iterations = 0;
  /// Wall-clock limit in seconds (0 = none; then iterations must be > 0).
  double duration_s = 0;
  /// Closed model: VUs start evenly spread over this many seconds.
  double ramp_up_s = 0;
  /// Open model: iterations started per second (0 = closed model).
  double rate = 0;
  /// Worker threads (0 = one per core).
  int threads = 0;
  /// How many failures are kept with their details (the rest are only counted).
  int max_failures = 100;
  /// Client settings (timeouts, caps, TLS).
  http::HttpOptions http;
};

/// Counters for a progress display, readable while the run goes on.
struct Progress {
  /// Seconds since the run started.
  double elapsed_s = 0;
  /// Iterations finished (passed or failed).
  std::int64_t iterations = 0;
  /// Iterations with at least one failed step.
  std::int64_t failed_iterations = 0;
  /// Requests finished.
  std::int64_t requests = 0;
  /// Requests that failed (transport error, capture or assert).
  std::int64_t failed_requests = 0;
  /// Iterations in flight right now.
  std::int64_t active = 0;
};

/// One run of one compiled flow. start() once, then wait_for() until done, then report_json().
class FlowRun final {
 public:
  /// Compiles `flow_json` (the plain structure made by the Python loader); FlowSpecError
  /// (a ConfigError) names what is wrong; HttpConfigError for a bad base URL or CA file.
  FlowRun(const std::string& flow_json, RunOptions options);
  ~FlowRun();
  FlowRun(const FlowRun&) = delete;
  FlowRun& operator=(const FlowRun&) = delete;

  /// Starts the worker threads (returns at once).
  void start();
  /// Waits up to `timeout` for the run to end; true when it has ended.
  bool wait_for(std::chrono::milliseconds timeout);
  /// A snapshot of the counters (thread-safe).
  [[nodiscard]] Progress progress() const noexcept;
  /// Stops the run as soon as possible; the report covers what finished (thread-safe).
  void cancel() noexcept;
  /// The report as JSON text (the schema is documented in docs/tour_flows.md); waits for the end.
  [[nodiscard]] std::string report_json();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace blocktrust::flows
