// Peer learning: where a leg's peer is, as the control plane gives it and as
// the leg's own traffic shows it (the relay sends a leg's media to the
// address that leg's peer sends from, so NATed phones work).
//
// The rule, in one place:
//   - A leg with a strict source accepts only the remote it was given.
//   - A leg that authenticates its packets (SRTP with a receive key) starts
//     from the given remote, or from nothing, and moves to a new source only
//     after learn_packets consecutive packets from it have authenticated, so
//     a forged packet can never move a call.
//   - A plain leg has nothing to authenticate with, nor has one whose suite
//     has no SRTP tag (AES_CM_128_NULL_AUTH): it learns its first source if
//     it was given none and its call is answered (Flow::awaiting_answer;
//     an ng offer's answerer leg is not, until the answer), and never moves
//     after that. Until then it drops what comes from anywhere else, so
//     nothing sent first can take the peer's place, nor the stream slots of
//     the other leg's send context.
//   - A known peer's first packet tells the next hop toward it (its frame's
//     source MAC) when the control plane did not.
//   - RTCP on a separate port never moves the peer: it follows the RTP port.
//
// Control plane: GivenRemote when a leg is created or the controller moves
// its peer. Data plane, the flow's owning worker only: CheckSource on
// arrival, Learn once the packet has authenticated and passed the rate
// limit. Does not allocate.
#ifndef SLUICE_SESSION_LEARNING_H_
#define SLUICE_SESSION_LEARNING_H_

#include <cstdint>
#include <cstring>
#include <optional>

#include "sluice/packet/address.h"
#include "sluice/packet/rewrite.h"
#include "sluice/session/flow.h"
#include "sluice/session/remote.h"

namespace sluice::session::learning {

// Control thread: the peer as the controller gives it (nothing known when
// `remote` is empty).
RemoteView GivenRemote(const std::optional<packet::Endpoint>& remote,
                       const std::optional<packet::MacAddress>& next_hop_mac);

// What a packet's source means for its leg, before authentication.
struct Source {
  bool refused;     // the leg never accepts this source: drop the packet
  bool new_source;  // not the leg's known peer: a candidate to learn
  bool needs_mac;   // the known peer, whose next-hop MAC is not known yet
};

// The peer's RTCP port is its RTP port + 1 when RTCP is not muxed (RFC 3550
// §11).
inline uint16_t RtcpPortOffset(bool rtcp, bool rtcp_mux) noexcept {
  return rtcp && !rtcp_mux ? 1 : 0;
}

// Whether what the leg receives is authenticated: SRTP whose suite has an
// SRTP tag. Plain RTP and AES_CM_128_NULL_AUTH are not: anyone may send what
// they accept. Any thread that may read the flow's receive context.
inline bool Authenticates(const Flow& flow) noexcept {
  return flow.rx != nullptr && flow.rx->suite().srtp_tag_len > 0;
}

// Owning worker, on arrival.
inline Source CheckSource(const Flow& flow, const packet::Endpoint& src, bool rtcp) noexcept {
  const RemoteSlot::Match peer =
      flow.in_remote->Matches(src.ip, src.port, RtcpPortOffset(rtcp, flow.rtcp_mux));
  Source s{false, !peer.same, peer.same && !peer.has_mac};
  if (s.new_source) {
    s.refused = flow.strict_source ||
                (!Authenticates(flow) && (flow.awaiting_answer.load(std::memory_order_relaxed) ||
                                          flow.in_remote->Load().known));
  }
  return s;
}

// Owning worker, once the packet has authenticated (or, on a leg that does
// not authenticate, been admitted) and passed the rate limit. src_mac: the frame's source MAC (the
// next hop toward the peer).
inline void Learn(Flow& flow, const Source& s, const packet::Endpoint& src, const uint8_t* src_mac,
                  bool rtcp) noexcept {
  if (!s.new_source) {
    flow.candidate_count = 0;
    if (s.needs_mac) {
      RemoteView peer = flow.in_remote->Load();
      peer.has_mac = true;
      std::memcpy(peer.mac.data(), src_mac, 6);
      flow.in_remote->Store(peer);
    }
    return;
  }
  if (rtcp && !flow.rtcp_mux) return;
  RemoteView peer = flow.in_remote->Load();
  if (peer.known) {
    if (flow.candidate == src) {
      ++flow.candidate_count;
    } else {
      flow.candidate = src;
      flow.candidate_count = 1;
    }
    if (flow.candidate_count < flow.learn_packets) return;
    FlowCounters::Add(flow.counters.remote_changes, 1);
  }
  peer.known = true;
  peer.learned = true;
  peer.has_mac = true;
  peer.endpoint = src;
  std::memcpy(peer.mac.data(), src_mac, 6);
  flow.in_remote->Store(peer);
  flow.candidate_count = 0;
}

}  // namespace sluice::session::learning

#endif  // SLUICE_SESSION_LEARNING_H_
