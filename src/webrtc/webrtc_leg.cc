#include "sluice/webrtc/webrtc_leg.h"

#include <algorithm>
#include <utility>

#include "sluice/crypto/suite.h"
#include "sluice/dtls/setup_role.h"
#include "sluice/dtls/srtp_profile.h"
#include "sluice/ice/candidate.h"

namespace sluice::webrtc {
namespace {

using Kind = control::HandshakeEvent::Kind;

void Inc(std::atomic<uint64_t>& c) { c.fetch_add(1, std::memory_order_relaxed); }

// Non-zero counts only, as stats shows drops.
void AddCount(std::vector<std::pair<std::string, uint64_t>>& out, const char* name, uint64_t n) {
  if (n > 0) out.emplace_back(name, n);
}

std::vector<std::string> CandidatesOf(const packet::Endpoint& local) {
  std::vector<std::string> out;
  for (const ice::HostCandidate& c : ice::HostCandidates(std::span(&local, 1))) {
    out.push_back(ice::FormatCandidateAttribute(c));
  }
  return out;
}

// RFC 6347 §4.1, §4.2.2: a handshake record of epoch 0 whose first message
// opens a handshake (ClientHello, ServerHello or HelloVerifyRequest).
constexpr size_t kDtlsRecordHeader = 13;
constexpr uint8_t kClientHello = 1;

bool OpensHandshake(std::span<const uint8_t> d) {
  if (d.size() <= kDtlsRecordHeader || d[0] != 22 || d[3] != 0 || d[4] != 0) return false;
  const uint8_t type = d[kDtlsRecordHeader];
  return type == kClientHello || type == 2 || type == 3;
}

}  // namespace

WebRtcLeg::WebRtcLeg(WebRtcLegConfig config, EventFn emit)
    : id_(std::move(config.id)),
      local_(config.local),
      remote_(config.remote),
      agent_(std::move(config.agent)),
      consent_timeout_ms_(config.consent_timeout_ms),
      restored_profile_(std::move(config.restored_profile)),
      emit_(std::move(emit)),
      has_ice_(agent_.has_value()),
      has_dtls_(config.dtls != nullptr || config.dtls_awaited),
      fingerprint_(std::move(config.fingerprint)),
      candidates_(has_ice_ ? CandidatesOf(local_) : std::vector<std::string>{}) {
  current_.endpoint = std::move(config.dtls);
  current_.id = id_;
  if (KeyedByRestore()) {
    current_.started = true;  // Sluice opens no handshake: its keys are in
    current_.reported = true;
    if (agent_ && agent_->selected()) {
      checked_.emplace_back(*agent_->selected(), config.now_ms);
      last_check_ms_ = config.now_ms;
    }
  }
  if (current_.endpoint == nullptr && has_dtls_) {
    control::LegInfo::Dtls awaited;
    awaited.state = "new";
    awaited.setup = config.awaited_setup;
    awaited.fingerprint = fingerprint_;
    snapshot_.dtls = std::move(awaited);
  }
  Publish();
}

WebRtcLeg::~WebRtcLeg() = default;

// --- MediaHandshake ----------------------------------------------------

void WebRtcLeg::OnDatagram(packet::PayloadKind kind, std::span<const uint8_t> payload,
                           const packet::Endpoint& from, uint64_t now_ms, Sender& send) {
  if (kind == packet::PayloadKind::kStun) {
    OnStun(payload, from, now_ms, send);
  } else if (kind == packet::PayloadKind::kDtls) {
    OnDtls(payload, from, now_ms, send);
  }
  Report();
  Publish();
}

uint64_t WebRtcLeg::NextTimerMs() const {
  if (StartDue()) return 0;
  uint64_t next = UINT64_MAX;
  for (const DtlsSlot* slot : {&current_, previous_ ? &*previous_ : nullptr}) {
    if (slot == nullptr || slot->endpoint == nullptr) continue;
    if (auto t = slot->endpoint->NextTimeoutMs()) next = std::min(next, *t);
  }
  // RFC 7675 §5.1: consent expires once consent_timeout_ms pass without an
  // authenticated check (the agent's HasConsent holds up to and including
  // the timeout itself).
  if (agent_ && agent_->selected() && last_check_ms_ && !consent_lost_) {
    next = std::min(next, *last_check_ms_ + consent_timeout_ms_ + 1);
  }
  return next;
}

void WebRtcLeg::OnTimer(uint64_t now_ms, Sender& send) {
  if (StartDue()) StartDtls(now_ms, send);
  RunEndpointTimer(current_, now_ms, send);
  if (previous_) RunEndpointTimer(*previous_, now_ms, send);
  CheckConsent(now_ms);
  Report();
  Publish();
}

// --- ICE ---------------------------------------------------------------

void WebRtcLeg::OnStun(std::span<const uint8_t> payload, const packet::Endpoint& from,
                       uint64_t now_ms, Sender& send) {
  if (!agent_) {
    Inc(counters_.stun_without_ice);
    return;
  }
  const ice::CheckResult r = agent_->Handle(payload, from, now_ms);
  if (!r.response.empty() && !send.Send(r.response, from)) Inc(counters_.send_refused);
  if (r.outcome != ice::CheckOutcome::kAnswered) return;
  RememberChecked(from, now_ms);
  if (auto age = agent_->ConsentAgeMs(now_ms)) last_check_ms_ = now_ms - *age;
  // A new selected pair, or consent back on the selected one (RFC 7675 §5.1:
  // a check from it refreshes consent).
  if (r.selected_changed || (consent_lost_ && agent_->HasConsent(now_ms))) {
    consent_lost_ = false;
    control::HandshakeEvent e;
    e.kind = Kind::kSelected;
    e.peer = *agent_->selected();
    Emit(std::move(e), id_);
    FollowSelectedPeer();
    StartDtls(now_ms, send);
  }
}

// A handshake Sluice began as the client and that is still under way goes
// on with the newly selected peer: after an ICE restart the re-offer's
// handshake may have begun toward the old pair before the new one was
// nominated. Its retransmissions reach the new peer from here on.
void WebRtcLeg::FollowSelectedPeer() {
  if (current_.endpoint == nullptr || !current_.started ||
      current_.endpoint->role() != dtls::Role::kClient) {
    return;
  }
  const dtls::State state = current_.endpoint->state();
  if (state == dtls::State::kKeyed || state == dtls::State::kFailed) return;
  current_.peer = agent_->selected();
}

void WebRtcLeg::RememberChecked(const packet::Endpoint& from, uint64_t now_ms) {
  for (auto& [address, heard] : checked_) {
    if (address == from) {
      heard = now_ms;
      return;
    }
  }
  if (checked_.size() >= kMaxCheckedAddresses) {
    auto oldest = std::min_element(checked_.begin(), checked_.end(),
                                   [](const auto& a, const auto& b) { return a.second < b.second; });
    checked_.erase(oldest);
  }
  checked_.emplace_back(from, now_ms);
}

void WebRtcLeg::CheckConsent(uint64_t now_ms) {
  if (!agent_ || consent_lost_ || !agent_->ConsentExpired(now_ms)) return;
  // RFC 7675 §5.1: stop sending to the peer; said once, until consent
  // returns (then kSelected again).
  consent_lost_ = true;
  control::HandshakeEvent e;
  e.kind = Kind::kConsentLost;
  e.peer = *agent_->selected();
  Emit(std::move(e), id_);
}

// --- DTLS --------------------------------------------------------------

// RFC 5763 §5 and RFC 8445: DTLS runs on the path ICE validated, so it is
// spoken with addresses that passed an authenticated check (RFC 6347
// §4.2.1: that is why no cookie exchange is needed).
bool WebRtcLeg::MaySpeakDtls(const packet::Endpoint& from) const {
  if (!agent_) return remote_ && *remote_ == from;
  return std::any_of(checked_.begin(), checked_.end(),
                     [&](const auto& c) { return c.first == from; });
}

// During a re-key, what opens a handshake goes to the new endpoint, and so
// does everything once its handshake is under way (a flight sent or
// received); until then the rest is the old handshake's (the peer's
// retransmitted last flight).
WebRtcLeg::DtlsSlot& WebRtcLeg::Route(std::span<const uint8_t> datagram) {
  if (!previous_ || current_.endpoint->state() != dtls::State::kNew ||
      OpensHandshake(datagram)) {
    return current_;
  }
  return *previous_;
}

void WebRtcLeg::OnDtls(std::span<const uint8_t> payload, const packet::Endpoint& from,
                       uint64_t now_ms, Sender& send) {
  if (current_.endpoint == nullptr || !MaySpeakDtls(from)) {
    Inc(counters_.dtls_unchecked);
    return;
  }
  // A leg restored keyed has no handshake to go on with: only a new one
  // the peer opens (RFC 6347 §4.2.1, a ClientHello to Sluice the server)
  // reaches the endpoint, and its keys re-key the leg as any handshake's.
  if (KeyedByRestore()) {
    if (current_.endpoint->role() != dtls::Role::kServer || !OpensHandshake(payload) ||
        payload[kDtlsRecordHeader] != kClientHello) {
      Inc(counters_.dtls_after_restore);
      return;
    }
    restored_profile_.clear();  // a handshake from here on, reported as any
    current_.reported = false;
  }
  DtlsSlot& slot = Route(payload);
  slot.peer = from;
  slot.started = true;  // a Feed starts the endpoint
  slot.endpoint->Feed(payload, now_ms);
  Flush(slot, send);
}

// Where a handshake Sluice begins goes: the selected peer while it has
// consent, or the configured remote without ICE.
std::optional<packet::Endpoint> WebRtcLeg::DtlsPeer() const {
  if (!agent_) return remote_;
  if (consent_lost_) return std::nullopt;
  return agent_->selected();
}

bool WebRtcLeg::StartDue() const {
  return current_.endpoint != nullptr && !current_.started && DtlsPeer().has_value();
}

// Starts the handshake's deadline; the client sends its ClientHello.
void WebRtcLeg::StartDtls(uint64_t now_ms, Sender& send) {
  if (!StartDue()) return;
  current_.peer = DtlsPeer();
  current_.started = true;
  current_.endpoint->Start(now_ms);
  Flush(current_, send);
}

void WebRtcLeg::RunEndpointTimer(DtlsSlot& slot, uint64_t now_ms, Sender& send) {
  if (slot.endpoint == nullptr) return;
  const std::optional<uint64_t> due = slot.endpoint->NextTimeoutMs();
  if (!due || *due > now_ms) return;
  slot.endpoint->OnTimer(now_ms);
  Flush(slot, send);
}

void WebRtcLeg::Flush(DtlsSlot& slot, Sender& send) {
  for (const std::vector<uint8_t>& d : slot.endpoint->TakeOutgoing()) {
    if (!slot.peer || !send.Send(d, *slot.peer)) Inc(counters_.send_refused);
  }
}

bool WebRtcLeg::KeyedByRestore() const {
  return !restored_profile_.empty() && current_.endpoint != nullptr;
}

void WebRtcLeg::Rekey(std::unique_ptr<dtls::Endpoint> endpoint) {
  if (endpoint == nullptr) return;
  restored_profile_.clear();
  // Only a keyed endpoint that still lingers has anything left to answer;
  // one that never keyed is dropped (its keys would be stale).
  const dtls::Endpoint* old = current_.endpoint.get();
  if (old != nullptr && old->state() == dtls::State::kKeyed && old->lingering()) {
    previous_ = std::move(current_);
  } else {
    previous_.reset();
  }
  current_ = DtlsSlot{};
  current_.endpoint = std::move(endpoint);
  current_.id = id_;
}

// kKeyed or kFailed for the current handshake, once.
void WebRtcLeg::Report() {
  if (previous_ && !previous_->endpoint->lingering()) previous_.reset();
  if (current_.endpoint == nullptr || current_.reported) return;
  const dtls::State state = current_.endpoint->state();
  if (state == dtls::State::kKeyed) {
    std::optional<dtls::SrtpKeys> keys = current_.endpoint->TakeKeys();
    current_.reported = true;
    if (!keys) return;
    control::HandshakeEvent e;
    e.kind = Kind::kKeyed;
    e.rx = std::move(keys->receive);
    e.tx = std::move(keys->send);
    keys.reset();
    Emit(std::move(e), current_.id);
    previous_.reset();  // the new keys are in: the old handshake is done
  } else if (state == dtls::State::kFailed) {
    current_.reported = true;
    control::HandshakeEvent e;
    e.kind = Kind::kFailed;
    e.reason = current_.endpoint->failure_reason();
    Emit(std::move(e), current_.id);
  }
}

// --- Events and the snapshot -------------------------------------------

void WebRtcLeg::Emit(control::HandshakeEvent event, const control::HandshakeLegId& id) {
  event.id = id;
  if (emit_) emit_(std::move(event));
}

// --- Re-offers -----------------------------------------------------------

void WebRtcLeg::Announce(WebRtcLegUpdate& update) {
  std::lock_guard<std::mutex> lock(mu_);
  update.announced = true;
  ++snapshot_.announced;
  if (update.endpoint != nullptr) snapshot_.dtls = DtlsView(*update.endpoint, fingerprint_);
  if (update.local && snapshot_.ice) {
    snapshot_.ice->ufrag = update.local->ufrag;
    snapshot_.pwd = update.local->pwd;
  }
}

absl::Status WebRtcLeg::Apply(WebRtcLegUpdate update) {
  id_ = std::move(update.id);
  if (update.endpoint != nullptr) Rekey(std::move(update.endpoint));
  absl::Status s;
  if ((update.local || update.peer) && !agent_) {
    s = absl::FailedPreconditionError("ice: the leg has no ICE");
  } else if (update.local) {
    s = agent_->Restart(std::move(update.local), std::move(update.peer));
  } else if (update.peer) {
    s = agent_->SetPeerCredentials(std::move(*update.peer));
  }
  if (update.announced) {
    std::lock_guard<std::mutex> lock(mu_);
    --snapshot_.announced;
  }
  Publish();
  return s;
}

control::LegInfo::Dtls WebRtcLeg::DtlsView(const dtls::Endpoint& endpoint,
                                           const std::string& fingerprint) {
  control::LegInfo::Dtls d;
  d.state = std::string(dtls::StateName(endpoint.state()));
  d.reason = endpoint.failure_reason();
  d.setup = std::string(dtls::SetupName(dtls::SetupOf(endpoint.role())));
  d.fingerprint = fingerprint;
  if (auto p = endpoint.profile()) {
    d.profile = std::string(crypto::SuiteName(dtls::GetSrtpProfileInfo(*p).suite));
  }
  const dtls::EndpointCounters& c = endpoint.counters();
  d.counts.taken = c.datagrams_received;
  std::vector<std::pair<std::string, uint64_t>>& dropped = d.counts.dropped;
  AddCount(dropped, "not_dtls", c.dropped_not_dtls);
  AddCount(dropped, "oversize", c.dropped_oversize);
  AddCount(dropped, "early_epoch", c.dropped_early_epoch);
  AddCount(dropped, "no_session", c.dropped_no_session);
  AddCount(dropped, "queue_full", c.dropped_queue_full);
  return d;
}

// What the leg itself refused, and the agent's counts: into a snapshot
// view (handshake thread).
void WebRtcLeg::AddLegCounts(control::LegInfo::Dtls* dtls, control::LegInfo::Ice* ice) const {
  if (dtls != nullptr) {
    AddCount(dtls->counts.dropped, "unchecked_source", counters_.dtls_unchecked.load());
    AddCount(dtls->counts.dropped, "stun_without_ice", counters_.stun_without_ice.load());
    AddCount(dtls->counts.dropped, "after_restore", counters_.dtls_after_restore.load());
  }
  if (ice == nullptr || !agent_) return;
  const ice::LiteAgentCounters& c = agent_->counters();
  ice->counts.taken = c.answered;
  ice->counts.dropped.clear();
  for (int r = 0; r < ice::kIceDropReasonCount; ++r) {
    AddCount(ice->counts.dropped, ice::IceDropReasonName(static_cast<ice::IceDropReason>(r)),
             c.dropped[static_cast<size_t>(r)]);
  }
}

void WebRtcLeg::Publish() {
  std::lock_guard<std::mutex> lock(mu_);
  const bool settled = snapshot_.announced == 0;
  if (current_.endpoint != nullptr && settled) {
    snapshot_.dtls = DtlsView(*current_.endpoint, fingerprint_);
    if (KeyedByRestore()) {
      snapshot_.dtls->state = "keyed";
      snapshot_.dtls->profile = restored_profile_;
    }
    AddLegCounts(&*snapshot_.dtls, nullptr);
  }
  if (!agent_) return;
  if (!snapshot_.ice) {
    snapshot_.ice.emplace();
    snapshot_.ice->candidates = candidates_;
  }
  if (settled) {
    snapshot_.ice->ufrag = agent_->local_ufrag();
    if (snapshot_.pwd != agent_->local_pwd()) snapshot_.pwd = agent_->local_pwd();
  }
  snapshot_.ice->selected = agent_->selected();
  AddLegCounts(nullptr, &*snapshot_.ice);
  snapshot_.last_check_ms = agent_->selected() ? last_check_ms_ : std::nullopt;
}

control::HandshakeView WebRtcLeg::View(uint64_t now_ms, bool with_pwd) const {
  std::lock_guard<std::mutex> lock(mu_);
  control::HandshakeView v;
  v.dtls = snapshot_.dtls;
  v.ice = snapshot_.ice;
  if (v.ice) {
    if (with_pwd) v.ice->pwd.assign(snapshot_.pwd.data(), snapshot_.pwd.size());
    if (snapshot_.last_check_ms) {
      const uint64_t last = *snapshot_.last_check_ms;
      v.ice->consent_age_ms = now_ms >= last ? now_ms - last : 0;
    }
  }
  return v;
}

}  // namespace sluice::webrtc
