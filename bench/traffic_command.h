// `sluice-bench traffic`: the real sluiced relaying SRTP at speed. It starts
// sluiced with two net_memif server ports, installs the calls over the control
// socket as an SBC would, and feeds it from its own DPDK process
// (traffic_generator.h), counting every packet per call and authenticating a
// sample with libsrtp2.
//
// Benchmark tool. Starts and stops its own sluiced.
#ifndef SLUICE_BENCH_TRAFFIC_COMMAND_H_
#define SLUICE_BENCH_TRAFFIC_COMMAND_H_

namespace sluice::bench {

// Runs the command on the arguments that follow "traffic". Returns the exit
// code: 0; 1 when a packet was lost (outside --find-first-loss), failed
// authentication or came back corrupted, or sluiced misbehaved; 2 for a usage
// error.
int RunTrafficCommand(int argc, char** argv);

}  // namespace sluice::bench

#endif  // SLUICE_BENCH_TRAFFIC_COMMAND_H_
