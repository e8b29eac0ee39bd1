#include "sluice/ice/lite_agent.h"

#include <algorithm>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"

namespace sluice::ice {
namespace {

void Drop(CheckResult& r, IceDropReason reason) {
  r.outcome = CheckOutcome::kDropped;
  r.reason = reason;
  r.response.clear();
}

void Refuse(CheckResult& r, IceDropReason reason, std::vector<uint8_t> response) {
  r.outcome = CheckOutcome::kRefused;
  r.reason = reason;
  r.response = std::move(response);
}

// RFC 8445 §7.3: "<local ufrag>:<peer ufrag>". The peer half is compared
// once the peer's ufrag is known; before that any non-empty one will do.
bool UsernameMatches(std::string_view username, const std::string& local,
                     const std::optional<IceCredentials>& peer) {
  if (username.size() <= local.size() || username.substr(0, local.size()) != local ||
      username[local.size()] != ':') {
    return false;
  }
  const std::string_view rest = username.substr(local.size() + 1);
  return peer ? rest == peer->ufrag : !rest.empty();
}

absl::StatusOr<IceCredentials> LocalOrGenerated(std::optional<IceCredentials> local) {
  if (!local) return GenerateIceCredentials();
  absl::Status s = ValidateIceCredentials(*local);
  if (!s.ok()) return s;
  return std::move(*local);
}

absl::Status ValidatePeer(const std::optional<IceCredentials>& peer) {
  if (!peer) return absl::OkStatus();
  absl::Status s = ValidateIceCredentials(*peer);
  if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat("peer: ", s.message()));
  return s;
}

}  // namespace

const char* IceDropReasonName(IceDropReason reason) noexcept {
  switch (reason) {
    case IceDropReason::kMalformed: return "malformed";
    case IceDropReason::kBadFingerprint: return "bad_fingerprint";
    case IceDropReason::kNoFingerprint: return "no_fingerprint";
    case IceDropReason::kIndication: return "indication";
    case IceDropReason::kNotARequest: return "not_a_request";
    case IceDropReason::kNotBinding: return "not_binding";
    case IceDropReason::kMissingAttribute: return "missing_attribute";
    case IceDropReason::kWrongUsername: return "wrong_username";
    case IceDropReason::kStaleCredentials: return "stale_credentials";
    case IceDropReason::kBadIntegrity: return "bad_integrity";
    case IceDropReason::kUnknownAttribute: return "unknown_attribute";
    case IceDropReason::kRoleConflict: return "role_conflict";
  }
  return "unknown";
}

absl::StatusOr<LiteAgent> LiteAgent::Create(std::optional<IceCredentials> local,
                                            std::optional<IceCredentials> peer,
                                            LiteAgentOptions options) {
  absl::StatusOr<IceCredentials> l = LocalOrGenerated(std::move(local));
  if (!l.ok()) return l.status();
  absl::Status s = ValidatePeer(peer);
  if (!s.ok()) return s;
  return LiteAgent(Generation{std::move(*l), std::move(peer)}, options);
}

absl::Status LiteAgent::SetPeerCredentials(IceCredentials peer) {
  absl::Status s = ValidatePeer(peer);
  if (!s.ok()) return s;
  current_.peer = std::move(peer);
  return absl::OkStatus();
}

absl::Status LiteAgent::Restart(std::optional<IceCredentials> local,
                                std::optional<IceCredentials> peer) {
  absl::StatusOr<IceCredentials> l = LocalOrGenerated(std::move(local));
  if (!l.ok()) return l.status();
  absl::Status s = ValidatePeer(peer);
  if (!s.ok()) return s;
  // RFC 8445 §9: a restart changes both the ufrag and the password.
  if (l->ufrag == current_.local.ufrag || l->pwd == current_.local.pwd) {
    return absl::InvalidArgumentError(
        "an ICE restart needs a new ufrag and a new pwd (RFC 8445 §9)");
  }
  // The selected pair keeps the credentials it was nominated under; a second
  // restart before the first completes keeps those, not the unused ones.
  if (selected_ && !previous_) previous_ = std::move(current_);
  current_ = Generation{std::move(*l), std::move(peer)};
  return absl::OkStatus();
}

std::optional<std::string> LiteAgent::peer_ufrag() const {
  if (!current_.peer) return std::nullopt;
  return current_.peer->ufrag;
}

bool LiteAgent::HasConsent(uint64_t now_ms) const noexcept {
  auto age = ConsentAgeMs(now_ms);
  return age && *age <= options_.consent_timeout_ms;
}

bool LiteAgent::ConsentExpired(uint64_t now_ms) const noexcept {
  return selected_.has_value() && !HasConsent(now_ms);
}

std::optional<uint64_t> LiteAgent::ConsentAgeMs(uint64_t now_ms) const noexcept {
  if (!selected_) return std::nullopt;
  return now_ms >= last_check_ms_ ? now_ms - last_check_ms_ : 0;
}

CheckResult LiteAgent::Handle(std::span<const uint8_t> datagram, const packet::Endpoint& from,
                              uint64_t now_ms) {
  CheckResult r;
  const StunParse parse = ParseStun(datagram);
  if (!Screen(parse, from, r)) return Count(std::move(r));
  const StunMessage& m = parse.message;
  const Generation* g = Authenticate(datagram, m, from, r);
  if (g == nullptr || !CheckIceAttributes(m, *g, r)) return Count(std::move(r));
  Accept(m, *g, from, now_ms, r);
  return Count(std::move(r));
}

// What is not a Binding request fit to authenticate goes no further, and
// gets no response (RFC 8489 §6.3: a message that fails the checks is
// discarded).
bool LiteAgent::Screen(const StunParse& parse, const packet::Endpoint& from,
                       CheckResult& r) const {
  if (from.ip.unset()) {
    Drop(r, IceDropReason::kMalformed);
  } else if (parse.status == StunParseStatus::kBadFingerprint) {
    Drop(r, IceDropReason::kBadFingerprint);
  } else if (!parse.ok()) {
    Drop(r, IceDropReason::kMalformed);
  } else if (parse.message.cls == StunClass::kIndication) {
    Drop(r, IceDropReason::kIndication);
  } else if (parse.message.cls != StunClass::kRequest) {
    Drop(r, IceDropReason::kNotARequest);
  } else if (parse.message.method != kStunBindingMethod) {
    Drop(r, IceDropReason::kNotBinding);
  } else if (!parse.message.has_fingerprint) {
    Drop(r, IceDropReason::kNoFingerprint);
  } else {
    return true;
  }
  return false;
}

// RFC 8489 §9.1.3 (short-term credentials), as RFC 8445 §7.3 requires: no
// MESSAGE-INTEGRITY or no USERNAME is a 400; a USERNAME that is not currently
// valid, or an integrity that does not verify, a 401. Neither carries
// MESSAGE-INTEGRITY: there is no key the request proved it holds.
const LiteAgent::Generation* LiteAgent::Authenticate(std::span<const uint8_t> datagram,
                                                     const StunMessage& m,
                                                     const packet::Endpoint& from,
                                                     CheckResult& r) const {
  if (!m.integrity_offset || !m.username) {
    Refuse(r, IceDropReason::kMissingAttribute, BuildBindingError(m.transaction_id, 400, {}));
    return nullptr;
  }
  const Generation* g = nullptr;
  if (UsernameMatches(*m.username, current_.local.ufrag, current_.peer)) {
    g = &current_;
  } else if (previous_ && UsernameMatches(*m.username, previous_->local.ufrag, previous_->peer)) {
    if (!selected_ || from != *selected_) {
      Refuse(r, IceDropReason::kStaleCredentials, BuildBindingError(m.transaction_id, 401, {}));
      return nullptr;
    }
    g = &*previous_;
  } else {
    Refuse(r, IceDropReason::kWrongUsername, BuildBindingError(m.transaction_id, 401, {}));
    return nullptr;
  }
  if (!VerifyStunIntegrity(datagram, m, StunKey(g->local.pwd))) {
    Refuse(r, IceDropReason::kBadIntegrity, BuildBindingError(m.transaction_id, 401, {}));
    return nullptr;
  }
  return g;
}

// Checks of an authenticated request; their error responses carry
// MESSAGE-INTEGRITY under the password that authenticated it.
bool LiteAgent::CheckIceAttributes(const StunMessage& m, const Generation& g,
                                   CheckResult& r) const {
  const auto key = StunKey(g.local.pwd);
  if (m.unknown_required_count > 0) {
    // RFC 8489 §6.3.1: 420 naming the unknown comprehension-required types.
    const size_t n = std::min(m.unknown_required_count, kStunMaxUnknown);
    Refuse(r, IceDropReason::kUnknownAttribute,
           BuildBindingError(m.transaction_id, 420, key,
                             std::span<const uint16_t>(m.unknown_required.data(), n)));
    return false;
  }
  if (!m.priority) {  // RFC 8445 §7.1.1: a check MUST carry PRIORITY
    Refuse(r, IceDropReason::kMissingAttribute, BuildBindingError(m.transaction_id, 400, key));
    return false;
  }
  // RFC 8445 §7.3.1.1: a controlled agent that keeps its role answers a
  // request with ICE-CONTROLLED with 487, and the peer switches to
  // controlling (§7.2.5.1). A lite agent always keeps the controlled role
  // (§6.1.1): it cannot nominate, so it never takes the controlling one.
  if (m.ice_controlled) {
    Refuse(r, IceDropReason::kRoleConflict, BuildBindingError(m.transaction_id, 487, key));
    return false;
  }
  return true;
}

// An authenticated check: answer it (RFC 8445 §7.3.1.2: XOR-MAPPED-ADDRESS is
// the source address), refresh the selected pair's consent when it comes from
// there (RFC 7675), and select the pair a USE-CANDIDATE nominates (RFC 8445
// §7.3.1.5, §8.2: the controlling agent's latest nomination wins).
void LiteAgent::Accept(const StunMessage& m, const Generation& g, const packet::Endpoint& from,
                       uint64_t now_ms, CheckResult& r) {
  r.outcome = CheckOutcome::kAnswered;
  r.response = BuildBindingSuccess(m.transaction_id, from, StunKey(g.local.pwd));
  const bool under_current = &g == &current_;
  if (selected_ && *selected_ == from) last_check_ms_ = now_ms;
  if (!m.use_candidate) return;
  if (!selected_ || *selected_ != from) {
    selected_ = from;
    r.selected_changed = true;
    ++counters_.nominations;
  }
  last_check_ms_ = now_ms;
  // RFC 8445 §9: the restart is complete once the new credentials nominate.
  if (under_current) previous_.reset();
}

CheckResult LiteAgent::Count(CheckResult r) {
  if (r.outcome == CheckOutcome::kAnswered) {
    ++counters_.answered;
    return r;
  }
  ++counters_.dropped[static_cast<size_t>(r.reason)];
  if (r.outcome == CheckOutcome::kRefused) ++counters_.error_responses;
  return r;
}

}  // namespace sluice::ice
