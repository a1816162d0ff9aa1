// Private: the compiled form of a flow (parsed once from the loader's JSON) and its evaluation.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "blocktrust/http.hpp"
#include "flows_template.hpp"

namespace blocktrust::flows {

/// Where a captured value comes from.
struct Capture {
  std::string var;
  enum class From { kJson, kHeader, kStatus, kBody, kHeaders } from = From::kJson;
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

/// One multipart part: a text field, or a file whose content is fixed bytes (`data`) or, with
/// `value_is_content`, the rendered `value` (so a caller can pass the document it will hash).
struct Part {
  std::string name;
  Template value;
  bool is_file = false;
  bool value_is_content = false;
  std::string filename;
  std::string content_type;
  std::string data;
};

/// Polling: the step is repeated until it passes. Each limit is a template rendered when the step
/// starts (so a caller's variable can set a wait budget); absent limits do not bound.
struct Retry {
  std::optional<Template> attempts;  // at most this many requests
  std::optional<Template> within;    // seconds from the first attempt's start
  Template interval;                 // seconds between attempts
};

/// Request signing: `header` = prefix + HMAC(secret, the exact body bytes sent).
struct Signing {
  std::string header;
  std::string algorithm;  // sha1, sha256, sha384, sha512
  Template secret;
  bool base64 = false;  // hex (lower-case) otherwise
  std::string prefix;
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
  bool may_use_tls = false;  // an https:// or templated URL, or redirects followed
  std::optional<Retry> retry;
  std::optional<Signing> hmac;
};

/// A whole flow.
struct Flow {
  /// Values given by the caller: set literally (never rendered) before `vars`.
  std::vector<std::pair<std::string, nlohmann::json>> values;
  std::vector<std::pair<std::string, Template>> vars;
  std::vector<Step> steps;
  /// The variables the report hands back (from VU 0's last iteration); all when absent.
  std::optional<std::vector<std::string>> reported;
};

/// Parses the loader's JSON; FlowSpecError names the place that is wrong.
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

/// `prefix` + the HMAC of `body` under `key` with `algorithm` (sha1, sha256, sha384, sha512), in
/// lower-case hex or base64. FlowSpecError for an unknown algorithm.
std::string hmac_signature(const std::string& algorithm, std::string_view key,
                           std::string_view body, bool base64, const std::string& prefix = "");

/// True for an algorithm hmac_signature knows.
bool known_hmac_algorithm(const std::string& algorithm);

/// Renders a retry limit; false when it is not a finite number >= 0.
bool render_seconds(const Template& t, const RenderContext& ctx, double& out);

/// A short excerpt of a response for a failure record, with secrets redacted.
std::string redacted_excerpt(const http::HttpResponse& res, std::size_t max_body = 256);

}  // namespace blocktrust::flows
