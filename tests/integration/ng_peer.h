// The SBC's side of the ng protocol for end-to-end tests: a UDP client that
// lives in a test namespace, request builders, and views of the SDP Sluice
// returns. Test thread only.
#ifndef SLUICE_TESTS_INTEGRATION_NG_PEER_H_
#define SLUICE_TESTS_INTEGRATION_NG_PEER_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "netns.h"
#include "sluice/ng/bencode.h"

namespace sluice::testing {

class NgClient {
 public:
  ~NgClient();
  // A UDP socket in namespace `ns`, connected to ip:port (from `source_ip`
  // when given).
  bool Open(Topology& topo, const std::string& ns, const std::string& ip, uint16_t port,
            const std::string& source_ip = "");
  // Sends the request under a fresh cookie; the reply's dictionary (an empty
  // dictionary when no reply with that cookie came back within 10 s).
  ng::Value Call(const ng::Value& request);
  // Sends "<cookie> <bencoded request>"; the raw reply ("" when none).
  std::string Raw(const std::string& cookie, const ng::Value& request);
  // Sends `datagram` as it is; the raw reply ("" when none within 500 ms).
  std::string RawText(const std::string& datagram, int timeout_ms = 500);

 private:
  // The bencoded body of the first reply carrying `cookie` within
  // timeout_ms ("" when none); replies with other cookies are dropped.
  std::string ReplyTo(const std::string& cookie, int timeout_ms);

  int fd_ = -1;
  inline static int next_ = 0;  // cookies stay unique across clients: the reply cache keys on them
};

// "AES_CM_128_HMAC_SHA1_80 inline:<fresh random key||salt>".
std::string NewSdesKey();
// A phone's SDP: one audio section at ip:port with `proto`, rtcp-mux, and one
// a=crypto per key (tags from 1).
std::string PhoneSdp(const std::string& ip, uint16_t port, const std::string& proto,
                     const std::vector<std::string>& keys);

ng::Value NgCommand(const std::string& command, const std::string& call_id);
ng::Value NgOffer(const std::string& call_id, const std::string& from_tag, const std::string& sdp);
ng::Value NgAnswer(const std::string& call_id, const std::string& from_tag,
                   const std::string& to_tag, const std::string& sdp);
std::string Result(const ng::Value& reply);
std::string ErrorReason(const ng::Value& reply);

// The first media section of an SDP body.
struct SdpView {
  std::string ip, proto;
  uint16_t port = 0;
  std::vector<std::string> crypto;  // attribute values after the tag
};
SdpView ViewSdp(const std::string& sdp);
SdpView ViewSdp(const ng::Value& reply);  // its "sdp"

// Stops a process the test spawned: SIGTERM, up to 5 s, then SIGKILL; and
// then its children as they were when it was asked to stop, if any outlived
// it (a Kamailio's workers), with SIGKILL.
void StopProcess(pid_t pid);

// Starts Debian's rtpengine in namespace `ns`: userspace forwarding only
// (--table=-1), its ng listener at 127.0.0.1:ng_port, `args` added (its
// interfaces and ports), what it logs written to `log`. Its pid once it
// answers ping (within 5 s); else an error, and it is stopped.
absl::StatusOr<pid_t> StartRtpengine(Topology& topo, const std::string& ns,
                                     const std::string& args, uint16_t ng_port,
                                     const std::string& log);

}  // namespace sluice::testing

#endif  // SLUICE_TESTS_INTEGRATION_NG_PEER_H_
