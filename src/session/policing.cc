#include "sluice/session/policing.h"

#include <algorithm>

namespace sluice::session::policing {

namespace {

// One packet an interval, bursts of a tenth of a second (kMinBurst at
// least); 0 for both when unlimited.
void Parameters(uint32_t max_pps, uint64_t tsc_hz, uint64_t& interval, uint64_t& tolerance) {
  if (max_pps == 0) {
    interval = tolerance = 0;
    return;
  }
  interval = std::max<uint64_t>(tsc_hz / max_pps, 1);
  const uint64_t burst = std::max<uint64_t>(max_pps / 10, kMinBurst);
  tolerance = (burst - 1) * interval;
}

}  // namespace

void Configure(Flow& flow, uint32_t max_pps, uint64_t tsc_hz) noexcept {
  Parameters(max_pps, tsc_hz, flow.rate_interval_tsc, flow.rate_tolerance_tsc);
}

Rate MakeRate(uint32_t max_pps, uint64_t tsc_hz) noexcept {
  Rate r;
  Parameters(max_pps, tsc_hz, r.interval_tsc, r.tolerance_tsc);
  // The burst is kMinBurst at least, so others keep most of it.
  r.others_tolerance_tsc = r.tolerance_tsc - kPeerReserve * r.interval_tsc;
  return r;
}

}  // namespace sluice::session::policing
