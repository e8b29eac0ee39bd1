// A flow: one direction of a call. Packets that arrive at leg X's local
// address are authenticated and decrypted with X's receive keys, encrypted
// with leg Y's send keys and sent from Y's local address to Y's peer.
//
// Built by the control plane and published through the FlowTable; after that
// its configuration is read-only and its mutable part (stream state inside the
// SRTP contexts, counters, learning) belongs to the one worker that receives
// X's packets. Does not allocate once published.
#ifndef SLUICE_SESSION_FLOW_H_
#define SLUICE_SESSION_FLOW_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "sluice/packet/address.h"
#include "sluice/packet/rewrite.h"
#include "sluice/session/remote.h"
#include "sluice/srtp/context.h"

namespace sluice::session {

// Per-flow counters. Written by the owning worker only (relaxed stores of a
// value it alone increments), read by anyone.
//
// What a packet relays is counted by its kind, [0] RTP and [1] RTCP (the
// worker's classification, as a bool index), so either is one add on the
// first line; the drop counters, written only on a drop or a move, are on
// the second.
struct alignas(64) FlowCounters {
  static constexpr int kRtp = 0;
  static constexpr int kRtcp = 1;
  std::atomic<uint64_t> rx_packets[2] = {0, 0};  // arrived at X from its peer
  std::atomic<uint64_t> rx_bytes[2] = {0, 0};
  std::atomic<uint64_t> tx_packets[2] = {0, 0};  // sent to Y's peer
  std::atomic<uint64_t> tx_bytes[2] = {0, 0};
  std::atomic<uint64_t> auth_failures{0};
  std::atomic<uint64_t> replay_drops{0};  // replayed or too old
  std::atomic<uint64_t> other_drops{0};
  std::atomic<uint64_t> remote_changes{0};  // learned address moved

  static void Add(std::atomic<uint64_t>& c, uint64_t n) noexcept {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  // RTP and RTCP together.
  static uint64_t Both(const std::atomic<uint64_t> (&c)[2]) noexcept {
    return c[kRtp].load(std::memory_order_relaxed) + c[kRtcp].load(std::memory_order_relaxed);
  }
};
static_assert(offsetof(FlowCounters, auth_failures) == 64, "what a packet adds to is one line");

struct alignas(64) Flow {
  // Laid out by use: a packet reads lines 0 to 2 (and 3 for IPv6 with a VLAN
  // tag, or a rate limit) and writes line 4, its counters (5 when dropped);
  // the rest is read when the flow or its peer changes. With many sessions
  // every line is a wait for memory, and lines side by side cost less than
  // lines apart.

  // --- line 0: what every packet follows ---
  // SRTP contexts (dp: rw, owning worker only; cp: sets before publishing).
  // Null means plain RTP on that side. The stream state inside is the
  // owning worker's.
  srtp::Context* rx = nullptr;  // X's receive keys (unprotect)
  srtp::Context* tx = nullptr;  // Y's send keys (protect)
  RemoteSlot* in_remote = nullptr;   // X's peer: learned here
  RemoteSlot* out_remote = nullptr;  // Y's peer: read here
  // Re-key hand-off (the protocol: sluice/session/rekey.h): cp offers in
  // *_next, the owning worker adopts and parks the replaced context in
  // *_retired, cp collects it.
  std::atomic<srtp::Context*> rx_next{nullptr};
  std::atomic<srtp::Context*> tx_next{nullptr};
  std::atomic<srtp::Context*> rx_retired{nullptr};
  std::atomic<srtp::Context*> tx_retired{nullptr};

  // --- line 1: small per-packet fields ---
  // [limits] leg_max_pps (the rule: sluice/session/policing.h): one packet
  // per rate_interval_tsc, with bursts of up to rate_tolerance_tsc ahead of
  // that pace; 0 = unlimited.
  uint64_t rate_interval_tsc = 0;
  uint32_t learn_packets = 3;        // authenticated packets before a move (session/learning.h)
  uint32_t candidate_count = 0;      // owning worker: packets from `candidate`
  uint16_t out_port = 0;             // DPDK port of Y's interface
  uint16_t owner = 0;                // the worker that owns this flow's state
  bool rtcp_mux = true;       // X's RTCP arrives on the RTP port (else port + 1)
  bool strict_source = false; // only ever accept X's given remote
  bool out_rtcp_mux = true;   // Y's RTCP leaves from the RTP port (else + 1)
  // X's call is not answered yet: an unauthenticated receive side learns no
  // peer (sluice/session/learning.h). dp: ro; cp: rw (cleared at the answer).
  std::atomic<bool> awaiting_answer{false};
  // Owning worker: out_headers were built from out_remote when its version()
  // was out_headers_version (odd: none built; a version is even once
  // stored) and its resolved_word() out_headers_resolved. Rebuilt when the
  // peer or its next hop moves.
  uint32_t out_headers_version = 1;
  uint64_t out_headers_resolved = 0;
  // X's interface: its DPDK port and VLAN (0: untagged). A flow is found by
  // its local address alone, which a host behind any interface can aim at;
  // only what arrives through X's interface is X's (ArrivedOnLeg).
  uint16_t in_port = 0;
  uint16_t in_vlan = 0;
  // WebRTC legs (dp: ro; cp: rw, through Session::SetHandshake and
  // SetKeysPending). Here, beside in_port and in_vlan, because Admit reads
  // this line for every packet anyway (the interface check): a packet of an
  // ordinary flow pays one byte test in a line already loaded.
  // handshake: X takes STUN and DTLS (RFC 7983) on this port; the owning
  // worker hands them to the handshake thread instead of dropping them.
  std::atomic<bool> handshake{false};
  // keys_pending: X's receive keys or Y's send keys come from a handshake
  // not finished yet, so a null rx or tx does not mean plain RTP: RTP and
  // RTCP are dropped (not_keyed), never relayed in clear. Read (acquire)
  // before the burst's rekey::Adopt: the control thread hands the contexts
  // over, then clears it (release), so a worker that sees it clear adopts
  // them first.
  std::atomic<bool> keys_pending{false};
  // --- lines 1 (its sums) and 2 (its bytes, but the last two of IPv6 with
  // a VLAN tag): the headers toward Y's peer from Y's RTP port ---
  packet::UdpHeaderTemplate out_headers;

  // --- line 3, after the template's end: the rate limit's other words and
  // configuration (dp: ro, cp: rw before publishing) ---
  uint64_t rate_tolerance_tsc = 0;   // with rate_interval_tsc
  uint64_t rate_tat = 0;             // owning worker: its theoretical arrival time (TSC)
  uint64_t id = 0;
  uint64_t rekey_overlap_tsc = 0;    // how long a replaced receive key is still tried
  uint16_t out_vlan = 0;
  packet::MacAddress out_src_mac{};
  // Owning worker: the theoretical arrival time (TSC) of the STUN and DTLS
  // this port hands to the handshake thread, at the workers' handshake rate
  // (sluice/session/policing.h). Read only for those.
  uint64_t handshake_tat = 0;

  // --- line 4 (and 5 on a drop): owning worker writes, anyone reads ---
  FlowCounters counters;

  // --- configuration read when the headers are built or the flow changes
  // (dp: ro, cp: rw before publishing) ---
  packet::Endpoint in_local;  // X's local address and RTP port
  packet::Endpoint out_local;  // Y's local address and RTP port

  // --- owning worker only ---
  packet::Endpoint candidate;        // a new source seen for X's peer
};

// Lines a packet reads or writes: 0 to 4.
inline constexpr int kFlowHotLines = 5;
static_assert(offsetof(Flow, in_vlan) + 2 <= offsetof(Flow, out_headers),
              "the interface is on line 1, read with the other per-packet fields");
static_assert(offsetof(Flow, keys_pending) + 1 <= offsetof(Flow, out_headers) &&
                  offsetof(Flow, handshake) / 64 == offsetof(Flow, in_vlan) / 64,
              "the WebRTC flags share line 1 with the interface check");

// Whether a packet received on DPDK port `port` with outermost VLAN ID
// `vlan` (0: untagged) came through X's interface. Data plane.
inline bool ArrivedOnLeg(const Flow& flow, uint16_t port, uint16_t vlan) noexcept {
  return flow.in_port == port && flow.in_vlan == vlan;
}
static_assert(offsetof(Flow, out_headers) == 64 + 48,
              "the header template's sums end line 1 and its bytes fill line 2");
static_assert(offsetof(Flow, handshake_tat) + 8 <= 4 * 64,
              "line 3 holds the words after the template");
static_assert(offsetof(Flow, counters) == 4 * 64, "the counters are line 4");
static_assert(sizeof(Flow) == 7 * 64, "a flow is seven lines");

}  // namespace sluice::session

#endif  // SLUICE_SESSION_FLOW_H_
