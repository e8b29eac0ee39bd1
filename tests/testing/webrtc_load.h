// WebRTC calls set up all at once against a running sluiced: `calls`
// sessions, each a WebRTC leg a (DTLS-SRTP and ICE-lite, the browser's
// fingerprint and credentials given) and a plain leg b; as many simulated
// browsers (BrowserFleet) in a namespace, started together; how long each
// call took from its first connectivity check to the moment session.get
// first said its dtls.state was "keyed" and its keys were installed
// (KeyedWatch), and the CPU time of
// sluiced's handshake thread meanwhile. The browsers take the DTLS client
// role on even calls and the server role on odd ones.
//
// Test or benchmark thread. Shared by tests/integration/webrtc_load_test.cc
// and `sluice-bench control`.
#ifndef SLUICE_TESTS_TESTING_WEBRTC_LOAD_H_
#define SLUICE_TESTS_TESTING_WEBRTC_LOAD_H_

#include <netinet/in.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "netns.h"
#include "sluice/control/client.h"
#include "webrtc_browsers.h"

namespace sluice::testing {

// sluiced names its handshake thread so (HandshakeThread::Run).
inline constexpr char kHandshakeThreadName[] = "sluice-handshk";

struct WebRtcLoadOptions {
  size_t calls = 1000;
  std::string session_prefix = "webrtc-load-";
  std::string socket_path;  // sluiced's control socket (the KeyedWatch's connection)
  std::string interface_a = "a", interface_b = "b";
  std::string browser_ns;   // the browsers' namespace (Topology short name)
  std::string browser_ip;   // and their address there
  uint16_t first_port = 42000;  // browser i binds first_port + i
  std::string remote_b;     // the plain legs' remote, "ip:port"
  int deadline_ms = 60000;  // from the first check
  pid_t sluiced = -1;       // for its handshake thread's CPU time; -1: not read
  BrowserOptions browser;
};

struct WebRtcLoadResult {
  size_t calls = 0;
  size_t keyed = 0;   // session.get said "keyed"
  size_t failed = 0;  // said "failed", or the browser gave up, or neither by the deadline
  std::vector<std::string> failures;  // the first few: "call 7: ..."
  double seconds = 0;  // the first check sent to the last call seen keyed
  double handshakes_per_second = 0;  // keyed / seconds
  // Per keyed call, from its first check to session.get saying "keyed".
  double keyed_p50_ms = 0, keyed_p99_ms = 0, keyed_max_ms = 0;
  // The same, to the browser's own endpoint keying.
  double browser_keyed_p50_ms = 0, browser_keyed_max_ms = 0;
  std::optional<double> handshake_cpu_seconds;  // sluiced's handshake thread, over the run
  uint64_t session_gets = 0;                    // the KeyedWatch's requests
  BrowserCounters browsers;
};

// The nearest-rank percentile (0 < p <= 100) of `v`; 0 when empty.
double Percentile(std::vector<double> v, double p);

class WebRtcLoad {
 public:
  // Binds a socket per browser and creates every session (one request at a
  // time); nothing is sent to sluiced's legs yet.
  static absl::StatusOr<std::unique_ptr<WebRtcLoad>> Prepare(control::Client& control,
                                                             Topology& topo,
                                                             const WebRtcLoadOptions& options);
  // Starts every browser at once and polls them until session.get has said
  // every call is keyed, or failed, or the deadline passed.
  absl::StatusOr<WebRtcLoadResult> Run();
  // session.delete for every call.
  absl::Status Delete(control::Client& control);

  BrowserFleet& browsers() { return *fleet_; }
  const std::vector<std::string>& sessions() const { return sessions_; }
  // Call i's plain leg's local address: where its phone sends.
  const std::vector<sockaddr_in>& plain_locals() const { return plain_locals_; }

 private:
  explicit WebRtcLoad(const WebRtcLoadOptions& options) : options_(options) {}
  absl::Status AddCall(control::Client& control, Topology& topo, size_t i);

  WebRtcLoadOptions options_;
  std::unique_ptr<BrowserFleet> fleet_;
  std::vector<std::string> sessions_;
  std::vector<sockaddr_in> plain_locals_;
};

}  // namespace sluice::testing

#endif  // SLUICE_TESTS_TESTING_WEBRTC_LOAD_H_
