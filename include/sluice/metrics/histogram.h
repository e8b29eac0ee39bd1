// A latency histogram with fixed bucket bounds, for the control plane's
// request latencies (exposed as a Prometheus histogram).
//
// One thread writes and reads it (the control thread). Does not allocate
// after construction.
#ifndef SLUICE_METRICS_HISTOGRAM_H_
#define SLUICE_METRICS_HISTOGRAM_H_

#include <array>
#include <cstdint>
#include <span>

#include "sluice/metrics/exposition.h"

namespace sluice::metrics {

class Histogram {
 public:
  // Upper bounds in seconds, from 50 µs (a stats request) to 2.5 s (a
  // create that waits on a slow disk or a swapped-out page).
  static constexpr std::array<double, 14> kLatencyBounds = {
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
      0.01,    0.025,  0.05,    0.1,    0.25,  1.0,    2.5};

  // Counts `seconds` in the first bucket whose bound is >= it (le).
  void Observe(double seconds);

  uint64_t count() const;
  double sum() const { return sum_; }
  HistogramValue Value() const {
    return {.bounds = kLatencyBounds, .counts = counts_, .overflow = overflow_, .sum = sum_};
  }

 private:
  std::array<uint64_t, kLatencyBounds.size()> counts_{};
  uint64_t overflow_ = 0;
  double sum_ = 0;
};

}  // namespace sluice::metrics

#endif  // SLUICE_METRICS_HISTOGRAM_H_
