#include "sluice/dpdk/slow_path.h"

#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <chrono>
#include <cstring>

#include <array>

namespace sluice::dpdk {
namespace {

constexpr uint16_t kEtherArp = 0x0806;
constexpr uint16_t kEtherIpv4 = 0x0800;
constexpr uint16_t kEtherIpv6 = 0x86dd;
constexpr uint16_t kEtherVlan = 0x8100;
// RFC 4291 §2.7.1's all-nodes group and its MAC (RFC 2464 §7).
constexpr uint8_t kAllNodes[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
constexpr uint8_t kAllNodesMac[6] = {0x33, 0x33, 0, 0, 0, 1};

uint16_t Load16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
void Store16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

bool IsOurs(const std::optional<packet::Prefix>& prefix, const packet::IpAddress& ip) {
  return prefix && prefix->ip == ip;
}

// RFC 4443 §2.3: the ICMPv6 checksum covers a pseudo-header (RFC 8200 §8.1)
// with next header 58.
uint16_t Icmpv6Checksum(const uint8_t* src, const uint8_t* dst, const uint8_t* msg,
                        uint32_t len) {
  uint8_t pseudo[40] = {};
  std::memcpy(pseudo, src, 16);
  std::memcpy(pseudo + 16, dst, 16);
  pseudo[32] = static_cast<uint8_t>(len >> 24);
  pseudo[33] = static_cast<uint8_t>(len >> 16);
  pseudo[34] = static_cast<uint8_t>(len >> 8);
  pseudo[35] = static_cast<uint8_t>(len);
  pseudo[39] = 58;
  const uint16_t sum = packet::OnesComplementSum(pseudo, sizeof pseudo);
  return static_cast<uint16_t>(~packet::OnesComplementSum(msg, len, sum));
}

// The solicited-node multicast address (RFC 4291 §2.7.1) and its MAC (RFC 2464 §7).
void SolicitedNode(const uint8_t* target, uint8_t* ip, uint8_t* mac) {
  static constexpr uint8_t kPrefix[13] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff};
  std::memcpy(ip, kPrefix, 13);
  std::memcpy(ip + 13, target + 13, 3);
  mac[0] = 0x33;
  mac[1] = 0x33;
  std::memcpy(mac + 2, ip + 12, 4);
}

// The address of the last link-layer address option of `type` in a
// neighbour discovery message (RFC 4861 §4.6.1), or null.
const uint8_t* FindLinkLayerOption(const uint8_t* icmp, uint32_t payload, uint8_t type) {
  const uint8_t* lla = nullptr;
  for (uint32_t off = 24; off + 8 <= payload;) {
    const uint32_t opt_len = icmp[off + 1] * 8u;
    if (opt_len == 0 || off + opt_len > payload) break;
    if (icmp[off] == type && opt_len >= 8) lla = icmp + off + 2;
    off += opt_len;
  }
  return lla;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SlowPath>> SlowPath::Create(std::vector<SlowPathInterface> ifaces,
                                                           rte_mempool* pool,
                                                           SlowPathOptions options) {
  std::unique_ptr<SlowPath> sp(new SlowPath());
  sp->ifaces_ = std::move(ifaces);
  sp->options_ = std::move(options);
  sp->pool_ = pool;
  // Many workers enqueue, the control thread alone dequeues.
  sp->ring_ = rte_ring_create("slow_path", sp->options_.ring_size, SOCKET_ID_ANY, RING_F_SC_DEQ);
  if (sp->ring_ == nullptr) {
    return absl::ResourceExhaustedError("cannot create the slow-path ring");
  }
  // The control thread and the handshake thread enqueue, one worker sends.
  sp->tx_ring_ = rte_ring_create("slow_path_tx", 1024, SOCKET_ID_ANY, RING_F_SC_DEQ);
  if (sp->tx_ring_ == nullptr) {
    return absl::ResourceExhaustedError("cannot create the slow-path TX ring");
  }
  // Workers enqueue, the control thread dequeues.
  sp->hold_ring_ = rte_ring_create("slow_path_hold", 1024, SOCKET_ID_ANY, RING_F_SC_DEQ);
  if (sp->hold_ring_ == nullptr) {
    return absl::ResourceExhaustedError("cannot create the slow-path hold ring");
  }
  return sp;
}

SlowPath::~SlowPath() {
  if (ring_ != nullptr) {
    void* m;
    while (rte_ring_dequeue(ring_, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
    rte_ring_free(ring_);
  }
  for (rte_ring* ring : {tx_ring_, hold_ring_}) {
    if (ring == nullptr) continue;
    void* m;
    while (rte_ring_dequeue(ring, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
    rte_ring_free(ring);
  }
  for (auto& [key, frames] : held_) {
    for (const HeldFrame& f : frames) rte_pktmbuf_free(f.m);
  }
}

uint64_t SlowPath::NowMs() const {
  if (options_.clock) return options_.clock();
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

const SlowPathInterface* SlowPath::FindPort(uint16_t port) const {
  for (const SlowPathInterface& iface : ifaces_) {
    if (iface.port_id == port) return &iface;
  }
  return nullptr;
}

unsigned SlowPath::Poll() {
  void* pkts[32];
  const unsigned n = rte_ring_sc_dequeue_burst(ring_, pkts, 32, nullptr);
  for (unsigned i = 0; i < n; ++i) Handle(static_cast<rte_mbuf*>(pkts[i]));
  counters_.received += n;
  const uint64_t now = NowMs();
  const unsigned held = rte_ring_sc_dequeue_burst(hold_ring_, pkts, 32, nullptr);
  for (unsigned i = 0; i < held; ++i) Hold(static_cast<rte_mbuf*>(pkts[i]), now);
  if (held_count_ > 0) ExpireHeld(now);
  if (now - aged_ms_ >= 1000) {
    aged_ms_ = now;
    Age(now);
  }
  return n;
}

// RFC 826's merge: a known neighbour's address is updated from whatever
// names it (a gateway that moved announces it). A new one is learned only
// when it was asked for: every next hop the data plane needs goes through
// Lookup, which asks first, so an unsolicited answer (or any host's request
// for our address) would only fill the table. (RFC 4861 §7.2.3 has a
// solicitation's sender cached too; Sluice asks when it needs one.)
void SlowPath::Learn(uint16_t port, const packet::IpAddress& ip, const uint8_t* mac) {
  const NeighborKey key{port, ip};
  const uint64_t now = NowMs();
  packet::MacAddress m;
  std::memcpy(m.data(), mac, 6);
  auto asked = asked_ms_.find(key);
  const bool solicited = asked != asked_ms_.end() && now - asked->second < kAskWindowMs;
  if (auto it = neighbors_.find(key); it != neighbors_.end()) {
    it->second.mac = m;
    it->second.confirmed_ms = now;
    it->second.used = false;
  } else if (!solicited) {
    ++counters_.neighbors_refused;
    return;
  } else if (neighbors_.size() >= options_.max_neighbors) {
    ++counters_.neighbors_full;
    return;
  } else {
    neighbors_.emplace(key, Neighbor{m, now, false});
    ++counters_.neighbors_learned;
  }
  if (asked != asked_ms_.end()) asked_ms_.erase(asked);
  if (held_count_ > 0) Release(key, m);
}

// The frame's destination address (after its VLAN tag, if any) gives its
// next hop on the port it is to leave by, as the session manager resolves
// it; the worker wrote every header but the destination MAC.
void SlowPath::Hold(rte_mbuf* m, uint64_t now) {
  ++counters_.hold_received;
  const SlowPathInterface* iface = FindPort(m->port);
  const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
  const uint32_t len = rte_pktmbuf_data_len(m);
  uint32_t l3 = 14;
  if (len >= 18 && Load16(d + 12) == kEtherVlan) l3 = 18;
  const uint16_t type = len >= l3 ? Load16(d + l3 - 2) : 0;
  std::optional<packet::IpAddress> dst;
  if (type == kEtherIpv4 && len >= l3 + 20) dst = packet::IpAddress::V4Bytes(d + l3 + 16);
  if (type == kEtherIpv6 && len >= l3 + 40) dst = packet::IpAddress::V6Bytes(d + l3 + 24);
  if (iface == nullptr || !dst) {
    DropHeld(m);
    return;
  }
  const NeighborKey key{iface->port_id,
                        dst->is_v4() ? packet::NextHop(*dst, iface->ipv4, iface->gateway)
                                     : packet::NextHop(*dst, iface->ipv6, iface->gateway6)};
  // Behind frames already held for it, in their order; else at once if
  // its next hop is known (Lookup asks for it otherwise).
  if (!held_.contains(key)) {
    if (std::optional<packet::MacAddress> mac = Lookup(key.first, key.second)) {
      std::memcpy(rte_pktmbuf_mtod(m, uint8_t*), mac->data(), 6);
      ++counters_.hold_sent;
      Send(*iface, m);
      return;
    }
  }
  std::vector<HeldFrame>& frames = held_[key];
  if (frames.size() >= kHoldPerNeighbor) {
    DropHeld(frames.front().m);
    frames.erase(frames.begin());
    --held_count_;
  }
  if (held_count_ >= kMaxHeld) {
    if (frames.empty()) held_.erase(key);
    DropHeld(m);
    return;
  }
  frames.push_back(HeldFrame{m, now});
  ++held_count_;
}

void SlowPath::Release(const NeighborKey& key, const packet::MacAddress& mac) {
  auto it = held_.find(key);
  const SlowPathInterface* iface = FindPort(key.first);
  if (it == held_.end() || iface == nullptr) return;
  for (const HeldFrame& f : it->second) {
    std::memcpy(rte_pktmbuf_mtod(f.m, uint8_t*), mac.data(), 6);
    ++counters_.hold_sent;
    Send(*iface, f.m);
  }
  held_count_ -= it->second.size();
  held_.erase(it);
}

// Frames are held in arrival order: each next hop's expire from the front.
// A next hop still awaited is asked for again (Ask keeps requests a second
// apart).
void SlowPath::ExpireHeld(uint64_t now) {
  for (auto it = held_.begin(); it != held_.end();) {
    std::vector<HeldFrame>& frames = it->second;
    size_t gone = 0;
    while (gone < frames.size() && now - frames[gone].since_ms >= kHoldMs) {
      DropHeld(frames[gone++].m);
    }
    frames.erase(frames.begin(), frames.begin() + static_cast<ptrdiff_t>(gone));
    held_count_ -= gone;
    if (frames.empty()) {
      held_.erase(it++);
      continue;
    }
    if (const SlowPathInterface* iface = FindPort(it->first.first)) Ask(*iface, it->first, now);
    ++it;
  }
}

void SlowPath::DropHeld(rte_mbuf* m) {
  ++counters_.hold_dropped;
  rte_pktmbuf_free(m);
}

// Once a second: neighbours past their lifetime are forgotten; those Lookup
// used since their last answer are asked again in the last quarter of it,
// so a call's next hop stays known while it is needed. Requests unanswered
// for longer than kAskWindowMs are forgotten.
void SlowPath::Age(uint64_t now) {
  const uint64_t lifetime = options_.neighbor_lifetime_ms;
  for (auto it = neighbors_.begin(); it != neighbors_.end();) {
    const uint64_t age = now - it->second.confirmed_ms;
    if (age >= lifetime) {
      ++counters_.neighbors_expired;
      neighbors_.erase(it++);
      continue;
    }
    const SlowPathInterface* iface = FindPort(it->first.first);
    if (it->second.used && age >= lifetime - lifetime / 4 && iface != nullptr &&
        Ask(*iface, it->first, now)) {
      ++counters_.neighbors_refreshed;
    }
    ++it;
  }
  absl::erase_if(asked_ms_, [&](const auto& entry) {
    return now - entry.second >= kAskWindowMs;
  });
}

void SlowPath::Send(const SlowPathInterface& iface, rte_mbuf* m) {
  m->port = iface.port_id;
  if (rte_ring_mp_enqueue(tx_ring_, m) != 0) {
    ++counters_.tx_failed;
    rte_pktmbuf_free(m);
  }
}

void SlowPath::Handle(rte_mbuf* m) {
  const SlowPathInterface* iface = FindPort(m->port);
  const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
  const uint32_t len = rte_pktmbuf_data_len(m);
  bool consumed = false;
  if (iface != nullptr && m->nb_segs == 1 && len >= 14) {
    uint32_t l3 = 14;
    uint16_t type = Load16(d + 12);
    if (type == kEtherVlan && len >= 18) {
      type = Load16(d + 16);
      l3 = 18;
    }
    if (type == kEtherArp) {
      consumed = HandleArp(m, *iface, l3);
    } else if (type == kEtherIpv4) {
      consumed = HandleIpv4(m, *iface, l3);
    } else if (type == kEtherIpv6) {
      consumed = HandleIpv6(m, *iface, l3);
    }
  }
  if (!consumed) {
    ++counters_.ignored;
    rte_pktmbuf_free(m);
  }
}

// RFC 826: learn the sender; answer requests for our address in place.
bool SlowPath::HandleArp(rte_mbuf* m, const SlowPathInterface& iface, uint32_t l3) {
  uint8_t* d = rte_pktmbuf_mtod(m, uint8_t*);
  if (rte_pktmbuf_data_len(m) < l3 + 28) return false;
  uint8_t* arp = d + l3;
  if (Load16(arp) != 1 || Load16(arp + 2) != kEtherIpv4 || arp[4] != 6 || arp[5] != 4) {
    return false;
  }
  const uint16_t op = Load16(arp + 6);
  const packet::IpAddress sender = packet::IpAddress::V4Bytes(arp + 14);
  const packet::IpAddress target = packet::IpAddress::V4Bytes(arp + 24);
  if (iface.ipv4 && iface.ipv4->Contains(sender)) {
    Learn(iface.port_id, sender, arp + 8);
  } else {
    ++counters_.neighbors_refused;
  }
  if (op != 1 || !IsOurs(iface.ipv4, target)) return false;
  if (!answering_) {
    ++counters_.not_answered;
    return false;
  }
  // Reply: to the asker, from us.
  std::memcpy(d, arp + 8, 6);
  std::memcpy(d + 6, iface.mac.data(), 6);
  Store16(arp + 6, 2);
  std::memcpy(arp + 18, arp + 8, 10);  // target hardware + protocol = the asker
  std::memcpy(arp + 8, iface.mac.data(), 6);
  std::memcpy(arp + 14, target.bytes.data(), 4);
  ++counters_.arp_replies;
  Send(iface, m);
  return true;
}

// ICMP echo (RFC 792) to our address: answered in place.
bool SlowPath::HandleIpv4(rte_mbuf* m, const SlowPathInterface& iface, uint32_t l3) {
  uint8_t* d = rte_pktmbuf_mtod(m, uint8_t*);
  const uint32_t len = rte_pktmbuf_data_len(m);
  if (len < l3 + 20) return false;
  uint8_t* ip = d + l3;
  const uint32_t ihl = (ip[0] & 0x0f) * 4u;
  const uint32_t total = Load16(ip + 2);
  if ((ip[0] >> 4) != 4 || ihl < 20 || total < ihl + 8 || l3 + total > len || ip[9] != 1) {
    return false;
  }
  const packet::IpAddress dst = packet::IpAddress::V4Bytes(ip + 16);
  uint8_t* icmp = ip + ihl;
  if (!IsOurs(iface.ipv4, dst) || icmp[0] != 8) return false;
  if (!answering_) {
    ++counters_.not_answered;
    return false;
  }
  uint8_t mac[6];
  std::memcpy(mac, d, 6);
  std::memcpy(d, d + 6, 6);
  std::memcpy(d + 6, iface.mac.data(), 6);
  uint8_t addr[4];
  std::memcpy(addr, ip + 12, 4);
  std::memcpy(ip + 12, ip + 16, 4);
  std::memcpy(ip + 16, addr, 4);
  ip[8] = 64;
  ip[10] = ip[11] = 0;
  Store16(ip + 10, packet::Ipv4HeaderChecksum(ip, ihl));
  icmp[0] = 0;  // echo reply
  icmp[2] = icmp[3] = 0;
  Store16(icmp + 2, static_cast<uint16_t>(~packet::OnesComplementSum(icmp, total - ihl)));
  m->data_len = static_cast<uint16_t>(l3 + total);  // drop Ethernet padding
  m->pkt_len = m->data_len;
  ++counters_.echo_replies;
  Send(iface, m);
  return true;
}

// RFC 4861 neighbour discovery and RFC 4443 echo for our IPv6 address.
bool SlowPath::HandleIpv6(rte_mbuf* m, const SlowPathInterface& iface, uint32_t l3) {
  uint8_t* d = rte_pktmbuf_mtod(m, uint8_t*);
  const uint32_t len = rte_pktmbuf_data_len(m);
  if (len < l3 + 40 + 8) return false;
  const uint8_t* ip = d + l3;
  const uint32_t payload = Load16(ip + 4);
  if ((ip[0] >> 4) != 6 || ip[6] != 58 || l3 + 40 + payload > len || payload < 8) return false;
  const uint8_t type = ip[40];
  if (type == 135 || type == 136) return HandleNeighborDiscovery(m, iface, l3, payload);
  if (type == 128 && IsOurs(iface.ipv6, packet::IpAddress::V6Bytes(ip + 24))) {
    if (!answering_) {
      ++counters_.not_answered;
      return false;
    }
    return AnswerEcho6(m, iface, l3, payload);
  }
  return false;
}

// RFC 4861 §7.2: learn from solicitations (their source) and advertisements
// (their target); answer a solicitation for our address.
bool SlowPath::HandleNeighborDiscovery(rte_mbuf* m, const SlowPathInterface& iface, uint32_t l3,
                                       uint32_t payload) {
  const uint8_t* ip = rte_pktmbuf_mtod(m, const uint8_t*) + l3;
  const uint8_t* icmp = ip + 40;
  if (payload < 24 || ip[7] != 255) return false;  // RFC 4861 §7.1.1: hop limit 255
  const bool solicit = icmp[0] == 135;
  const packet::IpAddress src = packet::IpAddress::V6Bytes(ip + 8);
  const packet::IpAddress target = packet::IpAddress::V6Bytes(icmp + 8);
  // Link-layer address option: source (1) in NS, target (2) in NA.
  const uint8_t* lla = FindLinkLayerOption(icmp, payload, solicit ? 1 : 2);
  if (!solicit) {
    if (lla != nullptr) Learn(iface.port_id, target, lla);
    return false;
  }
  if (lla != nullptr) Learn(iface.port_id, src, lla);
  if (!IsOurs(iface.ipv6, target)) return false;
  if (!answering_) {
    ++counters_.not_answered;
    return false;
  }
  return AdvertiseNeighbor(m, iface, l3, src, target);
}

// The solicited advertisement (override, with our link-layer address),
// written over the solicitation: to its sender, or to all nodes when it came
// from the unspecified address (RFC 4861 §7.2.4).
bool SlowPath::AdvertiseNeighbor(rte_mbuf* m, const SlowPathInterface& iface, uint32_t l3,
                                 const packet::IpAddress& src, const packet::IpAddress& target) {
  uint8_t* d = rte_pktmbuf_mtod(m, uint8_t*);
  uint8_t* ip = d + l3;
  uint8_t* icmp = ip + 40;
  const bool unspecified = src == packet::IpAddress::V6Bytes(std::array<uint8_t, 16>{}.data());
  uint8_t reply_dst[16];
  std::memcpy(reply_dst, unspecified ? kAllNodes : src.bytes.data(), 16);
  uint8_t eth_dst[6];
  std::memcpy(eth_dst, unspecified ? kAllNodesMac : d + 6, 6);
  const uint32_t na_len = 32;  // header, target, one 8-byte option
  if (l3 + 40 + na_len > rte_pktmbuf_data_len(m) + rte_pktmbuf_tailroom(m)) return false;
  std::memcpy(d, eth_dst, 6);
  std::memcpy(d + 6, iface.mac.data(), 6);
  Store16(ip + 4, static_cast<uint16_t>(na_len));
  ip[7] = 255;
  std::memcpy(ip + 8, target.bytes.data(), 16);
  std::memcpy(ip + 24, reply_dst, 16);
  icmp[0] = 136;
  icmp[1] = 0;
  icmp[4] = unspecified ? 0x20 : 0x60;  // S (solicited) unless to all-nodes, O (override)
  icmp[5] = icmp[6] = icmp[7] = 0;
  icmp[24] = 2;  // target link-layer address
  icmp[25] = 1;
  std::memcpy(icmp + 26, iface.mac.data(), 6);
  icmp[2] = icmp[3] = 0;
  Store16(icmp + 2, Icmpv6Checksum(ip + 8, ip + 24, icmp, na_len));
  m->data_len = static_cast<uint16_t>(l3 + 40 + na_len);
  m->pkt_len = m->data_len;
  ++counters_.nd_adverts;
  Send(iface, m);
  return true;
}

// RFC 4443 §4.2: the echo reply, written over the request.
bool SlowPath::AnswerEcho6(rte_mbuf* m, const SlowPathInterface& iface, uint32_t l3,
                           uint32_t payload) {
  uint8_t* d = rte_pktmbuf_mtod(m, uint8_t*);
  uint8_t* ip = d + l3;
  uint8_t* icmp = ip + 40;
  uint8_t dst[16];
  std::memcpy(dst, ip + 24, 16);
  std::memcpy(d, d + 6, 6);
  std::memcpy(d + 6, iface.mac.data(), 6);
  std::memcpy(ip + 24, ip + 8, 16);
  std::memcpy(ip + 8, dst, 16);
  ip[7] = 64;
  icmp[0] = 129;
  icmp[2] = icmp[3] = 0;
  Store16(icmp + 2, Icmpv6Checksum(ip + 8, ip + 24, icmp, payload));
  m->data_len = static_cast<uint16_t>(l3 + 40 + payload);
  m->pkt_len = m->data_len;
  ++counters_.echo_replies;
  Send(iface, m);
  return true;
}

std::optional<packet::MacAddress> SlowPath::Lookup(uint16_t port_id,
                                                   const packet::IpAddress& ip) {
  const NeighborKey key{port_id, ip};
  const uint64_t now = NowMs();
  if (auto it = neighbors_.find(key); it != neighbors_.end()) {
    if (now - it->second.confirmed_ms < options_.neighbor_lifetime_ms) {
      it->second.used = true;
      return it->second.mac;
    }
    ++counters_.neighbors_expired;
    neighbors_.erase(it);
  }
  const SlowPathInterface* iface = FindPort(port_id);
  if (iface != nullptr) Ask(*iface, key, now);
  return std::nullopt;
}

bool SlowPath::Ask(const SlowPathInterface& iface, const NeighborKey& key, uint64_t now) {
  // A request names our address as its sender: only the instance that owns
  // the addresses may send one (its receivers update their caches from it).
  if (!answering_) return false;
  auto it = asked_ms_.find(key);
  if (it == asked_ms_.end()) {
    if (asked_ms_.size() >= options_.max_neighbors) {
      ++counters_.neighbors_full;
      return false;
    }
    it = asked_ms_.emplace(key, now).first;
  } else if (now - it->second < kAskIntervalMs) {
    return false;
  }
  it->second = now;
  if (key.second.is_v4()) {
    SendArpRequest(iface, key.second);
  } else {
    SendNeighborMessage(iface, key.second, /*unsolicited=*/false);
  }
  return true;
}

// A frame of `l3_len` bytes after the Ethernet header (and the interface's
// VLAN tag), from the interface's MAC to `dst`; its L3 start in *l3.
rte_mbuf* SlowPath::NewFrame(const SlowPathInterface& iface, const uint8_t* dst, uint16_t type,
                             uint32_t l3_len, uint8_t** l3) {
  rte_mbuf* m = rte_pktmbuf_alloc(pool_);
  if (m == nullptr) return nullptr;
  const uint32_t eth = iface.vlan ? 18 : 14;
  uint8_t* d = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, static_cast<uint16_t>(eth + l3_len)));
  if (d == nullptr) {
    rte_pktmbuf_free(m);
    return nullptr;
  }
  std::memcpy(d, dst, 6);
  std::memcpy(d + 6, iface.mac.data(), 6);
  if (iface.vlan) {
    Store16(d + 12, kEtherVlan);
    Store16(d + 14, iface.vlan);
  }
  Store16(d + eth - 2, type);
  *l3 = d + eth;
  return m;
}

// An ARP request from us (RFC 826) for `target`; a gratuitous one (RFC 5227
// §3's announcement) when `target` is our own address.
void SlowPath::SendArpRequest(const SlowPathInterface& iface, const packet::IpAddress& target) {
  if (!iface.ipv4) return;
  static constexpr uint8_t kBroadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  uint8_t* arp;
  rte_mbuf* m = NewFrame(iface, kBroadcast, kEtherArp, 28, &arp);
  if (m == nullptr) return;
  Store16(arp, 1);
  Store16(arp + 2, kEtherIpv4);
  arp[4] = 6;
  arp[5] = 4;
  Store16(arp + 6, 1);
  std::memcpy(arp + 8, iface.mac.data(), 6);
  std::memcpy(arp + 14, iface.ipv4->ip.bytes.data(), 4);
  std::memset(arp + 18, 0, 6);
  std::memcpy(arp + 24, target.bytes.data(), 4);
  ++(target == iface.ipv4->ip ? counters_.announcements : counters_.arp_requests);
  Send(iface, m);
}

// A neighbour solicitation for `target` to its solicited-node group
// (RFC 4861 §7.2.2), or, `unsolicited`, the advertisement of our own
// address to all nodes (§7.2.6: Override set, Solicited clear).
void SlowPath::SendNeighborMessage(const SlowPathInterface& iface, const packet::IpAddress& target,
                                   bool unsolicited) {
  if (!iface.ipv6) return;
  const uint32_t len = 32;  // header, target, one 8-byte link-layer address option
  uint8_t group[16], group_mac[6];
  SolicitedNode(target.bytes.data(), group, group_mac);
  uint8_t* ip;
  rte_mbuf* m = NewFrame(iface, unsolicited ? kAllNodesMac : group_mac, kEtherIpv6, 40 + len, &ip);
  if (m == nullptr) return;
  std::memset(ip, 0, 40 + len);
  ip[0] = 0x60;
  Store16(ip + 4, static_cast<uint16_t>(len));
  ip[6] = 58;
  ip[7] = 255;
  std::memcpy(ip + 8, iface.ipv6->ip.bytes.data(), 16);
  std::memcpy(ip + 24, unsolicited ? kAllNodes : group, 16);
  uint8_t* icmp = ip + 40;
  icmp[0] = unsolicited ? 136 : 135;
  icmp[4] = unsolicited ? 0x20 : 0;  // O (override)
  std::memcpy(icmp + 8, target.bytes.data(), 16);
  icmp[24] = unsolicited ? 2 : 1;  // target / source link-layer address
  icmp[25] = 1;
  std::memcpy(icmp + 26, iface.mac.data(), 6);
  Store16(icmp + 2, Icmpv6Checksum(ip + 8, ip + 24, icmp, len));
  ++(unsolicited ? counters_.announcements : counters_.nd_solicits);
  Send(iface, m);
}

void SlowPath::Announce() {
  for (const SlowPathInterface& iface : ifaces_) {
    if (iface.ipv4) {
      SendArpRequest(iface, iface.ipv4->ip);
    }
    if (iface.ipv6) SendNeighborMessage(iface, iface.ipv6->ip, /*unsolicited=*/true);
  }
}

}  // namespace sluice::dpdk
