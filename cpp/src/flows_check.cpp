// Evaluating one response against its step: captures, assertions, redaction of what a report shows,
// and the HMAC a signed request carries.
// GCC 12 reports a false -Wmaybe-uninitialized inside libstdc++'s <regex> at -O2 with sanitizers.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cctype>
#include <cmath>

#include "flows_model.hpp"

namespace blocktrust::flows {

namespace {

using json = nlohmann::json;

bool as_number(const json& v, double& out) {
  if (v.is_number()) {
    out = v.get<double>();
    return true;
  }
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    char* end = nullptr;
    out = std::strtod(s.c_str(), &end);
    return !s.empty() && end == s.c_str() + s.size();
  }
  return false;
}

std::string short_dump(const json& v) {
  auto s = v.dump();
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

// Evaluates one operator on an actual value (nullptr = absent).
bool eval_op(const Assertion& a, const json* actual, const json& expected, std::string& why) {
  using Op = Assertion::Op;
  if (a.op == Op::kExists) {
    bool want = !expected.is_boolean() || expected.get<bool>();
    if ((actual != nullptr) == want) return true;
    why = want ? "absent" : "present";
    return false;
  }
  if (!actual) {
    why = "absent";
    return false;
  }
  auto text = [&]() { return actual->is_string() ? actual->get<std::string>() : actual->dump(); };
  switch (a.op) {
    case Op::kEquals:
    case Op::kNotEquals: {
      bool eq = *actual == expected;
      if (!eq && actual->is_string() != expected.is_string()) {
        double x, y;  // "200" vs 200 (headers are always strings)
        eq = as_number(*actual, x) && as_number(expected, y) && x == y;
      }
      if (eq == (a.op == Op::kEquals)) return true;
      why = "got " + short_dump(*actual);
      return false;
    }
    case Op::kMatches:
      if (std::regex_search(text(), *a.re)) return true;
      why = "got " + short_dump(*actual);
      return false;
    case Op::kContains: {
      bool ok = false;
      if (actual->is_array()) {
        for (const auto& e : *actual) ok = ok || e == expected;
      } else {
        auto hay = text();
        auto needle = expected.is_string() ? expected.get<std::string>() : expected.dump();
        ok = hay.find(needle) != std::string::npos;
      }
      if (!ok) why = "got " + short_dump(*actual);
      return ok;
    }
    default: {
      double x, y;
      if (!as_number(*actual, x) || !as_number(expected, y)) {
        why = "not a number: " + short_dump(*actual);
        return false;
      }
      bool ok = a.op == Op::kLt   ? x < y
                : a.op == Op::kLe ? x <= y
                : a.op == Op::kGt ? x > y
                                  : x >= y;
      if (!ok) why = "got " + short_dump(*actual);
      return ok;
    }
  }
}

bool secret_name(std::string_view name) {
  std::string n(name);
  for (auto& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* s : {"authorization", "cookie", "token", "secret", "password", "api-key",
                        "apikey", "api_key", "session"}) {
    if (n.find(s) != std::string::npos) return true;
  }
  return false;
}

void redact_json(json& v) {
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (secret_name(it.key()) && !it.value().is_structured())
        it.value() = "[redacted]";
      else
        redact_json(it.value());
    }
  } else if (v.is_array()) {
    for (auto& e : v) redact_json(e);
  }
}

}  // namespace

Verdict check_response(const Step& step, const http::HttpResponse& res, std::int64_t latency_ns,
                       std::map<std::string, nlohmann::json, std::less<>>& vars,
                       const RenderContext& ctx) {
  Verdict v;
  json body;
  bool have_json = false;
  if (step.needs_json) {
    body = json::parse(res.body, nullptr, false);
    have_json = !body.is_discarded();
  }
  // Asserts first: a wrong status explains a missing capture better than the capture does.
  for (std::size_t i = 0; i < step.asserts.size(); ++i) {
    const auto& a = step.asserts[i];
    std::string why;
    bool ok = true;
    switch (a.kind) {
      case Assertion::Kind::kStatus: {
        ok = false;
        for (auto [lo, hi] : a.statuses) ok = ok || (res.status >= lo && res.status <= hi);
        if (!ok) why = "got " + std::to_string(res.status);
        break;
      }
      case Assertion::Kind::kLatency:
        ok = latency_ns <= a.max_latency_ms * 1'000'000;
        if (!ok) why = "took " + std::to_string(latency_ns / 1'000'000) + " ms";
        break;
      case Assertion::Kind::kJson: {
        if (!have_json) {
          ok = false;
          why = "response body is not JSON";
          break;
        }
        const json* actual = body.contains(a.pointer) ? &body[a.pointer] : nullptr;
        json expected = a.value_template ? a.value_template->render_json(ctx) : a.value;
        ok = eval_op(a, actual, expected, why);
        break;
      }
      case Assertion::Kind::kHeader: {
        const std::string* h = res.header(a.header);
        std::optional<json> actual;
        if (h) actual = *h;
        json expected = a.value_template ? a.value_template->render_json(ctx) : a.value;
        ok = eval_op(a, actual ? &*actual : nullptr, expected, why);
        if (!ok && secret_name(a.header)) why = "value differs";  // never echo a secret
        break;
      }
      case Assertion::Kind::kBody: {
        json actual = res.body;
        json expected = a.value_template ? a.value_template->render_json(ctx) : a.value;
        ok = eval_op(a, &actual, expected, why);
        break;
      }
    }
    if (!ok) {
      v.ok = false;
      v.failed_assert = static_cast<int>(i);
      v.reason = "assert " + a.label + " failed: " + why;
      return v;
    }
  }
  for (const auto& c : step.captures) {
    switch (c.from) {
      case Capture::From::kJson:
        if (!have_json) {
          v = {false, "capture " + c.var + ": response body is not JSON", -1};
          return v;
        }
        if (!body.contains(c.pointer)) {
          v = {false, "capture " + c.var + ": " + c.pointer.to_string() + " not in the response",
               -1};
          return v;
        }
        vars[c.var] = body[c.pointer];
        break;
      case Capture::From::kHeader: {
        const std::string* h = res.header(c.header);
        if (!h) {
          v = {false, "capture " + c.var + ": no header " + c.header, -1};
          return v;
        }
        vars[c.var] = *h;
        break;
      }
      case Capture::From::kStatus:
        vars[c.var] = res.status;
        break;
      case Capture::From::kBody:
        vars[c.var] = res.body;
        break;
      case Capture::From::kHeaders: {
        json all = json::object();
        for (const auto& [k, val] : res.headers) {
          std::string name(k);
          for (auto& ch : name)
            ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
          auto& slot = all[name];
          slot = slot.is_string() ? slot.get<std::string>() + ", " + val : val;
        }
        vars[c.var] = std::move(all);
        break;
      }
    }
  }
  return v;
}

namespace {

const EVP_MD* hmac_md(const std::string& algorithm) {
  if (algorithm == "sha1") return EVP_sha1();
  if (algorithm == "sha256") return EVP_sha256();
  if (algorithm == "sha384") return EVP_sha384();
  if (algorithm == "sha512") return EVP_sha512();
  return nullptr;
}

}  // namespace

bool known_hmac_algorithm(const std::string& algorithm) {
  return hmac_md(algorithm) != nullptr;
}

std::string hmac_signature(const std::string& algorithm, std::string_view key,
                           std::string_view body, bool base64, const std::string& prefix) {
  const EVP_MD* md = hmac_md(algorithm);
  if (!md) throw FlowSpecError("hmac: unknown algorithm " + algorithm);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (!HMAC(md, key.data(), static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &n)) {
    throw Error("OpenSSL HMAC failed");
  }
  std::string out = prefix;
  if (base64) {
    std::string b(4 * ((n + 2) / 3) + 1, '\0');
    int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b.data()), mac, static_cast<int>(n));
    out.append(b.data(), static_cast<std::size_t>(len));
  } else {
    static const char* hex = "0123456789abcdef";
    for (unsigned int i = 0; i < n; ++i) {
      out += hex[mac[i] >> 4];
      out += hex[mac[i] & 15];
    }
  }
  OPENSSL_cleanse(mac, sizeof mac);
  return out;
}

bool render_seconds(const Template& t, const RenderContext& ctx, double& out) {
  json v = t.render_json(ctx);
  if (!as_number(v, out)) return false;
  return std::isfinite(out) && out >= 0;
}

std::string redacted_excerpt(const http::HttpResponse& res, std::size_t max_body) {
  std::string out;
  if (res.status) out = "HTTP " + std::to_string(res.status) + "\n";
  for (const auto& [k, val] : res.headers) {
    out += k + ": " + (secret_name(k) ? std::string("[redacted]") : val) + "\n";
  }
  std::string body = res.body;
  json j = json::parse(body, nullptr, false);
  if (!j.is_discarded() && j.is_structured()) {
    redact_json(j);
    body = j.dump();
  }
  if (body.size() > max_body) body = body.substr(0, max_body) + "...";
  // Keep the excerpt valid UTF-8-ish text for JSON reports: replace control bytes.
  for (auto& ch : body) {
    auto u = static_cast<unsigned char>(ch);
    if ((u < 0x20 && ch != '\n' && ch != '\t') || u >= 0x80) ch = '?';
  }
  return out + (body.empty() ? "" : "\n" + body);
}

}  // namespace blocktrust::flows
