// JSON-RPC 2.0 over HttpClient. The answer is validated once (nlohmann's SAX acceptor, no tree)
// and its envelope is then walked by a small scanner that hands back the result's text as is:
// an eth_getLogs answer of many megabytes is never copied into a DOM or re-serialised here.
#include "blocktrust/jsonrpc.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>

namespace blocktrust::jsonrpc {

namespace {

using nlohmann::json;

constexpr std::size_t npos = std::string_view::npos;

// ---- URLs and their secrets

struct UrlParts {
  std::string scheme;     // "http" or "https"
  std::string userinfo;   // raw, "" when absent
  std::string authority;  // host[:port], without user info
  std::string rest;       // path, query and fragment as given ("" or starting with / ? #)
};

UrlParts split_url(std::string_view url) {
  UrlParts p;
  auto colon = url.find("://");
  if (colon == npos) {
    p.rest = std::string(url);
    return p;
  }
  p.scheme = std::string(url.substr(0, colon));
  std::transform(p.scheme.begin(), p.scheme.end(), p.scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::string_view after = url.substr(colon + 3);
  auto end = after.find_first_of("/?#");
  std::string_view authority = after.substr(0, end);
  if (auto at = authority.rfind('@'); at != npos) {
    p.userinfo = std::string(authority.substr(0, at));
    authority = authority.substr(at + 1);
  }
  p.authority = std::string(authority);
  p.rest = end == npos ? "" : std::string(after.substr(end));
  return p;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      const int hi = hex_value(s[i + 1]);
      const int lo = hex_value(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

std::string base64(std::string_view raw) {
  std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(raw.data()),
                                static_cast<int>(raw.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

// The parts of a URL that may hold a key, for scrubbing them out of any text we report.
std::vector<std::string> secrets_of(const UrlParts& p) {
  std::vector<std::string> out;
  auto add = [&out](std::string_view s, std::size_t min_len) {
    if (s.size() >= min_len) out.emplace_back(s);
  };
  if (!p.userinfo.empty()) {
    add(p.userinfo, 3);
    auto colon = p.userinfo.find(':');
    add(std::string_view(p.userinfo).substr(0, colon), 3);
    if (colon != npos) add(std::string_view(p.userinfo).substr(colon + 1), 3);
    add(percent_decode(p.userinfo.substr(colon == npos ? 0 : colon + 1)), 3);
  }
  std::string_view rest = p.rest;
  if (auto hash = rest.find('#'); hash != npos) rest = rest.substr(0, hash);
  auto q = rest.find('?');
  std::string_view path = rest.substr(0, q);
  if (path.size() > 1) {
    add(path, 2);
    std::size_t start = 0;
    while (start < path.size()) {
      auto slash = path.find('/', start);
      add(path.substr(start, slash == npos ? npos : slash - start), 8);
      if (slash == npos) break;
      start = slash + 1;
    }
  }
  if (q != npos) {
    std::string_view query = rest.substr(q + 1);
    add(query, 3);
    std::size_t start = 0;
    while (start < query.size()) {
      auto amp = query.find('&', start);
      std::string_view pair = query.substr(start, amp == npos ? npos : amp - start);
      if (auto eq = pair.find('='); eq != npos) add(pair.substr(eq + 1), 8);
      if (amp == npos) break;
      start = amp + 1;
    }
  }
  // Longest first, so a part of a longer secret never leaves the rest of it behind.
  std::sort(out.begin(), out.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  return out;
}

std::string scrub(std::string text, const std::vector<std::string>& secrets) {
  for (const auto& s : secrets) {
    for (auto at = text.find(s); at != std::string::npos; at = text.find(s, at + 3)) {
      text.replace(at, s.size(), "…");
    }
  }
  return text;
}

// ---- the answer's envelope, read without building a tree

bool is_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

std::size_t skip_space(std::string_view s, std::size_t i) noexcept {
  while (i < s.size() && is_space(s[i])) ++i;
  return i;
}

// s[i] is '"'; returns the index after the closing quote (input already validated).
std::size_t skip_string(std::string_view s, std::size_t i) noexcept {
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
    } else if (s[i] == '"') {
      return i + 1;
    }
  }
  return s.size();
}

// Returns the index after the JSON value starting at s[i] (input already validated).
std::size_t skip_value(std::string_view s, std::size_t i) noexcept {
  if (i >= s.size()) return s.size();
  if (s[i] == '"') return skip_string(s, i);
  if (s[i] == '{' || s[i] == '[') {
    std::size_t depth = 0;
    while (i < s.size()) {
      const char c = s[i];
      if (c == '"') {
        i = skip_string(s, i);
        continue;
      }
      if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (--depth == 0) return i + 1;
      }
      ++i;
    }
    return s.size();
  }
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && !is_space(s[i])) ++i;
  return i;
}

// The members of one response object that matter, as spans of the validated answer.
struct Envelope {
  std::optional<std::string_view> id, result, error;
};

// `s` is a validated JSON value starting at `i`; false when it is not an object.
bool read_envelope(std::string_view s, std::size_t i, Envelope& env) {
  i = skip_space(s, i);
  if (i >= s.size() || s[i] != '{') return false;
  i = skip_space(s, i + 1);
  while (i < s.size() && s[i] != '}') {
    const std::size_t key_end = skip_string(s, i);
    std::string_view key = s.substr(i + 1, key_end - i - 2);
    std::string unescaped;
    if (key.find('\\') != npos) {  // rare: compare the decoded key
      unescaped = json::parse(s.substr(i, key_end - i)).get<std::string>();
      key = unescaped;
    }
    i = skip_space(s, key_end);
    i = skip_space(s, i + 1);  // the ':'
    const std::size_t end = skip_value(s, i);
    const std::string_view value = s.substr(i, end - i);
    if (key == "result") {
      env.result = value;
    } else if (key == "error") {
      env.error = value;
    } else if (key == "id") {
      env.id = value;
    }
    i = skip_space(s, end);
    if (i < s.size() && s[i] == ',') i = skip_space(s, i + 1);
  }
  return true;
}

bool id_matches(std::string_view id_text, std::int64_t want) {
  const json id = json::parse(id_text);
  if (id.is_number_integer()) return id.get<std::int64_t>() == want;
  if (id.is_string()) return id.get<std::string>() == std::to_string(want);
  return false;
}

bool is_null(std::optional<std::string_view> v) {
  return !v || *v == "null";
}

std::string snippet(std::string_view body) {
  std::string out;
  for (char c : body.substr(0, 120)) {
    out.push_back(static_cast<unsigned char>(c) < 0x20 ? ' ' : c);
  }
  if (body.size() > 120) out += "…";
  return out;
}

}  // namespace

std::string redact_url(std::string_view url) {
  const UrlParts p = split_url(url);
  if (p.scheme.empty()) return "(not a URL)";
  const bool hidden = !p.userinfo.empty() || (!p.rest.empty() && p.rest != "/");
  return p.scheme + "://" + p.authority + (hidden ? "/…" : "");
}

struct Client::Impl {
  http::HttpClient http;
  std::string url;    // without user info
  std::string shown;  // redacted
  std::vector<std::string> secrets;
  std::vector<http::Header> headers;
  std::int64_t next_id = 1;

  Impl(const std::string& u, ClientOptions o) : http(std::move(o.http)) {
    UrlParts p = split_url(u);
    shown = redact_url(u);
    secrets = secrets_of(p);
    if (p.scheme != "http" && p.scheme != "https") {
      throw ConfigError("JSON-RPC url " + shown + ": not an http:// or https:// URL");
    }
    if (p.authority.empty() || p.authority.front() == ':') {
      throw ConfigError("JSON-RPC url " + shown + ": no host in the URL");
    }
    url = p.scheme + "://" + p.authority + p.rest;
    headers.emplace_back("Content-Type", "application/json");
    headers.emplace_back("Accept", "application/json");
    if (!p.userinfo.empty()) {
      auto colon = p.userinfo.find(':');
      std::string user = percent_decode(p.userinfo.substr(0, colon));
      std::string pass = colon == npos ? "" : percent_decode(p.userinfo.substr(colon + 1));
      headers.emplace_back("Authorization", "Basic " + base64(user + ":" + pass));
    }
    for (auto& h : o.headers) headers.push_back(std::move(h));
  }

  // Posts `body`; returns the validated answer or throws ChainConnectionError naming `what`.
  std::string post(const std::string& what, std::string body, int& status) {
    http::HttpRequest req;
    req.method = "POST";
    req.url = url;
    req.headers = headers;
    req.body = std::move(body);
    http::HttpResponse res;
    try {
      res = http.request(req);
    } catch (const http::HttpConfigError& e) {
      throw ConfigError("JSON-RPC url " + shown + ": " + scrub(e.what(), secrets));
    }
    status = res.status;
    if (!res.ok()) {
      throw ChainConnectionError(what + " to " + shown + ": " + scrub(res.error, secrets), 0);
    }
    if (!json::accept(res.body)) {
      const std::string why =
          res.status >= 200 && res.status < 300
              ? "the answer is not JSON"
              : "HTTP " + std::to_string(res.status) + " without a JSON-RPC answer";
      throw ChainConnectionError(
          what + " to " + shown + ": " + why + ": " + scrub(snippet(res.body), secrets),
          res.status);
    }
    return std::move(res.body);
  }

  // The node's error object, with any of our URL's secrets scrubbed out of its text.
  Outcome error_of(std::string_view error_text) const {
    Outcome o;
    const json err = json::parse(error_text);
    if (err.is_object()) {
      if (auto it = err.find("code"); it != err.end() && it->is_number_integer()) {
        o.code = it->get<std::int64_t>();
      }
      if (auto it = err.find("message"); it != err.end()) {
        o.message = it->is_string() ? it->get<std::string>() : it->dump();
      }
      if (auto it = err.find("data"); it != err.end() && !it->is_null()) o.data = it->dump();
    } else {
      o.message = err.is_string() ? err.get<std::string>() : err.dump();
    }
    o.message = scrub(std::move(o.message), secrets);
    o.data = scrub(std::move(o.data), secrets);
    return o;
  }

  [[noreturn]] void throw_rpc_error(const std::string& what, std::string_view error_text) const {
    Outcome o = error_of(error_text);
    // Built first: the moves below must not race the concatenation (unspecified arg order).
    std::string text = what + ": " + o.message + " (code " + std::to_string(o.code) + ")";
    throw JsonRpcError(text, o.code, std::move(o.message), std::move(o.data));
  }

  Outcome outcome(const std::string& what, const Envelope& env) const {
    if (!is_null(env.error)) return error_of(*env.error);
    if (!env.result) {
      throw ChainConnectionError(
          what + " to " + shown + ": the answer has neither result nor error", 0);
    }
    Outcome o;
    o.ok = true;
    o.result = std::string(*env.result);
    return o;
  }
};

namespace {

void check_params(std::string_view method, std::string_view params) {
  const std::size_t i = skip_space(params, 0);
  if (i >= params.size() || (params[i] != '[' && params[i] != '{') || !json::accept(params)) {
    throw ConfigError(std::string(method) + ": params must be a JSON array or object");
  }
}

void append_request(std::string& out, std::string_view method, std::string_view params,
                    std::int64_t id) {
  out += R"({"jsonrpc":"2.0","id":)";
  out += std::to_string(id);
  out += R"(,"method":)";
  out += json(std::string(method)).dump();
  out += R"(,"params":)";
  out += params;
  out += '}';
}

}  // namespace

Client::Client(const std::string& url, ClientOptions options)
    : impl_(std::make_unique<Impl>(url, std::move(options))) {}
Client::~Client() = default;
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;

const std::string& Client::url() const noexcept {
  return impl_->shown;
}

std::string Client::call(std::string_view method, std::string_view params_json) {
  check_params(method, params_json);
  const std::int64_t id = impl_->next_id++;
  std::string body;
  body.reserve(64 + method.size() + params_json.size());
  append_request(body, method, params_json, id);
  const std::string what(method);
  int status = 0;
  const std::string answer = impl_->post(what, std::move(body), status);
  Envelope env;
  if (!read_envelope(answer, 0, env)) {
    throw ChainConnectionError(
        what + " to " + impl_->shown +
            ": the answer is not a JSON-RPC object: " + scrub(snippet(answer), impl_->secrets),
        status);
  }
  if (!is_null(env.error)) impl_->throw_rpc_error(what, *env.error);
  if (env.id && !id_matches(*env.id, id)) {
    throw ChainConnectionError(what + " to " + impl_->shown + ": the answer is for another request",
                               status);
  }
  if (!env.result) {
    throw ChainConnectionError(
        what + " to " + impl_->shown + ": the answer has neither result nor error", status);
  }
  return std::string(*env.result);
}

std::vector<Outcome> Client::batch(const std::vector<Call>& calls) {
  std::vector<Outcome> out(calls.size());
  if (calls.empty()) return out;
  const std::int64_t first = impl_->next_id;
  impl_->next_id += static_cast<std::int64_t>(calls.size());
  std::string body = "[";
  for (std::size_t k = 0; k < calls.size(); ++k) {
    check_params(calls[k].method, calls[k].params_json);
    if (k) body += ',';
    append_request(body, calls[k].method, calls[k].params_json,
                   first + static_cast<std::int64_t>(k));
  }
  body += ']';
  const std::string what = "batch of " + std::to_string(calls.size()) + " (" + calls[0].method +
                           (calls.size() > 1 ? ", …)" : ")");
  int status = 0;
  const std::string answer = impl_->post(what, std::move(body), status);
  std::size_t i = skip_space(answer, 0);
  if (i < answer.size() && answer[i] == '{') {  // the whole batch refused with one answer
    Envelope env;
    read_envelope(answer, i, env);
    if (!is_null(env.error)) impl_->throw_rpc_error(what, *env.error);
    throw ChainConnectionError(
        what + " to " + impl_->shown + ": one answer to a batch, not an array", status);
  }
  if (i >= answer.size() || answer[i] != '[') {
    throw ChainConnectionError(
        what + " to " + impl_->shown + ": the answer is not a JSON-RPC batch", status);
  }
  std::vector<bool> seen(calls.size(), false);
  i = skip_space(answer, i + 1);
  while (i < answer.size() && answer[i] != ']') {
    Envelope env;
    if (!read_envelope(answer, i, env) || !env.id) {
      throw ChainConnectionError(what + " to " + impl_->shown + ": a batch answer without an id",
                                 status);
    }
    const json id = json::parse(*env.id);
    std::int64_t n = -1;
    if (id.is_number_integer()) {
      n = id.get<std::int64_t>();
    } else if (id.is_string()) {
      try {
        n = std::stoll(id.get<std::string>());
      } catch (const std::exception&) {
        n = -1;
      }
    }
    const std::int64_t k = n - first;
    if (k < 0 || k >= static_cast<std::int64_t>(calls.size())) {
      throw ChainConnectionError(what + " to " + impl_->shown + ": an answer for an unknown id",
                                 status);
    }
    const auto slot = static_cast<std::size_t>(k);
    out[slot] = impl_->outcome(calls[slot].method, env);
    seen[slot] = true;
    i = skip_space(answer, skip_value(answer, i));
    if (i < answer.size() && answer[i] == ',') i = skip_space(answer, i + 1);
  }
  for (std::size_t k = 0; k < calls.size(); ++k) {
    if (!seen[k]) {
      throw ChainConnectionError(what + " to " + impl_->shown + ": no answer to call " +
                                     std::to_string(k) + " (" + calls[k].method + ")",
                                 status);
    }
  }
  return out;
}

}  // namespace blocktrust::jsonrpc
