// `sluice-bench relay`: the worker pipeline end to end, beside the crypto floor
// and libsrtp2 measured in the same run.
#ifndef SLUICE_BENCH_RELAY_COMMAND_H_
#define SLUICE_BENCH_RELAY_COMMAND_H_

namespace sluice::bench {

// argv holds the options after "relay". Returns the exit status.
int RunRelayCommand(int argc, char** argv);

}  // namespace sluice::bench

#endif  // SLUICE_BENCH_RELAY_COMMAND_H_
