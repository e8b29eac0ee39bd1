// Payload classification for media ports: what kind of datagram arrived.
//
// Any thread. Pure functions over a byte range; no allocation, no state.
// RFC 7983 §7 demultiplexes by the first byte; RFC 5761 §4 tells RTCP from
// RTP on a muxed port by the second byte (payload type 64-95 is RTCP).
#ifndef SLUICE_PACKET_CLASSIFY_H_
#define SLUICE_PACKET_CLASSIFY_H_

#include <cstddef>
#include <cstdint>
#include <span>

namespace sluice::packet {

enum class PayloadKind : uint8_t {
  kRtp,
  kRtcp,
  kDtls,
  kStun,
  kZrtp,
  kTurnChannel,
  kUnknown,  // too short, RTP version not 2, or a first byte no RFC assigns
};

// Name for logs and counters ("rtp", "rtcp", ...).
const char* PayloadKindName(PayloadKind kind) noexcept;

// Classifies one UDP payload. RTP/RTCP needs at least the fixed 8-byte RTCP
// header or 12-byte RTP header to be recognised as such. Inline: the parser
// calls it for every datagram.
inline PayloadKind ClassifyPayload(std::span<const uint8_t> payload) noexcept {
  if (payload.empty()) return PayloadKind::kUnknown;
  const uint8_t b = payload[0];
  // RFC 7983 §7: the first byte selects the protocol.
  if (b <= 3) return payload.size() >= 20 ? PayloadKind::kStun : PayloadKind::kUnknown;
  if (b >= 16 && b <= 19) return PayloadKind::kZrtp;
  if (b >= 20 && b <= 63) return PayloadKind::kDtls;
  if (b >= 64 && b <= 79) return PayloadKind::kTurnChannel;
  if (b < 128 || b > 191) return PayloadKind::kUnknown;
  // RTP and RTCP, version 2 (RFC 3550 §5.1). RFC 5761 §4: on a muxed port a
  // second byte of 192-223 (payload type 64-95 with the marker bit set) is
  // RTCP: SR 200, RR 201, SDES 202, BYE 203, APP 204, RTPFB 205, PSFB 206...
  if (payload.size() < 2) return PayloadKind::kUnknown;
  const uint8_t pt = payload[1];
  if (pt >= 192 && pt <= 223) {
    return payload.size() >= 8 ? PayloadKind::kRtcp : PayloadKind::kUnknown;
  }
  return payload.size() >= 12 ? PayloadKind::kRtp : PayloadKind::kUnknown;
}

}  // namespace sluice::packet

#endif  // SLUICE_PACKET_CLASSIFY_H_
