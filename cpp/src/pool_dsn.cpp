#include "pool_dsn.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <memory>

namespace blocktrust::pool {

std::string strip_driver(std::string_view dsn) {
  for (std::string_view scheme : {"postgresql+", "postgres+"}) {
    if (dsn.substr(0, scheme.size()) == scheme) {
      auto sep = dsn.find("://");
      if (sep != std::string_view::npos) {
        std::string out(scheme.substr(0, scheme.size() - 1));
        out += dsn.substr(sep);
        return out;
      }
    }
  }
  return std::string(dsn);
}

namespace {

bool iequals_at(const std::string& s, std::size_t pos, std::string_view word) {
  if (pos + word.size() > s.size()) return false;
  for (std::size_t i = 0; i < word.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[pos + i])) != word[i]) return false;
  }
  return true;
}

// URL query: every `password=` parameter value up to the next '&'.
std::string redact_query(std::string dsn, std::size_t from) {
  for (std::size_t i = from; i < dsn.size(); ++i) {
    if ((dsn[i] == '?' || dsn[i] == '&') && iequals_at(dsn, i + 1, "password=")) {
      const std::size_t start = i + 10;
      std::size_t end = dsn.find('&', start);
      if (end == std::string::npos) end = dsn.size();
      dsn.replace(start, end - start, "***");
    }
  }
  return dsn;
}

// key=value form: `password = value` where value is bare or '...' with backslash escapes.
std::string redact_keywords(std::string dsn) {
  for (std::size_t i = 0; i < dsn.size(); ++i) {
    if ((i > 0 && !std::isspace(static_cast<unsigned char>(dsn[i - 1]))) ||
        !iequals_at(dsn, i, "password")) {
      continue;
    }
    std::size_t p = i + 8;
    while (p < dsn.size() && dsn[p] == ' ') ++p;
    if (p >= dsn.size() || dsn[p] != '=') continue;
    ++p;
    while (p < dsn.size() && dsn[p] == ' ') ++p;
    std::size_t end = p;
    if (end < dsn.size() && dsn[end] == '\'') {
      ++end;
      while (end < dsn.size() && dsn[end] != '\'') end += dsn[end] == '\\' ? 2 : 1;
      end = std::min(end + 1, dsn.size());
    } else {
      while (end < dsn.size() && !std::isspace(static_cast<unsigned char>(dsn[end]))) ++end;
    }
    dsn.replace(p, end - p, "***");
    i = p + 3;
  }
  return dsn;
}

}  // namespace

std::string redact_dsn(std::string_view dsn_in) {
  std::string dsn(dsn_in);
  auto scheme = dsn.find("://");
  if (scheme != std::string::npos && dsn.find_first_of(" =") > scheme) {
    // URL: scheme://[user[:password]@]host... ; userinfo ends at the last '@' of the authority.
    auto start = scheme + 3;
    auto end = dsn.find_first_of("/?", start);
    if (end == std::string::npos) end = dsn.size();
    auto at = dsn.rfind('@', end);
    if (at != std::string::npos && at >= start) {
      auto colon = dsn.find(':', start);
      if (colon != std::string::npos && colon < at) dsn.replace(colon + 1, at - colon - 1, "***");
    }
    return redact_query(std::move(dsn), start);
  }
  return redact_keywords(std::move(dsn));
}

namespace {

std::string quote(const std::string& v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

}  // namespace

std::string build_conninfo(const PoolConfig& config) {
  const std::string dsn = strip_driver(config.dsn);
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(dsn.c_str(), &err);
  if (opts == nullptr) {
    std::string why = err ? err : "out of memory";
    if (err) PQfreemem(err);
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    throw ConfigError("invalid DSN " + redact_dsn(config.dsn) + ": " + why);
  }
  std::map<std::string, std::string> kv;
  for (auto* o = opts; o->keyword != nullptr; ++o) {
    if (o->val != nullptr) kv[o->keyword] = o->val;
  }
  PQconninfoFree(opts);

  if (!config.application_name.empty()) {
    kv["application_name"] = config.application_name;
  } else if (!kv.count("application_name")) {
    kv["application_name"] = "blocktrust_native";
  }
  if (!kv.count("connect_timeout")) kv["connect_timeout"] = std::to_string(config.connect_timeout);
  kv["client_encoding"] = "UTF8";  // the bindings decode text as UTF-8 whatever the database's is
  // A server that vanished without a FIN (a dead NAT entry, a pulled cable, a DROP rule) is
  // noticed in under a minute instead of the kernel's two hours: keepalives probe idle
  // connections, and data left unacknowledged fails after tcp_user_timeout. The DSN's own
  // values win; libpq ignores them on Unix sockets.
  for (const auto& [k, v] : {std::pair{"keepalives", "1"},
                             {"keepalives_idle", "15"},
                             {"keepalives_interval", "5"},
                             {"keepalives_count", "3"},
                             {"tcp_user_timeout", "30000"}}) {
    if (!kv.count(k)) kv[k] = v;
  }
  if (!config.pgbouncer) {
    // Session settings ride on the startup packet: no extra round trip. PgBouncer rejects
    // the `options` startup parameter, so that mode leaves them to the server's defaults.
    std::string o = kv.count("options") ? kv["options"] + " " : "";
    o += "-c DateStyle=ISO";
    if (config.statement_timeout.count() > 0) {
      o += " -c statement_timeout=" + std::to_string(config.statement_timeout.count());
    }
    kv["options"] = o;
  }
  std::string out;
  for (const auto& [k, v] : kv) {
    if (!out.empty()) out += ' ';
    out += k + "=" + quote(v);
  }
  return out;
}

}  // namespace blocktrust::pool
