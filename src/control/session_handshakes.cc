// The session manager's WebRTC side: legs whose keys come from a DTLS
// handshake and whose peer comes from ICE checks, run by MediaHandshakes on
// the handshake thread, their outcomes applied here (control thread).
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "sluice/control/session_manager.h"
#include "sluice/log/logger.h"

namespace sluice::control {

absl::Status SessionManager::CheckHandshakeLeg(const LegRequest& leg,
                                               const std::string& field) const {
  if ((leg.dtls || leg.ice) && handshakes_ == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, leg.dtls ? ".dtls" : ".ice",
                     ": WebRTC legs are not available (sluiced runs no handshake thread)"));
  }
  if (leg.dtls && leg.ice && leg.remote) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".remote: an ICE leg's peer is the address its checks select"));
  }
  if (leg.dtls && !leg.ice && !leg.remote) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ".remote: required for dtls without ice (the address DTLS is spoken with)"));
  }
  return absl::OkStatus();
}

// Before the session is published: a refused fingerprint or setup leaves
// nothing behind (handshakes already added are removed).
absl::Status SessionManager::AddHandshakes(const std::string& name, const CreateRequest& request,
                                           Entry& entry, const session::LegSpec specs[2]) {
  for (int i = 0; i < 2; ++i) {
    const LegRequest& leg = request.legs[static_cast<size_t>(i)];
    if (!leg.dtls && !leg.ice) continue;
    const HandshakeLegId id{name, i, next_generation_++};
    absl::StatusOr<HandshakeView> view =
        handshakes_->Add(id, specs[i].local, leg.dtls, leg.ice, leg.remote);
    if (!view.ok()) {
      if (i == 1) RemoveHandshake(entry.legs[0], specs[0].local);
      return absl::Status(view.status().code(),
                          absl::StrCat("legs[", i, "].", view.status().message()));
    }
    HandshakeState& h = *entry.legs[i].handshake;
    h.first_generation = h.dtls_generation = id.generation;
    if (leg.dtls && !leg.dtls->restored_profile.empty()) {
      h.keyed = true;
      h.keys_generation = id.generation;
    }
  }
  return absl::OkStatus();
}

absl::Status SessionManager::UpdateHandshakes(const std::string& name, Entry& entry, int leg,
                                              const UpdateRequest& request) {
  LegState& state = entry.legs[leg];
  if (!request.dtls && !request.ice) return absl::OkStatus();  // Update checked the leg has them
  if (handshakes_ == nullptr) {
    return absl::InvalidArgumentError("WebRTC legs are not available (no handshake thread)");
  }
  const HandshakeLegId id{name, leg, next_generation_++};
  absl::StatusOr<HandshakeView> view =
      handshakes_->Update(id, entry.session->local(leg), request.dtls, request.ice);
  if (!view.ok()) return view.status();
  if (request.dtls) state.handshake->dtls_generation = id.generation;
  return absl::OkStatus();
}

void SessionManager::RemoveHandshake(const LegState& leg, const packet::Endpoint& local) {
  if (handshakes_ != nullptr && (leg.dtls || leg.ice)) handshakes_->Remove(local);
}

void SessionManager::RemoveHandshakes(Entry& entry) {
  for (int i = 0; i < 2; ++i) RemoveHandshake(entry.legs[i], entry.session->local(i));
}

void SessionManager::DescribeHandshakes(const Entry& entry, int leg, LegInfo& info) const {
  if (handshakes_ == nullptr || (!entry.legs[leg].dtls && !entry.legs[leg].ice)) return;
  std::optional<HandshakeView> view = handshakes_->View(entry.session->local(leg));
  if (!view) return;
  info.dtls = std::move(view->dtls);
  info.ice = std::move(view->ice);
  if (info.dtls) HoldKeyedUntilInstalled(*entry.legs[leg].handshake, *info.dtls);
}

// The handshake thread's view says keyed as soon as the handshake is; the
// keys are in once this thread has installed them (the kKeyed event, a pass
// of the control loop later). Until then the leg's handshake is shown as
// still under way (no profile yet), or failed if its keys were refused, so
// that "keyed" always goes with its keys' suites in rx_suite and tx_suite.
void SessionManager::HoldKeyedUntilInstalled(const HandshakeState& state, LegInfo::Dtls& dtls) {
  if (dtls.state != "keyed" || state.keys_generation == state.dtls_generation) return;
  dtls.profile.clear();
  if (state.refused_generation == state.dtls_generation) {
    dtls.state = "failed";
    dtls.reason = state.refused_reason;
  } else {
    dtls.state = "handshaking";
  }
}

void SessionManager::OnHandshakeEvent(HandshakeEvent event) {
  auto it = sessions_.find(event.id.session);
  if (it == sessions_.end() || event.id.leg < 0 || event.id.leg > 1) return;
  Entry& entry = it->second;
  const int leg = event.id.leg;
  const LegState& leg_state = entry.legs[leg];
  if (leg_state.handshake == nullptr) return;
  HandshakeState& state = *leg_state.handshake;
  if (event.id.generation < state.first_generation || state.first_generation == 0) return;
  if (handshakes_ == nullptr) return;
  const std::string& leg_name = leg_state.name;
  switch (event.kind) {
    case HandshakeEvent::Kind::kSelected:
      entry.session->SetRemote(leg, event.peer);
      entry.next_hops_pending = true;
      ResolveNextHops(entry);
      if (entry.next_hops_pending) pending_.insert(&entry);
      if (state.consent_lost) {
        state.consent_lost = false;
        if (state.keyed || !leg_state.dtls) entry.session->SetKeysPending(leg, false);
      }
      ++handshake_stats_.ice_selected;
      return;
    case HandshakeEvent::Kind::kConsentLost:
      // RFC 7675 §5.1: stop sending to the peer. Media both ways waits for
      // its next authenticated check (kSelected).
      state.consent_lost = true;
      entry.session->SetKeysPending(leg, true);
      ++handshake_stats_.ice_consent_lost;
      log::Event(log::Level::kNotice, "ice.consent_lost",
                 {{"session", it->first}, {"leg", leg_name}, {"action", "media stopped"}});
      return;
    case HandshakeEvent::Kind::kKeyed:
      if (event.id.generation != state.dtls_generation) return;
      InstallHandshakeKeys(it->first, entry, leg, event);
      return;
    case HandshakeEvent::Kind::kFailed:
      if (event.id.generation != state.dtls_generation) return;
      ++handshake_stats_.dtls_failed;
      log::Event(log::Level::kNotice, "dtls.failed",
                 {{"session", it->first}, {"leg", leg_name}, {"reason", event.reason}});
      return;
  }
}

}  // namespace sluice::control
