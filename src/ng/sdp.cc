#include "sluice/ng/sdp.h"

#include <algorithm>
#include <array>
#include <charconv>

#include "absl/strings/str_cat.h"
#include "sluice/memory/wiping_allocator.h"

namespace sluice::ng {
namespace {

std::string_view View(const String& s) { return std::string_view(s.data(), s.size()); }

absl::Status LineError(size_t line, std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("sdp: line ", line, ": ", std::string(what)));
}

std::vector<std::string_view> Fields(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    const size_t start = i;
    while (i < s.size() && s[i] != ' ') ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

template <typename T>
bool ParseNumber(std::string_view s, T& out) {
  if (s.empty() || s.size() > 10) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

// RFC 4566 §5.7: c=IN IP4 <addr>[/<ttl>[/<n>]] or c=IN IP6 <addr>[/<n>].
std::optional<packet::IpAddress> ParseConnection(std::string_view value) {
  const std::vector<std::string_view> f = Fields(value);
  if (f.size() != 3 || f[0] != "IN" || (f[1] != "IP4" && f[1] != "IP6")) return std::nullopt;
  const std::string_view addr = f[2].substr(0, f[2].find('/'));
  std::optional<packet::IpAddress> ip = packet::IpAddress::Parse(absl::string_view(addr.data(), addr.size()));
  if (!ip || (ip->is_v4() != (f[1] == "IP4"))) return std::nullopt;
  return ip;
}

std::string ConnectionLine(const packet::IpAddress& ip) {
  return absl::StrCat("c=IN ", ip.is_v4() ? "IP4 " : "IP6 ", ip.ToString());
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// Attributes Sluice owns in what it writes: the peer's are dropped, Sluice's
// own are added. ICE (RFC 8839) and DTLS-SRTP (RFC 5763, RFC 8842) are
// between Sluice and each peer, never passed from one to the other; BUNDLE
// (RFC 8843) is not offered or accepted.
bool Replaced(std::string_view line) {
  static constexpr std::array<std::string_view, 14> kPrefixes = {
      "a=crypto:", "a=rtcp:", "a=candidate:", "a=ice-ufrag:", "a=ice-pwd:", "a=ice-options:",
      "a=remote-candidates:", "a=fingerprint:", "a=setup:", "a=tls-id:", "a=ice-pacing:",
      "a=rtcp-mux-only", "a=ice-mismatch", "a=group:BUNDLE"};
  static constexpr std::array<std::string_view, 4> kExact = {"a=rtcp-mux", "a=ice-lite",
                                                             "a=end-of-candidates", "a=ice2"};
  for (std::string_view p : kPrefixes) {
    if (StartsWith(line, p)) return true;
  }
  for (std::string_view e : kExact) {
    if (line == e) return true;
  }
  return false;
}

// "<type>=<value>" with a lower-case type letter, and v=0 first.
absl::Status CheckLineForm(size_t number, std::string_view line) {
  if (line.size() < 2 || line[1] != '=' || line[0] < 'a' || line[0] > 'z') {
    return LineError(number, "not a \"<type>=<value>\" line");
  }
  if (number == 1 && line != "v=0") return LineError(number, "an SDP body starts with v=0");
  return absl::OkStatus();
}

// RFC 4566 §5.14: m=<media> <port>[/<number of ports>] <proto> <fmt> ...
absl::StatusOr<SdpMedia> ParseMediaLine(size_t number, std::string_view value) {
  const std::vector<std::string_view> f = Fields(value);
  if (f.size() < 3) return LineError(number, "m= needs media, port and transport");
  SdpMedia m;
  m.media = std::string(f[0]);
  const size_t slash = f[1].find('/');
  if (!ParseNumber(f[1].substr(0, slash), m.port)) {
    return LineError(number, "m= port is not a number from 0 to 65535");
  }
  if (slash != std::string_view::npos) {
    uint16_t count = 0;
    if (!ParseNumber(f[1].substr(slash + 1), count) || count == 0) {
      return LineError(number, "m= port count is not a positive number");
    }
    m.port_count = std::string(f[1].substr(slash));
  }
  m.proto = std::string(f[2]);
  const size_t formats_at = static_cast<size_t>(f[2].data() - value.data()) + f[2].size();
  m.formats = std::string(value.substr(std::min(formats_at + 1, value.size())));
  return m;
}

// RFC 4568 §9.1: a=crypto:<tag> <crypto-suite> <key-params> [<session-params>]
absl::StatusOr<SdpCrypto> ParseCryptoLine(size_t number, std::string_view line) {
  const std::string_view rest = line.substr(9);
  const size_t space = rest.find(' ');
  SdpCrypto c;
  if (space == std::string_view::npos || !ParseNumber(rest.substr(0, space), c.tag) ||
      c.tag > 999999999) {
    return LineError(number, "a=crypto does not start with a tag (1 to 9 digits)");
  }
  const std::string_view attr = rest.substr(space + 1);
  c.suite_name = std::string(attr.substr(0, attr.find(' ')));
  c.value.assign(attr.data(), attr.size());
  return c;
}

// The WebRTC transport attributes of section `m`, or of the session
// (kept in `sdp.session_transport` until the sections inherit them).
void PickOutWebrtc(std::string_view line, Sdp& sdp, SdpMedia* m) {
  SdpMedia& to = m != nullptr ? *m : sdp.session_transport;
  auto value = [&](std::string_view name) { return line.substr(name.size()); };
  if (StartsWith(line, "a=setup:")) {
    to.setup = std::string(value("a=setup:"));
  } else if (StartsWith(line, "a=fingerprint:")) {
    to.fingerprints.emplace_back(value("a=fingerprint:"));
  } else if (StartsWith(line, "a=ice-ufrag:")) {
    to.ice_ufrag = std::string(value("a=ice-ufrag:"));
  } else if (StartsWith(line, "a=ice-pwd:")) {
    const std::string_view pwd = value("a=ice-pwd:");
    to.ice_pwd.assign(pwd.data(), pwd.size());
  } else if (m != nullptr && StartsWith(line, "a=mid:")) {
    m->mid = std::string(value("a=mid:"));
  } else if (m == nullptr && StartsWith(line, "a=group:BUNDLE")) {
    sdp.bundle = true;
  }
}

// The fields Sluice rewrites or reads, from a line other than m=: c= and
// the direction (of the session or of section `m`), and a=rtcp, a=rtcp-mux
// and a=crypto of section `m`.
absl::Status PickOutFields(size_t number, std::string_view line, Sdp& sdp, SdpMedia* m) {
  if (line[0] == 'c') {
    std::optional<packet::IpAddress> ip = ParseConnection(line.substr(2));
    if (!ip) return LineError(number, "c= is not \"IN IP4|IP6 <IP address>\"");
    (m ? m->connection : sdp.connection) = ip;
  } else if (m != nullptr && StartsWith(line, "a=rtcp:")) {
    // RFC 3605: a=rtcp:<port> [IN IP4 <addr>]
    const std::vector<std::string_view> f = Fields(line.substr(7));
    uint16_t port = 0;
    if (f.empty() || !ParseNumber(f[0], port)) {
      return LineError(number, "a=rtcp port is not a number from 0 to 65535");
    }
    m->rtcp_port = port;
  } else if (m != nullptr && line == "a=rtcp-mux") {
    m->rtcp_mux = true;
  } else if (line == "a=sendrecv" || line == "a=sendonly" || line == "a=recvonly" ||
             line == "a=inactive") {
    const bool one_way_or_none = line != "a=sendrecv";
    if (m != nullptr) {
      m->one_way_or_none = one_way_or_none;
    } else {
      sdp.one_way_or_none = one_way_or_none;
    }
  } else if (m != nullptr && StartsWith(line, "a=crypto:")) {
    absl::StatusOr<SdpCrypto> c = ParseCryptoLine(number, line);
    if (!c.ok()) return c.status();
    m->crypto.push_back(std::move(*c));
  } else {
    PickOutWebrtc(line, sdp, m);
  }
  return absl::OkStatus();
}

// Session-level setup, fingerprints and ICE credentials apply to the
// sections without their own (RFC 8839 §5.4, RFC 8122 §5).
void InheritSessionTransport(const SdpMedia& session, SdpMedia& m) {
  if (m.setup.empty()) m.setup = session.setup;
  if (m.fingerprints.empty()) m.fingerprints = session.fingerprints;
  if (m.ice_ufrag.empty() && m.ice_pwd.empty()) {
    m.ice_ufrag = session.ice_ufrag;
    m.ice_pwd = session.ice_pwd;
  }
}

}  // namespace

bool SdpMedia::secure() const { return proto == "RTP/SAVP" || proto == "RTP/SAVPF"; }

bool SdpMedia::dtls() const { return proto == "UDP/TLS/RTP/SAVP" || proto == "UDP/TLS/RTP/SAVPF"; }

std::optional<packet::IpAddress> Sdp::Address(size_t i) const {
  if (i < media.size() && media[i].connection) return media[i].connection;
  return connection;
}

bool Sdp::OnHold(size_t i) const {
  if (i < media.size() && media[i].one_way_or_none) return *media[i].one_way_or_none;
  return one_way_or_none;
}

absl::StatusOr<Sdp> ParseSdp(std::string_view text) {
  Sdp sdp;
  if (text.find("\r\n") == std::string_view::npos && text.find('\n') != std::string_view::npos) {
    sdp.eol = "\n";
  }
  size_t number = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    ++number;
    if (line.empty()) {
      if (pos >= text.size()) break;  // a final empty line
      return LineError(number, "empty line");
    }
    if (absl::Status s = CheckLineForm(number, line); !s.ok()) return s;
    if (line[0] == 'm') {
      if (sdp.media.size() == kMaxSdpMedia) {
        return LineError(number, absl::StrCat("more than ", kMaxSdpMedia, " media sections"));
      }
      absl::StatusOr<SdpMedia> m = ParseMediaLine(number, line.substr(2));
      if (!m.ok()) return m.status();
      sdp.media.push_back(std::move(*m));
      continue;
    }
    SdpMedia* m = sdp.media.empty() ? nullptr : &sdp.media.back();
    if (absl::Status s = PickOutFields(number, line, sdp, m); !s.ok()) return s;
    (m != nullptr ? m->lines : sdp.session_lines).emplace_back(line.data(), line.size());
  }
  if (sdp.session_lines.empty()) return absl::InvalidArgumentError("sdp: empty body");
  for (SdpMedia& m : sdp.media) InheritSessionTransport(sdp.session_transport, m);
  return sdp;
}

std::string WithSrtp(std::string_view proto, bool srtp) {
  if (proto == "RTP/AVP" || proto == "RTP/SAVP") return srtp ? "RTP/SAVP" : "RTP/AVP";
  if (proto == "RTP/AVPF" || proto == "RTP/SAVPF") return srtp ? "RTP/SAVPF" : "RTP/AVPF";
  return std::string(proto);
}

bool SdesPolicy::Allows(crypto::Suite suite) const {
  if (off) return false;
  if (!allow_unauthenticated && crypto::GetSuiteInfo(suite).srtp_auth == crypto::AuthKind::kNull) {
    return false;
  }
  if (std::find(no.begin(), no.end(), suite) != no.end()) return false;
  return only.empty() || std::find(only.begin(), only.end(), suite) != only.end();
}

SdesPolicy ParseSdesPolicy(const std::vector<std::string>& flags) {
  SdesPolicy policy;
  for (const std::string& flag : flags) {
    if (flag == "off") {
      policy.off = true;
      continue;
    }
    const bool only = StartsWith(flag, "only-");
    const bool no = StartsWith(flag, "no-");
    if (only || no) {
      if (std::optional<crypto::Suite> suite =
              crypto::SuiteFromName(std::string_view(flag).substr(only ? 5 : 3))) {
        (only ? policy.only : policy.no).push_back(*suite);
        continue;
      }
    }
    policy.ignored.push_back(flag);
  }
  return policy;
}

std::span<const crypto::Suite> DefaultSuites() {
  static constexpr std::array<crypto::Suite, 6> kDefaults = {
      crypto::Suite::kAesCm128HmacSha1_80, crypto::Suite::kAesCm128HmacSha1_32,
      crypto::Suite::kAes256CmHmacSha1_80, crypto::Suite::kAes256CmHmacSha1_32,
      crypto::Suite::kAeadAes128Gcm,       crypto::Suite::kAeadAes256Gcm};
  return kDefaults;
}

std::vector<crypto::Suite> SuitesToOffer(const SdpMedia& peer, const SdesPolicy& policy) {
  std::vector<crypto::Suite> candidates;
  for (const SdpCrypto& c : peer.crypto) {
    std::optional<crypto::Suite> suite = crypto::SuiteFromName(c.suite_name);
    if (suite && std::find(candidates.begin(), candidates.end(), *suite) == candidates.end()) {
      candidates.push_back(*suite);
    }
  }
  if (candidates.empty()) candidates.assign(DefaultSuites().begin(), DefaultSuites().end());
  std::vector<crypto::Suite> out;
  for (crypto::Suite s : candidates) {
    if (policy.Allows(s)) out.push_back(s);
  }
  return out;
}

namespace {

// RFC 8839 §5.4 (credentials), §5.1 (candidates; Sluice's are host
// candidates of the leg's own address), RFC 8122 §5 (fingerprint),
// RFC 4145 §4 / RFC 5763 §5 (setup).
template <typename Emit>
void EmitWebrtc(const WebrtcRewrite& w, Emit& emit) {
  if (!w.ice_ufrag.empty()) {
    emit(absl::StrCat("a=ice-ufrag:", w.ice_ufrag));
    String pwd("a=ice-pwd:");
    pwd.append(w.ice_pwd.data(), w.ice_pwd.size());
    emit(View(pwd));
    for (const std::string& c : w.candidates) {
      emit(StartsWith(c, "candidate:") ? absl::StrCat("a=", c) : absl::StrCat("a=candidate:", c));
    }
    emit("a=end-of-candidates");
  }
  if (!w.fingerprint.empty()) {
    emit(absl::StrCat("a=fingerprint:", w.fingerprint));
    emit(absl::StrCat("a=setup:", w.setup));
  }
}

// An enabled section with Sluice's address, port, profile, RTCP, keys and
// (on a WebRTC side) transport in place of the peer's.
template <typename Emit>
void EmitSection(const Sdp& sdp, const SdpMedia& m, const MediaRewrite& plan, Emit& emit) {
  emit(absl::StrCat("m=", m.media, " ", plan.local.port, m.port_count, " ", plan.proto,
                    m.formats.empty() ? "" : " ", m.formats));
  // RFC 4566 §5.7: a section needs a c= of its own or the session's.
  if (!m.connection && !sdp.connection) emit(ConnectionLine(plan.local.ip));
  for (const String& line : m.lines) {
    const std::string_view l = View(line);
    if (l[0] == 'c') {
      emit(ConnectionLine(plan.local.ip));
    } else if (!Replaced(l)) {
      emit(l);
    }
  }
  // RFC 8843 §9.2: an answer names the offer's mid; generate-mid adds one.
  if (!plan.mid.empty() && !m.mid) emit(absl::StrCat("a=mid:", plan.mid));
  // RFC 5761 §5.1.1 (rtcp-mux), RFC 3605 (a=rtcp when RTCP has its own port).
  if (plan.rtcp_mux) {
    emit("a=rtcp-mux");
  } else {
    emit(absl::StrCat("a=rtcp:", plan.local.port + 1));
  }
  if (plan.webrtc) EmitWebrtc(*plan.webrtc, emit);
  for (const SdpCrypto& c : plan.crypto) {
    String line("a=crypto:");
    const std::string tag = std::to_string(c.tag);
    line.append(tag.data(), tag.size());
    line += ' ';
    line += c.value;
    emit(View(line));
    memory::WipeMemory(line.data(), line.size());
  }
}

}  // namespace

String RewriteSdp(const Sdp& sdp, std::span<const MediaRewrite> plans,
                  const RewriteOptions& options) {
  String out;
  auto emit = [&](std::string_view line) {
    out.append(line.data(), line.size());
    out.append(sdp.eol);
  };
  const MediaRewrite* first = nullptr;
  for (size_t i = 0; i < sdp.media.size() && i < plans.size(); ++i) {
    if (!sdp.media[i].disabled()) {
      first = &plans[i];
      break;
    }
  }
  for (const String& line : sdp.session_lines) {
    const std::string_view l = View(line);
    if (first != nullptr && l[0] == 'c') {
      emit(ConnectionLine(first->local.ip));
    } else if (first != nullptr && options.replace_origin && l[0] == 'o') {
      // RFC 4566 §5.2: o=<username> <sess-id> <sess-version> IN <addrtype> <address>
      std::vector<std::string_view> f = Fields(l.substr(2));
      if (f.size() == 6) {
        emit(absl::StrCat("o=", std::string(f[0]), " ", std::string(f[1]), " ",
                          std::string(f[2]), " IN ", first->local.ip.is_v4() ? "IP4 " : "IP6 ",
                          first->local.ip.ToString()));
      } else {
        emit(l);
      }
    } else if (first != nullptr && Replaced(l)) {
      continue;  // session-level ICE/DTLS attributes
    } else {
      emit(l);
    }
  }
  // RFC 8839 §5.3: a lite agent says so at session level.
  if (std::any_of(plans.begin(), plans.end(), [](const MediaRewrite& p) {
        return p.webrtc && !p.webrtc->ice_ufrag.empty();
      })) {
    emit("a=ice-lite");
  }
  for (size_t i = 0; i < sdp.media.size(); ++i) {
    const SdpMedia& m = sdp.media[i];
    if (m.disabled() || i >= plans.size()) {
      emit(absl::StrCat("m=", m.media, " ", m.port, m.port_count, " ", m.proto,
                        m.formats.empty() ? "" : " ", m.formats));
      // A disabled section stays as it came, but the peer's keys never
      // travel to the other side.
      for (const String& line : m.lines) {
        if (!StartsWith(View(line), "a=crypto:")) emit(View(line));
      }
      continue;
    }
    EmitSection(sdp, m, plans[i], emit);
  }
  return out;
}

}  // namespace sluice::ng
