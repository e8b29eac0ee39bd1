#include "sluice/ng/listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <grp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "sluice/memory/wiping_allocator.h"

namespace sluice::ng {
namespace {

uint64_t SteadyMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

socklen_t ToSockaddr(const packet::Endpoint& ep, sockaddr_storage* out) {
  std::memset(out, 0, sizeof(*out));
  if (ep.ip.is_v4()) {
    auto* sin = reinterpret_cast<sockaddr_in*>(out);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(ep.port);
    std::memcpy(&sin->sin_addr, ep.ip.bytes.data(), 4);
    return sizeof(sockaddr_in);
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(out);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(ep.port);
  std::memcpy(&sin6->sin6_addr, ep.ip.bytes.data(), 16);
  return sizeof(sockaddr_in6);
}

bool CookieChar(char c) { return c > ' ' && c < 0x7f; }

packet::Endpoint FromSockaddr(const sockaddr_storage& addr) {
  packet::Endpoint ep;
  if (addr.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&addr);
    ep.ip = packet::IpAddress::V4Bytes(reinterpret_cast<const uint8_t*>(&sin->sin_addr));
    ep.port = ntohs(sin->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    ep.ip = packet::IpAddress::V6Bytes(sin6->sin6_addr.s6_addr);
    ep.port = ntohs(sin6->sin6_port);
  }
  return ep;
}

absl::Status Errno(const std::string& what) {
  return absl::InternalError(absl::StrCat("ng: ", what, ": ", std::strerror(errno)));
}

// Writes all of `data` to a non-blocking stream, waiting up to 100 ms at a
// time for room; a peer that reads nothing loses its reply.
void WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    pollfd p{fd, POLLOUT, 0};
    if (n < 0 && errno == EAGAIN && poll(&p, 1, 100) == 1) continue;
    return;
  }
}

}  // namespace

std::vector<packet::Prefix> LoopbackSources() {
  return {*packet::Prefix::Parse("127.0.0.0/8"), *packet::Prefix::Parse("::1/128")};
}

absl::StatusOr<std::unique_ptr<Listener>> Listener::Create(Handler& handler,
                                                           ListenerOptions options) {
  if (!options.now_ms) options.now_ms = SteadyMs;
  if (options.cache_entries == 0) options.cache_entries = 1;
  if (options.listen.ip.unset()) return absl::InvalidArgumentError("ng: no listen address");
  sockaddr_storage addr;
  const socklen_t len = ToSockaddr(options.listen, &addr);
  const int fd = socket(addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("ng: socket: ", std::strerror(errno)));
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    const int err = errno;
    close(fd);
    return absl::InvalidArgumentError(absl::StrCat("ng: cannot bind UDP ",
                                                   options.listen.ToString(), ": ",
                                                   std::strerror(err)));
  }
  sockaddr_storage bound;
  socklen_t bound_len = sizeof(bound);
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_len);
  const uint16_t port = ntohs(bound.ss_family == AF_INET
                                  ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                  : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  std::unique_ptr<Listener> listener(new Listener(handler, std::move(options), fd, port));
  if (!listener->options_.socket_path.empty()) {
    if (absl::Status s = listener->OpenUnixSocket(); !s.ok()) return s;
  }
  return listener;
}

// Mode 0660 and the configured group, as the native control socket: who may
// open the file may drive calls.
absl::Status Listener::OpenUnixSocket() {
  const std::string& path = options_.socket_path;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("ng: socket path too long: ", path));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::InvalidArgumentError(absl::StrCat("ng: ", path, " exists and is no socket"));
    }
    unlink(path.c_str());  // left by an earlier run
  }
  unix_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (unix_fd_ < 0) return Errno("socket");
  const mode_t old_mask = umask(0177);
  const int bound = bind(unix_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  umask(old_mask);
  if (bound != 0) return Errno(absl::StrCat("bind ", path));
  if (!options_.socket_group.empty()) {
    const group* g = getgrnam(options_.socket_group.c_str());
    if (g == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("ng: no group ", options_.socket_group));
    }
    if (chown(path.c_str(), static_cast<uid_t>(-1), g->gr_gid) != 0) {
      return Errno(absl::StrCat("chown ", path));
    }
  }
  if (chmod(path.c_str(), 0660) != 0) return Errno(absl::StrCat("chmod ", path));
  if (listen(unix_fd_, static_cast<int>(kMaxStreamClients)) != 0) return Errno("listen");
  return absl::OkStatus();
}

Listener::Listener(Handler& handler, ListenerOptions options, int fd, uint16_t port)
    : handler_(handler), options_(std::move(options)), fd_(fd), port_(port) {}

Listener::~Listener() {
  if (fd_ >= 0) close(fd_);
  for (StreamClient& c : clients_) close(c.fd);
  if (unix_fd_ >= 0) {
    close(unix_fd_);
    unlink(options_.socket_path.c_str());
  }
}

bool Listener::Allowed(const packet::IpAddress& source) const {
  for (const packet::Prefix& p : options_.allowed_sources) {
    if (p.Contains(source)) return true;
  }
  return false;
}

void Listener::Expire(uint64_t now) {
  while (!order_.empty() && (order_.size() > options_.cache_entries ||
                             order_.front().second + options_.cache_ms <= now)) {
    auto it = cache_.find(order_.front().first);
    // An entry re-cached later has a newer time: only the matching one goes.
    if (it != cache_.end() && it->second.at_ms == order_.front().second) cache_.erase(it);
    order_.pop_front();
  }
}

// The reply to one request's bencoded body.
Value Listener::Handle(std::string_view body) {
  const auto start = std::chrono::steady_clock::now();
  ++counters_.requests;
  Value reply;
  absl::StatusOr<Value> request = Decode(body);
  if (!request.ok()) {
    reply = Value(Value::Dict{});
    reply.Set("result", "error");
    reply.Set("error-reason", std::string(request.status().message()).substr(0, 160));
  } else {
    reply = handler_.Handle(*request);
    // The listener's own counters go with the statistics: what it dropped
    // cannot be seen anywhere else.
    const Value* command = request->Find("command");
    if (command != nullptr && command->is_string() && command->str() == "statistics" &&
        reply.Find("statistics") != nullptr) {
      Value ng(Value::Dict{});
      ng.Set("requests", static_cast<int64_t>(counters_.requests));
      ng.Set("retransmissions", static_cast<int64_t>(counters_.retransmissions));
      ng.Set("errors", static_cast<int64_t>(counters_.errors));
      ng.Set("dropped", static_cast<int64_t>(counters_.dropped));
      ng.Set("refused", static_cast<int64_t>(counters_.refused));
      reply.Set("ng", std::move(ng));
    }
  }
  const Value* result = reply.Find("result");
  if (result != nullptr && result->is_string() && result->str() == "error") ++counters_.errors;
  counters_.latency.Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return reply;
}

String Listener::Process(std::string_view datagram, const packet::Endpoint& source) {
  if (!Allowed(source.ip)) {
    ++counters_.refused;
    return {};
  }
  const uint64_t now = options_.now_ms();
  Expire(now);
  const size_t space = datagram.find(' ');
  if (space == std::string_view::npos || space == 0 || space > kMaxCookieBytes) {
    ++counters_.dropped;
    return {};
  }
  const std::string_view cookie = datagram.substr(0, space);
  for (char c : cookie) {
    if (!CookieChar(c)) {
      ++counters_.dropped;
      return {};
    }
  }
  // A cookie answers only the source that sent it.
  const std::string key = absl::StrCat(source.ToString(), " ", absl::string_view(cookie.data(), cookie.size()));
  if (auto it = cache_.find(key); it != cache_.end()) {
    ++counters_.retransmissions;
    return it->second.reply;
  }
  String out(cookie.data(), cookie.size());
  out += ' ';
  out += Encode(Handle(datagram.substr(space + 1)));
  cache_[key] = Cached{out, now};
  order_.emplace_back(key, now);
  Expire(now);
  return out;
}

String Listener::ProcessStream(std::string_view request) {
  if (!request.empty() && request[0] == 'd') return Encode(Handle(request));
  const size_t space = request.find(' ');
  if (space == std::string_view::npos || space == 0 || space > kMaxCookieBytes) {
    ++counters_.dropped;
    return {};
  }
  String out(request.data(), space + 1);
  out += Encode(Handle(request.substr(space + 1)));
  return out;
}

absl::Status Listener::Poll(int timeout_ms) {
  handler_.Tick();
  std::vector<pollfd> fds;
  fds.push_back({fd_, POLLIN, 0});
  if (unix_fd_ >= 0) fds.push_back({unix_fd_, POLLIN, 0});
  for (const StreamClient& c : clients_) fds.push_back({c.fd, POLLIN, 0});
  const int ready = poll(fds.data(), fds.size(), timeout_ms);
  if (ready < 0) {
    if (errno == EINTR) return absl::OkStatus();
    return Errno("poll");
  }
  const uint64_t now = options_.now_ms();
  const size_t first_client = unix_fd_ >= 0 ? 2 : 1;
  // Connections first (their indices match fds), then the late ones go.
  std::vector<bool> done(clients_.size(), false);
  for (size_t i = 0; i < clients_.size(); ++i) {
    if (fds[first_client + i].revents != 0) done[i] = ServeStream(i);
    if (clients_[i].deadline_ms <= now) done[i] = true;
  }
  for (size_t i = clients_.size(); i-- > 0;) {
    if (!done[i]) continue;
    close(clients_[i].fd);
    clients_.erase(clients_.begin() + static_cast<std::ptrdiff_t>(i));
  }
  if (unix_fd_ >= 0 && (fds[1].revents & POLLIN) != 0) AcceptStreams(now);
  if ((fds[0].revents & POLLIN) != 0) return ReadUdp();
  return absl::OkStatus();
}

absl::Status Listener::ReadUdp() {
  static thread_local std::vector<char> buffer(kMaxDatagramBytes + 1);
  // A bounded number per call, so the native control socket is not starved.
  for (int i = 0; i < 64; ++i) {
    sockaddr_storage peer;
    socklen_t peer_len = sizeof(peer);
    const ssize_t n = recvfrom(fd_, buffer.data(), buffer.size(), 0,
                               reinterpret_cast<sockaddr*>(&peer), &peer_len);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
      if (errno == ECONNREFUSED) continue;  // an earlier reply's ICMP error
      return Errno("recvfrom");
    }
    String reply =
        Process(std::string_view(buffer.data(), static_cast<size_t>(n)), FromSockaddr(peer));
    memory::WipeMemory(buffer.data(), static_cast<size_t>(n));
    if (reply.empty()) continue;
    // A failed send (peer gone, buffer full) loses one reply; the SBC retransmits.
    sendto(fd_, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&peer), peer_len);
  }
  return absl::OkStatus();
}

void Listener::AcceptStreams(uint64_t now) {
  for (;;) {
    const int fd = accept4(unix_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    if (clients_.size() >= kMaxStreamClients) {
      close(fd);  // the proxy retries on another connection
      continue;
    }
    clients_.push_back(StreamClient{fd, String(), now + kStreamDeadlineMs});
  }
}

bool Listener::ServeStream(size_t i) {
  StreamClient& c = clients_[i];
  char chunk[4096];
  bool closed = false;
  for (;;) {
    const ssize_t n = recv(c.fd, chunk, sizeof(chunk), 0);
    if (n > 0) {
      c.in.append(chunk, static_cast<size_t>(n));
      memory::WipeMemory(chunk, static_cast<size_t>(n));
      if (c.in.size() > kMaxDatagramBytes) return true;  // too large: no reply
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    closed = n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
    break;
  }
  if (c.in.empty()) return closed;
  // The proxy sends one request and waits: a whole dictionary is the request.
  const std::string_view in(c.in.data(), c.in.size());
  size_t body = 0;
  if (in[0] != 'd') {
    const size_t space = in.find(' ');
    body = space == std::string_view::npos ? in.size() : space + 1;
  }
  const bool complete = body < in.size() && Decode(in.substr(body)).ok();
  if (!complete && !closed) return false;
  String reply = ProcessStream(in);
  if (!reply.empty()) WriteAll(c.fd, std::string_view(reply.data(), reply.size()));
  return true;
}

}  // namespace sluice::ng
