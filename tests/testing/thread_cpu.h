// CPU time of one thread of a process, from /proc (proc(5)): what a
// benchmark or load test reads of sluiced's control or handshake thread.
// Any thread. Linux only.
#ifndef SLUICE_TESTS_TESTING_THREAD_CPU_H_
#define SLUICE_TESTS_TESTING_THREAD_CPU_H_

#include <sys/types.h>

#include <optional>
#include <string_view>

namespace sluice::testing {

// User + system seconds of thread `tid` of process `pid`; nullopt when it
// cannot be read.
std::optional<double> ThreadCpuSeconds(pid_t pid, pid_t tid);

// The first thread of `pid` whose name (comm, as pthread_setname_np set it)
// is `name`.
std::optional<pid_t> FindThread(pid_t pid, std::string_view name);

}  // namespace sluice::testing

#endif  // SLUICE_TESTS_TESTING_THREAD_CPU_H_
