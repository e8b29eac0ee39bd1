#include "webrtc_sdp.h"

#include <cstdint>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace sluice::testing {
namespace {

using json = nlohmann::json;

// "a=name:value" -> value when the line is attribute `name`.
bool Attribute(absl::string_view line, absl::string_view name, std::string* value) {
  if (!absl::ConsumePrefix(&line, "a=") || !absl::ConsumePrefix(&line, name)) return false;
  if (line.empty()) {
    value->clear();
    return true;
  }
  if (!absl::ConsumePrefix(&line, ":")) return false;
  *value = std::string(line);
  return true;
}

// One line's attributes into `out`; `media` says whether it is in the
// m-section (where it wins over the session level).
void ReadAttribute(absl::string_view line, bool media, PeerSdp* out) {
  std::string v;
  auto set = [&](std::string* field) {
    if (media || field->empty()) *field = v;
  };
  if (Attribute(line, "mid", &v)) set(&out->mid);
  if (Attribute(line, "setup", &v)) set(&out->setup);
  if (Attribute(line, "ice-ufrag", &v)) set(&out->ufrag);
  if (Attribute(line, "ice-pwd", &v)) set(&out->pwd);
  if (Attribute(line, "fingerprint", &v)) out->fingerprints.push_back(v);
  if (Attribute(line, "candidate", &v)) out->candidates.push_back(v);
  if (media && absl::ConsumePrefix(&line, "c=IN IP4 ")) out->address = std::string(line);
}

}  // namespace

PeerSdp ParsePeerSdp(const std::string& sdp) {
  PeerSdp out;
  int audio_lines = 0;
  bool in_audio = false;
  for (absl::string_view line : absl::StrSplit(sdp, '\n')) {
    line = absl::StripSuffix(line, "\r");
    if (absl::StartsWith(line, "m=")) {
      in_audio = absl::StartsWith(line, "m=audio ") && audio_lines++ == 0;
      if (in_audio) {
        std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
        if (f.size() > 1 && !absl::SimpleAtoi(f[1], &out.port)) out.port = 0;
      }
      continue;
    }
    if (audio_lines == 0 || in_audio) ReadAttribute(line, in_audio, &out);
  }
  return out;
}

json WebrtcLeg(const std::string& name, const std::string& iface, const PeerSdp& peer) {
  json ice = json::object();
  if (!peer.ufrag.empty()) ice = {{"ufrag", peer.ufrag}, {"pwd", peer.pwd}};
  return {{"name", name},
          {"interface", iface},
          {"rtcp", "mux"},
          {"dtls", {{"setup", peer.setup}, {"fingerprints", peer.fingerprints}}},
          {"ice", ice}};
}

std::string SluiceSdp(const json& leg, const SluiceSdpOptions& options) {
  const std::string local = leg.value("local", "");
  const std::string ip = local.substr(0, local.rfind(':'));
  const std::string port = local.substr(local.rfind(':') + 1);
  const json& dtls = leg.at("dtls");
  const json& ice = leg.at("ice");
  std::ostringstream s;
  // RFC 8866 §5: a session description; RFC 8839 §5.3: ice-lite at session level.
  s << "v=0\r\no=- 1 1 IN IP4 " << ip << "\r\ns=sluice\r\nt=0 0\r\na=ice-lite\r\n"
    << "a=group:BUNDLE " << options.mid << "\r\n"
    << "m=audio " << port << " UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 " << ip << "\r\n"
    << "a=mid:" << options.mid << "\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:0 PCMU/8000\r\n"
    << "a=ice-ufrag:" << ice.value("ufrag", "") << "\r\n"
    << "a=ice-pwd:" << ice.value("pwd", "") << "\r\n"
    << "a=fingerprint:"
    << (options.fingerprint.empty() ? dtls.value("fingerprint", "") : options.fingerprint)
    << "\r\na=setup:" << (options.setup.empty() ? dtls.value("setup", "") : options.setup)
    << "\r\n";
  for (const json& c : ice.value("candidates", json::array())) {
    // The value after "a=" ("candidate:1 1 UDP ..."), or after "a=candidate:".
    const std::string v = c.get<std::string>();
    s << (absl::StartsWith(v, "candidate:") ? "a=" : "a=candidate:") << v << "\r\n";
  }
  s << "a=end-of-candidates\r\n";
  return s.str();
}

}  // namespace sluice::testing
