// Policing: each leg held to [limits] leg_max_pps packets a second, so one
// flooded leg cannot take a worker's time from every other call.
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

// Control thread, before publishing: at most max_pps packets a second into
// the flow (0: unlimited), with bursts of a tenth of a second's worth (at
// least kMinBurst) let through. tsc_hz: the TSC's frequency.
void Configure(Flow& flow, uint32_t max_pps, uint64_t tsc_hz) noexcept;

// Owning worker: whether a packet arriving at `now` (TSC) conforms; a
// conforming packet is counted against the rate.
inline bool WithinRate(Flow& flow, uint64_t now) noexcept {
  if (flow.rate_interval_tsc == 0) return true;
  const uint64_t tat = flow.rate_tat > now ? flow.rate_tat : now;
  if (tat - now > flow.rate_tolerance_tsc) return false;
  flow.rate_tat = tat + flow.rate_interval_tsc;
  return true;
}

}  // namespace sluice::session::policing

#endif  // SLUICE_SESSION_POLICING_H_
