// A small Redis / Valkey client for the shared stores: RESP encoding and parsing by hiredis, our
// own transport (TCP or TLS through OpenSSL: Debian's hiredis 0.14 has no TLS), a few connections
// per node that concurrent callers share (their commands pipelined), reconnects, AUTH, SELECT,
// and MOVED/ASK redirects for Redis Cluster.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "blocktrust/error.hpp"

namespace blocktrust::redis {

using Millis = std::chrono::milliseconds;

/// Redis answered with an error reply where a result was needed (e.g. LOADING, READONLY, OOM);
/// also the base of RedisConnectionError (as in Python: catching RedisError catches both).
class RedisError : public Error {
 public:
  using Error::Error;
};

/// The server could not be reached, or the connection broke or timed out (the store is down).
class RedisConnectionError : public RedisError {
 public:
  using RedisError::RedisError;
};

/// Where a client connects: what `redis://`, `rediss://`, `redis+cluster://` and
/// `redis+sentinel://` URLs hold.
struct Config {
  /// Host name or address of the first node.
  std::string host = "127.0.0.1";
  /// TCP port.
  int port = 6379;
  /// ACL user name (empty: the default user).
  std::string username;
  /// Password for AUTH (empty: no AUTH). Never printed.
  std::string password;
  /// Database number for SELECT (must be 0 with cluster).
  int db = 0;
  /// TLS (rediss://).
  bool tls = false;
  /// Verify the server certificate and host name (ssl_cert_reqs=none turns it off).
  bool tls_verify = true;
  /// CA bundle file (ssl_ca_certs=...; empty: the system's default paths).
  std::string tls_ca_file;
  /// Follow MOVED / ASK redirects to other nodes (redis+cluster://).
  bool cluster = false;
  /// Timeout for connecting, and for each read or write.
  Millis timeout{2'000};
  /// Connections per node; concurrent callers share them, their commands pipelined.
  std::size_t pool_size = 4;
  /// Sentinels (host, port) to ask for the master (redis+sentinel://); empty: no Sentinel.
  std::vector<std::pair<std::string, int>> sentinels;
  /// The name of the master the Sentinels monitor.
  std::string service;
  /// Password for the Sentinels (sentinel_password=...; empty: none). Never printed.
  std::string sentinel_password;
};

/// Parses `redis://[[user]:password@]host[:port][/db][?timeout=2&pool_size=16]`, `rediss://`
/// (TLS; `ssl_cert_reqs=none`, `ssl_ca_certs=path`), `redis+cluster://` and
/// `redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/<master name>[/db]`
/// (Sentinels on port 26379 by default; `sentinel_password=...`; `rediss+sentinel://` for TLS to
/// both); throws ConfigError naming the redacted URL.
[[nodiscard]] Config parse_url(std::string_view url);

/// The URL with its passwords (userinfo, sentinel_password) replaced by `***`, for messages.
[[nodiscard]] std::string redact_url(std::string_view url);

/// One reply, as RESP2 gives it.
struct Reply {
  /// What kind of reply it is.
  enum class Type { kNil, kInteger, kString, kStatus, kError, kArray };
  /// The kind.
  Type type = Type::kNil;
  /// The value of an integer reply.
  std::int64_t integer = 0;
  /// The text of a string, status or error reply.
  std::string str;
  /// The elements of an array reply.
  std::vector<Reply> elements;
  /// Whether it is an error reply (e.g. NOSCRIPT, WRONGTYPE).
  [[nodiscard]] bool is_error() const noexcept { return type == Type::kError; }
};

/// Counters of a Client.
struct Stats {
  /// Connections open now (idle or in use), over all nodes.
  std::size_t open = 0;
  /// Open connections no command is using now.
  std::size_t idle = 0;
  /// Connections opened since the start (reconnects included).
  std::uint64_t connects = 0;
  /// Commands that failed on a connection (each closes it).
  std::uint64_t broken = 0;
  /// MOVED / ASK redirects followed.
  std::uint64_t redirects = 0;
  /// Times the Sentinels were asked for the master.
  std::uint64_t discoveries = 0;
  /// Requests sent (a redirected one counts once per node it went to).
  std::uint64_t requests = 0;
  /// Writes that sent them: each holds every request queued on its connection meanwhile.
  std::uint64_t writes = 0;
};

/// A thread-safe Redis client with up to `pool_size` connections per node, each one pipeline
/// shared by every caller: commands that arrive together go out in one write without waiting for
/// earlier replies, and replies are handed back in order (one read and one write per batch on
/// both sides). Callers gather on the first connection until it holds 16 requests, then spread.
/// Requests a restarted server closed a connection from before on, without answering anything
/// after them, are sent once more on a fresh one; other failures throw RedisConnectionError. With
/// Sentinel, the master is asked for at the first command and again after a connection failure
/// on it or a READONLY reply (a demoted master); a READONLY command is then sent once more to the
/// new master (it was not run). Not for blocking commands (BLPOP, SUBSCRIBE): they would hold up
/// the commands queued behind them.
class Client final {
 public:
  /// Opens no connection yet; throws ConfigError for a bad config.
  explicit Client(Config config);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// Sends one command and returns its reply (error replies are returned, not thrown). `key`
  /// names the key the command touches, so a cluster client sends it to the node of its slot.
  [[nodiscard]] Reply command(const std::vector<std::string>& args, std::string_view key = {});
  /// The same for one command already in RESP (built with append_command / append_arg).
  [[nodiscard]] Reply command_resp(std::string_view resp, std::string_view key = {});
  /// Closes every idle connection (in-use ones close when returned).
  void close_idle();
  /// Pool counters.
  [[nodiscard]] Stats stats() const;
  /// host:port of the node commands without a key go to: the URL's, or with Sentinel the master
  /// last discovered (empty before the first command).
  [[nodiscard]] std::string address() const;
  /// The config (the password included: never print it).
  [[nodiscard]] const Config& config() const noexcept { return config_; }

 private:
  struct Impl;
  Config config_;
  std::unique_ptr<Impl> impl_;
};

/// Appends a RESP array of `args` (a whole command) to `out`.
void append_command(std::string& out, std::initializer_list<std::string_view> args);
/// Appends one bulk string to `out` (after a `*<n>` header written by the caller).
void append_arg(std::string& out, std::string_view arg);

/// The cluster hash slot of a key (CRC16 of its hash tag, or of the whole key, modulo 16384).
[[nodiscard]] int key_slot(std::string_view key) noexcept;

}  // namespace blocktrust::redis
