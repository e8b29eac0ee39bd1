// What the session manager tells about its sessions as they change, for
// replication (docs/ha.md): each create, update and delete that succeeded,
// with the request (whose key text the observer seals and wipes) and the
// reply. Control thread only; an observer never fails an operation.
#ifndef SLUICE_CONTROL_SESSION_OBSERVER_H_
#define SLUICE_CONTROL_SESSION_OBSERVER_H_

#include <optional>
#include <string>
#include <vector>

#include "sluice/control/operations.h"
#include "sluice/packet/address.h"
#include "sluice/srtp/stream_state.h"

namespace sluice::control {

// One leg's streams as a checkpoint sees them, and its peer now.
struct LegStreams {
  std::vector<srtp::StreamState> rx;
  std::vector<srtp::StreamState> tx;
  std::optional<packet::Endpoint> remote;
  // The SEQ shift of what the leg sends (LegRequest::tx_seq_offset): set
  // by a restore, kept by every checkpoint after it.
  uint16_t tx_seq_offset = 0;
};

class SessionObserver {
 public:
  virtual ~SessionObserver() = default;
  virtual void OnCreated(const CreateRequest& request, const SessionInfo& reply) = 0;
  virtual void OnUpdated(const UpdateRequest& request, const SessionInfo& reply) = 0;
  virtual void OnDeleted(const std::string& session) = 0;
  // A WebRTC leg's DTLS handshake keyed it and its keys are installed, as
  // SDES values (wiped after the call): `rx` unprotects what the peer
  // sends, `tx` protects what Sluice sends; `profile`, their suite's name.
  virtual void OnLegKeyed(const std::string& session, int leg, const std::string& profile,
                          const std::string& rx, const std::string& tx) {}
};

}  // namespace sluice::control

#endif  // SLUICE_CONTROL_SESSION_OBSERVER_H_
