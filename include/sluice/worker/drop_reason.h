// Why the data plane dropped a packet. Every drop has one, and a counter.
//
// Any thread.
#ifndef SLUICE_WORKER_DROP_REASON_H_
#define SLUICE_WORKER_DROP_REASON_H_

#include <cstdint>

namespace sluice::worker {

enum class DropReason : uint8_t {
  kMalformedFrame,    // packet::ParseFrame refused it (see parse errors)
  kNotForUs,          // IP but not UDP/ICMP, or not IP/ARP at all
  kNoFlow,            // no leg at this destination address and port
  kNotRtp,            // payload neither RTP nor RTCP (and not STUN/DTLS)
  kDtls,              // DTLS on a leg that does no handshake (Flow::handshake unset)
  kStun,              // STUN on a leg that does no handshake (Flow::handshake unset)
  kRtcpOnRtpPort,     // RTCP on a non-muxed leg's RTP port, or RTP on its RTCP port
  kWrongSource,       // from an address that is not the leg's peer
  kAuthFailed,        // SRTP/SRTCP tag did not verify
  kReplayed,
  kTooOld,
  kUnknownMki,
  kLifetimeExhausted,
  kSrtpMalformed,     // not a well-formed RTP/RTCP packet for its context
  kStreamLimit,       // more SSRCs than a leg keeps state for
  kNoTailroom,
  kCryptoError,
  kNoRemote,          // the other leg's peer is not known yet
  kNoNeighbor,        // next-hop MAC unknown
  kMultiSegment,      // chained mbuf: not relayed
  kTxFull,            // TX queue full
  kSlowPathFull,      // slow-path ring full
  kRateLimited,       // leg over its packet rate
  kHandoffFull,       // the owning worker's hand-off ring is full
  kWrongInterface,    // arrived on another port or VLAN than its leg's interface
  kKeyRetired,        // a replaced master key's MKI after the re-key overlap
  kNotKeyed,          // RTP/RTCP of a flow whose keys a handshake has not given yet
  kHandshakeFull,     // STUN/DTLS for the handshake thread: its ring is full
  kHandshakeRate,     // STUN/DTLS from a non-peer over the leg's [webrtc] handshake_max_pps
  kHandshakePeerRate, // STUN/DTLS from the peer's address over its own handshake_max_pps
};
// Counters are indexed by reason: append reasons above, and name the last here.
inline constexpr int kDropReasonCount = static_cast<int>(DropReason::kHandshakePeerRate) + 1;

// Stable names for counters ("auth_failed", ...).
const char* DropReasonName(DropReason reason) noexcept;

}  // namespace sluice::worker

#endif  // SLUICE_WORKER_DROP_REASON_H_
