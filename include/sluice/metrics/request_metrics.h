// What a control front end (native socket, TLS, ng) counts of the requests
// it serves: how many, how many were answered with an error, and how long
// each took (a histogram), for the metrics endpoint.
//
// Control thread only: written by the front end, read by the exposition.
#ifndef SLUICE_METRICS_REQUEST_METRICS_H_
#define SLUICE_METRICS_REQUEST_METRICS_H_

#include <chrono>
#include <cstdint>

#include "sluice/metrics/histogram.h"

namespace sluice::metrics {

struct RequestMetrics {
  uint64_t requests = 0;
  uint64_t errors = 0;
  Histogram latency;  // seconds, from a request's whole arrival to its reply being queued

  void Record(std::chrono::steady_clock::time_point start, bool error) {
    ++requests;
    if (error) ++errors;
    latency.Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
};

}  // namespace sluice::metrics

#endif  // SLUICE_METRICS_REQUEST_METRICS_H_
