// Tiny blocking HTTP/1.1 servers on 127.0.0.1 for the C++ tests. LoopbackHttp is the shared core
// (accept loop, one thread per keep-alive connection); LoopbackServer answers a few fixed routes
// and misbehaves by path: /count answers {"n": k} for its k-th hit (polling tests), /digest
// echoes the X-Payload-Digest header and the body length it received, /chunked and /garbage.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "loopback_io.hpp"

/// Writes all of `out` to `fd`; false when the peer went away.
inline bool send_all(int fd, const std::string& out) {
  std::size_t sent = 0;
  while (sent < out.size()) {
    auto n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

/// Accepts connections until destroyed; every request goes to `respond`, which writes the answer
/// to the socket and returns false to close the connection. Declare it after whatever `respond`
/// uses, so that it stops (joining its threads) before those go.
class LoopbackHttp {
 public:
  using Respond = std::function<bool(int fd, const LoopbackRequest&)>;

  LoopbackHttp(int backlog, Respond respond) : respond_(std::move(respond)) {
    fd_ = listen_loopback(backlog, port_);
    accept_thread_ = std::thread([this] { accept_loop(); });
  }
  LoopbackHttp(const LoopbackHttp&) = delete;
  LoopbackHttp& operator=(const LoopbackHttp&) = delete;
  ~LoopbackHttp() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    accept_thread_.join();
    for (auto& t : conns_) t.join();
  }
  [[nodiscard]] unsigned short port() const { return port_; }
  [[nodiscard]] int connections() const { return connections_.load(); }

 private:
  void accept_loop() {
    for (;;) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      ++connections_;
      conns_.emplace_back([this, c] { serve(c); });
    }
  }
  void serve(int c) {
    std::string buf;
    LoopbackRequest req;
    while (read_request(c, buf, req) && respond_(c, req)) {
    }
    ::close(c);
  }

  Respond respond_;
  int fd_ = -1;
  unsigned short port_ = 0;
  std::atomic<int> connections_{0};
  std::thread accept_thread_;
  std::vector<std::thread> conns_;
};

class LoopbackServer {
 public:
  LoopbackServer() = default;
  [[nodiscard]] std::string url() const {
    return "http://127.0.0.1:" + std::to_string(http_.port());
  }
  [[nodiscard]] int connections() const { return http_.connections(); }

 private:
  bool respond(int c, const LoopbackRequest& req) {
    const std::string& path = req.target;
    if (path == "/garbage") {
      (void)send_all(c, std::string("\x01\x02garbage\xff\r\n\r\n", 14));
      return false;
    }
    std::string out;
    if (path == "/chunked") {
      out =
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: "
          "chunked\r\n\r\n5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n";
    } else {
      std::string doc;
      if (path == "/count") {
        doc = R"({"n":)" + std::to_string(++count_) + "}";
      } else if (path == "/digest") {
        doc = R"({"digest":")" + header_value(req.head, "x-payload-digest") + R"(","len":)" +
              std::to_string(req.body.size()) + "}";
      } else {
        doc = R"({"token":"abc","path":")" + path + "\"}";
      }
      out = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
            std::to_string(doc.size()) + "\r\n\r\n" + doc;
    }
    return send_all(c, out);
  }

  std::atomic<int> count_{0};
  LoopbackHttp http_{128, [this](int c, const LoopbackRequest& req) { return respond(c, req); }};
};
