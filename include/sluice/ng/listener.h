// The ng protocol's UDP listener: each datagram is "<cookie> <bencoded
// dictionary>", each reply "<cookie> <bencoded dictionary>" to the sender.
// A reply cache keyed by cookie (bounded in entries and age) answers a
// retransmitted request with the first reply, without doing the command
// again. A datagram without a cookie cannot be answered and is counted;
// anything else that is wrong gets an error reply.
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

#include "absl/status/statusor.h"
#include "sluice/ng/bencode.h"
#include "sluice/ng/handler.h"
#include "sluice/packet/address.h"

namespace sluice::ng {

struct ListenerOptions {
  packet::Endpoint listen;
  size_t cache_entries = 4096;
  uint64_t cache_ms = 30000;
  std::function<uint64_t()> now_ms;  // a monotonic clock; default steady_clock
};

struct ListenerCounters {
  uint64_t requests = 0;        // datagrams with a cookie, handled
  uint64_t retransmissions = 0; // answered from the cache
  uint64_t errors = 0;          // answered with result "error"
  uint64_t dropped = 0;         // no cookie: nothing to answer to
};

inline constexpr size_t kMaxCookieBytes = 64;
inline constexpr size_t kMaxDatagramBytes = 65535;

class Listener {
 public:
  static absl::StatusOr<std::unique_ptr<Listener>> Create(Handler& handler,
                                                          ListenerOptions options);
  ~Listener();

  // Handles the datagrams waiting, after waiting up to timeout_ms for the
  // first (0: no wait). Errors only for the socket itself failing.
  absl::Status Poll(int timeout_ms);

  // One datagram in, the reply out (empty: nothing to send). Poll uses it;
  // tests call it directly.
  String Process(std::string_view datagram);

  const ListenerCounters& counters() const { return counters_; }
  uint16_t port() const { return port_; }  // the bound port (for listen port 0)

 private:
  Listener(Handler& handler, ListenerOptions options, int fd, uint16_t port);
  void Expire(uint64_t now);

  struct Cached {
    String reply;
    uint64_t at_ms = 0;
  };
  Handler& handler_;
  ListenerOptions options_;
  int fd_ = -1;
  uint16_t port_ = 0;
  ListenerCounters counters_;
  std::unordered_map<std::string, Cached> cache_;
  std::deque<std::pair<std::string, uint64_t>> order_;  // cookie, when cached (oldest first)
};

}  // namespace sluice::ng

#endif  // SLUICE_NG_LISTENER_H_
