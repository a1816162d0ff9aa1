// The Redis client: hiredis formats commands and parses replies; sockets, TLS and the pool are
// ours, so timeouts, reconnects and TLS work the same on Debian's hiredis 0.14 (which has no TLS).
#include "blocktrust/redis.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "tls_trust.hpp"

namespace blocktrust::redis {

namespace {

// --- URLs

std::string percent_decode(std::string_view s, std::string_view what) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    int value = 0;
    if (i + 2 >= s.size() ||
        std::from_chars(s.data() + i + 1, s.data() + i + 3, value, 16).ptr != s.data() + i + 3) {
      throw ConfigError("Redis URL: bad percent escape in the " + std::string(what));
    }
    out += static_cast<char>(value);
    i += 2;
  }
  return out;
}

template <class T>
T parse_number(std::string_view text, std::string_view what, const std::string& redacted) {
  T value{};
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) {
    throw ConfigError("Redis URL " + redacted + ": " + std::string(what) + " '" +
                      std::string(text) + "' is not a number");
  }
  return value;
}

// "host[:port]" or "[v6]:port"; an empty host is 127.0.0.1.
std::pair<std::string, int> parse_host_port(std::string_view rest, int default_port,
                                            const std::string& redacted) {
  std::string host;
  std::string_view port_text;
  if (!rest.empty() && rest.front() == '[') {
    const std::size_t close = rest.find(']');
    if (close == std::string_view::npos) {
      throw ConfigError("Redis URL " + redacted + ": unclosed '[' in the host");
    }
    host = std::string(rest.substr(1, close - 1));
    if (close + 1 < rest.size() && rest[close + 1] == ':') port_text = rest.substr(close + 2);
  } else if (const std::size_t colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = std::string(rest.substr(0, colon));
    port_text = rest.substr(colon + 1);
  } else if (!rest.empty()) {
    host = std::string(rest);
  }
  if (host.empty()) host = "127.0.0.1";
  int port = default_port;
  if (!port_text.empty()) port = parse_number<int>(port_text, "port", redacted);
  if (port < 1 || port > 65535) {
    throw ConfigError("Redis URL " + redacted + ": port out of range");
  }
  return {host, port};
}

// Where the password sits in a URL: [begin, end) of the text after "user:" (or of a lone
// userinfo, which Redis before ACLs meant as the password). Empty range: none.
std::pair<std::size_t, std::size_t> password_span(std::string_view url) {
  const std::size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return {0, 0};
  const std::size_t start = scheme + 3;
  const std::size_t slash = url.find_first_of("/?", start);
  const std::string_view authority =
      url.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
  const std::size_t at = authority.rfind('@');
  if (at == std::string_view::npos) return {0, 0};
  const std::size_t colon = authority.substr(0, at).find(':');
  if (colon == std::string_view::npos) return {start, start + at};
  return {start + colon + 1, start + at};
}

// --- CRC16 (XMODEM), the cluster's key hash

std::uint16_t crc16(std::string_view s) noexcept {
  std::uint16_t crc = 0;
  for (const char ch : s) {
    crc = static_cast<std::uint16_t>(crc ^ (static_cast<std::uint8_t>(ch) << 8));
    for (int i = 0; i < 8; ++i) {
      crc = (crc & 0x8000) != 0 ? static_cast<std::uint16_t>((crc << 1) ^ 0x1021)
                                : static_cast<std::uint16_t>(crc << 1);
    }
  }
  return crc;
}

// --- one connection

// A failure on a connection; `closed` means the peer closed or reset it before answering (safe
// to resend on a fresh connection), as opposed to a timeout (the server may have run it).
struct IoFailure {
  std::string message;
  bool closed = false;
};

Reply to_reply(const redisReply* r) {
  Reply out;
  switch (r->type) {
    case REDIS_REPLY_INTEGER:
      out.type = Reply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_STRING:
      out.type = Reply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = Reply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = Reply::Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::kArray;
      out.elements.reserve(r->elements);
      for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(to_reply(r->element[i]));
      break;
    default:
      out.type = Reply::Type::kNil;
  }
  return out;
}

void append_bulk(std::string& out, std::string_view arg) {
  char len[24];
  const auto res = std::to_chars(len, len + sizeof len, arg.size());
  out += '$';
  out.append(len, res.ptr);
  out += "\r\n";
  out.append(arg);
  out += "\r\n";
}

void append_count(std::string& out, std::size_t n) {
  char len[24];
  const auto res = std::to_chars(len, len + sizeof len, n);
  out += '*';
  out.append(len, res.ptr);
  out += "\r\n";
}

void append_command_vector(std::string& out, const std::vector<std::string>& args) {
  append_count(out, args.size());
  for (const std::string& a : args) append_bulk(out, a);
}

class Conn final {
 public:
  Conn(const Config& c, const std::string& host, int port, SSL_CTX* ctx) : where_(host) {
    where_ += ":" + std::to_string(port);
    reader_ = redisReaderCreate();
    if (reader_ == nullptr) throw std::bad_alloc();
    try {
      connect_tcp(host, port, c.timeout);
      if (ctx != nullptr) start_tls(ctx, host, c.tls_verify);
    } catch (...) {
      free_all();  // no destructor runs for a constructor that throws
      throw;
    }
  }
  ~Conn() { free_all(); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  /// Sends the RESP encoding of `args` and reads one reply.
  Reply round_trip(const std::vector<std::string>& args) {
    std::string buf;
    append_command_vector(buf, args);
    send_raw(buf);
    return read_reply();
  }

  /// Writes `buf` whole.
  void send_raw(std::string_view buf) { write_all(buf.data(), buf.size()); }

  /// Ends both directions at once (a thread blocked in read_reply or send_raw returns with an
  /// error); the descriptor stays open until the destructor, so it cannot be reused meanwhile.
  void shutdown() noexcept {
    if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
  }

  Reply read_reply() {
    for (;;) {
      void* raw = nullptr;
      if (redisReaderGetReply(reader_, &raw) != REDIS_OK) {
        throw IoFailure{where_ + ": protocol error in the reply", false};
      }
      if (raw != nullptr) {
        std::unique_ptr<redisReply, void (*)(void*)> reply(static_cast<redisReply*>(raw),
                                                           freeReplyObject);
        return to_reply(reply.get());
      }
      char buf[16384];
      const std::size_t n = read_some(buf, sizeof buf);
      if (redisReaderFeed(reader_, buf, n) != REDIS_OK) {
        throw IoFailure{where_ + ": protocol error in the reply", false};
      }
    }
  }

  [[nodiscard]] const std::string& where() const noexcept { return where_; }

 private:
  void connect_tcp(const std::string& host, int port, Millis timeout) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const std::string service = std::to_string(port);
    if (const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
      throw IoFailure{where_ + ": cannot resolve host: " + gai_strerror(rc), false};
    }
    std::unique_ptr<addrinfo, void (*)(addrinfo*)> list(found, freeaddrinfo);
    std::string last = "no address";
    for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
      const int fd =
          ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
      if (fd < 0) {
        last = std::strerror(errno);
        continue;
      }
      if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
        last = std::strerror(errno);
        ::close(fd);
        continue;
      }
      pollfd p{fd, POLLOUT, 0};
      const int ready = ::poll(&p, 1, static_cast<int>(timeout.count()));
      int err = 0;
      socklen_t len = sizeof err;
      if (ready <= 0 || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        last = ready == 0 ? "connect timed out" : std::strerror(err != 0 ? err : errno);
        ::close(fd);
        continue;
      }
      // Blocking from here on, with the timeout on every read and write.
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      timeval tv{static_cast<time_t>(timeout.count() / 1000),
                 static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      fd_ = fd;
      return;
    }
    throw IoFailure{where_ + ": cannot connect: " + last, false};
  }

  void start_tls(SSL_CTX* ctx, const std::string& host, bool verify) {
    ssl_ = SSL_new(ctx);
    if (ssl_ == nullptr) throw IoFailure{where_ + ": TLS setup failed", false};
    SSL_set_fd(ssl_, fd_);
    in6_addr ip{};
    const bool is_ip = ::inet_pton(AF_INET, host.c_str(), &ip) == 1 ||
                       ::inet_pton(AF_INET6, host.c_str(), &ip) == 1;
    if (!is_ip) SSL_set_tlsext_host_name(ssl_, host.c_str());
    if (verify) {
      SSL_set_verify(ssl_, SSL_VERIFY_PEER, nullptr);
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
      if (is_ip) {
        X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
      } else {
        SSL_set1_host(ssl_, host.c_str());
      }
    }
    if (SSL_connect(ssl_) != 1) {
      const long result = SSL_get_verify_result(ssl_);
      std::string why =
          result != X509_V_OK ? X509_verify_cert_error_string(result) : "handshake failed";
      ERR_clear_error();
      throw IoFailure{where_ + ": TLS: " + why, false};
    }
  }

  void write_all(const char* data, std::size_t len) {
    while (len > 0) {
      long n = 0;
      if (ssl_ != nullptr) {
        n = SSL_write(ssl_, data, static_cast<int>(std::min<std::size_t>(len, 1 << 30)));
        if (n <= 0) {
          ERR_clear_error();
          throw IoFailure{where_ + ": TLS write failed", true};
        }
      } else {
        n = ::send(fd_, data, len, MSG_NOSIGNAL);
        if (n < 0) {
          if (errno == EINTR) continue;
          const bool timed_out = errno == EAGAIN || errno == EWOULDBLOCK;
          throw IoFailure{where_ + (timed_out ? ": write timed out" : ": write failed: ") +
                              (timed_out ? "" : std::strerror(errno)),
                          !timed_out};
        }
      }
      data += n;
      len -= static_cast<std::size_t>(n);
    }
  }

  std::size_t read_some(char* buf, std::size_t cap) {
    for (;;) {
      long n = 0;
      if (ssl_ != nullptr) {
        n = SSL_read(ssl_, buf, static_cast<int>(cap));
        if (n > 0) return static_cast<std::size_t>(n);
        const int err = SSL_get_error(ssl_, static_cast<int>(n));
        const bool timed_out = (err == SSL_ERROR_SYSCALL || err == SSL_ERROR_WANT_READ) &&
                               (errno == EAGAIN || errno == EWOULDBLOCK);
        ERR_clear_error();
        throw IoFailure{where_ + (timed_out ? ": read timed out" : ": connection closed"),
                        !timed_out};
      }
      n = ::recv(fd_, buf, cap, 0);
      if (n > 0) return static_cast<std::size_t>(n);
      if (n == 0) throw IoFailure{where_ + ": connection closed by the server", true};
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        throw IoFailure{where_ + ": read timed out", false};
      }
      throw IoFailure{where_ + ": read failed: " + std::strerror(errno), true};
    }
  }

  void free_all() noexcept {
    if (ssl_ != nullptr) SSL_free(ssl_);  // no close_notify: the socket may be dead
    if (fd_ >= 0) ::close(fd_);
    if (reader_ != nullptr) redisReaderFree(reader_);
    ssl_ = nullptr;
    fd_ = -1;
    reader_ = nullptr;
  }

  std::string where_;
  redisReader* reader_ = nullptr;
  int fd_ = -1;
  SSL* ssl_ = nullptr;
};

}  // namespace

namespace {

std::string node_addr(const std::string& host, int port) {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

}  // namespace

// --- the pool: a few connections per node, each shared by every caller and fully pipelined

// One caller's request: its commands in RESP (ASKING + command stay together); the reply of the
// last one is the caller's.
struct Pending {
  enum class State { kUnsent, kInflight, kDone };
  std::string_view bytes;
  int replies = 1;    // replies the request takes
  int left = 0;       // replies still to read
  Reply reply;        // the last reply
  std::string error;  // set when the request failed (the reply is then meaningless)
  State state = State::kUnsent;
  bool fresh = false;             // written on a connection opened for its batch
  bool resent = false;            // sent once more after a closed connection
  bool last_of_batch = false;     // the last request of one write
  std::uint64_t answered_at = 0;  // replies read on the connection when it was written
  std::condition_variable cv;     // with Mux::mu
};

// A connection shared by concurrent callers, as one pipeline: a caller appends its request to
// the unsent queue; whoever finds no writer writes everything queued in one write (and keeps
// writing what arrives meanwhile); whoever finds no reader reads replies in order, hands each to
// its request and wakes its caller, until its own has come, then hands the reading on. Writes do
// not wait for earlier replies, so the server always has the next batch and makes one read and
// one write per batch; the client makes one write per batch and one wake-up per request. Over
// TLS (one SSL object must not read and write at once) writing and reading take turns.
struct Mux {
  std::mutex mu;
  std::shared_ptr<Conn> conn;
  std::uint64_t answered = 0;  // replies read on conn
  std::deque<Pending*> unsent;
  std::deque<Pending*> inflight;  // written to conn, in order
  int batches = 0;                // writes not fully answered yet
  bool writing = false;
  bool reading = false;

  [[nodiscard]] std::size_t load() const noexcept { return unsent.size() + inflight.size(); }
  [[nodiscard]] bool idle() const noexcept { return !writing && !reading && load() == 0; }
};

struct Client::Impl {
  struct Node {
    std::string addr;
    std::vector<std::unique_ptr<Mux>> muxes;
  };

  explicit Impl(const Config& c) : config(c), duplex(!c.tls) {
    if (c.tls) {
      ctx = SSL_CTX_new(TLS_client_method());
      if (ctx == nullptr) throw Error("Redis: cannot create a TLS context");
      SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
      // The system store is found where the distribution keeps it (a wheel's bundled OpenSSL
      // only knows its build machine's paths); SSL_CERT_FILE / SSL_CERT_DIR still win.
      const bool ok = c.tls_ca_file.empty()
                          ? tls::trust_system_store(ctx)
                          : SSL_CTX_load_verify_locations(ctx, c.tls_ca_file.c_str(), nullptr) == 1;
      if (!ok) {
        SSL_CTX_free(ctx);
        ERR_clear_error();
        throw ConfigError(
            c.tls_ca_file.empty()
                ? "Redis: no system CA store found (set SSL_CERT_FILE or pass a CA file)"
                : "Redis: cannot load the CA certificates '" + c.tls_ca_file + "'");
      }
    }
  }
  ~Impl() {
    nodes.clear();
    if (ctx != nullptr) SSL_CTX_free(ctx);
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  Node& node(const std::string& addr) {
    std::lock_guard lock(mu);
    Node& n = nodes[addr];
    if (n.muxes.empty()) {
      n.addr = addr;
      for (std::size_t i = 0; i < config.pool_size; ++i) {
        n.muxes.push_back(std::make_unique<Mux>());
      }
    }
    return n;
  }

  // The first connection with fewer than kSpill requests queued or in flight, else the least
  // loaded: requests gather on few connections (bigger batches, fewer system calls on both
  // sides) and spread only when one is deep.
  static constexpr std::size_t kSpill = 16;
  // Writes in flight per connection: one, and the next written by the reader as soon as the
  // last reply of the previous one is read. More let batches shrink to one request each (a
  // system call per request on both sides, measured: 1.5-2x the CPU per decision on loopback).
  static constexpr int kMaxBatches = 1;
  static Mux& pick(Node& n) {
    Mux* best = nullptr;
    std::size_t best_load = 0;
    for (auto& m : n.muxes) {
      std::lock_guard lock(m->mu);
      const std::size_t load = m->load();
      if (load < kSpill) return *m;
      if (best == nullptr || load < best_load) {
        best = m.get();
        best_load = load;
      }
    }
    return *best;
  }

  std::shared_ptr<Conn> open_conn(const std::string& addr) {
    {
      std::lock_guard lock(mu);
      ++connects;
    }
    const std::size_t colon = addr.rfind(':');
    std::string host = addr.substr(0, colon);
    if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
    const int port = std::stoi(addr.substr(colon + 1));
    auto c = std::make_shared<Conn>(config, host, port, ctx);
    if (!config.password.empty()) {
      std::vector<std::string> auth{"AUTH"};
      if (!config.username.empty()) auth.push_back(config.username);
      auth.push_back(config.password);
      const Reply r = c->round_trip(auth);
      if (r.is_error()) throw RedisConnectionError("Redis " + addr + ": AUTH refused: " + r.str);
    }
    if (config.db != 0) {
      const Reply r = c->round_trip({"SELECT", std::to_string(config.db)});
      if (r.is_error()) throw RedisConnectionError("Redis " + addr + ": SELECT refused: " + r.str);
    }
    return c;
  }

  static void finish(Pending& p, std::string error) {
    p.state = Pending::State::kDone;
    p.error = std::move(error);
    p.cv.notify_one();
  }

  // Under m.mu: `conn` broke. Requests written to it fail, except those a restarted server
  // closed the connection on before answering anything after them (a connection from before,
  // found closed): they go back to the front of the queue, once.
  void fail_conn(Mux& m, const std::shared_ptr<Conn>& conn, const IoFailure& f) {
    if (m.conn != conn) return;  // the other side saw it first
    m.conn.reset();
    conn->shutdown();  // a reader or writer blocked on it returns
    {
      std::lock_guard lock(mu);
      ++broken;
    }
    std::deque<Pending*> again;
    for (Pending* p : m.inflight) {
      if (f.closed && !p->fresh && !p->resent && p->answered_at == m.answered) {
        p->resent = true;
        p->state = Pending::State::kUnsent;
        again.push_back(p);
      } else {
        finish(*p, "Redis " + f.message);
      }
    }
    m.inflight.clear();
    m.batches = 0;
    m.unsent.insert(m.unsent.begin(), again.begin(), again.end());
  }

  // Under m.mu: wakes whoever can take up a role left free.
  void hand_off(Mux& m) const {
    if (!m.reading && !m.inflight.empty() && (duplex || !m.writing)) {
      m.inflight.front()->cv.notify_one();
    }
    if (may_write(m)) m.unsent.front()->cv.notify_one();
  }

  [[nodiscard]] bool may_write(const Mux& m) const noexcept {
    return !m.writing && !m.unsent.empty() && m.batches < kMaxBatches && (duplex || !m.reading);
  }

  // The writer's turn: writes everything queued, in one write per pass.
  void write_queued(Mux& m, std::unique_lock<std::mutex>& lock, const std::string& addr) {
    m.writing = true;
    std::string buf;
    while (!m.unsent.empty() && m.batches < kMaxBatches) {
      std::shared_ptr<Conn> conn = m.conn;
      bool fresh = false;
      if (!conn) {
        lock.unlock();
        std::string error;
        try {
          conn = open_conn(addr);
        } catch (const IoFailure& f) {
          error = "Redis " + f.message;
        } catch (const std::exception& e) {  // AUTH / SELECT refused, or out of memory
          error = e.what();
        }
        lock.lock();
        if (!error.empty()) {
          for (Pending* p : m.unsent) finish(*p, error);
          m.unsent.clear();
          break;
        }
        m.conn = conn;
        m.answered = 0;
        fresh = true;
      }
      buf.clear();
      for (Pending* p : m.unsent) {
        buf += p->bytes;
        p->last_of_batch = false;
        p->state = Pending::State::kInflight;
        p->left = p->replies;
        p->fresh = fresh;
        p->answered_at = m.answered;
        m.inflight.push_back(p);
      }
      m.inflight.back()->last_of_batch = true;
      ++m.batches;
      writes.fetch_add(1, std::memory_order_relaxed);
      m.unsent.clear();
      lock.unlock();
      try {
        conn->send_raw(buf);
        lock.lock();
      } catch (const IoFailure& f) {
        lock.lock();
        fail_conn(m, conn, f);
      }
    }
    m.writing = false;
    hand_off(m);
  }

  // The reader's turn: replies in order until `mine` has its own. At the end of a batch it
  // writes what queued up meanwhile before handing the replies out, so the server is not idle.
  void read_replies(Mux& m, std::unique_lock<std::mutex>& lock, const Pending& mine,
                    const std::string& addr) {
    m.reading = true;
    const std::shared_ptr<Conn> conn = m.conn;
    while (mine.state == Pending::State::kInflight) {
      lock.unlock();
      Reply r;
      std::optional<IoFailure> failure;
      try {
        r = conn->read_reply();
      } catch (const IoFailure& f) {
        failure = f;
      }
      lock.lock();
      if (failure) {
        fail_conn(m, conn, *failure);
        break;
      }
      if (m.conn != conn || m.inflight.empty()) break;  // replaced meanwhile: not ours
      ++m.answered;
      Pending& p = *m.inflight.front();
      p.reply = std::move(r);
      if (--p.left == 0) {
        m.inflight.pop_front();
        if (p.last_of_batch) {
          --m.batches;
          // The reader may write (it is the only one on the connection while it does).
          if (!m.writing && !m.unsent.empty() && m.batches < kMaxBatches) {
            write_queued(m, lock, addr);
          }
        }
        finish(p, {});
      }
    }
    m.reading = false;
    hand_off(m);
  }

  Reply run(Node& node, std::string_view bytes, int replies) {
    const std::string& addr = node.addr;
    Mux& m = pick(node);
    requests.fetch_add(1, std::memory_order_relaxed);
    Pending mine;
    mine.bytes = bytes;
    mine.replies = replies;
    std::unique_lock lock(m.mu);
    m.unsent.push_back(&mine);
    for (;;) {
      if (mine.state == Pending::State::kDone) break;
      if (mine.state == Pending::State::kUnsent && may_write(m)) {
        write_queued(m, lock, addr);
      } else if (mine.state == Pending::State::kInflight && !m.reading && (duplex || !m.writing)) {
        read_replies(m, lock, mine, addr);
      } else {
        mine.cv.wait(lock);
      }
    }
    if (!mine.error.empty()) throw RedisConnectionError(mine.error);
    return std::move(mine.reply);
  }

  // The master to use: `first`, unless it is null or `failed` (a connection failure or READONLY
  // there), in which case the Sentinels are asked (at most every 200 ms while it keeps failing).
  Node* master(Node* failed) {
    std::lock_guard discovering(discover_mu);
    Node* current = first.load();
    if (current != nullptr && current != failed) return current;  // another thread moved on
    const auto now = std::chrono::steady_clock::now();
    if (now - last_discovery < std::chrono::milliseconds(200)) {
      if (current != nullptr) return current;
      // No master known and the Sentinels just failed: fail fast, not once per caller in turn.
      if (!last_error.empty()) throw RedisConnectionError(last_error);
    }
    last_discovery = now;
    try {
      Node* found = &node(ask_sentinels());
      last_error.clear();
      first.store(found);
      return found;
    } catch (const RedisConnectionError& e) {
      last_error = e.what();
      throw;
    }
  }

  // SENTINEL get-master-addr-by-name, to each Sentinel in turn until one names the master.
  std::string ask_sentinels() {
    {
      std::lock_guard lock(mu);
      ++discoveries;
    }
    std::string errors;
    const std::size_t count = config.sentinels.size();
    for (std::size_t i = 0; i < count; ++i) {
      const std::size_t k = (next_sentinel + i) % count;
      const auto& [host, port] = config.sentinels[k];
      const std::string where = node_addr(host, port);
      try {
        Conn c(config, host, port, ctx);
        if (!config.sentinel_password.empty()) {
          const Reply r = c.round_trip({"AUTH", config.sentinel_password});
          if (r.is_error()) {
            errors += "; " + where + ": AUTH refused: " + r.str;
            continue;
          }
        }
        const Reply r = c.round_trip({"SENTINEL", "get-master-addr-by-name", config.service});
        if (r.type == Reply::Type::kArray && r.elements.size() == 2 &&
            r.elements[0].type == Reply::Type::kString &&
            r.elements[1].type == Reply::Type::kString) {
          int master_port = 0;
          const std::string& text = r.elements[1].str;
          if (std::from_chars(text.data(), text.data() + text.size(), master_port).ec ==
                  std::errc() &&
              master_port > 0 && master_port <= 65535) {
            next_sentinel = k;
            return node_addr(r.elements[0].str, master_port);
          }
        }
        errors += "; " + where + (r.is_error() ? ": " + r.str : ": does not know it");
      } catch (const IoFailure& f) {
        errors += "; " + f.message;
      }
    }
    throw RedisConnectionError("Redis Sentinel: no Sentinel named the master '" + config.service +
                               "'" + errors);
  }

  void close_idle() {
    std::vector<Mux*> muxes;
    {
      std::lock_guard lock(mu);
      for (auto& [addr, n] : nodes) {
        for (auto& m : n.muxes) muxes.push_back(m.get());
      }
    }
    for (Mux* m : muxes) {
      std::lock_guard lock(m->mu);
      if (m->idle()) m->conn.reset();
    }
  }

  Config config;
  bool duplex;  // plain TCP: read and write at once; TLS: in turns

  SSL_CTX* ctx = nullptr;
  mutable std::mutex mu;              // guards nodes, slots and the counters
  std::map<std::string, Node> nodes;  // connections are created once per node, never removed
  // The URL's node, or the master the Sentinels named (null until asked): no lookup, no lock.
  std::atomic<Node*> first{nullptr};
  std::mutex discover_mu;  // one question to the Sentinels at a time
  std::chrono::steady_clock::time_point last_discovery{};
  std::size_t next_sentinel = 0;  // the one that answered last is asked first
  std::string last_error;         // of the last question, if no Sentinel answered
  std::uint64_t discoveries = 0;
  std::map<int, std::string> slots;  // cluster: slot -> "host:port", learnt from MOVED
  std::uint64_t connects = 0;
  std::uint64_t broken = 0;
  std::uint64_t redirects = 0;
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> writes{0};
};

Client::Client(Config config) : config_(std::move(config)) {
  if (config_.pool_size < 1) throw ConfigError("Redis: pool_size must be at least 1");
  if (config_.timeout.count() < 1) throw ConfigError("Redis: timeout must be positive");
  if (config_.port < 1 || config_.port > 65535) throw ConfigError("Redis: port out of range");
  if (config_.cluster && config_.db != 0) {
    throw ConfigError("Redis Cluster has only database 0");
  }
  if (!config_.sentinels.empty() && (config_.cluster || config_.service.empty())) {
    throw ConfigError("Redis Sentinel needs a master name and no cluster");
  }
  impl_ = std::make_unique<Impl>(config_);
  if (config_.sentinels.empty()) {
    impl_->first = &impl_->node(node_addr(config_.host, config_.port));
  }
}

Client::~Client() = default;

Reply Client::command(const std::vector<std::string>& args, std::string_view key) {
  if (args.empty()) throw ConfigError("Redis: an empty command");
  std::string resp;
  append_command_vector(resp, args);
  return command_resp(resp, key);
}

Reply Client::command_resp(std::string_view resp, std::string_view key) {
  const bool sentinel = !config_.sentinels.empty();
  Impl::Node* node = impl_->first.load(std::memory_order_acquire);
  if (node == nullptr) node = impl_->master(nullptr);  // Sentinel: asked once, up front
  int slot = -1;
  if (config_.cluster && !key.empty()) {
    slot = key_slot(key);
    std::string addr;
    {
      std::lock_guard lock(impl_->mu);
      if (auto it = impl_->slots.find(slot); it != impl_->slots.end()) addr = it->second;
    }
    if (!addr.empty()) node = &impl_->node(addr);
  }
  std::string asking;
  bool moved_master = false;
  for (int hop = 0;; ++hop) {
    Reply r;
    try {
      r = asking.empty() ? impl_->run(*node, resp, 1) : impl_->run(*node, asking, 2);
    } catch (const RedisConnectionError&) {
      if (sentinel) {
        try {
          (void)impl_->master(node);  // for the next command: this one may have run
          // NOLINTNEXTLINE(bugprone-empty-catch): no master now; the next command asks again
        } catch (const RedisConnectionError&) {
        }
      }
      throw;
    }
    asking.clear();
    if (sentinel && r.is_error() && !moved_master && r.str.find("READONLY") != std::string::npos) {
      // A demoted master refused the write without running it: the new one may take it.
      moved_master = true;
      Impl::Node* now = impl_->master(node);
      if (now == node) return r;
      node = now;
      continue;
    }
    if (!config_.cluster || !r.is_error() || hop >= 5) return r;
    // "MOVED <slot> <host>:<port>" (the slot lives there now) or "ASK ..." (this once).
    const bool moved = r.str.rfind("MOVED ", 0) == 0;
    if (!moved && r.str.rfind("ASK ", 0) != 0) return r;
    const std::string addr = r.str.substr(r.str.rfind(' ') + 1);
    {
      std::lock_guard lock(impl_->mu);
      ++impl_->redirects;
      if (moved && slot >= 0) impl_->slots[slot] = addr;
    }
    node = &impl_->node(addr);
    if (!moved) {
      asking = "*1\r\n$6\r\nASKING\r\n";
      asking += resp;
    }
  }
}

std::string Client::address() const {
  const Impl::Node* node = impl_->first.load(std::memory_order_acquire);
  return node != nullptr ? node->addr : std::string();
}

void Client::close_idle() {
  impl_->close_idle();
}

Stats Client::stats() const {
  std::vector<Mux*> muxes;
  Stats s;
  {
    std::lock_guard lock(impl_->mu);
    for (auto& [addr, n] : impl_->nodes) {
      for (const auto& m : n.muxes) muxes.push_back(m.get());
    }
    s.connects = impl_->connects;
    s.broken = impl_->broken;
    s.redirects = impl_->redirects;
    s.discoveries = impl_->discoveries;
  }
  s.requests = impl_->requests.load(std::memory_order_relaxed);
  s.writes = impl_->writes.load(std::memory_order_relaxed);
  for (Mux* m : muxes) {
    std::lock_guard lock(m->mu);
    if (m->conn) ++s.open;
    if (m->conn && m->idle()) ++s.idle;
  }
  return s;
}

void append_command(std::string& out, std::initializer_list<std::string_view> args) {
  append_count(out, args.size());
  for (const std::string_view a : args) append_bulk(out, a);
}

void append_arg(std::string& out, std::string_view arg) {
  append_bulk(out, arg);
}

int key_slot(std::string_view key) noexcept {
  // Only the part between the first '{' and the next '}' counts, if that part is not empty.
  if (const std::size_t open = key.find('{'); open != std::string_view::npos) {
    const std::size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return crc16(key) & 16383;
}

std::string redact_url(std::string_view url) {
  const auto [begin, end] = password_span(url);
  std::string out = begin == end
                        ? std::string(url)
                        : std::string(url.substr(0, begin)) + "***" + std::string(url.substr(end));
  // The Sentinels' password travels in the query.
  constexpr std::string_view kOption = "sentinel_password=";
  if (const std::size_t q = out.find('?'); q != std::string::npos) {
    for (std::size_t at = out.find(kOption, q); at != std::string::npos;
         at = out.find(kOption, at + 1)) {
      if (out[at - 1] != '?' && out[at - 1] != '&') continue;
      const std::size_t from = at + kOption.size();
      const std::size_t to = std::min(out.find('&', from), out.size());
      out.replace(from, to - from, "***");
    }
  }
  return out;
}

Config parse_url(std::string_view url) {
  const std::string redacted = redact_url(url);
  const std::size_t sep = url.find("://");
  if (sep == std::string_view::npos) {
    throw ConfigError("Redis URL " + redacted +
                      ": expected redis://, rediss://, redis+cluster:// or redis+sentinel://");
  }
  Config c;
  const std::string_view scheme = url.substr(0, sep);
  if (scheme == "redis" || scheme == "valkey") {
  } else if (scheme == "rediss" || scheme == "valkeys") {
    c.tls = true;
  } else if (scheme == "redis+cluster") {
    c.cluster = true;
  } else if (scheme == "rediss+cluster") {
    c.cluster = true;
    c.tls = true;
  } else if (scheme == "redis+sentinel" || scheme == "rediss+sentinel") {
    c.tls = scheme == "rediss+sentinel";
  } else {
    throw ConfigError("Redis URL " + redacted + ": unknown scheme '" + std::string(scheme) +
                      "' (redis, rediss, redis+cluster, rediss+cluster, redis+sentinel, " +
                      "rediss+sentinel)");
  }
  const bool sentinel = scheme.ends_with("+sentinel");
  std::string_view rest = url.substr(sep + 3);
  std::string_view query;
  if (const std::size_t q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  std::string_view path;
  if (const std::size_t slash = rest.find('/'); slash != std::string_view::npos) {
    path = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  if (const std::size_t at = rest.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    if (const std::size_t colon = userinfo.find(':'); colon != std::string_view::npos) {
      c.username = percent_decode(userinfo.substr(0, colon), "user name");
      c.password = percent_decode(userinfo.substr(colon + 1), "password");
    } else {
      c.password = percent_decode(userinfo, "password");
    }
  }
  if (sentinel) {
    // host:port[,host:port...] of the Sentinels; the path names the master, then the database.
    while (!rest.empty()) {
      const std::size_t comma = rest.find(',');
      const auto [host, port] = parse_host_port(rest.substr(0, comma), 26379, redacted);
      c.sentinels.emplace_back(host, port);
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
    if (c.sentinels.empty()) c.sentinels.emplace_back("127.0.0.1", 26379);
    const std::size_t slash = path.find('/');
    c.service = percent_decode(path.substr(0, slash), "master name");
    if (c.service.empty()) {
      throw ConfigError("Redis URL " + redacted +
                        ": name the master the Sentinels monitor (redis+sentinel://host:26379/"
                        "mymaster[/db])");
    }
    path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash + 1);
    c.host = c.sentinels.front().first;
    c.port = c.sentinels.front().second;
  } else {
    const auto [host, port] = parse_host_port(rest, 6379, redacted);
    c.host = host;
    c.port = port;
  }
  if (!path.empty()) c.db = parse_number<int>(path, "database", redacted);
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const std::size_t eq = item.find('=');
    const std::string_view name = item.substr(0, eq);
    const std::string value =
        eq == std::string_view::npos ? "" : percent_decode(item.substr(eq + 1), name);
    if (name == "timeout" || name == "socket_timeout") {
      const double seconds = parse_number<double>(value, name, redacted);
      if (!(seconds > 0 && seconds <= 3600)) {
        throw ConfigError("Redis URL " + redacted + ": timeout must be in (0, 3600] seconds");
      }
      c.timeout = Millis(std::max<long>(1, static_cast<long>(seconds * 1000)));
    } else if (name == "pool_size" || name == "max_connections") {
      c.pool_size = parse_number<std::size_t>(value, name, redacted);
    } else if (name == "ssl_cert_reqs") {
      if (value != "none" && value != "required") {
        throw ConfigError("Redis URL " + redacted + ": ssl_cert_reqs is 'required' or 'none'");
      }
      c.tls_verify = value == "required";
    } else if (name == "ssl_ca_certs") {
      c.tls_ca_file = value;
    } else if (name == "db") {
      c.db = parse_number<int>(value, name, redacted);
    } else if (name == "sentinel_password" && sentinel) {
      c.sentinel_password = value;
    } else if (!name.empty()) {
      throw ConfigError("Redis URL " + redacted + ": unknown option '" + std::string(name) +
                        "' (timeout, pool_size, db, ssl_cert_reqs, ssl_ca_certs" +
                        (sentinel ? ", sentinel_password)" : ")"));
    }
  }
  if (c.db < 0) throw ConfigError("Redis URL " + redacted + ": database must be >= 0");
  if (c.cluster && c.db != 0) {
    throw ConfigError("Redis URL " + redacted + ": Redis Cluster has only database 0");
  }
  if (c.pool_size < 1) throw ConfigError("Redis URL " + redacted + ": pool_size must be >= 1");
  return c;
}

}  // namespace blocktrust::redis
