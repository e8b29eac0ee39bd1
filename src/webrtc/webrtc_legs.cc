#include "sluice/webrtc/webrtc_legs.h"

#include <chrono>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "sluice/dtls/fingerprint.h"
#include "sluice/ice/credentials.h"

namespace sluice::webrtc {
namespace {

absl::Status Prefixed(absl::string_view field, const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat(field, ": ", s.message()));
}

}  // namespace

absl::StatusOr<ParsedDtlsSpec> ParseDtlsSpec(const control::DtlsSpec& spec, dtls::Setup local) {
  ParsedDtlsSpec out;
  const std::optional<dtls::Setup> peer = dtls::SetupFromName(spec.setup);
  if (!peer) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dtls.setup: '", spec.setup, "' is not active, passive, actpass or holdconn (RFC 4145 §4)"));
  }
  absl::StatusOr<dtls::Role> role = dtls::ResolveRole(*peer, local);
  if (!role.ok()) return absl::InvalidArgumentError(absl::StrCat("dtls.", role.status().message()));
  out.role = *role;
  for (size_t i = 0; i < spec.fingerprints.size(); ++i) {
    absl::StatusOr<dtls::Fingerprint> f = dtls::ParseFingerprint(spec.fingerprints[i]);
    // RFC 8122 §5: an SDP may carry fingerprints in several hashes; the ones
    // Sluice does not accept are skipped.
    if (f.status().code() == absl::StatusCode::kUnimplemented) continue;
    if (!f.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("dtls.fingerprints[", i, "]: ", f.status().message()));
    }
    out.fingerprints.push_back(*f);
  }
  if (out.fingerprints.empty()) {
    return absl::InvalidArgumentError(
        spec.fingerprints.empty()
            ? "dtls.fingerprints: the peer's certificate fingerprint is needed (RFC 8122 §5)"
            : "dtls.fingerprints: none uses a hash Sluice accepts (sha-1, sha-224, sha-256, "
              "sha-384, sha-512)");
  }
  return out;
}

absl::StatusOr<std::optional<ice::IceCredentials>> ParsePeerCredentials(
    const control::IceSpec& spec) {
  if (spec.ufrag.empty() && spec.pwd.empty()) return std::optional<ice::IceCredentials>();
  ice::IceCredentials peer = ice::MakeIceCredentials(spec.ufrag, spec.pwd);
  absl::Status s = ice::ValidateIceCredentials(peer);
  if (!s.ok()) return Prefixed("ice", s);
  return std::optional<ice::IceCredentials>(std::move(peer));
}

WebRtcLegs::WebRtcLegs(HandshakeThread& thread, dtls::Certificate certificate,
                       WebRtcLegsOptions options, EventSink sink)
    : thread_(thread),
      certificate_(std::move(certificate)),
      options_(std::move(options)),
      sink_(std::move(sink)),
      fingerprint_(dtls::FormatFingerprint(certificate_.GetFingerprint(dtls::HashFunction::kSha256))) {}

WebRtcLegs::~WebRtcLegs() {
  for (const auto& [local, leg] : legs_) thread_.Unregister(local);
}

uint64_t WebRtcLegs::Now() const {
  if (options_.clock) return options_.clock();
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

bool AwaitsPeer(const control::DtlsSpec& spec) {
  return spec.setup.empty() && spec.fingerprints.empty();
}

namespace {

// Sluice's own setup: the controller's (dtls.local_setup), else
// `configured`. Without ICE, Sluice takes the server's role when it may
// choose: the handshake thread answers only addresses it has heard from, so
// it cannot send the first flight to a peer that has not spoken yet, and a
// controller that forces Sluice active there is refused.
absl::StatusOr<dtls::Setup> LocalSetup(const control::DtlsSpec& spec, bool with_ice,
                                       dtls::Setup configured) {
  dtls::Setup local = configured;
  if (!spec.local_setup.empty()) {
    const std::optional<dtls::Setup> forced = dtls::SetupFromName(spec.local_setup);
    if (!forced || *forced == dtls::Setup::kActpass || *forced == dtls::Setup::kHoldconn) {
      return absl::InvalidArgumentError("dtls.local_setup: must be \"active\" or \"passive\"");
    }
    local = *forced;
  }
  if (!with_ice && local == dtls::Setup::kActive) {
    return absl::InvalidArgumentError(
        "dtls.local_setup: active needs ice (without it Sluice cannot open the handshake to a "
        "peer that has not spoken yet)");
  }
  if (!with_ice && local == dtls::Setup::kActpass) local = dtls::Setup::kPassive;
  return local;
}

}  // namespace

// A peer without ICE that insists on being the server (passive) is refused
// for the same reason as LocalSetup's active.
absl::StatusOr<std::unique_ptr<dtls::Endpoint>> WebRtcLegs::MakeEndpoint(
    const control::DtlsSpec& spec, bool with_ice) const {
  if (!with_ice && spec.setup == "passive") {
    return absl::InvalidArgumentError(
        "dtls.setup: a peer without ice must be active or actpass (Sluice, passive, waits for "
        "its first flight)");
  }
  absl::StatusOr<dtls::Setup> local = LocalSetup(spec, with_ice, options_.local_setup);
  if (!local.ok()) return local.status();
  absl::StatusOr<ParsedDtlsSpec> parsed = ParseDtlsSpec(spec, *local);
  if (!parsed.ok()) return parsed.status();
  dtls::EndpointOptions o;
  o.role = parsed->role;
  o.peer_fingerprints = std::move(parsed->fingerprints);
  o.profiles = options_.profiles;
  o.mtu = options_.mtu;
  o.handshake_timeout_ms = options_.handshake_timeout_ms;
  o.initial_retransmit_ms = options_.initial_retransmit_ms;
  absl::StatusOr<std::unique_ptr<dtls::Endpoint>> e = dtls::Endpoint::Create(certificate_, o);
  if (!e.ok()) return Prefixed("dtls", e.status());
  return e;
}

absl::StatusOr<ice::LiteAgent> WebRtcLegs::MakeAgent(const control::IceSpec& spec) const {
  absl::StatusOr<std::optional<ice::IceCredentials>> peer = ParsePeerCredentials(spec);
  if (!peer.ok()) return peer.status();
  ice::LiteAgentOptions o;
  o.consent_timeout_ms = options_.consent_timeout_ms;
  // A restored leg keeps the credentials the peer's checks use.
  std::optional<ice::IceCredentials> local;
  if (!spec.local_ufrag.empty()) local = ice::MakeIceCredentials(spec.local_ufrag, spec.local_pwd);
  absl::StatusOr<ice::LiteAgent> agent = ice::LiteAgent::Create(std::move(local), std::move(*peer), o);
  if (!agent.ok()) return Prefixed("ice", agent.status());
  if (spec.selected) agent->AdoptSelected(*spec.selected, Now());
  return agent;
}

// The leg's events, each queued for the control loop as one closure. The
// closure shares the event (a std::function must be copyable) so its keys
// are not copied again; whoever drops the last reference wipes them.
WebRtcLeg::EventFn WebRtcLegs::EventsToControl() const {
  return [thread = &thread_, sink = sink_](control::HandshakeEvent event) {
    if (!sink) return;
    auto shared = std::make_shared<control::HandshakeEvent>(std::move(event));
    thread->PostToControl([sink, shared] { sink(std::move(*shared)); });
  };
}

absl::StatusOr<control::HandshakeView> WebRtcLegs::Add(
    const control::HandshakeLegId& id, const packet::Endpoint& local,
    const std::optional<control::DtlsSpec>& dtls, const std::optional<control::IceSpec>& ice,
    const std::optional<packet::Endpoint>& remote) {
  if (!dtls && !ice) return control::HandshakeView{};
  if (legs_.contains(local)) {
    return absl::AlreadyExistsError(
        absl::StrCat("a WebRTC leg is already at ", local.ToString()));
  }
  WebRtcLegConfig config;
  config.id = id;
  config.local = local;
  config.remote = remote;
  config.consent_timeout_ms = options_.consent_timeout_ms;
  config.fingerprint = fingerprint_;
  if (dtls && AwaitsPeer(*dtls)) {
    absl::StatusOr<dtls::Setup> setup = LocalSetup(*dtls, ice.has_value(), options_.local_setup);
    if (!setup.ok()) return setup.status();
    config.dtls_awaited = true;
    config.awaited_setup = std::string(dtls::SetupName(*setup));
  } else if (dtls) {
    absl::StatusOr<std::unique_ptr<dtls::Endpoint>> e = MakeEndpoint(*dtls, ice.has_value());
    if (!e.ok()) return e.status();
    config.dtls = std::move(*e);
    config.restored_profile = dtls->restored_profile;
  }
  config.now_ms = Now();
  if (ice) {
    absl::StatusOr<ice::LiteAgent> agent = MakeAgent(*ice);
    if (!agent.ok()) return agent.status();
    config.agent.emplace(std::move(*agent));
  }
  auto leg = std::make_shared<WebRtcLeg>(std::move(config), EventsToControl());
  absl::Status s = thread_.Register(local, leg);
  if (!s.ok()) return s;
  legs_.emplace(local, leg);
  return leg->View(Now(), /*with_pwd=*/true);
}

absl::StatusOr<control::HandshakeView> WebRtcLegs::Update(
    const control::HandshakeLegId& id, const packet::Endpoint& local,
    const std::optional<control::DtlsSpec>& dtls, const std::optional<control::IceSpec>& ice) {
  auto it = legs_.find(local);
  if (it == legs_.end()) {
    return absl::NotFoundError(absl::StrCat("no WebRTC leg at ", local.ToString()));
  }
  std::shared_ptr<WebRtcLeg> leg = it->second;
  if (dtls && !leg->has_dtls()) {
    return absl::FailedPreconditionError("dtls: the leg was created without dtls");
  }
  if (ice && !leg->has_ice()) {
    return absl::FailedPreconditionError("ice: the leg was created without ice");
  }
  // A Posted task must be copyable: it holds the update by pointer.
  auto update = std::make_shared<WebRtcLegUpdate>();
  update->id = id;
  if (dtls) {
    absl::StatusOr<std::unique_ptr<dtls::Endpoint>> e = MakeEndpoint(*dtls, leg->has_ice());
    if (!e.ok()) return e.status();
    update->endpoint = std::move(*e);
  }
  if (ice) {
    absl::StatusOr<std::optional<ice::IceCredentials>> peer = ParsePeerCredentials(*ice);
    if (!peer.ok()) return peer.status();
    update->peer = std::move(*peer);
    if (ice->restart) {
      absl::StatusOr<ice::IceCredentials> local_credentials = ice::GenerateIceCredentials();
      if (!local_credentials.ok()) return Prefixed("ice", local_credentials.status());
      update->local = std::move(*local_credentials);
    }
  }
  // The reply (and any View from now on) shows what the update makes of the
  // leg; the handshake thread applies it before its next poll. Checked above,
  // so Apply succeeds (a restart's generated credentials equal the old ones
  // only by a 2^-48 chance; then the agent refuses the restart).
  leg->Announce(*update);
  thread_.Post([leg, update] { (void)leg->Apply(std::move(*update)); });
  return leg->View(Now(), /*with_pwd=*/true);
}

void WebRtcLegs::Remove(const packet::Endpoint& local) {
  // The thread drops its reference at its next poll; the leg (its keys,
  // OpenSSL session and ICE password, all wiped) goes with the last one.
  thread_.Unregister(local);
  legs_.erase(local);
}

void WebRtcLegs::AddStats(control::Stats::Handshakes& stats) const {
  const HandshakeCounters& c = thread_.counters();
  const std::pair<const char*, const std::atomic<uint64_t>*> counters[] = {
      {"received", &c.received},         {"dispatched", &c.dispatched},
      {"no_handler", &c.no_handler},     {"malformed", &c.malformed},
      {"timers", &c.timers},             {"sent", &c.sent},
      {"tx_full", &c.tx_full},           {"unknown_remote", &c.unknown_remote},
      {"too_large", &c.too_large},       {"no_mbuf", &c.no_mbuf},
      {"remotes_forgotten", &c.remotes_forgotten}};
  for (const auto& [name, counter] : counters) {
    stats.thread.emplace_back(name, counter->load(std::memory_order_relaxed));
  }
}

std::optional<control::HandshakeView> WebRtcLegs::View(const packet::Endpoint& local) const {
  auto it = legs_.find(local);
  if (it == legs_.end()) return std::nullopt;
  return it->second->View(Now(), /*with_pwd=*/true);
}

}  // namespace sluice::webrtc
