#include "sluice/metrics/histogram.h"

#include <algorithm>

namespace sluice::metrics {

void Histogram::Observe(double seconds) {
  // Prometheus buckets are "less than or equal": the first bound >= seconds.
  const auto it = std::lower_bound(kLatencyBounds.begin(), kLatencyBounds.end(), seconds);
  if (it == kLatencyBounds.end()) {
    ++overflow_;
  } else {
    ++counts_[static_cast<size_t>(it - kLatencyBounds.begin())];
  }
  sum_ += seconds;
}

uint64_t Histogram::count() const {
  uint64_t n = overflow_;
  for (uint64_t c : counts_) n += c;
  return n;
}

}  // namespace sluice::metrics
