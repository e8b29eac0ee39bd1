// `sluice-bench crypto`: SRTP protect and unprotect throughput for every suite
// through Sluice's engine on each crypto backend, beside libsrtp2 and the raw
// ipsec-mb floor measured in the same run on the same core.
//
// Benchmark tool, single thread.
#ifndef SLUICE_BENCH_CRYPTO_COMMAND_H_
#define SLUICE_BENCH_CRYPTO_COMMAND_H_

namespace sluice::bench {

// Usage text for `sluice-bench crypto --help`.
extern const char kCryptoUsage[];

// Runs the command on the arguments that follow "crypto". Returns the exit
// code: 0, 1 when a measurement failed, 2 for a usage error.
int RunCryptoCommand(int argc, char** argv);

}  // namespace sluice::bench

#endif  // SLUICE_BENCH_CRYPTO_COMMAND_H_
