#include "sluice/ng/webrtc_media.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace sluice::ng {

WebrtcFlags ParseWebrtcFlags(const std::string& ice, const std::string& dtls) {
  WebrtcFlags f;
  const std::string i = absl::AsciiStrToLower(ice);
  if (i == "force") {
    f.ice = WebrtcFlags::Ice::kForce;
  } else if (i == "remove") {
    f.ice = WebrtcFlags::Ice::kRemove;
  } else if (!i.empty() && i != "default" && i != "optional") {
    f.ignored.push_back(absl::StrCat("ICE=", ice.substr(0, 32)));
  }
  const std::string d = absl::AsciiStrToLower(dtls);
  if (d == "off" || d == "no" || d == "disable") {
    f.dtls_off = true;
  } else if (d == "passive" || d == "active") {
    f.dtls_setup = d;
  } else if (!d.empty() && d != "default") {
    f.ignored.push_back(absl::StrCat("DTLS=", dtls.substr(0, 32)));
  }
  return f;
}

absl::StatusOr<PeerTransport> PeerTransportOf(const SdpMedia& m, size_t index, bool answer) {
  PeerTransport p;
  // RFC 4145 §4: without a=setup the endpoint is active.
  p.setup = m.setup.empty() ? "active" : absl::AsciiStrToLower(m.setup);
  if (p.setup != "active" && p.setup != "passive" && p.setup != "actpass") {
    return absl::InvalidArgumentError(absl::StrCat(
        "media section ", index, ": a=setup must be active, passive or actpass (RFC 4145 §4)"));
  }
  if (answer && p.setup == "actpass") {
    return absl::InvalidArgumentError(absl::StrCat(
        "media section ", index, ": an answer's a=setup is active or passive (RFC 5763 §5)"));
  }
  if (m.fingerprints.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "media section ", index, ": ", m.proto, " without a=fingerprint (RFC 8122 §5)"));
  }
  p.fingerprints = m.fingerprints;
  if (m.ice()) {
    p.ufrag = m.ice_ufrag;
    p.pwd = m.ice_pwd;
  }
  return p;
}

control::DtlsSpec DtlsSpecOf(const PeerTransport& peer, const std::string& local_setup) {
  control::DtlsSpec spec;
  spec.setup = peer.setup;
  spec.fingerprints = peer.fingerprints;
  spec.local_setup = local_setup;
  return spec;
}

control::IceSpec IceSpecOf(const PeerTransport& peer, bool restart) {
  control::IceSpec spec;
  spec.ufrag = peer.ufrag;
  spec.pwd.assign(peer.pwd.data(), peer.pwd.size());
  spec.restart = restart;
  return spec;
}

std::optional<WebrtcRewrite> LocalTransportOf(const control::LegInfo& leg) {
  if (!leg.dtls && !leg.ice) return std::nullopt;
  WebrtcRewrite w;
  if (leg.dtls) {
    w.fingerprint = leg.dtls->fingerprint;
    w.setup = leg.dtls->setup;
  }
  if (leg.ice) {
    w.ice_ufrag = leg.ice->ufrag;
    w.ice_pwd.assign(leg.ice->pwd.data(), leg.ice->pwd.size());
    w.candidates = leg.ice->candidates;
  }
  return w;
}

}  // namespace sluice::ng
