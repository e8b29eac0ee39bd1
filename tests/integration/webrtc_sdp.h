// The SDP a controller exchanges with a WebRTC peer, as small as the tests
// need: the peer's transport attributes read out of its SDP and turned into
// a Sluice leg's "dtls" and "ice" fields, and an SDP for the peer built from
// Sluice's reply (RFC 8839 ICE attributes with a=ice-lite, RFC 8122
// fingerprint, RFC 4145/5763 setup, RFC 5761 rtcp-mux, one PCMU audio line).
//
// Test thread only. Pure functions over strings and JSON values.
#ifndef SLUICE_TESTS_INTEGRATION_WEBRTC_SDP_H_
#define SLUICE_TESTS_INTEGRATION_WEBRTC_SDP_H_

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sluice::testing {

// What Sluice needs from a WebRTC peer's offer or answer (its first audio
// m-line; session-level ice/fingerprint/setup attributes apply when the
// m-line has none).
struct PeerSdp {
  std::string mid;
  std::string setup;                      // actpass, active or passive
  std::vector<std::string> fingerprints;  // "sha-256 AB:CD:..."
  std::string ufrag, pwd;
  std::vector<std::string> candidates;  // what follows "a=candidate:"
  std::string address;                  // c= of the m-line
  int port = 0;                         // of the m-line
};

// Empty fields where the SDP has no such attribute.
PeerSdp ParsePeerSdp(const std::string& sdp);

// A session.create leg for the peer: {"name", "interface", "rtcp": "mux",
// "dtls": {"setup", "fingerprints"}, "ice": {"ufrag", "pwd"} or {}}.
nlohmann::json WebrtcLeg(const std::string& name, const std::string& iface, const PeerSdp& peer);

struct SluiceSdpOptions {
  std::string mid = "0";     // the peer's mid (its BUNDLE tag)
  std::string setup;         // default: the leg's dtls.setup (an offer says actpass)
  std::string fingerprint;   // default: the leg's dtls.fingerprint
};

// The offer or answer the peer gets from the controller: Sluice's address
// (the leg's "local"), ICE credentials and candidates from `leg` (a leg of a
// create or update reply, which carries ice.pwd), a=ice-lite, a=rtcp-mux,
// one audio m-line with PCMU (payload type 0).
std::string SluiceSdp(const nlohmann::json& leg, const SluiceSdpOptions& options);

}  // namespace sluice::testing

#endif  // SLUICE_TESTS_INTEGRATION_WEBRTC_SDP_H_
