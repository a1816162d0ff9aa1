// Private: the compiled form of a flow (parsed once from the loader's JSON) and its evaluation.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "blocktrust/http_client.hpp"
#include "template.hpp"

namespace blocktrust::flows {

/// Where a captured value comes from.
struct Capture {
  std::string var;
  enum class From { kJson, kHeader, kStatus, kBody } from = From::kJson;
  nlohmann::json::json_pointer pointer;
  std::string header;
};

/// One check on a response.
struct Assertion {
  std::string label;
  enum class Kind { kStatus, kJson, kHeader, kLatency, kBody } kind = Kind::kStatus;
  enum class Op {
    kEquals,
    kNotEquals,
    kExists,
    kMatches,
    kContains,
    kLt,
    kLe,
    kGt,
    kGe
  } op = Op::kEquals;
  std::vector<std::pair<int, int>> statuses;  // inclusive ranges
  nlohmann::json::json_pointer pointer;
  std::string header;
  nlohmann::json value;
  std::optional<Template> value_template;  // a string expected value containing {{ }}
  std::optional<std::regex> re;
  std::int64_t max_latency_ms = 0;
};

/// One multipart part: a text field or a file.
struct Part {
  std::string name;
  Template value;
  bool is_file = false;
  std::string filename;
  std::string content_type;
  std::string data;
};

/// One request step.
struct Step {
  std::string name;
  std::string method;
  Template url;
  std::vector<std::pair<std::string, Template>> headers;
  enum class Body { kNone, kJson, kForm, kRaw, kMultipart } body = Body::kNone;
  nlohmann::json json_body;
  std::vector<std::pair<std::string, Template>> form;
  Template raw;
  std::string content_type;
  std::vector<Part> parts;
  std::vector<Capture> captures;
  std::vector<Assertion> asserts;
  std::int64_t timeout_ms = 0;
  bool follow_redirects = false;
  bool needs_json = false;
};

/// A whole flow.
struct Flow {
  std::vector<std::pair<std::string, Template>> vars;
  std::vector<Step> steps;
};

/// Parses the loader's JSON; FlowDefinitionError names the place that is wrong.
Flow compile_flow(const std::string& text);

/// Outcome of checking one response against a step.
struct Verdict {
  bool ok = true;
  std::string reason;
  int failed_assert = -1;  // index into Step::asserts
};

/// Applies captures into `vars` and evaluates asserts. `json` is parsed lazily by the caller.
Verdict check_response(const Step& step, const http::HttpResponse& res, std::int64_t latency_ns,
                       std::map<std::string, nlohmann::json, std::less<>>& vars,
                       const RenderContext& ctx);

/// A short excerpt of a response for a failure record, with secrets redacted.
std::string redacted_excerpt(const http::HttpResponse& res, std::size_t max_body = 256);

}  // namespace blocktrust::flows
