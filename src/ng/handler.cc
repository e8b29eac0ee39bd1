#include "sluice/ng/handler.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sluice/memory/wiping_allocator.h"
#include "sluice/ng/flags.h"
#include "sluice/ng/webrtc_media.h"
#include "sluice/srtp/master_key.h"
#include "sluice/srtp/sdes.h"
#include "handler_state.h"

namespace sluice::ng {

using control::CryptoSpec;

namespace {

constexpr const char* kLegNames[2] = {"a", "b"};
constexpr std::string_view kSessionChars = "._@:-";
constexpr size_t kMaxCallIdForName = 100;

std::string Str(const Value* v) { return v && v->is_string() ? std::string(v->str()) : std::string(); }

bool RtpProfile(std::string_view proto) {
  return proto == "RTP/AVP" || proto == "RTP/SAVP" || proto == "RTP/AVPF" || proto == "RTP/SAVPF" ||
         proto == "UDP/TLS/RTP/SAVP" || proto == "UDP/TLS/RTP/SAVPF";
}

bool DtlsProfile(std::string_view proto) {
  return proto == "UDP/TLS/RTP/SAVP" || proto == "UDP/TLS/RTP/SAVPF";
}

// Sluice's send key for one suite, as an SDES attribute value.
absl::StatusOr<String> GenerateKey(crypto::Suite suite) {
  absl::StatusOr<srtp::SdesCrypto> crypto = srtp::GenerateSdesCrypto(suite);
  if (!crypto.ok()) return crypto.status();
  std::string text = srtp::FormatSdesCrypto(*crypto);
  String out(text.data(), text.size());
  memory::WipeString(text);
  return out;
}

uint64_t SteadyMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// A reply's warnings and error reasons stay short whatever the request
// held (unknown keys are named in them).
constexpr size_t kMaxReasonBytes = 480;
std::string Bounded(std::string text) {
  if (text.size() > kMaxReasonBytes) {
    text.resize(kMaxReasonBytes - 3);
    text += "...";
  }
  return text;
}

CryptoSpec Sdes(const String& value) {
  CryptoSpec spec;
  spec.kind = CryptoSpec::Kind::kSdes;
  spec.sdes.assign(value.data(), value.size());
  return spec;
}

}  // namespace

std::string SessionName(std::string_view call_id, size_t index, size_t branch) {
  bool plain = !call_id.empty() && call_id.size() <= kMaxCallIdForName;
  for (char c : call_id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    kSessionChars.find(c) != std::string_view::npos;
    plain = plain && ok;
  }
  std::string base;
  if (plain) {
    base = std::string(call_id);
  } else {
    // Call-IDs (RFC 3261 §25.1 "word") may hold characters a session name
    // cannot: a digest names those sessions instead.
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(call_id.data()), call_id.size(), digest);
    base = "ng-";
    static constexpr char kHex[] = "0123456789abcdef";
    for (int i = 0; i < 16; ++i) {
      base += kHex[digest[i] >> 4];
      base += kHex[digest[i] & 15];
    }
  }
  if (branch != 0) absl::StrAppend(&base, ":b", branch);
  return index == 0 ? base : absl::StrCat(base, ":", index);
}

struct Handler::Request {
  std::string command, call_id, from_tag, to_tag, via_branch;
  std::optional<int64_t> delete_delay_s;
  std::map<std::string, Value> rtpp;  // what "rtpp-flags" said, merged with the keys
  bool supports_load_limit = false;
  const Value* sdp = nullptr;
  std::set<std::string> flags;
  std::vector<std::string> sdes, rtcp_mux, replace, direction;
  std::string transport, interface, ice, dtls;
  WebrtcFlags webrtc;  // from ice and dtls
  std::optional<packet::IpAddress> received_from;
  // "address-family" (4, 6; 0: not given): the family of the leg that the
  // rewritten SDP advertises; "media-address": the address written into it
  // instead of that leg's own.
  uint8_t address_family = 0;
  std::optional<packet::IpAddress> media_address;
  std::vector<std::string> warnings;

  bool Has(const std::set<std::string>& set, const char* f) const { return set.count(f) > 0; }
  bool Flag(const char* f) const { return flags.count(f) > 0; }
  // The rollover counter rule the sender of this SDP keeps on a re-key, if
  // a flag forces one (SDES-ROC-reset: ROC 0 with every new key, as MS Teams
  // and FreeSWITCH do; SDES-ROC-keep: RFC 3711's rule); none: automatic.
  std::optional<control::RocOnRekey> RocRule() const {
    if (Flag("SDES-ROC-reset")) return control::RocOnRekey::kReset;
    if (Flag("SDES-ROC-keep")) return control::RocOnRekey::kKeep;
    return std::nullopt;
  }
  bool RtcpMux(const char* f) const {
    return std::find(rtcp_mux.begin(), rtcp_mux.end(), f) != rtcp_mux.end();
  }
  // Where media comes from when not from the SDP's address: where the SDP
  // came from, only with "SIP-source-address" (rtpengine's "SIP source
  // address"; "trust-address", its opposite, is the default as there).
  std::optional<packet::IpAddress> MediaSource() const {
    return Flag("SIP-source-address") && !Flag("trust-address") ? received_from : std::nullopt;
  }
  // What besides the SDP shapes the rewritten SDP, for the repeat digests.
  std::string Presentation() const {
    return absl::StrCat(address_family, media_address ? media_address->ToString() : "");
  }
};

// What an answer changes in one media section's session.
struct Handler::AnswerUpdates {
  control::UpdateRequest answerer_update, offerer_update;
  // What the peers' SDPs gave the legs, recorded once the updates applied.
  std::optional<PeerTransport> answerer_peer, offerer_peer;
};

namespace {

// A list of strings from a bencoded list (or a single string); what is not a
// string becomes a warning.
std::vector<std::string> Strings(const Value* v, std::string_view key,
                                 std::vector<std::string>& warnings) {
  std::vector<std::string> out;
  if (v == nullptr) return out;
  if (v->is_string()) {
    out.emplace_back(v->str());
    return out;
  }
  if (!v->is_list()) {
    warnings.push_back(absl::StrCat(std::string(key), ": not a list"));
    return out;
  }
  for (const Value& item : v->as_list()) {
    if (item.is_string()) {
      out.emplace_back(item.str());
    } else {
      warnings.push_back(absl::StrCat(std::string(key), ": non-string item ignored"));
    }
  }
  return out;
}

Value Error(Value& reply, std::string_view reason) {
  reply.Set("result", "error");
  reply.Set("error-reason", Bounded(std::string(reason)));
  return std::move(reply);
}

Value Error(Value& reply, const absl::Status& status) {
  return Error(reply, std::string_view(status.message().data(), status.message().size()));
}

RewriteOptions RewriteOptionsFor(const std::vector<std::string>& replace) {
  RewriteOptions options;
  options.replace_origin = std::find(replace.begin(), replace.end(), "origin") != replace.end();
  return options;
}

// Where a peer's media goes for section `i`: the SDP's address (or
// `media_source` in its place) and port; none while the address is unset or
// 0.0.0.0 (on hold).
std::optional<packet::Endpoint> PeerEndpoint(const Sdp& sdp, size_t i,
                                             const std::optional<packet::IpAddress>& media_source) {
  std::optional<packet::IpAddress> ip = sdp.Address(i);
  if (ip && media_source) ip = media_source;
  if (!ip || ip->unset() || (ip->is_v4() && ip->v4_host_order() == 0)) return std::nullopt;
  return packet::Endpoint{*ip, sdp.media[i].port};
}

// The answer's a=crypto (the first, in the answer's order) that names one
// Sluice offered by tag and suite, and Sluice's own line of that tag; nulls
// when none does.
std::pair<const SdpCrypto*, const SdpCrypto*> PickAnsweredCrypto(
    const std::vector<SdpCrypto>& answered, const std::vector<SdpCrypto>& offered) {
  for (const SdpCrypto& c : answered) {
    const SdpCrypto* ours = nullptr;
    for (const SdpCrypto& mine : offered) {
      if (mine.tag == c.tag && mine.suite_name == c.suite_name) ours = &mine;
    }
    if (ours != nullptr) return {&c, ours};
  }
  return {nullptr, nullptr};
}

// RFC 4145 §4: one side is active, the other passive. Found before any
// update is applied (the session manager would refuse it half way).
absl::Status BothSides(size_t i, const std::string& setup) {
  return absl::InvalidArgumentError(absl::StrCat(
      "media section ", i + 1, ": DTLS=", setup, " and the peer's a=setup:", setup,
      ": both sides are ", setup, " (RFC 4145 §4: one side is active, the other passive)"));
}

// The fingerprint of an SDES key (none for other kinds), or why it does
// not parse.
absl::StatusOr<std::optional<srtp::KeyFingerprint>> FingerprintOf(
    const std::optional<CryptoSpec>& spec) {
  if (!spec || spec->kind != CryptoSpec::Kind::kSdes) {
    return std::optional<srtp::KeyFingerprint>();
  }
  absl::StatusOr<srtp::SdesCrypto> parsed = srtp::ParseSdesCrypto(spec->sdes);
  if (!parsed.ok()) return parsed.status();
  return std::optional<srtp::KeyFingerprint>(srtp::KeyFingerprint(parsed->key));
}

}  // namespace

// Notes a key the session manager took for one direction of a leg.
void Handler::RememberKeys(Stream& stream, int leg, const std::optional<CryptoSpec>& rx,
                           const std::optional<CryptoSpec>& tx) {
  int dir = 0;
  for (const std::optional<CryptoSpec>* spec : {&rx, &tx}) {
    absl::StatusOr<std::optional<srtp::KeyFingerprint>> fp = FingerprintOf(*spec);
    std::optional<srtp::KeyFingerprint>& in_use = stream.in_use[leg][dir++];
    if (!fp.ok() || !fp->has_value() || (in_use && in_use->Matches(**fp))) continue;
    stream.used_keys.push_back(**fp);
    in_use = *fp;
  }
}

Handler::Handler(control::Operations& operations, HandlerOptions options)
    : operations_(operations), options_(std::move(options)) {
  if (!options_.now_ms) options_.now_ms = SteadyMs;
}

void Handler::ExpireUnanswered() {
  const uint64_t now = options_.now_ms();
  while (!unanswered_.empty() && unanswered_.front().first + options_.offer_timeout_ms <= now) {
    auto found = calls_.find(unanswered_.front().second);
    // Only the entry of the call's latest unanswered offer deletes it.
    if (found != calls_.end() && !found->second.answered &&
        found->second.offered_at_ms == unanswered_.front().first) {
      for (Branch& b : found->second.branches) DeleteSessions(b);
      calls_.erase(found);
    }
    unanswered_.pop_front();
  }
}

void Handler::DeleteSessions(Branch& branch) {
  for (const Stream& s : branch.streams) {
    if (s.session.empty()) continue;
    operations_.Delete(s.session).IgnoreError();
    session_calls_.erase(s.session);
  }
  branch.streams.clear();
  branch.offered.clear();
  branch.offer_reply.clear();
  branch.answer_reply.clear();
  branch.gone = true;
}

void Handler::ScheduleOrDelete(const std::string& call_id, std::optional<size_t> branch,
                               uint64_t delay_ms) {
  if (delay_ms > 0) {
    pending_deletes_.push_back({options_.now_ms() + delay_ms, call_id, branch});
    return;
  }
  auto found = calls_.find(call_id);
  if (found == calls_.end()) return;
  Call& call = found->second;
  if (branch && *branch < call.branches.size()) DeleteSessions(call.branches[*branch]);
  // The offerer's side goes with its last branch.
  if (!branch || call.live() == 0) {
    for (Branch& b : call.branches) DeleteSessions(b);
    calls_.erase(found);
  }
}

void Handler::DeleteDue() {
  const uint64_t now = options_.now_ms();
  std::vector<PendingDelete> due;
  auto split = std::stable_partition(pending_deletes_.begin(), pending_deletes_.end(),
                                     [now](const PendingDelete& d) { return d.due_ms > now; });
  due.assign(std::make_move_iterator(split), std::make_move_iterator(pending_deletes_.end()));
  pending_deletes_.erase(split, pending_deletes_.end());
  for (const PendingDelete& d : due) ScheduleOrDelete(d.call_id, d.branch, 0);
}

void Handler::Tick() {
  ExpireUnanswered();
  DeleteDue();
}

Handler::~Handler() = default;

namespace {

// rtpengine reads "received from", "received-from" and "received_from"
// alike.
std::string NormalKey(std::string_view key) {
  std::string k(key);
  for (char& c : k) {
    if (c == ' ' || c == '_') c = '-';
  }
  return k;
}

// "delete-delay": whole seconds, as an integer or its decimal string.
absl::StatusOr<int64_t> Seconds(const Value& v, std::string_view key) {
  int64_t n = -1;
  if (v.is_int()) {
    n = v.as_int();
  } else if (v.is_string() && !v.str().empty() && v.str().size() <= 9 &&
             std::all_of(v.str().begin(), v.str().end(), [](char c) { return c >= '0' && c <= '9'; })) {
    n = std::stoll(std::string(v.str()));
  }
  if (n < 0 || n > 86400) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(key), ": not a number of seconds from 0 to 86400"));
  }
  return n;
}

}  // namespace

// The string form of the flags joins the dictionary's: list keys get its
// items appended, other keys it names only when the dictionary does not.
absl::Status Handler::MergeRtppFlags(std::map<std::string, const Value*>& keys, Request& r) {
  auto found = keys.find("rtpp-flags");
  if (found == keys.end()) return absl::OkStatus();
  if (!found->second->is_string()) return absl::InvalidArgumentError("rtpp-flags: not a string");
  absl::StatusOr<Value> parsed = ParseRtppFlags(found->second->str());
  if (!parsed.ok()) return parsed.status();
  static const std::set<std::string> kLists = {"flags", "SDES", "replace", "rtcp-mux",
                                               "direction", "supports"};
  for (auto& [raw_key, value] : parsed->as_dict()) {
    const std::string key = NormalKey(std::string_view(raw_key.data(), raw_key.size()));
    auto existing = keys.find(key);
    if (kLists.count(key) > 0 && value.is_list()) {
      Value merged(Value::List{});
      if (existing != keys.end() && existing->second->is_list()) merged = *existing->second;
      if (existing != keys.end() && existing->second->is_string()) {
        merged.as_list().push_back(*existing->second);
      }
      for (Value& item : value.as_list()) merged.as_list().push_back(std::move(item));
      keys[key] = &(r.rtpp[key] = std::move(merged));
    } else if (existing == keys.end()) {
      keys[key] = &(r.rtpp[key] = std::move(value));
    }
  }
  return absl::OkStatus();
}

// "address-family" ("IP4" or "IP6", as SDP names them) and "media-address"
// (an IPv4 or IPv6 address, written as given).
absl::Status Handler::ParseAddressing(const Value* family, const Value* address, Request& r) {
  if (family != nullptr) {
    const std::string f = family->is_string() ? std::string(family->str()) : "";
    if (f != "IP4" && f != "IP6") {
      return absl::InvalidArgumentError("address-family: must be \"IP4\" or \"IP6\"");
    }
    r.address_family = f == "IP4" ? 4 : 6;
  }
  if (address != nullptr) {
    if (address->is_string()) {
      r.media_address = packet::IpAddress::Parse(std::string(address->str()));
    }
    if (!r.media_address) {
      return absl::InvalidArgumentError("media-address: must be an IPv4 or IPv6 address");
    }
  }
  return absl::OkStatus();
}

absl::Status Handler::ParseRequest(const Value& request, Request& r) {
  static const std::set<std::string> kKnown = {
      "command", "call-id", "from-tag", "to-tag", "via-branch", "sdp", "transport-protocol",
      "SDES", "rtcp-mux", "ICE", "DTLS", "direction", "interface", "replace", "flags",
      "received-from", "supports", "delete-delay", "sip-message-type", "rtpp-flags",
      "address-family", "media-address"};
  std::map<std::string, const Value*> keys;
  for (const auto& [key, value] : request.as_dict()) {
    keys.emplace(NormalKey(std::string_view(key.data(), key.size())), &value);
  }
  if (absl::Status s = MergeRtppFlags(keys, r); !s.ok()) return s;
  std::vector<std::string> unknown_keys;
  for (const auto& [k, value] : keys) {
    if (kKnown.count(k) == 0) unknown_keys.push_back(k);
  }
  auto find = [&keys](const char* k) -> const Value* {
    auto it = keys.find(k);
    return it == keys.end() ? nullptr : it->second;
  };
  const Value* command = find("command");
  if (command == nullptr || !command->is_string()) return absl::InvalidArgumentError("no command");
  r.command = std::string(command->str());
  r.call_id = Str(find("call-id"));
  r.from_tag = Str(find("from-tag"));
  r.to_tag = Str(find("to-tag"));
  r.via_branch = Str(find("via-branch"));
  r.sdp = find("sdp");
  for (const std::string& f : Strings(find("flags"), "flags", r.warnings)) {
    r.flags.insert(NormalKey(f));
  }
  r.sdes = Strings(find("SDES"), "SDES", r.warnings);
  r.rtcp_mux = Strings(find("rtcp-mux"), "rtcp-mux", r.warnings);
  r.replace = Strings(find("replace"), "replace", r.warnings);
  r.direction = Strings(find("direction"), "direction", r.warnings);
  r.transport = Str(find("transport-protocol"));
  r.interface = Str(find("interface"));
  r.ice = Str(find("ICE"));
  r.dtls = Str(find("DTLS"));
  for (const std::string& s : Strings(find("supports"), "supports", r.warnings)) {
    if (s == "load limit" || s == "load-limit") r.supports_load_limit = true;
  }
  if (const Value* delay = find("delete-delay")) {
    absl::StatusOr<int64_t> seconds = Seconds(*delay, "delete-delay");
    if (!seconds.ok()) return seconds.status();
    r.delete_delay_s = *seconds;
  }
  const std::vector<std::string> received =
      Strings(find("received-from"), "received-from", r.warnings);
  if (received.size() == 2) r.received_from = packet::IpAddress::Parse(received[1]);
  if (absl::Status s = ParseAddressing(find("address-family"), find("media-address"), r);
      !s.ok()) {
    return s;
  }
  if (!unknown_keys.empty()) {
    r.warnings.push_back(absl::StrCat("unknown keys ignored: ", absl::StrJoin(unknown_keys, ", ")));
  }
  return absl::OkStatus();
}

Value Handler::Handle(const Value& request) {
  Tick();
  Value reply(Value::Dict{});
  if (!request.is_dict()) return Error(reply, "the message is not a dictionary");
  Request r;
  if (absl::Status s = ParseRequest(request, r); !s.ok()) return Error(reply, s);
  static const std::set<std::string> kKnownFlags = {
      "trust-address", "symmetric", "strict-source", "recrypt", "asymmetric", "fatal",
      "SIP-source-address", "to-tag",
      "SDES-AES192-legacy-KDF", "SDES-AES192-legacy-KDF-answerer", "SDES-ROC-reset",
      "SDES-ROC-keep", "generate-mid"};
  r.webrtc = ParseWebrtcFlags(r.ice, r.dtls);
  if (r.Flag("SDES-ROC-reset") && r.Flag("SDES-ROC-keep")) {
    return Error(reply, "SDES-ROC-reset and SDES-ROC-keep contradict each other");
  }
  std::vector<std::string> unknown_flags;
  for (const std::string& f : r.flags) {
    if (kKnownFlags.count(f) == 0) unknown_flags.push_back(f);
  }
  if (!unknown_flags.empty()) {
    r.warnings.push_back(
        absl::StrCat("unknown flags ignored: ", absl::StrJoin(unknown_flags, ", ")));
  }
  Value out;
  if (r.command == "ping") {
    reply.Set("result", "pong");
    out = std::move(reply);
  } else if (r.command == "offer") {
    out = Offer(r, reply);
  } else if (r.command == "answer") {
    out = Answer(r, reply);
  } else if (r.command == "delete") {
    out = Delete(r, reply);
  } else if (r.command == "query") {
    out = Query(r, reply);
  } else if (r.command == "list") {
    out = List(reply);
  } else if (r.command == "statistics") {
    out = Statistics(reply);
  } else {
    return Error(reply, absl::StrCat("unknown command \"", r.command.substr(0, 32), "\""));
  }
  if (!r.warnings.empty()) out.Set("warning", Bounded(absl::StrJoin(r.warnings, "; ")));
  if (r.command == "offer" || r.command == "answer") IndexSessions(r.call_id);
  if (r.command == "offer" || r.command == "answer" || r.command == "delete") Changed(r.call_id);
  return out;
}

void Handler::Changed(const std::string& call_id) {
  auto found = calls_.find(call_id);
  if (found == calls_.end()) return;
  ++found->second.seq;
  if (!on_changed_) return;
  for (const Branch& b : found->second.branches) {
    for (const Stream& s : b.streams) {
      if (!s.session.empty()) on_changed_(s.session);
    }
  }
}

void Handler::IndexSessions(const std::string& call_id) {
  auto found = calls_.find(call_id);
  if (found == calls_.end()) return;
  for (const Branch& b : found->second.branches) {
    for (const Stream& s : b.streams) {
      if (!s.session.empty()) session_calls_[s.session] = call_id;
    }
  }
}

void Handler::SessionExpired(const std::string& session) {
  auto at = session_calls_.find(session);
  if (at == session_calls_.end()) return;
  auto found = calls_.find(at->second);
  session_calls_.erase(at);
  if (found == calls_.end()) return;
  bool live = false;
  for (Branch& b : found->second.branches) {
    for (Stream& s : b.streams) {
      if (s.session == session) s.session.clear();  // gone: nothing to delete or query
      live = live || !s.session.empty();
    }
  }
  if (live) return;
  for (Branch& b : found->second.branches) DeleteSessions(b);
  calls_.erase(found);
}

namespace {

// A digest of what makes two offers (or two answers) the same: the tags,
// the branch and the SDP. Kept instead of the SDP, which holds keys.
std::string RequestDigest(const std::string& from_tag, const std::string& to_tag,
                          const std::string& transport, std::string_view sdp) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  bool ok = ctx != nullptr && EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) == 1;
  for (std::string_view part : {std::string_view(from_tag), std::string_view(to_tag),
                                std::string_view(transport), sdp}) {
    const uint64_t size = part.size();
    ok = ok && EVP_DigestUpdate(ctx.get(), &size, sizeof(size)) == 1 &&
         EVP_DigestUpdate(ctx.get(), part.data(), part.size()) == 1;
  }
  std::string digest(SHA256_DIGEST_LENGTH, '\0');
  ok = ok && EVP_DigestFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(digest.data()),
                                nullptr) == 1;
  // Without a digest no two requests compare equal: each is applied anew.
  if (!ok) RAND_bytes(reinterpret_cast<unsigned char*>(digest.data()), SHA256_DIGEST_LENGTH);
  return digest;
}

Value Ok(Value& reply, const String& sdp) {
  reply.Set("result", "ok");
  reply.Set("sdp", Value(sdp));
  return std::move(reply);
}

}  // namespace

// rtpengine's "load limit" extension: a controller that supports it tries
// the next media relay of its set; one that does not gets an error.
Value Handler::Full(const Request& r, Value& reply, std::string_view message) {
  if (!r.supports_load_limit) {
    // rtpengine's exact words, which proxies match to try their next node;
    // what was full goes in the warning.
    Value error = Error(reply, std::string_view("Parallel session limit reached"));
    error.Set("warning", std::string(message));
    return error;
  }
  reply.Set("result", "load limit");
  reply.Set("message", std::string(message));
  return std::move(reply);
}

Value Handler::Offer(Request& r, Value& reply) {
  if (r.call_id.empty()) return Error(reply, "offer: no call-id");
  if (r.from_tag.empty()) return Error(reply, "offer: no from-tag");
  if (r.sdp == nullptr || !r.sdp->is_string()) return Error(reply, "offer: no sdp");
  absl::StatusOr<Sdp> sdp = ParseSdp(r.sdp->str());
  if (!sdp.ok()) return Error(reply, sdp.status());
  SdesPolicy policy = ParseSdesPolicy(r.sdes);
  policy.allow_unauthenticated = options_.allow_null_auth;
  WarnIgnoredOfferFlags(policy, r);
  const std::string transport = r.transport == "accept" ? std::string() : r.transport;
  if (!transport.empty() && !RtpProfile(transport)) {
    return Error(reply, absl::StrCat("transport-protocol: ", transport.substr(0, 32),
                                     " is not one of RTP/AVP, RTP/SAVP, RTP/AVPF, RTP/SAVPF, "
                                     "UDP/TLS/RTP/SAVP, UDP/TLS/RTP/SAVPF"));
  }
  auto found = calls_.find(r.call_id);
  const bool new_call = found == calls_.end();
  // Calls count whether or not they got sessions (an offer with every port
  // 0 creates none).
  if (new_call && calls_.size() >= options_.max_calls) {
    return Full(r, reply,
                absl::StrCat("Parallel session limit reached (", options_.max_calls,
                             " calls, [ng] max_calls)"));
  }
  Call scratch;
  Call& call = new_call ? scratch : found->second;
  const size_t branches_before = call.branches.size();
  absl::StatusOr<size_t> index = OfferBranch(call, r);
  if (!index.ok()) return Error(reply, index.status());
  Branch& branch = call.branches[*index];
  const std::string digest =
      RequestDigest(r.from_tag, r.via_branch, transport + r.Presentation(), r.sdp->str());
  // A retransmitted or re-sent offer: the same reply, nothing changed.
  if (!branch.offer_reply.empty() && branch.offer_digest == digest) {
    return Ok(reply, branch.offer_reply);
  }
  absl::StatusOr<int> offerer = OffererSide(branch, r.from_tag);
  // Plan every section before touching any session.
  absl::StatusOr<std::vector<OfferedMedia>> offered =
      offerer.ok() ? PlanOffer(*sdp, policy, r, transport)
                   : absl::StatusOr<std::vector<OfferedMedia>>(offerer.status());
  if (offered.ok()) {
    for (OfferedMedia& o : *offered) o.offerer_roc = r.RocRule();
  }
  absl::Status created = offered.ok() ? CreateSessions(r, *sdp, *offered, *offerer, *index, branch)
                                      : offered.status();
  if (!created.ok()) {
    call.branches.resize(branches_before);  // a branch this offer opened goes again
    // Out of sessions or ports: as full as too many calls.
    if (absl::IsResourceExhausted(created)) {
      return Full(r, reply, std::string_view(created.message().data(), created.message().size()));
    }
    return Error(reply, created);
  }
  branch.offer_reply =
      RewriteForAnswerer(r, *sdp, *offered, branch.streams, 1 - *offerer);
  branch.offer_digest = digest;
  branch.answer_digest.clear();
  branch.answer_reply.clear();
  branch.offerer = *offerer;
  branch.pending = true;
  branch.offered = std::move(*offered);
  Value out = Ok(reply, branch.offer_reply);
  if (new_call) {
    call.offered_at_ms = options_.now_ms();
    unanswered_.emplace_back(call.offered_at_ms, r.call_id);
    calls_.emplace(r.call_id, std::move(scratch));
  }
  return out;
}

void Handler::WarnIgnoredOfferFlags(const SdesPolicy& policy, Request& r) {
  if (!policy.ignored.empty()) {
    r.warnings.push_back(
        absl::StrCat("SDES flags ignored: ", absl::StrJoin(policy.ignored, ", ")));
  }
  if (!r.webrtc.ignored.empty()) {
    r.warnings.push_back(absl::StrCat("ignored: ", absl::StrJoin(r.webrtc.ignored, ", ")));
  }
}

absl::StatusOr<int> Handler::OffererSide(const Branch& call, const std::string& from_tag) {
  if (from_tag == call.tags[0]) return 0;
  if (from_tag == call.tags[1]) return 1;
  // A repeated initial offer (a forked or re-sent INVITE).
  if (call.tags[1].empty() && call.pending) return 0;
  return absl::InvalidArgumentError("offer: from-tag belongs to neither side of this call");
}

// Which branch an offer is for: the dialog its tags name (a re-offer from
// either side); without a to-tag, the branch of its via-branch, a new
// branch for a via-branch not seen yet (the proxy forks and offers per
// branch), or the offerer's first branch.
absl::StatusOr<size_t> Handler::OfferBranch(Call& call, const Request& r) {
  if (call.branches.empty()) {
    Branch& b = call.branches.emplace_back();
    b.via_branch = r.via_branch;
    b.tags[0] = r.from_tag;
    return 0;
  }
  std::optional<size_t> by_from;
  for (size_t i = 0; i < call.branches.size(); ++i) {
    const Branch& b = call.branches[i];
    if (b.gone) continue;
    if (!r.to_tag.empty() && b.HasTag(r.to_tag) && b.HasTag(r.from_tag)) return i;
    if (r.to_tag.empty() && !r.via_branch.empty() && b.via_branch == r.via_branch) return i;
    if (!by_from && b.HasTag(r.from_tag)) by_from = i;
  }
  if (!by_from) {
    return absl::InvalidArgumentError("offer: from-tag belongs to neither side of this call");
  }
  const Branch& first = call.branches[*by_from];
  if (r.to_tag.empty() && !r.via_branch.empty() && first.tags[0] == r.from_tag) {
    Branch& b = call.branches.emplace_back();
    b.via_branch = r.via_branch;
    b.tags[0] = r.from_tag;
    return call.branches.size() - 1;
  }
  return *by_from;
}

// Which branch an answer is for: the one its to-tag answered on before,
// else the one of its via-branch, else the latest branch the offerer's
// tag offered on (a new to-tag there is a fork answering behind one offer).
absl::StatusOr<size_t> Handler::AnswerBranch(Call& call, const Request& r) {
  std::optional<size_t> by_via, by_from;
  for (size_t i = 0; i < call.branches.size(); ++i) {
    const Branch& b = call.branches[i];
    if (b.gone) continue;
    if (b.HasTag(r.to_tag) && (r.from_tag.empty() || b.HasTag(r.from_tag))) return i;
    if (!r.via_branch.empty() && b.via_branch == r.via_branch) by_via = i;
    if (r.from_tag.empty() || b.tags[b.offerer] == r.from_tag) by_from = i;
  }
  if (by_via) return *by_via;
  if (by_from) return *by_from;
  return absl::InvalidArgumentError("answer: the tags name no branch of this call");
}

absl::StatusOr<std::vector<Handler::OfferedMedia>> Handler::PlanOffer(
    const Sdp& sdp, const SdesPolicy& policy, const Request& r, const std::string& transport) {
  std::vector<OfferedMedia> offered(sdp.media.size());
  for (size_t i = 0; i < sdp.media.size(); ++i) {
    const SdpMedia& m = sdp.media[i];
    if (m.disabled()) continue;
    if (!RtpProfile(m.proto)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "media section ", i + 1, ": transport ", m.proto.substr(0, 32), " is not relayed by Sluice"));
    }
    OfferedMedia& o = offered[i];
    o.enabled = true;
    o.offer_proto = m.proto;
    o.offerer_srtp = m.secure();
    if (o.offerer_srtp) {
      if (absl::Status s = AcceptOffererCrypto(i, m, policy, o); !s.ok()) return s;
    }
    o.answer_proto = transport.empty() ? m.proto : transport;
    o.answerer_srtp = !DtlsProfile(o.answer_proto) && WithSrtp(o.answer_proto, true) == o.answer_proto;
    if (o.answerer_srtp) {
      if (absl::Status s = OfferCryptoToAnswerer(i, m, policy, o); !s.ok()) return s;
    }
    if (absl::Status s = PlanWebrtc(i, m, r, o); !s.ok()) return s;
    o.offerer_remote = PeerEndpoint(sdp, i, r.MediaSource());
    o.on_hold = sdp.OnHold(i);
  }
  return offered;
}

// The WebRTC side of an offered section: the offerer's DTLS-SRTP (its
// fingerprint and setup) and ICE (taken up only with DTLS: on an SDES or
// plain section the answer carries no ICE, and RFC 8445 §5.1.1.1 has the
// offerer go on without it); toward the answerer, DTLS-SRTP for a UDP/TLS
// transport and ICE-lite as the ICE flag says (default: with DTLS only).
absl::Status Handler::PlanWebrtc(size_t i, const SdpMedia& m, const Request& r, OfferedMedia& o) {
  o.offer_mid = m.mid;
  if (!m.mid && r.Flag("generate-mid")) o.generated_mid = std::to_string(i);
  if (m.dtls()) {
    absl::StatusOr<PeerTransport> peer = PeerTransportOf(m, i + 1, /*answer=*/false);
    if (!peer.ok()) return peer.status();
    o.offerer_dtls = true;
    o.offerer_ice = m.ice();
    o.offerer_transport = std::move(*peer);
  }
  o.answerer_dtls = DtlsProfile(o.answer_proto);
  if (o.answerer_dtls && r.webrtc.dtls_off) {
    return absl::InvalidArgumentError(absl::StrCat(
        "media section ", i + 1, ": DTLS=off with transport ", o.answer_proto,
        ", which is DTLS-SRTP (RFC 5764 §8)"));
  }
  o.answerer_setup = r.webrtc.dtls_setup;
  o.answerer_ice = r.webrtc.ice == WebrtcFlags::Ice::kForce ||
                   (r.webrtc.ice == WebrtcFlags::Ice::kDefault && o.answerer_dtls);
  if (o.answerer_dtls && !o.answerer_ice) {
    return absl::InvalidArgumentError(absl::StrCat(
        "media section ", i + 1, ": DTLS-SRTP toward the answerer needs ICE (ICE=remove): "
        "Sluice learns a DTLS answerer's address from its checks"));
  }
  return absl::OkStatus();
}

absl::Status Handler::AcceptOffererCrypto(size_t i, const SdpMedia& m,
                                          const SdesPolicy& policy, OfferedMedia& o) {
  // RFC 4568 §7.1.1: Sluice answers with the first crypto it supports (an
  // unauthenticated suite only when the configuration allows it).
  std::optional<crypto::Suite> suite;
  bool unauthenticated_skipped = false;
  for (const SdpCrypto& c : m.crypto) {
    absl::StatusOr<srtp::SdesCrypto> parsed =
        srtp::ParseSdesCrypto(absl::string_view(c.value.data(), c.value.size()));
    if (parsed.ok() && !policy.allow_unauthenticated &&
        crypto::GetSuiteInfo(parsed->key.suite).srtp_auth == crypto::AuthKind::kNull) {
      unauthenticated_skipped = true;
      continue;
    }
    if (parsed.ok()) {
      o.accepted_tag = c.tag;
      o.offerer_rx = c.value;
      suite = parsed->key.suite;
      break;
    }
  }
  if (!suite) {
    return absl::InvalidArgumentError(absl::StrCat(
        "media section ", i + 1, ": no a=crypto line Sluice supports",
        unauthenticated_skipped ? " (suites without authentication need [ng] allow_null_auth)"
                                : ""));
  }
  absl::StatusOr<String> key = GenerateKey(*suite);
  if (!key.ok()) return key.status();
  o.offerer_tx = std::move(*key);
  return absl::OkStatus();
}

absl::Status Handler::OfferCryptoToAnswerer(size_t i, const SdpMedia& m,
                                            const SdesPolicy& policy, OfferedMedia& o) {
  const std::vector<crypto::Suite> suites = SuitesToOffer(m, policy);
  if (suites.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("media section ", i + 1, ": SDES flags leave no suite to offer"));
  }
  uint32_t tag = 1;
  for (crypto::Suite s : suites) {
    absl::StatusOr<String> key = GenerateKey(s);
    if (!key.ok()) return key.status();
    o.offered.push_back({tag++, std::string(crypto::SuiteName(s)), std::move(*key)});
  }
  return absl::OkStatus();
}

absl::Status Handler::CreateSessions(const Request& r, const Sdp& sdp,
                                     const std::vector<OfferedMedia>& offered, int offerer,
                                     size_t branch, Branch& call) {
  std::vector<std::string> created;
  const size_t old_streams = call.streams.size();
  if (call.streams.size() < sdp.media.size()) call.streams.resize(sdp.media.size());
  for (size_t i = 0; i < sdp.media.size(); ++i) {
    Stream& stream = call.streams[i];
    absl::Status kept = offered[i].enabled && !stream.session.empty()
                            ? KeepsTransports(i, offered[i], stream, offerer)
                            : absl::OkStatus();
    if (!offered[i].enabled || (!stream.session.empty() && kept.ok())) continue;
    const control::CreateRequest create =
        SessionRequest(r, i, sdp.media[i], offered[i], offerer, branch);
    absl::StatusOr<control::SessionInfo> info =
        kept.ok() ? operations_.Create(create) : absl::StatusOr<control::SessionInfo>(kept);
    if (!info.ok()) {
      for (const std::string& name : created) operations_.Delete(name).IgnoreError();
      call.streams.resize(old_streams);
      return info.status();
    }
    created.push_back(create.session);
    stream.session = create.session;
    for (size_t leg = 0; leg < 2; ++leg) {
      RememberKeys(stream, static_cast<int>(leg), create.legs[leg].rx, create.legs[leg].tx);
    }
    for (int leg = 0; leg < 2; ++leg) {
      const control::LegRequest& l = create.legs[static_cast<size_t>(leg)];
      stream.local[leg] = info->legs[static_cast<size_t>(leg)].local;
      stream.rtcp_mux[leg] = l.rtcp == control::RtcpMode::kMux;
      Stream::Transport& t = stream.transport[leg];
      t.dtls = l.dtls.has_value();
      t.ice = l.ice.has_value();
      t.local = LocalTransportOf(info->legs[static_cast<size_t>(leg)]);
    }
    if (offered[i].offerer_dtls) stream.transport[offerer].peer = offered[i].offerer_transport;
  }
  return absl::OkStatus();
}

// A re-offer keeps each leg's kind: a WebRTC leg stays one (its keys come
// from its handshake), and a leg without DTLS or ICE gets none.
absl::Status Handler::KeepsTransports(size_t i, const OfferedMedia& o, const Stream& stream,
                                      int offerer) {
  const Stream::Transport& off = stream.transport[offerer];
  const Stream::Transport& ans = stream.transport[1 - offerer];
  if (off.dtls != o.offerer_dtls || off.ice != o.offerer_ice || ans.dtls != o.answerer_dtls ||
      ans.ice != o.answerer_ice) {
    return absl::InvalidArgumentError(absl::StrCat(
        "media section ", i + 1, ": a re-offer cannot turn DTLS-SRTP or ICE on or off on a leg "
        "(", off.dtls ? "DTLS" : "no DTLS", off.ice ? " with ICE" : "", " toward the offerer, ",
        ans.dtls ? "DTLS" : "no DTLS", ans.ice ? " with ICE" : "", " toward the answerer)"));
  }
  return absl::OkStatus();
}

control::CreateRequest Handler::SessionRequest(const Request& r, size_t i, const SdpMedia& m,
                                               const OfferedMedia& o, int offerer,
                                               size_t branch) const {
  const int answerer = 1 - offerer;
  std::string interfaces[2] = {options_.default_interface, options_.default_interface};
  if (!r.interface.empty()) interfaces[0] = interfaces[1] = r.interface;
  if (r.direction.size() == 2) {
    interfaces[offerer] = r.direction[0];
    interfaces[answerer] = r.direction[1];
  }
  control::CreateRequest create;
  create.session = SessionName(r.call_id, i, branch);
  create.key_group = r.call_id;  // a call's branches receive with the caller's keys
  create.legs.resize(2);
  const bool offerer_mux = m.rtcp_mux && !r.RtcpMux("reject");
  const bool answerer_mux =
      (m.rtcp_mux && !r.RtcpMux("demux")) || r.RtcpMux("offer") || r.RtcpMux("require");
  for (int leg = 0; leg < 2; ++leg) {
    control::LegRequest& l = create.legs[static_cast<size_t>(leg)];
    l.name = kLegNames[leg];
    l.interface = interfaces[leg];
    const bool mux = leg == offerer ? offerer_mux : answerer_mux;
    l.rtcp = mux ? control::RtcpMode::kMux : control::RtcpMode::kSeparate;
    l.strict_source = r.Flag("strict-source");
  }
  control::LegRequest& off = create.legs[static_cast<size_t>(offerer)];
  control::LegRequest& ans = create.legs[static_cast<size_t>(answerer)];
  off.remote = o.offerer_remote;
  if (o.offerer_srtp) {
    off.rx = Sdes(o.offerer_rx);
    off.tx = Sdes(o.offerer_tx);
  }
  if (o.answerer_srtp) ans.tx = Sdes(o.offered.front().value);
  // WebRTC legs: the offerer's peer is known, the answerer's comes with its
  // answer (DtlsSpec without setup and fingerprints). An ICE leg's peer is
  // the address its checks select, and a browser requires rtcp-mux
  // (RFC 8829 §5.1.3 rtcpMuxPolicy "require").
  if (o.offerer_dtls) off.dtls = DtlsSpecOf(o.offerer_transport, "");
  if (o.offerer_ice) {
    off.ice = IceSpecOf(o.offerer_transport, false);
    off.remote.reset();
  }
  if (o.answerer_dtls) ans.dtls.emplace().local_setup = o.answerer_setup;
  if (o.answerer_ice) {
    ans.ice.emplace();
    ans.rtcp = control::RtcpMode::kMux;
  }
  create.legs[static_cast<size_t>(answerer)].await_answer = true;
  create.legs[static_cast<size_t>(answerer)].family = r.address_family;
  if (o.offerer_roc) off.roc_on_rekey = *o.offerer_roc;
  // AES-192 derivation per side, fixed when the legs are made (the offer).
  if (r.Flag("SDES-AES192-legacy-KDF")) off.aes192_kdf = crypto::Aes192Kdf::kLibsrtpLegacy;
  if (r.Flag("SDES-AES192-legacy-KDF-answerer")) {
    create.legs[static_cast<size_t>(answerer)].aes192_kdf = crypto::Aes192Kdf::kLibsrtpLegacy;
  }
  return create;
}

String Handler::RewriteForAnswerer(const Request& r, const Sdp& sdp,
                                   const std::vector<OfferedMedia>& offered,
                                   const std::vector<Stream>& streams, int answerer) {
  std::vector<MediaRewrite> plans(sdp.media.size());
  for (size_t i = 0; i < sdp.media.size(); ++i) {
    if (!offered[i].enabled) continue;
    const Stream& stream = streams[i];
    plans[i].local = stream.local[answerer];
    if (r.media_address) plans[i].local.ip = *r.media_address;
    plans[i].rtcp_mux = stream.rtcp_mux[answerer];
    const OfferedMedia& o = offered[i];
    plans[i].proto = o.answerer_dtls ? o.answer_proto : WithSrtp(o.answer_proto, o.answerer_srtp);
    plans[i].crypto = o.offered;
    plans[i].webrtc = stream.transport[answerer].local;
    // RFC 8842 §5.5: an offer says actpass unless a role is forced (DTLS=);
    // the answer picks, and a re-offer's answer that keeps its role and
    // fingerprint starts no new handshake.
    if (plans[i].webrtc && !plans[i].webrtc->fingerprint.empty()) {
      plans[i].webrtc->setup = o.answerer_setup.empty() ? "actpass" : o.answerer_setup;
    }
    plans[i].mid = o.generated_mid;
  }
  return RewriteSdp(sdp, plans, RewriteOptionsFor(r.replace));
}

Value Handler::Answer(Request& r, Value& reply) {
  if (r.call_id.empty()) return Error(reply, "answer: no call-id");
  if (r.sdp == nullptr || !r.sdp->is_string()) return Error(reply, "answer: no sdp");
  auto found = calls_.find(r.call_id);
  if (found == calls_.end()) return Error(reply, "Unknown call-id");
  absl::StatusOr<size_t> index = AnswerBranch(found->second, r);
  if (!index.ok()) return Error(reply, index.status());
  Branch& call = found->second.branches[*index];
  if (call.offered.empty()) {
    return Error(reply, "answer: no offer is waiting for an answer in this call");
  }
  // A repeated answer (the 200 after a 183 with the same SDP, or a
  // retransmission): the same reply, nothing changed.
  const std::string digest = RequestDigest(r.from_tag, r.to_tag, r.Presentation(), r.sdp->str());
  if (!call.answer_reply.empty() && call.answer_digest == digest) {
    return Ok(reply, call.answer_reply);
  }
  absl::StatusOr<Sdp> sdp = ParseSdp(r.sdp->str());
  if (!sdp.ok()) return Error(reply, sdp.status());
  if (sdp->media.size() != call.offered.size()) {
    return Error(reply, absl::StrCat("answer: ", sdp->media.size(),
                                     " media sections where the offer had ",
                                     call.offered.size(), " (RFC 3264 §6)"));
  }
  // Check every section before changing any session. A changed answer to
  // the same offer re-keys and re-targets through the same updates.
  absl::StatusOr<std::vector<std::optional<AnswerUpdates>>> updates = PlanAnswer(r, *sdp, call);
  if (!updates.ok()) return Error(reply, updates.status());
  if (absl::Status s = CheckAnswer(*updates, call); !s.ok()) return Error(reply, s);
  if (absl::Status s = ApplyAnswer(*updates, call); !s.ok()) return Error(reply, s);
  found->second.answered = true;
  const int answerer = 1 - call.offerer;
  std::string& tag = call.tags[answerer];
  if (!r.to_tag.empty() && tag != r.to_tag) {
    // Another fork answered on this branch: media goes to it from now on.
    call.aliases.erase(std::remove(call.aliases.begin(), call.aliases.end(), r.to_tag),
                       call.aliases.end());
    if (!tag.empty()) call.aliases.push_back(tag);
    tag = r.to_tag;
  }
  call.answer_reply = RewriteForOfferer(r, *sdp, call);
  call.answer_digest = digest;
  call.pending = false;
  return Ok(reply, call.answer_reply);
}

absl::StatusOr<std::vector<std::optional<Handler::AnswerUpdates>>> Handler::PlanAnswer(
    Request& r, const Sdp& sdp, const Branch& call) {
  std::vector<std::optional<AnswerUpdates>> updates(sdp.media.size());
  for (size_t i = 0; i < sdp.media.size(); ++i) {
    const OfferedMedia& o = call.offered[i];
    if (!o.enabled || sdp.media[i].disabled()) continue;
    const Stream& stream = call.streams[i];
    if (r.address_family != 0 && stream.local[call.offerer].ip.family != r.address_family) {
      r.warnings.push_back(absl::StrCat("media section ", i + 1,
                                        ": address-family: the offerer's leg stays IPv",
                                        stream.local[call.offerer].ip.family,
                                        ", the family of its offer"));
    }
    AnswerUpdates u;
    absl::StatusOr<control::UpdateRequest> answerer =
        AnswererUpdate(r, sdp, i, o, stream, 1 - call.offerer);
    if (!answerer.ok()) return answerer.status();
    u.answerer_update = std::move(*answerer);
    if (absl::Status s = AnswererWebrtc(i, sdp.media[i], o, stream, 1 - call.offerer, u); !s.ok()) {
      return s;
    }
    // Either side's direction puts the section on hold (RFC 3264 §8.4), and
    // a=sendrecv on both takes it off.
    u.answerer_update.hold = o.on_hold || sdp.OnHold(i);
    control::UpdateRequest& b = u.offerer_update;
    b.session = stream.session;
    b.leg = kLegNames[call.offerer];
    if (o.offerer_srtp) {
      b.rx = Sdes(o.offerer_rx);
      b.tx = Sdes(o.offerer_tx);
    }
    b.remote = o.offerer_remote;
    b.roc_on_rekey = o.offerer_roc;
    if (absl::Status s = OffererWebrtcUpdate(i, r, o, stream, call.offerer, u); !s.ok()) return s;
    updates[i] = std::move(u);
  }
  return updates;
}

// The offerer's WebRTC leg at the answer: a new fingerprint or setup in
// its (re-)offer is a new handshake, make-before-break (RFC 8842 §5.2), as
// is a DTLS= role forced by the answer's flags that the leg does not have;
// new ICE credentials are an ICE restart (RFC 8445 §9), and Sluice's new
// ones go in this answer.
absl::Status Handler::OffererWebrtcUpdate(size_t i, const Request& r, const OfferedMedia& o,
                                          const Stream& stream, int offerer, AnswerUpdates& u) {
  const Stream::Transport& leg = stream.transport[offerer];
  if (!o.offerer_dtls) return absl::OkStatus();
  if (o.offerer_transport.setup == r.webrtc.dtls_setup) {
    return BothSides(i, r.webrtc.dtls_setup);
  }
  control::UpdateRequest& b = u.offerer_update;
  const std::string current = leg.local ? leg.local->setup : "";
  const bool forced = !r.webrtc.dtls_setup.empty() && r.webrtc.dtls_setup != current;
  if (!o.offerer_transport.SameDtls(leg.peer) || forced) {
    b.dtls = DtlsSpecOf(o.offerer_transport, r.webrtc.dtls_setup);
  }
  if (o.offerer_ice) {
    b.remote.reset();
    if (!o.offerer_transport.SameIce(leg.peer)) {
      b.ice = IceSpecOf(o.offerer_transport, /*restart=*/!leg.peer.ufrag.empty());
    }
  }
  u.offerer_peer = o.offerer_transport;
  return absl::OkStatus();
}

absl::StatusOr<control::UpdateRequest> Handler::AnswererUpdate(Request& r, const Sdp& sdp,
                                                               size_t i, const OfferedMedia& o,
                                                               const Stream& stream,
                                                               int answerer) {
  const SdpMedia& m = sdp.media[i];
  control::UpdateRequest a;
  a.session = stream.session;
  a.leg = kLegNames[answerer];
  a.answer = true;
  a.roc_on_rekey = r.RocRule();
  if (o.answerer_srtp) {
    const auto [picked, ours] = PickAnsweredCrypto(m.crypto, o.offered);
    if (picked == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "media section ", i + 1, ": the answer takes none of the offered a=crypto"));
    }
    a.rx = Sdes(picked->value);
    a.tx = Sdes(ours->value);
  } else if (!m.crypto.empty()) {
    r.warnings.push_back(absl::StrCat("media section ", i + 1,
                                      ": a=crypto in an answer to a plain offer ignored"));
  }
  if (stream.rtcp_mux[answerer] && !m.rtcp_mux) {
    r.warnings.push_back(absl::StrCat("media section ", i + 1,
                                      ": the answerer declined rtcp-mux; Sluice keeps RTCP on "
                                      "the RTP port toward it"));
  }
  a.remote = PeerEndpoint(sdp, i, r.MediaSource());
  return a;
}

// The answerer's WebRTC leg: its answer must take DTLS-SRTP where Sluice
// offered it (with its fingerprint and a role, RFC 5763 §5); a setup or
// fingerprint other than the leg holds starts its handshake (the first
// answer, or a re-offer's answer that changes them), and its ICE
// credentials are the peer's for the checks.
absl::Status Handler::AnswererWebrtc(size_t i, const SdpMedia& m, const OfferedMedia& o,
                                     const Stream& stream, int answerer, AnswerUpdates& u) {
  const Stream::Transport& leg = stream.transport[answerer];
  control::UpdateRequest& a = u.answerer_update;
  if (!o.answerer_dtls && !o.answerer_ice) {
    if (m.dtls()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "media section ", i + 1, ": the answer is DTLS-SRTP where the offer was not"));
    }
    return absl::OkStatus();
  }
  PeerTransport peer;
  if (o.answerer_dtls) {
    if (!m.dtls()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "media section ", i + 1, ": the answer declines DTLS-SRTP (", m.proto.substr(0, 32),
          " to an offer of ", o.answer_proto, ")"));
    }
    absl::StatusOr<PeerTransport> p = PeerTransportOf(m, i + 1, /*answer=*/true);
    if (!p.ok()) return p.status();
    peer = std::move(*p);
    if (peer.setup == o.answerer_setup) return BothSides(i, peer.setup);
    if (!peer.SameDtls(leg.peer)) a.dtls = DtlsSpecOf(peer, o.answerer_setup);
  } else {
    peer.ufrag = m.ice_ufrag;
    peer.pwd = m.ice_pwd;
  }
  if (o.answerer_ice && !m.ice()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "media section ", i + 1, ": the answer has no a=ice-ufrag and a=ice-pwd, and Sluice "
        "offered ICE (RFC 8839 §5.4)"));
  }
  if (o.answerer_ice && !peer.SameIce(leg.peer)) a.ice = IceSpecOf(peer, false);
  if (o.answerer_ice) a.remote.reset();  // the checks select the peer
  u.answerer_peer = std::move(peer);
  return absl::OkStatus();
}

absl::Status Handler::CheckAnswer(const std::vector<std::optional<AnswerUpdates>>& updates,
                                 const Branch& call) {
  for (size_t i = 0; i < updates.size(); ++i) {
    if (!updates[i]) continue;
    const Stream& stream = call.streams[i];
    std::vector<srtp::KeyFingerprint> seen = stream.used_keys;
    for (const control::UpdateRequest* u :
         {&updates[i]->offerer_update, &updates[i]->answerer_update}) {
      const bool offerer = u == &updates[i]->offerer_update;
      const int leg = offerer ? call.offerer : 1 - call.offerer;
      const std::string where =
          absl::StrCat("media section ", i + 1, ", leg of the ", offerer ? "offerer" : "answerer");
      int dir = 0;
      for (const std::optional<CryptoSpec>* spec : {&u->rx, &u->tx}) {
        const char* field = dir == 0 ? "rx" : "tx";
        const std::optional<srtp::KeyFingerprint>& in_use = stream.in_use[leg][dir++];
        absl::StatusOr<std::optional<srtp::KeyFingerprint>> fp = FingerprintOf(*spec);
        if (!fp.ok()) {
          return absl::InvalidArgumentError(
              absl::StrCat(where, ": ", field, ": ", std::string(fp.status().message())));
        }
        if (!fp->has_value() || (in_use && in_use->Matches(**fp))) continue;
        for (const srtp::KeyFingerprint& k : seen) {
          if (k.Matches(**fp)) {
            return absl::FailedPreconditionError(
                absl::StrCat(where, ": key_reuse: ", field,
                             " repeats a master key already used in this session"));
          }
        }
        // Another call's key (or one released lately) would fail this
        // update after the ones before it were applied.
        if (absl::Status free = operations_.CheckKeyFree(stream.session, **fp); !free.ok()) {
          return absl::Status(free.code(), absl::StrCat(where, ": ", field, ": ", free.message()));
        }
        seen.push_back(**fp);
      }
      if (u->remote && u->remote->ip.family != stream.local[leg].ip.family) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": ", u->remote->ToString(), " is not the address family of ",
                         stream.local[leg].ToString()));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status Handler::ApplyAnswer(const std::vector<std::optional<AnswerUpdates>>& updates,
                                  Branch& call) {
  for (size_t i = 0; i < updates.size(); ++i) {
    if (!updates[i]) continue;
    for (const control::UpdateRequest* u :
         {&updates[i]->offerer_update, &updates[i]->answerer_update}) {
      absl::StatusOr<control::SessionInfo> info = operations_.Update(*u);
      const bool offerer = u == &updates[i]->offerer_update;
      const int leg = offerer ? call.offerer : 1 - call.offerer;
      if (info.ok()) {
        RememberKeys(call.streams[i], leg, u->rx, u->tx);
        Stream::Transport& t = call.streams[i].transport[leg];
        const std::optional<PeerTransport>& peer =
            offerer ? updates[i]->offerer_peer : updates[i]->answerer_peer;
        if (peer) t.peer = *peer;
        if (static_cast<size_t>(leg) < info->legs.size()) {
          t.local = LocalTransportOf(info->legs[static_cast<size_t>(leg)]);
        }
      } else {
        return absl::Status(
            info.status().code(),
            absl::StrCat("media section ", i + 1, ", leg of the ",
                         u == &updates[i]->offerer_update ? "offerer" : "answerer", ": ",
                         std::string(info.status().message())));
      }
    }
  }
  return absl::OkStatus();
}

String Handler::RewriteForOfferer(const Request& r, Sdp& sdp, const Branch& call) {
  std::vector<MediaRewrite> plans(sdp.media.size());
  for (size_t i = 0; i < sdp.media.size(); ++i) {
    const OfferedMedia& o = call.offered[i];
    if (!o.enabled || sdp.media[i].disabled()) {
      sdp.media[i].port = 0;  // rejected on either side: stays rejected (RFC 3264 §6)
      continue;
    }
    const Stream& stream = call.streams[i];
    plans[i].local = stream.local[call.offerer];
    if (r.media_address) plans[i].local.ip = *r.media_address;
    plans[i].rtcp_mux = stream.rtcp_mux[call.offerer];
    plans[i].proto = o.offer_proto;
    if (o.offerer_srtp) plans[i].crypto.push_back({o.accepted_tag, "", o.offerer_tx});
    plans[i].webrtc = stream.transport[call.offerer].local;
    plans[i].mid = o.offer_mid.value_or("");
  }
  return RewriteSdp(sdp, plans, RewriteOptionsFor(r.replace));
}

// As rtpengine scopes a delete: no from-tag, the whole call; a tag (the
// to-tag when given, else the from-tag) of the offerer's side, the whole
// call; the answerer's tag of a branch, or its via-branch, that branch
// (and the call with its last branch); a to-tag that answered on a branch
// before another did, only that tag (its fork shares the branch's legs).
Value Handler::Delete(Request& r, Value& reply) {
  auto found = calls_.find(r.call_id);
  const uint64_t delay_ms =
      r.delete_delay_s ? static_cast<uint64_t>(*r.delete_delay_s) * 1000 : options_.delete_delay_ms;
  std::optional<std::optional<size_t>> target;  // none: not found; a nullopt inside: whole call
  if (found != calls_.end()) {
    Call& call = found->second;
    const std::string& tag = r.to_tag.empty() ? r.from_tag : r.to_tag;
    if (r.from_tag.empty()) target.emplace();
    for (size_t i = 0; !target && i < call.branches.size(); ++i) {
      Branch& b = call.branches[i];
      if (b.gone) continue;
      if (r.to_tag.empty() && !r.via_branch.empty() && b.via_branch == r.via_branch) {
        target.emplace(i);
      } else if (tag == b.tags[0] && r.via_branch.empty()) {
        target.emplace();
      } else if (tag == b.tags[1]) {
        target.emplace(i);
      } else if (std::find(b.aliases.begin(), b.aliases.end(), tag) != b.aliases.end()) {
        b.aliases.erase(std::find(b.aliases.begin(), b.aliases.end(), tag));
        reply.Set("result", "ok");
        return std::move(reply);
      }
    }
    for (size_t i = 0; !target && i < call.branches.size(); ++i) {
      const Branch& b = call.branches[i];
      if (!b.gone && !r.via_branch.empty() && b.via_branch == r.via_branch) target.emplace(i);
    }
    // Deleted right after the offer, before any answer named the callee:
    // the whole call, as rtpengine does.
    if (!target && call.live() == 1 && !call.answered) target.emplace();
  }
  if (!target) {
    // As rtpengine does: a call already gone (a BYE and a CANCEL, a resent
    // BYE under a new cookie) is no failure for the SBC unless "fatal".
    const char* what = found == calls_.end() ? "Call-ID not found" : "tag not found";
    if (r.Flag("fatal")) return Error(reply, what);
    r.warnings.push_back(what);
    reply.Set("result", "ok");
    return std::move(reply);
  }
  ScheduleOrDelete(r.call_id, *target, delay_ms);
  reply.Set("result", "ok");
  return std::move(reply);
}

namespace {

Value Totals(int64_t packets, int64_t bytes, int64_t errors) {
  Value v(Value::Dict{});
  v.Set("packets", packets);
  v.Set("bytes", bytes);
  v.Set("errors", errors);
  return v;
}

}  // namespace

Value Handler::Query(Request& r, Value& reply) {
  auto found = calls_.find(r.call_id);
  if (found == calls_.end()) return Error(reply, "Unknown call-id");
  Value::List streams;
  int64_t packets = 0, bytes = 0, errors = 0, rtcp_packets = 0, rtcp_bytes = 0;
  for (const Branch& branch : found->second.branches) {
    for (const Stream& s : branch.streams) {
      if (s.session.empty()) continue;
      absl::StatusOr<control::SessionInfo> info = operations_.Get(s.session);
      if (!info.ok()) continue;
      Value stream(Value::Dict{});
      stream.Set("session", info->session);
      Value::List legs;
      for (size_t i = 0; i < info->legs.size() && i < 2; ++i) {
        const control::LegInfo& l = info->legs[i];
        const control::LegCounters& c = l.counters;
        Value leg(Value::Dict{});
        leg.Set("tag", branch.tags[i]);
        leg.Set("local", l.local.ToString());
        if (l.remote) leg.Set("remote", l.remote->ToString());
        leg.Set("rx-suite", l.rx_suite);
        leg.Set("tx-suite", l.tx_suite);
        leg.Set("packets", static_cast<int64_t>(c.rx_packets));
        leg.Set("bytes", static_cast<int64_t>(c.rx_bytes));
        leg.Set("auth-failures", static_cast<int64_t>(c.auth_failures));
        packets += static_cast<int64_t>(c.rx_packets - c.rx_rtcp_packets);
        bytes += static_cast<int64_t>(c.rx_bytes - c.rx_rtcp_bytes);
        rtcp_packets += static_cast<int64_t>(c.rx_rtcp_packets);
        rtcp_bytes += static_cast<int64_t>(c.rx_rtcp_bytes);
        errors += static_cast<int64_t>(c.auth_failures + c.replay_drops + c.other_drops);
        legs.push_back(std::move(leg));
      }
      stream.Set("legs", Value(std::move(legs)));
      streams.push_back(std::move(stream));
    }
  }
  Value totals(Value::Dict{});
  // What Kamailio's $rtpstat reads. A drop is counted before its kind
  // matters, so every error is under "RTP".
  totals.Set("RTP", Totals(packets, bytes, errors));
  totals.Set("RTCP", Totals(rtcp_packets, rtcp_bytes, 0));
  reply.Set("result", "ok");
  reply.Set("totals", std::move(totals));
  reply.Set("streams", Value(std::move(streams)));
  return std::move(reply);
}

Value Handler::List(Value& reply) {
  Value::List ids;
  for (const auto& [id, call] : calls_) ids.emplace_back(std::string_view(id));
  reply.Set("result", "ok");
  reply.Set("calls", Value(std::move(ids)));
  return std::move(reply);
}

Value Handler::Statistics(Value& reply) {
  const control::Stats stats = operations_.GetStats();
  Value current(Value::Dict{});
  current.Set("sessionsown", static_cast<int64_t>(calls_.size()));
  current.Set("sessionstotal", static_cast<int64_t>(stats.sessions));
  Value totals(Value::Dict{});
  totals.Set("currentstatistics", std::move(current));
  reply.Set("result", "ok");
  reply.Set("statistics", std::move(totals));
  return std::move(reply);
}

}  // namespace sluice::ng
