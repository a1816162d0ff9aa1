// A small HTTP/1.1 client (keep-alive, chunked, HTTPS with peer verification, timeouts, size caps).
// Boost stays behind the pimpl: this header pulls in only the standard library.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "blocktrust/error.hpp"

namespace blocktrust::http {

/// Raised for a request that cannot be sent at all (malformed URL, unsupported scheme, bad CA
/// file).
class HttpConfigError : public ConfigError {
 public:
  using ConfigError::ConfigError;
};

/// The longest timeout a caller may set (7 days): every face of the library (HTTP, flows,
/// JSON-RPC) refuses a longer one as a mistake.
inline constexpr std::int64_t kMaxTimeoutMs = 7LL * 24 * 60 * 60 * 1000;

/// Settings shared by every request of a client; the defaults are safe, never insecure. These
/// defaults are the only ones: the Python face (blocktrust_native.http.HttpOptions) reads them.
struct HttpOptions {
  /// Time allowed to resolve, connect and finish the TLS handshake.
  std::int64_t connect_timeout_ms = 5000;
  /// Time allowed for one request: writing it and reading the whole response.
  std::int64_t request_timeout_ms = 30000;
  /// Largest accepted response body (bytes); a bigger one is a failure, never buffered.
  std::uint64_t max_response_bytes = 8u << 20;
  /// Largest accepted response header block (bytes).
  std::uint32_t max_header_bytes = 64u << 10;
  /// Verify the server certificate chain and host name (on unless explicitly turned off).
  bool verify_peer = true;
  /// A PEM file of CA certificates to trust instead of the system store ("" = system store).
  std::string ca_file;
  /// Follow 301/302/303/307/308 up to max_redirects times (off by default).
  bool follow_redirects = false;
  /// The most redirects followed for one request.
  int max_redirects = 5;
};

/// One header field.
using Header = std::pair<std::string, std::string>;

/// A request to send; `url` is absolute (http:// or https://).
struct HttpRequest {
  /// The method, e.g. "GET".
  std::string method = "GET";
  /// The absolute URL.
  std::string url;
  /// Header fields to send (Host, Content-Length and User-Agent are added when absent).
  std::vector<Header> headers;
  /// The request body (may be empty).
  std::string body;
};

/// The outcome of a request: either a response (status > 0) or a failure with its reason.
struct HttpResponse {
  /// The HTTP status code, 0 when no complete response was received.
  int status = 0;
  /// Response header fields in the order received.
  std::vector<Header> headers;
  /// The response body (de-chunked).
  std::string body;
  /// Why the request failed ("" when a complete response arrived).
  std::string error;
  /// Time from starting the request (including any connect) to the end of the response.
  std::int64_t latency_ns = 0;
  /// True when the request went over a connection that had already served a request.
  bool reused_connection = false;
  /// How many times the request was resent (an idempotent request whose reused connection
  /// closed before any byte of the response); 0 or 1.
  int retries = 0;
  /// True when a complete response was received.
  [[nodiscard]] bool ok() const noexcept { return error.empty(); }
  /// The first header named `name` (case-insensitive) or nullptr.
  [[nodiscard]] const std::string* header(std::string_view name) const noexcept;
};

/// A blocking client that keeps one connection per origin alive. Not thread-safe: one per thread.
class HttpClient final {
 public:
  /// Builds a client; HttpConfigError when the CA file cannot be loaded.
  explicit HttpClient(HttpOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;
  HttpClient(HttpClient&&) noexcept;
  HttpClient& operator=(HttpClient&&) noexcept;

  /// Sends one request and waits for its response; every network failure is reported in the
  /// response's `error`, never thrown. HttpConfigError for a URL that cannot be requested.
  [[nodiscard]] HttpResponse request(const HttpRequest& request);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace blocktrust::http
