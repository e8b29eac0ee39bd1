// Policing: each leg held to [limits] leg_max_pps packets a second, so one
// flooded leg cannot take a worker's time from every other call; and a
// WebRTC leg's STUN and DTLS to [webrtc] handshake_max_pps, so one flooded
// port cannot fill the handshake thread's ring, which every WebRTC leg
// shares (the worker hands them over before anything authenticates them).
// Everything is held to that one rate, the leg's peer included: a source
// address proves nothing (anyone can claim the peer's), so no address may
// pass more. What comes from the peer's address may use the whole burst,
// others only the burst less kPeerReserve packets, so strangers flooding
// the port leave the peer's consent checks room; a spoofer claiming the
// peer's address spends the leg's allowance, never the ring's.
//
// A generic cell rate algorithm (ITU-T I.371, virtual scheduling): a packet
// conforms unless it arrives more than the tolerance ahead of its
// theoretical arrival time, which each conforming packet pushes one interval
// on. The worker applies it after authentication, so forged packets cannot
// spend a leg's allowance and starve its real peer.
//
// Control plane: Configure before the flow is published. Data plane, the
// flow's owning worker only: WithinRate. Does not allocate.
#ifndef SLUICE_SESSION_POLICING_H_
#define SLUICE_SESSION_POLICING_H_

#include <cstdint>

#include "sluice/session/flow.h"

namespace sluice::session::policing {

// The smallest burst let through at full speed, in packets.
inline constexpr uint32_t kMinBurst = 64;
// Of a handshake rate's burst, what only the leg's peer's address may use.
inline constexpr uint32_t kPeerReserve = 16;

// Control thread, before publishing: at most max_pps packets a second into
// the flow (0: unlimited), with bursts of a tenth of a second's worth (at
// least kMinBurst) let through. tsc_hz: the TSC's frequency.
void Configure(Flow& flow, uint32_t max_pps, uint64_t tsc_hz) noexcept;

// A rate every flow shares: [webrtc] handshake_max_pps for the STUN and
// DTLS a WebRTC leg's port takes (Flow::handshake), kept by each worker.
struct Rate {
  uint64_t interval_tsc = 0;  // 0: unlimited
  uint64_t tolerance_tsc = 0;         // from the peer's address
  uint64_t others_tolerance_tsc = 0;  // from others: kPeerReserve intervals less
};
Rate MakeRate(uint32_t max_pps, uint64_t tsc_hz) noexcept;

// Virtual scheduling: whether a packet at `now` conforms to one every
// `interval` with `tolerance` of burst; a conforming one moves `tat` on.
inline bool Conforms(uint64_t interval, uint64_t tolerance, uint64_t& tat,
                     uint64_t now) noexcept {
  if (interval == 0) return true;
  const uint64_t t = tat > now ? tat : now;
  if (t - now > tolerance) return false;
  tat = t + interval;
  return true;
}

// Owning worker: whether a packet arriving at `now` (TSC) conforms; a
// conforming packet is counted against the rate.
inline bool WithinRate(Flow& flow, uint64_t now) noexcept {
  return Conforms(flow.rate_interval_tsc, flow.rate_tolerance_tsc, flow.rate_tat, now);
}

// Owning worker: whether a STUN or DTLS datagram arriving at `now` may go
// to the handshake thread; `from_peer`: its source is the leg's peer's
// address, which may use the reserve.
inline bool HandshakeWithinRate(Flow& flow, const Rate& rate, bool from_peer,
                                uint64_t now) noexcept {
  return Conforms(rate.interval_tsc, from_peer ? rate.tolerance_tsc : rate.others_tolerance_tsc,
                  flow.handshake_tat, now);
}

}  // namespace sluice::session::policing

#endif  // SLUICE_SESSION_POLICING_H_
