// The flow runner against a loopback server: captures feed later steps; cancel is prompt.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "blocktrust/flows.hpp"
#include "flows_model.hpp"
#include "loopback_server.hpp"

using blocktrust::flows::FlowRun;
using blocktrust::flows::FlowSpecError;
using blocktrust::flows::RunOptions;
using json = nlohmann::json;

namespace {

std::string two_steps() {
  return R"({"vars": [["who", "vu{{vu}}"]],
    "steps": [
      {"name": "a", "method": "GET", "url": "/a/{{who}}",
       "captures": [{"var": "tok", "from": "json", "pointer": "/token"}],
       "asserts": [{"label": "ok", "kind": "status", "allowed": [[200, 200]]}]},
      {"name": "b", "method": "GET", "url": "/b/{{tok}}",
       "asserts": [{"label": "path", "kind": "json", "pointer": "/path", "op": "equals",
                    "value": "/b/abc"}]}]})";
}

}  // namespace

TEST(FlowRun, ClosedModelRunsEveryIterationAndCapturesFeedLaterSteps) {
  LoopbackServer srv;
  RunOptions o;
  o.base_url = srv.url();
  o.vus = 3;
  o.iterations = 4;
  o.threads = 2;
  FlowRun run(two_steps(), o);
  run.start();
  auto report = json::parse(run.report_json());
  EXPECT_EQ(report["iterations"], 12);
  EXPECT_EQ(report["failed_iterations"], 0) << report["failures"].dump();
  EXPECT_EQ(report["requests"], 24);
  EXPECT_EQ(report["steps"][1]["status_counts"]["200"], 12);
  EXPECT_EQ(srv.connections(), 3);  // one keep-alive connection per VU
}

TEST(FlowRun, CancelStopsADurationRunPromptly) {
  LoopbackServer srv;
  RunOptions o;
  o.base_url = srv.url();
  o.vus = 2;
  o.duration_s = 60;
  FlowRun run(two_steps(), o);
  run.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  run.cancel();
  EXPECT_TRUE(run.wait_for(std::chrono::seconds(5)));
  auto report = json::parse(run.report_json());
  EXPECT_TRUE(report["cancelled"].get<bool>());
  EXPECT_GT(report["iterations"].get<int>(), 0);
}

TEST(FlowRun, BadDefinitionsAreRejectedBeforeRunning) {
  RunOptions o;
  o.iterations = 1;
  EXPECT_THROW(FlowRun("{}", o), FlowSpecError);
  EXPECT_THROW(FlowRun("not json", o), FlowSpecError);
  o.iterations = 0;
  EXPECT_THROW(FlowRun(two_steps(), o), FlowSpecError);
}

// --- polling, request signing, given values and captures handed back

namespace {

json run_once(const std::string& flow, const std::string& url, std::int64_t iterations = 1) {
  RunOptions o;
  o.base_url = url;
  o.iterations = iterations;
  FlowRun run(flow, o);
  run.start();
  return json::parse(run.report_json());
}

std::string count_step(const std::string& retry, int at_least) {
  return R"({"steps": [{"name": "poll", "method": "GET", "url": "/count", "retry": )" + retry +
         R"(, "asserts": [{"label": "n", "kind": "json", "pointer": "/n", "op": "ge", "value": )" +
         std::to_string(at_least) + "}]}]}";
}

}  // namespace

TEST(FlowRun, RetryRepeatsAStepUntilItPassesAndCountsOneRequest) {
  LoopbackServer srv;
  auto r = run_once(count_step(R"({"attempts": "10", "interval": "0.01"})", 3), srv.url());
  const auto& st = r["steps"][0];
  EXPECT_EQ(r["failed_iterations"], 0) << r["failures"].dump();
  EXPECT_EQ(st["requests"], 1);
  EXPECT_EQ(st["attempts"], 3);
  EXPECT_EQ(st["failures"], 0);
  EXPECT_EQ(st["status_counts"]["200"], 1);
  EXPECT_EQ(st["asserts"][0]["failed"], 0);  // earlier attempts are not failures
}

TEST(FlowRun, RetryGivesUpAfterItsAttemptsAndRecordsOnlyTheFinalOutcome) {
  LoopbackServer srv;
  auto r = run_once(count_step(R"({"attempts": "4", "interval": "0"})", 100), srv.url());
  const auto& st = r["steps"][0];
  EXPECT_EQ(st["requests"], 1);
  EXPECT_EQ(st["attempts"], 4);
  EXPECT_EQ(st["failures"], 1);
  EXPECT_EQ(st["asserts"][0]["failed"], 1);
  ASSERT_EQ(r["failures"].size(), 1u);
  auto reason = r["failures"][0]["reason"].get<std::string>();
  EXPECT_NE(reason.find("got 4"), std::string::npos) << reason;
  EXPECT_NE(reason.find("(after 4 attempts in"), std::string::npos) << reason;
}

TEST(FlowRun, RetryLimitsComeFromVariablesAndABadOneFailsTheStep) {
  LoopbackServer srv;
  auto flow = [](const std::string& budget) {
    return R"({"values": {"budget": )" + budget +
           R"(}, "steps": [{"name": "poll", "method": "GET", "url": "/count",
               "retry": {"within": "{{budget}}", "interval": "0.02"},
               "asserts": [{"label": "n", "kind": "json", "pointer": "/n", "op": "lt",
                            "value": 0}]}]})";
  };
  auto r = run_once(flow("0.1"), srv.url());
  EXPECT_EQ(r["steps"][0]["failures"], 1);
  EXPECT_GE(r["steps"][0]["attempts"].get<int>(), 2);
  EXPECT_GE(r["steps"][0]["latency"]["max_ms"].get<double>(), 80.0);  // spans every attempt
  r = run_once(flow(R"("soon")"), srv.url());
  EXPECT_EQ(r["steps"][0]["attempts"], 0);
  EXPECT_EQ(r["failures"][0]["reason"],
            "retry: attempts, within and interval must be numbers >= 0");
}

TEST(FlowRun, HmacSignsTheExactBodySent) {
  LoopbackServer srv;
  const std::string body = "{\"applicantId\": \"a-1\"}";
  auto flow = R"({"values": {"key": "Jefe-secret"}, "reported": ["digest", "len"],
      "steps": [{"name": "hook", "method": "POST",
      "url": "/digest", "body": {"kind": "raw", "text": )" +
              json(body).dump() + R"(},
      "hmac": {"header": "X-Payload-Digest", "algorithm": "sha256", "secret": "{{key}}"},
      "captures": [{"var": "digest", "from": "json", "pointer": "/digest"},
                   {"var": "len", "from": "json", "pointer": "/len"}]}]})";
  auto r = run_once(flow, srv.url());
  ASSERT_EQ(r["failed_iterations"], 0) << r["failures"].dump();
  EXPECT_EQ(r["captures"]["digest"],
            blocktrust::flows::hmac_signature("sha256", "Jefe-secret", body, false));
  EXPECT_EQ(r["captures"]["len"], body.size());
  EXPECT_EQ(r.dump().find("Jefe-secret"), std::string::npos);  // the secret is not reported
}

TEST(FlowModel, HmacSignatureMatchesRfc4231AndEncodes) {
  using blocktrust::flows::hmac_signature;
  const std::string data = "what do ya want for nothing?";
  EXPECT_EQ(hmac_signature("sha256", "Jefe", data, false),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(hmac_signature("sha512", "Jefe", data, false).substr(0, 16), "164b7a7bfcf819e2");
  EXPECT_EQ(hmac_signature("sha1", "Jefe", data, false),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
  EXPECT_EQ(hmac_signature("sha256", "Jefe", data, true, "sha256="),
            "sha256=W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=");
  EXPECT_THROW((void)hmac_signature("md5", "Jefe", data, false), FlowSpecError);
}

TEST(FlowRun, CapturesOfVuZerosLastIterationComeBackAndGivenValuesStayLiteral) {
  LoopbackServer srv;
  auto flow = R"({"values": {"raw": "{{not a template}}", "n": 7},
      "vars": [["who", "{{raw}}-{{n}}"]],
      "reported": ["path", "headers"],
      "steps": [{"name": "a", "method": "GET", "url": "/p/{{iteration}}",
                 "captures": [{"var": "path", "from": "json", "pointer": "/path"},
                              {"var": "headers", "from": "headers"},
                              {"var": "private", "from": "status"}]}]})";
  auto r = run_once(flow, srv.url(), 3);
  ASSERT_EQ(r["failed_iterations"], 0) << r["failures"].dump();
  EXPECT_EQ(r["captures"]["path"], "/p/2");  // the last iteration
  EXPECT_EQ(r["captures"]["headers"]["content-type"], "application/json");
  EXPECT_FALSE(r["captures"].contains("private"));
  EXPECT_FALSE(r["captures"].contains("who"));
}

TEST(FlowRun, OpenModelRunsEveryIterationAndTearsDownCleanly) {
  LoopbackServer srv;
  RunOptions o;
  o.base_url = srv.url();
  o.vus = 4;
  o.rate = 400;
  o.iterations = 40;
  o.threads = 2;
  {
    FlowRun run(two_steps(), o);
    run.start();
    auto report = json::parse(run.report_json());
    EXPECT_EQ(report["iterations"], 40);
    EXPECT_EQ(report["failed_iterations"], 0) << report["failures"].dump();
  }  // the idle VU slots (with their keep-alive connections) go before their io_context
}
