#include "sluice/session/policing.h"

#include <algorithm>

namespace sluice::session::policing {

void Configure(Flow& flow, uint32_t max_pps, uint64_t tsc_hz) noexcept {
  if (max_pps == 0) {
    flow.rate_interval_tsc = flow.rate_tolerance_tsc = 0;
    return;
  }
  flow.rate_interval_tsc = std::max<uint64_t>(tsc_hz / max_pps, 1);
  const uint64_t burst = std::max<uint64_t>(max_pps / 10, kMinBurst);
  flow.rate_tolerance_tsc = (burst - 1) * flow.rate_interval_tsc;
}

}  // namespace sluice::session::policing
