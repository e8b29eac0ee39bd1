// The handshakes of WebRTC legs, as the session manager sees them: ICE-lite
// (RFC 8445 §2.5) and DTLS-SRTP (RFC 5763, RFC 5764) on a leg's media port,
// run on the handshake thread (sluice/webrtc/), their outcome reported back
// to the control thread as events.
//
// Control thread only: every method, and every event sink call (events are
// queued by the handshake thread and delivered from the control loop). Keys
// in a Keyed event are wiped by their MasterKey destructors; nothing here is
// logged.
#ifndef SLUICE_CONTROL_MEDIA_HANDSHAKES_H_
#define SLUICE_CONTROL_MEDIA_HANDSHAKES_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sluice/control/operations.h"
#include "sluice/crypto/suite.h"
#include "sluice/packet/address.h"
#include "sluice/srtp/master_key.h"

namespace sluice::control {

// Which leg an event is about: the session, the leg's index, and the
// generation the session manager gave the leg's handshake when it asked for
// it (an event of an older generation, from before a re-key or a delete and
// re-create under the same name, is ignored).
struct HandshakeLegId {
  std::string session;
  int leg = 0;
  uint64_t generation = 0;
};

struct HandshakeEvent {
  enum class Kind : uint8_t {
    kSelected,     // ICE: an authenticated check with USE-CANDIDATE chose `peer`
    kConsentLost,  // ICE: no authenticated check from the selected peer within the consent timeout
    kKeyed,        // DTLS: the handshake gave `rx` and `tx` (suite in both)
    kFailed,       // DTLS: no keys; `reason` says why
  };
  Kind kind = Kind::kSelected;
  HandshakeLegId id;
  packet::Endpoint peer;  // kSelected
  srtp::MasterKey rx;     // kKeyed: unprotects what the peer sends
  srtp::MasterKey tx;     // kKeyed: protects what Sluice sends to the peer
  std::string reason;     // kFailed
};

// What a new or updated leg tells the controller (for its SDP) and what
// session.get shows; never a key.
struct HandshakeView {
  std::optional<LegInfo::Dtls> dtls;
  std::optional<LegInfo::Ice> ice;
};

class MediaHandshakes {
 public:
  using EventSink = std::function<void(HandshakeEvent)>;
  virtual ~MediaHandshakes() = default;

  // Starts a leg's handshakes on its local media address: ICE-lite when
  // `ice` is given, DTLS when `dtls` is (the peer's setup and fingerprints;
  // refused with InvalidArgument naming the field for a bad fingerprint or a
  // setup that leaves no role). `remote`: without ICE, the only address DTLS
  // is spoken with. Events for the leg go to the sink given at construction.
  virtual absl::StatusOr<HandshakeView> Add(const HandshakeLegId& id,
                                            const packet::Endpoint& local,
                                            const std::optional<DtlsSpec>& dtls,
                                            const std::optional<IceSpec>& ice,
                                            const std::optional<packet::Endpoint>& remote) = 0;
  // A re-offer: a new DTLS handshake (its keys replace the leg's once keyed,
  // make-before-break) and/or new ICE peer credentials or an ICE restart.
  // `id` carries the new generation for the new handshake's events.
  virtual absl::StatusOr<HandshakeView> Update(const HandshakeLegId& id,
                                               const packet::Endpoint& local,
                                               const std::optional<DtlsSpec>& dtls,
                                               const std::optional<IceSpec>& ice) = 0;
  // The leg is gone: its handshakes stop, their memory is wiped.
  virtual void Remove(const packet::Endpoint& local) = 0;
  // The leg's state as it stands (DTLS state, profile, selected pair,
  // consent age); nullopt for a leg without handshakes.
  virtual std::optional<HandshakeView> View(const packet::Endpoint& local) const = 0;
  // What the handshakes count beyond their outcomes (Stats::Handshakes::thread).
  virtual void AddStats(Stats::Handshakes& stats) const {}
};

}  // namespace sluice::control

#endif  // SLUICE_CONTROL_MEDIA_HANDSHAKES_H_
