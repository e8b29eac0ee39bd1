// A WebRTC peer script (tests/integration/webrtc_peer.py for aiortc,
// gst_webrtc_peer.py for GStreamer webrtcbin) running in a namespace of the
// test's topology, driven with JSON lines: one request line on its standard
// input, one reply line on its standard output.
//
// Test thread only. The process is bounded: every Call has a deadline, the
// script exits by itself after --max-seconds, and the destructor ends it
// (quit, then SIGTERM, then SIGKILL) and reaps it before the namespaces go.
#ifndef SLUICE_TESTS_INTEGRATION_WEBRTC_PEER_PROCESS_H_
#define SLUICE_TESTS_INTEGRATION_WEBRTC_PEER_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "netns.h"

namespace sluice::testing {

class PeerProcess {
 public:
  // Starts argv (an interpreter, the script and its arguments) in namespace
  // `ns` of `topology`; its standard error goes to a log file.
  static absl::StatusOr<std::unique_ptr<PeerProcess>> Start(Topology& topology,
                                                            const std::string& ns,
                                                            const std::vector<std::string>& argv);
  PeerProcess(const PeerProcess&) = delete;
  PeerProcess& operator=(const PeerProcess&) = delete;
  // Ends the process; prints its log when the test failed.
  ~PeerProcess();

  // The reply to `request`, or a discarded value when none came within
  // timeout_ms (the process died, hung or wrote something else).
  nlohmann::json Call(const nlohmann::json& request, int timeout_ms = 20000);
  // What the script wrote on its standard error so far.
  std::string Log() const;

 private:
  PeerProcess() = default;
  bool ReadLine(int timeout_ms, std::string* line);
  void Stop();

  pid_t pid_ = -1;
  int in_fd_ = -1, out_fd_ = -1;
  std::string dir_;
  std::string pending_;  // bytes read past the last line
};

}  // namespace sluice::testing

#endif  // SLUICE_TESTS_INTEGRATION_WEBRTC_PEER_PROCESS_H_
