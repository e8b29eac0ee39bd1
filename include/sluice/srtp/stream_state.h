// Where one SSRC's stream stands, as HA checkpoints and restores it
// (docs/ha.md): a value, copied between the control thread and Redis.
// Any thread.
#ifndef SLUICE_SRTP_STREAM_STATE_H_
#define SLUICE_SRTP_STREAM_STATE_H_

#include <cstdint>

namespace sluice::srtp {

// The highest SRTP index (ROC << 16 | SEQ, RFC 3711 §3.3.1) and the SRTCP
// index (a sender's last, a receiver's highest; 0: none).
struct StreamState {
  uint32_t ssrc = 0;
  bool rtp_used = false;
  uint64_t rtp_top = 0;
  uint32_t rtcp_index = 0;
};

}  // namespace sluice::srtp

#endif  // SLUICE_SRTP_STREAM_STATE_H_
