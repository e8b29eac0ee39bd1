// SlowPath on frames a worker would hand over: ARP requests for our address
// answered with our MAC, ARP replies and neighbour messages learned from,
// ICMP and ICMPv6 echo answered, neighbour solicitations answered, next hops
// resolved, and anything else counted and freed. Every answer must appear on
// tx_ring() with mbuf->port set to the interface's port.
//
// EAL runs in-process without hugepages; no port is used (the slow path
// only reads mbuf->port), so nothing is sent anywhere.
#include "sluice/dpdk/slow_path.h"

#include <gtest/gtest.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "sluice/dpdk/eal.h"
#include "sluice/packet/address.h"

namespace sluice::dpdk {
namespace {

using packet::IpAddress;
using packet::MacAddress;
using Bytes = std::vector<uint8_t>;

rte_mempool* pool = nullptr;

class EalEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    EalOptions options;
    options.program_name = "slow_path_test";
    options.memory_mb = 64;
    options.force_no_huge = true;
    absl::Status s = InitEal(options);
    ASSERT_TRUE(s.ok()) << s;
    // No per-lcore cache: the free count is exact, so a leak shows.
    pool = rte_pktmbuf_pool_create("slow_path_test_pool", 1023, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                   static_cast<int>(rte_socket_id()));
    ASSERT_NE(pool, nullptr);
  }
  void TearDown() override { CleanupEal(); }
};
const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new EalEnvironment);

constexpr uint16_t kPort = 3;
constexpr MacAddress kOurMac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
constexpr MacAddress kPeerMac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x99};

IpAddress Ip(const char* text) { return *IpAddress::Parse(text); }

uint16_t Load16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
void Put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
void Put(Bytes& b, const uint8_t* p, size_t n) { b.insert(b.end(), p, p + n); }
void Put(Bytes& b, const MacAddress& mac) { Put(b, mac.data(), mac.size()); }
void Put(Bytes& b, const IpAddress& ip) { Put(b, ip.bytes.data(), ip.is_v4() ? 4 : 16); }

// RFC 1071 sum, written out here independently of packet/checksum.
uint32_t Sum(const uint8_t* p, size_t n, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += Load16(p + i);
  if (n % 2) sum += static_cast<uint32_t>(p[n - 1]) << 8;
  return sum;
}
uint16_t Fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}
// A message with a correct checksum sums to 0xffff (with its pseudo-header
// for ICMPv6).
bool Ipv4ChecksumOk(const uint8_t* p, size_t n) { return Fold(Sum(p, n)) == 0xffff; }
bool Icmpv6ChecksumOk(const uint8_t* ip6) {
  const uint32_t len = Load16(ip6 + 4);
  uint32_t sum = Sum(ip6 + 8, 32) + len + 58;
  return Fold(Sum(ip6 + 40, len, sum)) == 0xffff;
}
void SetIcmpv6Checksum(Bytes& frame, size_t l3) {
  frame[l3 + 42] = frame[l3 + 43] = 0;
  const uint32_t len = Load16(&frame[l3 + 4]);
  const uint16_t c = static_cast<uint16_t>(~Fold(Sum(&frame[l3 + 40], len,
                                                     Sum(&frame[l3 + 8], 32) + len + 58)));
  frame[l3 + 42] = static_cast<uint8_t>(c >> 8);
  frame[l3 + 43] = static_cast<uint8_t>(c);
}

Bytes Ethernet(const MacAddress& dst, const MacAddress& src, uint16_t type, uint16_t vlan = 0) {
  Bytes b;
  Put(b, dst);
  Put(b, src);
  if (vlan != 0) {
    Put16(b, 0x8100);
    Put16(b, vlan);
  }
  Put16(b, type);
  return b;
}

Bytes Arp(uint16_t op, const MacAddress& sha, const IpAddress& spa, const MacAddress& tha,
          const IpAddress& tpa, uint16_t vlan = 0) {
  Bytes b = Ethernet(op == 1 ? MacAddress{0xff, 0xff, 0xff, 0xff, 0xff, 0xff} : tha, sha, 0x0806,
                     vlan);
  Put16(b, 1);
  Put16(b, 0x0800);
  b.push_back(6);
  b.push_back(4);
  Put16(b, op);
  Put(b, sha);
  Put(b, spa);
  Put(b, tha);
  Put(b, tpa);
  return b;
}

// An ICMP echo request with `data` as payload, padded to Ethernet's minimum.
Bytes Ping4(const IpAddress& src, const IpAddress& dst, const Bytes& data) {
  Bytes b = Ethernet(kOurMac, kPeerMac, 0x0800);
  const size_t l3 = b.size();
  const uint16_t total = static_cast<uint16_t>(20 + 8 + data.size());
  const uint8_t ip[12] = {0x45, 0, static_cast<uint8_t>(total >> 8), static_cast<uint8_t>(total),
                          0x12, 0x34, 0, 0, 17, 1, 0, 0};
  Put(b, ip, sizeof ip);
  Put(b, src);
  Put(b, dst);
  const uint16_t ip_sum = static_cast<uint16_t>(~Fold(Sum(&b[l3], 20)));
  b[l3 + 10] = static_cast<uint8_t>(ip_sum >> 8);
  b[l3 + 11] = static_cast<uint8_t>(ip_sum);
  const uint8_t icmp[8] = {8, 0, 0, 0, 0x00, 0x07, 0x00, 0x01};
  Put(b, icmp, sizeof icmp);
  Put(b, data.data(), data.size());
  const uint16_t sum = static_cast<uint16_t>(~Fold(Sum(&b[l3 + 20], 8 + data.size())));
  b[l3 + 22] = static_cast<uint8_t>(sum >> 8);
  b[l3 + 23] = static_cast<uint8_t>(sum);
  while (b.size() < 60) b.push_back(0);
  return b;
}

Bytes Ipv6(const MacAddress& eth_dst, const IpAddress& src, const IpAddress& dst,
           uint8_t hop_limit, const Bytes& icmp) {
  Bytes b = Ethernet(eth_dst, kPeerMac, 0x86dd);
  const size_t l3 = b.size();
  const uint8_t head[8] = {0x60, 0, 0, 0, static_cast<uint8_t>(icmp.size() >> 8),
                           static_cast<uint8_t>(icmp.size()), 58, hop_limit};
  Put(b, head, sizeof head);
  Put(b, src);
  Put(b, dst);
  Put(b, icmp.data(), icmp.size());
  SetIcmpv6Checksum(b, l3);
  return b;
}

// A neighbour solicitation (135) or advertisement (136) for `target`,
// carrying `lla` in a source (1) or target (2) link-layer address option.
Bytes NeighborMessage(uint8_t type, const IpAddress& target, const MacAddress* lla) {
  Bytes icmp = {type, 0, 0, 0, 0, 0, 0, 0};
  if (type == 136) icmp[4] = 0x60;
  Put(icmp, target);
  if (lla != nullptr) {
    icmp.push_back(type == 135 ? 1 : 2);
    icmp.push_back(1);
    Put(icmp, *lla);
  }
  return icmp;
}

class SlowPathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    free_before_ = rte_mempool_avail_count(pool);
    SlowPathInterface iface;
    iface.port_id = kPort;
    iface.mac = kOurMac;
    iface.ipv4 = packet::Prefix{Ip("192.0.2.1"), 24};
    iface.ipv6 = packet::Prefix{Ip("2001:db8::1"), 64};
    iface_ = iface;
    Make(SlowPathOptions{});
  }

  // (Re)creates the slow path with `options` on the test's clock.
  void Make(SlowPathOptions options) {
    sp_.reset();
    options.ring_size = 64;
    options.clock = [this] { return now_ms_; };
    absl::StatusOr<std::unique_ptr<SlowPath>> sp = SlowPath::Create({iface_}, pool, options);
    ASSERT_TRUE(sp.ok()) << sp.status();
    sp_ = *std::move(sp);
  }

  void TearDown() override {
    for (rte_mbuf* m : sent_) rte_pktmbuf_free(m);
    sp_.reset();
    // Every mbuf handed over came back: answered ones through tx_ring, the
    // rest freed by the slow path.
    EXPECT_EQ(rte_mempool_avail_count(pool), free_before_);
  }

  // Queues `frame` as a worker would, received on `port`, and polls.
  void Deliver(const Bytes& frame, uint16_t port = kPort) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool);
    ASSERT_NE(m, nullptr);
    if (!frame.empty()) {
      char* d = rte_pktmbuf_append(m, static_cast<uint16_t>(frame.size()));
      ASSERT_NE(d, nullptr);
      std::memcpy(d, frame.data(), frame.size());
    }
    m->port = port;
    ASSERT_EQ(rte_ring_enqueue(sp_->ring(), m), 0);
    EXPECT_EQ(sp_->Poll(), 1u);
  }

  // Hands `frame` over as a worker would a frame whose next hop it has no
  // MAC for, to leave by `port`, and polls.
  void HandOver(const Bytes& frame, uint16_t port = kPort) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool);
    ASSERT_NE(m, nullptr);
    std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(frame.size())), frame.data(),
                frame.size());
    m->port = port;
    ASSERT_EQ(rte_ring_enqueue(sp_->hold_ring(), m), 0);
    EXPECT_EQ(sp_->Poll(), 0u) << "nothing came in";
  }

  // What the slow path queued for sending since the last call; kept until
  // the test ends.
  std::vector<rte_mbuf*> Sent() {
    std::vector<rte_mbuf*> out;
    void* m;
    while (rte_ring_dequeue(sp_->tx_ring(), &m) == 0) out.push_back(static_cast<rte_mbuf*>(m));
    sent_.insert(sent_.end(), out.begin(), out.end());
    return out;
  }

  static Bytes Data(const rte_mbuf* m) {
    const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
    return Bytes(d, d + rte_pktmbuf_data_len(m));
  }

  std::unique_ptr<SlowPath> sp_;
  std::vector<rte_mbuf*> sent_;
  unsigned free_before_ = 0;
  SlowPathInterface iface_;
  uint64_t now_ms_ = 1'000'000;
};

MacAddress MacAt(const Bytes& b, size_t off) {
  MacAddress m;
  std::memcpy(m.data(), &b[off], 6);
  return m;
}

TEST_F(SlowPathTest, AnswersArpRequestForItsAddressWithItsMac) {
  Deliver(Arp(1, kPeerMac, Ip("192.0.2.10"), MacAddress{}, Ip("192.0.2.1")));
  const std::vector<rte_mbuf*> sent = Sent();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0]->port, kPort);
  const Bytes r = Data(sent[0]);
  ASSERT_GE(r.size(), 42u);
  EXPECT_EQ(MacAt(r, 0), kPeerMac);  // to the asker
  EXPECT_EQ(MacAt(r, 6), kOurMac);
  EXPECT_EQ(Load16(&r[12]), 0x0806);
  EXPECT_EQ(Load16(&r[20]), 2);  // reply
  EXPECT_EQ(MacAt(r, 22), kOurMac);
  EXPECT_EQ(IpAddress::V4Bytes(&r[28]), Ip("192.0.2.1"));
  EXPECT_EQ(MacAt(r, 32), kPeerMac);
  EXPECT_EQ(IpAddress::V4Bytes(&r[38]), Ip("192.0.2.10"));
  EXPECT_EQ(sp_->counters().arp_replies, 1u);
  EXPECT_EQ(sp_->counters().received, 1u);
  EXPECT_EQ(sp_->counters().ignored, 0u);
  // The asker was not asked for: not learned from its request.
  EXPECT_EQ(sp_->counters().neighbors_learned, 0u);
  EXPECT_EQ(sp_->neighbors(), 0u);
}

TEST_F(SlowPathTest, AnswersArpRequestInsideItsVlanTag) {
  Deliver(Arp(1, kPeerMac, Ip("192.0.2.10"), MacAddress{}, Ip("192.0.2.1"), 42));
  const std::vector<rte_mbuf*> sent = Sent();
  ASSERT_EQ(sent.size(), 1u);
  const Bytes r = Data(sent[0]);
  ASSERT_GE(r.size(), 46u);
  EXPECT_EQ(Load16(&r[12]), 0x8100);
  EXPECT_EQ(Load16(&r[14]), 42);
  EXPECT_EQ(Load16(&r[24]), 2);
  EXPECT_EQ(MacAt(r, 26), kOurMac);
}

TEST_F(SlowPathTest, DoesNotAnswerArpForAnotherAddress) {
  Deliver(Arp(1, kPeerMac, Ip("192.0.2.10"), MacAddress{}, Ip("192.0.2.2")));
  EXPECT_TRUE(Sent().empty());
  EXPECT_EQ(sp_->counters().arp_replies, 0u);
  EXPECT_EQ(sp_->counters().ignored, 1u);
}

// An HA standby (docs/ha.md): the addresses are the active's, so nothing
// that names them leaves this instance: no ARP or ND answer, no echo reply,
// no request of its own; neighbours it hears of are still learned.
TEST_F(SlowPathTest, NotAnsweringSendsNothingForItsAddresses) {
  sp_->SetAnswering(false);
  Deliver(Arp(1, kPeerMac, Ip("192.0.2.10"), MacAddress{}, Ip("192.0.2.1")));
  Deliver(Ipv6(MacAddress{0x33, 0x33, 0xff, 0, 0, 1}, Ip("2001:db8::10"), Ip("ff02::1:ff00:1"),
               255, NeighborMessage(135, Ip("2001:db8::1"), &kPeerMac)));
  Deliver(Ping4(Ip("192.0.2.10"), Ip("192.0.2.1"), {'x'}));
  EXPECT_EQ(sp_->Lookup(kPort, Ip("192.0.2.20")), std::nullopt);
  EXPECT_EQ(sp_->Lookup(kPort, Ip("2001:db8::20")), std::nullopt);
  EXPECT_TRUE(Sent().empty());
  EXPECT_EQ(sp_->counters().not_answered, 3u);
  EXPECT_EQ(sp_->counters().arp_replies + sp_->counters().nd_adverts +
                sp_->counters().echo_replies + sp_->counters().arp_requests +
                sp_->counters().nd_solicits,
            0u);
  // Answering again (promoted): the same request is answered.
  sp_->SetAnswering(true);
  Deliver(Arp(1, kPeerMac, Ip("192.0.2.10"), MacAddress{}, Ip("192.0.2.1")));
  EXPECT_EQ(Sent().size(), 1u);
}

// Taking the addresses over: a gratuitous ARP request (sender and target our
// address, RFC 5227 §3) and an unsolicited advertisement to all nodes with
// Override set and Solicited clear (RFC 4861 §7.2.6), both from our MAC.
TEST_F(SlowPathTest, AnnouncesItsAddresses) {
  sp_->Announce();
  const std::vector<rte_mbuf*> sent = Sent();
  ASSERT_EQ(sent.size(), 2u);
  const Bytes garp = Data(sent[0]);
  ASSERT_EQ(garp.size(), 42u);
  EXPECT_EQ(MacAt(garp, 0), (MacAddress{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}));
  EXPECT_EQ(MacAt(garp, 6), kOurMac);
  EXPECT_EQ(Load16(&garp[12]), 0x0806);
  EXPECT_EQ(Load16(&garp[20]), 1);
  EXPECT_EQ(MacAt(garp, 22), kOurMac);
  EXPECT_EQ(IpAddress::V4Bytes(&garp[28]), Ip("192.0.2.1"));
  EXPECT_EQ(IpAddress::V4Bytes(&garp[38]), Ip("192.0.2.1"));
  const Bytes na = Data(sent[1]);
  ASSERT_EQ(na.size(), 14u + 40 + 32);
  EXPECT_EQ(MacAt(na, 0), (MacAddress{0x33, 0x33, 0, 0, 0, 1}));
  EXPECT_EQ(MacAt(na, 6), kOurMac);
  const uint8_t* ip = &na[14];
  EXPECT_EQ(ip[7], 255);
  EXPECT_EQ(IpAddress::V6Bytes(ip + 8), Ip("2001:db8::1"));
  EXPECT_EQ(IpAddress::V6Bytes(ip + 24), Ip("ff02::1"));
  EXPECT_EQ(ip[40], 136);
  EXPECT_EQ(ip[44], 0x20);  // override, not solicited
  EXPECT_EQ(IpAddress::V6Bytes(ip + 48), Ip("2001:db8::1"));
  EXPECT_EQ(ip[64], 2);  // target link-layer address
  EXPECT_EQ(MacAt(na, 14 + 40 + 26), kOurMac);
  EXPECT_TRUE(Icmpv6ChecksumOk(ip));
  EXPECT_EQ(sp_->counters().announcements, 2u);
  EXPECT_EQ(sp_->counters().arp_requests, 0u);
}

TEST_F(SlowPathTest, LearnsNeighbourFromArpReplyAndStopsAsking) {
  // Unknown: Lookup asks with a broadcast ARP request, once a second at most.
  EXPECT_EQ(sp_->Lookup(kPort, Ip("192.0.2.20")), std::nullopt);
  EXPECT_EQ(sp_->Lookup(kPort, Ip("192.0.2.20")), std::nullopt);
  std::vector<rte_mbuf*> sent = Sent();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0]->port, kPort);
  const Bytes q = Data(sent[0]);
  ASSERT_EQ(q.size(), 42u);
  EXPECT_EQ(MacAt(q, 0), (MacAddress{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}));
  EXPECT_EQ(Load16(&q[20]), 1);
  EXPECT_EQ(MacAt(q, 22), kOurMac);
  EXPECT_EQ(IpAddress::V4Bytes(&q[28]), Ip("192.0.2.1"));
  EXPECT_EQ(IpAddress::V4Bytes(&q[38]), Ip("192.0.2.20"));
  EXPECT_EQ(sp_->counters().arp_requests, 1u);

  Deliver(Arp(2, kPeerMac, Ip("192.0.2.20"), kOurMac, Ip("192.0.2.1")));
  EXPECT_EQ(sp_->counters().neighbors_learned, 1u);
  EXPECT_EQ(sp_->Lookup(kPort, Ip("192.0.2.20")), kPeerMac);
  EXPECT_EQ(sp_->Lookup(kPort + 1, Ip("192.0.2.20")), std::nullopt);  // no such port
  EXPECT_TRUE(Sent().empty());
}

TEST_F(SlowPathTest, DoesNotLearnSendersOutsideItsSubnet) {
  Deliver(Arp(2, kPeerMac, Ip("198.51.100.7"), kOurMac, Ip("192.0.2.1")));
  EXPECT_EQ(sp_->counters().neighbors_learned, 0u);
}

// Only what was asked for is learned: unsolicited replies, gratuitous ARP
// and other hosts' requests name addresses nobody asked for, and would fill
// the table. Each is refused and counted.
TEST_F(SlowPathTest, LearnsOnlyWhatItAskedFor) {
  for (int i = 0; i < 50; ++i) {
    const IpAddress sender = Ip(("192.0.2." + std::to_string(100 + i)).c_str());
    Deliver(Arp(2, kPeerMac, sender, kOurMac, Ip("192.0.2.1")));  // unsolicited reply
    Deliver(Arp(1, kPeerMac, sender, MacAddress{}, sender));      // gratuitous
  }
  Deliver(Ipv6(kOurMac, Ip("2001:db8::30"), Ip("2001:db8::1"), 255,
               NeighborMessage(136, Ip("2001:db8::30"), &kPeerMac)));  // unsolicited advert
  EXPECT_EQ(sp_->counters().neighbors_learned, 0u);
  EXPECT_EQ(sp_->counters().neighbors_refused, 101u);
  EXPECT_EQ(sp_->neighbors(), 0u);
  EXPECT_TRUE(Sent().empty());

  // Asked for, an answer is taken within kAskWindowMs of the request only.
  EXPECT_EQ(sp_->Lookup(kPort, Ip("192.0.2.20")), std::nullopt);
  EXPECT_EQ(sp_->Lookup(kPort, Ip("192.0.2.21")), std::nullopt);
  EXPECT_EQ(Sent().size(), 2u);
  Deliver(Arp(2, kPeerMac, Ip("192.0.2.20"), kOurMac, Ip("192.0.2.1")));
  now_ms_ += SlowPath::kAskWindowMs;
  Deliver(Arp(2, kPeerMac, Ip("192.0.2.21"), kOurMac, Ip("192.0.2.1")));
  EXPECT_EQ(sp_->counters().neighbors_learned, 1u);
  EXPECT_EQ(sp_->counters().neighbors_refused, 102u);
  EXPECT_EQ(sp_->Lookup(kPort, Ip("192.0.2.20")), kPeerMac);

  // A known neighbour follows what names it (RFC 826's merge): a gateway
  // that moved announces its new address.
  constexpr MacAddress kMoved = {0x02, 0x00, 0x00, 0x00, 0x00, 0x98};
  Deliver(Arp(1, kMoved, Ip("192.0.2.20"), MacAddress{}, Ip("192.0.2.20")));
  EXPECT_EQ(sp_->Lookup(kPort, Ip("192.0.2.20")), kMoved);
  EXPECT_EQ(sp_->counters().neighbors_learned, 1u);
}

// The table and the requests in flight are bounded: past the bound a
// lookup asks for nothing and an answer teaches nothing, both counted.
TEST_F(SlowPathTest, BoundsTheNeighboursAndTheRequests) {
  SlowPathOptions options;
  options.max_neighbors = 2;
  Make(options);
  EXPECT_EQ(sp_->Lookup(kPort, Ip("192.0.2.20")), std::nullopt);
  EXPECT_EQ(sp_->Lookup(kPort, Ip("192.0.2.21")), std::nullopt);
  EXPECT_EQ(sp_->Lookup(kPort, Ip("192.0.2.22")), std::nullopt);
  EXPECT_EQ(Sent().size(), 2u);
  EXPECT_EQ(sp_->counters().neighbors_full, 1u);
  Deliver(Arp(2, kPeerMac, Ip("192.0.2.20"), kOurMac, Ip("192.0.2.1")));
  Deliver(Arp(2, kPeerMac, Ip("192.0.2.21"), kOurMac, Ip("192.0.2.1")));
  Deliver(Arp(2, kPeerMac, Ip("192.0.2.22"), kOurMac, Ip("192.0.2.1")));
  EXPECT_EQ(sp_->neighbors(), 2u);
  EXPECT_EQ(sp_->counters().neighbors_refused, 1u) << "192.0.2.22 was never asked for";
  // The requests were answered: a third can go out, but its answer finds
  // the table full.
  EXPECT_EQ(sp_->Lookup(kPort, Ip("192.0.2.22")), std::nullopt);
  EXPECT_EQ(Sent().size(), 1u);
  Deliver(Arp(2, kPeerMac, Ip("192.0.2.22"), kOurMac, Ip("192.0.2.1")));
  EXPECT_EQ(sp_->neighbors(), 2u);
  EXPECT_EQ(sp_->counters().neighbors_full, 2u);
}

// A neighbour in use is asked for again before its answer expires and stays
// known while it answers; one not looked up since its answer is forgotten
// when the answer expires, and asked for afresh when next needed.
TEST_F(SlowPathTest, AgesNeighboursAndRefreshesThoseInUse) {
  SlowPathOptions options;
  options.neighbor_lifetime_ms = 60'000;
  Make(options);
  const IpAddress gateway = Ip("192.0.2.254"), idle = Ip("192.0.2.30");
  for (const IpAddress& ip : {gateway, idle}) {
    EXPECT_EQ(sp_->Lookup(kPort, ip), std::nullopt);
    Deliver(Arp(2, kPeerMac, ip, kOurMac, Ip("192.0.2.1")));
  }
  EXPECT_EQ(Sent().size(), 2u);
  EXPECT_EQ(sp_->Lookup(kPort, gateway), kPeerMac);  // in use

  now_ms_ += 30'000;
  sp_->Poll();
  EXPECT_TRUE(Sent().empty()) << "half its lifetime: not asked yet";
  now_ms_ += 16'000;
  sp_->Poll();
  std::vector<rte_mbuf*> sent = Sent();
  ASSERT_EQ(sent.size(), 1u) << "the gateway, asked again before it expires";
  EXPECT_EQ(IpAddress::V4Bytes(&Data(sent[0])[38]), gateway);
  EXPECT_EQ(sp_->counters().neighbors_refreshed, 1u);
  Deliver(Arp(2, kPeerMac, gateway, kOurMac, Ip("192.0.2.1")));

  now_ms_ += 15'000;  // 61 s after the first answers
  sp_->Poll();
  EXPECT_EQ(sp_->counters().neighbors_expired, 1u) << "the idle neighbour";
  EXPECT_EQ(sp_->neighbors(), 1u);
  EXPECT_EQ(sp_->Lookup(kPort, gateway), kPeerMac) << "answered again 15 s ago";
  EXPECT_EQ(sp_->Lookup(kPort, idle), std::nullopt);
  EXPECT_EQ(Sent().size(), 1u) << "asked for afresh";

  // The gateway unanswered: gone a lifetime after its last answer.
  now_ms_ += 60'000;
  sp_->Poll();
  EXPECT_EQ(sp_->neighbors(), 0u);
  EXPECT_EQ(sp_->Lookup(kPort, gateway), std::nullopt);
}

TEST_F(SlowPathTest, AnswersIcmpEchoToItsAddress) {
  const Bytes data = {'s', 'l', 'u', 'i', 'c', 'e'};
  Deliver(Ping4(Ip("192.0.2.10"), Ip("192.0.2.1"), data));
  const std::vector<rte_mbuf*> sent = Sent();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0]->port, kPort);
  const Bytes r = Data(sent[0]);
  ASSERT_EQ(r.size(), 14u + 20 + 8 + data.size());  // Ethernet padding dropped
  EXPECT_EQ(rte_pktmbuf_pkt_len(sent[0]), r.size());
  EXPECT_EQ(MacAt(r, 0), kPeerMac);
  EXPECT_EQ(MacAt(r, 6), kOurMac);
  EXPECT_EQ(IpAddress::V4Bytes(&r[26]), Ip("192.0.2.1"));
  EXPECT_EQ(IpAddress::V4Bytes(&r[30]), Ip("192.0.2.10"));
  EXPECT_TRUE(Ipv4ChecksumOk(&r[14], 20));
  EXPECT_EQ(r[34], 0);  // echo reply
  EXPECT_EQ(Load16(&r[38]), 0x0007);  // identifier and sequence kept
  EXPECT_EQ(Load16(&r[40]), 0x0001);
  EXPECT_EQ(Bytes(r.begin() + 42, r.end()), data);
  EXPECT_TRUE(Ipv4ChecksumOk(&r[34], 8 + data.size()));
  EXPECT_EQ(sp_->counters().echo_replies, 1u);
}

TEST_F(SlowPathTest, IgnoresIcmpEchoToAnotherAddress) {
  Deliver(Ping4(Ip("192.0.2.10"), Ip("192.0.2.99"), {1, 2, 3}));
  EXPECT_TRUE(Sent().empty());
  EXPECT_EQ(sp_->counters().echo_replies, 0u);
  EXPECT_EQ(sp_->counters().ignored, 1u);
}

TEST_F(SlowPathTest, AnswersNeighbourSolicitationWithoutLearningTheSolicitor) {
  const IpAddress peer = Ip("2001:db8::10");
  Deliver(Ipv6(MacAddress{0x33, 0x33, 0xff, 0, 0, 1}, peer, Ip("ff02::1:ff00:1"), 255,
               NeighborMessage(135, Ip("2001:db8::1"), &kPeerMac)));
  const std::vector<rte_mbuf*> sent = Sent();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0]->port, kPort);
  const Bytes r = Data(sent[0]);
  ASSERT_EQ(r.size(), 14u + 40 + 32);
  EXPECT_EQ(MacAt(r, 0), kPeerMac);
  EXPECT_EQ(MacAt(r, 6), kOurMac);
  const uint8_t* ip = &r[14];
  EXPECT_EQ(ip[7], 255);  // RFC 4861 §7.1.2
  EXPECT_EQ(IpAddress::V6Bytes(ip + 8), Ip("2001:db8::1"));
  EXPECT_EQ(IpAddress::V6Bytes(ip + 24), peer);
  const uint8_t* na = ip + 40;
  EXPECT_EQ(na[0], 136);
  EXPECT_EQ(na[4], 0x60);  // solicited, override
  EXPECT_EQ(IpAddress::V6Bytes(na + 8), Ip("2001:db8::1"));
  EXPECT_EQ(na[24], 2);  // target link-layer address option
  EXPECT_EQ(na[25], 1);
  EXPECT_EQ(MacAt(r, 14 + 40 + 26), kOurMac);
  EXPECT_TRUE(Icmpv6ChecksumOk(ip));
  EXPECT_EQ(sp_->counters().nd_adverts, 1u);
  // Not asked for: the solicitor is not learned (Sluice asks when it needs it).
  EXPECT_EQ(sp_->counters().neighbors_refused, 1u);
  EXPECT_EQ(sp_->neighbors(), 0u);
}

TEST_F(SlowPathTest, AnswersDuplicateAddressDetectionToAllNodes) {
  Deliver(Ipv6(MacAddress{0x33, 0x33, 0xff, 0, 0, 1}, Ip("::"), Ip("ff02::1:ff00:1"), 255,
               NeighborMessage(135, Ip("2001:db8::1"), nullptr)));
  const std::vector<rte_mbuf*> sent = Sent();
  ASSERT_EQ(sent.size(), 1u);
  const Bytes r = Data(sent[0]);
  ASSERT_EQ(r.size(), 14u + 40 + 32);
  EXPECT_EQ(MacAt(r, 0), (MacAddress{0x33, 0x33, 0, 0, 0, 1}));
  EXPECT_EQ(IpAddress::V6Bytes(&r[14 + 24]), Ip("ff02::1"));
  EXPECT_EQ(r[14 + 40 + 4], 0x20);  // override only: not solicited
  EXPECT_TRUE(Icmpv6ChecksumOk(&r[14]));
}

TEST_F(SlowPathTest, IgnoresNeighbourSolicitationWithoutHopLimit255) {
  Deliver(Ipv6(kOurMac, Ip("2001:db8::10"), Ip("2001:db8::1"), 64,
               NeighborMessage(135, Ip("2001:db8::1"), &kPeerMac)));
  EXPECT_TRUE(Sent().empty());
  EXPECT_EQ(sp_->counters().nd_adverts, 0u);
  EXPECT_EQ(sp_->counters().neighbors_learned, 0u);
  EXPECT_EQ(sp_->counters().ignored, 1u);
}

TEST_F(SlowPathTest, SolicitsUnknownIpv6NeighbourAndLearnsFromAdvertisement) {
  const IpAddress peer = Ip("2001:db8::20");
  EXPECT_EQ(sp_->Lookup(kPort, peer), std::nullopt);
  std::vector<rte_mbuf*> sent = Sent();
  ASSERT_EQ(sent.size(), 1u);
  const Bytes q = Data(sent[0]);
  ASSERT_EQ(q.size(), 14u + 40 + 32);
  // RFC 4291 §2.7.1 solicited-node group, RFC 2464 §7 its MAC.
  EXPECT_EQ(MacAt(q, 0), (MacAddress{0x33, 0x33, 0xff, 0x00, 0x00, 0x20}));
  EXPECT_EQ(IpAddress::V6Bytes(&q[14 + 24]), Ip("ff02::1:ff00:20"));
  EXPECT_EQ(q[14 + 40], 135);
  EXPECT_EQ(IpAddress::V6Bytes(&q[14 + 48]), peer);
  EXPECT_TRUE(Icmpv6ChecksumOk(&q[14]));
  EXPECT_EQ(sp_->counters().nd_solicits, 1u);

  Deliver(Ipv6(kOurMac, peer, Ip("2001:db8::1"), 255, NeighborMessage(136, peer, &kPeerMac)));
  EXPECT_EQ(sp_->Lookup(kPort, peer), kPeerMac);
  EXPECT_TRUE(Sent().empty());
}

TEST_F(SlowPathTest, AnswersIcmpv6Echo) {
  const Bytes echo = {128, 0, 0, 0, 0x00, 0x05, 0x00, 0x02, 'h', 'i'};
  Deliver(Ipv6(kOurMac, Ip("2001:db8::10"), Ip("2001:db8::1"), 64, echo));
  const std::vector<rte_mbuf*> sent = Sent();
  ASSERT_EQ(sent.size(), 1u);
  const Bytes r = Data(sent[0]);
  ASSERT_EQ(r.size(), 14u + 40 + echo.size());
  EXPECT_EQ(MacAt(r, 0), kPeerMac);
  EXPECT_EQ(MacAt(r, 6), kOurMac);
  EXPECT_EQ(IpAddress::V6Bytes(&r[14 + 8]), Ip("2001:db8::1"));
  EXPECT_EQ(IpAddress::V6Bytes(&r[14 + 24]), Ip("2001:db8::10"));
  EXPECT_EQ(r[14 + 40], 129);
  EXPECT_EQ(Bytes(r.begin() + 14 + 44, r.end()), Bytes(echo.begin() + 4, echo.end()));
  EXPECT_TRUE(Icmpv6ChecksumOk(&r[14]));
  EXPECT_EQ(sp_->counters().echo_replies, 1u);
}

TEST_F(SlowPathTest, CountsAndFreesWhatItCannotUse) {
  const Bytes arp = Arp(1, kPeerMac, Ip("192.0.2.10"), MacAddress{}, Ip("192.0.2.1"));
  Bytes bad_arp_type = arp;
  bad_arp_type[16] = 0x86;  // protocol type not IPv4
  Bytes short_ping = Ping4(Ip("192.0.2.10"), Ip("192.0.2.1"), {1, 2, 3, 4});
  short_ping[16] = 0x04;  // IPv4 total length past the frame
  short_ping[17] = 0x00;
  Bytes truncated_ns = Ipv6(kOurMac, Ip("2001:db8::10"), Ip("2001:db8::1"), 255,
                            NeighborMessage(135, Ip("2001:db8::1"), &kPeerMac));
  truncated_ns.resize(14 + 40 + 12);  // payload length says more
  Bytes bad_option = Ipv6(kOurMac, Ip("2001:db8::10"), Ip("2001:db8::1"), 255,
                          NeighborMessage(136, Ip("2001:db8::10"), &kPeerMac));
  bad_option[14 + 40 + 25] = 0;  // option length 0 (RFC 4861 §4.6: invalid)
  Bytes garbage(200);
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<uint8_t>(i * 37 + 11);
  const std::vector<Bytes> frames = {
      {},
      {0x01, 0x02, 0x03},
      Bytes(13, 0xff),
      Ethernet(kOurMac, kPeerMac, 0x88cc),  // LLDP
      Bytes(arp.begin(), arp.begin() + 30),
      bad_arp_type,
      short_ping,
      truncated_ns,
      bad_option,
      garbage,
  };
  for (const Bytes& frame : frames) Deliver(frame);
  Deliver(arp, kPort + 1);  // a port the slow path has no interface for
  EXPECT_TRUE(Sent().empty());
  EXPECT_EQ(sp_->counters().received, frames.size() + 1);
  EXPECT_EQ(sp_->counters().ignored, frames.size() + 1);
  EXPECT_EQ(sp_->counters().neighbors_learned, 0u);
}

TEST_F(SlowPathTest, PollHandlesABurstAndReturnsHowMany) {
  EXPECT_EQ(sp_->Poll(), 0u);
  for (int i = 0; i < 3; ++i) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool);
    ASSERT_NE(m, nullptr);
    const Bytes ping = Ping4(Ip("192.0.2.10"), Ip("192.0.2.1"), {static_cast<uint8_t>(i)});
    std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(ping.size())), ping.data(),
                ping.size());
    m->port = kPort;
    ASSERT_EQ(rte_ring_enqueue(sp_->ring(), m), 0);
  }
  EXPECT_EQ(sp_->Poll(), 3u);
  EXPECT_EQ(Sent().size(), 3u);
  EXPECT_EQ(sp_->counters().echo_replies, 3u);
}

// A UDP frame as a worker writes it for a peer whose next hop it has no
// MAC for: from our MAC to none, `tag` in its payload.
Bytes Outgoing(const IpAddress& dst, uint8_t tag, uint16_t vlan = 0) {
  Bytes b = Ethernet(MacAddress{}, kOurMac, dst.is_v4() ? 0x0800 : 0x86dd, vlan);
  const Bytes udp = {0x9c, 0x40, 0x9c, 0x42, 0, 12, 0, 0, 0x80, 0, 0, tag};
  if (dst.is_v4()) {
    const uint8_t ip[12] = {0x45, 0, 0, 32, 0, 0, 0x40, 0, 64, 17, 0, 0};
    Put(b, ip, sizeof ip);
    Put(b, Ip("192.0.2.1"));
  } else {
    const uint8_t ip[8] = {0x60, 0, 0, 0, 0, 12, 17, 64};
    Put(b, ip, sizeof ip);
    Put(b, Ip("2001:db8::1"));
  }
  Put(b, dst);
  Put(b, udp.data(), udp.size());
  return b;
}

// A frame handed over for want of a next hop waits while its next hop is
// asked for (once), goes out in order with the answer's MAC and otherwise
// unchanged, and later frames to a known next hop go out at once.
TEST_F(SlowPathTest, HeldFramesGoOutOnceTheirNextHopAnswers) {
  for (uint8_t tag = 1; tag <= 3; ++tag) HandOver(Outgoing(Ip("192.0.2.20"), tag));
  std::vector<rte_mbuf*> sent = Sent();
  ASSERT_EQ(sent.size(), 1u) << "one request";
  EXPECT_EQ(Load16(&Data(sent[0])[12]), 0x0806);
  EXPECT_EQ(IpAddress::V4Bytes(&Data(sent[0])[38]), Ip("192.0.2.20"));
  EXPECT_EQ(sp_->held(), 3u);

  Deliver(Arp(2, kPeerMac, Ip("192.0.2.20"), kOurMac, Ip("192.0.2.1")));
  sent = Sent();
  ASSERT_EQ(sent.size(), 3u);
  for (uint8_t tag = 1; tag <= 3; ++tag) {
    Bytes expected = Outgoing(Ip("192.0.2.20"), tag);
    std::memcpy(expected.data(), kPeerMac.data(), 6);
    EXPECT_EQ(sent[tag - 1]->port, kPort);
    EXPECT_EQ(Data(sent[tag - 1]), expected) << "frame " << int{tag};
  }
  EXPECT_EQ(sp_->held(), 0u);
  HandOver(Outgoing(Ip("192.0.2.20"), 4));
  sent = Sent();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(MacAt(Data(sent[0]), 0), kPeerMac);
  EXPECT_EQ(sp_->counters().hold_received, 4u);
  EXPECT_EQ(sp_->counters().hold_sent, 4u);
  EXPECT_EQ(sp_->counters().hold_dropped, 0u);
}

// An off-link peer's frames wait for the gateway, inside the interface's
// VLAN tag too; IPv6 ones for a neighbour solicitation's answer.
TEST_F(SlowPathTest, HeldFramesWaitForTheGatewayOfAnOffLinkPeer) {
  iface_.gateway = Ip("192.0.2.254");
  Make(SlowPathOptions{});
  HandOver(Outgoing(Ip("198.51.100.7"), 1));
  HandOver(Outgoing(Ip("198.51.100.8"), 2, /*vlan=*/7));
  std::vector<rte_mbuf*> sent = Sent();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(IpAddress::V4Bytes(&Data(sent[0])[38]), Ip("192.0.2.254"));
  constexpr MacAddress kGatewayMac = {0x02, 0x00, 0x00, 0x00, 0x00, 0xfe};
  Deliver(Arp(2, kGatewayMac, Ip("192.0.2.254"), kOurMac, Ip("192.0.2.1")));
  sent = Sent();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(MacAt(Data(sent[0]), 0), kGatewayMac);
  EXPECT_EQ(Data(sent[1]).back(), 2);
  EXPECT_EQ(Load16(&Data(sent[1])[14]), 7) << "the tag kept";

  HandOver(Outgoing(Ip("2001:db8::20"), 3));
  sent = Sent();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(Data(sent[0])[14 + 40], 135) << "a neighbour solicitation";
  Deliver(Ipv6(kOurMac, Ip("2001:db8::20"), Ip("2001:db8::1"), 255,
               NeighborMessage(136, Ip("2001:db8::20"), &kPeerMac)));
  sent = Sent();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(MacAt(Data(sent[0]), 0), kPeerMac);
  EXPECT_EQ(Data(sent[0]).back(), 3);
}

// Held frames are bounded per next hop (the oldest dropped first) and
// dropped (counted, freed) once they have waited kHoldMs unanswered; what
// cannot be addressed (no IP header, no such port) is dropped at once.
TEST_F(SlowPathTest, HeldFramesAreBoundedAndExpire) {
  for (size_t i = 0; i <= SlowPath::kHoldPerNeighbor; ++i) {
    HandOver(Outgoing(Ip("192.0.2.29"), static_cast<uint8_t>(i)));
  }
  EXPECT_EQ(sp_->held(), SlowPath::kHoldPerNeighbor);
  EXPECT_EQ(sp_->counters().hold_dropped, 1u);
  Sent();
  Deliver(Arp(2, kPeerMac, Ip("192.0.2.29"), kOurMac, Ip("192.0.2.1")));
  std::vector<rte_mbuf*> sent = Sent();
  ASSERT_EQ(sent.size(), SlowPath::kHoldPerNeighbor);
  EXPECT_EQ(Data(sent.front()).back(), 1) << "the oldest was dropped";
  EXPECT_EQ(Data(sent.back()).back(), SlowPath::kHoldPerNeighbor);

  for (size_t i = 0; i < SlowPath::kHoldPerNeighbor; ++i) {
    HandOver(Outgoing(Ip("192.0.2.30"), static_cast<uint8_t>(i)));
  }
  EXPECT_EQ(sp_->held(), SlowPath::kHoldPerNeighbor);
  now_ms_ += SlowPath::kHoldMs / 2;
  HandOver(Outgoing(Ip("192.0.2.31"), 1));
  EXPECT_EQ(sp_->held(), SlowPath::kHoldPerNeighbor + 1);
  now_ms_ += SlowPath::kHoldMs / 2;
  EXPECT_EQ(sp_->Poll(), 0u);
  EXPECT_EQ(sp_->held(), 1u) << "the first next hop's frames waited kHoldMs";
  now_ms_ += SlowPath::kHoldMs / 2;
  EXPECT_EQ(sp_->Poll(), 0u);
  EXPECT_EQ(sp_->held(), 0u);
  EXPECT_EQ(sp_->counters().hold_dropped, SlowPath::kHoldPerNeighbor + 2);
  // While frames waited, their next hops were asked for again, a second
  // apart at most: 192.0.2.29 once (answered), .30 and .31 twice each.
  EXPECT_EQ(sp_->counters().arp_requests, 1u + 2u + 2u);
  // An answer now finds nothing to send.
  Sent();
  Deliver(Arp(2, kPeerMac, Ip("192.0.2.30"), kOurMac, Ip("192.0.2.1")));
  EXPECT_TRUE(Sent().empty());

  HandOver(Ethernet(MacAddress{}, kOurMac, 0x0800));  // no IP header
  HandOver(Outgoing(Ip("192.0.2.20"), 1), kPort + 1);
  EXPECT_EQ(sp_->counters().hold_dropped, SlowPath::kHoldPerNeighbor + 4);
  EXPECT_EQ(sp_->counters().hold_sent, SlowPath::kHoldPerNeighbor);
  EXPECT_EQ(sp_->held(), 0u);
}

TEST_F(SlowPathTest, FreesWhatIsStillQueuedWhenDestroyed) {
  HandOver(Outgoing(Ip("192.0.2.31"), 1));  // held, and an ARP request
  for (int i = 0; i < 2; ++i) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool);
    ASSERT_NE(m, nullptr);
    ASSERT_EQ(rte_ring_enqueue(sp_->ring(), m), 0);
  }
  EXPECT_EQ(sp_->Lookup(kPort, Ip("192.0.2.30")), std::nullopt);  // queues an ARP request
  rte_mbuf* m = rte_pktmbuf_alloc(pool);
  ASSERT_NE(m, nullptr);
  ASSERT_EQ(rte_ring_enqueue(sp_->hold_ring(), m), 0);  // still in the hold ring
  EXPECT_EQ(sp_->held(), 1u);
  sp_.reset();  // TearDown checks that all six came back to the pool
}

}  // namespace
}  // namespace sluice::dpdk
