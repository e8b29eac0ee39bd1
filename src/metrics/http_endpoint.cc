#include "sluice/metrics/http_endpoint.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "sluice/metrics/exposition.h"

namespace sluice::metrics {
namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t kListenerTag = ~uint64_t{0};
constexpr int kMaxEvents = 32;

std::string StatusLine(int status) {
  switch (status) {
    case 200: return "200 OK";
    case 400: return "400 Bad Request";
    case 404: return "404 Not Found";
    case 405: return "405 Method Not Allowed";
  }
  return "500 Internal Server Error";
}

std::string Response(int status, std::string_view content_type, std::string_view body,
                     bool head_only, std::string_view extra_header = {}) {
  std::string out = "HTTP/1.1 " + StatusLine(status) + "\r\nContent-Type: ";
  out.append(content_type);
  out += "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n";
  out.append(extra_header);
  out += "\r\n";
  if (!head_only) out.append(body);
  return out;
}

// A sockaddr for an Endpoint (IPv4 or IPv6); its length.
socklen_t ToSockaddr(const packet::Endpoint& e, sockaddr_storage& ss) {
  std::memset(&ss, 0, sizeof(ss));
  if (e.ip.is_v4()) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(e.port);
    std::memcpy(&a->sin_addr, e.ip.bytes.data(), 4);
    return sizeof(sockaddr_in);
  }
  auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
  a->sin6_family = AF_INET6;
  a->sin6_port = htons(e.port);
  std::memcpy(&a->sin6_addr, e.ip.bytes.data(), 16);
  return sizeof(sockaddr_in6);
}

}  // namespace

struct HttpEndpoint::Connection {
  int fd = -1;
  Clock::time_point deadline;
  std::string in;
  std::string out;
  size_t sent = 0;
  bool replying = false;
};

struct HttpEndpoint::Connections {
  absl::flat_hash_map<int, Connection> by_fd;
};

HttpEndpoint::HttpEndpoint(HttpEndpointOptions options, Render render)
    : options_(std::move(options)),
      render_(std::move(render)),
      connections_(std::make_unique<Connections>()) {}

HttpEndpoint::~HttpEndpoint() {
  for (auto& [fd, c] : connections_->by_fd) close(fd);
  if (listen_fd_ >= 0) close(listen_fd_);
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

absl::StatusOr<std::unique_ptr<HttpEndpoint>> HttpEndpoint::Create(HttpEndpointOptions options,
                                                                   Render render) {
  std::unique_ptr<HttpEndpoint> e(new HttpEndpoint(std::move(options), std::move(render)));
  if (absl::Status s = e->Open(); !s.ok()) return s;
  return e;
}

absl::Status HttpEndpoint::Open() {
  const std::string where = absl::StrCat("metrics listener ", options_.listen.ToString());
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  listen_fd_ = socket(options_.listen.ip.is_v4() ? AF_INET : AF_INET6,
                      SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (epoll_fd_ < 0 || listen_fd_ < 0) {
    return absl::InternalError(absl::StrCat(where, ": ", std::strerror(errno)));
  }
  const int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_storage ss;
  const socklen_t len = ToSockaddr(options_.listen, ss);
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(listen_fd_, 64) != 0) {
    return absl::UnavailableError(absl::StrCat(where, ": cannot listen: ", std::strerror(errno)));
  }
  socklen_t got = sizeof(ss);
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&ss), &got);
  port_ = ntohs(ss.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                        : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenerTag;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev) != 0) {
    return absl::InternalError(absl::StrCat(where, ": epoll: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

size_t HttpEndpoint::connections() const { return connections_->by_fd.size(); }

absl::Status HttpEndpoint::Poll(int timeout_ms) {
  epoll_event events[kMaxEvents];
  const int n = epoll_wait(epoll_fd_, events, kMaxEvents, timeout_ms);
  if (n < 0 && errno != EINTR) {
    return absl::InternalError(absl::StrCat("metrics listener: epoll: ", std::strerror(errno)));
  }
  for (int i = 0; i < n; ++i) {
    if (events[i].data.u64 == kListenerTag) {
      Accept();
      continue;
    }
    const int fd = static_cast<int>(events[i].data.u64);
    auto it = connections_->by_fd.find(fd);
    if (it != connections_->by_fd.end()) HandleEvent(it->second, events[i].events);
  }
  ExpireConnections();
  return absl::OkStatus();
}

void HttpEndpoint::Accept() {
  for (int i = 0; i < 16; ++i) {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or out of descriptors: tried again on the next event
    if (connections_->by_fd.size() >= options_.max_connections) {
      ++counters_.refused;
      close(fd);
      continue;
    }
    epoll_event ev = {};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = static_cast<uint64_t>(fd);
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      close(fd);
      continue;
    }
    Connection& c = connections_->by_fd[fd];
    c.fd = fd;
    c.deadline = Clock::now() + std::chrono::milliseconds(options_.timeout_ms);
  }
}

void HttpEndpoint::HandleEvent(Connection& c, uint32_t events) {
  if (!c.replying) {
    if (!ReadHead(c)) {
      if (events & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)) Close(c.fd);
      return;
    }
    c.replying = true;
    epoll_event ev = {};
    ev.events = EPOLLOUT;
    ev.data.u64 = static_cast<uint64_t>(c.fd);
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
  }
  if (Flush(c)) Close(c.fd);
}

bool HttpEndpoint::ReadHead(Connection& c) {
  char buf[4096];
  for (;;) {
    const ssize_t n = recv(c.fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
    if (n <= 0) {
      // The peer closed (or failed) before a whole head: nothing to answer.
      if (!c.in.empty()) ++counters_.bad_requests;
      c.out.clear();
      return true;
    }
    c.in.append(buf, static_cast<size_t>(n));
    const size_t end = c.in.find("\r\n\r\n");
    if (end != std::string::npos && end + 4 <= options_.max_request_bytes) {
      c.out = Answer(std::string_view(c.in).substr(0, end)).bytes;
      return true;
    }
    if (c.in.size() > options_.max_request_bytes) {
      ++counters_.bad_requests;
      c.out = Response(400, "text/plain", "request head too large\n", false);
      return true;
    }
  }
}

HttpEndpoint::Reply HttpEndpoint::Answer(std::string_view head) {
  // RFC 9112 §3: request-line = method SP request-target SP HTTP-version.
  const std::string_view line = head.substr(0, head.find("\r\n"));
  const std::vector<absl::string_view> parts =
      absl::StrSplit(absl::string_view(line.data(), line.size()), ' ');
  if (parts.size() != 3 || !absl::StartsWith(parts[2], "HTTP/1.") || parts[1].empty() ||
      parts[1][0] != '/') {
    ++counters_.bad_requests;
    return {400, Response(400, "text/plain", "bad request\n", false)};
  }
  const absl::string_view path = parts[1].substr(0, parts[1].find('?'));
  const bool head_only = parts[0] == "HEAD";
  if (path != "/metrics") {
    ++counters_.not_found;
    return {404, Response(404, "text/plain", "not found: try /metrics\n", head_only)};
  }
  if (parts[0] != "GET" && !head_only) {
    ++counters_.bad_method;
    return {405, Response(405, "text/plain", "only GET and HEAD\n", false, "Allow: GET, HEAD\r\n")};
  }
  const Clock::time_point start = Clock::now();
  const std::string body = render_();
  counters_.last_render_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  ++counters_.scrapes;
  return {200, Response(200, kContentType, body, head_only)};
}

bool HttpEndpoint::Flush(Connection& c) {
  while (c.sent < c.out.size()) {
    const ssize_t n =
        send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c.sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
  }
  return true;
}

void HttpEndpoint::Close(int fd) {
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  close(fd);
  connections_->by_fd.erase(fd);
}

void HttpEndpoint::ExpireConnections() {
  if (connections_->by_fd.empty()) return;
  const Clock::time_point now = Clock::now();
  std::vector<int> expired;
  for (const auto& [fd, c] : connections_->by_fd) {
    if (now >= c.deadline) expired.push_back(fd);
  }
  for (int fd : expired) {
    ++counters_.timeouts;
    Close(fd);
  }
}

}  // namespace sluice::metrics
