// sluiced's commands in DPDK's telemetry socket (rte_telemetry), beside
// /ethdev and /eal: /sluice/stats, /sluice/workers and /sluice/sessions, so
// dpdk-telemetry.py and other DPDK tooling see the relay's counters.
//
// The commands run on DPDK's telemetry thread, which may not touch the
// session manager: a command asks the control thread for a fresh snapshot
// (Serve, from the control loop, answers within one loop turn) and waits up
// to kWait for it; past that it answers from the previous snapshot. The
// snapshot is behind a mutex that only these two threads take; no worker
// ever waits on it.
#ifndef SLUICE_METRICS_TELEMETRY_H_
#define SLUICE_METRICS_TELEMETRY_H_

#include <chrono>
#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "sluice/control/operations.h"

namespace sluice::metrics {

class Telemetry {
 public:
  static constexpr std::chrono::milliseconds kWait{500};

  // Registers the commands (once a process: DPDK cannot unregister them)
  // and makes this instance the one they read; `snapshot` is called on the
  // control thread. After EAL init.
  static absl::StatusOr<std::unique_ptr<Telemetry>> Start(std::function<control::Stats()> snapshot);
  // The commands answer "not running" from here on.
  ~Telemetry();

  // Control thread, each loop turn: takes a snapshot when a command waits.
  void Serve();

  // A command's wait for the control thread's snapshot (the telemetry
  // thread); false when it came from before the wait (stale).
  bool Fresh(control::Stats* out);

 private:
  struct State;
  explicit Telemetry(std::function<control::Stats()> snapshot);
  std::function<control::Stats()> snapshot_;
  std::unique_ptr<State> state_;
};

}  // namespace sluice::metrics

#endif  // SLUICE_METRICS_TELEMETRY_H_
