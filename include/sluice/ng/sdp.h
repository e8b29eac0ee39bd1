// SDP (RFC 4566) as the ng protocol needs it for RFC 3264 offer/answer:
// parsed into session lines and media sections, each line kept verbatim, with
// the few fields Sluice rewrites picked out (connection address, m= port and
// transport, a=rtcp, a=rtcp-mux, a=crypto, and the WebRTC transport
// attributes: a=mid, a=setup, a=fingerprint, a=ice-ufrag, a=ice-pwd).
// Rewrite puts Sluice's addresses, ports and keys in place of the peer's and
// leaves every other line intact, apart from the peer's ICE and DTLS
// attributes and a=group:BUNDLE, which Sluice replaces with its own (an
// ICE-lite agent and DTLS endpoint on WebRTC legs, nothing on others).
//
// Control thread only. SDP bodies carry SDES keys: they live in wiping
// strings, and errors quote line numbers, never line contents.
#ifndef SLUICE_NG_SDP_H_
#define SLUICE_NG_SDP_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "sluice/crypto/suite.h"
#include "sluice/ng/bencode.h"
#include "sluice/packet/address.h"

namespace sluice::ng {

// One a=crypto line (RFC 4568 §9.1): its tag, and the attribute value after
// the tag ("<suite> inline:..."), as srtp::ParseSdesCrypto takes it.
struct SdpCrypto {
  uint32_t tag = 0;
  std::string suite_name;
  String value;  // key material
};

struct SdpMedia {
  std::string media;     // "audio"
  uint16_t port = 0;     // 0: disabled (RFC 3264 §6)
  std::string port_count;  // "/2" when the m= line had one, else empty
  std::string proto;     // "RTP/AVP", "RTP/SAVP", ...
  std::string formats;   // the rest of the m= line
  std::optional<packet::IpAddress> connection;  // this section's c=
  std::optional<uint16_t> rtcp_port;            // a=rtcp
  bool rtcp_mux = false;                        // a=rtcp-mux
  // a=sendonly, a=recvonly or a=inactive here (else the session's, RFC
  // 4566 §6): media flows one way or not at all, a call on hold.
  std::optional<bool> one_way_or_none;
  std::vector<SdpCrypto> crypto;                // a=crypto, in order
  // WebRTC transport (RFC 8843 a=mid, RFC 4145/5763 a=setup, RFC 8122
  // a=fingerprint, RFC 8839 a=ice-ufrag/a=ice-pwd); the session-level
  // values where the section has none.
  std::optional<std::string> mid;
  std::string setup;
  std::vector<std::string> fingerprints;  // "sha-256 AB:CD:..."
  std::string ice_ufrag;
  String ice_pwd;                         // a credential
  std::vector<String> lines;  // every line after m=, verbatim, without EOL

  bool disabled() const { return port == 0; }
  bool secure() const;  // the transport is an SRTP profile (RTP/SAVP, RTP/SAVPF)
  bool dtls() const;    // UDP/TLS/RTP/SAVP or UDP/TLS/RTP/SAVPF (RFC 5764 §8)
  bool ice() const { return !ice_ufrag.empty() && !ice_pwd.empty(); }
};

struct Sdp {
  std::vector<String> session_lines;            // v= up to the first m=
  bool bundle = false;                          // a=group:BUNDLE (RFC 8843)
  // Session-level a=setup, a=fingerprint, a=ice-ufrag and a=ice-pwd (the
  // sections have inherited them where they have none of their own).
  SdpMedia session_transport;
  std::optional<packet::IpAddress> connection;  // session-level c=
  bool one_way_or_none = false;  // a session-level a=sendonly, a=recvonly or a=inactive
  std::vector<SdpMedia> media;
  std::string eol = "\r\n";  // what the input used

  // Where media of section `i` goes: its own c= or the session's.
  std::optional<packet::IpAddress> Address(size_t i) const;
  // Section `i` is on hold: its direction attribute, or the session's, is
  // a=sendonly, a=recvonly or a=inactive (RFC 3264 §8.4).
  bool OnHold(size_t i) const;
};

inline constexpr size_t kMaxSdpMedia = 32;

// Parses an SDP body. Refused: no v=0 first, a line that is not "<letter>=",
// an m= or c= line that does not parse, a c= that is not an IP address,
// more than kMaxSdpMedia sections. Unknown lines are kept.
absl::StatusOr<Sdp> ParseSdp(std::string_view text);

// RTP/AVP <-> RTP/SAVP and RTP/AVPF <-> RTP/SAVPF: the profile with or
// without SRTP, feedback kept.
std::string WithSrtp(std::string_view proto, bool srtp);

// SDES flags of an offer (rtpengine's "SDES" list): which suites Sluice
// offers, in which order.
struct SdesPolicy {
  bool off = false;
  std::vector<crypto::Suite> only;  // empty: no restriction
  std::vector<crypto::Suite> no;
  // Flags this policy does not understand ("pad", "static", unknown suites),
  // for the reply's warning.
  std::vector<std::string> ignored;
  // Suites without an SRTP tag (AES_CM_128_NULL_AUTH): off unless the
  // configuration allows them; no SDES flag turns them on.
  bool allow_unauthenticated = false;

  bool Allows(crypto::Suite suite) const;
};
SdesPolicy ParseSdesPolicy(const std::vector<std::string>& flags);

// The suites Sluice offers on the far side: the peer's own (those Sluice
// supports, once each, in the peer's order) when it offered SRTP, else
// Sluice's defaults; then the policy's subset.
std::vector<crypto::Suite> SuitesToOffer(const SdpMedia& peer, const SdesPolicy& policy);
// Sluice's default suites, most preferred first.
std::span<const crypto::Suite> DefaultSuites();

// Sluice's side of a WebRTC leg, for the SDP toward its peer.
struct WebrtcRewrite {
  std::string fingerprint;  // "sha-256 AB:..."; empty: no DTLS
  std::string setup;        // actpass, active or passive
  std::string ice_ufrag;    // empty: no ICE
  String ice_pwd;
  std::vector<std::string> candidates;  // a=candidate values ("candidate:1 1 UDP ...")
};

// What one media section becomes.
struct MediaRewrite {
  packet::Endpoint local;  // Sluice's address and RTP port for this section
  bool rtcp_mux = false;
  std::string proto;
  std::vector<SdpCrypto> crypto;  // Sluice's a=crypto lines
  std::optional<WebrtcRewrite> webrtc;
  std::string mid;  // an a=mid to add where the section has none ("": none)
};

struct RewriteOptions {
  // o= address becomes Sluice's ("replace": ["origin"]). The session-level c=
  // is always Sluice's: a section without its own c= uses it.
  bool replace_origin = false;
};

// Writes `sdp` with `plans[i]` applied to enabled section i (disabled
// sections are written as they came). plans.size() must equal media.size().
// a=ice-lite goes at session level when a section has ICE (RFC 8839 §5.3);
// a=group:BUNDLE is never written: each section keeps its own transport, as
// an answerer may decide (RFC 8843 §7.3.3).
String RewriteSdp(const Sdp& sdp, std::span<const MediaRewrite> plans,
                  const RewriteOptions& options = {});

}  // namespace sluice::ng

#endif  // SLUICE_NG_SDP_H_
