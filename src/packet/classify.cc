#include "sluice/packet/classify.h"

namespace sluice::packet {

const char* PayloadKindName(PayloadKind kind) noexcept {
  switch (kind) {
    case PayloadKind::kRtp: return "rtp";
    case PayloadKind::kRtcp: return "rtcp";
    case PayloadKind::kDtls: return "dtls";
    case PayloadKind::kStun: return "stun";
    case PayloadKind::kZrtp: return "zrtp";
    case PayloadKind::kTurnChannel: return "turn-channel";
    case PayloadKind::kUnknown: return "unknown";
  }
  return "unknown";
}

}  // namespace sluice::packet
