// What sluiced exports at /metrics: the control plane's stats (worker,
// port, session, key and handshake counters, read without locks from what
// the workers publish), the control front ends' requests and latencies, and
// the endpoint's own counters, as one Prometheus exposition.
//
// Control thread only. Labels are low-cardinality by construction: worker
// ids, interface names, reasons, protocols, suites; never a session or an
// address.
#ifndef SLUICE_METRICS_SLUICE_METRICS_H_
#define SLUICE_METRICS_SLUICE_METRICS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/control/operations.h"
#include "sluice/metrics/histogram.h"
#include "sluice/metrics/http_endpoint.h"

namespace sluice::metrics {

// One control front end's requests ("native", "tls", "ng").
struct FrontEndMetrics {
  std::string_view protocol;
  uint64_t requests = 0;
  uint64_t errors = 0;
  const Histogram* latency = nullptr;
};

struct SluiceMetricsInput {
  std::string_view version;
  const control::Stats* stats = nullptr;
  uint64_t tsc_hz = 0;  // for the workers' busy and idle cycles
  std::vector<FrontEndMetrics> front_ends;
  const HttpCounters* http = nullptr;  // the endpoint's own; may be null
};

// The exposition body (text format 0.0.4).
std::string RenderSluiceMetrics(const SluiceMetricsInput& input);

}  // namespace sluice::metrics

#endif  // SLUICE_METRICS_SLUICE_METRICS_H_
