// Private: one keep-alive HTTP/1.1 connection driven by C++20 coroutines on an Asio executor.
// Used by HttpClient (blocking face) and by the flow runner (thousands of them per thread).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <exception>
#include <optional>
#include <string>
#include <string_view>

#include "blocktrust/http.hpp"
#include "http_text.hpp"

namespace blocktrust::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

/// Scheme, host and port: what a connection is bound to.
struct Origin {
  bool tls = false;
  std::string host;
  std::string port;
  bool operator==(const Origin&) const = default;
};

/// An absolute URL split into its origin and request target.
struct ParsedUrl {
  Origin origin;
  std::string target;  // path and query, at least "/"
};

/// Splits an absolute http(s) URL; returns false with `why` filled when it is not one.
bool parse_url(std::string_view url, ParsedUrl& out, std::string& why);

/// Why `req` must not be sent (a CR, LF or NUL in its method, target or a header; a method or
/// header name that is not a token), or "" when it is safe to write.
std::string unsafe_request(const bhttp::request<bhttp::string_body>& req);

/// Resolves a Location header against the URL that answered; false with `why` when unusable.
bool resolve_location(const ParsedUrl& from, std::string_view location, std::string& next,
                      std::string& why);

/// True when credentials (Authorization, Cookie, Proxy-Authorization) set for `from` may go to
/// `to`: the same origin only (so never across hosts or ports, nor on an https -> http downgrade).
bool credentials_may_follow(const Origin& from, const Origin& to) noexcept;

/// Builds the TLS context for `options` (verification on unless turned off, custom CA file).
asio::ssl::context make_tls_context(const HttpOptions& options);

/// The message of an exception caught as an exception_ptr (for failure records).
std::string what(const std::exception_ptr& e);

/// Lower-case copy of an ASCII string.
std::string lower(std::string_view s);

/// One connection to one origin; reconnects on demand. Single-threaded (one executor).
class Conn {
 public:
  Conn(asio::any_io_executor ex, asio::ssl::context* tls_ctx, Origin origin);
  /// The origin this connection serves.
  [[nodiscard]] const Origin& origin() const noexcept { return origin_; }
  /// Sends `req` and reads the response into `out`; failures land in out.error. An idempotent
  /// request on a reused connection that closed before any response byte is resent once on a
  /// fresh connection (counted in out.retries); nothing else is ever resent.
  asio::awaitable<void> exchange(bhttp::request<bhttp::string_body>& req, const HttpOptions& opts,
                                 HttpResponse& out);
  /// Drops the connection (the next exchange reconnects).
  void close() noexcept;

 private:
  asio::awaitable<bool> connect(const HttpOptions& opts, std::string& why);
  asio::awaitable<bool> attempt(bhttp::request<bhttp::string_body>& req, const HttpOptions& opts,
                                HttpResponse& out, bool& retryable);

  asio::any_io_executor ex_;
  asio::ssl::context* tls_ctx_;
  Origin origin_;
  std::optional<beast::tcp_stream> tcp_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls_;
  beast::flat_buffer buf_;
  int served_ = 0;
};

}  // namespace blocktrust::http
