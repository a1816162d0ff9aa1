// Socket plumbing shared by the tests' small HTTP/1.1 servers on 127.0.0.1: a listening socket
// on a kernel-chosen port, a port for a server another process opens, and reading one request
// (Content-Length bodies, keep-alive).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <string>

/// Returns the listening socket and sets `port`; -1 when the kernel refuses.
inline int listen_loopback(int backlog, unsigned short& port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, backlog) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    return -1;
  }
  port = ntohs(a.sin_port);
  return fd;
}

/// A loopback port that was free a moment ago (bind to port 0, read it, close), for a server
/// another process opens; 0 when the kernel refuses.
inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  ::close(fd);
  return ok ? ntohs(a.sin_port) : 0;
}

/// The value of header `name` (lower case) in a request head, "" when absent.
inline std::string header_value(const std::string& head, const std::string& name) {
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

/// One request read off a connection.
struct LoopbackRequest {
  std::string head;    ///< request line and headers, without the blank line
  std::string target;  ///< the request target (path and query)
  std::string body;
};

/// Reads the next request on `c` into `req`; `buf` keeps bytes already read past it (keep-alive).
/// False when the peer closed first.
inline bool read_request(int c, std::string& buf, LoopbackRequest& req) {
  char tmp[65536];
  auto fill = [&] {
    auto n = ::recv(c, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf.append(tmp, static_cast<std::size_t>(n));
    return true;
  };
  auto end = buf.find("\r\n\r\n");
  while (end == std::string::npos) {
    if (!fill()) return false;
    end = buf.find("\r\n\r\n");
  }
  req.head = buf.substr(0, end);
  buf.erase(0, end + 4);
  const std::string cl = header_value(req.head, "content-length");
  const std::size_t want = cl.empty() ? 0 : std::stoul(cl);
  while (buf.size() < want) {
    if (!fill()) return false;
  }
  req.body = buf.substr(0, want);
  buf.erase(0, want);
  auto sp1 = req.head.find(' ');
  req.target = req.head.substr(sp1 + 1, req.head.find(' ', sp1 + 1) - sp1 - 1);
  return true;
}
