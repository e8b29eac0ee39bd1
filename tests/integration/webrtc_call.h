// A WebRTC call through Sluice for the HA tests: aiortc (webrtc_peer.py) as
// the browser on one leg, keyed by DTLS-SRTP and ICE-lite with Sluice, and a
// libsrtp2 SDES phone on the other; media both ways counted at both ends,
// and what a call that came through a restart or a failover must show.
//
// Test thread only.
#ifndef SLUICE_TESTS_INTEGRATION_WEBRTC_CALL_H_
#define SLUICE_TESTS_INTEGRATION_WEBRTC_CALL_H_

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "harness.h"
#include "netns.h"
#include "webrtc_peer_process.h"
#include "webrtc_sdp.h"

namespace sluice::testing {

// Why aiortc cannot run here ("" when it can).
std::string AiortcMissing();

struct WebrtcCall {
  // Starts the browser in namespace `ns` of `topo` at `ip` and takes its
  // offer; false (with a failure) when it does not answer.
  bool Offer(Topology& topo, const std::string& ns, const std::string& ip);
  // Gives the browser the answer to its offer (`sdp`, Sluice's ICE
  // credentials in it) and waits until it is connected (at most 15 s).
  bool Remote(const std::string& sdp);
  // Waits (at most 5 s) until the browser's leg, leg `leg` of `session` at
  // `control`'s sluiced, is keyed; true once it is.
  bool WaitKeyed(ControlClient& control, const std::string& session, int leg = 0);
  // The phone talks (a packet every 10 ms, at most 10 s) until media got
  // through each way, counted from now (what the browser and the phone
  // had is dropped); what arrives at the phone must verify.
  bool Through();
  // n of the phone's packets, 20 ms apart: at least 90% of them at the
  // browser and half as many of its own at the phone, every packet
  // verified at both.
  void ExpectMedia(int n);
  // A call back after a restart or a failover (`get`, `stats`: the new
  // sluiced's session.get and stats): keyed as it was, on the pair it had,
  // without a handshake; media both ways; and the browser still connected,
  // on ICE consent (RFC 7675) that a check under the call's credentials
  // renews.
  void ExpectResumed(const nlohmann::json& get, const nlohmann::json& stats);

  std::unique_ptr<PeerProcess> browser;
  std::string offer_sdp;  // the browser's, and what Sluice needs of it:
  PeerSdp offer;
  PeerSdp answer;         // Sluice's: its ICE credentials
  int leg_index = 0;      // the browser's leg in the session
  std::string selected;   // the pair ICE selected, once keyed
  Phone phone;            // armed by the test
};

}  // namespace sluice::testing

#endif  // SLUICE_TESTS_INTEGRATION_WEBRTC_CALL_H_
