// The slow path: what workers hand over instead of relaying. Answers ARP and
// IPv6 neighbour solicitations for the interfaces' addresses, replies to ICMP
// and ICMPv6 echo, learns neighbours from what it sees, and resolves next hops
// for the session manager (ARP requests, neighbour solicitations).
//
// The neighbour table holds only what Lookup asked for: an ARP or neighbour
// discovery message teaches the slow path an address it asked for within
// the last few seconds, or a new link-layer address for one it knows (RFC
// 826's merge, so a moved gateway is followed); anything else is refused and
// counted, so no host on a link fills the table. The table and the
// addresses being asked for are bounded, and an entry ages: asked again
// before it expires if Lookup has used it since its last answer, forgotten
// when it expires.
//
// A frame a worker could not send because its next hop is not resolved yet
// (the first packets of a call to a new peer) waits here instead of being
// dropped, as an IP stack's unresolved queue does: the worker hands it over
// through hold_ring(), headers written but for the destination MAC. The
// slow path asks for the next hop (again a second later while frames wait)
// and sends the frames, in order, as soon as the answer comes, or drops
// them (counted) after kHoldMs or past the bounds.
//
// Control thread only (workers only enqueue into ring() and hold_ring()). What it sends goes
// through tx_ring(), which one worker drains onto its own TX queues; other
// threads that send frames (the handshake thread) enqueue there too (many
// producers, one consumer), each mbuf with its port set.
#ifndef SLUICE_DPDK_SLOW_PATH_H_
#define SLUICE_DPDK_SLOW_PATH_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "sluice/packet/address.h"
#include "sluice/packet/rewrite.h"

struct rte_mbuf;
struct rte_mempool;
struct rte_ring;

namespace sluice::dpdk {

struct SlowPathInterface {
  uint16_t port_id = 0;
  packet::MacAddress mac{};
  std::optional<packet::Prefix> ipv4;
  std::optional<packet::Prefix> ipv6;
  // Where off-link peers are reached (held frames' next hops).
  std::optional<packet::IpAddress> gateway;
  std::optional<packet::IpAddress> gateway6;
  uint16_t vlan = 0;
};

struct SlowPathCounters {
  uint64_t received = 0;
  uint64_t arp_replies = 0;
  uint64_t arp_requests = 0;
  uint64_t nd_adverts = 0;
  uint64_t nd_solicits = 0;
  uint64_t echo_replies = 0;
  uint64_t neighbors_learned = 0;
  uint64_t neighbors_refused = 0;    // ARP/ND naming an address not asked for: not learned
  uint64_t neighbors_full = 0;       // not learned, or not asked for: the bound was reached
  uint64_t neighbors_refreshed = 0;  // in use and asked again before expiring
  uint64_t neighbors_expired = 0;    // forgotten: no answer within the lifetime
  uint64_t ignored = 0;
  uint64_t tx_failed = 0;
  uint64_t not_answered = 0;  // for our address while not answering (an HA standby)
  uint64_t announcements = 0;  // gratuitous ARPs and unsolicited advertisements sent
  // Frames handed over through hold_ring(): sent at once (the next hop was
  // known by then), held, sent once their next hop answered, or dropped
  // (unparsable, no such port, past the bounds, or unanswered for kHoldMs).
  uint64_t hold_received = 0;
  uint64_t hold_sent = 0;
  uint64_t hold_dropped = 0;
};

struct SlowPathOptions {
  uint32_t ring_size = 4096;
  // Neighbours known, and addresses being asked for, each at most this many.
  uint32_t max_neighbors = 4096;
  // How long an answer is trusted. A neighbour that Lookup used since its
  // last answer is asked again after three quarters of it.
  uint64_t neighbor_lifetime_ms = 60000;
  // Monotonic milliseconds; empty: the steady clock.
  std::function<uint64_t()> clock;
};

class SlowPath {
 public:
  // Answers to a request are welcome this long after it was sent.
  static constexpr uint64_t kAskWindowMs = 5000;
  // At most one request a second per address.
  static constexpr uint64_t kAskIntervalMs = 1000;
  // A held frame waits this long for its next hop: through two more
  // requests (kAskIntervalMs apart) if the first goes unanswered, as an IP
  // stack's three probes. At most kHoldPerNeighbor frames wait for one next
  // hop (past that, the oldest is dropped: a jitter buffer wants the newest
  // media) and kMaxHeld in all (past that, the new frame is dropped).
  static constexpr uint64_t kHoldMs = 3000;
  static constexpr size_t kHoldPerNeighbor = 64;
  static constexpr size_t kMaxHeld = 1024;

  static absl::StatusOr<std::unique_ptr<SlowPath>> Create(std::vector<SlowPathInterface> ifaces,
                                                          rte_mempool* pool,
                                                          SlowPathOptions options = {});
  ~SlowPath();

  rte_ring* ring() const { return ring_; }
  rte_ring* tx_ring() const { return tx_ring_; }
  // Workers' frames whose next hop is unresolved (many producers).
  rte_ring* hold_ring() const { return hold_ring_; }
  // Frames held for a next hop now.
  size_t held() const { return held_count_; }

  // Handles what the workers queued (returns how many of ring()'s packets),
  // sends or holds what they could not address, drops held frames past
  // kHoldMs, and once a second ages the neighbour table.
  unsigned Poll();

  // The next-hop MAC for `ip` on `port_id`, if known and not expired;
  // otherwise asks for it (at most once a second per address) and returns
  // nullopt.
  std::optional<packet::MacAddress> Lookup(uint16_t port_id, const packet::IpAddress& ip);
  size_t neighbors() const { return neighbors_.size(); }

  // Whether the interfaces' addresses are this instance's (docs/ha.md,
  // "Standby"): an HA standby neither answers ARP, neighbour solicitations
  // or echo for them nor sends anything naming them (no requests either),
  // so the link keeps sending to the active. On by default.
  void SetAnswering(bool answering) { answering_ = answering; }
  bool answering() const { return answering_; }
  // Takes the addresses over: a gratuitous ARP (RFC 5227 §3's announcement)
  // for each interface's IPv4 address and an unsolicited neighbour
  // advertisement (RFC 4861 §7.2.6) for its IPv6 one, from its own MAC.
  void Announce();

  const SlowPathCounters& counters() const { return counters_; }

 private:
  SlowPath() = default;
  void Handle(rte_mbuf* m);
  bool HandleArp(rte_mbuf* m, const SlowPathInterface& iface, uint32_t l3);
  bool HandleIpv4(rte_mbuf* m, const SlowPathInterface& iface, uint32_t l3);
  bool HandleIpv6(rte_mbuf* m, const SlowPathInterface& iface, uint32_t l3);
  bool HandleNeighborDiscovery(rte_mbuf* m, const SlowPathInterface& iface, uint32_t l3,
                               uint32_t payload);
  bool AdvertiseNeighbor(rte_mbuf* m, const SlowPathInterface& iface, uint32_t l3,
                         const packet::IpAddress& src, const packet::IpAddress& target);
  bool AnswerEcho6(rte_mbuf* m, const SlowPathInterface& iface, uint32_t l3, uint32_t payload);
  using NeighborKey = std::pair<uint16_t, packet::IpAddress>;
  struct Neighbor {
    packet::MacAddress mac;
    uint64_t confirmed_ms;  // its last answer
    bool used;              // Lookup returned it since then
  };
  void Learn(uint16_t port, const packet::IpAddress& ip, const uint8_t* mac);
  struct HeldFrame {
    rte_mbuf* m;
    uint64_t since_ms;
  };
  // A frame from hold_ring(): sent if its next hop is known, else held.
  void Hold(rte_mbuf* m, uint64_t now);
  // The held frames for `key` go out to `mac`.
  void Release(const NeighborKey& key, const packet::MacAddress& mac);
  void ExpireHeld(uint64_t now);
  void DropHeld(rte_mbuf* m);
  // Sends a request for `key` unless one went out within kAskIntervalMs or
  // the bound is reached; whether it sent one.
  bool Ask(const SlowPathInterface& iface, const NeighborKey& key, uint64_t now);
  void Age(uint64_t now);
  void Send(const SlowPathInterface& iface, rte_mbuf* m);
  void SendArpRequest(const SlowPathInterface& iface, const packet::IpAddress& target);
  void SendNeighborMessage(const SlowPathInterface& iface, const packet::IpAddress& target,
                           bool unsolicited);
  rte_mbuf* NewFrame(const SlowPathInterface& iface, const uint8_t* dst, uint16_t type,
                     uint32_t l3_len, uint8_t** l3);
  const SlowPathInterface* FindPort(uint16_t port) const;
  uint64_t NowMs() const;

  std::vector<SlowPathInterface> ifaces_;
  SlowPathOptions options_;
  uint64_t aged_ms_ = 0;
  rte_mempool* pool_ = nullptr;
  rte_ring* ring_ = nullptr;
  rte_ring* tx_ring_ = nullptr;
  rte_ring* hold_ring_ = nullptr;
  absl::flat_hash_map<NeighborKey, std::vector<HeldFrame>> held_;
  size_t held_count_ = 0;
  absl::flat_hash_map<NeighborKey, Neighbor> neighbors_;
  absl::flat_hash_map<NeighborKey, uint64_t> asked_ms_;  // when each was last asked for
  SlowPathCounters counters_;
  bool answering_ = true;
};

}  // namespace sluice::dpdk

#endif  // SLUICE_DPDK_SLOW_PATH_H_
