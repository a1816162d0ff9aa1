// A tiny blocking HTTP/1.1 server on 127.0.0.1 for the C++ tests: one thread per connection,
// keep-alive, and a few misbehaviours chosen by path. /count answers {"n": k} for its k-th hit
// (polling tests); /digest echoes the X-Payload-Digest header and the body length it received.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <string>
#include <thread>
#include <vector>

#include "loopback_io.hpp"

class LoopbackServer {
 public:
  LoopbackServer() {
    fd_ = listen_loopback(128, port_);
    accept_thread_ = std::thread([this] { accept_loop(); });
  }
  ~LoopbackServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    accept_thread_.join();
    for (auto& t : conns_) t.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int connections() const { return connections_.load(); }

 private:
  void accept_loop() {
    while (!stop_) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      ++connections_;
      conns_.emplace_back([this, c] { serve(c); });
    }
  }
  void serve(int c) {
    std::string buf;
    LoopbackRequest req;
    for (;;) {
      if (!read_request(c, buf, req)) {
        ::close(c);
        return;
      }
      const std::string& head = req.head;
      const std::string& req_body = req.body;
      const std::string& path = req.target;
      std::string out;
      if (path == "/garbage") {
        out = std::string("\x01\x02garbage\xff\r\n\r\n", 14);
        ::send(c, out.data(), out.size(), MSG_NOSIGNAL);
        ::close(c);
        return;
      }
      if (path == "/chunked") {
        out =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: "
            "chunked\r\n\r\n5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n";
      } else if (path == "/count" || path == "/digest") {
        std::string doc = path == "/count"
                              ? R"({"n":)" + std::to_string(++count_) + "}"
                              : R"({"digest":")" + header_value(head, "x-payload-digest") +
                                    R"(","len":)" + std::to_string(req_body.size()) + "}";
        out = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
              std::to_string(doc.size()) + "\r\n\r\n" + doc;
      } else {
        std::string body = R"({"token":"abc","path":")" + path + "\"}";
        out = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
              std::to_string(body.size()) + "\r\n\r\n" + body;
      }
      ::send(c, out.data(), out.size(), MSG_NOSIGNAL);
    }
  }

  // The value of header `name` (lower-case) in a request head, "" when absent.

  std::atomic<int> count_{0};
  int fd_ = -1;
  unsigned short port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread accept_thread_;
  std::vector<std::thread> conns_;
};
