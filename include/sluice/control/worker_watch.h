// Watches the workers' RCU quiescent-state reports from the control loop and
// tells a stalled worker: one online in the flow table that has not passed a
// quiescent state for stall_ms. A worker reports one every quiescent_every
// polls, so a worker that stops polling stops reporting too.
//
// Control thread only. Poll reads one counter per worker and never waits;
// it logs when a worker stalls and when it recovers, once each
// (worker.stalled, worker.recovered).
#ifndef SLUICE_CONTROL_WORKER_WATCH_H_
#define SLUICE_CONTROL_WORKER_WATCH_H_

#include <cstdint>
#include <vector>

#include "sluice/session/flow_table.h"

namespace sluice::control {

class WorkerWatch {
 public:
  struct State {
    bool online = false;      // registered and online in the flow table
    bool stalled = false;     // online, and no report for stall_ms
    uint64_t last_seen_ms = 0;  // when a report (or the worker offline) was last seen
  };

  // workers: reader ids 0 .. workers-1.
  WorkerWatch(session::FlowTable& table, uint32_t workers, uint64_t stall_ms);

  // Control loop, every pass: now_ms from a steady clock.
  void Poll(uint64_t now_ms);

  const State& worker(uint32_t id) const { return states_[id]; }
  uint32_t workers() const { return static_cast<uint32_t>(states_.size()); }

 private:
  session::FlowTable& table_;
  uint64_t stall_ms_;
  std::vector<State> states_;
  // The probe: a grace-period token taken every probe interval; a worker that
  // has acknowledged it is seen alive.
  uint64_t probe_token_ = 0;
  uint64_t probe_ms_ = 0;
  bool started_ = false;
};

}  // namespace sluice::control

#endif  // SLUICE_CONTROL_WORKER_WATCH_H_
