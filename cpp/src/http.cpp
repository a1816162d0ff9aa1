// HTTP/1.1 over Boost.Beast: connection setup, one request/response exchange with a deadline and
// size caps, and the blocking HttpClient face. Every network failure becomes HttpResponse::error.
#include "blocktrust/http.hpp"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "http_conn.hpp"
#include "tls_trust.hpp"

namespace blocktrust::http {

namespace {

using asio::redirect_error;
using asio::use_awaitable;
using Clock = std::chrono::steady_clock;

bool ieq(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string describe(std::string_view stage, const boost::system::error_code& ec) {
  if (ec == beast::error::timeout) return std::string(stage) + ": timed out";
  if (ec == bhttp::error::body_limit) return std::string(stage) + ": response body too large";
  if (ec == bhttp::error::header_limit) return std::string(stage) + ": response header too large";
  if (ec == bhttp::error::end_of_stream || ec == asio::error::eof) {
    return std::string(stage) + ": connection closed by the server";
  }
  return std::string(stage) + ": " + ec.message();
}

// One name lookup. getaddrinfo has no timeout and cannot be cancelled (Asio's resolver only
// stops reporting, and still waits for it), so it runs on a thread of its own and the coroutine
// stops waiting at the deadline; a late answer is dropped.
struct Lookup {
  std::mutex mu;
  bool done = false;
  boost::system::error_code ec;
  std::vector<asio::ip::tcp::endpoint> eps;
  asio::steady_timer* timer = nullptr;  // null once the waiting coroutine is gone
};

asio::awaitable<bool> resolve_within(asio::any_io_executor ex, const std::string& host,
                                     const std::string& port, Clock::time_point deadline,
                                     std::vector<asio::ip::tcp::endpoint>& eps, std::string& why) {
  auto st = std::make_shared<Lookup>();
  asio::steady_timer timer(ex, deadline);
  st->timer = &timer;
  // Also runs when the frame is destroyed unresumed (the run is torn down): no post after that.
  struct Forget {
    std::shared_ptr<Lookup> st;
    ~Forget() {
      std::lock_guard lk(st->mu);
      st->timer = nullptr;
    }
  } forget{st};
  std::thread([st, ex, host, port] {
    asio::io_context own;
    asio::ip::tcp::resolver resolver(own);
    boost::system::error_code ec;
    auto results = resolver.resolve(host, port, ec);
    std::lock_guard lk(st->mu);
    if (!st->timer) return;  // given up on
    st->ec = ec;
    for (const auto& r : results) st->eps.push_back(r.endpoint());
    st->done = true;
    asio::post(ex, [st] {
      std::lock_guard lk2(st->mu);
      if (st->timer) st->timer->cancel();  // wakes the coroutine before its deadline
    });
  }).detach();
  boost::system::error_code ignored;  // expiry (deadline) or cancellation (answer): both resume
  co_await timer.async_wait(redirect_error(use_awaitable, ignored));
  {
    std::lock_guard lk(st->mu);
    if (!st->done) {
      why = "resolve " + host + ": timed out";
      co_return false;
    }
    if (st->ec) {
      why = describe("resolve " + host, st->ec);
      co_return false;
    }
    eps = std::move(st->eps);
  }
  co_return true;
}

}  // namespace

std::string what(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "unknown exception";
  }
}

const std::string* HttpResponse::header(std::string_view name) const noexcept {
  for (const auto& [k, v] : headers) {
    if (ieq(k, name)) return &v;
  }
  return nullptr;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool field_value_safe(std::string_view s) noexcept {
  return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

bool is_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alnum &&
        std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

std::string unsafe_request(const bhttp::request<bhttp::string_body>& req) {
  if (!is_token(req.method_string())) return "the method is not an HTTP token";
  if (!field_value_safe(req.target())) return "CR, LF or NUL in the request target";
  for (const auto& f : req) {
    if (!is_token(f.name_string())) {
      return "header name " + std::string(f.name_string().substr(0, 64)) + " is not a token";
    }
    if (!field_value_safe(f.value())) {
      return "CR, LF or NUL in the value of header " + std::string(f.name_string());
    }
  }
  return {};
}

bool idempotent_method(std::string_view m) noexcept {
  return m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "TRACE" || m == "PUT" || m == "DELETE";
}

bool credentials_may_follow(const Origin& from, const Origin& to) noexcept {
  return from.tls == to.tls && ieq(from.host, to.host) && from.port == to.port;
}

bool credential_header(std::string_view name) noexcept {
  return ieq(name, "authorization") || ieq(name, "cookie") || ieq(name, "proxy-authorization");
}

bool resolve_location(const ParsedUrl& from, std::string_view loc, std::string& next,
                      std::string& why) {
  if (!field_value_safe(loc) || loc.empty()) {
    why = "redirect: unusable Location";
    return false;
  }
  const std::string scheme = from.origin.tls ? "https:" : "http:";
  std::string authority = from.origin.host.find(':') != std::string::npos
                              ? "[" + from.origin.host + "]"
                              : from.origin.host;
  authority += ":" + from.origin.port;
  const std::string lowered = lower(loc.substr(0, 8));
  if (lowered.rfind("http://", 0) == 0 || lowered.rfind("https://", 0) == 0) {
    next = std::string(loc);
  } else if (loc.substr(0, 2) == "//") {  // scheme-relative
    next = scheme + std::string(loc);
  } else if (loc.front() == '/') {
    next = scheme + "//" + authority + std::string(loc);
  } else if (loc.find(':') != std::string_view::npos && loc.find(':') < loc.find_first_of("/?#")) {
    why = "redirect to a scheme other than http or https";
    return false;
  } else {  // relative to the directory of the current path
    std::string base = from.target.substr(0, from.target.find('?'));
    base = base.substr(0, base.rfind('/') + 1);
    next = scheme + "//" + authority + base + std::string(loc);
  }
  return true;
}

bool parse_url(std::string_view url, ParsedUrl& out, std::string& why) {
  std::string_view rest;
  if (url.substr(0, 7) == "http://") {
    out.origin.tls = false;
    rest = url.substr(7);
  } else if (url.substr(0, 8) == "https://") {
    out.origin.tls = true;
    rest = url.substr(8);
  } else {
    why = "not an http:// or https:// URL";
    return false;
  }
  auto slash = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, slash);
  std::string_view target = slash == std::string_view::npos ? "/" : rest.substr(slash);
  if (auto hash = target.find('#'); hash != std::string_view::npos) target = target.substr(0, hash);
  if (authority.find('@') != std::string_view::npos) {
    why = "credentials in the URL are not supported";
    return false;
  }
  std::string_view host = authority, port;
  if (!authority.empty() && authority.front() == '[') {  // [v6]:port
    auto close = authority.find(']');
    if (close == std::string_view::npos) {
      why = "unterminated IPv6 literal";
      return false;
    }
    host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':') {
      port = authority.substr(close + 2);
    }
  } else if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) {
    why = "no host in the URL";
    return false;
  }
  // Range-checked: 65617 must not wrap around to port 81, nor 99999999999999999999 throw.
  unsigned long port_number = 0;
  for (char c : port) {
    if (c < '0' || c > '9') {
      why = "bad port in the URL";
      return false;
    }
    port_number = port_number * 10 + static_cast<unsigned long>(c - '0');
    if (port_number > 65535) break;
  }
  if (!port.empty() && (port_number < 1 || port_number > 65535)) {
    why = "port " + std::string(port) + " out of range (1-65535)";
    return false;
  }
  if (!field_value_safe(host) || !field_value_safe(target)) {
    why = "CR, LF or NUL in the URL";
    return false;
  }
  for (char c : target) {
    if (c == ' ' || c == '\t') {
      why = "white space in the URL";
      return false;
    }
  }
  out.origin.host = std::string(host);
  out.origin.port = port.empty() ? (out.origin.tls ? "443" : "80") : std::string(port);
  out.target =
      target.empty() || target.front() != '/' ? "/" + std::string(target) : std::string(target);
  return true;
}

asio::ssl::context make_tls_context(const HttpOptions& o) {
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                  asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                  asio::ssl::context::no_tlsv1_1);
  boost::system::error_code ec;
  if (!o.ca_file.empty()) {
    ctx.load_verify_file(o.ca_file, ec);
    if (ec) throw HttpConfigError("ca_file " + o.ca_file + ": cannot load: " + ec.message());
  } else if (o.verify_peer && !tls::trust_system_store(ctx.native_handle())) {
    throw HttpConfigError(
        "no system CA store found (set SSL_CERT_FILE or SSL_CERT_DIR, or pass ca_file)");
  }
  ctx.set_verify_mode(o.verify_peer ? asio::ssl::verify_peer : asio::ssl::verify_none);
  return ctx;
}

Conn::Conn(asio::any_io_executor ex, asio::ssl::context* tls_ctx, Origin origin)
    : ex_(std::move(ex)), tls_ctx_(tls_ctx), origin_(std::move(origin)) {}

void Conn::close() noexcept {
  boost::system::error_code ignored;  // closing a dead socket may fail; nothing to do about it
  if (tls_) beast::get_lowest_layer(*tls_).socket().close(ignored);
  if (tcp_) tcp_->socket().close(ignored);
  tls_.reset();
  tcp_.reset();
  buf_.clear();
  served_ = 0;
}

asio::awaitable<bool> Conn::connect(const HttpOptions& opts, std::string& why) {
  close();
  boost::system::error_code ec;
  // One budget for resolving, connecting and the TLS handshake.
  const auto deadline = Clock::now() + std::chrono::milliseconds(opts.connect_timeout_ms);
  std::vector<asio::ip::tcp::endpoint> eps;
  unsigned long port_number = 0;
  for (char c : origin_.port) port_number = port_number * 10 + static_cast<unsigned long>(c - '0');
  if (origin_.port.empty() || origin_.port.size() > 5 || port_number < 1 || port_number > 65535) {
    why = "port " + origin_.port + " out of range (1-65535)";  // parse_url refuses these first
    co_return false;
  }
  const auto port = static_cast<unsigned short>(port_number);
  auto addr = asio::ip::make_address(origin_.host, ec);
  if (!ec) {
    eps.emplace_back(addr, port);
  } else {
    if (!co_await resolve_within(ex_, origin_.host, origin_.port, deadline, eps, why)) {
      co_return false;
    }
  }
  const auto connect_timeout =
      std::max(std::chrono::milliseconds(1),
               std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
  if (origin_.tls) {
    if (!tls_ctx_) {
      why = "https is not enabled for this client";
      co_return false;
    }
    tls_.emplace(ex_, *tls_ctx_);
    auto& low = beast::get_lowest_layer(*tls_);
    low.expires_after(connect_timeout);
    co_await low.async_connect(eps, redirect_error(use_awaitable, ec));
    if (ec) {
      why = describe("connect", ec);
      co_return false;
    }
    low.socket().set_option(asio::ip::tcp::no_delay(true), ec);
    // SNI must name the host (never an IP literal); the certificate must match it too.
    if (addr.is_unspecified() &&
        !SSL_set_tlsext_host_name(tls_->native_handle(), origin_.host.c_str())) {
      why = "TLS: cannot set SNI host name";
      co_return false;
    }
    tls_->set_verify_callback(asio::ssl::host_name_verification(origin_.host));
    co_await tls_->async_handshake(asio::ssl::stream_base::client,
                                   redirect_error(use_awaitable, ec));
    if (ec) {
      why = describe("TLS handshake", ec);
      co_return false;
    }
  } else {
    tcp_.emplace(ex_);
    tcp_->expires_after(connect_timeout);
    co_await tcp_->async_connect(eps, redirect_error(use_awaitable, ec));
    if (ec) {
      why = describe("connect", ec);
      co_return false;
    }
    tcp_->socket().set_option(asio::ip::tcp::no_delay(true), ec);
  }
  co_return true;
}

asio::awaitable<bool> Conn::attempt(bhttp::request<bhttp::string_body>& req,
                                    const HttpOptions& opts, HttpResponse& out, bool& retryable) {
  retryable = false;
  const bool reused = served_ > 0 && (tcp_ || tls_);
  out.reused_connection = reused;
  if (!reused) {
    std::string why;
    if (!co_await connect(opts, why)) {
      out.error = why;
      co_return false;
    }
  }
  boost::system::error_code ec;
  const auto deadline = std::chrono::milliseconds(opts.request_timeout_ms);
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(opts.max_response_bytes);
  parser.header_limit(opts.max_header_bytes);
  if (req.method() == bhttp::verb::head) parser.skip(true);
  // One deadline covers writing the request and reading the whole response (slow trickle).
  bool sent = false;
  if (tls_) {
    beast::get_lowest_layer(*tls_).expires_after(deadline);
    co_await bhttp::async_write(*tls_, req, redirect_error(use_awaitable, ec));
    sent = !ec;
    if (sent) co_await bhttp::async_read(*tls_, buf_, parser, redirect_error(use_awaitable, ec));
  } else {
    tcp_->expires_after(deadline);
    co_await bhttp::async_write(*tcp_, req, redirect_error(use_awaitable, ec));
    sent = !ec;
    if (sent) co_await bhttp::async_read(*tcp_, buf_, parser, redirect_error(use_awaitable, ec));
  }
  if (ec) {
    // A kept-alive connection the server closed before any byte of the response: RFC 9110
    // allows resending an idempotent request once on a fresh connection. Anything else (a POST,
    // a PATCH, a timeout, a reset mid-response) is a failure: the server may have acted on it.
    retryable = reused && !parser.got_some() && ec != beast::error::timeout &&
                idempotent_method(req.method_string());
    out.error = describe(!sent               ? "send request"
                         : parser.got_some() ? "read response"
                                             : "await response (request sent)",
                         ec);
    close();
    co_return false;
  }
  auto& res = parser.get();
  out.status = static_cast<int>(res.result_int());
  out.headers.clear();
  for (const auto& f : res) out.headers.emplace_back(f.name_string(), f.value());
  out.body = std::move(res.body());
  out.error.clear();
  ++served_;
  if (!res.keep_alive()) close();
  co_return true;
}

asio::awaitable<void> Conn::exchange(bhttp::request<bhttp::string_body>& req,
                                     const HttpOptions& opts, HttpResponse& out) {
  if (auto why = unsafe_request(req); !why.empty()) {
    out.error = "refused to send: " + why;  // never written: it would split the request
    co_return;
  }
  bool retryable = false;
  if (co_await attempt(req, opts, out, retryable)) co_return;
  if (retryable) {
    out.error.clear();
    ++out.retries;
    co_await attempt(req, opts, out, retryable);
  }
}

// ---- the blocking client

struct HttpClient::Impl {
  HttpOptions opts;
  asio::io_context ioc{1};
  std::optional<asio::ssl::context> tls;
  std::vector<std::unique_ptr<Conn>> conns;

  Conn& conn_for(const Origin& o) {
    for (auto& c : conns) {
      if (c->origin() == o) return *c;
    }
    if (o.tls && !tls) tls.emplace(make_tls_context(opts));
    conns.push_back(std::make_unique<Conn>(ioc.get_executor(), tls ? &*tls : nullptr, o));
    return *conns.back();
  }
};

HttpClient::HttpClient(HttpOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->opts = std::move(options);
  if (!impl_->opts.ca_file.empty()) impl_->tls.emplace(make_tls_context(impl_->opts));
}
HttpClient::~HttpClient() = default;
HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;

HttpResponse HttpClient::request(const HttpRequest& request) {
  HttpResponse out;
  std::string url = request.url;
  std::string method = request.method;
  std::string body = request.body;
  const auto start = Clock::now();
  Origin first;
  int retries = 0;
  for (int hop = 0;; ++hop) {
    ParsedUrl u;
    std::string why;
    if (!parse_url(url, u, why)) {
      std::string what = "url ";
      what.append(url).append(": ").append(why);
      throw HttpConfigError(what);
    }
    if (hop == 0) first = u.origin;
    if (!is_token(method)) throw HttpConfigError("method " + method + ": not an HTTP method");
    Conn& conn = impl_->conn_for(u.origin);
    bhttp::request<bhttp::string_body> req;
    req.method_string(method);
    req.target(u.target);
    req.version(11);
    const bool same_origin = hop == 0 || credentials_may_follow(first, u.origin);
    for (const auto& [k, v] : request.headers) {
      if (!is_token(k) || !field_value_safe(v)) {
        throw HttpConfigError("header " + (is_token(k) ? k : std::string("name")) +
                              ": CR, LF or NUL, or not a token");
      }
      if (!same_origin && credential_header(k)) continue;  // never to another origin
      req.insert(k, v);
    }
    if (req.find(bhttp::field::host) == req.end()) req.set(bhttp::field::host, u.origin.host);
    if (req.find(bhttp::field::user_agent) == req.end()) {
      req.set(bhttp::field::user_agent, "blocktrust-native");
    }
    req.body() = body;
    if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
      req.prepare_payload();
    }
    out = {};
    // An exception inside the exchange is a failure of this request, never a silent success.
    asio::co_spawn(impl_->ioc, conn.exchange(req, impl_->opts, out),
                   [&out, &conn](const std::exception_ptr& e) {
                     if (!e) return;
                     out = {};
                     out.error = "internal error: " + what(e);
                     conn.close();
                   });
    impl_->ioc.run();
    impl_->ioc.restart();
    retries += out.retries;
    out.retries = retries;
    const auto* loc = out.header("location");
    const bool redirect = out.ok() && loc &&
                          (out.status == 301 || out.status == 302 || out.status == 303 ||
                           out.status == 307 || out.status == 308);
    if (!redirect || !impl_->opts.follow_redirects) break;
    if (hop >= impl_->opts.max_redirects) {
      out.error =
          "too many redirects (more than " + std::to_string(impl_->opts.max_redirects) + ")";
      break;
    }
    std::string next;
    if (!resolve_location(u, *loc, next, why)) {
      out.error = why;
      break;
    }
    url = next;
    if ((out.status == 303 && method != "HEAD") ||
        ((out.status == 301 || out.status == 302) && method == "POST")) {
      method = "GET";
      body.clear();
    }
  }
  out.latency_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
  return out;
}

}  // namespace blocktrust::http
