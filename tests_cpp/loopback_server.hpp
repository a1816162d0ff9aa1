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

#include "loopback_listen.hpp"

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
    char tmp[4096];
    for (;;) {
      auto end = buf.find("\r\n\r\n");
      while (end == std::string::npos) {
        auto n = ::recv(c, tmp, sizeof tmp, 0);
        if (n <= 0) {
          ::close(c);
          return;
        }
        buf.append(tmp, static_cast<std::size_t>(n));
        end = buf.find("\r\n\r\n");
      }
      std::string head = buf.substr(0, end);
      buf.erase(0, end + 4);
      std::string req_body;
      if (auto cl = header(head, "content-length"); !cl.empty()) {
        auto n = static_cast<std::size_t>(std::stoul(cl));
        while (buf.size() < n) {
          auto got = ::recv(c, tmp, sizeof tmp, 0);
          if (got <= 0) {
            ::close(c);
            return;
          }
          buf.append(tmp, static_cast<std::size_t>(got));
        }
        req_body = buf.substr(0, n);
        buf.erase(0, n);
      }
      auto sp1 = head.find(' ');
      auto path = head.substr(sp1 + 1, head.find(' ', sp1 + 1) - sp1 - 1);
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
                              : R"({"digest":")" + header(head, "x-payload-digest") +
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
  static std::string header(const std::string& head, const std::string& name) {
    std::string lower = head;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    auto at = lower.find("\r\n" + name + ":");
    if (at == std::string::npos) return "";
    auto from = at + name.size() + 3;
    auto to = head.find("\r\n", from);
    auto v = head.substr(from, to == std::string::npos ? std::string::npos : to - from);
    while (!v.empty() && v.front() == ' ') v.erase(0, 1);
    return v;
  }

  std::atomic<int> count_{0};
  int fd_ = -1;
  unsigned short port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread accept_thread_;
  std::vector<std::thread> conns_;
};
