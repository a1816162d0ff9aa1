// Private: an RFC 6265 cookie store for one user agent (a virtual user of the flow runner).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http_conn.hpp"

namespace blocktrust::http {

/// Cookies as a browser keeps them (RFC 6265 section 5): domain and host-only matching, path
/// matching, Secure only over https, Max-Age (which wins) and Expires. A Domain attribute must
/// domain-match the host that set it, and one that is a public suffix (is_public_suffix) is
/// accepted only from that very host, as host-only. Single-threaded.
class CookieJar final {
 public:
  using Clock = std::chrono::system_clock;

  /// Stores, replaces or expires the cookie of one Set-Cookie value received from `from`;
  /// malformed or foreign (Domain not matching the host) cookies are ignored, as browsers do.
  void store(const ParsedUrl& from, std::string_view set_cookie, Clock::time_point now);
  /// The Cookie header value for a request to `to` ("" when no cookie applies): longer paths
  /// first, then older cookies first.
  [[nodiscard]] std::string header_for(const ParsedUrl& to, Clock::time_point now) const;
  /// Forgets every cookie.
  void clear() noexcept { cookies_.clear(); }
  /// True when no cookie is stored (expired ones may still be counted until the next store).
  [[nodiscard]] bool empty() const noexcept { return cookies_.empty(); }

 private:
  struct Cookie {
    std::string name, value, domain, path;
    bool host_only = true;
    bool secure = false;
    std::optional<Clock::time_point> expires;  // none: a session cookie
    Clock::time_point created;
    std::uint64_t order = 0;  // creation order among equal timestamps
  };
  std::vector<Cookie> cookies_;
  std::uint64_t next_order_ = 0;
};

/// Whether a Domain attribute names a public suffix, under which any one may register a name:
/// every single label ("com", "localhost") and a built-in part of the Public Suffix List (the
/// registry-run second levels of the larger country domains, e.g. "co.uk", "com.au", "co.jp",
/// and well-known hosting suffixes such as "github.io", "herokuapp.com", "vercel.app"). Not
/// covered: the rest of the list's ~9,000 rules, its wildcard and exception rules (*.ck,
/// !www.ck) and its deeper entries (city.kawasaki.jp); a cookie for such a suffix is accepted.
bool is_public_suffix(std::string_view domain);

/// Parses a cookie date (RFC 6265 section 5.1.1, the lenient algorithm browsers use); false when
/// it is not one.
bool parse_cookie_date(std::string_view text, CookieJar::Clock::time_point& out);

}  // namespace blocktrust::http
