// Full DTLS-SRTP handshakes in process: a client and a server dtls::Endpoint
// joined by memory, each side's calls timed apart, so a benchmark can report
// handshakes per second of one core doing both sides, and of a handshake
// thread doing only Sluice's side. `sluice-bench control` can call it to
// report the DTLS figure beside the daemon's.
//
// Benchmark code, single thread.
#ifndef SLUICE_BENCH_DTLS_HANDSHAKE_LOOP_H_
#define SLUICE_BENCH_DTLS_HANDSHAKE_LOOP_H_

#include <chrono>

#include "sluice/dtls/certificate.h"
#include "sluice/dtls/srtp_profile.h"

namespace sluice::bench {

struct HandshakeCost {
  bool keyed = false;  // both sides keyed, and their keys agree crosswise
  // CPU time spent in each side's calls: Create, Start, Feed, TakeOutgoing,
  // TakeKeys, and its destruction.
  std::chrono::nanoseconds client{0};
  std::chrono::nanoseconds server{0};
};

// One handshake from Create to both sides' keys taken, without loss.
HandshakeCost RunHandshake(const dtls::Certificate& client_cert,
                           const dtls::Certificate& server_cert, dtls::SrtpProfile profile);

}  // namespace sluice::bench

#endif  // SLUICE_BENCH_DTLS_HANDSHAKE_LOOP_H_
