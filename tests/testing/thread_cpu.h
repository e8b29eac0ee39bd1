// CPU time, scheduling delay and CPU affinity of the threads of a process,
// from /proc (proc(5)): what a benchmark or load test reads of sluiced's
// worker, control or handshake thread. Any thread. Linux only.
#ifndef SLUICE_TESTS_TESTING_THREAD_CPU_H_
#define SLUICE_TESTS_TESTING_THREAD_CPU_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::testing {

// User + system seconds of thread `tid` of process `pid`; nullopt when it
// cannot be read.
std::optional<double> ThreadCpuSeconds(pid_t pid, pid_t tid);

// The first thread of `pid` whose name (comm, as pthread_setname_np set it)
// is `name`.
std::optional<pid_t> FindThread(pid_t pid, std::string_view name);

// What the scheduler did with a thread so far: the time it ran, the time it
// waited runnable for a CPU (/proc/PID/task/TID/schedstat) and how often it
// was preempted (nonvoluntary context switches).
struct ThreadSched {
  uint64_t run_ns = 0;
  uint64_t wait_ns = 0;
  uint64_t preemptions = 0;
};
std::optional<ThreadSched> ReadThreadSched(pid_t pid, pid_t tid);

// The names of the threads of `pid` that may run on `cpu` (their
// Cpus_allowed_list holds it), other than thread `except`.
std::vector<std::string> ThreadsAllowedOn(pid_t pid, int cpu, pid_t except = 0);

}  // namespace sluice::testing

#endif  // SLUICE_TESTS_TESTING_THREAD_CPU_H_
