#include "sluice/ha/record.h"

#include <exception>
#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "sluice/crypto/suite.h"

namespace sluice::ha {
namespace {

using json = nlohmann::json;

// An unsigned field no larger than max (a wider number must not wrap).
uint64_t Uint(const json& j, const char* key, uint64_t max) {
  const json& v = j.at(key);
  if (!v.is_number_unsigned() || v.get<uint64_t>() > max) throw std::invalid_argument(key);
  return v.get<uint64_t>();
}

json CryptoJson(const SealedCrypto& c) {
  switch (c.kind) {
    case SealedCrypto::Kind::kPlain: return {{"kind", "plain"}};
    case SealedCrypto::Kind::kPassthrough: return {{"kind", "passthrough"}};
    case SealedCrypto::Kind::kSdes: break;
  }
  return {{"kind", "sdes"}, {"sealed", absl::Base64Escape(c.sealed)}};
}

SealedCrypto CryptoFrom(const json& j) {
  SealedCrypto c;
  const std::string kind = j.at("kind").get<std::string>();
  if (kind == "plain") return c;
  if (kind == "passthrough") {
    c.kind = SealedCrypto::Kind::kPassthrough;
    return c;
  }
  if (kind != "sdes") throw std::invalid_argument("crypto kind");
  c.kind = SealedCrypto::Kind::kSdes;
  if (!absl::Base64Unescape(j.at("sealed").get<std::string>(), &c.sealed)) {
    throw std::invalid_argument("sealed is not base64");
  }
  return c;
}

const char* RocName(control::RocOnRekey r) {
  switch (r) {
    case control::RocOnRekey::kKeep: return "keep";
    case control::RocOnRekey::kReset: return "reset";
    case control::RocOnRekey::kAuto: break;
  }
  return "auto";
}

control::RocOnRekey RocFrom(const std::string& s) {
  if (s == "auto") return control::RocOnRekey::kAuto;
  if (s == "keep") return control::RocOnRekey::kKeep;
  if (s == "reset") return control::RocOnRekey::kReset;
  throw std::invalid_argument("roc_on_rekey");
}

packet::Endpoint EndpointFrom(const json& j) {
  std::optional<packet::Endpoint> e = packet::Endpoint::Parse(j.get<std::string>());
  if (!e) throw std::invalid_argument("endpoint");
  return *e;
}

std::string Base64From(const json& j, const char* key) {
  std::string out;
  if (!absl::Base64Unescape(j.at(key).get<std::string>(), &out)) {
    throw std::invalid_argument(key);
  }
  return out;
}

json DtlsJson(const control::DtlsSpec& d) {
  json j = {{"setup", d.setup}, {"fingerprints", d.fingerprints}, {"local_setup", d.local_setup}};
  if (!d.restored_profile.empty()) j["profile"] = d.restored_profile;
  return j;
}

control::DtlsSpec DtlsFrom(const json& j) {
  control::DtlsSpec d;
  d.setup = j.at("setup").get<std::string>();
  d.fingerprints = j.at("fingerprints").get<std::vector<std::string>>();
  if (d.fingerprints.size() > 16) throw std::invalid_argument("fingerprints");
  d.local_setup = j.at("local_setup").get<std::string>();
  if (j.contains("profile")) {
    d.restored_profile = j.at("profile").get<std::string>();
    if (!crypto::SuiteFromName(d.restored_profile)) throw std::invalid_argument("profile");
  }
  return d;
}

json IceJson(const IceRecord& ice) {
  json j = {{"ufrag", ice.ufrag}, {"pwd", absl::Base64Escape(ice.pwd_sealed)}};
  if (!ice.peer_ufrag.empty()) {
    j["peer_ufrag"] = ice.peer_ufrag;
    j["peer_pwd"] = absl::Base64Escape(ice.peer_pwd_sealed);
  }
  return j;
}

IceRecord IceFrom(const json& j) {
  IceRecord ice;
  ice.ufrag = j.at("ufrag").get<std::string>();
  ice.pwd_sealed = Base64From(j, "pwd");
  if (ice.ufrag.empty() || ice.pwd_sealed.empty()) throw std::invalid_argument("ice");
  if (j.contains("peer_ufrag")) {
    ice.peer_ufrag = j.at("peer_ufrag").get<std::string>();
    ice.peer_pwd_sealed = Base64From(j, "peer_pwd");
    if (ice.peer_ufrag.empty() || ice.peer_pwd_sealed.empty()) throw std::invalid_argument("ice");
  }
  return ice;
}

// Keyed (a profile), both directions hold sealed keys; not keyed, none.
void CheckWebRtcKeys(const LegRecord& leg) {
  if (!leg.dtls) return;
  const bool keyed = !leg.dtls->restored_profile.empty();
  const auto kind = keyed ? SealedCrypto::Kind::kSdes : SealedCrypto::Kind::kPlain;
  if (leg.rx.kind != kind || leg.tx.kind != kind) throw std::invalid_argument("dtls keys");
}

json LegJson(const LegRecord& leg) {
  json j = {{"name", leg.name},
            {"interface", leg.interface},
            {"family", leg.family},
            {"local_port", leg.local_port},
            {"strict_source", leg.strict_source},
            {"await_answer", leg.await_answer},
            {"rtcp", leg.rtcp == control::RtcpMode::kMux ? "mux" : "separate"},
            {"roc_on_rekey", RocName(leg.roc_on_rekey)},
            {"rx", CryptoJson(leg.rx)},
            {"tx", CryptoJson(leg.tx)}};
  if (leg.remote) j["remote"] = leg.remote->ToString();
  if (leg.dtls) j["dtls"] = DtlsJson(*leg.dtls);
  if (leg.ice) j["ice"] = IceJson(*leg.ice);
  if (leg.aes192_kdf) {
    j["aes192_kdf"] =
        *leg.aes192_kdf == crypto::Aes192Kdf::kRfc6188 ? "rfc6188" : "libsrtp-legacy";
  }
  return j;
}

LegRecord LegFrom(const json& j) {
  LegRecord leg;
  leg.name = j.at("name").get<std::string>();
  leg.interface = j.at("interface").get<std::string>();
  leg.family = static_cast<uint8_t>(Uint(j, "family", 6));
  if (leg.family != 4 && leg.family != 6) throw std::invalid_argument("family");
  leg.local_port = static_cast<uint16_t>(Uint(j, "local_port", 65535));
  if (leg.local_port == 0) throw std::invalid_argument("local_port");
  leg.strict_source = j.at("strict_source").get<bool>();
  leg.await_answer = j.at("await_answer").get<bool>();
  const std::string rtcp = j.at("rtcp").get<std::string>();
  if (rtcp != "mux" && rtcp != "separate") throw std::invalid_argument("rtcp");
  leg.rtcp = rtcp == "mux" ? control::RtcpMode::kMux : control::RtcpMode::kSeparate;
  leg.roc_on_rekey = RocFrom(j.at("roc_on_rekey").get<std::string>());
  leg.rx = CryptoFrom(j.at("rx"));
  leg.tx = CryptoFrom(j.at("tx"));
  if (j.contains("remote")) leg.remote = EndpointFrom(j.at("remote"));
  if (j.contains("aes192_kdf")) {
    leg.aes192_kdf = crypto::ParseAes192Kdf(j.at("aes192_kdf").get<std::string>());
    if (!leg.aes192_kdf) throw std::invalid_argument("aes192_kdf");
  }
  if (j.contains("dtls")) leg.dtls = DtlsFrom(j.at("dtls"));
  if (j.contains("ice")) leg.ice = IceFrom(j.at("ice"));
  CheckWebRtcKeys(leg);
  return leg;
}

json StreamsJson(const std::vector<srtp::StreamState>& streams) {
  json a = json::array();
  for (const srtp::StreamState& s : streams) {
    json j = {{"ssrc", s.ssrc}, {"rtcp", s.rtcp_index}};
    if (s.rtp_used) j["top"] = s.rtp_top;
    a.push_back(std::move(j));
  }
  return a;
}

std::vector<srtp::StreamState> StreamsFrom(const json& a) {
  if (!a.is_array() || a.size() > 64) throw std::invalid_argument("streams");
  std::vector<srtp::StreamState> out;
  for (const json& j : a) {
    srtp::StreamState s;
    s.ssrc = static_cast<uint32_t>(Uint(j, "ssrc", UINT32_MAX));
    s.rtcp_index = static_cast<uint32_t>(Uint(j, "rtcp", 0x7fffffff));
    if (j.contains("top")) {
      s.rtp_used = true;
      s.rtp_top = Uint(j, "top", (uint64_t{1} << 48) - 1);
    }
    out.push_back(s);
  }
  return out;
}

// Parses `text` as a JSON object of version kRecordVersion and hands it to
// `read`; any error (syntax, a missing field, a wrong type or value) is
// DataLoss naming `what`.
template <typename T, typename Read>
absl::StatusOr<T> Decode(std::string_view text, const char* what, Read read) {
  try {
    const json j = json::parse(text.begin(), text.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      return absl::DataLossError(absl::StrCat(what, ": not a JSON object"));
    }
    if (j.value("v", 0) != kRecordVersion) {
      return absl::DataLossError(absl::StrCat(what, ": unknown version (this sluiced reads v",
                                              kRecordVersion, ")"));
    }
    return read(j);
  } catch (const std::exception& e) {
    return absl::DataLossError(absl::StrCat(what, ": malformed (", e.what(), ")"));
  }
}

}  // namespace

std::string EncodeSession(const SessionRecord& record) {
  json j = {{"v", kRecordVersion},
            {"session", absl::Base64Escape(record.session)},
            {"key_group", absl::Base64Escape(record.key_group)},
            {"hold", record.hold},
            {"legs", {LegJson(record.legs[0]), LegJson(record.legs[1])}}};
  if (!record.ng_sealed.empty()) {
    j["ng"] = {{"v", kNgVersion}, {"sealed", absl::Base64Escape(record.ng_sealed)}};
  }
  return j.dump();
}

absl::StatusOr<SessionRecord> DecodeSession(std::string_view text) {
  return Decode<SessionRecord>(text, "session record", [](const json& j) {
    SessionRecord r;
    if (!absl::Base64Unescape(j.at("session").get<std::string>(), &r.session) ||
        !absl::Base64Unescape(j.at("key_group").get<std::string>(), &r.key_group)) {
      throw std::invalid_argument("name is not base64");
    }
    r.hold = j.at("hold").get<bool>();
    const json& legs = j.at("legs");
    if (!legs.is_array() || legs.size() != 2) throw std::invalid_argument("legs");
    for (int i = 0; i < 2; ++i) r.legs[static_cast<size_t>(i)] = LegFrom(legs.at(i));
    if (j.contains("ng")) {
      const json& ng = j.at("ng");
      if (Uint(ng, "v", UINT32_MAX) != kNgVersion) throw std::invalid_argument("ng: unknown version");
      if (!absl::Base64Unescape(ng.at("sealed").get<std::string>(), &r.ng_sealed) ||
          r.ng_sealed.empty()) {
        throw std::invalid_argument("ng: sealed is not base64");
      }
    }
    return r;
  });
}

std::string EncodeStreams(const StreamsRecord& record) {
  json legs = json::array();
  for (const control::LegStreams& leg : record.legs) {
    json l = {{"rx", StreamsJson(leg.rx)}, {"tx", StreamsJson(leg.tx)}};
    if (leg.remote) l["remote"] = leg.remote->ToString();
    if (leg.tx_seq_offset != 0) l["seq_offset"] = leg.tx_seq_offset;
    legs.push_back(std::move(l));
  }
  return json{{"v", kRecordVersion}, {"at_ms", record.at_unix_ms}, {"legs", legs}}.dump();
}

absl::StatusOr<StreamsRecord> DecodeStreams(std::string_view text) {
  return Decode<StreamsRecord>(text, "streams checkpoint", [](const json& j) {
    StreamsRecord r;
    r.at_unix_ms = Uint(j, "at_ms", UINT64_MAX);
    const json& legs = j.at("legs");
    if (!legs.is_array() || legs.size() != 2) throw std::invalid_argument("legs");
    for (int i = 0; i < 2; ++i) {
      const json& l = legs.at(i);
      control::LegStreams& leg = r.legs[static_cast<size_t>(i)];
      leg.rx = StreamsFrom(l.at("rx"));
      leg.tx = StreamsFrom(l.at("tx"));
      if (l.contains("remote")) leg.remote = EndpointFrom(l.at("remote"));
      if (l.contains("seq_offset")) {
        leg.tx_seq_offset = static_cast<uint16_t>(Uint(l, "seq_offset", 65535));
      }
    }
    return r;
  });
}

}  // namespace sluice::ha
