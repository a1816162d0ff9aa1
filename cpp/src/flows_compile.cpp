// Compiling the loader's JSON into a Flow of Steps: every spec error is found here, before any
// request. GCC 12 reports a false -Wmaybe-uninitialized inside libstdc++'s <regex> at -O2 with
// sanitizers.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <openssl/evp.h>

#include "flows_model.hpp"
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

}  // namespace blocktrust::flows
