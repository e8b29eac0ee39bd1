// The relay rig: sluiced's worker pipeline in process, fed on virtual ports,
// with sessions installed through the control plane's SessionManager, the same
// code a session.create request runs.
//
//   traffic (off the clock) ──► port "in", RX queue w ──► Worker w
//        Receive + Drain + Quiesce + FlushTx (as sluiced's workers run them) ──►
//   port "out", TX queue w ──► freed as a NIC frees what it sent (on the clock)
//
// Each worker's queue carries only the sessions it owns, as a NIC steering
// flows to their owner would. Every worker thread times itself (its CPU
// time), so one worker's traffic generation never counts against another.
//
// Benchmark code. Create, Run and the destructor run on the main lcore.
#ifndef SLUICE_BENCH_RELAY_RIG_H_
#define SLUICE_BENCH_RELAY_RIG_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "sluice/crypto/backend.h"
#include "sluice/crypto/suite.h"

namespace sluice::bench {

struct RelayRigOptions {
  uint32_t sessions = 1;
  uint32_t size = 172;                        // RTP packet, 12-byte header included
  std::optional<crypto::Suite> in_suite;      // how phones send to Sluice (nullopt: plain)
  std::optional<crypto::Suite> out_suite;     // how Sluice sends on (nullopt: plain)
  uint32_t workers = 1;                       // <= lcores EAL was started with
  uint16_t burst = 32;                        // 1..64
  crypto::BackendKind backend = crypto::BackendKind::kAuto;
  bool progress = false;                      // a live line on stderr
  // The ports stand for a NIC that checks received checksums and fills in
  // sent ones (every frame arrives marked RTE_MBUF_F_RX_*_CKSUM_GOOD; the
  // workers leave IPv4 and UDP checksums to the port, which the rig fills in
  // only on the frames it verifies, off the clock). False: ring ports as
  // they are, every checksum in software.
  bool nic_offloads = false;
};

struct RelayRigResult {
  std::string backend;        // the workers' crypto backend
  uint64_t packets = 0;       // relayed in the timed region, all workers
  double mpps_total = 0;      // sum over workers of packets / own CPU seconds
  double mpps_per_core = 0;   // mpps_total / workers
  double ns_per_packet = 0;   // CPU time per packet, averaged over workers
  double wall_ns_per_packet = 0;
  double gbps = 0;            // inbound frames at mpps_total, as line rate
  uint32_t frame_bytes = 0;   // one inbound Ethernet frame (no FCS)
  double bytes_per_session = 0;
  double install_seconds = 0;  // to create every session through SessionManager
  uint64_t verified = 0;       // output packets checked before timing
};

// Offered more than it can carry: what the worker still relays.
struct RelayOverloadResult {
  uint64_t offered = 0;          // packets the traffic thread made
  uint64_t ring_full_drops = 0;  // of them, lost because the RX ring was full
  uint64_t relayed = 0;          // packets the worker sent on
  uint64_t worker_drops = 0;     // drops the worker counted (all runs so far)
  std::string worker_drop_reasons;
  double offered_mpps = 0;       // over the wall time
  double relayed_mpps = 0;       // over the worker thread's CPU time
  double relayed_wall_mpps = 0;  // over the wall time
};

class RelayRig {
 public:
  // Starts EAL on first use (lcores 0..max_workers-1, no PCI). Where the host
  // has no hugepages, the rigs' packet buffers, rings and flow tables go on a
  // heap of transparent hugepages (dpdk::ThpHeap), as they would be on
  // hugepages in production; small_pages leaves them in EAL's 4 KiB pages.
  static absl::Status InitEal(uint32_t max_workers, uint32_t max_sessions,
                              bool small_pages = false);
  // Where that memory is: "hugepages", "transparent-hugepages" or
  // "small-pages".
  static std::string_view DataMemory();
  // Where the sessions' state (the hot arena) is: "hugepages" when every
  // region so far came from the host's reserved pool, "transparent-hugepages"
  // when none did, "mixed" otherwise.
  static std::string_view SessionMemory();

  // Creates ports, the flow table and the session manager, and installs the
  // sessions. Fails with a clear message on bad options or exhausted memory.
  static absl::StatusOr<std::unique_ptr<RelayRig>> Create(const RelayRigOptions& options);
  ~RelayRig();
  RelayRig(const RelayRig&) = delete;
  RelayRig& operator=(const RelayRig&) = delete;

  // Checks that the first chunk of traffic comes out exactly as each
  // session's receiver should see it, warms up, then relays for `seconds` of
  // CPU time on every worker.
  absl::StatusOr<RelayRigResult> Run(double seconds);

  // After Run, with one worker and a second lcore: another thread offers
  // fresh packets at `offered_mpps` for `seconds` while the worker relays
  // on its own lcore; what does not fit in the RX ring is dropped there, as
  // at a NIC.
  absl::StatusOr<RelayOverloadResult> RunOverload(double offered_mpps, double seconds);

  struct Impl;

 private:
  explicit RelayRig(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::bench

#endif  // SLUICE_BENCH_RELAY_RIG_H_
