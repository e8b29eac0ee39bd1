// The WebRTC legs of sluiced: control::MediaHandshakes on top of the
// handshake thread, one WebRtcLeg (ICE-lite agent and DTLS-SRTP endpoint)
// per leg, registered under the leg's local address.
//
// Control thread only, like the interface. How it reaches a leg: Add builds
// the leg on the control thread and then registers it (the registration
// hands it over); Update checks and builds what changes on the control
// thread, announces it in the leg's snapshot and Posts it to the handshake
// thread, which applies it before its next poll; View reads the snapshot
// (a mutex around a small struct). Events: the leg emits on the handshake
// thread, and each event is queued with PostToControl as a closure that
// calls the sink (the control loop's RunControlTasks delivers it). A closure
// that is never run wipes the keys it holds when it is destroyed.
#ifndef SLUICE_WEBRTC_WEBRTC_LEGS_H_
#define SLUICE_WEBRTC_WEBRTC_LEGS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "sluice/control/media_handshakes.h"
#include "sluice/dtls/certificate.h"
#include "sluice/dtls/endpoint.h"
#include "sluice/dtls/setup_role.h"
#include "sluice/dtls/srtp_profile.h"
#include "sluice/packet/address.h"
#include "sluice/webrtc/handshake_thread.h"
#include "sluice/webrtc/webrtc_leg.h"

namespace sluice::webrtc {

struct WebRtcLegsOptions {
  // Offered (client) or accepted (server) in this order of preference.
  std::vector<dtls::SrtpProfile> profiles = {
      dtls::SrtpProfile::kAes128CmSha1_80, dtls::SrtpProfile::kAes128CmSha1_32,
      dtls::SrtpProfile::kAeadAes128Gcm, dtls::SrtpProfile::kAeadAes256Gcm};
  uint32_t mtu = 1200;                     // largest DTLS datagram (UDP payload bytes)
  uint32_t handshake_timeout_ms = 20000;   // from the handshake's start to keys
  uint32_t initial_retransmit_ms = 1000;   // RFC 6347 §4.2.4.1
  uint64_t consent_timeout_ms = 30000;     // RFC 7675 §5.1
  // Sluice's own a=setup: actpass lets the peer's decide (RFC 5763 §5);
  // active or passive commit Sluice to a role, and a peer with the same one
  // is refused.
  dtls::Setup local_setup = dtls::Setup::kActpass;
  // The handshake thread's clock (monotonic ms), for consent ages; empty:
  // the steady clock, as the thread's default.
  std::function<uint64_t()> clock;
};

class WebRtcLegs final : public control::MediaHandshakes {
 public:
  // `thread` and what `sink` refers to must outlive this object's events
  // (HandshakeThread::Stop discards the ones not yet delivered).
  WebRtcLegs(HandshakeThread& thread, dtls::Certificate certificate, WebRtcLegsOptions options,
             EventSink sink);
  // Unregisters every leg.
  ~WebRtcLegs() override;
  WebRtcLegs(const WebRtcLegs&) = delete;
  WebRtcLegs& operator=(const WebRtcLegs&) = delete;

  // Errors: InvalidArgument naming the field ("dtls.fingerprints[1]: ...",
  // "dtls.setup: ...", "ice: ..."), AlreadyExists for a second leg at
  // `local`. A leg with neither dtls nor ice gets an empty view and no
  // handshakes. ICE credentials are generated here; the view carries them,
  // the password included.
  absl::StatusOr<control::HandshakeView> Add(const control::HandshakeLegId& id,
                                             const packet::Endpoint& local,
                                             const std::optional<control::DtlsSpec>& dtls,
                                             const std::optional<control::IceSpec>& ice,
                                             const std::optional<packet::Endpoint>& remote) override;
  // Errors as Add, NotFound for an unknown leg, FailedPrecondition for dtls
  // (or ice) on a leg created without it. The view is what the update makes
  // of the leg (a new DTLS handshake "new"; new credentials after a restart),
  // the password included. ICE events carry `id` from now on; DTLS events
  // carry it only when `dtls` starts a new handshake (else the one under way
  // keeps the generation it was asked for under).
  absl::StatusOr<control::HandshakeView> Update(const control::HandshakeLegId& id,
                                                const packet::Endpoint& local,
                                                const std::optional<control::DtlsSpec>& dtls,
                                                const std::optional<control::IceSpec>& ice) override;
  void Remove(const packet::Endpoint& local) override;
  // The ICE password included: the protocol codec puts it in create and
  // update replies only. Shows an update from the moment Update returns.
  std::optional<control::HandshakeView> View(const packet::Endpoint& local) const override;
  // The handshake thread's counters (HandshakeCounters), by their names.
  void AddStats(control::Stats::Handshakes& stats) const override;

  // Our certificate's SHA-256 fingerprint, as the views carry it.
  const std::string& fingerprint() const { return fingerprint_; }

 private:
  absl::StatusOr<std::unique_ptr<dtls::Endpoint>> MakeEndpoint(const control::DtlsSpec& spec,
                                                                bool with_ice) const;
  absl::StatusOr<ice::LiteAgent> MakeAgent(const control::IceSpec& spec) const;
  WebRtcLeg::EventFn EventsToControl() const;
  uint64_t Now() const;

  HandshakeThread& thread_;
  const dtls::Certificate certificate_;
  const WebRtcLegsOptions options_;
  const EventSink sink_;
  const std::string fingerprint_;
  absl::flat_hash_map<packet::Endpoint, std::shared_ptr<WebRtcLeg>> legs_;
};

// The peer's DTLS setup and fingerprints as DtlsSpec gives them, checked:
// Sluice's role against `local` (RFC 4145 §4, RFC 5763 §5), and the
// fingerprints Sluice can check (RFC 8122 §5: ones with a hash it does not
// accept are skipped, but one at least must remain). Errors name the field.
struct ParsedDtlsSpec {
  dtls::Role role = dtls::Role::kServer;
  std::vector<dtls::Fingerprint> fingerprints;
};
absl::StatusOr<ParsedDtlsSpec> ParseDtlsSpec(const control::DtlsSpec& spec,
                                             dtls::Setup local = dtls::Setup::kActpass);

// A DtlsSpec with neither the peer's setup nor its fingerprints: Sluice
// offers first and the peer's answer comes in an update (Add makes a leg
// that relays nothing until then, its view "new" with the setup Sluice
// offers: dtls.local_setup, else actpass with ICE, passive without).
bool AwaitsPeer(const control::DtlsSpec& spec);

// The peer's ICE credentials from an IceSpec: none when both are empty;
// otherwise both, checked (errors name the field, never the password).
absl::StatusOr<std::optional<ice::IceCredentials>> ParsePeerCredentials(
    const control::IceSpec& spec);

}  // namespace sluice::webrtc

#endif  // SLUICE_WEBRTC_WEBRTC_LEGS_H_
