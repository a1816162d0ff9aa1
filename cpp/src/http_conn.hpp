// Private: one keep-alive HTTP/1.1 connection driven by C++20 coroutines on an Asio executor.
// Used by HttpClient (blocking face) and by the flow runner (thousands of them per thread).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "blocktrust/http.hpp"

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

/// Builds the TLS context for `options` (verification on unless turned off, custom CA file).
asio::ssl::context make_tls_context(const HttpOptions& options);

/// Lower-case copy of an ASCII string.
std::string lower(std::string_view s);

/// One connection to one origin; reconnects on demand. Single-threaded (one executor).
class Conn {
 public:
  Conn(asio::any_io_executor ex, asio::ssl::context* tls_ctx, Origin origin);
  /// The origin this connection serves.
  [[nodiscard]] const Origin& origin() const noexcept { return origin_; }
  /// Sends `req` and reads the response into `out`; failures land in out.error.
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
