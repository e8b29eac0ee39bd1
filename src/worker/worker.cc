#include "sluice/worker/worker.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>
#include <rte_ring.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "sluice/dpdk/ingress_vlan.h"
#include "sluice/session/learning.h"
#include "sluice/session/policing.h"
#include "sluice/session/rekey.h"

namespace sluice::worker {
namespace {

using session::Flow;
using session::FlowCounters;

void Inc(std::atomic<uint64_t>& c, uint64_t n = 1) noexcept { FlowCounters::Add(c, n); }

DropReason FromVerdict(srtp::Verdict v) noexcept {
  switch (v) {
    case srtp::Verdict::kAuthFailed: return DropReason::kAuthFailed;
    case srtp::Verdict::kReplayed: return DropReason::kReplayed;
    case srtp::Verdict::kTooOld: return DropReason::kTooOld;
    case srtp::Verdict::kUnknownMki: return DropReason::kUnknownMki;
    case srtp::Verdict::kLifetimeExhausted: return DropReason::kLifetimeExhausted;
    case srtp::Verdict::kStreamLimit: return DropReason::kStreamLimit;
    case srtp::Verdict::kNoTailroom: return DropReason::kNoTailroom;
    case srtp::Verdict::kCryptoError: return DropReason::kCryptoError;
    case srtp::Verdict::kKeyRetired: return DropReason::kKeyRetired;
    default: return DropReason::kSrtpMalformed;
  }
}

// Lines of each received frame prefetched at the start of a burst: a G.711
// or Opus frame with its headers (up to 256 bytes) whole.
constexpr uint32_t kPrefetchFrameLines = 4;

}  // namespace

uint64_t WorkerCounters::total_drops() const {
  uint64_t total = 0;
  for (const auto& d : drops) total += d.load(std::memory_order_relaxed);
  return total;
}

struct Worker::Item {
  rte_mbuf* m;
  Flow* flow;
  packet::ParsedFrame frame;
  srtp::Packet pkt;  // the UDP payload, protected or not
  bool rtcp;
  bool not_keyed;      // its flow's keys_pending, as AdoptRekeys saw it
  bool rejected;       // by a Relay step, for `reason`
  DropReason reason;
  session::learning::Source source;  // what its source is to the leg
};

// One direction's SRTP and SRTCP crypto for a burst, queued by the step
// before it and submitted to the engine at once; the verdicts land on the
// items they came from.
struct Worker::CryptoQueue {
  srtp::Job rtp_jobs[kMaxBurst], rtcp_jobs[kMaxBurst];
  uint8_t rtp_items[kMaxBurst], rtcp_items[kMaxBurst];
  uint16_t n_rtp = 0, n_rtcp = 0;

  void Clear() noexcept { n_rtp = n_rtcp = 0; }
  void Add(srtp::Context* ctx, Item& it, uint8_t i) noexcept {
    if (it.rtcp) {
      rtcp_jobs[n_rtcp] = srtp::Job{ctx, &it.pkt};
      rtcp_items[n_rtcp++] = i;
    } else {
      rtp_jobs[n_rtp] = srtp::Job{ctx, &it.pkt};
      rtp_items[n_rtp++] = i;
    }
  }
  // Runs `rtp` and `rtcp` (engine calls, which return how many verdicts are
  // kOk) over the queued jobs and rejects the items whose verdict is not
  // kOk; returns how many it rejected.
  template <typename RtpFn, typename RtcpFn>
  uint16_t Run(Item* items, RtpFn rtp, RtcpFn rtcp) noexcept;
};

// A burst between steps: as received (rx[0, n)) until ParseAndLookUp, then
// its UDP packets (items[0, k)) and their flows; in Relay, the live packets
// are the items order[0, n) names.
struct Worker::Batch {
  rte_mbuf* rx[kMaxBurst];
  Item items[kMaxBurst];
  session::FlowRef refs[kMaxBurst];
  uint8_t order[kMaxBurst];
  CryptoQueue crypto;  // Relay: what Unprotect, then Protect, submits
  uint16_t n = 0;
  uint16_t k = 0;
  uint16_t port = kPortInMbuf;  // where it was received (kPortInMbuf: each mbuf says)
  uint16_t packets = 0;  // held: rx until parsed, then items not handed off
  bool held = false;     // from PrefetchFrames until Relay
};
static_assert(Worker::kMaxBurst <= 256, "Batch::order holds item indices in a byte");

namespace {

// Relay steps reject a packet by marking it; the step's Partition then
// moves it past the good ones.
void Reject(Worker::Item& it, DropReason reason) noexcept {
  it.rejected = true;
  it.reason = reason;
}

// The port a packet of `batch_port`'s burst was received on.
[[gnu::always_inline]] inline uint16_t ReceivedOn(uint16_t batch_port,
                                                  const rte_mbuf* m) noexcept {
  return batch_port != Worker::kPortInMbuf ? batch_port : m->port;
}

// Whether a packet received on `port` came through its flow's leg's
// interface: that port, and the outermost VLAN, which a NIC that strips tags
// leaves in the mbuf. Reads the mbuf's and the flow's first lines only,
// which the steps around it read too.
[[gnu::always_inline]] inline bool CameThroughLegInterface(
    const Flow& flow, uint16_t port, const rte_mbuf* m, const packet::ParsedFrame& frame) noexcept {
  return session::ArrivedOnLeg(flow, port, dpdk::IngressVlan(m, frame));
}

}  // namespace

template <typename RtpFn, typename RtcpFn>
uint16_t Worker::CryptoQueue::Run(Item* items, RtpFn rtp, RtcpFn rtcp) noexcept {
  srtp::Verdict verdicts[kMaxBurst];
  uint16_t rejected = 0;
  auto settle = [&](uint16_t count, const uint8_t* idx) {
    for (uint16_t j = 0; j < count; ++j) {
      if (verdicts[j] == srtp::Verdict::kOk) continue;
      Reject(items[idx[j]], FromVerdict(verdicts[j]));
      ++rejected;
    }
  };
  if (n_rtp > 0 && rtp(std::span<const srtp::Job>(rtp_jobs, n_rtp),
                        std::span<srtp::Verdict>(verdicts, n_rtp)) != n_rtp) {
    settle(n_rtp, rtp_items);
  }
  if (n_rtcp > 0 && rtcp(std::span<const srtp::Job>(rtcp_jobs, n_rtcp),
                         std::span<srtp::Verdict>(verdicts, n_rtcp)) != n_rtcp) {
    settle(n_rtcp, rtcp_items);
  }
  return rejected;
}

Worker::Worker(const WorkerConfig& config)
    : config_(config), engine_(*config.backend), batches_(new Batch[kPipelineDepth]) {
  if (config_.burst == 0 || config_.burst > kMaxBurst) config_.burst = kMaxBurst;
  for (size_t port = 0; port < std::min<size_t>(kMaxPorts, config_.tx_checksum_offload.size());
       ++port) {
    const TxChecksumOffload& o = config_.tx_checksum_offload[port];
    tx_offload_[port] = o;
    uint64_t v4 = 0, v6 = 0;
    if (o.ipv4_header) v4 |= RTE_MBUF_F_TX_IP_CKSUM;
    if (o.udp) {
      v4 |= RTE_MBUF_F_TX_UDP_CKSUM;
      v6 |= RTE_MBUF_F_TX_IPV6 | RTE_MBUF_F_TX_UDP_CKSUM;
    }
    if (v4 != 0) v4 |= RTE_MBUF_F_TX_IPV4;
    tx_flags_[port] = {v4, v6};
    any_tx_offload_ |= v4 != 0 || v6 != 0;
  }
}

Worker::~Worker() = default;

// --- The poll loop -----------------------------------------------------

void Worker::Run(const std::atomic<bool>& stop) noexcept {
  Start();
  while (!stop.load(std::memory_order_relaxed)) PollOnce();
  Stop();
}

void Worker::Start() noexcept {
  config_.table->RegisterReader(config_.id);
  polls_since_quiescent_ = 0;
  poll_start_ = rte_rdtsc();
  poll_busy_ = false;
}

uint32_t Worker::PollOnce() noexcept {
  // One TSC read a poll: the previous poll's time, busy or idle, ends where
  // this one starts, and this one's packets are relayed as of its start.
  const uint64_t start = rte_rdtsc();
  Inc(poll_busy_ ? counters_.busy_cycles : counters_.idle_cycles, start - poll_start_);
  poll_start_ = start;
  polling_ = true;
  rte_mbuf* pkts[kMaxBurst];
  if (config_.control_tx != nullptr) {
    const unsigned n = rte_ring_sc_dequeue_burst(
        config_.control_tx, reinterpret_cast<void**>(pkts), config_.burst, nullptr);
    for (unsigned i = 0; i < n; ++i) Enqueue(pkts[i]->port, pkts[i]);
  }
  uint32_t received = 0;
  if (config_.id < config_.handoff.size() && config_.handoff[config_.id] != nullptr) {
    const unsigned n = rte_ring_sc_dequeue_burst(
        config_.handoff[config_.id], reinterpret_cast<void**>(pkts), config_.burst, nullptr);
    if (n > 0) {
      received += n;
      Receive(pkts, static_cast<uint16_t>(n));
    }
  }
  for (const RxQueue& q : config_.rx_queues) {
    const uint16_t n = rte_eth_rx_burst(q.port, q.queue, pkts, config_.burst);
    if (n == 0) continue;
    received += n;
    Receive(pkts, n, q.port);
  }
  // A quiet poll sends what is held: under load a packet waits at most
  // three bursts, and without load none.
  const bool report = ++polls_since_quiescent_ >= config_.quiescent_every;
  const bool drained = received == 0 && held_packets() > 0;
  if (drained) Drain();
  FlushTx();
  poll_busy_ = received > 0 || drained;
  if (report) {
    Quiesce();
    polls_since_quiescent_ = 0;
  }
  polling_ = false;
  return received;
}

void Worker::Stop() noexcept {
  Drain();
  FlushTx();
  Inc(poll_busy_ ? counters_.busy_cycles : counters_.idle_cycles, rte_rdtsc() - poll_start_);
  config_.table->UnregisterReader(config_.id);
}

void Worker::ProcessBurst(rte_mbuf** pkts, uint16_t n, uint16_t port) noexcept {
  Batch batch;
  PrefetchFrames(pkts, n, port, batch);
  ParseAndLookUp(batch);
  PrefetchSessionState(batch);
  Relay(batch);
}

void Worker::Receive(rte_mbuf** pkts, uint16_t n, uint16_t port) noexcept {
  // The oldest burst goes out first, so every flow's packets keep their
  // order; while its crypto runs, the loads the three later bursts started
  // arrive.
  static_assert(kPipelineDepth == 4);
  auto aged = [&](uint32_t age) -> Batch& {
    return batches_[(head_ + kPipelineDepth - age) % kPipelineDepth];
  };
  PrefetchFrames(pkts, n, port, aged(0));
  if (Batch& b = aged(1); b.held) ParseAndLookUp(b);
  if (Batch& b = aged(2); b.held) PrefetchSessionState(b);
  if (Batch& b = aged(3); b.held) Relay(b);
  head_ = (head_ + 1) % kPipelineDepth;
}

void Worker::Drain() noexcept {
  for (uint32_t age = kPipelineDepth - 1; age >= 1; --age) {
    Batch& b = batches_[(head_ + kPipelineDepth - age) % kPipelineDepth];
    // The newest held burst has only had its frames prefetched.
    if (b.held && age == 1) ParseAndLookUp(b);
    if (b.held) Relay(b);
  }
}

void Worker::Quiesce() noexcept {
  // Nothing held may refer to a flow past this point: a flow removed before
  // it is freed once every worker has passed it.
  Drain();
  FlushTx();
  config_.table->Quiescent(config_.id);
}

uint32_t Worker::held_packets() const noexcept {
  uint32_t n = 0;
  for (uint32_t i = 0; i < kPipelineDepth; ++i) n += batches_[i].held ? batches_[i].packets : 0;
  return n;
}

// --- Drops and TX ------------------------------------------------------

void Worker::Drop(rte_mbuf* m, DropReason reason) noexcept {
  Inc(counters_.drops[static_cast<size_t>(reason)]);
  rte_pktmbuf_free(m);
}

[[gnu::always_inline]] inline void Worker::Enqueue(uint16_t port, rte_mbuf* m) noexcept {
  if (port >= kMaxPorts) {
    Drop(m, DropReason::kTxFull);
    return;
  }
  if (tx_count_[port] == kMaxBurst) FlushTx();
  tx_[port][tx_count_[port]++] = m;
}

void Worker::FlushTx() noexcept {
  for (uint16_t port = 0; port < kMaxPorts; ++port) {
    const uint16_t n = tx_count_[port];
    if (n == 0) continue;
    // Lengths are read before the burst: a driver may free what it sent.
    uint64_t bytes = 0;
    for (uint16_t i = 0; i < n; ++i) bytes += tx_[port][i]->pkt_len;
    const uint16_t sent = rte_eth_tx_burst(port, config_.tx_queue, tx_[port].data(), n);
    for (uint16_t i = sent; i < n; ++i) {
      bytes -= tx_[port][i]->pkt_len;
      Drop(tx_[port][i], DropReason::kTxFull);
    }
    Inc(counters_.tx_packets, sent);
    Inc(counters_.tx_bytes, bytes);
    tx_count_[port] = 0;
  }
}

// --- The pipeline's first three steps: loads started ahead -------------

void Worker::PrefetchFrames(rte_mbuf** pkts, uint16_t n, uint16_t port, Batch& batch) noexcept {
  batch.n = n;
  batch.k = 0;
  batch.port = port;
  batch.packets = n;
  batch.held = n > 0;
  Inc(counters_.rx_packets, n);
  // The frames arrive cold (a NIC writes them to memory): every line of a
  // frame the burst will read is asked for a poll before the first is
  // parsed (the headers, and the first lines of the payload that checksums
  // and crypto read; the hardware prefetcher follows longer frames), and
  // the mbuf's second line if Relay will write TX offloads there. Into L1,
  // as ParseAndLookUp reads every line on the next poll when it verifies
  // UDP checksums in software (docs/performance.md). Where the mbufs are
  // cold too (a ring rather than a NIC's driver), all of them are asked
  // for before the first is read.
  for (uint16_t i = 0; i < n; ++i) rte_prefetch0(pkts[i]);
  uint64_t bytes = 0;
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    batch.rx[i] = m;
    bytes += m->pkt_len;
    // All kPrefetchFrameLines whatever the frame's length (a media frame
    // fills them; a prefetch past a short frame stays in its buffer and
    // never faults): a fixed count unrolls.
    const char* data = rte_pktmbuf_mtod(m, const char*);
    for (uint32_t line = 0; line < kPrefetchFrameLines; ++line) rte_prefetch0(data + 64 * line);
    if (any_tx_offload_) rte_prefetch1(&m->tx_offload);
  }
  Inc(counters_.rx_bytes, bytes);
}

void Worker::ParseAndLookUp(Batch& batch) noexcept {
  session::FlowKey keys[kMaxBurst];
  const uint16_t k = ParseFrames(batch, keys);
  batch.k = k;
  batch.packets = k;
  batch.held = k > 0;
  if (k == 0) return;
  config_.table->LookupBulk(keys, k, batch.refs);
  if (!config_.handoff.empty()) HandOff(batch);
  // With many sessions their state is cold: each step starts loading what
  // the next one reads for the whole burst (flows, then contexts and
  // peers), so the burst waits for memory a few times in parallel rather
  // than once per packet and pointer; through Receive, hardly at all, as the
  // loads complete while older bursts keep the core busy. Into L2: two
  // bursts' worth of sessions would push out of L1 what the core is
  // working on.
  for (uint16_t i = 0; i < k; ++i) {
    if (const Flow* flow = batch.refs[i].flow) {
      for (int line = 0; line < session::kFlowHotLines; ++line) {
        rte_prefetch1(reinterpret_cast<const char*>(flow) + 64 * line);
      }
    }
  }
}

uint16_t Worker::ParseFrames(Batch& batch, session::FlowKey* keys) noexcept {
  Item* items = batch.items;
  uint16_t k = 0;
  for (uint16_t i = 0; i < batch.n; ++i) {
    rte_mbuf* m = batch.rx[i];
    if (m->nb_segs != 1) {
      Drop(m, DropReason::kMultiSegment);
      continue;
    }
    // What the NIC has already checked is not checked again (a bad or
    // unknown result is: the software check counts it).
    packet::ParseOptions parse = config_.parse;
    if ((m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_GOOD) {
      parse.verify_ip_checksum = false;
    }
    if ((m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_GOOD) {
      parse.verify_udp_checksum = false;
    }
    const packet::ParsedFrame& frame = items[k].frame;  // written in place
    packet::ParseFrame(rte_pktmbuf_mtod(m, const uint8_t*), m->data_len, parse, &items[k].frame);
    switch (frame.kind) {
      case packet::FrameKind::kUdp:
        items[k].m = m;
        keys[k] = session::FlowKey::From(frame.dst);
        ++k;
        break;
      case packet::FrameKind::kArp:
      case packet::FrameKind::kIcmpV4:
      case packet::FrameKind::kIcmpV6:
        m->port = ReceivedOn(batch.port, m);  // the slow path answers through it
        if (config_.slow_path != nullptr && rte_ring_enqueue(config_.slow_path, m) == 0) {
          Inc(counters_.slow_path_packets);
        } else {
          Drop(m, config_.slow_path != nullptr ? DropReason::kSlowPathFull : DropReason::kNotForUs);
        }
        break;
      case packet::FrameKind::kDrop:
        Inc(counters_.parse_errors[static_cast<size_t>(frame.error)]);
        Drop(m, DropReason::kMalformedFrame);
        break;
      default:
        Drop(m, DropReason::kNotForUs);
        break;
    }
  }
  return k;
}

void Worker::HandOff(Batch& batch) noexcept {
  // Another worker's flow: the packet goes to its owner, which keeps the
  // stream's state and order.
  for (uint16_t i = 0; i < batch.k; ++i) {
    Flow* flow = batch.refs[i].flow;
    if (flow == nullptr || flow->owner == config_.id) continue;
    rte_ring* ring = flow->owner < config_.handoff.size() ? config_.handoff[flow->owner] : nullptr;
    // What came through another interface takes no room in the owner's
    // ring; the rest carries its port there (the owner checks again).
    rte_mbuf* m = batch.items[i].m;
    m->port = ReceivedOn(batch.port, m);
    if (!CameThroughLegInterface(*flow, m->port, m, batch.items[i].frame)) {
      Drop(m, DropReason::kWrongInterface);
    } else if (ring != nullptr && rte_ring_mp_enqueue(ring, m) == 0) {
      Inc(counters_.handed_off);
    } else {
      Drop(batch.items[i].m, DropReason::kHandoffFull);
    }
    batch.refs[i].flow = nullptr;
    batch.items[i].m = nullptr;
    --batch.packets;
  }
}

void Worker::PrefetchSessionState(Batch& batch) noexcept {
  // The flows' first line is in cache by now (through Receive: a burst ago);
  // the contexts' hot lines are where their addresses alone say.
  for (uint16_t i = 0; i < batch.k; ++i) {
    const Flow* flow = batch.refs[i].flow;
    if (flow == nullptr) continue;
    rte_prefetch1(flow->in_remote);
    rte_prefetch1(flow->out_remote);
    if (flow->rx != nullptr) flow->rx->PrefetchLeadingLines();
    if (flow->tx != nullptr) flow->tx->PrefetchLeadingLines();
  }
}

// --- Relay: the packets' way through, step by step ----------------------

void Worker::Relay(Batch& batch) noexcept {
  batch.held = false;
  const uint64_t now = polling_ ? poll_start_ : rte_rdtsc();
  engine_.SetNow(now);
  uint16_t n = AdoptRekeys(batch, now);
  const uint16_t admitted = Admit(batch, n);  // n less what went to the handshake thread
  n = DropRejected(batch, admitted, n);
  n = DropRejected(batch, Unprotect(batch, n), n);
  n = DropRejected(batch, PoliceAndLearn(batch, n, now), n);
  n = DropRejected(batch, Protect(batch, n), n);
  DropRejected(batch, RewriteAndTransmit(batch, n), n);
}

namespace {

// Moves the rejected items of order[0, n) past the good ones, each group in
// its order; returns how many are good.
uint16_t Partition(Worker::Item* items, uint8_t* order, uint16_t n) noexcept {
  uint8_t rejected[Worker::kMaxBurst];
  uint16_t good = 0, bad = 0;
  for (uint16_t j = 0; j < n; ++j) {
    const uint8_t i = order[j];
    if (items[i].rejected) {
      rejected[bad++] = i;
    } else {
      order[good++] = i;
    }
  }
  std::memcpy(order + good, rejected, bad);
  return good;
}

// Removes the items Admit gave away (m cleared) from order[0, n); returns
// how many stay.
uint16_t RemoveTaken(const Worker::Item* items, uint8_t* order, uint16_t n) noexcept {
  uint16_t kept = 0;
  for (uint16_t j = 0; j < n; ++j) {
    if (items[order[j]].m != nullptr) order[kept++] = order[j];
  }
  return kept;
}

}  // namespace

[[gnu::always_inline]] inline uint16_t Worker::DropRejected(Batch& batch, uint16_t good,
                                                            uint16_t n) noexcept {
  for (uint16_t j = good; j < n; ++j) {
    Item& it = batch.items[batch.order[j]];
    if (Flow* flow = it.flow) {
      if (it.reason == DropReason::kAuthFailed) {
        Inc(flow->counters.auth_failures);
      } else if (it.reason == DropReason::kReplayed || it.reason == DropReason::kTooOld) {
        Inc(flow->counters.replay_drops);
      } else {
        Inc(flow->counters.other_drops);
      }
    }
    Drop(it.m, it.reason);
  }
  return good;
}

uint16_t Worker::AdoptRekeys(Batch& batch, uint64_t now) noexcept {
  // Before any packet of this burst is queued for crypto, so the whole burst
  // sees one context per flow. A packet without a flow is dropped here.
  uint16_t n = 0;
  for (uint16_t i = 0; i < batch.k; ++i) {
    Item& it = batch.items[i];
    it.flow = batch.refs[i].flow;
    it.rejected = false;
    Flow* flow = it.flow;
    if (flow == nullptr) {
      if (it.m != nullptr) Drop(it.m, DropReason::kNoFlow);  // null: handed off
      continue;
    }
    batch.order[n++] = static_cast<uint8_t>(i);
    // Before Adopt (session/flow.h): seen clear, the keys it waited for are
    // in the slots Adopt takes from.
    it.not_keyed = flow->keys_pending.load(std::memory_order_acquire);
    session::rekey::Adopt(*flow, now);
    rte_prefetch0(flow->in_remote);
    rte_prefetch0(flow->out_remote);
    for (const srtp::Context* ctx : {flow->rx, flow->tx}) {
      if (ctx == nullptr) continue;
      rte_prefetch0(ctx);
      rte_prefetch0(reinterpret_cast<const char*>(ctx) + 64);
    }
  }
  return n;
}

uint16_t Worker::Admit(Batch& batch, uint16_t& live) noexcept {
  batch.crypto.Clear();
  uint16_t n = live;  // a local: the items' byte stores cannot alias it
  uint16_t rejected = 0, taken = 0;
  for (uint16_t j = 0; j < n; ++j) {
    const uint8_t i = batch.order[j];
    Item& it = batch.items[i];
    Flow* flow = it.flow;
    // Found by address, which any interface's hosts can aim at: it must
    // have come in through its leg's interface.
    if (!CameThroughLegInterface(*flow, ReceivedOn(batch.port, it.m), it.m, it.frame)) {
      Reject(it, DropReason::kWrongInterface);
      ++rejected;
      continue;
    }
    switch (it.frame.payload_kind) {
      case packet::PayloadKind::kRtp:
      case packet::PayloadKind::kRtcp:
        // Keys a handshake has yet to give: a null context here is not
        // plain RTP, and nothing passes in clear.
        if (it.not_keyed) [[unlikely]] {
          Reject(it, DropReason::kNotKeyed);
          ++rejected;
          continue;
        }
        break;
      case packet::PayloadKind::kDtls:
      case packet::PayloadKind::kStun:
        if (TakeHandshake(it, ReceivedOn(batch.port, it.m))) {
          ++taken;
        } else {
          ++rejected;
        }
        continue;
      default: Reject(it, DropReason::kNotRtp); ++rejected; continue;
    }
    // RFC 5761 §4: on a muxed port the payload type tells RTCP from RTP; on a
    // separate RTCP port (RFC 3550 §11: RTP port + 1) only RTCP belongs.
    it.rtcp = it.frame.payload_kind == packet::PayloadKind::kRtcp;
    if (!flow->rtcp_mux && it.rtcp != batch.refs[i].rtcp_port) {
      Reject(it, DropReason::kRtcpOnRtpPort);
      ++rejected;
      continue;
    }
    Inc(flow->counters.rx_packets[it.rtcp]);
    Inc(flow->counters.rx_bytes[it.rtcp], it.frame.payload_len);
    it.source = session::learning::CheckSource(*flow, it.frame.src, it.rtcp);
    if (it.source.refused) {
      Reject(it, DropReason::kWrongSource);
      ++rejected;
      continue;
    }
    uint8_t* payload = rte_pktmbuf_mtod_offset(it.m, uint8_t*, it.frame.payload_offset);
    const uint8_t* buf_end = static_cast<uint8_t*>(it.m->buf_addr) + it.m->buf_len;
    it.pkt = srtp::Packet{payload, it.frame.payload_len,
                          static_cast<uint32_t>(buf_end - payload)};
    if (!it.rtcp) {
      if (flow->rx != nullptr) flow->rx->PrefetchRtp();
      if (flow->tx != nullptr) flow->tx->PrefetchRtp();
    }
    // What Unprotect will submit.
    if (flow->rx != nullptr) batch.crypto.Add(flow->rx, it, i);
  }
  if (taken > 0) [[unlikely]] live = n = RemoveTaken(batch.items, batch.order, n);
  return rejected == 0 ? n : Partition(batch.items, batch.order, n);
}

// Never inlined: STUN and DTLS are rare beside media, and the worker does no
// handshake work, only moves the mbuf (RFC 7983 demultiplexing).
[[gnu::noinline]] bool Worker::TakeHandshake(Item& it, uint16_t port) noexcept {
  const bool dtls = it.frame.payload_kind == packet::PayloadKind::kDtls;
  if (config_.handshake == nullptr || !it.flow->handshake.load(std::memory_order_relaxed)) {
    Reject(it, dtls ? DropReason::kDtls : DropReason::kStun);
    return false;
  }
  // Nothing has authenticated them yet: one flooded port may not fill the
  // ring every WebRTC leg shares (sluice/session/policing.h), whatever its
  // source address claims. What claims the leg's peer's (the address ICE
  // selected) may use a reserve of the burst that strangers may not, so a
  // flood from others cannot starve its consent checks.
  const uint64_t now = polling_ ? poll_start_ : rte_rdtsc();
  const bool from_peer =
      it.flow->in_remote->Matches(it.frame.src.ip, it.frame.src.port, 0).same;
  if (!session::policing::HandshakeWithinRate(*it.flow, config_.handshake_rate, from_peer, now)) {
    Reject(it, from_peer ? DropReason::kHandshakePeerRate : DropReason::kHandshakeRate);
    return false;
  }
  it.m->port = port;  // the handshake thread answers through it
  if (rte_ring_mp_enqueue(config_.handshake, it.m) != 0) {
    Reject(it, DropReason::kHandshakeFull);
    return false;
  }
  Inc(counters_.handshake_packets);
  it.m = nullptr;
  return true;
}

uint16_t Worker::Unprotect(Batch& batch, uint16_t n) noexcept {
  const uint16_t rejected = batch.crypto.Run(
      batch.items, [&](auto jobs, auto verdicts) { return engine_.UnprotectRtp(jobs, verdicts); },
      [&](auto jobs, auto verdicts) { return engine_.UnprotectRtcp(jobs, verdicts); });
  return rejected == 0 ? n : Partition(batch.items, batch.order, n);
}

uint16_t Worker::PoliceAndLearn(Batch& batch, uint16_t n, uint64_t now) noexcept {
  // Policing after authentication, so forged packets cannot spend a leg's
  // allowance; learning from what conforms. The frame came from the next
  // hop toward the peer: its source MAC.
  uint16_t rejected = 0;
  for (uint16_t j = 0; j < n; ++j) {
    Item& it = batch.items[batch.order[j]];
    if (!session::policing::WithinRate(*it.flow, now)) {
      Reject(it, DropReason::kRateLimited);
      ++rejected;
      continue;
    }
    session::learning::Learn(*it.flow, it.source, it.frame.src,
                             rte_pktmbuf_mtod_offset(it.m, const uint8_t*, 6), it.rtcp);
  }
  return rejected == 0 ? n : Partition(batch.items, batch.order, n);
}

uint16_t Worker::Protect(Batch& batch, uint16_t n) noexcept {
  batch.crypto.Clear();
  for (uint16_t j = 0; j < n; ++j) {
    const uint8_t i = batch.order[j];
    Item& it = batch.items[i];
    if (it.flow->tx != nullptr) batch.crypto.Add(it.flow->tx, it, i);
  }
  const uint16_t rejected = batch.crypto.Run(
      batch.items, [&](auto jobs, auto verdicts) { return engine_.ProtectRtp(jobs, verdicts); },
      [&](auto jobs, auto verdicts) { return engine_.ProtectRtcp(jobs, verdicts); });
  return rejected == 0 ? n : Partition(batch.items, batch.order, n);
}

uint16_t Worker::RewriteAndTransmit(Batch& batch, uint16_t n) noexcept {
  uint16_t rejected = 0;
  for (uint16_t j = 0; j < n; ++j) {
    Item& it = batch.items[batch.order[j]];
    if (!WriteHeaders(it)) {
      if (it.rejected) ++rejected;  // else held for its next hop (it.m taken)
      continue;
    }
    Inc(it.flow->counters.tx_packets[it.rtcp]);
    Inc(it.flow->counters.tx_bytes[it.rtcp], it.pkt.len);
    Enqueue(it.flow->out_port, it.m);
  }
  return rejected == 0 ? n : Partition(batch.items, batch.order, n);
}

[[gnu::always_inline]] inline bool Worker::WriteHeaders(Item& it) noexcept {
  Flow* flow = it.flow;
  // What the NIC fills in (a port past kMaxPorts: the packet is dropped by
  // Enqueue).
  const uint16_t out_port = flow->out_port < kMaxPorts ? flow->out_port : 0;
  const TxChecksumOffload offload = tx_offload_[out_port];
  // A payload forwarded unchanged (plain both ways) keeps its sum: summed
  // when its checksum was verified, else from the received checksum (RFC
  // 1624), without reading the payload again.
  std::optional<uint16_t> payload_sum;
  if (flow->rx == nullptr && flow->tx == nullptr && !offload.udp) {
    if (it.frame.payload_sum_known) {
      payload_sum = it.frame.payload_sum;
    } else {
      const uint8_t* old =
          rte_pktmbuf_mtod_offset(it.m, const uint8_t*, it.frame.l4_offset + 6);
      payload_sum = packet::UdpPayloadSum(static_cast<uint16_t>(old[0] << 8 | old[1]),
                                          it.frame.src, it.frame.dst, it.frame.payload_len);
    }
  }
  // The flow keeps the headers it wrote last: while the peer stays where it
  // is (its slot's version unchanged) a packet only patches lengths, ID and
  // checksums in. RTCP on its own port (RTP port + 1) has headers of its own.
  const bool rtp_port = !it.rtcp || flow->out_rtcp_mux;
  uint8_t* frame;
  if (rtp_port && flow->out_remote->version() == flow->out_headers_version &&
      flow->out_remote->resolved_word() == flow->out_headers_resolved) [[likely]] {
    frame = flow->out_headers.Write(it.pkt.data, it.pkt.len, ip_id_++, payload_sum);
  } else {
    frame = BuildHeaders(it, offload, payload_sum);
    if (frame == nullptr) return false;
  }
  FinishFrame(it, frame, out_port);
  return true;
}

[[gnu::always_inline]] inline void Worker::FinishFrame(Item& it, uint8_t* frame,
                                                      uint16_t out_port) noexcept {
  const uint32_t frame_len = static_cast<uint32_t>(it.pkt.data + it.pkt.len - frame);
  rte_mbuf* const m = it.m;  // once: each store below could otherwise change it
  m->data_off = static_cast<uint16_t>(frame - static_cast<uint8_t*>(m->buf_addr));
  m->data_len = static_cast<uint16_t>(frame_len);
  m->pkt_len = frame_len;
  SetTxOffload(m, frame, out_port);
}

uint8_t* Worker::BuildHeaders(Item& it, const TxChecksumOffload& offload,
                              std::optional<uint16_t> payload_sum) noexcept {
  Flow* flow = it.flow;
  // The version and resolved MAC are read before the view and the MAC: what
  // is used is at least as new, so a change means one more rebuild, never
  // stale headers.
  const uint32_t version = flow->out_remote->version();
  const uint64_t resolved = flow->out_remote->resolved_word();
  session::RemoteView out = flow->out_remote->Load();
  if (!out.known) {
    Reject(it, DropReason::kNoRemote);
    return nullptr;
  }
  if (!out.has_mac) out.has_mac = flow->out_remote->ResolvedMac(&out.mac);
  packet::UdpHeaderSpec spec;
  spec.payload_sum = payload_sum;
  spec.udp_checksum_offload = offload.udp;
  spec.ip_checksum_offload = offload.ipv4_header;
  spec.src_mac = flow->out_src_mac;
  spec.dst_mac = out.mac;
  spec.vlan_id = flow->out_vlan;
  spec.src = flow->out_local;
  spec.dst = out.endpoint;
  const uint16_t rtcp_offset = session::learning::RtcpPortOffset(it.rtcp, flow->out_rtcp_mux);
  spec.src.port = static_cast<uint16_t>(spec.src.port + rtcp_offset);
  spec.dst.port = static_cast<uint16_t>(spec.dst.port + rtcp_offset);
  if (!out.has_mac) return HoldForNeighbor(it, spec, flow->out_port);
  uint8_t* frame = packet::WriteUdpHeaders(it.pkt.data, it.pkt.len, spec, ip_id_++);
  // Only the RTP port's headers are kept, and only from a stored view.
  if (rtcp_offset == 0 && (version & 1) == 0) {
    flow->out_headers.Build(spec);
    flow->out_headers_version = version;
    flow->out_headers_resolved = resolved;
  }
  return frame;
}

uint8_t* Worker::HoldForNeighbor(Item& it, packet::UdpHeaderSpec& spec,
                                 uint16_t out_port) noexcept {
  if (config_.neighbor_hold == nullptr || out_port >= kMaxPorts) {
    Reject(it, DropReason::kNoNeighbor);
    return nullptr;
  }
  spec.dst_mac = {};  // the slow path writes it once the next hop answers
  FinishFrame(it, packet::WriteUdpHeaders(it.pkt.data, it.pkt.len, spec, ip_id_++), out_port);
  it.m->port = out_port;
  if (rte_ring_mp_enqueue(config_.neighbor_hold, it.m) != 0) {
    Reject(it, DropReason::kNoNeighbor);
    return nullptr;
  }
  Inc(counters_.neighbor_held);
  it.m = nullptr;
  return nullptr;
}

[[gnu::always_inline]] inline void Worker::SetTxOffload(rte_mbuf* m, const uint8_t* frame,
                                                       uint16_t out_port) noexcept {
  // A NIC asked to fill in checksums needs the headers' lengths; the
  // frame's EtherType (after a VLAN tag if there is one) tells them.
  const bool tagged = frame[12] == 0x81 && frame[13] == 0x00;
  const uint8_t* ether_type = frame + (tagged ? 16 : 12);
  const bool v6 = ether_type[0] == 0x86 && ether_type[1] == 0xdd;
  m->ol_flags = tx_flags_[out_port][v6];
  if (m->ol_flags != 0) {
    // One store of the whole word: setting the bit-fields would first load
    // the mbuf's second line, which nothing else reads.
    m->tx_offload = rte_mbuf_tx_offload(tagged ? 18 : 14, v6 ? 40 : 20, 0, 0, 0, 0, 0);
  }
}

}  // namespace sluice::worker
