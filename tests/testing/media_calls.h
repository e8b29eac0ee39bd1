// Calls already relaying media while something else happens to sluiced (a
// load of handshakes, a flood): `calls` sessions, each an SDES-SRTP leg a
// to which a phone sends libsrtp2-protected RTP at `pps`, bridged to a plain
// leg b whose phone (one socket for every call) counts what arrives. Every
// packet carries its call's packet index, so loss is exact: the packets
// sent between Mark() and Stop() that never arrived.
//
// Test or benchmark thread; a sender and a receiver thread of its own run
// between Start and Stop.
#ifndef SLUICE_TESTS_TESTING_MEDIA_CALLS_H_
#define SLUICE_TESTS_TESTING_MEDIA_CALLS_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "libsrtp_peer.h"
#include "netns.h"
#include "sluice/control/client.h"

namespace sluice::testing {

struct MediaCallsOptions {
  size_t calls = 50;
  uint32_t pps = 50;  // per call: G.711 in 20 ms packets
  std::string session_prefix = "media-call-";
  std::string interface_a = "a", interface_b = "b";
  std::string ns_a, ip_a;  // phone A's namespace (Topology short name) and address
  uint16_t first_port_a = 44000;  // call i's phone A binds first_port_a + i
  std::string ns_b, ip_b;  // the receiving phone's
  uint16_t port_b = 40010;
};

struct MediaCallsResult {
  double seconds = 0;         // Mark to Stop
  uint64_t sent = 0;          // packets that left phone A after Mark
  uint64_t received = 0;      // of them, arrived at phone B
  uint64_t lost = 0;          // sent - received
  uint64_t send_errors = 0;   // sendto refused: never left (not a relay loss)
  size_t calls_with_loss = 0;
  // Where loss happened, from sluiced's counters over the same time (given
  // a control connection; a few packets in flight at Mark may blur them):
  // what reached leg a (rx_packets) and what left leg b (tx_packets).
  std::optional<uint64_t> sluiced_received, sluiced_relayed;
};

class MediaCalls {
 public:
  // Creates the sessions and binds the sockets; nothing is sent yet.
  static absl::StatusOr<std::unique_ptr<MediaCalls>> Create(control::Client& control,
                                                            Topology& topo,
                                                            const MediaCallsOptions& options);
  ~MediaCalls();  // stops the threads
  MediaCalls(const MediaCalls&) = delete;
  MediaCalls& operator=(const MediaCalls&) = delete;

  // Starts sending and receiving, and waits up to timeout_ms for every call
  // to deliver a packet (sluiced resolving phone B's address first).
  absl::Status Start(int timeout_ms = 5000);
  // From now on, every packet sent must arrive. With `control`, sluiced's
  // counters of the calls are read too, here and at Stop.
  void Mark(control::Client* control = nullptr);
  // Stops sending, waits drain_ms for what is in flight, stops receiving.
  MediaCallsResult Stop(int drain_ms = 500, control::Client* control = nullptr);
  // session.delete for every call.
  absl::Status Delete(control::Client& control);

  size_t calls() const { return calls_.size(); }
  const std::vector<std::string>& sessions() const { return sessions_; }

 private:
  struct Call {
    std::string session;
    int fd = -1;
    std::unique_ptr<LibsrtpPeer> srtp;
    std::atomic<uint32_t> next{0};    // index of the next packet to send
    std::atomic<uint32_t> mark{0};    // the first index Mark() counts
    std::atomic<uint64_t> send_errors{0};
    std::vector<uint8_t> seen;        // receiver thread: index -> arrived
    std::atomic<uint32_t> arrived{0};
  };
  explicit MediaCalls(const MediaCallsOptions& options) : options_(options) {}
  absl::Status CreateCall(control::Client& control, Topology& topo, size_t i);
  // Leg a's rx_packets and leg b's tx_packets, summed over the calls.
  std::optional<std::pair<uint64_t, uint64_t>> Counters(control::Client& control) const;
  void SendLoop();
  void ReceiveLoop();

  MediaCallsOptions options_;
  std::vector<std::unique_ptr<Call>> calls_;
  std::vector<std::string> sessions_;
  int receiver_fd_ = -1;
  std::atomic<bool> sending_{false}, receiving_{false};
  std::thread sender_, receiver_;
  std::chrono::steady_clock::time_point mark_time_;
  std::optional<std::pair<uint64_t, uint64_t>> mark_counters_;
};

}  // namespace sluice::testing

#endif  // SLUICE_TESTS_TESTING_MEDIA_CALLS_H_
