#include "sluice/control/worker_watch.h"

#include <algorithm>
#include <utility>

#include "sluice/log/logger.h"

namespace sluice::control {

WorkerWatch::WorkerWatch(session::FlowTable& table, uint32_t workers, uint64_t stall_ms)
    : table_(table),
      stall_ms_(std::max<uint64_t>(stall_ms, 1)),
      states_(std::min(workers, table.max_readers())) {}

void WorkerWatch::Poll(uint64_t now_ms) {
  if (!started_) {
    for (State& s : states_) s.last_seen_ms = now_ms;
    started_ = true;
  }
  for (uint32_t id = 0; id < states_.size(); ++id) {
    State& s = states_[id];
    const uint64_t counter = table_.ReaderCounter(id);
    s.online = counter != 0;
    // Offline holds nothing; acknowledging a probe (or any later token) is
    // a report seen.
    const bool seen = !s.online || counter >= probe_token_;
    if (seen) {
      s.last_seen_ms = now_ms;
      if (s.stalled) {
        s.stalled = false;
        log::Event(log::Level::kNotice, "worker.recovered",
                   {{"worker", id}, {"how", s.online ? "quiescent again" : "left the flow table"}});
      }
      continue;
    }
    if (!s.stalled && now_ms - s.last_seen_ms >= stall_ms_) {
      s.stalled = true;
      log::Event(log::Level::kError, "worker.stalled",
                 {{"worker", id}, {"silent_ms", now_ms - s.last_seen_ms},
                  {"effect", "deleted sessions wait to be reclaimed until it reports"}});
    }
  }
  // A fresh probe a few times per stall_ms, once the last is judged: a
  // healthy worker acknowledges each within quiescent_every polls.
  if (probe_token_ == 0 || now_ms >= probe_ms_ + std::max<uint64_t>(stall_ms_ / 4, 1)) {
    probe_token_ = table_.StartGracePeriod();
    probe_ms_ = now_ms;
  }
}

}  // namespace sluice::control
