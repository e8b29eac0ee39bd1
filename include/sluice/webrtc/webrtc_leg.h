// One WebRTC leg's handshakes on its media port: an ICE-lite agent (RFC 8445
// §2.5) and a DTLS-SRTP endpoint (RFC 5763, RFC 5764), either or both, and
// what they tell the control thread as HandshakeEvents (a peer selected,
// consent lost, keys, a failure).
//
// Handshake thread: every method but View(), Announce() and the counters
// (the MediaHandshake ones are HandshakeThread's calls; WebRtcLegs Posts
// Apply). View() and Announce() may be called from any thread: they use a
// snapshot under a mutex, refreshed at the end of each handshake-thread call. Keys go
// into kKeyed events only (srtp::MasterKey wipes itself); nothing is logged.
// DTLS is spoken only with an address that passed an authenticated ICE check
// (without ICE, only with the configured remote).
#ifndef SLUICE_WEBRTC_WEBRTC_LEG_H_
#define SLUICE_WEBRTC_WEBRTC_LEG_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "sluice/control/media_handshakes.h"
#include "sluice/dtls/endpoint.h"
#include "sluice/ice/credentials.h"
#include "sluice/ice/lite_agent.h"
#include "sluice/packet/address.h"
#include "sluice/webrtc/media_handshake.h"

namespace sluice::webrtc {

struct WebRtcLegConfig {
  control::HandshakeLegId id;
  packet::Endpoint local;                  // the leg's address and RTP port
  std::optional<packet::Endpoint> remote;  // without ICE: the only DTLS peer
  std::optional<ice::LiteAgent> agent;     // ICE-lite, when the leg has it
  uint64_t consent_timeout_ms = 30000;     // the agent's (RFC 7675 §5.1)
  std::unique_ptr<dtls::Endpoint> dtls;    // DTLS-SRTP, when the leg has it
  // DTLS-SRTP whose peer is not known yet (Sluice offers; the answer's
  // update brings the endpoint): the leg relays nothing until then, and its
  // view says "new" with `awaited_setup`, the setup Sluice offers.
  bool dtls_awaited = false;
  std::string awaited_setup = "actpass";
  std::string fingerprint;                 // ours, "sha-256 AB:...", for the view
  // A leg restored keyed (docs/ha.md): the suite its keys have; `dtls`
  // waits unstarted for a new handshake the peer may open (a ClientHello,
  // when Sluice is the server), and the agent's selected pair, if any, may
  // speak it. Empty: a leg that handshakes as usual.
  std::string restored_profile;
  uint64_t now_ms = 0;  // the handshake thread's clock at construction
};

// A re-offer for one leg. ICE events carry `id` from then on; DTLS events
// carry the id of the update that began their handshake (Add's, or the one
// with `endpoint`), so a leg's keys stay under the generation the session
// manager asked them for.
struct WebRtcLegUpdate {
  control::HandshakeLegId id;
  // A new DTLS handshake (new fingerprints), started toward the peer at the
  // next timer. Make-before-break: a keyed endpoint that still lingers
  // (dtls::Endpoint::lingering) keeps answering the peer's retransmissions of the old handshake
  // until the new one is keyed.
  std::unique_ptr<dtls::Endpoint> endpoint;
  // An ICE restart (RFC 8445 §9) with these new local credentials,
  // make-before-break (ice::LiteAgent::Restart).
  std::optional<ice::IceCredentials> local;
  std::optional<ice::IceCredentials> peer;  // the peer's credentials from its SDP
  bool announced = false;                   // set by WebRtcLeg::Announce
};

// Written by the handshake thread, read by anyone.
struct WebRtcLegCounters {
  std::atomic<uint64_t> dtls_unchecked{0};    // DTLS from an address ICE did not authenticate
  std::atomic<uint64_t> stun_without_ice{0};  // STUN to a leg without ICE
  std::atomic<uint64_t> send_refused{0};      // Sender::Send said no (see HandshakeCounters)
  // DTLS to a leg restored keyed that opens no new handshake (the peer's
  // retransmission of the old one, an alert): nothing left to answer it.
  std::atomic<uint64_t> dtls_after_restore{0};
};

class WebRtcLeg final : public MediaHandshake {
 public:
  // Called on the handshake thread, one event at a time, in order.
  using EventFn = std::function<void(control::HandshakeEvent)>;
  // Addresses whose authenticated checks let them speak DTLS, the most
  // recently checked kept (a flood of valid checks from many sources, which
  // needs the password, cannot grow it).
  static constexpr size_t kMaxCheckedAddresses = 8;

  WebRtcLeg(WebRtcLegConfig config, EventFn emit);
  ~WebRtcLeg() override;
  WebRtcLeg(const WebRtcLeg&) = delete;
  WebRtcLeg& operator=(const WebRtcLeg&) = delete;

  // MediaHandshake (handshake thread).
  void OnDatagram(packet::PayloadKind kind, std::span<const uint8_t> payload,
                  const packet::Endpoint& from, uint64_t now_ms, Sender& send) override;
  uint64_t NextTimerMs() const override;
  void OnTimer(uint64_t now_ms, Sender& send) override;

  // A re-offer. Announce (control thread, before the update is Posted)
  // makes View() show what the update will make of the leg (a new DTLS
  // handshake "new", an ICE restart's credentials) at once; Apply (handshake
  // thread) carries it out. Errors: only a restart or peer credentials the
  // agent refuses (WebRtcLegs checks them first).
  void Announce(WebRtcLegUpdate& update);
  absl::Status Apply(WebRtcLegUpdate update);

  // Any thread: the last snapshot; consent age as of `now_ms` (the
  // handshake thread's clock). The ICE password only when `with_pwd` (a
  // create or update reply), never otherwise.
  control::HandshakeView View(uint64_t now_ms, bool with_pwd) const;
  // What an endpoint's handshake shows (state, reason, Sluice's setup, the
  // profile as Sluice's suite name), with our `fingerprint`.
  static control::LegInfo::Dtls DtlsView(const dtls::Endpoint& endpoint,
                                         const std::string& fingerprint);

  // Fixed at construction; any thread.
  bool has_ice() const { return has_ice_; }
  bool has_dtls() const { return has_dtls_; }
  const WebRtcLegCounters& counters() const { return counters_; }

 private:
  struct DtlsSlot {
    std::unique_ptr<dtls::Endpoint> endpoint;
    control::HandshakeLegId id;  // its events
    std::optional<packet::Endpoint> peer;  // where its datagrams go
    bool started = false;
    bool reported = false;  // its kKeyed or kFailed went out
  };
  struct Snapshot {
    std::optional<control::LegInfo::Dtls> dtls;
    std::optional<control::LegInfo::Ice> ice;  // pwd left empty
    ice::SecretString pwd;
    std::optional<uint64_t> last_check_ms;
    // Updates announced and not yet applied: until they are, the handshake
    // thread leaves the announced fields (dtls, ufrag, pwd) alone.
    int announced = 0;
  };

  void OnStun(std::span<const uint8_t> payload, const packet::Endpoint& from, uint64_t now_ms,
              Sender& send);
  void OnDtls(std::span<const uint8_t> payload, const packet::Endpoint& from, uint64_t now_ms,
              Sender& send);
  void RememberChecked(const packet::Endpoint& from, uint64_t now_ms);
  bool MaySpeakDtls(const packet::Endpoint& from) const;
  DtlsSlot& Route(std::span<const uint8_t> datagram);
  std::optional<packet::Endpoint> DtlsPeer() const;
  bool StartDue() const;
  void StartDtls(uint64_t now_ms, Sender& send);
  void FollowSelectedPeer();
  void RunEndpointTimer(DtlsSlot& slot, uint64_t now_ms, Sender& send);
  void Flush(DtlsSlot& slot, Sender& send);
  void CheckConsent(uint64_t now_ms);
  void Rekey(std::unique_ptr<dtls::Endpoint> endpoint);
  bool KeyedByRestore() const;
  void Report();
  void Emit(control::HandshakeEvent event, const control::HandshakeLegId& id);
  void AddLegCounts(control::LegInfo::Dtls* dtls, control::LegInfo::Ice* ice) const;
  void Publish();

  // Handshake thread.
  control::HandshakeLegId id_;  // ICE events
  const packet::Endpoint local_;
  const std::optional<packet::Endpoint> remote_;
  std::optional<ice::LiteAgent> agent_;
  const uint64_t consent_timeout_ms_;
  DtlsSlot current_;
  std::optional<DtlsSlot> previous_;  // keyed, lingering for the old handshake's retransmissions
  std::vector<std::pair<packet::Endpoint, uint64_t>> checked_;  // address, last authenticated check
  std::optional<uint64_t> last_check_ms_;  // the selected pair's last authenticated check
  bool consent_lost_ = false;
  std::string restored_profile_;  // see WebRtcLegConfig; cleared by a re-key's update
  EventFn emit_;

  // Fixed at construction.
  const bool has_ice_;
  const bool has_dtls_;
  const std::string fingerprint_;
  const std::vector<std::string> candidates_;

  WebRtcLegCounters counters_;
  mutable std::mutex mu_;
  Snapshot snapshot_;  // guarded by mu_
};

}  // namespace sluice::webrtc

#endif  // SLUICE_WEBRTC_WEBRTC_LEG_H_
