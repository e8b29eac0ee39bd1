// Timing for throughput benchmarks: run a burst loop on one thread for a fixed
// time, with set-up kept out of the timed region.
//
// Benchmark code, single thread. Not data plane.
#ifndef SLUICE_BENCH_MEASURE_H_
#define SLUICE_BENCH_MEASURE_H_

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace sluice::bench {

// Something that processes packets one burst at a time: Sluice's engine, a
// libsrtp2 session, the raw ipsec-mb floor.
class BurstLoop {
 public:
  virtual ~BurstLoop() = default;

  // Packets each Step() processes.
  virtual size_t burst() const noexcept = 0;

  // True when set-up is due before the next Step() (a ring of pre-protected
  // packets ran out). Measure() stops the clocks around Refill().
  virtual bool NeedsRefill() const noexcept { return false; }
  virtual void Refill() {}

  // Processes one burst; returns how many packets came out right. Anything
  // less than burst() is a failure that FailureDetail() explains.
  virtual size_t Step() noexcept = 0;
  virtual std::string FailureDetail() const { return "a packet failed"; }
};

struct Measurement {
  uint64_t packets = 0;
  // Timed, refills excluded. The thread's CPU time is the figure reported:
  // on a shared machine it leaves out the time another process held the core,
  // which the steady clock (wall) counts. Both are kept so a report can show
  // how busy the machine was.
  double cpu_seconds = 0;
  double wall_seconds = 0;

  double ns_per_packet() const { return packets ? cpu_seconds * 1e9 / packets : 0; }
  double wall_ns_per_packet() const { return packets ? wall_seconds * 1e9 / packets : 0; }
  double mpps() const { return cpu_seconds > 0 ? packets / cpu_seconds / 1e6 : 0; }
};

// Calls loop.Step() until at least `seconds` of timed CPU work is done. The
// clocks are read every 64 bursts, not every burst, so reading them costs a
// small fraction of a nanosecond per packet. Fails as soon as a burst does not
// come out whole.
absl::StatusOr<Measurement> Measure(BurstLoop& loop, double seconds);

// To `digits` decimals, for JSON reports; dividing by a power of ten gives
// the double nearest the decimal, which JSON then prints short.
inline double Round(double x, int digits) {
  const double scale = std::pow(10.0, digits);
  return std::round(x * scale) / scale;
}

}  // namespace sluice::bench

#endif  // SLUICE_BENCH_MEASURE_H_
