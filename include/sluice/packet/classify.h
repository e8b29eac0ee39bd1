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
// header or 12-byte RTP header to be recognised as such.
PayloadKind ClassifyPayload(std::span<const uint8_t> payload) noexcept;

}  // namespace sluice::packet

#endif  // SLUICE_PACKET_CLASSIFY_H_
