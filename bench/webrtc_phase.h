// The WebRTC phase of `sluice-bench control`: N WebRTC calls set up at once
// against the sluiced it started (tests/testing/webrtc_load.h: a browser
// per call in phone A's namespace, ICE check and DTLS-SRTP handshake),
// while M calls that were already running relay SRTP media
// (tests/testing/media_calls.h); handshakes per second, time to keyed per
// call, the handshake thread's CPU, the media lost, and the in-process
// DTLS figure of one core (bench/dtls/handshake_loop.h) as the ceiling.
//
// Benchmark code, the command's thread.
#ifndef SLUICE_BENCH_WEBRTC_PHASE_H_
#define SLUICE_BENCH_WEBRTC_PHASE_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "media_calls.h"
#include "netns.h"
#include "nlohmann/json.hpp"
#include "sluice/control/client.h"
#include "webrtc_load.h"

namespace sluice::bench {

struct WebRtcPhaseOptions {
  size_t calls = 1000;
  size_t media_calls = 100;
  uint32_t media_pps = 50;  // per media call
  std::string socket_path;
  pid_t sluiced = -1;
  // Addresses in the command's namespaces: browsers and media phones on
  // side a, the media calls' receiver on side b.
  std::string ns_a, ip_a, ns_b, ip_b;
};

// One DTLS-SRTP handshake side's rate on one core, in process.
struct HandshakeCeiling {
  size_t handshakes = 0;
  double server_side_per_second = 0;  // Sluice's side as DTLS server alone
  double client_side_per_second = 0;  // as DTLS client alone
  double both_sides_per_second = 0;   // one core doing both
};

// What sluiced's stats moved by over the phase.
struct WebRtcStatsDelta {
  uint64_t handshake_full = 0;     // STUN/DTLS a worker dropped: the handshake ring was full
  uint64_t handshake_packets = 0;  // handed to the handshake thread
  uint64_t rx_missed = 0;          // frames the ports lost before any worker saw them
  uint64_t dtls_keyed = 0, dtls_failed = 0;
};

struct WebRtcPhaseResult {
  testing::WebRtcLoadResult load;
  testing::MediaCallsResult media;
  size_t media_calls = 0;
  uint32_t media_pps = 0;
  WebRtcStatsDelta stats;
  HandshakeCeiling ceiling;
  std::vector<std::string> errors;  // what makes the phase fail
  bool ok() const { return errors.empty(); }
};

// Runs the phase: the in-process ceiling first (nothing else running), then
// the media calls, then the WebRTC calls; deletes every session it made.
absl::StatusOr<WebRtcPhaseResult> RunWebRtcPhase(control::Client& control,
                                                 testing::Topology& topo,
                                                 const WebRtcPhaseOptions& options);

// The phase as plain text lines, and as the "webrtc" object of --json.
void PrintWebRtcPhase(const WebRtcPhaseResult& r);
nlohmann::json WebRtcPhaseJson(const WebRtcPhaseResult& r);

}  // namespace sluice::bench

#endif  // SLUICE_BENCH_WEBRTC_PHASE_H_
