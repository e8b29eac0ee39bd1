#include "sluice/control/protocol.h"

#include <algorithm>
#include <array>
#include <exception>
#include <optional>
#include <string>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/cord.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/types/span.h"
#include "sluice/crypto/suite.h"

namespace sluice::control {
namespace {

// The codec's own codes (parse_error, invalid_request) ride on a status as a
// payload, so DecodeRequest can return a plain absl::Status.
constexpr absl::string_view kCodeTypeUrl = "type.sluice/control.ErrorCode";

constexpr std::array<absl::string_view, 10> kCodeNames = {
    "parse_error",        "invalid_request",     "invalid_argument",
    "not_found",          "already_exists",      "key_reuse",
    "resource_exhausted", "encryption_required", "failed_precondition",
    "internal"};

// FailedPrecondition statuses whose code is in their message's prefix.
constexpr absl::string_view kKeyReusePrefix = "key_reuse: ";
constexpr absl::string_view kEncryptionRequiredPrefix = "encryption_required: ";

// Sent when even building an error reply fails (out of memory): a constant.
constexpr std::string_view kInternalReply =
    "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"internal\","
    "\"message\":\"internal error while handling the request\"}}\n";

absl::Status CodecError(ErrorCode code, absl::string_view message) {
  absl::Status status = absl::InvalidArgumentError(message);
  if (code != ErrorCode::kInvalidArgument) {
    const std::string_view name = ErrorCodeName(code);
    status.SetPayload(kCodeTypeUrl, absl::Cord(absl::string_view(name.data(), name.size())));
  }
  return status;
}

absl::Status InvalidArgument(absl::string_view path, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

template <typename String>
absl::string_view View(const String& s) {
  return absl::string_view(s.data(), s.size());
}

bool IsNameChar(char c, absl::string_view extra) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         extra.find(c) != absl::string_view::npos;
}

bool IsName(absl::string_view s, size_t max, absl::string_view extra) {
  return !s.empty() && s.size() <= max &&
         std::all_of(s.begin(), s.end(), [extra](char c) { return IsNameChar(c, extra); });
}

constexpr absl::string_view kSessionChars = "._@:-";
constexpr absl::string_view kInterfaceChars = "._-";

// A value from the request appears in a message only when it cannot be key
// material: short and made of name characters. A base64 key||salt is at
// least 38 characters and an SDES attribute has a space and a colon.
constexpr size_t kMaxQuotedBytes = 32;

bool Quotable(absl::string_view s) { return IsName(s, kMaxQuotedBytes, "._-"); }

std::string Quote(absl::string_view s) { return absl::StrCat("\"", s, "\""); }

// Checks that every member of `object` is in `known`; names the first that
// is not as `path.name` (or just `path` when the name is not quotable).
absl::Status CheckFields(const Json& object, absl::string_view path,
                         absl::Span<const absl::string_view> known, ErrorCode code) {
  for (auto it = object.begin(); it != object.end(); ++it) {
    const absl::string_view name = View(it.key());
    if (std::find(known.begin(), known.end(), name) != known.end()) continue;
    const std::string expected = absl::StrCat("; expected ", absl::StrJoin(known, ", "));
    if (!Quotable(name)) {
      return CodecError(code, absl::StrCat(path.empty() ? "request" : path,
                                           ": a field with an unexpected name", expected));
    }
    if (path.empty()) return CodecError(code, absl::StrCat(name, ": unknown field", expected));
    return CodecError(code, absl::StrCat(path, ".", name, ": unknown field", expected));
  }
  return absl::OkStatus();
}

const Json* Find(const Json& object, std::string_view name) {
  const auto it = object.find(name);
  return it == object.end() ? nullptr : &*it;
}

absl::Status ReadName(const Json& object, std::string_view field, absl::string_view path,
                      size_t max, absl::string_view extra, std::string* out) {
  const Json* v = Find(object, field);
  if (v == nullptr) return InvalidArgument(path, "required");
  const std::string what =
      absl::StrCat("must be a string of 1 to ", max, " characters from A-Z a-z 0-9 ", extra);
  if (!v->is_string()) return InvalidArgument(path, what);
  const auto& s = v->get_ref<const WipedString&>();
  if (!IsName(View(s), max, extra)) return InvalidArgument(path, what);
  out->assign(s.data(), s.size());
  return absl::OkStatus();
}

absl::Status ReadSessionName(const Json& request, std::string* out) {
  return ReadName(request, "session", "session", kMaxSessionNameBytes, kSessionChars, out);
}

absl::Status ReadEndpoint(const Json& v, absl::string_view path, packet::Endpoint* out) {
  std::optional<packet::Endpoint> endpoint;
  if (v.is_string()) endpoint = packet::Endpoint::Parse(View(v.get_ref<const WipedString&>()));
  if (!endpoint.has_value()) {
    return InvalidArgument(path,
                           "must be \"IP:port\", such as \"10.0.0.1:4000\" or \"[fd00::1]:4000\"");
  }
  *out = *endpoint;
  return absl::OkStatus();
}

// The shape of an SDES crypto attribute value, "[<tag> ]<suite> inline:...".
// The session manager parses it fully (key length, lifetime, MKI); here only
// what can be said without touching the key.
absl::Status CheckSdesShape(absl::string_view value, absl::string_view path) {
  absl::string_view rest = value;
  auto next_token = [&rest]() {
    const size_t end = std::min(rest.find(' '), rest.size());
    absl::string_view token = rest.substr(0, end);
    rest.remove_prefix(end);
    if (!rest.empty()) rest.remove_prefix(1);
    return token;
  };
  absl::string_view token = next_token();
  // RFC 4568 §9.1: an optional decimal tag first, as after "a=crypto:".
  if (!token.empty() && token.size() <= 10 &&
      std::all_of(token.begin(), token.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    token = next_token();
  }
  if (token.empty()) {
    return InvalidArgument(path, "must be an SDES crypto attribute value, "
                                 "\"<suite> inline:<base64 key||salt>[|lifetime][|MKI:length]\"");
  }
  if (!crypto::SuiteFromName(std::string_view(token.data(), token.size())).has_value()) {
    if (Quotable(token)) return InvalidArgument(path, absl::StrCat("unknown suite ", Quote(token)));
    return InvalidArgument(path, "does not start with a known suite name");
  }
  const absl::string_view params = next_token();
  if (!absl::StartsWith(params, "inline:") || params.size() == 7) {
    return InvalidArgument(path, "expected \"inline:<base64 key||salt>\" after the suite name");
  }
  return absl::OkStatus();
}

absl::Status DecodeCrypto(const Json& v, absl::string_view path, bool tx, CryptoSpec* out) {
  const absl::string_view forms =
      tx ? "{\"crypto\": \"<SDES attribute>\"}, {\"suite\": \"<name>\"}, {\"plain\": true} "
           "or {\"passthrough\": true}"
         : "{\"crypto\": \"<SDES attribute>\"}, {\"plain\": true} or {\"passthrough\": true}";
  if (!v.is_object()) return InvalidArgument(path, absl::StrCat("must be ", forms));
  if (absl::Status s = CheckFields(v, path, {"crypto", "suite", "plain", "passthrough"},
                                   ErrorCode::kInvalidArgument);
      !s.ok()) {
    return s;
  }
  if (v.size() != 1) return InvalidArgument(path, absl::StrCat("must be exactly one of ", forms));
  const auto member = v.begin();
  const WipedString& name = member.key();
  const Json& value = member.value();
  const std::string field = absl::StrCat(path, ".", View(name));
  if (name == "plain") {
    if (!value.is_boolean() || !value.get<bool>()) {
      return InvalidArgument(field, "must be true (leave it out to protect the stream)");
    }
    out->kind = CryptoSpec::Kind::kPlain;
    return absl::OkStatus();
  }
  if (name == "passthrough") {
    if (!value.is_boolean() || !value.get<bool>()) {
      return InvalidArgument(field, "must be true (leave it out to protect the stream)");
    }
    out->kind = CryptoSpec::Kind::kPassthrough;
    return absl::OkStatus();
  }
  if (name == "suite") {
    if (!tx) {
      return InvalidArgument(field, "only tx can have a generated key; rx takes the key the "
                                    "peer sends with, as \"crypto\"");
    }
    if (!value.is_string()) return InvalidArgument(field, "must be a suite name string");
    const auto& s = value.get_ref<const WipedString&>();
    const std::optional<crypto::Suite> suite = crypto::SuiteFromName(std::string_view(s));
    if (!suite.has_value()) {
      if (Quotable(View(s))) return InvalidArgument(field, absl::StrCat("unknown suite ", Quote(View(s))));
      return InvalidArgument(field, "unknown suite");
    }
    out->kind = CryptoSpec::Kind::kGenerate;
    out->suite = *suite;
    return absl::OkStatus();
  }
  // "crypto"
  if (!value.is_string()) return InvalidArgument(field, "must be a string");
  const auto& s = value.get_ref<const WipedString&>();
  if (absl::Status status = CheckSdesShape(View(s), field); !status.ok()) return status;
  out->kind = CryptoSpec::Kind::kSdes;
  out->sdes.assign(s.data(), s.size());
  return absl::OkStatus();
}

absl::Status ReadRocOnRekey(const Json& v, const std::string& path, RocOnRekey* out) {
  if (v == "auto") {
    *out = RocOnRekey::kAuto;
  } else if (v == "keep") {
    *out = RocOnRekey::kKeep;
  } else if (v == "reset") {
    *out = RocOnRekey::kReset;
  } else {
    return InvalidArgument(path, "must be \"auto\", \"keep\" or \"reset\"");
  }
  return absl::OkStatus();
}

// {"setup": "actpass"|"active"|"passive", "fingerprints": ["sha-256 AB:..", ...],
//  "local_setup": "active"|"passive" (optional)}; setup and fingerprints
// both left out when the peer answers later.
// The fingerprints' syntax and the two setups' agreement are the session
// manager's to check (RFC 8122 §5, RFC 4145 §4).
absl::Status DecodeDtls(const Json& v, const std::string& path, DtlsSpec* out) {
  if (!v.is_object()) return InvalidArgument(path, "must be {\"setup\": ..., \"fingerprints\": [...]}");
  if (absl::Status s = CheckFields(v, path, {"setup", "fingerprints", "local_setup"},
                                   ErrorCode::kInvalidArgument);
      !s.ok()) {
    return s;
  }
  const Json* setup = Find(v, "setup");
  const Json* fps = Find(v, "fingerprints");
  if (const Json* local = Find(v, "local_setup"); local != nullptr) {
    if (!(*local == "active" || *local == "passive")) {
      return InvalidArgument(path + ".local_setup", "must be \"active\" or \"passive\"");
    }
    out->local_setup = local->get<std::string>();
  }
  // Neither: Sluice offers, and the peer's answer comes in an update.
  if (setup == nullptr && fps == nullptr) return absl::OkStatus();
  if (setup == nullptr || !(*setup == "actpass" || *setup == "active" || *setup == "passive")) {
    return InvalidArgument(path + ".setup",
                           "required: the peer's a=setup, \"actpass\", \"active\" or \"passive\"");
  }
  out->setup = setup->get<std::string>();
  if (fps == nullptr || !fps->is_array() || fps->empty() || fps->size() > kMaxFingerprints) {
    return InvalidArgument(path + ".fingerprints",
                           absl::StrCat("required: 1 to ", kMaxFingerprints,
                                        " of the peer's a=fingerprint values"));
  }
  for (const Json& fp : *fps) {
    if (!fp.is_string() || fp.get_ref<const WipedString&>().empty() ||
        fp.get_ref<const WipedString&>().size() > kMaxFingerprintBytes) {
      return InvalidArgument(path + ".fingerprints",
                             "each must be a string such as \"sha-256 AB:CD:...\"");
    }
    const auto& s = fp.get_ref<const WipedString&>();
    out->fingerprints.emplace_back(s.data(), s.size());
  }
  return absl::OkStatus();
}

// RFC 8839 §5.4: ice-char is ALPHA / DIGIT / "+" / "/".
bool IsIceString(const Json& v, size_t min, size_t max) {
  if (!v.is_string()) return false;
  const auto& s = v.get_ref<const WipedString&>();
  if (s.size() < min || s.size() > max) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/';
  });
}

// {"ufrag": "...", "pwd": "..."} (both or neither), and "restart": true in
// an update.
absl::Status DecodeIce(const Json& v, const std::string& path, bool update, IceSpec* out) {
  if (!v.is_object()) return InvalidArgument(path, "must be an object ({} when the peer's credentials come later)");
  static constexpr absl::string_view kCreateFields[] = {"ufrag", "pwd"};
  static constexpr absl::string_view kUpdateFields[] = {"ufrag", "pwd", "restart"};
  if (absl::Status s = CheckFields(v, path, update ? absl::MakeConstSpan(kUpdateFields)
                                                   : absl::MakeConstSpan(kCreateFields),
                                   ErrorCode::kInvalidArgument);
      !s.ok()) {
    return s;
  }
  const Json* ufrag = Find(v, "ufrag");
  const Json* pwd = Find(v, "pwd");
  if ((ufrag == nullptr) != (pwd == nullptr)) {
    return InvalidArgument(path, "the peer's \"ufrag\" and \"pwd\" come together");
  }
  if (ufrag != nullptr) {
    if (!IsIceString(*ufrag, 4, 256)) {
      return InvalidArgument(path + ".ufrag", "must be 4 to 256 characters from A-Z a-z 0-9 + /");
    }
    if (!IsIceString(*pwd, 22, 256)) {
      return InvalidArgument(path + ".pwd", "must be 22 to 256 characters from A-Z a-z 0-9 + /");
    }
    const auto& u = ufrag->get_ref<const WipedString&>();
    const auto& p = pwd->get_ref<const WipedString&>();
    out->ufrag.assign(u.data(), u.size());
    out->pwd.assign(p.data(), p.size());
  }
  if (const Json* restart = Find(v, "restart"); restart != nullptr) {
    if (!restart->is_boolean()) return InvalidArgument(path + ".restart", "must be true or false");
    out->restart = restart->get<bool>();
  }
  return absl::OkStatus();
}

absl::Status DecodeLegKeys(const Json& v, const std::string& path, LegRequest* out);

absl::Status DecodeLeg(const Json& v, size_t index, LegRequest* out) {
  const std::string path = absl::StrCat("legs[", index, "]");
  if (!v.is_object()) return InvalidArgument(path, "must be an object");
  if (absl::Status s = CheckFields(v, path,
                                   {"name", "interface", "remote", "rtcp", "strict_source",
                                    "family", "rx", "tx", "roc_on_rekey", "aes192_kdf", "dtls",
                                    "ice"},
                                   ErrorCode::kInvalidArgument);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ReadName(v, "name", path + ".name", kMaxLegNameBytes, kSessionChars,
                                &out->name);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ReadName(v, "interface", path + ".interface", kMaxInterfaceNameBytes,
                                kInterfaceChars, &out->interface);
      !s.ok()) {
    return s;
  }
  if (const Json* remote = Find(v, "remote"); remote != nullptr && !remote->is_null()) {
    packet::Endpoint endpoint;
    if (absl::Status s = ReadEndpoint(*remote, path + ".remote", &endpoint); !s.ok()) return s;
    out->remote = endpoint;
  }
  if (const Json* rtcp = Find(v, "rtcp"); rtcp != nullptr) {
    if (*rtcp == "mux") {
      out->rtcp = RtcpMode::kMux;
    } else if (*rtcp == "separate") {
      out->rtcp = RtcpMode::kSeparate;
    } else {
      return InvalidArgument(path + ".rtcp", "must be \"mux\" or \"separate\"");
    }
  }
  if (const Json* roc = Find(v, "roc_on_rekey"); roc != nullptr) {
    if (absl::Status s = ReadRocOnRekey(*roc, path + ".roc_on_rekey", &out->roc_on_rekey);
        !s.ok()) {
      return s;
    }
  }
  if (const Json* strict = Find(v, "strict_source"); strict != nullptr) {
    if (!strict->is_boolean()) return InvalidArgument(path + ".strict_source", "must be true or false");
    out->strict_source = strict->get<bool>();
  }
  if (const Json* family = Find(v, "family"); family != nullptr) {
    if (*family == "ipv4") {
      out->family = 4;
    } else if (*family == "ipv6") {
      out->family = 6;
    } else {
      return InvalidArgument(path + ".family", "must be \"ipv4\" or \"ipv6\"");
    }
  }
  if (const Json* kdf = Find(v, "aes192_kdf"); kdf != nullptr) {
    out->aes192_kdf = kdf->is_string() ? crypto::ParseAes192Kdf(kdf->get<std::string>())
                                       : std::nullopt;
    if (!out->aes192_kdf) {
      return InvalidArgument(path + ".aes192_kdf", "must be \"rfc6188\" or \"libsrtp-legacy\"");
    }
  }
  if (const Json* ice = Find(v, "ice"); ice != nullptr) {
    if (absl::Status s = DecodeIce(*ice, path + ".ice", false, &out->ice.emplace()); !s.ok()) return s;
  }
  return DecodeLegKeys(v, path, out);
}

// rx and tx, or dtls in their place.
absl::Status DecodeLegKeys(const Json& v, const std::string& path, LegRequest* out) {
  if (const Json* dtls = Find(v, "dtls"); dtls != nullptr) {
    if (absl::Status s = DecodeDtls(*dtls, path + ".dtls", &out->dtls.emplace()); !s.ok()) return s;
    for (const char* side : {"rx", "tx"}) {
      if (Find(v, side) != nullptr) {
        return InvalidArgument(absl::StrCat(path, ".", side),
                               "not with \"dtls\": the handshake keys both directions");
      }
    }
    return absl::OkStatus();
  }
  for (const bool tx : {false, true}) {
    const char* side = tx ? "tx" : "rx";
    const Json* spec = Find(v, side);
    const std::string spec_path = absl::StrCat(path, ".", side);
    if (spec == nullptr) return InvalidArgument(spec_path, "required ({\"plain\": true} for none, or \"dtls\")");
    if (absl::Status s = DecodeCrypto(*spec, spec_path, tx, tx ? &out->tx : &out->rx); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status DecodeCreate(const Json& request, CreateRequest* out) {
  if (absl::Status s = ReadSessionName(request, &out->session); !s.ok()) return s;
  const Json* legs = Find(request, "legs");
  if (legs == nullptr) return InvalidArgument("legs", "required: an array of exactly 2 legs");
  if (!legs->is_array()) return InvalidArgument("legs", "must be an array of exactly 2 legs");
  if (legs->size() != 2) {
    return InvalidArgument("legs", absl::StrCat("must have exactly 2 legs, not ", legs->size()));
  }
  out->legs.resize(2);
  for (size_t i = 0; i < 2; ++i) {
    if (absl::Status s = DecodeLeg((*legs)[i], i, &out->legs[i]); !s.ok()) return s;
  }
  if (out->legs[0].name == out->legs[1].name) {
    return InvalidArgument("legs[1].name", "must differ from legs[0].name");
  }
  return absl::OkStatus();
}

absl::Status DecodeUpdate(const Json& request, UpdateRequest* out) {
  if (absl::Status s = ReadSessionName(request, &out->session); !s.ok()) return s;
  if (absl::Status s = ReadName(request, "leg", "leg", kMaxLegNameBytes, kSessionChars, &out->leg);
      !s.ok()) {
    return s;
  }
  const Json* rx = Find(request, "rx");
  const Json* tx = Find(request, "tx");
  const Json* remote = Find(request, "remote");
  const Json* dtls = Find(request, "dtls");
  const Json* ice = Find(request, "ice");
  if (rx == nullptr && tx == nullptr && remote == nullptr && dtls == nullptr && ice == nullptr) {
    return CodecError(ErrorCode::kInvalidArgument,
                      "session.update needs at least one of \"rx\", \"tx\", \"remote\", "
                      "\"dtls\" or \"ice\"");
  }
  if (dtls != nullptr) {
    if (rx != nullptr || tx != nullptr) {
      return InvalidArgument("dtls", "not with \"rx\" or \"tx\": the handshake keys both directions");
    }
    if (absl::Status s = DecodeDtls(*dtls, "dtls", &out->dtls.emplace()); !s.ok()) return s;
  }
  if (ice != nullptr) {
    if (absl::Status s = DecodeIce(*ice, "ice", true, &out->ice.emplace()); !s.ok()) return s;
  }
  if (rx != nullptr) {
    if (absl::Status s = DecodeCrypto(*rx, "rx", false, &out->rx.emplace()); !s.ok()) return s;
  }
  if (tx != nullptr) {
    if (absl::Status s = DecodeCrypto(*tx, "tx", true, &out->tx.emplace()); !s.ok()) return s;
  }
  if (remote != nullptr) {
    packet::Endpoint endpoint;
    if (absl::Status s = ReadEndpoint(*remote, "remote", &endpoint); !s.ok()) return s;
    out->remote = endpoint;
  }
  if (const Json* roc = Find(request, "roc_on_rekey"); roc != nullptr) {
    if (absl::Status s = ReadRocOnRekey(*roc, "roc_on_rekey", &out->roc_on_rekey.emplace());
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status ReadCount(const Json& request, std::string_view field, uint64_t max, uint64_t* out) {
  const Json* v = Find(request, field);
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_number_unsigned() || v->get<uint64_t>() > max) {
    return InvalidArgument(View(field), absl::StrCat("must be an integer from 0 to ", max));
  }
  *out = v->get<uint64_t>();
  return absl::OkStatus();
}

struct OpSpec {
  std::string_view name;
  std::vector<absl::string_view> fields;
  absl::Status (*decode)(const Json& request, RequestPayload* out);
};

const std::array<OpSpec, 9> kOps = {{
    {"ping", {"id", "op"},
     [](const Json&, RequestPayload* out) {
       out->emplace<PingRequest>();
       return absl::OkStatus();
     }},
    {"session.create", {"id", "op", "session", "legs"},
     [](const Json& r, RequestPayload* out) {
       return DecodeCreate(r, &out->emplace<CreateRequest>());
     }},
    {"session.update",
     {"id", "op", "session", "leg", "rx", "tx", "remote", "roc_on_rekey", "dtls", "ice"},
     [](const Json& r, RequestPayload* out) {
       return DecodeUpdate(r, &out->emplace<UpdateRequest>());
     }},
    {"session.delete", {"id", "op", "session"},
     [](const Json& r, RequestPayload* out) {
       return ReadSessionName(r, &out->emplace<DeleteRequest>().session);
     }},
    {"session.get", {"id", "op", "session"},
     [](const Json& r, RequestPayload* out) {
       return ReadSessionName(r, &out->emplace<GetRequest>().session);
     }},
    {"session.list", {"id", "op", "offset", "limit"},
     [](const Json& r, RequestPayload* out) {
       ListRequest& list = out->emplace<ListRequest>();
       if (absl::Status s = ReadCount(r, "offset", UINT64_MAX, &list.offset); !s.ok()) return s;
       return ReadCount(r, "limit", kMaxListLimit, &list.limit);
     }},
    {"stats", {"id", "op"},
     [](const Json&, RequestPayload* out) {
       out->emplace<StatsRequest>();
       return absl::OkStatus();
     }},
    {"ha.rekek", {"id", "op"},
     [](const Json&, RequestPayload* out) {
       out->emplace<HaRekekRequest>();
       return absl::OkStatus();
     }},
    {"ha.promote", {"id", "op"},
     [](const Json&, RequestPayload* out) {
       out->emplace<HaPromoteRequest>();
       return absl::OkStatus();
     }},
}};

std::string OpNames() {
  std::string names;
  for (const OpSpec& op : kOps) {
    absl::StrAppend(&names, names.empty() ? "" : ", ", View(op.name));
  }
  return names;
}

// Compact JSON and '\n', in a std::string of exactly that size (so a caller
// that wipes it wipes the only copy).
std::string Line(const Json& value) {
  const WipedString text = value.dump(-1, ' ', false, nlohmann::detail::error_handler_t::replace);
  std::string line;
  line.reserve(text.size() + 1);
  line.append(text.data(), text.size());
  line.push_back('\n');
  return line;
}

const char* RtcpName(RtcpMode mode) { return mode == RtcpMode::kMux ? "mux" : "separate"; }

Json Counts(const std::vector<std::pair<std::string, uint64_t>>& counts) {
  Json object = Json::object();
  for (const auto& [name, count] : counts) object[WipedString(name.data(), name.size())] = count;
  return object;
}

}  // namespace

std::string_view ErrorCodeName(ErrorCode code) noexcept {
  const auto index = static_cast<size_t>(code);
  const absl::string_view name = index < kCodeNames.size() ? kCodeNames[index] : "internal";
  return std::string_view(name.data(), name.size());
}

ErrorCode ErrorCodeFromStatus(const absl::Status& status) {
  if (const absl::optional<absl::Cord> payload = status.GetPayload(kCodeTypeUrl);
      payload.has_value()) {
    for (size_t i = 0; i < kCodeNames.size(); ++i) {
      if (*payload == kCodeNames[i]) return static_cast<ErrorCode>(i);
    }
  }
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument: return ErrorCode::kInvalidArgument;
    case absl::StatusCode::kNotFound: return ErrorCode::kNotFound;
    case absl::StatusCode::kAlreadyExists: return ErrorCode::kAlreadyExists;
    case absl::StatusCode::kResourceExhausted: return ErrorCode::kResourceExhausted;
    case absl::StatusCode::kFailedPrecondition:
      if (absl::StartsWith(status.message(), kKeyReusePrefix)) return ErrorCode::kKeyReuse;
      if (absl::StartsWith(status.message(), kEncryptionRequiredPrefix)) {
        return ErrorCode::kEncryptionRequired;
      }
      return ErrorCode::kFailedPrecondition;
    default: return ErrorCode::kInternal;
  }
}

std::string ErrorMessageFromStatus(const absl::Status& status) {
  absl::string_view message = status.message();
  if (status.code() == absl::StatusCode::kFailedPrecondition) {
    if (!absl::ConsumePrefix(&message, kKeyReusePrefix)) {
      absl::ConsumePrefix(&message, kEncryptionRequiredPrefix);
    }
  }
  if (message.empty()) return std::string(ErrorCodeName(ErrorCodeFromStatus(status)));
  return std::string(message);
}

namespace {

absl::StatusOr<Request> Decode(absl::string_view line, Json* id) {
  if (line.size() > kMaxLineBytes) {
    return CodecError(ErrorCode::kInvalidRequest,
                      absl::StrCat("line longer than ", kMaxLineBytes, " bytes"));
  }
  // JSON leaves repeated names undefined (RFC 8259 §4) and the parser would
  // keep the last: refuse them instead, so every reader of a request sees
  // the same values.
  std::vector<absl::flat_hash_set<WipedString>> open_objects;
  std::optional<WipedString> repeated;
  const auto find_repeats = [&](int, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start: open_objects.emplace_back(); break;
      case Json::parse_event_t::object_end: open_objects.pop_back(); break;
      case Json::parse_event_t::key:
        if (!repeated.has_value() && !open_objects.empty() &&
            !open_objects.back().insert(parsed.get_ref<const WipedString&>()).second) {
          repeated = parsed.get_ref<const WipedString&>();
        }
        break;
      default: break;
    }
    return true;
  };
  Json doc;
  try {
    doc = Json::parse(line.begin(), line.end(), find_repeats);
  } catch (const Json::parse_error& e) {
    // e.what() quotes the input near the error, which may be a key: only the
    // position goes into the message.
    return CodecError(ErrorCode::kParseError,
                      absl::StrCat("not valid JSON (syntax error at byte ", e.byte, ")"));
  }
  if (!doc.is_object()) {
    return CodecError(ErrorCode::kParseError, "a request must be a JSON object");
  }
  if (repeated.has_value()) {
    return CodecError(ErrorCode::kInvalidRequest,
                      absl::StrCat("a field appears twice in one object",
                                   Quotable(View(*repeated)) ? ": " + Quote(View(*repeated)) : ""));
  }
  const Json* id_value = Find(doc, "id");
  if (id_value == nullptr) {
    return CodecError(ErrorCode::kInvalidRequest,
                      "id: required, any JSON scalar; the reply echoes it");
  }
  if (id_value->is_structured()) {
    return CodecError(ErrorCode::kInvalidRequest,
                      "id: must be a string, a number, true, false or null");
  }
  if (id != nullptr) *id = *id_value;
  const Json* op_value = Find(doc, "op");
  if (op_value == nullptr) {
    return CodecError(ErrorCode::kInvalidRequest,
                      absl::StrCat("op: required, one of ", OpNames()));
  }
  if (!op_value->is_string()) {
    return CodecError(ErrorCode::kInvalidRequest,
                      absl::StrCat("op: must be a string, one of ", OpNames()));
  }
  const auto& op_name = op_value->get_ref<const WipedString&>();
  const auto op = std::find_if(kOps.begin(), kOps.end(),
                               [&op_name](const OpSpec& o) { return o.name == op_name; });
  if (op == kOps.end()) {
    return CodecError(ErrorCode::kInvalidRequest,
                      absl::StrCat("op: unknown operation",
                                   Quotable(View(op_name)) ? " " + Quote(View(op_name)) : "",
                                   "; expected one of ", OpNames()));
  }
  if (absl::Status s = CheckFields(doc, "", op->fields, ErrorCode::kInvalidRequest); !s.ok()) {
    return s;
  }
  Request request;
  request.id = *id_value;
  request.op = std::string(op->name);
  if (absl::Status s = op->decode(doc, &request.payload); !s.ok()) return s;
  return request;
}

}  // namespace

absl::StatusOr<Request> DecodeRequest(absl::string_view line, Json* id) {
  try {
    if (id != nullptr) *id = nullptr;
    return Decode(line, id);
  } catch (...) {
    // Only allocation can throw here: the parser's own errors are caught above.
    return CodecError(ErrorCode::kInternal, "out of memory while decoding the request");
  }
}

std::string EncodeOk(const Json& id, const Json& body) {
  Json reply = Json::object();
  reply["id"] = id;
  reply["ok"] = true;
  if (body.is_object()) {
    for (auto it = body.begin(); it != body.end(); ++it) reply[it.key()] = it.value();
  }
  return Line(reply);
}

std::string EncodeError(const Json& id, ErrorCode code, absl::string_view message) {
  Json reply = Json::object();
  reply["id"] = id;
  reply["ok"] = false;
  Json& error = reply["error"];
  const std::string_view name = ErrorCodeName(code);
  error["code"] = WipedString(name.data(), name.size());
  error["message"] = WipedString(message.data(), message.size());
  return Line(reply);
}

// A leg's DTLS and ICE state. The ICE password goes only where a generated
// tx key does (create and update replies): the SBC puts it in its SDP.
void EncodeHandshake(const LegInfo& leg, bool with_secrets, Json& j) {
  if (leg.dtls.has_value()) {
    const LegInfo::Dtls& d = *leg.dtls;
    Json& out = j["dtls"] = Json{{"state", d.state}, {"setup", d.setup},
                                 {"fingerprint", d.fingerprint}};
    out["profile"] = d.profile.empty() ? Json(nullptr) : Json(d.profile);
    out["reason"] = d.reason.empty() ? Json(nullptr) : Json(d.reason);
    out["received"] = d.counts.taken;
    out["dropped"] = Counts(d.counts.dropped);
  }
  if (leg.ice.has_value()) {
    const LegInfo::Ice& i = *leg.ice;
    Json& out = j["ice"] = Json{{"ufrag", i.ufrag}, {"candidates", i.candidates}};
    if (with_secrets) out["pwd"] = WipedString(i.pwd.data(), i.pwd.size());
    if (i.selected.has_value()) {
      const std::string selected = i.selected->ToString();
      out["selected"] = WipedString(selected.data(), selected.size());
    } else {
      out["selected"] = nullptr;
    }
    out["consent_age_ms"] = i.consent_age_ms ? Json(*i.consent_age_ms) : Json(nullptr);
    out["answered"] = i.counts.taken;
    out["dropped"] = Counts(i.counts.dropped);
  }
}

Json EncodeSessionInfo(const SessionInfo& info, bool with_tx_crypto) {
  Json body = Json::object();
  body["session"] = WipedString(info.session.data(), info.session.size());
  body["hold"] = info.hold;
  body["encryption"] = info.encryption;
  Json& legs = body["legs"] = Json::array();
  for (const LegInfo& leg : info.legs) {
    Json j = Json::object();
    j["name"] = WipedString(leg.name.data(), leg.name.size());
    j["interface"] = WipedString(leg.interface.data(), leg.interface.size());
    const std::string local = leg.local.ToString();
    j["local"] = WipedString(local.data(), local.size());
    if (leg.remote.has_value()) {
      const std::string remote = leg.remote->ToString();
      j["remote"] = WipedString(remote.data(), remote.size());
    } else {
      j["remote"] = nullptr;
    }
    j["remote_learned"] = leg.remote_learned;
    j["rtcp"] = RtcpName(leg.rtcp);
    j["rx_suite"] = WipedString(leg.rx_suite.data(), leg.rx_suite.size());
    j["tx_suite"] = WipedString(leg.tx_suite.data(), leg.tx_suite.size());
    j["encryption"] = leg.encryption;
    const LegCounters& c = leg.counters;
    j["counters"] = Json{{"rx_packets", c.rx_packets},       {"rx_bytes", c.rx_bytes},
                         {"tx_packets", c.tx_packets},       {"tx_bytes", c.tx_bytes},
                         {"auth_failures", c.auth_failures}, {"replay_drops", c.replay_drops},
                         {"other_drops", c.other_drops},     {"remote_changes", c.remote_changes},
                         {"rx_rtcp_packets", c.rx_rtcp_packets},
                         {"rx_rtcp_bytes", c.rx_rtcp_bytes},
                         {"tx_rtcp_packets", c.tx_rtcp_packets},
                         {"tx_rtcp_bytes", c.tx_rtcp_bytes}};
    Json used = Json::object();
    if (leg.rx_key_used_percent) used["rx"] = *leg.rx_key_used_percent;
    if (leg.tx_key_used_percent) used["tx"] = *leg.tx_key_used_percent;
    j["key_used_percent"] = std::move(used);
    j["rekey_needed"] = leg.rekey_needed;
    j["rx"]["roc_after_rekey"] = leg.roc_after_rekey;
    if (with_tx_crypto && leg.tx_crypto.has_value()) {
      j["tx"]["crypto"] = WipedString(leg.tx_crypto->data(), leg.tx_crypto->size());
    }
    EncodeHandshake(leg, with_tx_crypto, j);
    legs.push_back(std::move(j));
  }
  return body;
}

Json EncodeListResult(const ListResult& result) {
  Json body = Json::object();
  body["total"] = result.total;
  Json& sessions = body["sessions"] = Json::array();
  for (const SessionInfo& info : result.sessions) {
    sessions.push_back(EncodeSessionInfo(info, /*with_tx_crypto=*/false));
  }
  return body;
}

Json EncodePing(absl::string_view version, uint32_t workers) {
  Json body = Json::object();
  body["version"] = WipedString(version.data(), version.size());
  body["workers"] = workers;
  return body;
}

// stats' "ha" object (docs/ha.md).
Json HaJson(const HaStats& ha) {
  return Json{{"connected", ha.connected},
              {"sessions", ha.sessions},
              {"backlog", ha.backlog},
              {"lag_ms", ha.lag_ms},
              {"writes", ha.writes},
              {"deletes", ha.deletes},
              {"write_errors", ha.write_errors},
              {"connects", ha.connects},
              {"disconnects", ha.disconnects},
              {"checkpoints", ha.checkpoints},
              {"not_replicated", ha.not_replicated},
              {"restored", ha.restored},
              {"refused", Json{{"corrupt", ha.refused_corrupt},
                               {"unknown_interface", ha.refused_unknown_interface},
                               {"other", ha.refused_other}}},
              {"last_error", WipedString(ha.last_error.data(), ha.last_error.size())},
              {"role", ha.role},
              {"fenced", ha.fenced},
              {"mirrored", ha.mirrored},
              {"mirror_refused", ha.mirror_refused},
              {"last_update_age_ms", ha.last_update_age_ms},
              {"heartbeat_age_ms", ha.heartbeat_age_ms}};
}

namespace {

Json WorkersJson(const std::vector<WorkerStats>& workers) {
  Json out = Json::array();
  for (const WorkerStats& w : workers) {
    Json j = Json::object();
    j["id"] = w.id;
    j["lcore"] = w.lcore;
    j["rx_packets"] = w.rx_packets;
    j["tx_packets"] = w.tx_packets;
    j["busy_cycles"] = w.busy_cycles;
    j["idle_cycles"] = w.idle_cycles;
    j["handshake_packets"] = w.handshake_packets;
    j["neighbor_held"] = w.neighbor_held;
    j["drops"] = Counts(w.drops);
    j["quiescent_ms_ago"] = w.quiescent_ms_ago;
    j["stalled"] = w.stalled;
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace

Json EncodeStats(const Stats& stats, const ControlCounters* control) {
  Json body = Json::object();
  body["sessions"] = stats.sessions;
  body["sessions_reclaiming"] = stats.sessions_reclaiming;
  body["sessions_timed_out"] = Json{{"timeout", stats.timed_out.timeout},
                                    {"silent_timeout", stats.timed_out.silent_timeout},
                                    {"final_timeout", stats.timed_out.final_timeout}};
  body["webrtc"] = Json{{"dtls_keyed", stats.webrtc.dtls_keyed},
                        {"dtls_failed", stats.webrtc.dtls_failed},
                        {"ice_selected", stats.webrtc.ice_selected},
                        {"ice_consent_lost", stats.webrtc.ice_consent_lost},
                        {"handshake_thread", Counts(stats.webrtc.thread)}};
  if (stats.memory) {
    body["memory"] = Json{{"session_state_bytes", stats.memory->session_state_bytes},
                          {"session_state_blocks", stats.memory->session_state_blocks},
                          {"mapped_bytes", stats.memory->mapped_bytes}};
  }
  Json& ports = body["ports"] = Json::array();
  for (const PortStats& p : stats.ports) {
    ports.push_back(Json{{"interface", WipedString(p.interface.data(), p.interface.size())},
                         {"rx_packets", p.rx_packets},
                         {"rx_bytes", p.rx_bytes},
                         {"tx_packets", p.tx_packets},
                         {"tx_bytes", p.tx_bytes},
                         {"rx_missed", p.rx_missed},
                         {"rx_errors", p.rx_errors},
                         {"rx_no_mbuf", p.rx_no_mbuf},
                         {"tx_errors", p.tx_errors}});
  }
  body["workers"] = WorkersJson(stats.workers);
  body["neighbor_hold"] = Json{{"waiting", stats.neighbor_hold.waiting},
                               {"sent", stats.neighbor_hold.sent},
                               {"dropped", stats.neighbor_hold.dropped}};
  body["drops"] = Counts(stats.drops);
  body["keys_near_limit"] = stats.keys_near_limit;
  Json& rekey = body["rekey_needed"] = Json::array();
  for (const RekeyNeeded& r : stats.rekey_needed) {
    rekey.push_back(Json{{"session", WipedString(r.session.data(), r.session.size())},
                         {"leg", WipedString(r.leg.data(), r.leg.size())},
                         {"direction", r.direction},
                         {"used_percent", r.used_percent}});
  }
  if (stats.ha) body["ha"] = HaJson(*stats.ha);
  if (control != nullptr) {
    body["control"] = Json{{"connections", control->connections_open},
                           {"connections_accepted", control->connections_accepted},
                           {"connections_refused_limit", control->connections_refused_limit},
                           {"connections_refused_credentials",
                            control->connections_refused_credentials},
                           {"requests", control->requests},
                           {"errors", control->errors},
                           {"lines_too_long", control->lines_too_long}};
    if (control->tls) {
      Json tls = Json{{"connections_accepted", control->tls_connections_accepted},
                      {"handshakes_failed", control->tls_handshakes_failed},
                      {"handshake_timeouts", control->tls_handshake_timeouts},
                      {"idle_timeouts", control->tls_idle_timeouts},
                      {"certificate_not_after", control->tls_certificate_not_after}};
      if (!control->tls_certificate_warning.empty()) {
        tls["warning"] = WipedString(control->tls_certificate_warning.data(),
                                     control->tls_certificate_warning.size());
      }
      body["control"]["tls"] = std::move(tls);
    }
  }
  return body;
}

namespace {

// Calls the operation a request names; the reply body or the error.
struct Dispatch {
  Operations& operations;
  const ControlCounters* counters;

  absl::StatusOr<Json> operator()(const PingRequest&) const {
    return EncodePing(operations.Version(), operations.Workers());
  }
  absl::StatusOr<Json> operator()(const CreateRequest& r) const {
    return Session(operations.Create(r), /*with_tx_crypto=*/true);
  }
  absl::StatusOr<Json> operator()(const UpdateRequest& r) const {
    return Session(operations.Update(r), /*with_tx_crypto=*/true);
  }
  absl::StatusOr<Json> operator()(const DeleteRequest& r) const {
    return Session(operations.Delete(r.session), false);
  }
  absl::StatusOr<Json> operator()(const GetRequest& r) const {
    return Session(operations.Get(r.session), false);
  }
  absl::StatusOr<Json> operator()(const ListRequest& r) const {
    return EncodeListResult(operations.List(r.offset, r.limit));
  }
  absl::StatusOr<Json> operator()(const StatsRequest&) const {
    return EncodeStats(operations.GetStats(), counters);
  }
  absl::StatusOr<Json> operator()(const HaRekekRequest&) const {
    absl::StatusOr<uint64_t> resealed = operations.HaRekek();
    if (!resealed.ok()) return resealed.status();
    return Json{{"resealed", *resealed}};
  }
  absl::StatusOr<Json> operator()(const HaPromoteRequest&) const {
    absl::StatusOr<uint64_t> installed = operations.HaPromote();
    if (!installed.ok()) return installed.status();
    return Json{{"promoted", true}, {"sessions", *installed}};
  }

  static absl::StatusOr<Json> Session(const absl::StatusOr<SessionInfo>& info, bool with_tx) {
    if (!info.ok()) return info.status();
    return EncodeSessionInfo(*info, with_tx);
  }
};

std::string ErrorReply(const Json& id, const absl::Status& status, ControlCounters* counters) {
  if (counters != nullptr) ++counters->errors;
  return EncodeError(id, ErrorCodeFromStatus(status), ErrorMessageFromStatus(status));
}

}  // namespace

std::string HandleLine(Operations& operations, absl::string_view line, ControlCounters* counters) {
  if (counters != nullptr) ++counters->requests;
  try {
    Json id;
    absl::StatusOr<Request> request = DecodeRequest(line, &id);
    if (!request.ok()) return ErrorReply(id, request.status(), counters);
    absl::StatusOr<Json> body = std::visit(Dispatch{operations, counters}, request->payload);
    if (!body.ok()) return ErrorReply(id, body.status(), counters);
    return EncodeOk(id, *body);
  } catch (...) {
    // Out of memory, or an exception from an Operations implementation.
    if (counters != nullptr) ++counters->errors;
    try {
      return std::string(kInternalReply);
    } catch (...) {
      std::terminate();
    }
  }
}

}  // namespace sluice::control
