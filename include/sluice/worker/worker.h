// A poll-mode worker: receives bursts from its RX queues and relays each
// packet between the two legs of its call.
//
// Data plane. One Worker per lcore; it alone calls its methods (Run, or
// PollOnce, Receive and ProcessBurst from a benchmark or a test). In the
// loop it never allocates, locks, logs, throws or makes a system call.
//
// A burst takes these steps, in this order (Receive spreads the first four
// over four polls so that memory loads overlap other bursts' work):
//   PrefetchFrames        its mbufs and frames start loading
//   ParseAndLookUp        parse, slow path, bulk flow lookup, hand-off to
//                         the owning worker; the flows start loading
//   PrefetchSessionState  the peers and SRTP contexts start loading
//   Relay                 AdoptRekeys, Admit, Unprotect, PoliceAndLearn,
//                         Protect, RewriteAndTransmit
// Relay's steps follow DPDK lib/ipsec's burst contract: each returns how
// many packets stay good, those first in arrival order, the rejected ones
// after them with their drop reason; DropRejected alone counts and frees
// those. Crypto is submitted per burst: one unprotect call for the burst's
// SRTP and one for its SRTCP, then likewise for protect.
#ifndef SLUICE_WORKER_WORKER_H_
#define SLUICE_WORKER_WORKER_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "sluice/crypto/backend.h"
#include "sluice/packet/parse.h"
#include "sluice/packet/rewrite.h"
#include "sluice/session/flow_table.h"
#include "sluice/session/policing.h"
#include "sluice/srtp/engine.h"
#include "sluice/worker/drop_reason.h"

struct rte_mbuf;
struct rte_ring;

namespace sluice::worker {

// Per-worker counters: written by their worker only, summed by readers.
struct alignas(64) WorkerCounters {
  std::atomic<uint64_t> rx_packets{0};
  std::atomic<uint64_t> tx_packets{0};
  std::atomic<uint64_t> rx_bytes{0};  // whole frames (pkt_len)
  std::atomic<uint64_t> tx_bytes{0};
  std::atomic<uint64_t> slow_path_packets{0};
  std::atomic<uint64_t> handed_off{0};
  std::atomic<uint64_t> neighbor_held{0};  // to the slow path to wait for a next hop
  std::atomic<uint64_t> handshake_packets{0};  // STUN and DTLS to the handshake thread
  std::atomic<uint64_t> busy_cycles{0};
  std::atomic<uint64_t> idle_cycles{0};
  std::array<std::atomic<uint64_t>, kDropReasonCount> drops{};
  std::array<std::atomic<uint64_t>, packet::kParseErrorCount> parse_errors{};

  uint64_t total_drops() const;
};

struct RxQueue {
  uint16_t port;
  uint16_t queue;
};

// What a port's NIC fills in on transmit (DPDK's RTE_ETH_TX_OFFLOAD_*_CKSUM,
// enabled when the port was configured). The worker then writes only the
// pseudo-header sum and leaves reading the payload to the NIC.
struct TxChecksumOffload {
  bool ipv4_header = false;
  bool udp = false;
};

struct WorkerConfig {
  uint32_t id = 0;               // RCU reader id and TX queue index on every port
  std::vector<RxQueue> rx_queues;
  uint16_t tx_queue = 0;
  uint16_t burst = 32;
  session::FlowTable* table = nullptr;
  rte_ring* slow_path = nullptr;  // ARP, ICMP: handed over here (null: dropped)
  // A frame whose next hop's MAC is not known yet goes here, its headers
  // written but for the destination MAC and mbuf->port set to where it
  // leaves, to wait for the slow path's answer (SlowPath::hold_ring). Null,
  // or the ring full: dropped as no_neighbor.
  rte_ring* neighbor_hold = nullptr;
  // Hand-off rings, indexed by worker id: a packet whose flow another worker
  // owns goes to that worker's ring (where RSS cannot steer by destination
  // port). Empty with a single worker.
  std::vector<rte_ring*> handoff;
  // Frames the control thread wants sent (ARP, neighbour discovery, echo
  // replies), each with mbuf->port set: this worker sends them on its own TX
  // queue, so no port needs a TX queue for the control thread. Null on all
  // workers but one.
  rte_ring* control_tx = nullptr;
  // STUN and DTLS that arrive at a leg taking them (Flow::handshake), whole
  // mbufs with mbuf->port set, for the handshake thread (many producers, one
  // consumer: sluice/webrtc/handshake_thread.h). Null: dropped as dtls/stun.
  rte_ring* handshake = nullptr;
  // At most this many of them a second from one leg's port (its peer's
  // apart), so a flooded port cannot fill the ring every WebRTC leg shares
  // ([webrtc] handshake_max_pps; beyond it: handshake_rate). Default:
  // unlimited.
  session::policing::Rate handshake_rate;
  crypto::Backend* backend = nullptr;
  // By port id; a port past the end offloads nothing.
  std::vector<TxChecksumOffload> tx_checksum_offload;
  packet::ParseOptions parse;
  uint32_t quiescent_every = 256;  // loop iterations between RCU reports
};

class Worker {
 public:
  static constexpr uint16_t kMaxBurst = 64;
  static constexpr uint16_t kMaxPorts = 16;

  // Bursts Receive holds at once: the newest (its frames loading), the one
  // before (parsed and looked up, its flows loading), the one before that
  // (its peers and contexts loading), and the oldest, which it relays.
  static constexpr uint32_t kPipelineDepth = 4;

  explicit Worker(const WorkerConfig& config);
  ~Worker();

  // Start, PollOnce until `stop` is set, Stop.
  void Run(const std::atomic<bool>& stop) noexcept;

  // Registers the worker as a reader of the flow table (RCU), on the thread
  // that will poll.
  void Start() noexcept;
  // One iteration of the poll loop: the control thread's frames to send,
  // the hand-off ring and every RX queue through Receive; on a poll that
  // brings nothing, Drain; FlushTx; every quiescent_every polls, Quiesce.
  // Each poll's time counts as busy or idle when the next poll (or Stop)
  // begins. Returns the packets received.
  uint32_t PollOnce() noexcept;
  // Relays what is held, sends it, and leaves the flow table's readers.
  void Stop() noexcept;

  // `port` in ProcessBurst and Receive: the DPDK port the packets were
  // received on (PollOnce: the queue it polled; a driver may leave
  // mbuf->port unset); kPortInMbuf: each mbuf's port says (the hand-off
  // ring, whose packets the polling worker marked). A packet is relayed only
  // when it arrived on its leg's port and VLAN (session::ArrivedOnLeg).
  static constexpr uint16_t kPortInMbuf = UINT16_MAX;

  // Relays n (<= kMaxBurst) received packets: every mbuf is either queued for
  // TX, handed to the slow path, or freed with a counted drop reason.
  void ProcessBurst(rte_mbuf** pkts, uint16_t n, uint16_t port = kPortInMbuf) noexcept;

  // ProcessBurst spread over four calls, so that the loads a burst of cold
  // frames and sessions waits for happen while the core relays the burst
  // received three calls earlier: each call takes the newest burst through
  // PrefetchFrames, the one before through ParseAndLookUp, the one before
  // that through PrefetchSessionState, and relays the oldest. Packets of a
  // flow leave in the order they came. Until Drain, up to three bursts stay
  // held, and with them references to their flows: report quiescence with
  // Quiesce only.
  void Receive(rte_mbuf** pkts, uint16_t n, uint16_t port = kPortInMbuf) noexcept;
  // Relays every burst Receive holds, oldest first. A worker that Receive
  // was used on is drained before it is destroyed (Run does).
  void Drain() noexcept;
  uint32_t held_packets() const noexcept;
  // Drains, sends, and reports an RCU quiescent state to the flow table: the
  // only way a worker reports one (Run, every quiescent_every polls), so
  // that no held packet ever refers to a flow across a report.
  void Quiesce() noexcept;

  // Sends what ProcessBurst queued.
  void FlushTx() noexcept;

  const WorkerCounters& counters() const { return counters_; }
  const WorkerConfig& config() const { return config_; }

  struct Item;  // one packet's scratch between steps, defined in worker.cc

 private:
  struct CryptoQueue;  // one direction's crypto for a burst, defined in worker.cc
  struct Batch;        // a burst between steps, defined in worker.cc

  // The pipeline, in the order a burst takes it (see the top of this file).
  void PrefetchFrames(rte_mbuf** pkts, uint16_t n, uint16_t port, Batch& batch) noexcept;
  void ParseAndLookUp(Batch& batch) noexcept;
  void PrefetchSessionState(Batch& batch) noexcept;
  void Relay(Batch& batch) noexcept;

  // ParseAndLookUp's steps. ParseFrames keeps the burst's UDP frames (the
  // rest go to the slow path or are dropped) and returns how many.
  uint16_t ParseFrames(Batch& batch, session::FlowKey* keys) noexcept;
  void HandOff(Batch& batch) noexcept;

  // Relay's steps. Each takes the burst's live packets (the items
  // batch.order[0, n) names) and returns how many stay good; see the top
  // of this file. AdoptRekeys takes the burst's packets with a flow; Admit
  // queues the crypto Unprotect submits, Protect its own. Admit also takes
  // the handshake thread's packets out of the burst (`live`, its n, shrinks
  // by them).
  uint16_t AdoptRekeys(Batch& batch, uint64_t now) noexcept;
  uint16_t Admit(Batch& batch, uint16_t& live) noexcept;
  uint16_t Unprotect(Batch& batch, uint16_t n) noexcept;
  uint16_t PoliceAndLearn(Batch& batch, uint16_t n, uint64_t now) noexcept;
  uint16_t Protect(Batch& batch, uint16_t n) noexcept;
  uint16_t RewriteAndTransmit(Batch& batch, uint16_t n) noexcept;
  // Admit, for STUN and DTLS: to the handshake ring (true, item.m cleared),
  // or rejected with a reason.
  bool TakeHandshake(Item& item, uint16_t port) noexcept;
  // Counts and frees the packets batch.order[good, n); returns good.
  uint16_t DropRejected(Batch& batch, uint16_t good, uint16_t n) noexcept;

  // RewriteAndTransmit, per packet: new headers in front of the payload;
  // false (and the item rejected) when the way out is not known yet.
  bool WriteHeaders(Item& item) noexcept;
  uint8_t* BuildHeaders(Item& item, const TxChecksumOffload& offload,
                        std::optional<uint16_t> payload_sum) noexcept;
  void SetTxOffload(rte_mbuf* m, const uint8_t* frame, uint16_t out_port) noexcept;
  // The mbuf made the frame at `frame` up to the payload's end.
  void FinishFrame(Item& item, uint8_t* frame, uint16_t out_port) noexcept;
  // No next hop yet: the packet, its headers written with no destination
  // MAC, goes to config_.neighbor_hold (taken: item.m cleared) or is
  // rejected as no_neighbor. Returns null either way.
  uint8_t* HoldForNeighbor(Item& item, packet::UdpHeaderSpec& spec, uint16_t out_port) noexcept;

  void Drop(rte_mbuf* m, DropReason reason) noexcept;
  void Enqueue(uint16_t port, rte_mbuf* m) noexcept;

  WorkerConfig config_;
  srtp::Engine engine_;
  WorkerCounters counters_;
  uint16_t ip_id_ = 0;
  std::array<std::array<rte_mbuf*, kMaxBurst>, kMaxPorts> tx_;
  std::array<uint16_t, kMaxPorts> tx_count_{};
  // Per port: what its NIC fills in, and the mbuf TX flags that ask for it
  // on an IPv4 and an IPv6 frame (0: the worker writes every checksum).
  std::array<TxChecksumOffload, kMaxPorts> tx_offload_{};
  std::array<std::array<uint64_t, 2>, kMaxPorts> tx_flags_{};
  bool any_tx_offload_ = false;  // some port has TX checksum offloads
  // Receive's bursts; head_ is where the next one goes.
  std::unique_ptr<Batch[]> batches_;
  uint32_t head_ = 0;
  // PollOnce: polls since the last Quiesce; the TSC at the start of the
  // current (or last) poll, which Relay uses as its clock while polling; and
  // whether the last poll was busy.
  uint32_t polls_since_quiescent_ = 0;
  uint64_t poll_start_ = 0;
  bool polling_ = false;
  bool poll_busy_ = false;
};

}  // namespace sluice::worker

#endif  // SLUICE_WORKER_WORKER_H_
