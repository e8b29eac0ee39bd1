// The traffic generator of `sluice-bench traffic`: a DPDK process of its own
// on the other end of two net_memif ports whose server ends are sluiced's
// interfaces "a" and "b". It plays both phones of every call: phone A sends
// SRTP (protected with Sluice's engine under keys the generator chose) at a
// paced rate, round-robin over the calls; phone B receives what sluiced relays,
// counts it per call, and has libsrtp2 authenticate and decrypt about one
// packet in 64 (from up to 256 calls) and check its payload. It answers sluiced's ARP for both phones.
//
// A memif ring that is full when phone A sends counts as a loss at sluiced's
// RX ring, as a NIC's missed frames would: the wire does not wait.
//
// Benchmark code. Everything but PostKeyChange runs on the thread that called
// Start (EAL's main lcore); PostKeyChange may run on one other thread.
#ifndef SLUICE_BENCH_TRAFFIC_GENERATOR_H_
#define SLUICE_BENCH_TRAFFIC_GENERATOR_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "traffic_calls.h"

namespace sluice::bench {

struct GeneratorOptions {
  std::string socket_a, socket_b;  // memif control sockets sluiced serves
  std::string file_prefix;         // EAL's, distinct from sluiced's
  uint32_t core = 0;               // the one CPU the generator and its EAL threads run on
  uint32_t ring_log2 = 14;         // memif ring slots, log2 (as sluiced's rsize)
  // Calls whose packets libsrtp2 checks, spread evenly over all of them (its
  // sessions are costly to free by the thousand: NSS keeps a list of them).
  uint32_t verified_calls = 256;
  // Self-test: every Nth packet leaves phone A with a flipped payload bit
  // (sluiced must drop it: a loss) and every Nth check gets a flipped bit
  // before libsrtp2 sees it (an authentication failure). 0: never.
  uint32_t fault_every = 0;
};

struct TrafficRunResult {
  double target_pps = 0;
  double seconds = 0;            // sending time
  uint64_t sent = 0;             // packets phone A put on the wire
  uint64_t ring_full = 0;        // of them, refused by sluiced's full RX ring
  uint64_t received = 0;         // at phone B, from a known call
  uint64_t lost = 0;             // sent - received, summed over calls
  uint64_t calls_with_loss = 0;
  uint64_t duplicated = 0;       // received beyond sent, summed over calls
  uint64_t unexpected = 0;       // frames at phone B for no call, or malformed
  uint64_t auth_checked = 0;     // sampled packets libsrtp2 unprotected
  uint64_t auth_failures = 0;    // of them, refused by libsrtp2 under every known key
  uint64_t corrupted = 0;        // authenticated, but not the payload phone A sent
  uint64_t bad_checksums = 0;    // sampled frames with a wrong IPv4 or UDP checksum
  uint64_t send_failures = 0;    // protect failed at phone A (never expected)
  uint64_t key_changes = 0;      // re-keys the generator applied during the run
  uint64_t faults_sent = 0;      // packets sent damaged (GeneratorOptions::fault_every)
  uint64_t faults_checked = 0;   // checks given a damaged packet
  double offered_mpps = 0;       // sent / seconds
  double received_mpps = 0;      // received / seconds
  double generator_busy = 0;     // fraction of its loop's time spent working
  double generator_cpu_share = 0;  // CPU time the generator thread got / sending time
  // The generator's own hiccups: the longest its loop went round once (it was
  // descheduled), the most packets that were due and not yet sent (they go
  // out back to back after such a stall), and when the first was refused by
  // a full ring (seconds into the run; negative: never).
  double max_stall_ms = 0;
  uint64_t max_backlog = 0;
  double first_ring_full_s = -1;
};

class TrafficGenerator {
 public:
  // Starts EAL (once per process) with the two memif client ports, waits for
  // their links and learns sluiced's MAC addresses by ARP.
  static absl::StatusOr<std::unique_ptr<TrafficGenerator>> Start(const GeneratorOptions& o);
  ~TrafficGenerator();

  // The calls to send on: their ports, keys, and the libsrtp2 sessions that
  // check them. Replaces earlier calls.
  absl::Status SetCalls(const std::vector<TrafficCall>& calls);

  // Hands over a key change (see RekeyCalls); Run applies it. Safe from one
  // thread other than Run's.
  void PostKeyChange(KeyChange change);

  // Sends `pps` packets a second for `seconds`, then receives for `drain`
  // seconds more, and counts.
  TrafficRunResult Run(double pps, double seconds, double drain = 0.5);

  struct State;  // DPDK objects and per-call state (traffic_generator.cc)

 private:
  explicit TrafficGenerator(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace sluice::bench

#endif  // SLUICE_BENCH_TRAFFIC_GENERATOR_H_
