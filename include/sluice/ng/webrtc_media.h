// WebRTC media sections of the ng protocol: what a browser's SDP section
// (UDP/TLS/RTP/SAVPF with a=fingerprint, a=setup, a=ice-ufrag, a=ice-pwd)
// asks of its Sluice leg, what Sluice writes back to it, and the flags that
// choose them (ICE=, DTLS=, generate-mid). The handler turns these into the
// legs' DtlsSpec and IceSpec (docs/ng-protocol.md, "WebRTC").
//
// Control thread only. The ICE password is a credential: wiping strings.
#ifndef SLUICE_NG_WEBRTC_MEDIA_H_
#define SLUICE_NG_WEBRTC_MEDIA_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sluice/control/operations.h"
#include "sluice/ng/sdp.h"

namespace sluice::ng {

// What the ICE= and DTLS= keys of a request say of the SDP it produces.
struct WebrtcFlags {
  enum class Ice : uint8_t { kDefault, kForce, kRemove };
  Ice ice = Ice::kDefault;
  bool dtls_off = false;    // DTLS=off (or no, disable)
  std::string dtls_setup;   // DTLS=passive or DTLS=active: Sluice's a=setup; "" otherwise
  std::vector<std::string> ignored;  // values Sluice does not act on, for the warning
};
WebrtcFlags ParseWebrtcFlags(const std::string& ice, const std::string& dtls);

// A peer's transport attributes as its SDP section gave them.
struct PeerTransport {
  std::string setup;  // as given; RFC 4145 §4: absent is "active"
  std::vector<std::string> fingerprints;
  std::string ufrag;
  String pwd;

  bool SameDtls(const PeerTransport& other) const {
    return setup == other.setup && fingerprints == other.fingerprints;
  }
  bool SameIce(const PeerTransport& other) const {
    return ufrag == other.ufrag && pwd == other.pwd;
  }
};

// The DTLS side of section `index` (1-based, for errors) from its peer: a
// fingerprint is required (RFC 8122 §5), an answer may not say actpass
// (RFC 5763 §5), holdconn is refused.
absl::StatusOr<PeerTransport> PeerTransportOf(const SdpMedia& m, size_t index, bool answer);

control::DtlsSpec DtlsSpecOf(const PeerTransport& peer, const std::string& local_setup);
control::IceSpec IceSpecOf(const PeerTransport& peer, bool restart);

// Sluice's side of a WebRTC leg from a create or update reply: its
// fingerprint and setup, ICE credentials and candidates. None for a leg
// without DTLS or ICE.
std::optional<WebrtcRewrite> LocalTransportOf(const control::LegInfo& leg);

}  // namespace sluice::ng

#endif  // SLUICE_NG_WEBRTC_MEDIA_H_
