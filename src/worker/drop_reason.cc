#include "sluice/worker/drop_reason.h"

namespace sluice::worker {

const char* DropReasonName(DropReason reason) noexcept {
  switch (reason) {
    case DropReason::kMalformedFrame: return "malformed_frame";
    case DropReason::kNotForUs: return "not_for_us";
    case DropReason::kNoFlow: return "no_flow";
    case DropReason::kNotRtp: return "not_rtp";
    case DropReason::kDtls: return "dtls";
    case DropReason::kStun: return "stun";
    case DropReason::kRtcpOnRtpPort: return "rtcp_on_rtp_port";
    case DropReason::kWrongSource: return "wrong_source";
    case DropReason::kAuthFailed: return "auth_failed";
    case DropReason::kReplayed: return "replayed";
    case DropReason::kTooOld: return "too_old";
    case DropReason::kUnknownMki: return "unknown_mki";
    case DropReason::kLifetimeExhausted: return "lifetime_exhausted";
    case DropReason::kSrtpMalformed: return "srtp_malformed";
    case DropReason::kStreamLimit: return "stream_limit";
    case DropReason::kNoTailroom: return "no_tailroom";
    case DropReason::kCryptoError: return "crypto_error";
    case DropReason::kNoRemote: return "no_remote";
    case DropReason::kNoNeighbor: return "no_neighbor";
    case DropReason::kMultiSegment: return "multi_segment";
    case DropReason::kTxFull: return "tx_full";
    case DropReason::kSlowPathFull: return "slow_path_full";
    case DropReason::kRateLimited: return "rate_limited";
    case DropReason::kHandoffFull: return "handoff_full";
    case DropReason::kWrongInterface: return "wrong_interface";
    case DropReason::kKeyRetired: return "key_retired";
    case DropReason::kNotKeyed: return "not_keyed";
    case DropReason::kHandshakeFull: return "handshake_full";
    case DropReason::kHandshakeRate: return "handshake_rate";
    case DropReason::kHandshakePeerRate: return "handshake_peer_rate";
  }
  return "unknown";
}

}  // namespace sluice::worker
