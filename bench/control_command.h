// `sluice-bench control`: control-plane throughput of the real sluiced, driven
// over its control socket: session.create, re-keys (session.update) and
// session.delete per second on one pipelined connection, the re-keys with
// SRTP media flowing through the daemon when network namespaces are available.
//
// Benchmark tool. Starts and stops its own sluiced.
#ifndef SLUICE_BENCH_CONTROL_COMMAND_H_
#define SLUICE_BENCH_CONTROL_COMMAND_H_

namespace sluice::bench {

// Usage text for `sluice-bench control --help`.
extern const char kControlUsage[];

// Runs the command on the arguments that follow "control". Returns the exit
// code: 0, 1 when a request failed or sluiced misbehaved, 2 for a usage error.
int RunControlCommand(int argc, char** argv);

}  // namespace sluice::bench

#endif  // SLUICE_BENCH_CONTROL_COMMAND_H_
