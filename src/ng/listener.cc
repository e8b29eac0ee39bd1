#include "sluice/ng/listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
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

}  // namespace

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
  return std::unique_ptr<Listener>(new Listener(handler, std::move(options), fd, port));
}

Listener::Listener(Handler& handler, ListenerOptions options, int fd, uint16_t port)
    : handler_(handler), options_(std::move(options)), fd_(fd), port_(port) {}

Listener::~Listener() {
  if (fd_ >= 0) close(fd_);
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

String Listener::Process(std::string_view datagram) {
  const uint64_t now = options_.now_ms();
  Expire(now);
  const size_t space = datagram.find(' ');
  if (space == std::string_view::npos || space == 0 || space > kMaxCookieBytes) {
    ++counters_.dropped;
    return {};
  }
  const std::string cookie(datagram.substr(0, space));
  for (char c : cookie) {
    if (!CookieChar(c)) {
      ++counters_.dropped;
      return {};
    }
  }
  if (auto it = cache_.find(cookie); it != cache_.end()) {
    ++counters_.retransmissions;
    return it->second.reply;
  }
  ++counters_.requests;
  Value reply;
  absl::StatusOr<Value> request = Decode(datagram.substr(space + 1));
  if (!request.ok()) {
    reply = Value(Value::Dict{});
    reply.Set("result", "error");
    reply.Set("error-reason", std::string(request.status().message()));
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
      reply.Set("ng", std::move(ng));
    }
  }
  const Value* result = reply.Find("result");
  if (result != nullptr && result->is_string() && result->str() == "error") ++counters_.errors;
  String out(cookie.data(), cookie.size());
  out += ' ';
  out += Encode(reply);
  cache_[cookie] = Cached{out, now};
  order_.emplace_back(cookie, now);
  Expire(now);
  return out;
}

absl::Status Listener::Poll(int timeout_ms) {
  pollfd p{fd_, POLLIN, 0};
  const int ready = poll(&p, 1, timeout_ms);
  if (ready < 0) {
    if (errno == EINTR) return absl::OkStatus();
    return absl::InternalError(absl::StrCat("ng: poll: ", std::strerror(errno)));
  }
  if (ready == 0) return absl::OkStatus();
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
      return absl::InternalError(absl::StrCat("ng: recvfrom: ", std::strerror(errno)));
    }
    String reply = Process(std::string_view(buffer.data(), static_cast<size_t>(n)));
    memory::WipeMemory(buffer.data(), static_cast<size_t>(n));
    if (reply.empty()) continue;
    // A failed send (peer gone, buffer full) loses one reply; the SBC retransmits.
    sendto(fd_, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&peer), peer_len);
  }
  return absl::OkStatus();
}

}  // namespace sluice::ng
