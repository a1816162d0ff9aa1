// The flow runner against a loopback server: captures feed later steps; cancel is prompt.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "blocktrust/flow.hpp"
#include "loopback_server.hpp"

using blocktrust::flows::FlowDefinitionError;
using blocktrust::flows::FlowRun;
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
  EXPECT_THROW(FlowRun("{}", o), FlowDefinitionError);
  EXPECT_THROW(FlowRun("not json", o), FlowDefinitionError);
  o.iterations = 0;
  EXPECT_THROW(FlowRun(two_steps(), o), FlowDefinitionError);
}
