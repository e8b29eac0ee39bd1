// The handshake thread with a fake MediaHandshake that echoes what it is
// given: frames put on its ring reach the handler registered for their
// destination, and what the handler sends comes out on the TX ring as a
// frame built from the request's link layer (MACs swapped, its port and
// VLAN, our address and port to the remote's, checksums right). Timers,
// registrations, the link-layer bound and every refusal are counted; then
// a worker on a net_ring port hands a STUN request over and sends the
// reply, end to end.
//
// EAL runs in-process without hugepages, with one net_ring port for the
// last test; the rest send nothing anywhere (the TX ring is read back).
#include "sluice/webrtc/handshake_thread.h"

#include <gtest/gtest.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "sluice/dpdk/eal.h"
#include "sluice/packet/parse.h"
#include "sluice/packet/rewrite.h"
#include "sluice/session/session.h"
#include "sluice/worker/worker.h"
#include "udp_frame.h"

namespace sluice::webrtc {
namespace {

using packet::Endpoint;
using packet::MacAddress;
using packet::PayloadKind;
using Bytes = std::vector<uint8_t>;

rte_mempool* pool = nullptr;
uint16_t ring_port = 0;

class EalEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    dpdk::EalOptions options;
    options.program_name = "handshake_thread_test";
    options.memory_mb = 128;
    options.force_no_huge = true;
    options.vdevs = {"net_ring0"};
    absl::Status s = dpdk::InitEal(options);
    ASSERT_TRUE(s.ok()) << s;
    // No per-lcore cache: the free count is exact, so a leak shows.
    pool = rte_pktmbuf_pool_create("handshake_test_pool", 1023, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                   static_cast<int>(rte_socket_id()));
    ASSERT_NE(pool, nullptr);
    ASSERT_EQ(rte_eth_dev_get_port_by_name("net_ring0", &ring_port), 0);
    rte_eth_conf conf = {};
    ASSERT_EQ(rte_eth_dev_configure(ring_port, 1, 1, &conf), 0);
    ASSERT_EQ(rte_eth_rx_queue_setup(ring_port, 0, 256, 0, nullptr, pool), 0);
    ASSERT_EQ(rte_eth_tx_queue_setup(ring_port, 0, 256, 0, nullptr), 0);
    ASSERT_EQ(rte_eth_dev_start(ring_port), 0);
  }
  void TearDown() override {
    rte_eth_dev_stop(ring_port);
    dpdk::CleanupEal();
  }
};
const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new EalEnvironment);

constexpr uint16_t kPort = 3;
constexpr MacAddress kOurMac = {0x02, 0, 0, 0, 0, 0x01};
constexpr MacAddress kPeerMac = {0x02, 0, 0, 0, 0, 0x99};

Endpoint Ep(const char* text) { return *Endpoint::Parse(text); }

// A STUN Binding request's first bytes (RFC 8489 §5), and a DTLS record
// header (RFC 6347 §4.1): what RFC 7983 tells apart.
Bytes Stun(uint8_t fill) {
  Bytes p(28, fill);
  p[0] = 0x00;
  p[1] = 0x01;
  return p;
}
Bytes Dtls(uint8_t fill) {
  Bytes p(60, fill);
  p[0] = 22;  // handshake
  p[1] = 0xfe;
  p[2] = 0xfd;
  return p;
}

// A frame as a worker hands it over: `payload` from `from` to `to`, received
// on kPort with VLAN `vlan` (0: untagged) in the frame.
rte_mbuf* Frame(const Endpoint& from, const Endpoint& to, const Bytes& payload, uint16_t vlan = 0,
                uint16_t port = kPort) {
  packet::UdpHeaderSpec spec;
  spec.src_mac = kPeerMac;
  spec.dst_mac = kOurMac;
  spec.src = from;
  spec.dst = to;
  spec.vlan_id = vlan;
  return sluice::testing::UdpFrame(pool, spec, payload, port);
}

// RFC 1071, written out here apart from packet/rewrite.cc.
uint32_t Sum(const uint8_t* p, size_t n, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (n % 2) sum += static_cast<uint32_t>(p[n - 1]) << 8;
  return sum;
}
uint16_t Fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

// A frame read back from the TX ring.
struct Sent {
  uint16_t port = 0;
  MacAddress dst_mac{}, src_mac{};
  uint16_t vlan = 0;  // 0: untagged
  packet::ParsedFrame frame;
  Bytes payload;
  bool checksums_ok = false;  // by the sums above, not the parser's
};

Sent Read(rte_mbuf* m) {
  Sent s;
  const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
  const uint32_t len = rte_pktmbuf_data_len(m);
  s.port = m->port;
  std::memcpy(s.dst_mac.data(), d, 6);
  std::memcpy(s.src_mac.data(), d + 6, 6);
  uint32_t l3 = 14;
  if (d[12] == 0x81 && d[13] == 0x00) {
    s.vlan = static_cast<uint16_t>((d[14] << 8 | d[15]) & 0x0fff);
    l3 = 18;
  }
  s.frame = packet::ParseFrame(d, len, packet::ParseOptions{});
  if (s.frame.kind != packet::FrameKind::kUdp) return s;
  s.payload.assign(d + s.frame.payload_offset, d + s.frame.payload_offset + s.frame.payload_len);
  const uint8_t* ip = d + l3;
  const uint8_t* udp = d + s.frame.l4_offset;
  const uint32_t udp_len = 8 + s.frame.payload_len;
  uint32_t pseudo;
  bool ip_ok = true;
  if (s.frame.src.ip.is_v4()) {
    ip_ok = Fold(Sum(ip, 20)) == 0xffff;
    pseudo = Sum(ip + 12, 8) + 17 + udp_len;
  } else {
    pseudo = Sum(ip + 8, 32) + 17 + udp_len;
  }
  s.checksums_ok = ip_ok && Fold(Sum(udp, udp_len, pseudo)) == 0xffff;
  return s;
}

// Everything on `ring`, read and freed.
std::vector<Sent> TakeAll(rte_ring* ring) {
  std::vector<Sent> out;
  void* m;
  while (rte_ring_dequeue(ring, &m) == 0) {
    out.push_back(Read(static_cast<rte_mbuf*>(m)));
    rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
  }
  return out;
}

// Echoes every datagram (or sends `reply` instead) to where it came from
// (or to `send_to`), and on its timer sends "tick" to the last sender.
// Records what it saw and what Send returned. Handshake thread only, like
// any handler.
class EchoHandshake : public MediaHandshake {
 public:
  struct Datagram {
    PayloadKind kind;
    Bytes payload;
    Endpoint from;
    uint64_t now_ms;
  };

  void OnDatagram(PayloadKind kind, std::span<const uint8_t> payload, const Endpoint& from,
                  uint64_t now_ms, Sender& send) override {
    got.push_back({kind, Bytes(payload.begin(), payload.end()), from, now_ms});
    sent.push_back(
        send.Send(reply ? std::span<const uint8_t>(*reply) : payload, send_to.value_or(from)));
    if (on_datagram) on_datagram();
  }
  uint64_t NextTimerMs() const override { return timer_ms; }
  void OnTimer(uint64_t now_ms, Sender& send) override {
    timer_calls.push_back(now_ms);
    timer_ms = UINT64_MAX;
    static constexpr uint8_t kTick[] = {'t', 'i', 'c', 'k'};
    if (!got.empty()) sent.push_back(send.Send(kTick, got.back().from));
  }

  std::vector<Datagram> got;
  std::vector<bool> sent;
  std::optional<Endpoint> send_to;
  std::optional<Bytes> reply;
  uint64_t timer_ms = UINT64_MAX;
  std::vector<uint64_t> timer_calls;
  std::function<void()> on_datagram;
};

class HandshakeThreadTest : public ::testing::Test {
 protected:
  void SetUp() override { Make({}); }
  void TearDown() override {
    thread_.reset();
    TakeAll(tx_);
    rte_ring_free(tx_);
    EXPECT_EQ(rte_mempool_in_use_count(pool), 0u) << "every mbuf freed";
  }

  // A thread on the fake clock now_ms_, sending into a fresh TX ring of
  // tx_size slots.
  void Make(HandshakeThreadOptions options, uint32_t tx_size = 64) {
    thread_.reset();
    if (tx_ != nullptr) {
      TakeAll(tx_);
      rte_ring_free(tx_);
    }
    tx_ = rte_ring_create("handshake_test_tx", tx_size, SOCKET_ID_ANY, RING_F_SC_DEQ);
    ASSERT_NE(tx_, nullptr);
    options.pool = pool;
    options.tx_ring = tx_;
    options.ring_name = "handshake_test";
    if (!options.clock) options.clock = [this] { return now_ms_; };
    auto t = HandshakeThread::Create(std::move(options));
    ASSERT_TRUE(t.ok()) << t.status();
    thread_ = *std::move(t);
  }

  std::shared_ptr<EchoHandshake> Handler(const Endpoint& local) {
    auto h = std::make_shared<EchoHandshake>();
    EXPECT_TRUE(thread_->Register(local, h).ok());
    return h;
  }

  void Give(rte_mbuf* m) { ASSERT_EQ(rte_ring_enqueue(thread_->ring(), m), 0); }

  uint64_t now_ms_ = 1000;
  rte_ring* tx_ = nullptr;
  std::unique_ptr<HandshakeThread> thread_;
};

// A STUN and a DTLS datagram, over IPv4 and IPv6, untagged and with a VLAN
// tag: each reaches the leg's handler as sent, and its echo leaves on the
// port it came in on, from our MAC (the request's destination) to the
// remote's (its source), in its VLAN, from the leg's address and port to
// the remote's, with checksums an independent sum accepts.
TEST_F(HandshakeThreadTest, EchoesInAFrameBuiltFromTheRequestsLinkLayer) {
  struct Case {
    const char* local;
    const char* remote;
    uint16_t vlan;
  };
  const Case cases[] = {{"10.0.1.1:30000", "192.0.2.7:50000", 0},
                        {"10.0.1.1:30002", "192.0.2.7:50002", 100},
                        {"[fd00:1::1]:30004", "[2001:db8::7]:50004", 0},
                        {"[fd00:1::1]:30006", "[2001:db8::7]:50006", 4094}};
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.local) + " vlan " + std::to_string(c.vlan));
    const Endpoint local = Ep(c.local), remote = Ep(c.remote);
    auto h = Handler(local);
    thread_->PollOnce();  // sees the registration
    const Bytes stun = Stun(0x11), dtls = Dtls(0x22);
    Give(Frame(remote, local, stun, c.vlan));
    Give(Frame(remote, local, dtls, c.vlan));
    EXPECT_EQ(thread_->PollOnce(), 2u);
    ASSERT_EQ(h->got.size(), 2u);
    EXPECT_EQ(h->got[0].kind, PayloadKind::kStun);
    EXPECT_EQ(h->got[0].payload, stun);
    EXPECT_EQ(h->got[0].from, remote);
    EXPECT_EQ(h->got[0].now_ms, now_ms_);
    EXPECT_EQ(h->got[1].kind, PayloadKind::kDtls);
    EXPECT_EQ(h->got[1].payload, dtls);
    std::vector<Sent> out = TakeAll(tx_);
    ASSERT_EQ(out.size(), 2u);
    for (size_t i = 0; i < out.size(); ++i) {
      const Sent& s = out[i];
      ASSERT_EQ(s.frame.kind, packet::FrameKind::kUdp) << packet::ParseErrorName(s.frame.error);
      EXPECT_EQ(s.port, kPort);
      EXPECT_EQ(s.dst_mac, kPeerMac);
      EXPECT_EQ(s.src_mac, kOurMac);
      EXPECT_EQ(s.vlan, c.vlan);
      EXPECT_EQ(s.frame.src, local);
      EXPECT_EQ(s.frame.dst, remote);
      EXPECT_EQ(s.payload, i == 0 ? stun : dtls);
      EXPECT_TRUE(s.checksums_ok);
    }
  }
  EXPECT_EQ(thread_->counters().received.load(), 8u);
  EXPECT_EQ(thread_->counters().dispatched.load(), 8u);
  EXPECT_EQ(thread_->counters().sent.load(), 8u);
}

// A NIC that strips the tag leaves the VLAN in the mbuf: the reply carries
// it in its frame.
TEST_F(HandshakeThreadTest, AStrippedVlanIsTaggedOnTheReply) {
  const Endpoint local = Ep("10.0.1.1:30000"), remote = Ep("192.0.2.7:50000");
  auto h = Handler(local);
  rte_mbuf* m = Frame(remote, local, Stun(1));
  m->ol_flags |= RTE_MBUF_F_RX_VLAN | RTE_MBUF_F_RX_VLAN_STRIPPED;
  m->vlan_tci = 0x2000 | 42;  // priority 1, VLAN 42
  Give(m);
  thread_->PollOnce();
  std::vector<Sent> out = TakeAll(tx_);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].vlan, 42);
  EXPECT_TRUE(out[0].checksums_ok);
}

// Nobody at the destination, or not a STUN/DTLS UDP frame at all: counted
// and freed, no handler called, nothing sent.
TEST_F(HandshakeThreadTest, NoHandlerAndMalformedAreCountedAndFreed) {
  const Endpoint local = Ep("10.0.1.1:30000"), remote = Ep("192.0.2.7:50000");
  auto h = Handler(local);
  Give(Frame(remote, Ep("10.0.1.1:30002"), Stun(1)));  // nobody's port
  Bytes rtp(40, 0);
  rtp[0] = 0x80;
  Give(Frame(remote, local, rtp));  // RTP is not the handshake's
  rte_mbuf* runt = rte_pktmbuf_alloc(pool);
  ASSERT_NE(runt, nullptr);
  rte_pktmbuf_append(runt, 10);
  Give(runt);
  EXPECT_EQ(thread_->PollOnce(), 3u);
  EXPECT_TRUE(h->got.empty());
  EXPECT_EQ(thread_->counters().no_handler.load(), 1u);
  EXPECT_EQ(thread_->counters().malformed.load(), 2u);
  EXPECT_EQ(thread_->counters().dispatched.load(), 0u);
  EXPECT_EQ(rte_ring_count(tx_), 0u);
}

// An ICE-lite agent answers only addresses that reached it: a send to an
// address this leg never heard from is refused and counted, even when
// another leg heard from it.
TEST_F(HandshakeThreadTest, ASendToAnAddressNeverHeardFromIsRefused) {
  const Endpoint a = Ep("10.0.1.1:30000"), b = Ep("10.0.1.1:30002");
  const Endpoint to_a = Ep("192.0.2.7:50000"), to_b = Ep("192.0.2.8:50000");
  auto ha = Handler(a);
  auto hb = Handler(b);
  ha->send_to = to_b;
  hb->send_to = to_a;
  Give(Frame(to_a, a, Stun(1)));
  Give(Frame(to_b, b, Stun(2)));
  thread_->PollOnce();
  EXPECT_EQ(ha->sent, std::vector<bool>{false});
  EXPECT_EQ(hb->sent, std::vector<bool>{false});
  EXPECT_EQ(thread_->counters().unknown_remote.load(), 2u);
  EXPECT_EQ(thread_->counters().sent.load(), 0u);
  EXPECT_EQ(rte_ring_count(tx_), 0u);
}

// A handler's timer runs once the clock reaches it, not before, and can
// send; one that wants none is not called.
TEST_F(HandshakeThreadTest, TimersRunWhenDue) {
  const Endpoint local = Ep("10.0.1.1:30000"), remote = Ep("192.0.2.7:50000");
  auto h = Handler(local);
  auto idle = Handler(Ep("10.0.1.1:30002"));
  Give(Frame(remote, local, Stun(1)));
  thread_->PollOnce();
  TakeAll(tx_);
  // Timers change in the handler's calls or in tasks posted to the thread.
  thread_->Post([h, due = now_ms_ + 100] { h->timer_ms = due; });
  now_ms_ += 99;
  thread_->PollOnce();
  EXPECT_TRUE(h->timer_calls.empty());
  now_ms_ += 1;
  thread_->PollOnce();
  ASSERT_EQ(h->timer_calls.size(), 1u);
  EXPECT_EQ(h->timer_calls[0], now_ms_);
  std::vector<Sent> out = TakeAll(tx_);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].payload, (Bytes{'t', 'i', 'c', 'k'}));
  EXPECT_EQ(out[0].frame.dst, remote);
  now_ms_ += 1000;
  thread_->PollOnce();
  EXPECT_EQ(h->timer_calls.size(), 1u) << "it asked for no other";
  EXPECT_TRUE(idle->timer_calls.empty());
  EXPECT_EQ(thread_->counters().timers.load(), 1u);
}

// Counts how often the thread asks for its timer; sets a new one when a
// datagram comes.
class CountingHandshake : public EchoHandshake {
 public:
  uint64_t NextTimerMs() const override {
    ++asked;
    return EchoHandshake::NextTimerMs();
  }
  mutable uint64_t asked = 0;
};

// The thread asks a leg for its timer after that leg's own calls (and after
// posted tasks), not on every poll: with thousands of WebRTC legs, an idle
// poll visits none of them, and a busy one only those it called. Timers set
// in a datagram's call, or by a posted task, still run when due, once.
TEST_F(HandshakeThreadTest, PollsVisitOnlyTheLegsTheyCalled) {
  constexpr int kLegs = 2000;
  std::vector<std::shared_ptr<CountingHandshake>> legs;
  for (int i = 0; i < kLegs; ++i) {
    auto h = std::make_shared<CountingHandshake>();
    const Endpoint local = Ep(("10.0.1.1:" + std::to_string(20000 + 2 * i)).c_str());
    ASSERT_TRUE(thread_->Register(local, h).ok());
    legs.push_back(std::move(h));
  }
  thread_->PollOnce();  // the registrations: each leg asked once
  auto asked = [&] {
    uint64_t n = 0;
    for (const auto& h : legs) n += std::exchange(h->asked, 0);
    return n;
  };
  EXPECT_LE(asked(), 2u * kLegs);
  for (int i = 0; i < 100; ++i) thread_->PollOnce();
  EXPECT_EQ(asked(), 0u) << "idle polls visit no leg";

  const Endpoint remote = Ep("192.0.2.7:50000");
  legs[7]->on_datagram = [&] { legs[7]->timer_ms = now_ms_ + 50; };
  Give(Frame(remote, Ep("10.0.1.1:20014"), Stun(1)));
  thread_->PollOnce();
  EXPECT_LE(asked(), 2u) << "a datagram's leg, and only it";
  thread_->Post([h = legs[9], due = now_ms_ + 20] { h->timer_ms = due; });
  thread_->PollOnce();
  now_ms_ += 20;
  thread_->PollOnce();
  EXPECT_EQ(legs[9]->timer_calls, std::vector<uint64_t>{now_ms_});
  EXPECT_TRUE(legs[7]->timer_calls.empty());
  now_ms_ += 30;
  thread_->PollOnce();
  thread_->PollOnce();
  EXPECT_EQ(legs[7]->timer_calls, std::vector<uint64_t>{now_ms_});
  EXPECT_EQ(thread_->counters().timers.load(), 2u);
  TakeAll(tx_);
  // Unregistered, a leg's timer never runs.
  legs[11]->on_datagram = [&] { legs[11]->timer_ms = now_ms_ + 10; };
  Give(Frame(remote, Ep("10.0.1.1:20022"), Stun(2)));
  thread_->PollOnce();
  EXPECT_TRUE(thread_->Unregister(Ep("10.0.1.1:20022")));
  now_ms_ += 10;
  thread_->PollOnce();
  EXPECT_TRUE(legs[11]->timer_calls.empty());
  EXPECT_EQ(legs[11].use_count(), 1) << "the thread let go of it";
  TakeAll(tx_);
}

// Unregistered, a leg's datagrams find no handler; registered again, it
// starts with no link-layer facts. A second handler for one address is
// refused.
TEST_F(HandshakeThreadTest, UnregisterStopsDispatchAndForgetsTheLinkLayer) {
  const Endpoint local = Ep("10.0.1.1:30000"), remote = Ep("192.0.2.7:50000");
  auto first = Handler(local);
  EXPECT_EQ(thread_->Register(local, std::make_shared<EchoHandshake>()).code(),
            absl::StatusCode::kAlreadyExists);
  Give(Frame(remote, local, Stun(1)));
  thread_->PollOnce();
  EXPECT_EQ(first->got.size(), 1u);
  EXPECT_TRUE(thread_->Unregister(local));
  EXPECT_FALSE(thread_->Unregister(local));
  Give(Frame(remote, local, Stun(2)));
  thread_->PollOnce();
  EXPECT_EQ(first->got.size(), 1u);
  EXPECT_EQ(thread_->counters().no_handler.load(), 1u);

  auto second = Handler(local);
  second->timer_ms = now_ms_;  // its timer sends to `remote`, heard by the first only
  auto* raw = second.get();
  raw->got.push_back({PayloadKind::kStun, {}, remote, 0});
  thread_->PollOnce();
  EXPECT_EQ(raw->sent, std::vector<bool>{false});
  EXPECT_EQ(thread_->counters().unknown_remote.load(), 1u);
  EXPECT_EQ(first.use_count(), 1) << "the thread let go of the first";
}

// Each leg keeps the link layer of at most max_remotes_per_leg addresses;
// past it, the one heard from least recently goes, and a reply to it is
// refused.
TEST_F(HandshakeThreadTest, TheLeastRecentlyHeardRemoteIsForgottenPastTheBound) {
  Make({.max_remotes_per_leg = 2});
  const Endpoint local = Ep("10.0.1.1:30000");
  const Endpoint r1 = Ep("192.0.2.1:5000"), r2 = Ep("192.0.2.2:5000"), r3 = Ep("192.0.2.3:5000");
  auto h = Handler(local);
  for (const Endpoint& r : {r1, r2, r1, r3}) {  // r1 heard again after r2
    Give(Frame(r, local, Stun(1)));
    thread_->PollOnce();
    now_ms_ += 10;
  }
  EXPECT_EQ(thread_->counters().remotes_forgotten.load(), 1u);
  TakeAll(tx_);
  h->send_to = r2;
  Give(Frame(r1, local, Stun(2)));
  thread_->PollOnce();
  EXPECT_FALSE(h->sent.back()) << "r2 was forgotten";
  h->send_to = r3;
  Give(Frame(r1, local, Stun(3)));
  thread_->PollOnce();
  EXPECT_TRUE(h->sent.back());
}

// What cannot be sent is refused and counted: a full TX ring, and a payload
// no frame holds.
TEST_F(HandshakeThreadTest, SendsThatCannotGoAreCounted) {
  Make({}, /*tx_size=*/2);  // room for one frame
  const Endpoint local = Ep("10.0.1.1:30000"), remote = Ep("192.0.2.7:50000");
  auto h = Handler(local);
  Give(Frame(remote, local, Stun(1)));
  Give(Frame(remote, local, Stun(2)));
  thread_->PollOnce();
  EXPECT_EQ(h->sent, (std::vector<bool>{true, false}));
  EXPECT_EQ(thread_->counters().tx_full.load(), 1u);
  TakeAll(tx_);
  h->reply = Bytes(RTE_MBUF_DEFAULT_DATAROOM, 0x16);  // with headers, past an mbuf's room
  Give(Frame(remote, local, Stun(3)));
  thread_->PollOnce();
  EXPECT_FALSE(h->sent.back());
  EXPECT_EQ(thread_->counters().too_large.load(), 1u);
  EXPECT_EQ(thread_->counters().sent.load(), 1u);
}

// Started, the thread runs what the control thread posts, on itself; takes
// frames from its ring without being asked; and a handler's report reaches
// the control thread through RunControlTasks. Stop joins it, lets go of the
// handlers, and frees what is left in the ring.
TEST_F(HandshakeThreadTest, TheThreadRunsPostsDispatchesAndReportsToControl) {
  Make({.clock = [] {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
  }});
  const Endpoint local = Ep("10.0.1.1:30000"), remote = Ep("192.0.2.7:50000");
  auto h = std::make_shared<EchoHandshake>();
  std::weak_ptr<EchoHandshake> weak = h;
  int reports = 0;
  HandshakeThread* t = thread_.get();
  h->on_datagram = [t, &reports] { t->PostToControl([&reports] { ++reports; }); };
  ASSERT_TRUE(thread_->Register(local, std::move(h)).ok());
  thread_->Start();
  std::thread::id ran_on;
  std::atomic<bool> posted{false};
  thread_->Post([&] {
    ran_on = std::this_thread::get_id();
    posted.store(true);
  });
  Give(Frame(remote, local, Stun(1)));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while ((reports == 0 || !posted.load()) && std::chrono::steady_clock::now() < deadline) {
    thread_->RunControlTasks();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_TRUE(posted.load());
  EXPECT_NE(ran_on, std::this_thread::get_id());
  EXPECT_EQ(reports, 1) << "run here, by RunControlTasks";
  thread_->Stop();
  EXPECT_EQ(thread_->counters().sent.load(), 1u);
  EXPECT_TRUE(weak.expired()) << "Stop let go of the handler";
  Give(Frame(remote, local, Stun(2)));
  thread_->Stop();  // again: frees the ring's mbufs
  EXPECT_EQ(rte_ring_count(thread_->ring()), 0u);
}

// End to end through a worker: a STUN request to a leg that takes
// handshakes is handed over by the worker that receives it, answered by the
// handler on this thread, and the answer leaves through the worker that
// drains the TX ring, onto the port the request came in on.
TEST_F(HandshakeThreadTest, AWorkerHandsARequestOverAndSendsTheAnswer) {
  rte_ether_addr port_mac;
  ASSERT_EQ(rte_eth_macaddr_get(ring_port, &port_mac), 0);
  session::LegSpec a, b;
  a.name = "a";
  a.port_id = ring_port;
  std::memcpy(a.port_mac.data(), port_mac.addr_bytes, 6);
  a.local = Ep("10.0.1.1:30000");
  a.handshake = true;
  a.keys_pending = true;
  b = a;
  b.name = "b";
  b.local = Ep("10.0.1.1:30002");
  b.handshake = b.keys_pending = false;
  auto s = session::Session::Create(1, a, b, {});
  ASSERT_TRUE(s.ok()) << s.status();
  auto table = session::FlowTable::Create("handshake_test_flows", 64, 1);
  ASSERT_TRUE(table.ok());
  ASSERT_TRUE((*s)->Publish(**table).ok());
  auto backend = crypto::MakeBackend(crypto::BackendKind::kOpenssl);
  ASSERT_TRUE(backend.ok());
  worker::WorkerConfig config;
  config.table = table->get();
  config.backend = backend->get();
  config.handshake = thread_->ring();
  config.control_tx = tx_;
  worker::Worker w(config);
  w.Start();
  auto h = Handler(a.local);

  const Endpoint phone = Ep("10.0.1.2:40000");
  rte_mbuf* request = Frame(phone, a.local, Stun(7), 0, /*port=*/99);
  w.ProcessBurst(&request, 1, ring_port);
  EXPECT_EQ(w.counters().handshake_packets.load(), 1u);
  thread_->PollOnce();
  ASSERT_EQ(h->got.size(), 1u);
  w.PollOnce();  // sends what the TX ring holds
  w.Stop();
  rte_mbuf* out[4];
  const uint16_t n = rte_eth_rx_burst(ring_port, 0, out, 4);  // net_ring: TX comes back here
  ASSERT_EQ(n, 1u);
  const Sent sent = Read(out[0]);
  rte_pktmbuf_free(out[0]);
  EXPECT_EQ(sent.frame.src, a.local);
  EXPECT_EQ(sent.frame.dst, phone);
  EXPECT_EQ(sent.dst_mac, kPeerMac);
  EXPECT_EQ(sent.payload, Stun(7));
  EXPECT_TRUE(sent.checksums_ok);
  EXPECT_EQ(w.counters().total_drops(), 0u);
  (*s)->Unpublish(**table);
  (*table)->Synchronize();
}

}  // namespace
}  // namespace sluice::webrtc
