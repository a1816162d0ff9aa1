// The run's report: every worker's tally merged into one JSON document (per step and for the
// whole flow: counts, status codes, transport errors, assertion failures, latency summaries).
#include <openssl/evp.h>

#include <algorithm>

#include "flows_tally.hpp"

namespace blocktrust::flows {

namespace {

using json = nlohmann::json;

std::string b64encode(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

json summary(const Histogram& h) {
  auto ms = [](std::int64_t us) { return static_cast<double>(us) / 1000.0; };
  return {{"count", h.count()},
          {"min_ms", ms(h.min_us())},
          {"mean_ms", h.mean_us() / 1000.0},
          {"p50_ms", ms(h.percentile_us(50))},
          {"p90_ms", ms(h.percentile_us(90))},
          {"p95_ms", ms(h.percentile_us(95))},
          {"p99_ms", ms(h.percentile_us(99))},
          {"p999_ms", ms(h.percentile_us(99.9))},
          {"max_ms", ms(h.max_us())},
          {"histogram", b64encode(h.serialize())}};
}

}  // namespace

json report(const Flow& flow, const RunOptions& opts, const std::vector<const Tally*>& tallies,
            double elapsed_s, bool cancelled) {
  json steps = json::array();
  Histogram flow_h;
  std::int64_t iters = 0, failed_iters = 0, reqs = 0, failed_reqs = 0;
  std::vector<Failure> failures;
  for (const Tally* t : tallies) {
    flow_h.merge(t->flow);
    iters += t->iterations;
    failed_iters += t->failed_iterations;
    failures.insert(failures.end(), t->failures.begin(), t->failures.end());
  }
  for (std::size_t s = 0; s < flow.steps.size(); ++s) {
    StepStats all;
    all.assert_failures.assign(flow.steps[s].asserts.size(), 0);
    for (const Tally* t : tallies) {
      const auto& ws = t->steps[s];
      all.latency.merge(ws.latency);
      all.requests += ws.requests;
      all.attempts += ws.attempts;
      all.retries += ws.retries;
      all.failures += ws.failures;
      for (auto [k, v] : ws.statuses) all.statuses[k] += v;
      for (const auto& [k, v] : ws.errors) all.errors[k] += v;
      for (std::size_t a = 0; a < ws.assert_failures.size(); ++a) {
        all.assert_failures[a] += ws.assert_failures[a];
      }
    }
    reqs += all.requests;
    failed_reqs += all.failures;
    json statuses = json::object();
    for (auto [k, v] : all.statuses) statuses[std::to_string(k)] = v;
    json asserts = json::array();
    for (std::size_t a = 0; a < all.assert_failures.size(); ++a) {
      asserts.push_back(
          {{"label", flow.steps[s].asserts[a].label}, {"failed", all.assert_failures[a]}});
    }
    steps.push_back({{"name", flow.steps[s].name},
                     {"requests", all.requests},
                     {"attempts", all.attempts},
                     {"retries", all.retries},
                     {"failures", all.failures},
                     {"status_counts", statuses},
                     {"errors", all.errors},
                     {"asserts", asserts},
                     {"latency", summary(all.latency)}});
  }
  std::sort(failures.begin(), failures.end(),
            [](const Failure& a, const Failure& b) { return a.at_ns < b.at_ns; });
  if (static_cast<int>(failures.size()) > opts.max_failures) {
    failures.resize(static_cast<std::size_t>(opts.max_failures));
  }
  json captures = json::object();
  for (const Tally* t : tallies) {
    if (t->captures) captures = *t->captures;
  }
  json fj = json::array();
  for (const auto& f : failures) {
    fj.push_back({{"step", f.step},
                  {"vu", f.vu},
                  {"iteration", f.iteration},
                  {"status", f.status},
                  {"reason", f.reason},
                  {"excerpt", f.excerpt}});
  }
  json out = {{"model", opts.rate > 0 ? "open" : "closed"},
              {"cancelled", cancelled},
              {"elapsed_s", elapsed_s},
              {"vus", opts.vus},
              {"rate", opts.rate},
              {"threads", tallies.size()},
              {"iterations", iters},
              {"failed_iterations", failed_iters},
              {"requests", reqs},
              {"failed_requests", failed_reqs},
              {"flow", summary(flow_h)},
              {"steps", steps},
              {"failures", fj},
              {"captures", captures}};
  return out;
}

}  // namespace blocktrust::flows
