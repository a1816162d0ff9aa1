// RFC 6265 section 5: parsing Set-Cookie, storing, and choosing the cookies of a request.
#include "cookie_jar.hpp"

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <cctype>
#include <ctime>

namespace blocktrust::http {

namespace {

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_ip(const std::string& host) {
  boost::system::error_code ec;
  (void)asio::ip::make_address(host, ec);
  return !ec;
}

// RFC 6265 5.1.3: equal, or a suffix after a dot of a host name (never of an IP address).
bool domain_match(const std::string& host, const std::string& domain) {
  if (host == domain) return true;
  return host.size() > domain.size() &&
         host.compare(host.size() - domain.size(), domain.size(), domain) == 0 &&
         host[host.size() - domain.size() - 1] == '.' && !is_ip(host);
}

// A small built-in part of the Public Suffix List (publicsuffix.org): the registry-run second
// levels most used under the larger country domains, and well-known hosting suffixes whose
// subdomains belong to different people. Space-separated, with a space at both ends.
constexpr std::string_view kPublicSuffixes =
    " ac.id ac.il ac.in ac.jp ac.kr ac.nz ac.th ac.uk ac.za ad.jp appspot.com asn.au"
    " asso.fr azurewebsites.net blogspot.com cloudfront.net co.id co.il co.in co.jp co.kr"
    " co.nz co.th co.uk co.za com.ar com.au com.br com.cn com.es com.fr com.hk com.mx"
    " com.my com.pl com.sg com.tr com.tw com.ua ed.jp edu.au edu.br edu.cn edu.es edu.hk"
    " edu.in edu.mx edu.my edu.sg edu.tr edu.tw firebaseapp.com firm.in fly.dev gen.in"
    " gen.nz github.io gitlab.io go.id go.jp go.kr go.th gob.ar gob.es gob.mx gouv.fr"
    " gov.au gov.br gov.cn gov.hk gov.il gov.in gov.my gov.pl gov.sg gov.tr gov.tw gov.ua"
    " gov.uk gov.za govt.nz gr.jp herokuapp.com id.au in.th ind.in lg.jp ltd.uk me.uk"
    " ne.jp ne.kr net.ar net.au net.br net.cn net.hk net.in net.mx net.my net.nz net.pl"
    " net.sg net.tr net.tw net.ua net.uk net.za netlify.app nhs.uk nom.es onrender.com"
    " or.id or.jp or.kr or.th org.ar org.au org.br org.cn org.es org.hk org.il org.in"
    " org.mx org.my org.nz org.pl org.sg org.tr org.tw org.ua org.uk org.za pages.dev"
    " plc.uk police.uk re.kr res.in s3.amazonaws.com sch.uk school.nz vercel.app web.app"
    " web.id web.za workers.dev ";

}  // namespace

bool is_public_suffix(std::string_view domain) {
  if (domain.empty() || domain.find('.') == std::string_view::npos) return true;
  std::string word = " ";
  word.append(domain).push_back(' ');
  return kPublicSuffixes.find(word) != std::string_view::npos;
}

namespace {

std::string request_path(const ParsedUrl& u) {
  auto path = u.target.substr(0, u.target.find_first_of("?#"));
  return path.empty() ? "/" : path;
}

// RFC 6265 5.1.4: the directory of the request path.
std::string default_path(const std::string& path) {
  if (path.empty() || path.front() != '/') return "/";
  auto slash = path.rfind('/');
  return slash == 0 ? "/" : path.substr(0, slash);
}

bool path_match(const std::string& request, const std::string& cookie) {
  if (request == cookie) return true;
  return request.size() > cookie.size() && request.compare(0, cookie.size(), cookie) == 0 &&
         (cookie.back() == '/' || request[cookie.size()] == '/');
}

bool delimiter(unsigned char c) {
  return c == 0x09 || (c >= 0x20 && c <= 0x2F) || (c >= 0x3B && c <= 0x40) ||
         (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
}

// Leading digits of `tok` (between min and max of them), the rest ignored as RFC 6265 allows.
bool leading_number(std::string_view tok, std::size_t min, std::size_t max, int& out) {
  std::size_t n = 0;
  out = 0;
  while (n < tok.size() && tok[n] >= '0' && tok[n] <= '9') out = out * 10 + (tok[n++] - '0');
  return n >= min && n <= max;
}

}  // namespace

bool parse_cookie_date(std::string_view text, CookieJar::Clock::time_point& out) {
  bool have_time = false, have_day = false, have_month = false, have_year = false;
  int hh = 0, mm = 0, ss = 0, day = 0, month = 0, year = 0;
  static constexpr std::string_view kMonths = "janfebmaraprmayjunjulaugsepoctnovdec";
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && delimiter(static_cast<unsigned char>(text[i]))) ++i;
    std::size_t j = i;
    while (j < text.size() && !delimiter(static_cast<unsigned char>(text[j]))) ++j;
    std::string_view tok = text.substr(i, j - i);
    i = j;
    if (tok.empty()) continue;
    int a = 0, b = 0, c = 0;
    if (!have_time) {
      auto c1 = tok.find(':'), c2 = tok.find(':', c1 == std::string_view::npos ? c1 : c1 + 1);
      if (c1 != std::string_view::npos && c2 != std::string_view::npos &&
          leading_number(tok.substr(0, c1), 1, 2, a) && c1 <= 2 &&
          leading_number(tok.substr(c1 + 1, c2 - c1 - 1), 1, 2, b) && c2 - c1 - 1 <= 2 &&
          leading_number(tok.substr(c2 + 1), 1, 2, c)) {
        have_time = true;
        hh = a, mm = b, ss = c;
        continue;
      }
    }
    if (!have_day && leading_number(tok, 1, 2, a)) {
      have_day = true;
      day = a;
      continue;
    }
    if (!have_month && tok.size() >= 3) {
      std::string m3;
      for (char ch : tok.substr(0, 3)) m3 += static_cast<char>(std::tolower(ch));
      if (auto at = kMonths.find(m3); at != std::string_view::npos && at % 3 == 0) {
        have_month = true;
        month = static_cast<int>(at / 3) + 1;
        continue;
      }
    }
    if (!have_year && leading_number(tok, 2, 4, a)) {
      have_year = true;
      year = a;
      continue;
    }
  }
  if (have_year && year >= 70 && year <= 99) year += 1900;
  if (have_year && year >= 0 && year <= 69) year += 2000;
  if (!have_time || !have_day || !have_month || !have_year || day < 1 || day > 31 || year < 1601 ||
      hh > 23 || mm > 59 || ss > 59) {
    return false;
  }
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hh;
  tm.tm_min = mm;
  tm.tm_sec = ss;
  out = CookieJar::Clock::from_time_t(timegm(&tm));
  return true;
}

void CookieJar::store(const ParsedUrl& from, std::string_view set_cookie, Clock::time_point now) {
  const auto semi = set_cookie.find(';');
  const auto pair = set_cookie.substr(0, semi);
  const auto eq = pair.find('=');
  if (eq == std::string_view::npos) return;
  Cookie c;
  c.name = std::string(trim(pair.substr(0, eq)));
  c.value = std::string(trim(pair.substr(eq + 1)));
  if (c.name.empty()) return;
  const std::string host = lower(from.origin.host);
  std::string domain_attr;
  std::optional<std::string> path_attr;
  std::optional<Clock::time_point> max_age, expires;
  for (auto rest = semi == std::string_view::npos ? std::string_view() : set_cookie.substr(semi);
       !rest.empty();) {
    rest.remove_prefix(1);  // the ';'
    const auto end = rest.find(';');
    const auto av = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end);
    const auto aeq = av.find('=');
    const std::string name = lower(trim(av.substr(0, aeq)));
    const auto value =
        aeq == std::string_view::npos ? std::string_view() : trim(av.substr(aeq + 1));
    if (name == "expires") {
      Clock::time_point t;
      if (parse_cookie_date(value, t)) expires = t;
    } else if (name == "max-age") {
      if (value.empty() ||
          !(value.front() == '-' || (value.front() >= '0' && value.front() <= '9')))
        continue;
      long long secs = 0;
      bool digits = true;
      for (char ch : value.substr(value.front() == '-' ? 1 : 0)) {
        if (ch < '0' || ch > '9') digits = false;
        if (digits && secs < 1'000'000'000'000LL) secs = secs * 10 + (ch - '0');
      }
      if (!digits) continue;
      if (value.front() == '-' || secs == 0)
        max_age = Clock::time_point::min();
      else
        max_age = now + std::chrono::seconds(std::min<long long>(secs, 400LL * 86400));
    } else if (name == "domain") {
      if (value.empty()) continue;
      auto d = value.front() == '.' ? value.substr(1) : value;
      domain_attr = lower(d);
    } else if (name == "path") {
      path_attr = (value.empty() || value.front() != '/') ? std::string() : std::string(value);
    } else if (name == "secure") {
      c.secure = true;
    }
  }
  // A Secure cookie only from a secure origin (RFC 6265bis), so http cannot plant one.
  if (c.secure && !from.origin.tls) return;
  if (!domain_attr.empty()) {
    if (!domain_match(host, domain_attr)) return;  // another site's cookie: ignored
    // RFC 6265 5.3 step 5: a Domain that is a public suffix ("com", "co.uk", "github.io") is a
    // host-only cookie of that very host, never a cookie for every name under it.
    if (is_public_suffix(domain_attr) || is_ip(host)) {
      if (domain_attr != host) return;
      domain_attr.clear();
    }
  }
  c.host_only = domain_attr.empty();
  c.domain = c.host_only ? host : domain_attr;
  c.path = path_attr && !path_attr->empty() ? *path_attr : default_path(request_path(from));
  c.expires = max_age ? max_age : expires;
  c.created = now;
  c.order = next_order_++;
  auto same = std::find_if(cookies_.begin(), cookies_.end(), [&](const Cookie& o) {
    return o.name == c.name && o.domain == c.domain && o.path == c.path;
  });
  // Not over http: a cookie a secure origin marked Secure is not overwritten from plain http.
  if (same != cookies_.end() && same->secure && !from.origin.tls) return;
  if (same != cookies_.end()) {
    c.created = same->created;
    c.order = same->order;
    cookies_.erase(same);
  }
  if (c.expires && *c.expires <= now) return;  // an expiry in the past deletes the cookie
  cookies_.push_back(std::move(c));
}

std::string CookieJar::header_for(const ParsedUrl& to, Clock::time_point now) const {
  const std::string host = lower(to.origin.host);
  const std::string path = request_path(to);
  std::vector<const Cookie*> out;
  for (const auto& c : cookies_) {
    if (c.expires && *c.expires <= now) continue;
    if (c.host_only ? host != c.domain : !domain_match(host, c.domain)) continue;
    if (!path_match(path, c.path)) continue;
    if (c.secure && !to.origin.tls) continue;
    out.push_back(&c);
  }
  std::stable_sort(out.begin(), out.end(), [](const Cookie* a, const Cookie* b) {
    if (a->path.size() != b->path.size()) return a->path.size() > b->path.size();
    return a->order < b->order;
  });
  std::string header;
  for (const auto* c : out) {
    if (!header.empty()) header += "; ";
    header += c->name + "=" + c->value;
  }
  return header;
}

}  // namespace blocktrust::http
