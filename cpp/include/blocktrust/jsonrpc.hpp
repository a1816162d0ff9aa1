// A JSON-RPC 2.0 client over the blocking HttpClient: single calls, batches, typed errors.
// Params go in and results come out as JSON text, so callers parse them with what they already
// use (nlohmann::json in C++, json.loads in Python) and a large eth_getLogs answer is never
// copied into a tree here. Provider URLs carry API keys: errors and url() never show the URL's
// user info, path or query.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "blocktrust/error.hpp"
#include "blocktrust/http.hpp"

namespace blocktrust::jsonrpc {

/// Root of the JSON-RPC client's errors (Python: blocktrust_native.errors.ChainError).
class ChainError : public Error {
 public:
  using Error::Error;
};

/// Raised when no JSON-RPC answer arrived: the node cannot be reached, timed out, answered an
/// HTTP error without a JSON-RPC body, or answered something that is not JSON-RPC.
class ChainConnectionError : public ChainError {
 public:
  ChainConnectionError(const std::string& what, int http_status)
      : ChainError(what), status_(http_status) {}
  /// The HTTP status of the answer, 0 when none arrived.
  [[nodiscard]] int http_status() const noexcept { return status_; }

 private:
  int status_;
};

/// Raised when the node answered with a JSON-RPC error object; keeps the node's code and message.
class JsonRpcError : public ChainError {
 public:
  JsonRpcError(const std::string& what, std::int64_t code, std::string message, std::string data)
      : ChainError(what), code_(code), message_(std::move(message)), data_(std::move(data)) {}
  /// The error code (e.g. -32601 method not found, -32005 limit exceeded).
  [[nodiscard]] std::int64_t code() const noexcept { return code_; }
  /// The node's message, as sent.
  [[nodiscard]] const std::string& message() const noexcept { return message_; }
  /// The error's `data` member as JSON text ("" when absent).
  [[nodiscard]] const std::string& data() const noexcept { return data_; }

 private:
  std::int64_t code_;
  std::string message_;
  std::string data_;
};

/// Settings of a client. The response cap is larger than HttpOptions' default: a wide
/// eth_getLogs range easily answers tens of megabytes.
struct ClientOptions {
  /// Transport settings (timeouts, TLS, size caps).
  http::HttpOptions http = [] {
    http::HttpOptions o;
    o.max_response_bytes = 256u << 20;
    return o;
  }();
  /// Extra header fields sent with every request (e.g. an API key header).
  std::vector<http::Header> headers;
};

/// One call of a batch.
struct Call {
  /// The method name, e.g. "eth_getBlockByNumber".
  std::string method;
  /// The params as JSON text: an array or an object.
  std::string params_json = "[]";
};

/// The answer to one call of a batch: a result or the node's error object.
struct Outcome {
  /// True when the node answered a result.
  bool ok = false;
  /// The result as JSON text (when ok).
  std::string result;
  /// The error code (when not ok).
  std::int64_t code = 0;
  /// The node's error message (when not ok).
  std::string message;
  /// The error's `data` as JSON text, "" when absent (when not ok).
  std::string data;
};

/// A JSON-RPC 2.0 client for one endpoint, keeping its connection alive. Not thread-safe: use one
/// per thread.
class Client final {
 public:
  /// Builds a client for an http:// or https:// `url`; user info in the URL becomes HTTP basic
  /// authentication. ConfigError (naming the URL without its secrets) when the URL is unusable.
  explicit Client(const std::string& url, ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;

  /// Calls `method` with `params_json` (a JSON array or object) and returns the result as JSON
  /// text. JsonRpcError for an error answer, ChainConnectionError when no usable answer arrived,
  /// ConfigError for params that are not a JSON array or object.
  [[nodiscard]] std::string call(std::string_view method, std::string_view params_json = "[]");

  /// Sends `calls` as one batch and returns their outcomes in the same order (the node may answer
  /// them in any order). A call's error object is its Outcome; the whole batch throws JsonRpcError
  /// when the node refuses it with a single error object, ChainConnectionError as for call().
  [[nodiscard]] std::vector<Outcome> batch(const std::vector<Call>& calls);

  /// The endpoint with its secrets hidden (scheme, host and port; "/…" when a path, query or
  /// user info was hidden).
  [[nodiscard]] const std::string& url() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// `url` reduced to scheme, host and port, with "/…" when user info, a path or a query was
/// dropped (providers put API keys there). Never throws.
[[nodiscard]] std::string redact_url(std::string_view url);

}  // namespace blocktrust::jsonrpc
