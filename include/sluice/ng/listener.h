// The ng protocol's listeners. UDP: each datagram is "<cookie> <bencoded
// dictionary>", each reply "<cookie> <bencoded dictionary>" to the sender.
// Only sources in allowed_sources are served; a datagram from any other is
// dropped unanswered and counted (no reply: Sluice is no reflector for
// spoofed sources). A reply cache keyed by (source address and port,
// cookie), bounded in entries and age, answers a retransmitted request with
// the first reply, without doing the command again. A datagram without a
// cookie cannot be answered and is counted; anything else that is wrong gets
// a short error reply.
//
// Unix stream socket (optional): what Kamailio's rtpengine module (5.x,
// rtpengine_sock "unix:/path") speaks: one request per connection, the
// bencoded dictionary without a cookie, the reply likewise, then close. A
// "<cookie> <dictionary>" request is answered with the cookie. Access is the
// socket file's: mode 0660, owned by socket_group.
//
// Control thread only: sluiced polls it from its control loop.
#ifndef SLUICE_NG_LISTENER_H_
#define SLUICE_NG_LISTENER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "sluice/ng/bencode.h"
#include "sluice/ng/handler.h"
#include "sluice/metrics/histogram.h"
#include "sluice/packet/address.h"

namespace sluice::ng {

// 127.0.0.0/8 and ::1.
std::vector<packet::Prefix> LoopbackSources();

struct ListenerOptions {
  packet::Endpoint listen;
  std::vector<packet::Prefix> allowed_sources = LoopbackSources();  // UDP senders served
  std::string socket_path;   // Unix stream socket; empty: none
  std::string socket_group;  // its group (empty: the process's)
  size_t cache_entries = 4096;
  uint64_t cache_ms = 30000;
  std::function<uint64_t()> now_ms;  // a monotonic clock; default steady_clock
};

struct ListenerCounters {
  uint64_t requests = 0;        // datagrams with a cookie, handled
  uint64_t retransmissions = 0; // answered from the cache
  uint64_t errors = 0;          // answered with result "error"
  uint64_t dropped = 0;         // no cookie: nothing to answer to
  uint64_t refused = 0;         // from a source not in allowed_sources: unanswered
  metrics::Histogram latency;   // seconds to handle a request (retransmissions not included)
};

inline constexpr size_t kMaxCookieBytes = 64;
inline constexpr size_t kMaxDatagramBytes = 65535;
inline constexpr size_t kMaxStreamClients = 16;       // Unix connections at once
inline constexpr uint64_t kStreamDeadlineMs = 2000;   // to send a whole request

class Listener {
 public:
  static absl::StatusOr<std::unique_ptr<Listener>> Create(Handler& handler,
                                                          ListenerOptions options);
  ~Listener();

  // Runs the handler's timers (Handler::Tick: offer timeout, delete-delay),
  // then handles the datagrams waiting, after waiting up to timeout_ms for
  // the first (0: no wait). Errors only for the socket itself failing.
  absl::Status Poll(int timeout_ms);

  // One datagram from `source` in, the reply out (empty: nothing to send).
  // Poll uses it; tests call it directly.
  String Process(std::string_view datagram, const packet::Endpoint& source);
  // One Unix stream request in, its reply out.
  String ProcessStream(std::string_view request);
  bool Allowed(const packet::IpAddress& source) const;

  const ListenerCounters& counters() const { return counters_; }
  uint16_t port() const { return port_; }  // the bound port (for listen port 0)

 private:
  Listener(Handler& handler, ListenerOptions options, int fd, uint16_t port);
  absl::Status OpenUnixSocket();
  void Expire(uint64_t now);
  Value Handle(std::string_view body);
  absl::Status ReadUdp();
  void AcceptStreams(uint64_t now);
  // Reads what a connection has sent; true when it is done with (answered,
  // or closed by the peer).
  bool ServeStream(size_t i);

  struct StreamClient {
    int fd = -1;
    String in;
    uint64_t deadline_ms = 0;
  };
  struct Cached {
    String reply;
    uint64_t at_ms = 0;
  };
  Handler& handler_;
  ListenerOptions options_;
  int fd_ = -1;
  int unix_fd_ = -1;
  uint16_t port_ = 0;
  std::vector<StreamClient> clients_;
  ListenerCounters counters_;
  // By "<source address and port> <cookie>".
  std::unordered_map<std::string, Cached> cache_;
  std::deque<std::pair<std::string, uint64_t>> order_;  // key, when cached (oldest first)
};

}  // namespace sluice::ng

#endif  // SLUICE_NG_LISTENER_H_
