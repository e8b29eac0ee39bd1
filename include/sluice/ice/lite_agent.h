// One ICE-lite agent (RFC 8445 §2.5) per WebRTC leg: it answers the peer's
// connectivity checks (§7.3), takes the peer address an authenticated
// nomination selects, and says whether that pair still has consent (RFC 7675).
//
// Handshake/control thread only; one agent is used by one thread at a time.
// Guarantees: the selected peer address changes only on a check that carries
// USE-CANDIDATE and authenticates under the leg's short-term credentials;
// anything else from the network is answered or dropped as the RFCs say and
// counted by reason, never a crash. The local password is never logged.
#ifndef SLUICE_ICE_LITE_AGENT_H_
#define SLUICE_ICE_LITE_AGENT_H_

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sluice/ice/credentials.h"
#include "sluice/ice/stun.h"
#include "sluice/packet/address.h"

namespace sluice::ice {

// Why a datagram was not accepted as a check. Some get an error response
// (the code in brackets), the others nothing.
enum class IceDropReason : uint8_t {
  kMalformed,          // ParseStun refused it (or `from` had no address)
  kBadFingerprint,     // FINGERPRINT present and wrong
  kNoFingerprint,      // a request without FINGERPRINT (RFC 8445 §7: checks carry one)
  kIndication,         // a Binding indication: a keepalive (RFC 8445 §11), ignored
  kNotARequest,        // a response: a lite agent sends no requests
  kNotBinding,         // a request for another method than Binding
  kMissingAttribute,   // [400] no USERNAME or MESSAGE-INTEGRITY, or no PRIORITY
  kWrongUsername,      // [401] USERNAME is not "<local ufrag>:<peer ufrag>"
  kStaleCredentials,   // [401] pre-restart credentials from another than the selected address
  kBadIntegrity,       // [401] MESSAGE-INTEGRITY does not verify under the password
  kUnknownAttribute,   // [420] an unknown comprehension-required attribute
  kRoleConflict,       // [487] the peer says it is controlled too
};
inline constexpr int kIceDropReasonCount = 12;

// Stable names for counters ("wrong_username", ...).
const char* IceDropReasonName(IceDropReason reason) noexcept;

enum class CheckOutcome : uint8_t {
  kAnswered,  // an authenticated check: a success response to send
  kRefused,   // an error response to send (see the reason)
  kDropped,   // nothing to send (see the reason)
};

struct CheckResult {
  CheckOutcome outcome = CheckOutcome::kDropped;
  IceDropReason reason = IceDropReason::kMalformed;  // when outcome is not kAnswered
  bool selected_changed = false;   // this check nominated a new selected peer address
  std::vector<uint8_t> response;   // to send back to `from`; empty when nothing is sent
};

struct LiteAgentCounters {
  uint64_t answered = 0;         // success responses
  uint64_t nominations = 0;      // changes of the selected peer address
  uint64_t error_responses = 0;  // 400, 401, 420, 487 sent
  std::array<uint64_t, kIceDropReasonCount> dropped{};  // by reason, answered or not
};

struct LiteAgentOptions {
  // RFC 7675 §5.1: consent expires 30 s after the last authenticated check.
  uint64_t consent_timeout_ms = 30000;
};

class LiteAgent {
 public:
  // `local`: the leg's credentials, generated when not given. `peer`: the
  // peer's from its SDP, when known; until then the peer half of USERNAME is
  // not checked (RFC 8445 §7.3: checks may come before the peer's SDP).
  static absl::StatusOr<LiteAgent> Create(std::optional<IceCredentials> local = std::nullopt,
                                          std::optional<IceCredentials> peer = std::nullopt,
                                          LiteAgentOptions options = {});

  // Handles one datagram that arrived on the leg's port from `from`, at
  // `now_ms` (any monotonic clock in milliseconds).
  CheckResult Handle(std::span<const uint8_t> datagram, const packet::Endpoint& from,
                     uint64_t now_ms);

  // A restored leg (docs/ha.md): the pair checks had selected before the
  // restart, with consent as of `now_ms` (the peer's next consent check,
  // under the same credentials, refreshes it; RFC 7675 §5.1).
  void AdoptSelected(const packet::Endpoint& peer, uint64_t now_ms) noexcept {
    selected_ = peer;
    last_check_ms_ = now_ms;
  }

  // The peer's credentials, once its SDP arrives.
  absl::Status SetPeerCredentials(IceCredentials peer);

  // ICE restart (RFC 8445 §9): new local credentials (generated when not
  // given; both ufrag and password must change) and the peer's new ones.
  // Make-before-break: the credentials the selected pair was using stay valid
  // for checks from the selected address, so its consent can be refreshed and
  // media keeps flowing there, until a check under the new credentials
  // nominates a pair; then the old ones are dropped. Without a selected pair
  // the old credentials go at once.
  absl::Status Restart(std::optional<IceCredentials> local, std::optional<IceCredentials> peer);

  const std::string& local_ufrag() const noexcept { return current_.local.ufrag; }
  // A credential: for the SDP answer only, never for logs.
  const SecretString& local_pwd() const noexcept { return current_.local.pwd; }
  // The peer's ufrag, when known.
  std::optional<std::string> peer_ufrag() const;
  // True between a Restart with a selected pair and the first nomination
  // under the new credentials.
  bool restart_pending() const noexcept { return previous_.has_value(); }

  // The selected peer address, once a check nominated one.
  const std::optional<packet::Endpoint>& selected() const noexcept { return selected_; }
  // RFC 7675: the selected pair had an authenticated check from its peer
  // address within consent_timeout_ms. The caller sends media to selected()
  // only while this holds.
  bool HasConsent(uint64_t now_ms) const noexcept;
  // A selected pair whose consent has lapsed: stop sending to it.
  bool ConsentExpired(uint64_t now_ms) const noexcept;
  // Milliseconds since the selected pair's last authenticated check.
  std::optional<uint64_t> ConsentAgeMs(uint64_t now_ms) const noexcept;

  const LiteAgentCounters& counters() const noexcept { return counters_; }

 private:
  struct Generation {
    IceCredentials local;
    std::optional<IceCredentials> peer;
  };

  explicit LiteAgent(Generation current, LiteAgentOptions options)
      : options_(options), current_(std::move(current)) {}

  bool Screen(const StunParse& parse, const packet::Endpoint& from, CheckResult& r) const;
  const Generation* Authenticate(std::span<const uint8_t> datagram, const StunMessage& m,
                                 const packet::Endpoint& from, CheckResult& r) const;
  bool CheckIceAttributes(const StunMessage& m, const Generation& g, CheckResult& r) const;
  void Accept(const StunMessage& m, const Generation& g, const packet::Endpoint& from,
              uint64_t now_ms, CheckResult& r);
  CheckResult Count(CheckResult r);

  LiteAgentOptions options_;
  Generation current_;
  std::optional<Generation> previous_;  // pre-restart, for the selected pair only
  std::optional<packet::Endpoint> selected_;
  uint64_t last_check_ms_ = 0;  // the selected pair's last authenticated check
  LiteAgentCounters counters_;
};

}  // namespace sluice::ice

#endif  // SLUICE_ICE_LITE_AGENT_H_
