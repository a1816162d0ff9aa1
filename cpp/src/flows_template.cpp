// Templates: parsed once when a flow is compiled so rendering is a walk over ready parts.
#include "flows_template.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace blocktrust::flows {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool valid_name(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::string make_uuid(std::mt19937_64& rng) {
  std::uint64_t hi = rng(), lo = rng();
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // variant 10
  char buf[37];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xffff), static_cast<unsigned>(hi & 0xffff),
                static_cast<unsigned>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xffffffffffffULL));
  return buf;
}

Template Template::parse(std::string_view text, std::string_view where) {
  Template t;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto open = text.find("{{", pos);
    if (open == std::string_view::npos) {
      t.parts_.push_back({Kind::kLiteral, std::string(text.substr(pos))});
      break;
    }
    if (open > pos) t.parts_.push_back({Kind::kLiteral, std::string(text.substr(pos, open - pos))});
    auto close = text.find("}}", open + 2);
    if (close == std::string_view::npos) {
      throw FlowSpecError(std::string(where) + ": unterminated {{ in template");
    }
    auto name = trim(text.substr(open + 2, close - open - 2));
    if (!valid_name(name)) {
      throw FlowSpecError(std::string(where) + ": bad template reference {{" + std::string(name) +
                          "}}");
    }
    Part p{Kind::kVar, std::string(name)};
    if (name == "uuid")
      p.kind = Kind::kUuid;
    else if (name == "vu")
      p.kind = Kind::kVu;
    else if (name == "iteration")
      p.kind = Kind::kIteration;
    else if (name == "email" || name == "random_email")
      p.kind = Kind::kEmail;
    else if (name == "timestamp")
      p.kind = Kind::kTimestamp;
    else if (name == "timestamp_ms")
      p.kind = Kind::kTimestampMs;
    else if (name == "iso_time")
      p.kind = Kind::kIsoTime;
    else if (name == "random_int")
      p.kind = Kind::kRandomInt;
    else if (name.substr(0, 4) == "env.") {
      const char* v = std::getenv(std::string(name.substr(4)).c_str());
      if (!v) {
        throw FlowSpecError(std::string(where) + ": environment variable " +
                            std::string(name.substr(4)) + " is not set");
      }
      p = {Kind::kEnv, v};
    }
    t.parts_.push_back(std::move(p));
    pos = close + 2;
  }
  return t;
}

bool Template::is_literal() const noexcept {
  for (const auto& p : parts_) {
    if (p.kind != Kind::kLiteral) return false;
  }
  return true;
}

std::vector<std::string> Template::variables() const {
  std::vector<std::string> out;
  for (const auto& p : parts_) {
    if (p.kind == Kind::kVar) out.push_back(p.text);
  }
  return out;
}

void Template::render_part(const Part& p, const RenderContext& ctx, std::string& out) const {
  switch (p.kind) {
    case Kind::kLiteral:
    case Kind::kEnv:
      out += p.text;
      return;
    case Kind::kVar: {
      if (ctx.vars) {
        auto it = ctx.vars->find(p.text);
        if (it != ctx.vars->end()) {
          if (it->second.is_string())
            out += it->second.get_ref<const std::string&>();
          else
            out += it->second.dump();
        }
      }
      return;  // an unset variable renders empty (the loader rejects never-set names)
    }
    case Kind::kUuid:
      out += make_uuid(*ctx.rng);
      return;
    case Kind::kVu:
      out += std::to_string(ctx.vu);
      return;
    case Kind::kIteration:
      out += std::to_string(ctx.iteration);
      return;
    case Kind::kEmail: {
      char buf[80];
      std::snprintf(buf, sizeof buf, "vu%lld-it%lld-%08llx@example.test",
                    static_cast<long long>(ctx.vu), static_cast<long long>(ctx.iteration),
                    static_cast<unsigned long long>((*ctx.rng)() & 0xffffffffULL));
      out += buf;
      return;
    }
    case Kind::kTimestamp:
    case Kind::kTimestampMs:
    case Kind::kIsoTime: {
      auto now = std::chrono::system_clock::now();
      auto ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
      if (p.kind == Kind::kTimestamp)
        out += std::to_string(ms / 1000);
      else if (p.kind == Kind::kTimestampMs)
        out += std::to_string(ms);
      else {
        std::time_t secs = static_cast<std::time_t>(ms / 1000);
        std::tm tm{};
        gmtime_r(&secs, &tm);
        char buf[40];
        std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
        char frac[8];
        std::snprintf(frac, sizeof frac, ".%03dZ", static_cast<int>(ms % 1000));
        out += buf;
        out += frac;
      }
      return;
    }
    case Kind::kRandomInt:
      out += std::to_string((*ctx.rng)() % 1000000000ULL);
      return;
  }
}

std::string Template::render(const RenderContext& ctx) const {
  if (parts_.size() == 1 && parts_[0].kind == Kind::kLiteral) return parts_[0].text;
  std::string out;
  for (const auto& p : parts_) render_part(p, ctx, out);
  return out;
}

nlohmann::json Template::render_json(const RenderContext& ctx) const {
  if (parts_.size() == 1 && parts_[0].kind == Kind::kVar && ctx.vars) {
    auto it = ctx.vars->find(parts_[0].text);
    if (it != ctx.vars->end()) return it->second;
  }
  return render(ctx);
}

nlohmann::json render_json_tree(const nlohmann::json& value, const RenderContext& ctx) {
  if (value.is_string()) {
    const auto& s = value.get_ref<const std::string&>();
    if (s.find("{{") == std::string::npos) return value;
    return Template::parse(s, "json body").render_json(ctx);
  }
  if (value.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& v : value) out.push_back(render_json_tree(v, ctx));
    return out;
  }
  if (value.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (auto it = value.begin(); it != value.end(); ++it) {
      out[it.key()] = render_json_tree(it.value(), ctx);
    }
    return out;
  }
  return value;
}

}  // namespace blocktrust::flows
