// The scheduling priority of a benchmark run against the rest of the host.
// A busy-polling worker and generator share their CPUs with whatever else
// runs there; the kernel then takes the CPU away for a few milliseconds at a
// time, longer than an RX ring holds at speed. A production relay has its
// cores to itself (isolcpus); on a shared host this is the nearest a run
// gets to that.
//
// With autogroup scheduling (sched(7): every session is a task group that
// competes as one, whatever its threads' nice values) the priority is the
// session's autogroup nice, which the generator and the sluiced it started
// share; without it, the nice value of the threads given. The previous
// value is put back when the RunPriority is destroyed.
//
// Benchmark code, main thread only. Raising a priority needs CAP_SYS_NICE.
#ifndef SLUICE_BENCH_RUN_PRIORITY_H_
#define SLUICE_BENCH_RUN_PRIORITY_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace sluice::bench {

class RunPriority {
 public:
  // Gives this session (autogroup) nice value `nice`; without autogroup
  // scheduling, gives it to each of `threads` (task ids) instead.
  static absl::StatusOr<RunPriority> Raise(int nice, const std::vector<pid_t>& threads);

  RunPriority(RunPriority&& other) noexcept;
  RunPriority& operator=(RunPriority&&) = delete;
  ~RunPriority();

  // What was raised, for a report: "autogroup nice -20", "threads nice -20".
  const std::string& what() const { return what_; }

 private:
  RunPriority() = default;
  std::optional<int> autogroup_before_;            // restored on destruction
  std::vector<std::pair<pid_t, int>> threads_before_;  // likewise
  std::string what_;
};

}  // namespace sluice::bench

#endif  // SLUICE_BENCH_RUN_PRIORITY_H_
