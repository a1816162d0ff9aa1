// Compiling the loader's JSON into Steps, and the capture/assert evaluation of one response.
// GCC 12 reports a false -Wmaybe-uninitialized inside libstdc++'s <regex> at -O2 with sanitizers.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "flows_model.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cctype>
#include <cmath>

#include "http_text.hpp"

namespace blocktrust::flows {

namespace {

using json = nlohmann::json;

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw FlowSpecError(where + ": " + what);
}

const json& need(const json& obj, const char* key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end()) fail(where, std::string("missing ") + key);
  return *it;
}

std::string need_str(const json& obj, const char* key, const std::string& where) {
  const auto& v = need(obj, key, where);
  if (!v.is_string()) fail(where + "." + key, "must be a string");
  return v.get<std::string>();
}

json::json_pointer make_pointer(const std::string& s, const std::string& where) {
  try {
    return json::json_pointer(s);
  } catch (const json::exception&) {
    fail(where, "not a JSON pointer");
  }
}

std::string b64decode(const std::string& in, const std::string& where) {
  std::string out((in.size() / 4 + 1) * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0 || in.size() % 4 != 0) fail(where, "bad base64 data");
  std::size_t pad = 0;
  if (!in.empty() && in.back() == '=') ++pad;
  if (in.size() > 1 && in[in.size() - 2] == '=') ++pad;
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

std::vector<std::pair<std::string, Template>> pairs(const json& v, const std::string& where) {
  std::vector<std::pair<std::string, Template>> out;
  if (!v.is_array()) fail(where, "must be a list of [name, value] pairs");
  for (std::size_t i = 0; i < v.size(); ++i) {
    const auto& p = v[i];
    auto w = where + "[" + std::to_string(i) + "]";
    if (!p.is_array() || p.size() != 2 || !p[0].is_string() || !p[1].is_string()) {
      fail(w, "must be a [name, value] pair of strings");
    }
    out.emplace_back(p[0].get<std::string>(), Template::parse(p[1].get<std::string>(), w));
  }
  return out;
}

Assertion::Op parse_op(const std::string& s, const std::string& where) {
  using Op = Assertion::Op;
  if (s == "equals") return Op::kEquals;
  if (s == "not_equals") return Op::kNotEquals;
  if (s == "exists") return Op::kExists;
  if (s == "matches") return Op::kMatches;
  if (s == "contains") return Op::kContains;
  if (s == "lt") return Op::kLt;
  if (s == "le") return Op::kLe;
  if (s == "gt") return Op::kGt;
  if (s == "ge") return Op::kGe;
  fail(where, "unknown operator " + s);
}

Assertion compile_assert(const json& a, const std::string& where) {
  Assertion out;
  out.label = need_str(a, "label", where);
  auto kind = need_str(a, "kind", where);
  if (kind == "status") {
    out.kind = Assertion::Kind::kStatus;
    for (const auto& r : need(a, "allowed", where)) {
      out.statuses.emplace_back(r.at(0).get<int>(), r.at(1).get<int>());
    }
    return out;
  }
  if (kind == "latency") {
    out.kind = Assertion::Kind::kLatency;
    out.max_latency_ms = need(a, "max_ms", where).get<std::int64_t>();
    return out;
  }
  if (kind == "json") {
    out.kind = Assertion::Kind::kJson;
    out.pointer = make_pointer(need_str(a, "pointer", where), where + ".pointer");
  } else if (kind == "header") {
    out.kind = Assertion::Kind::kHeader;
    out.header = need_str(a, "name", where);
  } else if (kind == "body") {
    out.kind = Assertion::Kind::kBody;
  } else {
    fail(where + ".kind", "unknown assert kind " + kind);
  }
  out.op = parse_op(need_str(a, "op", where), where + ".op");
  out.value = a.value("value", json());
  if (out.value.is_string()) {
    const auto& s = out.value.get_ref<const std::string&>();
    if (out.op == Assertion::Op::kMatches) {
      try {
        out.re.emplace(s, std::regex::ECMAScript | std::regex::optimize);
      } catch (const std::regex_error&) {
        fail(where + ".value", "not a valid regular expression");
      }
    } else if (s.find("{{") != std::string::npos) {
      out.value_template = Template::parse(s, where + ".value");
    }
  }
  return out;
}

// Literal text that would split a request line or a header: refused before any request.
void no_line_breaks(const std::string& text, const std::string& where) {
  if (!http::field_value_safe(text)) fail(where, "must not contain CR, LF or NUL");
}

Step compile_step(const json& s, const std::string& where) {
  Step st;
  st.name = need_str(s, "name", where);
  st.method = need_str(s, "method", where);
  if (!http::is_token(st.method)) fail(where + ".method", "not an HTTP method");
  const auto url = need_str(s, "url", where);
  no_line_breaks(url, where + ".url");
  st.url = Template::parse(url, where + ".url");
  if (s.contains("headers")) {
    const auto& hs = s["headers"];
    st.headers = pairs(hs, where + ".headers");
    for (std::size_t i = 0; i < st.headers.size(); ++i) {
      auto hw = where + ".headers[" + std::to_string(i) + "]";
      if (!http::is_token(st.headers[i].first)) fail(hw, "the header name is not a token");
      no_line_breaks(hs[i][1].get<std::string>(), hw);
    }
  }
  st.timeout_ms = s.value("timeout_ms", std::int64_t{0});
  st.follow_redirects = s.value("follow_redirects", false);
  st.may_use_tls = st.follow_redirects || !(url.rfind('/', 0) == 0 || url.rfind("http://", 0) == 0);
  st.content_type = s.value("content_type", std::string());
  no_line_breaks(st.content_type, where + ".content_type");
  if (auto b = s.find("body"); b != s.end() && !b->is_null()) {
    auto w = where + ".body";
    auto kind = need_str(*b, "kind", w);
    if (kind == "json") {
      st.body = Step::Body::kJson;
      st.json_body = need(*b, "value", w);
    } else if (kind == "form") {
      st.body = Step::Body::kForm;
      st.form = pairs(need(*b, "fields", w), w + ".fields");
    } else if (kind == "raw") {
      st.body = Step::Body::kRaw;
      st.raw = Template::parse(need_str(*b, "text", w), w + ".text");
    } else if (kind == "multipart") {
      st.body = Step::Body::kMultipart;
      const auto& parts = need(*b, "parts", w);
      for (std::size_t i = 0; i < parts.size(); ++i) {
        auto pw = w + ".parts[" + std::to_string(i) + "]";
        Part p;
        p.name = need_str(parts[i], "name", pw);
        if (parts[i].contains("data_b64")) {
          p.is_file = true;
          p.filename = parts[i].value("filename", p.name);
          p.content_type = parts[i].value("content_type", "application/octet-stream");
          p.data = b64decode(need_str(parts[i], "data_b64", pw), pw + ".data_b64");
        } else {
          p.value = Template::parse(need_str(parts[i], "value", pw), pw + ".value");
          if (parts[i].contains("filename")) {  // a file whose content is the rendered value
            p.is_file = p.value_is_content = true;
            p.filename = need_str(parts[i], "filename", pw);
            p.content_type = parts[i].value("content_type", "application/octet-stream");
          }
        }
        st.parts.push_back(std::move(p));
      }
    } else {
      fail(w + ".kind", "unknown body kind " + kind);
    }
  }
  if (auto c = s.find("captures"); c != s.end()) {
    for (std::size_t i = 0; i < c->size(); ++i) {
      const auto& cj = (*c)[i];
      auto cw = where + ".captures[" + std::to_string(i) + "]";
      Capture cap;
      cap.var = need_str(cj, "var", cw);
      auto from = need_str(cj, "from", cw);
      if (from == "json") {
        cap.from = Capture::From::kJson;
        cap.pointer = make_pointer(need_str(cj, "pointer", cw), cw + ".pointer");
        st.needs_json = true;
      } else if (from == "header") {
        cap.from = Capture::From::kHeader;
        cap.header = need_str(cj, "name", cw);
      } else if (from == "status") {
        cap.from = Capture::From::kStatus;
      } else if (from == "body") {
        cap.from = Capture::From::kBody;
      } else if (from == "headers") {
        cap.from = Capture::From::kHeaders;
      } else {
        fail(cw + ".from", "unknown capture source " + from);
      }
      st.captures.push_back(std::move(cap));
    }
  }
  if (auto a = s.find("asserts"); a != s.end()) {
    for (std::size_t i = 0; i < a->size(); ++i) {
      st.asserts.push_back(compile_assert((*a)[i], where + ".asserts[" + std::to_string(i) + "]"));
      if (st.asserts.back().kind == Assertion::Kind::kJson) st.needs_json = true;
    }
  }
  if (auto r = s.find("retry"); r != s.end() && !r->is_null()) {
    auto w = where + ".retry";
    Retry retry;
    auto limit = [&](const char* key) -> std::optional<Template> {
      if (!r->contains(key)) return std::nullopt;
      return Template::parse(need_str(*r, key, w), w + "." + key);
    };
    retry.attempts = limit("attempts");
    retry.within = limit("within");
    if (!retry.attempts && !retry.within) fail(w, "give attempts or within (or both)");
    retry.interval = Template::parse(r->value("interval", std::string("1")), w + ".interval");
    st.retry = std::move(retry);
  }
  if (auto h = s.find("hmac"); h != s.end() && !h->is_null()) {
    auto w = where + ".hmac";
    Signing sig;
    sig.header = need_str(*h, "header", w);
    if (!http::is_token(sig.header)) fail(w + ".header", "not a header name");
    sig.algorithm = h->value("algorithm", std::string("sha256"));
    if (!known_hmac_algorithm(sig.algorithm)) fail(w + ".algorithm", "unknown " + sig.algorithm);
    sig.secret = Template::parse(need_str(*h, "secret", w), w + ".secret");
    auto enc = h->value("encoding", std::string("hex"));
    if (enc != "hex" && enc != "base64") fail(w + ".encoding", "must be hex or base64");
    sig.base64 = enc == "base64";
    sig.prefix = h->value("prefix", std::string());
    no_line_breaks(sig.prefix, w + ".prefix");
    st.hmac = std::move(sig);
  }
  return st;
}

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

Flow compile_flow(const std::string& text) {
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) fail("flow", "not a JSON object");
  Flow f;
  try {
    if (auto v = doc.find("values"); v != doc.end()) {
      if (!v->is_object()) fail("values", "must be an object of name: value");
      for (auto it = v->begin(); it != v->end(); ++it) f.values.emplace_back(it.key(), it.value());
    }
    if (auto r = doc.find("reported"); r != doc.end()) {
      f.reported = r->get<std::vector<std::string>>();
    }
    if (doc.contains("vars")) f.vars = pairs(doc["vars"], "vars");
    const auto& steps = need(doc, "steps", "flow");
    if (!steps.is_array() || steps.empty()) fail("steps", "must be a non-empty list");
    for (std::size_t i = 0; i < steps.size(); ++i) {
      f.steps.push_back(compile_step(steps[i], "steps[" + std::to_string(i) + "]"));
    }
  } catch (const json::exception& e) {
    fail("flow", std::string("malformed compiled flow: ") + e.what());
  }
  return f;
}

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
