#include "sluice/worker/worker.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>
#include <rte_ring.h>

#include <algorithm>
#include <cstring>
#include <optional>

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
    default: return DropReason::kSrtpMalformed;
  }
}

// Re-key, at a burst boundary for this flow: take the context the control
// plane handed over, carry the streams across and park the old one. Skipped
// while the previous retired context has not been collected.
// overlap_tsc: how long the replaced receive key is still tried (read only
// when there is a context to take: it lives on a cold line); null for send.
void Adopt(std::atomic<srtp::Context*>& next_slot, std::atomic<srtp::Context*>& retired,
           srtp::Context*& current, uint64_t now, const uint64_t* overlap_tsc) noexcept {
  if (next_slot.load(std::memory_order_relaxed) == nullptr ||
      retired.load(std::memory_order_acquire) != nullptr) {
    return;
  }
  srtp::Context* next = next_slot.exchange(nullptr, std::memory_order_acq_rel);
  if (next == nullptr) return;
  srtp::Context* old = current;
  if (next == Flow::Plain()) {
    current = nullptr;
  } else {
    if (old != nullptr) next->AdoptStreamsFrom(*old);
    next->SetTrialDeadline(overlap_tsc != nullptr ? now + *overlap_tsc : UINT64_MAX);
    current = next;
  }
  if (old != nullptr) retired.store(old, std::memory_order_release);
}

// [limits] leg_max_pps as a generic cell rate algorithm (ITU-T I.371 virtual
// scheduling): a packet conforms unless it arrives more than the tolerance
// ahead of its theoretical arrival time, which each conforming packet pushes
// one interval on. Owning worker only.
bool WithinRate(Flow& flow, uint64_t now) noexcept {
  if (flow.rate_interval_tsc == 0) return true;
  const uint64_t tat = flow.rate_tat > now ? flow.rate_tat : now;
  if (tat - now > flow.rate_tolerance_tsc) return false;
  flow.rate_tat = tat + flow.rate_interval_tsc;
  return true;
}

// The peer's RTCP port when RTCP is not muxed: RTP port + 1 (RFC 3550 §11).
uint16_t RtcpPort(uint16_t rtp_port, bool mux) { return mux ? rtp_port : rtp_port + 1; }

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
  srtp::Packet pkt;     // the UDP payload, protected or not
  bool rtcp;
  bool from_new_source; // not the leg's known peer: learn only if it authenticates
  bool needs_mac;       // the known peer's next-hop MAC is not known yet
  bool alive;
};

// A burst between stages: as received (rx[0, n)) until Stage1, then its UDP
// packets (items[0, k)) and their flows.
struct Worker::Batch {
  rte_mbuf* rx[kMaxBurst];
  Item items[kMaxBurst];
  session::FlowRef refs[kMaxBurst];
  uint16_t n = 0;
  uint16_t k = 0;
  uint16_t packets = 0;  // held: rx until Stage1, then items not handed off
  bool held = false;     // between Stage0 and Stage3
};

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

void Worker::Drop(rte_mbuf* m, DropReason reason) noexcept {
  Inc(counters_.drops[static_cast<size_t>(reason)]);
  rte_pktmbuf_free(m);
}

void Worker::Enqueue(uint16_t port, rte_mbuf* m) noexcept {
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
    const uint16_t sent = rte_eth_tx_burst(port, config_.tx_queue, tx_[port].data(), n);
    Inc(counters_.tx_packets, sent);
    for (uint16_t i = sent; i < n; ++i) Drop(tx_[port][i], DropReason::kTxFull);
    tx_count_[port] = 0;
  }
}

void Worker::ProcessBurst(rte_mbuf** pkts, uint16_t n) noexcept {
  Batch batch;
  Stage0(pkts, n, batch);
  Stage1(batch);
  Stage2(batch);
  Stage3(batch);
}

void Worker::Receive(rte_mbuf** pkts, uint16_t n) noexcept {
  // The oldest burst goes out first, so every flow's packets keep their
  // order; while its crypto runs, the loads the three later bursts started
  // arrive.
  static_assert(kPipelineDepth == 4);
  auto aged = [&](uint32_t age) -> Batch& {
    return batches_[(head_ + kPipelineDepth - age) % kPipelineDepth];
  };
  Stage0(pkts, n, aged(0));
  if (Batch& b = aged(1); b.held) Stage1(b);
  if (Batch& b = aged(2); b.held) Stage2(b);
  if (Batch& b = aged(3); b.held) Stage3(b);
  head_ = (head_ + 1) % kPipelineDepth;
}

void Worker::Drain() noexcept {
  for (uint32_t age = kPipelineDepth - 1; age >= 1; --age) {
    Batch& b = batches_[(head_ + kPipelineDepth - age) % kPipelineDepth];
    // The newest burst has only had Stage0; the older ones are parsed.
    if (b.held && age == 1) Stage1(b);
    if (b.held) Stage3(b);
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

void Worker::Stage0(rte_mbuf** pkts, uint16_t n, Batch& batch) noexcept {
  batch.n = n;
  batch.k = 0;
  batch.packets = n;
  batch.held = n > 0;
  Inc(counters_.rx_packets, n);
  // The frames arrive cold (a NIC writes them to memory): every line of a
  // frame the burst will read is asked for a poll before the first is
  // parsed, the headers and the payload that checksums and crypto read, a
  // few lines of it (the hardware prefetcher follows longer frames), and
  // the mbuf's second line if Stage3 will write TX offloads there. Into L1:
  // Stage1 reads every line of the burst's frames on the next poll when it
  // verifies UDP checksums in software (measured on an AMD EPYC VM,
  // against prefetch into L2: 2.8% more AES-CM relay throughput, 3.5% plain,
  // 3.7% AES-GCM; no change with checksum offloads or 100,000 sessions; an
  // earlier host had shown the opposite, so measure again on a new one).
  // Where the mbufs are cold too (a ring rather than a NIC's driver), all of
  // them are asked for before the first is read.
  for (uint16_t i = 0; i < n; ++i) rte_prefetch0(pkts[i]);
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    batch.rx[i] = m;
    const char* data = rte_pktmbuf_mtod(m, const char*);
    const uint32_t lines = std::min<uint32_t>(kPrefetchFrameLines, (m->data_len + 63) / 64);
    for (uint32_t line = 0; line < lines; ++line) rte_prefetch0(data + 64 * line);
    if (any_tx_offload_) rte_prefetch1(&m->tx_offload);
  }
}

void Worker::Stage1(Batch& batch) noexcept {
  Item* items = batch.items;
  session::FlowRef* refs = batch.refs;
  session::FlowKey keys[kMaxBurst];
  rte_mbuf** const pkts = batch.rx;
  const uint16_t n = batch.n;
  uint16_t k = 0;
  batch.k = 0;
  batch.packets = 0;
  batch.held = false;

  // Phase 1: parse every frame; UDP goes on to the bulk lookup.
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
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
  if (k == 0) return;
  batch.k = k;
  batch.packets = k;
  batch.held = true;

  config_.table->LookupBulk(keys, k, refs);
  // Another worker's flow: hand the packet to its owner, which keeps the
  // stream's state and order.
  if (!config_.handoff.empty()) {
    for (uint16_t i = 0; i < k; ++i) {
      Flow* flow = refs[i].flow;
      if (flow == nullptr || flow->owner == config_.id) continue;
      rte_ring* ring = flow->owner < config_.handoff.size() ? config_.handoff[flow->owner] : nullptr;
      if (ring != nullptr && rte_ring_mp_enqueue(ring, items[i].m) == 0) {
        Inc(counters_.handed_off);
      } else {
        Drop(items[i].m, DropReason::kHandoffFull);
      }
      refs[i].flow = nullptr;
      items[i].m = nullptr;
      --batch.packets;
    }
  }
  // With many sessions their state is cold: each stage starts loading what
  // the next one reads for the whole burst (flows, then contexts and peers),
  // so the burst waits for memory a few times in parallel rather than once
  // per packet and pointer; through Receive, hardly at all, as the loads
  // complete while older bursts keep the core busy. Into L2 (prefetch1):
  // two bursts' worth of sessions would push out of L1 what the core is
  // working on.
  for (uint16_t i = 0; i < k; ++i) {
    if (const Flow* flow = refs[i].flow) {
      for (int line = 0; line < session::kFlowHotLines; ++line) {
        rte_prefetch1(reinterpret_cast<const char*>(flow) + 64 * line);
      }
    }
  }
}

void Worker::Stage2(Batch& batch) noexcept {
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

void Worker::Stage3(Batch& batch) noexcept {
  Item* items = batch.items;
  session::FlowRef* refs = batch.refs;
  const uint16_t k = batch.k;
  batch.held = false;
  const uint64_t now = rte_rdtsc();
  engine_.SetNow(now);
  // Re-keys take effect here, before any packet of this burst is queued for
  // crypto, so the whole burst sees one context per flow.
  for (uint16_t i = 0; i < k; ++i) {
    Flow* flow = refs[i].flow;
    if (flow == nullptr) continue;
    Adopt(flow->rx_next, flow->rx_retired, flow->rx, now, &flow->rekey_overlap_tsc);
    Adopt(flow->tx_next, flow->tx_retired, flow->tx, now, nullptr);
    rte_prefetch0(flow->in_remote);
    rte_prefetch0(flow->out_remote);
    for (const srtp::Context* ctx : {flow->rx, flow->tx}) {
      if (ctx == nullptr) continue;
      rte_prefetch0(ctx);
      rte_prefetch0(reinterpret_cast<const char*>(ctx) + 64);
    }
  }

  // Phase 2: the flow, the payload kind, the source; queue SRTP for one
  // unprotect submission.
  srtp::Job rtp_jobs[kMaxBurst], rtcp_jobs[kMaxBurst];
  uint16_t rtp_idx[kMaxBurst], rtcp_idx[kMaxBurst];
  uint16_t n_rtp = 0, n_rtcp = 0;
  for (uint16_t i = 0; i < k; ++i) {
    Item& it = items[i];
    it.alive = false;
    it.needs_mac = false;
    Flow* flow = refs[i].flow;
    if (flow == nullptr) {
      if (it.m != nullptr) Drop(it.m, DropReason::kNoFlow);  // null: handed off
      continue;
    }
    switch (it.frame.payload_kind) {
      case packet::PayloadKind::kRtp:
      case packet::PayloadKind::kRtcp:
        break;
      case packet::PayloadKind::kDtls:
        Inc(flow->counters.other_drops);
        Drop(it.m, DropReason::kDtls);
        continue;
      case packet::PayloadKind::kStun:
        Inc(flow->counters.other_drops);
        Drop(it.m, DropReason::kStun);
        continue;
      default:
        Inc(flow->counters.other_drops);
        Drop(it.m, DropReason::kNotRtp);
        continue;
    }
    // RFC 5761 §4: on a muxed port the payload type tells RTCP from RTP; on a
    // separate RTCP port (RFC 3550 §11: RTP port + 1) only RTCP belongs.
    it.rtcp = it.frame.payload_kind == packet::PayloadKind::kRtcp;
    if (!flow->rtcp_mux && it.rtcp != refs[i].rtcp_port) {
      Inc(flow->counters.other_drops);
      Drop(it.m, DropReason::kRtcpOnRtpPort);
      continue;
    }
    Inc(flow->counters.rx_packets);
    Inc(flow->counters.rx_bytes, it.frame.payload_len);

    const session::RemoteSlot::Match peer = flow->in_remote->Matches(
        it.frame.src.ip, it.frame.src.port, RtcpPort(0, !it.rtcp || flow->rtcp_mux));
    it.from_new_source = !peer.same;
    it.needs_mac = peer.same && !peer.has_mac;
    if (it.from_new_source) {
      // A given or learned peer is only replaced by a source whose packets
      // authenticate; a plain leg has nothing to authenticate with, so it
      // learns its first source only, and a strict leg never moves.
      if (flow->strict_source || (flow->rx == nullptr && flow->in_remote->Load().known)) {
        Inc(flow->counters.other_drops);
        Drop(it.m, DropReason::kWrongSource);
        continue;
      }
    }
    it.flow = flow;
    uint8_t* payload = rte_pktmbuf_mtod_offset(it.m, uint8_t*, it.frame.payload_offset);
    const uint8_t* buf_end = static_cast<uint8_t*>(it.m->buf_addr) + it.m->buf_len;
    it.pkt = srtp::Packet{payload, it.frame.payload_len,
                          static_cast<uint32_t>(buf_end - payload)};
    it.alive = true;
    if (!it.rtcp) {
      if (flow->rx != nullptr) flow->rx->PrefetchRtp();
      if (flow->tx != nullptr) flow->tx->PrefetchRtp();
    }
    if (flow->rx != nullptr) {
      if (it.rtcp) {
        rtcp_jobs[n_rtcp] = srtp::Job{flow->rx, &it.pkt};
        rtcp_idx[n_rtcp++] = i;
      } else {
        rtp_jobs[n_rtp] = srtp::Job{flow->rx, &it.pkt};
        rtp_idx[n_rtp++] = i;
      }
    }
  }

  // Phase 3: authenticate and decrypt the whole burst at once.
  srtp::Verdict verdicts[kMaxBurst];
  auto settle = [&](uint16_t count, const uint16_t* idx) {
    for (uint16_t j = 0; j < count; ++j) {
      Item& it = items[idx[j]];
      if (verdicts[j] == srtp::Verdict::kOk) continue;
      const DropReason reason = FromVerdict(verdicts[j]);
      if (reason == DropReason::kAuthFailed) {
        Inc(it.flow->counters.auth_failures);
      } else if (reason == DropReason::kReplayed || reason == DropReason::kTooOld) {
        Inc(it.flow->counters.replay_drops);
      } else {
        Inc(it.flow->counters.other_drops);
      }
      it.alive = false;
      Drop(it.m, reason);
    }
  };
  if (n_rtp > 0) {
    engine_.UnprotectRtp({rtp_jobs, n_rtp}, {verdicts, n_rtp});
    settle(n_rtp, rtp_idx);
  }
  if (n_rtcp > 0) {
    engine_.UnprotectRtcp({rtcp_jobs, n_rtcp}, {verdicts, n_rtcp});
    settle(n_rtcp, rtcp_idx);
  }

  // Phase 4: hold each leg to its packet rate, learn peers from what
  // authenticated, find the way out, and queue SRTP for one protect
  // submission. The rate applies after authentication, so forged packets
  // cannot spend a leg's allowance and starve its real peer.
  n_rtp = n_rtcp = 0;
  for (uint16_t i = 0; i < k; ++i) {
    Item& it = items[i];
    if (!it.alive) continue;
    Flow* flow = it.flow;
    if (!WithinRate(*flow, now)) {
      Inc(flow->counters.other_drops);
      it.alive = false;
      Drop(it.m, DropReason::kRateLimited);
      continue;
    }
    if (it.from_new_source && !(it.rtcp && !flow->rtcp_mux)) {
      session::RemoteView peer = flow->in_remote->Load();
      bool move = !peer.known;
      if (!move) {
        if (flow->candidate == it.frame.src) {
          ++flow->candidate_count;
        } else {
          flow->candidate = it.frame.src;
          flow->candidate_count = 1;
        }
        move = flow->candidate_count >= flow->learn_packets;
        if (move) Inc(flow->counters.remote_changes);
      }
      if (move) {
        peer.known = true;
        peer.learned = true;
        peer.has_mac = true;
        peer.endpoint = it.frame.src;
        // The frame came from the next hop toward the peer: its source MAC.
        std::memcpy(peer.mac.data(), rte_pktmbuf_mtod_offset(it.m, uint8_t*, 6), 6);
        flow->in_remote->Store(peer);
        flow->candidate_count = 0;
      }
    } else if (!it.from_new_source) {
      flow->candidate_count = 0;
      if (it.needs_mac) {
        // A given peer sends first: its frame tells the next hop toward it.
        session::RemoteView peer = flow->in_remote->Load();
        peer.has_mac = true;
        std::memcpy(peer.mac.data(), rte_pktmbuf_mtod_offset(it.m, uint8_t*, 6), 6);
        flow->in_remote->Store(peer);
      }
    }
    if (flow->tx != nullptr) {
      if (it.rtcp) {
        rtcp_jobs[n_rtcp] = srtp::Job{flow->tx, &it.pkt};
        rtcp_idx[n_rtcp++] = i;
      } else {
        rtp_jobs[n_rtp] = srtp::Job{flow->tx, &it.pkt};
        rtp_idx[n_rtp++] = i;
      }
    }
  }
  if (n_rtp > 0) {
    engine_.ProtectRtp({rtp_jobs, n_rtp}, {verdicts, n_rtp});
    settle(n_rtp, rtp_idx);
  }
  if (n_rtcp > 0) {
    engine_.ProtectRtcp({rtcp_jobs, n_rtcp}, {verdicts, n_rtcp});
    settle(n_rtcp, rtcp_idx);
  }

  // Phase 5: new headers in front of the payload, from the other leg's
  // address to its peer, and onto that port's TX queue. The flow keeps the
  // headers it wrote last: while the peer stays where it is (its slot's
  // version unchanged) a packet only patches lengths, ID and checksums in.
  for (uint16_t i = 0; i < k; ++i) {
    Item& it = items[i];
    if (!it.alive) continue;
    Flow* flow = it.flow;
    // What the NIC fills in (a port past kMaxPorts: the packet is dropped by
    // Enqueue).
    const uint16_t out_port = flow->out_port < kMaxPorts ? flow->out_port : 0;
    const TxChecksumOffload offload = tx_offload_[out_port];
    // A payload forwarded unchanged (plain both ways, or SRTP passed through)
    // keeps its sum: the new UDP checksum follows from the received one (RFC
    // 1624) without reading the payload again.
    std::optional<uint16_t> payload_sum;
    if (flow->rx == nullptr && flow->tx == nullptr && !offload.udp) {
      const uint8_t* old = rte_pktmbuf_mtod_offset(it.m, const uint8_t*, it.frame.l4_offset + 6);
      payload_sum = packet::UdpPayloadSum(static_cast<uint16_t>(old[0] << 8 | old[1]),
                                          it.frame.src, it.frame.dst, it.frame.payload_len);
    }
    // RTCP on its own port (RTP port + 1) has headers of its own.
    const bool rtp_port = !it.rtcp || flow->out_rtcp_mux;
    const uint32_t version = flow->out_remote->version();
    const uint64_t resolved = flow->out_remote->resolved_word();
    uint8_t* frame;
    if (rtp_port && version == flow->out_headers_version &&
        resolved == flow->out_headers_resolved) [[likely]] {
      frame = flow->out_headers.Write(it.pkt.data, it.pkt.len, ip_id_++, payload_sum);
    } else {
      session::RemoteView out = flow->out_remote->Load();
      if (!out.known) {
        Inc(flow->counters.other_drops);
        Drop(it.m, DropReason::kNoRemote);
        continue;
      }
      const bool cacheable = rtp_port && (version & 1) == 0;
      if (!out.has_mac) out.has_mac = flow->out_remote->ResolvedMac(&out.mac);
      if (!out.has_mac) {
        Inc(flow->counters.other_drops);
        Drop(it.m, DropReason::kNoNeighbor);
        continue;
      }
      packet::UdpHeaderSpec spec;
      spec.payload_sum = payload_sum;
      spec.udp_checksum_offload = offload.udp;
      spec.ip_checksum_offload = offload.ipv4_header;
      spec.src_mac = flow->out_src_mac;
      spec.dst_mac = out.mac;
      spec.vlan_id = flow->out_vlan;
      spec.src = flow->out_local;
      spec.dst = out.endpoint;
      if (it.rtcp) {
        spec.src.port = RtcpPort(spec.src.port, flow->out_rtcp_mux);
        spec.dst.port = RtcpPort(spec.dst.port, flow->out_rtcp_mux);
      }
      frame = packet::WriteUdpHeaders(it.pkt.data, it.pkt.len, spec, ip_id_++);
      // The version and resolved MAC were read before the view and the MAC:
      // what was used is at least as new, so a change means one more
      // rebuild, never stale headers.
      if (cacheable) {
        flow->out_headers.Build(spec);
        flow->out_headers_version = version;
        flow->out_headers_resolved = resolved;
      }
    }
    const uint32_t frame_len = static_cast<uint32_t>(it.pkt.data + it.pkt.len - frame);
    it.m->data_off = static_cast<uint16_t>(frame - static_cast<uint8_t*>(it.m->buf_addr));
    it.m->data_len = static_cast<uint16_t>(frame_len);
    it.m->pkt_len = frame_len;
    // A NIC asked to fill in checksums needs the headers' lengths; the
    // frame's EtherType (after a VLAN tag if there is one) tells them.
    const bool tagged = frame[12] == 0x81 && frame[13] == 0x00;
    const uint8_t* ether_type = frame + (tagged ? 16 : 12);
    const bool v6 = ether_type[0] == 0x86 && ether_type[1] == 0xdd;
    it.m->ol_flags = tx_flags_[out_port][v6];
    if (it.m->ol_flags != 0) {
      // One store of the whole word: setting the bit-fields would first
      // load the mbuf's second line, which nothing else reads.
      it.m->tx_offload = rte_mbuf_tx_offload(tagged ? 18 : 14, v6 ? 40 : 20, 0, 0, 0, 0, 0);
    }
    Inc(flow->counters.tx_packets);
    Inc(flow->counters.tx_bytes, it.pkt.len);
    Enqueue(flow->out_port, it.m);
  }
}

void Worker::Run(const std::atomic<bool>& stop) noexcept {
  config_.table->RegisterReader(config_.id);
  uint32_t iterations = 0;
  rte_mbuf* pkts[kMaxBurst];
  rte_ring* own_handoff =
      config_.id < config_.handoff.size() ? config_.handoff[config_.id] : nullptr;
  while (!stop.load(std::memory_order_relaxed)) {
    const uint64_t start = rte_rdtsc();
    uint32_t received = 0;
    if (config_.control_tx != nullptr) {
      const unsigned n = rte_ring_sc_dequeue_burst(
          config_.control_tx, reinterpret_cast<void**>(pkts), config_.burst, nullptr);
      for (unsigned i = 0; i < n; ++i) Enqueue(pkts[i]->port, pkts[i]);
    }
    if (own_handoff != nullptr) {
      const unsigned n = rte_ring_sc_dequeue_burst(own_handoff, reinterpret_cast<void**>(pkts),
                                                   config_.burst, nullptr);
      if (n > 0) {
        received += n;
        Receive(pkts, static_cast<uint16_t>(n));
      }
    }
    for (const RxQueue& q : config_.rx_queues) {
      const uint16_t n = rte_eth_rx_burst(q.port, q.queue, pkts, config_.burst);
      if (n == 0) continue;
      received += n;
      Receive(pkts, n);
    }
    // A quiet poll sends what is held: under load a packet waits at most
    // three bursts, and without load none.
    const bool report = ++iterations >= config_.quiescent_every;
    const bool drained = received == 0 && held_packets() > 0;
    if (drained) Drain();
    FlushTx();
    const uint64_t spent = rte_rdtsc() - start;
    Inc(received > 0 || drained ? counters_.busy_cycles : counters_.idle_cycles, spent);
    if (report) {
      Quiesce();
      iterations = 0;
    }
  }
  Drain();
  FlushTx();
  config_.table->UnregisterReader(config_.id);
}

}  // namespace sluice::worker
