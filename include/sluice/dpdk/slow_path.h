// The slow path: what workers hand over instead of relaying. Answers ARP and
// IPv6 neighbour solicitations for the interfaces' addresses, replies to ICMP
// and ICMPv6 echo, learns neighbours from what it sees, and resolves next hops
// for the session manager (ARP requests, neighbour solicitations).
//
// Control thread only (workers only enqueue into ring()). What it sends goes
// through tx_ring(), which one worker drains onto its own TX queues.
#ifndef SLUICE_DPDK_SLOW_PATH_H_
#define SLUICE_DPDK_SLOW_PATH_H_

#include <cstdint>
#include "absl/container/flat_hash_map.h"
#include <memory>
#include <optional>
#include <utility>
#include <vector>

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
  uint64_t ignored = 0;
  uint64_t tx_failed = 0;
};

class SlowPath {
 public:
  static absl::StatusOr<std::unique_ptr<SlowPath>> Create(std::vector<SlowPathInterface> ifaces,
                                                          rte_mempool* pool,
                                                          uint32_t ring_size = 4096);
  ~SlowPath();

  rte_ring* ring() const { return ring_; }
  rte_ring* tx_ring() const { return tx_ring_; }

  // Handles what the workers queued; returns how many packets.
  unsigned Poll();

  // The next-hop MAC for `ip` on `port_id`, if known; otherwise asks for it
  // (at most once a second per address) and returns nullopt.
  std::optional<packet::MacAddress> Lookup(uint16_t port_id, const packet::IpAddress& ip);

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
  void Learn(uint16_t port, const packet::IpAddress& ip, const uint8_t* mac);
  void Send(const SlowPathInterface& iface, rte_mbuf* m);
  void SendArpRequest(const SlowPathInterface& iface, const packet::IpAddress& target);
  void SendNeighborSolicit(const SlowPathInterface& iface, const packet::IpAddress& target);
  const SlowPathInterface* FindPort(uint16_t port) const;
  uint64_t NowMs() const;

  std::vector<SlowPathInterface> ifaces_;
  rte_mempool* pool_ = nullptr;
  rte_ring* ring_ = nullptr;
  rte_ring* tx_ring_ = nullptr;
  absl::flat_hash_map<std::pair<uint16_t, packet::IpAddress>, packet::MacAddress> neighbors_;
  absl::flat_hash_map<std::pair<uint16_t, packet::IpAddress>, uint64_t> asked_ms_;
  SlowPathCounters counters_;
};

}  // namespace sluice::dpdk

#endif  // SLUICE_DPDK_SLOW_PATH_H_
