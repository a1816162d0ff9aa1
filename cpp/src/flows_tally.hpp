// Private: what one worker thread of a run counts, and the report that merges every worker's count.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "blocktrust/flows.hpp"
#include "blocktrust/histogram.hpp"
#include "flows_model.hpp"

namespace blocktrust::flows {

/// One step's counts on one worker.
struct StepStats {
  Histogram latency;
  std::int64_t requests = 0;
  std::int64_t attempts = 0;  // HTTP exchanges, retries included
  std::int64_t retries = 0;   // requests resent after a kept-alive connection closed
  std::int64_t failures = 0;
  std::map<int, std::int64_t> statuses;
  std::map<std::string, std::int64_t> errors;  // transport failures by reason
  std::vector<std::int64_t> assert_failures;
};

/// One failed request, kept for the report (the first `max_failures` by time).
struct Failure {
  std::int64_t at_ns = 0;
  std::string step;
  std::int64_t vu = 0, iteration = 0;
  int status = 0;
  std::string reason, excerpt;
};

/// A worker's counts: written by its own thread only, read once the run has joined.
struct Tally {
  std::vector<StepStats> steps;
  Histogram flow;
  std::int64_t iterations = 0, failed_iterations = 0;
  std::vector<Failure> failures;
  std::optional<nlohmann::json> captures;  // VU 0's variables after its last iteration
};

/// The run's report (the JSON `FlowRun::report_json` returns) from every worker's tally.
nlohmann::json report(const Flow& flow, const RunOptions& opts,
                      const std::vector<const Tally*>& tallies, double elapsed_s, bool cancelled);

}  // namespace blocktrust::flows
