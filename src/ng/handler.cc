#include "sluice/ng/handler.h"

#include <openssl/sha.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sluice/memory/wiping_allocator.h"
#include "sluice/srtp/master_key.h"
#include "sluice/srtp/sdes.h"

namespace sluice::ng {

using control::CryptoSpec;

namespace {

constexpr const char* kLegNames[2] = {"a", "b"};
constexpr std::string_view kSessionChars = "._@:-";
constexpr size_t kMaxCallIdForName = 100;

std::string Str(const Value* v) { return v && v->is_string() ? std::string(v->str()) : std::string(); }

bool RtpProfile(std::string_view proto) {
  return proto == "RTP/AVP" || proto == "RTP/SAVP" || proto == "RTP/AVPF" || proto == "RTP/SAVPF";
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

std::string SessionName(std::string_view call_id, size_t index) {
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
  return index == 0 ? base : absl::StrCat(base, ":", index);
}

// One media section of a call: its Sluice session and Sluice's side of it.
struct Handler::Stream {
  std::string session;        // empty: the section was disabled when offered
  packet::Endpoint local[2];  // Sluice's address on leg 0 and leg 1
  bool rtcp_mux[2] = {false, false};
  // What the session manager's key-reuse check holds for this session, as
  // far as ng set the keys: every key used, and each leg's rx and tx key in
  // use (a repeat of one of those is no re-key).
  std::vector<srtp::KeyFingerprint> used_keys;
  std::optional<srtp::KeyFingerprint> in_use[2][2];  // [leg][0 rx, 1 tx]
};

// What an offer left for its answer to settle, per media section.
struct Handler::OfferedMedia {
  bool enabled = false;
  std::string offer_proto;             // what the offerer asked for (the answer says it back)
  bool offerer_srtp = false;
  uint32_t accepted_tag = 0;           // the offerer's a=crypto Sluice takes
  String offerer_rx;                   // its value: Sluice's receive key on the offerer's leg
  String offerer_tx;                   // Sluice's new send key toward the offerer
  bool answerer_srtp = false;
  std::vector<SdpCrypto> offered;      // Sluice's send keys toward the answerer, by tag
  std::optional<packet::Endpoint> offerer_remote;
};

struct Handler::Call {
  std::string tags[2];  // leg 0: the first offerer's from-tag; leg 1: the other side
  std::vector<Stream> streams;
  int offerer = 0;  // of the pending offer
  bool pending = false;
  bool answered = false;  // once: a call never answered expires
  uint64_t offered_at_ms = 0;
  std::vector<OfferedMedia> offered;
};

struct Handler::Request {
  std::string command, call_id, from_tag, to_tag;
  const Value* sdp = nullptr;
  std::set<std::string> flags;
  std::vector<std::string> sdes, rtcp_mux, replace, direction;
  std::string transport, interface, ice, dtls;
  std::optional<packet::IpAddress> received_from;
  std::vector<std::string> warnings;

  bool Has(const std::set<std::string>& set, const char* f) const { return set.count(f) > 0; }
  bool Flag(const char* f) const { return flags.count(f) > 0; }
  bool RtcpMux(const char* f) const {
    return std::find(rtcp_mux.begin(), rtcp_mux.end(), f) != rtcp_mux.end();
  }
  // Where media comes from when not from the SDP's address: where the SDP
  // came from, unless "trust-address".
  std::optional<packet::IpAddress> MediaSource() const {
    return Flag("trust-address") ? std::nullopt : received_from;
  }
};

// What an answer changes in one media section's session.
struct Handler::AnswerUpdates {
  control::UpdateRequest answerer_update, offerer_update;
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
      for (const Stream& s : found->second.streams) {
        if (!s.session.empty()) operations_.Delete(s.session).IgnoreError();
      }
      calls_.erase(found);
    }
    unanswered_.pop_front();
  }
}

Handler::~Handler() = default;

Value Handler::Handle(const Value& request) {
  ExpireUnanswered();
  Value reply(Value::Dict{});
  if (!request.is_dict()) return Error(reply, "the message is not a dictionary");
  Request r;
  static const std::set<std::string> kKnown = {
      "command", "call-id", "from-tag", "to-tag", "via-branch", "sdp", "transport-protocol",
      "SDES", "rtcp-mux", "ICE", "DTLS", "direction", "interface", "replace", "flags",
      "received-from", "supports"};
  static const std::set<std::string> kKnownFlags = {"trust-address", "symmetric",
                                                    "strict-source", "recrypt", "asymmetric"};
  std::vector<std::string> unknown_keys;
  for (const auto& [key, value] : request.as_dict()) {
    const std::string k(key.data(), key.size());
    if (kKnown.count(k) == 0) unknown_keys.push_back(k);
  }
  const Value* command = request.Find("command");
  if (command == nullptr || !command->is_string()) return Error(reply, "no command");
  r.command = std::string(command->str());
  r.call_id = Str(request.Find("call-id"));
  r.from_tag = Str(request.Find("from-tag"));
  r.to_tag = Str(request.Find("to-tag"));
  r.sdp = request.Find("sdp");
  std::vector<std::string> unknown_flags;
  for (std::string& f : Strings(request.Find("flags"), "flags", r.warnings)) {
    if (kKnownFlags.count(f) == 0) unknown_flags.push_back(f);
    r.flags.insert(std::move(f));
  }
  r.sdes = Strings(request.Find("SDES"), "SDES", r.warnings);
  r.rtcp_mux = Strings(request.Find("rtcp-mux"), "rtcp-mux", r.warnings);
  r.replace = Strings(request.Find("replace"), "replace", r.warnings);
  r.direction = Strings(request.Find("direction"), "direction", r.warnings);
  r.transport = Str(request.Find("transport-protocol"));
  r.interface = Str(request.Find("interface"));
  r.ice = Str(request.Find("ICE"));
  r.dtls = Str(request.Find("DTLS"));
  const std::vector<std::string> received =
      Strings(request.Find("received-from"), "received-from", r.warnings);
  if (received.size() == 2) {
    r.received_from = packet::IpAddress::Parse(received[1]);
  }
  if (!unknown_keys.empty()) {
    r.warnings.push_back(absl::StrCat("unknown keys ignored: ", absl::StrJoin(unknown_keys, ", ")));
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
  return out;
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
                                     " is not one of RTP/AVP, RTP/SAVP, RTP/AVPF, RTP/SAVPF"));
  }
  auto found = calls_.find(r.call_id);
  const bool new_call = found == calls_.end();
  // Calls count whether or not they got sessions (an offer with every port
  // 0 creates none).
  if (new_call && calls_.size() >= options_.max_calls) {
    return Error(reply, absl::StrCat("offer: too many calls (", options_.max_calls, ")"));
  }
  absl::StatusOr<int> offerer =
      new_call ? absl::StatusOr<int>(0) : OffererSide(found->second, r.from_tag);
  if (!offerer.ok()) return Error(reply, offerer.status());

  // Plan every section before touching any session.
  absl::StatusOr<std::vector<OfferedMedia>> offered =
      PlanOffer(*sdp, policy, transport, r.MediaSource());
  if (!offered.ok()) return Error(reply, offered.status());

  Call scratch;
  Call& call = new_call ? scratch : found->second;
  if (new_call) call.tags[0] = r.from_tag;
  if (absl::Status s = CreateSessions(r, *sdp, *offered, *offerer, call); !s.ok()) {
    return Error(reply, s);
  }
  const String out = RewriteForAnswerer(r, *sdp, *offered, call.streams, 1 - *offerer, transport);
  call.offerer = *offerer;
  call.pending = true;
  call.offered = std::move(*offered);
  if (new_call) {
    call.offered_at_ms = options_.now_ms();
    unanswered_.emplace_back(call.offered_at_ms, r.call_id);
  }
  if (new_call) calls_.emplace(r.call_id, std::move(scratch));
  reply.Set("result", "ok");
  reply.Set("sdp", Value(out));
  return std::move(reply);
}

void Handler::WarnIgnoredOfferFlags(const SdesPolicy& policy, Request& r) {
  if (!policy.ignored.empty()) {
    r.warnings.push_back(
        absl::StrCat("SDES flags ignored: ", absl::StrJoin(policy.ignored, ", ")));
  }
  if (!r.ice.empty() && r.ice != "remove") {
    r.warnings.push_back(
        absl::StrCat("ICE=", r.ice.substr(0, 32), " not supported: ICE attributes removed"));
  }
  if (!r.dtls.empty() && r.dtls != "off" && r.dtls != "no") {
    r.warnings.push_back(
        absl::StrCat("DTLS=", r.dtls.substr(0, 32), " not supported: DTLS-SRTP is off"));
  }
}

absl::StatusOr<int> Handler::OffererSide(const Call& call, const std::string& from_tag) {
  if (from_tag == call.tags[0]) return 0;
  if (from_tag == call.tags[1]) return 1;
  // A repeated initial offer (a forked or re-sent INVITE).
  if (call.tags[1].empty() && call.pending) return 0;
  return absl::InvalidArgumentError("offer: from-tag belongs to neither side of this call");
}

absl::StatusOr<std::vector<Handler::OfferedMedia>> Handler::PlanOffer(
    const Sdp& sdp, const SdesPolicy& policy, const std::string& transport,
    const std::optional<packet::IpAddress>& media_source) {
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
    const std::string out_proto = transport.empty() ? m.proto : transport;
    o.answerer_srtp = WithSrtp(out_proto, true) == out_proto;
    if (o.answerer_srtp) {
      if (absl::Status s = OfferCryptoToAnswerer(i, m, policy, o); !s.ok()) return s;
    }
    o.offerer_remote = PeerEndpoint(sdp, i, media_source);
  }
  return offered;
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
                                     Call& call) {
  std::vector<std::string> created;
  const size_t old_streams = call.streams.size();
  if (call.streams.size() < sdp.media.size()) call.streams.resize(sdp.media.size());
  for (size_t i = 0; i < sdp.media.size(); ++i) {
    Stream& stream = call.streams[i];
    if (!offered[i].enabled || !stream.session.empty()) continue;
    const control::CreateRequest create =
        SessionRequest(r, i, sdp.media[i], offered[i], offerer);
    absl::StatusOr<control::SessionInfo> info = operations_.Create(create);
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
      stream.local[leg] = info->legs[static_cast<size_t>(leg)].local;
      stream.rtcp_mux[leg] = create.legs[static_cast<size_t>(leg)].rtcp == control::RtcpMode::kMux;
    }
  }
  return absl::OkStatus();
}

control::CreateRequest Handler::SessionRequest(const Request& r, size_t i, const SdpMedia& m,
                                               const OfferedMedia& o, int offerer) const {
  const int answerer = 1 - offerer;
  std::string interfaces[2] = {options_.default_interface, options_.default_interface};
  if (!r.interface.empty()) interfaces[0] = interfaces[1] = r.interface;
  if (r.direction.size() == 2) {
    interfaces[offerer] = r.direction[0];
    interfaces[answerer] = r.direction[1];
  }
  control::CreateRequest create;
  create.session = SessionName(r.call_id, i);
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
  off.remote = o.offerer_remote;
  if (o.offerer_srtp) {
    off.rx = Sdes(o.offerer_rx);
    off.tx = Sdes(o.offerer_tx);
  }
  if (o.answerer_srtp) {
    create.legs[static_cast<size_t>(answerer)].tx = Sdes(o.offered.front().value);
  }
  create.legs[static_cast<size_t>(answerer)].await_answer = true;
  return create;
}

String Handler::RewriteForAnswerer(const Request& r, const Sdp& sdp,
                                   const std::vector<OfferedMedia>& offered,
                                   const std::vector<Stream>& streams, int answerer,
                                   const std::string& transport) {
  std::vector<MediaRewrite> plans(sdp.media.size());
  for (size_t i = 0; i < sdp.media.size(); ++i) {
    if (!offered[i].enabled) continue;
    const Stream& stream = streams[i];
    plans[i].local = stream.local[answerer];
    plans[i].rtcp_mux = stream.rtcp_mux[answerer];
    plans[i].proto = WithSrtp(transport.empty() ? sdp.media[i].proto : transport,
                              offered[i].answerer_srtp);
    plans[i].crypto = offered[i].offered;
  }
  return RewriteSdp(sdp, plans, RewriteOptionsFor(r.replace));
}

Value Handler::Answer(Request& r, Value& reply) {
  if (r.call_id.empty()) return Error(reply, "answer: no call-id");
  if (r.sdp == nullptr || !r.sdp->is_string()) return Error(reply, "answer: no sdp");
  auto found = calls_.find(r.call_id);
  if (found == calls_.end()) return Error(reply, "Unknown call-id");
  Call& call = found->second;
  if (!call.pending) return Error(reply, "answer: no offer is waiting for an answer in this call");
  absl::StatusOr<Sdp> sdp = ParseSdp(r.sdp->str());
  if (!sdp.ok()) return Error(reply, sdp.status());
  if (sdp->media.size() != call.offered.size()) {
    return Error(reply, absl::StrCat("answer: ", sdp->media.size(),
                                     " media sections where the offer had ",
                                     call.offered.size(), " (RFC 3264 §6)"));
  }
  // Check every section before changing any session.
  absl::StatusOr<std::vector<std::optional<AnswerUpdates>>> updates = PlanAnswer(r, *sdp, call);
  if (!updates.ok()) return Error(reply, updates.status());
  if (absl::Status s = CheckAnswer(*updates, call); !s.ok()) return Error(reply, s);
  if (absl::Status s = ApplyAnswer(*updates, call); !s.ok()) return Error(reply, s);
  call.answered = true;
  const int answerer = 1 - call.offerer;
  if (call.tags[answerer].empty()) call.tags[answerer] = r.to_tag;
  const String out = RewriteForOfferer(r, *sdp, call);
  call.pending = false;
  call.offered.clear();
  reply.Set("result", "ok");
  reply.Set("sdp", Value(out));
  return std::move(reply);
}

absl::StatusOr<std::vector<std::optional<Handler::AnswerUpdates>>> Handler::PlanAnswer(
    Request& r, const Sdp& sdp, const Call& call) {
  std::vector<std::optional<AnswerUpdates>> updates(sdp.media.size());
  for (size_t i = 0; i < sdp.media.size(); ++i) {
    const OfferedMedia& o = call.offered[i];
    if (!o.enabled || sdp.media[i].disabled()) continue;
    const Stream& stream = call.streams[i];
    AnswerUpdates u;
    absl::StatusOr<control::UpdateRequest> answerer =
        AnswererUpdate(r, sdp, i, o, stream, 1 - call.offerer);
    if (!answerer.ok()) return answerer.status();
    u.answerer_update = std::move(*answerer);
    control::UpdateRequest& b = u.offerer_update;
    b.session = stream.session;
    b.leg = kLegNames[call.offerer];
    if (o.offerer_srtp) {
      b.rx = Sdes(o.offerer_rx);
      b.tx = Sdes(o.offerer_tx);
    }
    b.remote = o.offerer_remote;
    updates[i] = std::move(u);
  }
  return updates;
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

absl::Status Handler::CheckAnswer(const std::vector<std::optional<AnswerUpdates>>& updates,
                                 const Call& call) {
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
                                  Call& call) {
  for (size_t i = 0; i < updates.size(); ++i) {
    if (!updates[i]) continue;
    for (const control::UpdateRequest* u :
         {&updates[i]->offerer_update, &updates[i]->answerer_update}) {
      absl::StatusOr<control::SessionInfo> info = operations_.Update(*u);
      const bool offerer = u == &updates[i]->offerer_update;
      if (info.ok()) {
        RememberKeys(call.streams[i], offerer ? call.offerer : 1 - call.offerer, u->rx, u->tx);
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

String Handler::RewriteForOfferer(const Request& r, Sdp& sdp, const Call& call) {
  std::vector<MediaRewrite> plans(sdp.media.size());
  for (size_t i = 0; i < sdp.media.size(); ++i) {
    const OfferedMedia& o = call.offered[i];
    if (!o.enabled || sdp.media[i].disabled()) {
      sdp.media[i].port = 0;  // rejected on either side: stays rejected (RFC 3264 §6)
      continue;
    }
    const Stream& stream = call.streams[i];
    plans[i].local = stream.local[call.offerer];
    plans[i].rtcp_mux = stream.rtcp_mux[call.offerer];
    plans[i].proto = o.offer_proto;
    if (o.offerer_srtp) plans[i].crypto.push_back({o.accepted_tag, "", o.offerer_tx});
  }
  return RewriteSdp(sdp, plans, RewriteOptionsFor(r.replace));
}

Value Handler::Delete(Request& r, Value& reply) {
  auto found = calls_.find(r.call_id);
  if (found == calls_.end()) {
    // As rtpengine does: a call already gone (a BYE and a CANCEL, a resent
    // BYE under a new cookie) is no failure for the SBC.
    r.warnings.push_back("Call-ID not found");
    reply.Set("result", "ok");
    return std::move(reply);
  }
  for (const Stream& s : found->second.streams) {
    if (!s.session.empty()) operations_.Delete(s.session).IgnoreError();
  }
  calls_.erase(found);
  reply.Set("result", "ok");
  return std::move(reply);
}

Value Handler::Query(Request& r, Value& reply) {
  auto found = calls_.find(r.call_id);
  if (found == calls_.end()) return Error(reply, "Unknown call-id");
  const Call& call = found->second;
  Value::List streams;
  int64_t packets = 0, bytes = 0, errors = 0;
  for (const Stream& s : call.streams) {
    if (s.session.empty()) continue;
    absl::StatusOr<control::SessionInfo> info = operations_.Get(s.session);
    if (!info.ok()) continue;
    Value stream(Value::Dict{});
    stream.Set("session", info->session);
    Value::List legs;
    for (size_t i = 0; i < info->legs.size(); ++i) {
      const control::LegInfo& l = info->legs[i];
      Value leg(Value::Dict{});
      leg.Set("tag", call.tags[i]);
      leg.Set("local", l.local.ToString());
      if (l.remote) leg.Set("remote", l.remote->ToString());
      leg.Set("rx-suite", l.rx_suite);
      leg.Set("tx-suite", l.tx_suite);
      leg.Set("packets", static_cast<int64_t>(l.counters.rx_packets));
      leg.Set("bytes", static_cast<int64_t>(l.counters.rx_bytes));
      leg.Set("auth-failures", static_cast<int64_t>(l.counters.auth_failures));
      packets += static_cast<int64_t>(l.counters.rx_packets);
      bytes += static_cast<int64_t>(l.counters.rx_bytes);
      errors += static_cast<int64_t>(l.counters.auth_failures + l.counters.replay_drops +
                                     l.counters.other_drops);
      legs.push_back(std::move(leg));
    }
    stream.Set("legs", Value(std::move(legs)));
    streams.push_back(std::move(stream));
  }
  Value rtp(Value::Dict{});
  rtp.Set("packets", packets);
  rtp.Set("bytes", bytes);
  rtp.Set("errors", errors);
  Value totals(Value::Dict{});
  totals.Set("RTP", std::move(rtp));
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
