// The worker pipeline end to end, in process: frames protected by libsrtp2
// go into Worker::ProcessBurst, what leaves on the other leg's port (net_ring
// devices loop TX back to RX) is parsed and unprotected by libsrtp2.
#include "sluice/worker/worker.h"

#include <gtest/gtest.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <list>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "libsrtp_peer.h"
#include "udp_frame.h"
#include "sluice/dpdk/eal.h"
#include "sluice/packet/parse.h"
#include "sluice/packet/rewrite.h"
#include "sluice/session/policing.h"
#include "sluice/session/session.h"

namespace sluice::worker {
namespace {

using packet::Endpoint;
using packet::MacAddress;
using testing::LibsrtpPeer;

rte_mempool* pool = nullptr;
uint16_t port_a = 0, port_b = 0;

class PipelineEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    dpdk::EalOptions options;
    options.program_name = "worker_test";
    options.vdevs = {"net_ring0", "net_ring1"};
    options.memory_mb = 256;
    absl::Status s = dpdk::InitEal(options);
    ASSERT_TRUE(s.ok()) << s;
    pool = rte_pktmbuf_pool_create("pipeline_pool", 4095, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                   static_cast<int>(rte_socket_id()));
    ASSERT_NE(pool, nullptr);
    ASSERT_EQ(rte_eth_dev_get_port_by_name("net_ring0", &port_a), 0);
    ASSERT_EQ(rte_eth_dev_get_port_by_name("net_ring1", &port_b), 0);
    for (uint16_t port : {port_a, port_b}) {
      rte_eth_conf conf = {};
      ASSERT_EQ(rte_eth_dev_configure(port, 1, 1, &conf), 0);
      ASSERT_EQ(rte_eth_rx_queue_setup(port, 0, 1024, 0, nullptr, pool), 0);
      ASSERT_EQ(rte_eth_tx_queue_setup(port, 0, 1024, 0, nullptr), 0);
      ASSERT_EQ(rte_eth_dev_start(port), 0);
    }
    LibsrtpPeer::Init();
  }
};
const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new PipelineEnvironment);

MacAddress Mac(uint8_t last) { return {0x02, 0, 0, 0, 0, last}; }
Endpoint Ep(const char* text) { return *Endpoint::Parse(text); }

srtp::MasterKey RandomKey(crypto::Suite suite, std::mt19937& rng) {
  srtp::MasterKey key;
  key.suite = suite;
  for (auto& b : key.key) b = static_cast<uint8_t>(rng());
  for (auto& b : key.salt) b = static_cast<uint8_t>(rng());
  return key;
}

std::vector<uint8_t> RtpPacket(uint16_t seq, uint32_t ssrc, size_t payload, uint8_t fill) {
  std::vector<uint8_t> p(12 + payload);
  p[0] = 0x80;
  p[1] = 0;  // PCMU
  p[2] = static_cast<uint8_t>(seq >> 8);
  p[3] = static_cast<uint8_t>(seq);
  p[4] = p[5] = p[6] = 0;
  p[7] = static_cast<uint8_t>(seq);  // timestamp
  p[8] = static_cast<uint8_t>(ssrc >> 24);
  p[9] = static_cast<uint8_t>(ssrc >> 16);
  p[10] = static_cast<uint8_t>(ssrc >> 8);
  p[11] = static_cast<uint8_t>(ssrc);
  for (size_t i = 0; i < payload; ++i) p[12 + i] = static_cast<uint8_t>(fill + i);
  return p;
}

std::vector<uint8_t> RtcpReceiverReport(uint32_t ssrc) {
  std::vector<uint8_t> p = {0x81, 201, 0, 7, 0, 0, 0, 0};  // RR with one report block
  p[4] = static_cast<uint8_t>(ssrc >> 24);
  p[5] = static_cast<uint8_t>(ssrc >> 16);
  p[6] = static_cast<uint8_t>(ssrc >> 8);
  p[7] = static_cast<uint8_t>(ssrc);
  for (int i = 0; i < 24; ++i) p.push_back(static_cast<uint8_t>(i));
  return p;
}

// A frame from `src` (MAC, endpoint) to `dst` carrying `payload`, tagged
// with `vlan` unless 0. It is received (mbuf->port, which ProcessBurst reads
// unless given a port) on the port of the network it is addressed to:
// 10.0.2.0/24 and fd00:2::/64 are port b's (leg b's in MakeCall and
// MakeCallAcrossFamilies), the rest port a's.
rte_mbuf* Frame(const MacAddress& src_mac, const MacAddress& dst_mac, const Endpoint& src,
                const Endpoint& dst, const std::vector<uint8_t>& payload, uint16_t vlan = 0) {
  const bool on_b = packet::Prefix::Parse("10.0.2.0/24")->Contains(dst.ip) ||
                    packet::Prefix::Parse("fd00:2::/64")->Contains(dst.ip);
  packet::UdpHeaderSpec spec;
  spec.src_mac = src_mac;
  spec.dst_mac = dst_mac;
  spec.src = src;
  spec.dst = dst;
  spec.vlan_id = vlan;
  return sluice::testing::UdpFrame(pool, spec, payload, on_b ? port_b : port_a);
}

struct Received {
  packet::ParsedFrame frame;
  MacAddress src_mac, dst_mac;
  std::vector<uint8_t> payload;
  // Checksums the worker left to the NIC: the TX flags and header lengths it
  // gave, and how the frame parsed before they were filled in.
  uint64_t tx_flags = 0;
  uint32_t l2_len = 0, l3_len = 0;
  packet::ParsedFrame as_sent;      // checksums checked
  packet::ParsedFrame as_sent_udp;  // the UDP checksum only
  uint16_t udp_checksum_as_sent = 0;
};

// A frame as the wire sees it (the mbuf freed): a net_ring device hands
// over the very mbuf that was sent, so checksums asked of the NIC
// (ol_flags) are filled in here, as a NIC would.
Received Wire(rte_mbuf* m) {
  uint8_t* d = rte_pktmbuf_mtod(m, uint8_t*);
  const uint32_t len = rte_pktmbuf_data_len(m);
  Received r;
  r.tx_flags = m->ol_flags & RTE_MBUF_F_TX_OFFLOAD_MASK;
  if (r.tx_flags != 0) {
    r.l2_len = m->l2_len;
    r.l3_len = m->l3_len;
    r.as_sent = packet::ParseFrame(d, len, packet::ParseOptions{});
    r.as_sent_udp = packet::ParseFrame(d, len, packet::ParseOptions{.verify_ip_checksum = false});
    const uint8_t* udp = d + r.l2_len + r.l3_len;
    r.udp_checksum_as_sent = static_cast<uint16_t>(udp[6] << 8 | udp[7]);
    EXPECT_TRUE(packet::CompleteOffloadedChecksums(
        d, len, r.l2_len, r.l3_len, (r.tx_flags & RTE_MBUF_F_TX_IP_CKSUM) != 0,
        (r.tx_flags & RTE_MBUF_F_TX_L4_MASK) == RTE_MBUF_F_TX_UDP_CKSUM));
  }
  r.frame = packet::ParseFrame(d, len, packet::ParseOptions{});
  std::memcpy(r.dst_mac.data(), d, 6);
  std::memcpy(r.src_mac.data(), d + 6, 6);
  if (r.frame.kind == packet::FrameKind::kUdp) {
    r.payload.assign(d + r.frame.payload_offset, d + r.frame.payload_offset + r.frame.payload_len);
  }
  rte_pktmbuf_free(m);
  return r;
}

// What leaves a port.
std::vector<Received> Drain(uint16_t port) {
  std::vector<Received> out;
  rte_mbuf* pkts[64];
  uint16_t n;
  while ((n = rte_eth_rx_burst(port, 0, pkts, 64)) > 0) {
    for (uint16_t i = 0; i < n; ++i) out.push_back(Wire(pkts[i]));
  }
  return out;
}

// One call between phone A (on port a) and phone B (on port b).
struct Call {
  session::LegSpec a, b;
  std::unique_ptr<session::Session> session;
  // Phones' own libsrtp contexts (null for a plain side).
  std::unique_ptr<LibsrtpPeer> a_send, a_recv, b_send, b_recv;
};

MacAddress PortMac(uint16_t port) {
  rte_ether_addr addr;
  rte_eth_macaddr_get(port, &addr);
  MacAddress mac;
  std::memcpy(mac.data(), addr.addr_bytes, 6);
  return mac;
}

// in_suite: how phone A and Sluice talk; out_suite: how Sluice and phone B
// talk (nullopt: plain RTP).
// index: calls with different indices use different ports, so several can
// be published at once.
Call MakeCall(std::optional<crypto::Suite> a_suite, std::optional<crypto::Suite> b_suite,
              bool give_remotes, std::mt19937& rng, bool a_rtcp_mux = true, int index = 0) {
  auto at = [index](const char* ip, int port) {
    return Ep((std::string(ip) + ":" + std::to_string(port + 4 * index)).c_str());
  };
  Call c;
  c.a.name = "a";
  c.a.port_id = port_a;
  c.a.port_mac = PortMac(port_a);
  c.a.local = at("10.0.1.1", 30000);
  c.a.rtcp_mux = a_rtcp_mux;
  c.b.name = "b";
  c.b.port_id = port_b;
  c.b.port_mac = PortMac(port_b);
  c.b.local = at("10.0.2.1", 30002);
  if (give_remotes) {
    c.a.remote = at("10.0.1.2", 40000);
    c.a.remote_mac = Mac(0x12);
    c.b.remote = at("10.0.2.2", 40002);
    c.b.remote_mac = Mac(0x22);
  }
  LibsrtpPeer::Options popt;
  if (a_suite) {
    c.a.rx_keys = {RandomKey(*a_suite, rng)};
    c.a.tx_keys = {RandomKey(*a_suite, rng)};
    c.a_send = *LibsrtpPeer::Create(LibsrtpPeer::Role::kSender, c.a.rx_keys, popt);
    c.a_recv = *LibsrtpPeer::Create(LibsrtpPeer::Role::kReceiver, c.a.tx_keys, popt);
  }
  if (b_suite) {
    c.b.rx_keys = {RandomKey(*b_suite, rng)};
    c.b.tx_keys = {RandomKey(*b_suite, rng)};
    c.b_send = *LibsrtpPeer::Create(LibsrtpPeer::Role::kSender, c.b.rx_keys, popt);
    c.b_recv = *LibsrtpPeer::Create(LibsrtpPeer::Role::kReceiver, c.b.tx_keys, popt);
  }
  auto s = session::Session::Create(1, c.a, c.b, session::SessionOptions{});
  EXPECT_TRUE(s.ok()) << s.status();
  c.session = std::move(*s);
  return c;
}

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto table = session::FlowTable::Create("pipeline_flows", 1024, 1);
    ASSERT_TRUE(table.ok()) << table.status();
    table_ = std::move(*table);
    auto backend = crypto::MakeBackend(crypto::BackendKind::kIpsecMb);
    ASSERT_TRUE(backend.ok());
    backend_ = std::move(*backend);
    WorkerConfig config;
    config.table = table_.get();
    config.backend = backend_.get();
    worker_ = std::make_unique<Worker>(config);
    Drain(port_a);
    Drain(port_b);
  }
  void TearDown() override {
    for (Call& c : calls_) {
      if (c.session) c.session->Unpublish(*table_);
    }
    table_->Synchronize();
    calls_.clear();
  }

  // The fixture keeps every call until TearDown has taken it out of the table.
  Call& Keep(Call c) { return calls_.emplace_back(std::move(c)); }

  void Publish(Call& c) { ASSERT_TRUE(c.session->Publish(*table_).ok()); }

  void Send(std::vector<rte_mbuf*> frames) {
    worker_->ProcessBurst(frames.data(), static_cast<uint16_t>(frames.size()));
    worker_->FlushTx();
  }

  uint64_t Drops(DropReason r) const {
    return worker_->counters().drops[static_cast<size_t>(r)].load();
  }

  std::unique_ptr<session::FlowTable> table_;
  std::unique_ptr<crypto::Backend> backend_;
  std::unique_ptr<Worker> worker_;
  std::list<Call> calls_;
};

std::string Name(std::optional<crypto::Suite> s) {
  return s ? std::string(crypto::SuiteName(*s)) : "plain";
}

// Every suite (and plain) on leg A against every suite (and plain) on leg B,
// both directions, RTP and RTCP: the payload that leaves is what the phone sent.
TEST_F(PipelineTest, RelaysEverySuitePairBothWays) {
  std::mt19937 rng(7);
  std::vector<std::optional<crypto::Suite>> sides = {std::nullopt};
  for (const auto& info : crypto::AllSuites()) {
    // The phones are libsrtp2; where its AES-192 key derivation departs from
    // RFC 6188 §7.4 (Sluice follows the RFC) those suites cannot be checked
    // against it here. tests/srtp/rfc_vectors_test.cc checks them against the RFC.
    if (info.key_len == 24 && !LibsrtpPeer::Aes192KdfFollowsRfc6188()) {
      std::printf("note: %s not relayed to a libsrtp2 peer: this libsrtp2's AES-192 key "
                  "derivation does not follow RFC 6188\n",
                  std::string(info.name).c_str());
      continue;
    }
    sides.push_back(info.suite);
  }
  for (const auto& sa : sides) {
    for (const auto& sb : sides) {
      SCOPED_TRACE(Name(sa) + " <-> " + Name(sb));
      Call& c = Keep(MakeCall(sa, sb, /*give_remotes=*/true, rng));
      Publish(c);
      for (int dir = 0; dir < 2; ++dir) {
        LibsrtpPeer* sender = dir == 0 ? c.a_send.get() : c.b_send.get();
        LibsrtpPeer* receiver = dir == 0 ? c.b_recv.get() : c.a_recv.get();
        const Endpoint from = dir == 0 ? *c.a.remote : *c.b.remote;
        const Endpoint to = dir == 0 ? c.a.local : c.b.local;
        const MacAddress from_mac = dir == 0 ? *c.a.remote_mac : *c.b.remote_mac;
        const MacAddress to_mac = dir == 0 ? c.a.port_mac : c.b.port_mac;
        const uint16_t out_port = dir == 0 ? port_b : port_a;
        std::vector<std::vector<uint8_t>> originals;
        std::vector<rte_mbuf*> frames;
        for (int i = 0; i < 6; ++i) {
          std::vector<uint8_t> p = i == 5 ? RtcpReceiverReport(0x1234 + dir)
                                          : RtpPacket(static_cast<uint16_t>(65533 + i),
                                                      0x1234 + dir, 160, static_cast<uint8_t>(i));
          originals.push_back(p);
          if (sender != nullptr) {
            ASSERT_EQ(i == 5 ? sender->ProtectRtcp(p) : sender->ProtectRtp(p), srtp_err_status_ok);
          }
          frames.push_back(Frame(from_mac, to_mac, from, to, p));
        }
        Send(frames);
        std::vector<Received> got = Drain(out_port);
        ASSERT_EQ(got.size(), originals.size());
        for (size_t i = 0; i < got.size(); ++i) {
          const Received& r = got[i];
          ASSERT_EQ(r.frame.kind, packet::FrameKind::kUdp);
          EXPECT_EQ(r.frame.src, dir == 0 ? c.b.local : c.a.local);
          EXPECT_EQ(r.frame.dst, dir == 0 ? *c.b.remote : *c.a.remote);
          EXPECT_EQ(r.dst_mac, dir == 0 ? *c.b.remote_mac : *c.a.remote_mac);
          EXPECT_EQ(r.src_mac, dir == 0 ? c.b.port_mac : c.a.port_mac);
          std::vector<uint8_t> p = r.payload;
          if (receiver != nullptr) {
            ASSERT_EQ(i == 5 ? receiver->UnprotectRtcp(p) : receiver->UnprotectRtp(p),
                      srtp_err_status_ok)
                << "packet " << i;
          }
          EXPECT_EQ(p, originals[i]) << "packet " << i;
        }
      }
      c.session->Unpublish(*table_);
      table_->Synchronize();
    }
  }
  EXPECT_EQ(worker_->counters().total_drops(), 0u);
}

// What a flow relays is counted by kind: RTCP apart from RTP, in and out.
TEST_F(PipelineTest, CountsRtcpApartFromRtp) {
  std::mt19937 rng(23);
  Call& c = Keep(MakeCall(crypto::Suite::kAesCm128HmacSha1_80,
                          crypto::Suite::kAesCm128HmacSha1_80, true, rng));
  Publish(c);
  std::vector<rte_mbuf*> frames;
  uint64_t rtp_bytes = 0, rtcp_bytes = 0;
  for (int i = 0; i < 5; ++i) {
    std::vector<uint8_t> p = i == 4 ? RtcpReceiverReport(0x4321)
                                    : RtpPacket(static_cast<uint16_t>(i + 1), 0x4321, 160, 0);
    ASSERT_EQ(i == 4 ? c.a_send->ProtectRtcp(p) : c.a_send->ProtectRtp(p), srtp_err_status_ok);
    (i == 4 ? rtcp_bytes : rtp_bytes) += p.size();
    frames.push_back(Frame(*c.a.remote_mac, c.a.port_mac, *c.a.remote, c.a.local, p));
  }
  Send(frames);
  std::vector<Received> got = Drain(port_b);
  ASSERT_EQ(got.size(), 5u);
  using session::FlowCounters;
  const FlowCounters& k = c.session->flow(0).counters;
  EXPECT_EQ(k.rx_packets[FlowCounters::kRtp].load(), 4u);
  EXPECT_EQ(k.rx_packets[FlowCounters::kRtcp].load(), 1u);
  EXPECT_EQ(k.rx_bytes[FlowCounters::kRtp].load(), rtp_bytes);
  EXPECT_EQ(k.rx_bytes[FlowCounters::kRtcp].load(), rtcp_bytes);
  EXPECT_EQ(k.tx_packets[FlowCounters::kRtp].load(), 4u);
  EXPECT_EQ(k.tx_packets[FlowCounters::kRtcp].load(), 1u);
  EXPECT_EQ(k.tx_bytes[FlowCounters::kRtcp].load(), got[4].payload.size());
  EXPECT_EQ(FlowCounters::Both(k.tx_packets), 5u);
}

// Phone A on IPv4, phone B on IPv6: leg B's local address and peer are
// IPv6 (fd00:2::/64 on port b), leg A's stay IPv4. Without give_remotes
// leg B learns its peer.
Call MakeCallAcrossFamilies(std::optional<crypto::Suite> a_suite,
                            std::optional<crypto::Suite> b_suite, bool give_remotes,
                            std::mt19937& rng, uint64_t id) {
  Call c = MakeCall(a_suite, b_suite, /*give_remotes=*/true, rng);
  c.b.local = Ep("[fd00:2::1]:30002");
  c.b.remote = Ep("[fd00:2::2]:40002");
  if (!give_remotes) {  // B's peer is learned; A's stays given
    c.b.remote.reset();
    c.b.remote_mac.reset();
  }
  auto s = session::Session::Create(id, c.a, c.b, session::SessionOptions{});
  EXPECT_TRUE(s.ok()) << s.status();
  c.session = std::move(*s);
  return c;
}

// IPv4 in on leg A, IPv6 out on leg B, and back: each frame leaves with the
// other family's headers and a UDP checksum over that family's
// pseudo-header (software, and left to a NIC that fills it in), and what
// the phones receive authenticates. SRTP both sides, a plain side either
// way, and a leg B that learns its IPv6 peer from authenticated packets.
TEST_F(PipelineTest, RelaysBetweenAnIpv4LegAndAnIpv6Leg) {
  std::mt19937 rng(41);
  using S = std::optional<crypto::Suite>;
  const S cm = crypto::Suite::kAesCm128HmacSha1_80, gcm = crypto::Suite::kAeadAes128Gcm;
  const std::vector<std::pair<S, S>> pairs = {{cm, cm}, {cm, gcm}, {std::nullopt, cm},
                                              {gcm, std::nullopt}, {std::nullopt, std::nullopt}};
  uint64_t id = 100;
  for (const bool offload : {false, true}) {
    WorkerConfig config = worker_->config();
    config.tx_checksum_offload.assign(std::max(port_a, port_b) + 1, {});
    if (offload) {
      config.tx_checksum_offload[port_a] = {.ipv4_header = true, .udp = true};
      config.tx_checksum_offload[port_b] = {.ipv4_header = true, .udp = true};
    }
    worker_ = std::make_unique<Worker>(config);
    for (const auto& [sa, sb] : pairs) {
      for (const bool learn : {false, true}) {
        SCOPED_TRACE(Name(sa) + " (IPv4) <-> " + Name(sb) + " (IPv6)" +
                     (offload ? ", NIC checksums" : "") + (learn ? ", B learned" : ""));
        Call& c = Keep(MakeCallAcrossFamilies(sa, sb, /*give_remotes=*/!learn, rng, id++));
        Publish(c);
        const Endpoint phone_a = Ep("10.0.1.2:40000"), phone_b = Ep("[fd00:2::2]:40002");
        // B first: when B's peer is learned, A has nowhere to send before.
        for (const int dir : {1, 0}) {
          LibsrtpPeer* sender = dir == 0 ? c.a_send.get() : c.b_send.get();
          LibsrtpPeer* receiver = dir == 0 ? c.b_recv.get() : c.a_recv.get();
          const Endpoint from = dir == 0 ? phone_a : phone_b;
          const Endpoint to = dir == 0 ? c.a.local : c.b.local;
          std::vector<std::vector<uint8_t>> originals;
          std::vector<rte_mbuf*> frames;
          for (int i = 0; i < 6; ++i) {
            std::vector<uint8_t> p =
                i == 5 ? RtcpReceiverReport(0x4646 + dir)
                       : RtpPacket(static_cast<uint16_t>(700 + i), 0x4646 + dir,
                                   static_cast<size_t>(159 + i), static_cast<uint8_t>(i));
            originals.push_back(p);
            if (sender != nullptr) {
              ASSERT_EQ(i == 5 ? sender->ProtectRtcp(p) : sender->ProtectRtp(p),
                        srtp_err_status_ok);
            }
            frames.push_back(Frame(Mac(dir == 0 ? 0x12 : 0x22),
                                   dir == 0 ? c.a.port_mac : c.b.port_mac, from, to, p));
          }
          Send(frames);
          std::vector<Received> got = Drain(dir == 0 ? port_b : port_a);
          ASSERT_EQ(got.size(), originals.size());
          for (size_t i = 0; i < got.size(); ++i) {
            const Received& r = got[i];
            ASSERT_EQ(r.frame.kind, packet::FrameKind::kUdp)
                << "packet " << i << ": " << packet::ParseErrorName(r.frame.error);
            EXPECT_EQ(r.frame.src, dir == 0 ? c.b.local : c.a.local);
            EXPECT_EQ(r.frame.dst, dir == 0 ? phone_b : phone_a);
            EXPECT_EQ(r.dst_mac, Mac(dir == 0 ? 0x22 : 0x12));
            if (offload) {
              EXPECT_EQ(r.l3_len, dir == 0 ? 40u : 20u);
              EXPECT_EQ(r.udp_checksum_as_sent,
                        packet::UdpPseudoHeaderSum(r.frame.src.ip, r.frame.dst.ip,
                                                   8 + r.frame.payload_len));
            }
            std::vector<uint8_t> p = r.payload;
            if (receiver != nullptr) {
              ASSERT_EQ(i == 5 ? receiver->UnprotectRtcp(p) : receiver->UnprotectRtp(p),
                        srtp_err_status_ok)
                  << "packet " << i;
            }
            EXPECT_EQ(p, originals[i]) << "packet " << i;
          }
        }
        c.session->Unpublish(*table_);
        table_->Synchronize();
      }
    }
  }
  EXPECT_EQ(worker_->counters().total_drops(), 0u);
}

TEST_F(PipelineTest, LearnsPeersFromAuthenticatedPacketsOnly) {
  std::mt19937 rng(11);
  Call& c = Keep(MakeCall(crypto::Suite::kAesCm128HmacSha1_80, crypto::Suite::kAeadAes128Gcm,
                          /*give_remotes=*/false, rng));
  Publish(c);
  const Endpoint phone_a = Ep("10.0.1.2:40000"), phone_b = Ep("10.0.2.2:40002");
  const Endpoint spoofer = Ep("10.0.1.66:5060");
  // A forged packet (bad tag) from a spoofer: dropped, not learned.
  std::vector<uint8_t> forged = RtpPacket(100, 0xaaaa, 160, 1);
  ASSERT_EQ(c.a_send->ProtectRtp(forged), srtp_err_status_ok);
  forged[20] ^= 1;
  Send({Frame(Mac(0x66), c.a.port_mac, spoofer, c.a.local, forged)});
  EXPECT_EQ(Drops(DropReason::kAuthFailed), 1u);
  EXPECT_FALSE(c.session->remote(0).known);

  // Phone B sends first: its peer is learned, but A's is unknown, so no way out.
  std::vector<uint8_t> from_b = RtpPacket(7, 0xbbbb, 160, 2);
  ASSERT_EQ(c.b_send->ProtectRtp(from_b), srtp_err_status_ok);
  Send({Frame(Mac(0x22), c.b.port_mac, phone_b, c.b.local, from_b)});
  EXPECT_EQ(Drops(DropReason::kNoRemote), 1u);
  EXPECT_TRUE(c.session->remote(1).known);
  EXPECT_EQ(c.session->remote(1).endpoint, phone_b);

  // Phone A's genuine packet is learned and relayed to the learned B.
  std::vector<uint8_t> from_a = RtpPacket(101, 0xaaaa, 160, 3);
  const std::vector<uint8_t> original = from_a;
  ASSERT_EQ(c.a_send->ProtectRtp(from_a), srtp_err_status_ok);
  Send({Frame(Mac(0x12), c.a.port_mac, phone_a, c.a.local, from_a)});
  EXPECT_EQ(c.session->remote(0).endpoint, phone_a);
  std::vector<Received> got = Drain(port_b);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].frame.dst, phone_b);
  EXPECT_EQ(got[0].dst_mac, Mac(0x22)) << "next hop learned from the frame";
  std::vector<uint8_t> p = got[0].payload;
  ASSERT_EQ(c.b_recv->UnprotectRtp(p), srtp_err_status_ok);
  EXPECT_EQ(p, original);

  // A replay of phone A's packet from the spoofer's address: refused as a
  // replay, and the peer stays where it is.
  Send({Frame(Mac(0x66), c.a.port_mac, spoofer, c.a.local, from_a)});
  EXPECT_EQ(Drops(DropReason::kReplayed), 1u);
  EXPECT_EQ(c.session->remote(0).endpoint, phone_a);
  EXPECT_EQ(c.session->flow(0).counters.replay_drops.load(), 1u);
  EXPECT_EQ(c.session->flow(0).counters.auth_failures.load(), 1u);
}

TEST_F(PipelineTest, NatRebindingMovesThePeerAfterSeveralAuthenticatedPackets) {
  std::mt19937 rng(13);
  Call& c = Keep(MakeCall(crypto::Suite::kAesCm128HmacSha1_80,
                          crypto::Suite::kAesCm128HmacSha1_80, /*give_remotes=*/true, rng));
  Publish(c);
  const Endpoint rebound = Ep("10.0.1.2:41000");
  for (int i = 0; i < 3; ++i) {
    std::vector<uint8_t> p = RtpPacket(static_cast<uint16_t>(200 + i), 0xaaaa, 160, 0);
    ASSERT_EQ(c.a_send->ProtectRtp(p), srtp_err_status_ok);
    Send({Frame(Mac(0x12), c.a.port_mac, rebound, c.a.local, p)});
    EXPECT_EQ(c.session->remote(0).endpoint, i < 2 ? *c.a.remote : rebound) << i;
  }
  EXPECT_EQ(Drain(port_b).size(), 3u) << "media keeps flowing while the move is confirmed";
  EXPECT_EQ(c.session->flow(0).counters.remote_changes.load(), 1u);
}

TEST_F(PipelineTest, PlainLegLearnsFirstSourceAndRefusesOthers) {
  std::mt19937 rng(17);
  Call& c = Keep(MakeCall(std::nullopt, crypto::Suite::kAesCm128HmacSha1_80, false, rng));
  c.b.remote = Ep("10.0.2.2:40002");
  c.b.remote_mac = Mac(0x22);
  c.session = *session::Session::Create(2, c.a, c.b, session::SessionOptions{});
  Publish(c);
  Send({Frame(Mac(0x12), c.a.port_mac, Ep("10.0.1.2:40000"), c.a.local, RtpPacket(1, 5, 160, 0))});
  EXPECT_EQ(c.session->remote(0).endpoint, Ep("10.0.1.2:40000"));
  Send({Frame(Mac(0x66), c.a.port_mac, Ep("10.0.1.66:40000"), c.a.local, RtpPacket(2, 5, 160, 0))});
  EXPECT_EQ(Drops(DropReason::kWrongSource), 1u);
  EXPECT_EQ(Drain(port_b).size(), 1u);
}

TEST_F(PipelineTest, SeparateRtcpPortCarriesOnlyRtcp) {
  std::mt19937 rng(19);
  Call& c = Keep(MakeCall(crypto::Suite::kAesCm128HmacSha1_80,
                          crypto::Suite::kAesCm128HmacSha1_80, true, rng, /*a_rtcp_mux=*/false));
  Publish(c);
  Endpoint rtcp_local = c.a.local;
  rtcp_local.port++;
  Endpoint phone_rtcp = *c.a.remote;
  phone_rtcp.port++;
  std::vector<uint8_t> rr = RtcpReceiverReport(0xaaaa);
  const std::vector<uint8_t> original = rr;
  ASSERT_EQ(c.a_send->ProtectRtcp(rr), srtp_err_status_ok);
  Send({Frame(Mac(0x12), c.a.port_mac, phone_rtcp, rtcp_local, rr)});
  std::vector<Received> got = Drain(port_b);
  ASSERT_EQ(got.size(), 1u);
  std::vector<uint8_t> p = got[0].payload;
  ASSERT_EQ(c.b_recv->UnprotectRtcp(p), srtp_err_status_ok);
  EXPECT_EQ(p, original);
  // RTP on the RTCP port is refused.
  std::vector<uint8_t> rtp = RtpPacket(1, 0xaaaa, 160, 0);
  ASSERT_EQ(c.a_send->ProtectRtp(rtp), srtp_err_status_ok);
  Send({Frame(Mac(0x12), c.a.port_mac, phone_rtcp, rtcp_local, rtp)});
  EXPECT_EQ(Drops(DropReason::kRtcpOnRtpPort), 1u);
}

// A packet whose next hop is not resolved yet is not dropped: it goes to
// the hold ring with every header written but the destination MAC, and the
// port it leaves by in mbuf->port; the flow keeps no headers from it. Once
// the next hop is known, packets go out directly; with the ring full, or
// without one, a packet is dropped as no_neighbor.
TEST_F(PipelineTest, APacketWithoutANextHopWaitsInTheHoldRing) {
  std::mt19937 rng(43);
  Call c = MakeCall(crypto::Suite::kAesCm128HmacSha1_80, crypto::Suite::kAesCm128HmacSha1_80,
                    /*give_remotes=*/true, rng);
  c.b.remote_mac.reset();
  c.session = *session::Session::Create(4, c.a, c.b, session::SessionOptions{});
  Call& call = Keep(std::move(c));
  Publish(call);
  auto send_rtp = [&](uint16_t seq) {
    std::vector<uint8_t> p = RtpPacket(seq, 0xaaaa, 160, static_cast<uint8_t>(seq));
    EXPECT_EQ(call.a_send->ProtectRtp(p), srtp_err_status_ok);
    Send({Frame(Mac(0x12), call.a.port_mac, *call.a.remote, call.a.local, p)});
  };
  // No ring: dropped.
  send_rtp(1);
  EXPECT_TRUE(Drain(port_b).empty());
  EXPECT_EQ(Drops(DropReason::kNoNeighbor), 1u);

  rte_ring* hold = rte_ring_create("worker_neighbor_hold", 4, static_cast<int>(rte_socket_id()),
                                   RING_F_SC_DEQ);
  ASSERT_NE(hold, nullptr);
  WorkerConfig config = worker_->config();
  config.neighbor_hold = hold;
  worker_ = std::make_unique<Worker>(config);
  // The ring holds 3 (a ring of 4): the fourth is dropped.
  for (uint16_t seq = 2; seq <= 5; ++seq) send_rtp(seq);
  EXPECT_TRUE(Drain(port_b).empty());
  EXPECT_EQ(worker_->counters().neighbor_held.load(), 3u);
  EXPECT_EQ(Drops(DropReason::kNoNeighbor), 1u);
  for (uint16_t seq = 2; seq <= 4; ++seq) {
    void* held = nullptr;
    ASSERT_EQ(rte_ring_dequeue(hold, &held), 0);
    rte_mbuf* m = static_cast<rte_mbuf*>(held);
    EXPECT_EQ(m->port, port_b);
    const Received r = Wire(m);
    EXPECT_EQ(r.frame.kind, packet::FrameKind::kUdp);
    EXPECT_EQ(r.dst_mac, MacAddress{}) << "the slow path writes it";
    EXPECT_EQ(r.src_mac, call.b.port_mac);
    EXPECT_EQ(r.frame.src, call.b.local);
    EXPECT_EQ(r.frame.dst, *call.b.remote);
    std::vector<uint8_t> p = r.payload;
    ASSERT_EQ(call.b_recv->UnprotectRtp(p), srtp_err_status_ok) << "seq " << seq;
    EXPECT_EQ(p, RtpPacket(seq, 0xaaaa, 160, static_cast<uint8_t>(seq)));
  }
  // Resolved: straight out, to the next hop (no headers were kept from the
  // held packets).
  call.session->remote_slot(1).SetResolvedMac(Mac(0x33));
  send_rtp(6);
  const std::vector<Received> got = Drain(port_b);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].dst_mac, Mac(0x33));
  EXPECT_EQ(worker_->counters().neighbor_held.load(), 3u);
  EXPECT_EQ(rte_ring_count(hold), 0u);
  rte_ring_free(hold);
}

// The headers a flow keeps for its way out follow every change: a peer the
// control plane moves, a next hop resolved anew, a peer that moves behind a
// NAT, and RTCP to a separate port in between, which has headers of its own.
TEST_F(PipelineTest, OutgoingHeadersFollowThePeerAndItsNextHop) {
  std::mt19937 rng(29);
  Call c = MakeCall(crypto::Suite::kAesCm128HmacSha1_80, crypto::Suite::kAesCm128HmacSha1_80,
                    /*give_remotes=*/true, rng);
  c.b.remote_mac.reset();  // B's next hop from ARP, not from the controller
  c.b.rtcp_mux = false;
  c.session = *session::Session::Create(3, c.a, c.b, session::SessionOptions{});
  Call& call = Keep(std::move(c));
  Publish(call);
  uint16_t seq = 300;
  // One RTP packet from phone A; what left on port b.
  auto relay_rtp = [&]() {
    std::vector<uint8_t> p = RtpPacket(seq++, 0xaaaa, 160, 0);
    EXPECT_EQ(call.a_send->ProtectRtp(p), srtp_err_status_ok);
    Send({Frame(Mac(0x12), call.a.port_mac, *call.a.remote, call.a.local, p)});
    std::vector<Received> got = Drain(port_b);
    EXPECT_EQ(got.size(), 1u);
    return got.empty() ? Received{} : got[0];
  };
  auto relay_rtcp = [&]() {
    std::vector<uint8_t> rr = RtcpReceiverReport(0xaaaa);
    EXPECT_EQ(call.a_send->ProtectRtcp(rr), srtp_err_status_ok);
    Send({Frame(Mac(0x12), call.a.port_mac, *call.a.remote, call.a.local, rr)});
    std::vector<Received> got = Drain(port_b);
    EXPECT_EQ(got.size(), 1u);
    return got.empty() ? Received{} : got[0];
  };
  auto expect_to = [&](const Received& r, const Endpoint& to, const MacAddress& mac,
                       uint16_t from_port, const char* what) {
    EXPECT_EQ(r.frame.kind, packet::FrameKind::kUdp) << what;
    EXPECT_EQ(r.frame.dst, to) << what;
    EXPECT_EQ(r.dst_mac, mac) << what;
    EXPECT_EQ(r.frame.src.port, from_port) << what;
  };
  const Endpoint b_peer = *call.b.remote;
  Endpoint b_rtcp = b_peer;
  b_rtcp.port++;
  const uint16_t b_port = call.b.local.port;

  // No next hop yet: counted, nothing sent.
  std::vector<uint8_t> p = RtpPacket(seq++, 0xaaaa, 160, 0);
  ASSERT_EQ(call.a_send->ProtectRtp(p), srtp_err_status_ok);
  Send({Frame(Mac(0x12), call.a.port_mac, *call.a.remote, call.a.local, p)});
  EXPECT_EQ(Drops(DropReason::kNoNeighbor), 1u);

  call.session->remote_slot(1).SetResolvedMac(Mac(0x31));
  expect_to(relay_rtp(), b_peer, Mac(0x31), b_port, "resolved");
  expect_to(relay_rtp(), b_peer, Mac(0x31), b_port, "again, from the kept headers");
  expect_to(relay_rtcp(), b_rtcp, Mac(0x31), b_port + 1, "RTCP to its own port");
  expect_to(relay_rtp(), b_peer, Mac(0x31), b_port, "RTP after RTCP");

  call.session->remote_slot(1).SetResolvedMac(Mac(0x32));
  expect_to(relay_rtp(), b_peer, Mac(0x32), b_port, "next hop resolved anew");

  // The control plane moves B's peer (a re-INVITE with a new address).
  session::RemoteView moved = call.session->remote(1);
  moved.endpoint = Ep("10.0.2.9:40100");
  moved.has_mac = true;
  moved.mac = Mac(0x33);
  call.session->remote_slot(1).Store(moved);
  expect_to(relay_rtp(), Ep("10.0.2.9:40100"), Mac(0x33), b_port, "moved by the controller");

  // Phone B moves behind its NAT: learned after three authenticated packets,
  // and A's media follows it there.
  const Endpoint rebound = Ep("10.0.2.9:41111");
  for (int i = 0; i < 3; ++i) {
    std::vector<uint8_t> q = RtpPacket(static_cast<uint16_t>(900 + i), 0xbbbb, 160, 0);
    ASSERT_EQ(call.b_send->ProtectRtp(q), srtp_err_status_ok);
    Send({Frame(Mac(0x44), call.b.port_mac, rebound, call.b.local, q)});
  }
  Drain(port_a);
  EXPECT_EQ(call.session->remote(1).endpoint, rebound);
  expect_to(relay_rtp(), rebound, Mac(0x44), b_port, "moved behind a NAT");
  Endpoint rebound_rtcp = rebound;
  rebound_rtcp.port++;
  expect_to(relay_rtcp(), rebound_rtcp, Mac(0x44), b_port + 1, "RTCP after the move");
  EXPECT_EQ(worker_->counters().total_drops(), 1u);
}

// [limits] leg_max_pps: a burst's worth passes at once, the rest of a flood
// is counted and dropped; forged packets do not spend the allowance; after a
// pause the leg carries packets again.
TEST_F(PipelineTest, LegPacketRateIsLimitedAfterAuthentication) {
  std::mt19937 rng(23);
  Call& c = Keep(MakeCall(crypto::Suite::kAesCm128HmacSha1_80,
                          crypto::Suite::kAesCm128HmacSha1_80, true, rng));
  // 100 packets a second: a tenth of a second's worth is under the minimum
  // burst, so exactly kMinBurst pass back to back.
  c.session->SetRateLimit(100, rte_get_tsc_hz());
  Publish(c);
  constexpr uint32_t kBurst = session::policing::kMinBurst;
  uint16_t seq = 1;
  auto burst = [&](int n, bool forged) {
    std::vector<rte_mbuf*> frames;
    for (int i = 0; i < n; ++i) {
      std::vector<uint8_t> p = RtpPacket(seq++, 0xaaaa, 160, 0);
      ASSERT_EQ(c.a_send->ProtectRtp(p), srtp_err_status_ok);
      if (forged) p[20] ^= 1;
      frames.push_back(Frame(Mac(0x12), c.a.port_mac, *c.a.remote, c.a.local, p));
    }
    Send(frames);
  };
  // Forged packets first: counted as such, the allowance untouched.
  burst(Worker::kMaxBurst, /*forged=*/true);
  EXPECT_EQ(Drops(DropReason::kAuthFailed), Worker::kMaxBurst);
  EXPECT_EQ(Drops(DropReason::kRateLimited), 0u);
  const uint64_t start = rte_get_tsc_cycles();
  for (int b = 0; b < 4; ++b) burst(Worker::kMaxBurst, false);
  const double seconds =
      static_cast<double>(rte_get_tsc_cycles() - start) / static_cast<double>(rte_get_tsc_hz());
  const uint64_t relayed = Drain(port_b).size();
  EXPECT_GE(relayed, kBurst);
  EXPECT_LE(relayed, kBurst + 1 + static_cast<uint64_t>(seconds * 100));
  EXPECT_EQ(relayed + Drops(DropReason::kRateLimited), 4u * Worker::kMaxBurst);
  EXPECT_EQ(c.session->flow(0).counters.other_drops.load(), Drops(DropReason::kRateLimited));
  // A quiet 50 ms refills five packets' worth.
  rte_delay_ms(50);
  burst(5, false);
  EXPECT_EQ(Drain(port_b).size(), 5u);
  // The other direction has its own allowance.
  std::vector<uint8_t> p = RtpPacket(1, 0xbbbb, 160, 0);
  ASSERT_EQ(c.b_send->ProtectRtp(p), srtp_err_status_ok);
  Send({Frame(Mac(0x22), c.b.port_mac, *c.b.remote, c.b.local, p)});
  EXPECT_EQ(Drain(port_a).size(), 1u);
}

// What reaches a leg but is not RTP or RTCP is counted on that leg too.
TEST_F(PipelineTest, NonMediaAtALegCountsAgainstTheLeg) {
  std::mt19937 rng(29);
  Call& c = Keep(MakeCall(crypto::Suite::kAesCm128HmacSha1_80,
                          crypto::Suite::kAesCm128HmacSha1_80, true, rng));
  Publish(c);
  std::vector<uint8_t> stun(20, 0);
  stun[1] = 1;  // binding request
  std::vector<uint8_t> dtls(40, 0x16);
  std::vector<uint8_t> other(30, 0x08);
  Send({Frame(Mac(0x12), c.a.port_mac, *c.a.remote, c.a.local, stun),
        Frame(Mac(0x12), c.a.port_mac, *c.a.remote, c.a.local, dtls),
        Frame(Mac(0x12), c.a.port_mac, *c.a.remote, c.a.local, other)});
  EXPECT_EQ(Drops(DropReason::kStun), 1u);
  EXPECT_EQ(Drops(DropReason::kDtls), 1u);
  EXPECT_EQ(Drops(DropReason::kNotRtp), 1u);
  EXPECT_EQ(c.session->flow(0).counters.other_drops.load(), 3u);
  EXPECT_EQ(Drain(port_b).size(), 0u);
}

// A checksum the NIC reports good is not checked again; one it reports bad,
// or does not report, is checked in software and a wrong one dropped. A
// plain payload keeps its checksum's verdict through the relay (the new
// checksum follows from the old one): a bad UDP checksum the NIC let through
// is still bad where it arrives.
TEST_F(PipelineTest, ChecksumsTheNicCheckedAreTrusted) {
  std::mt19937 rng(31);
  Call& c = Keep(MakeCall(std::nullopt, std::nullopt, /*give_remotes=*/true, rng));
  Publish(c);
  constexpr uint32_t kIpChecksum = 14 + 10, kUdpChecksum = 14 + 20 + 6;
  auto corrupted = [&](uint16_t seq, uint32_t offset, uint64_t ol_flags) {
    rte_mbuf* m = Frame(*c.a.remote_mac, c.a.port_mac, *c.a.remote, c.a.local,
                        RtpPacket(seq, 0x4242, 160, 1));
    rte_pktmbuf_mtod(m, uint8_t*)[offset] ^= 0x5a;
    m->ol_flags = ol_flags;
    return m;
  };
  const uint64_t good = RTE_MBUF_F_RX_IP_CKSUM_GOOD | RTE_MBUF_F_RX_L4_CKSUM_GOOD;
  Send({corrupted(1, kUdpChecksum, 0),
        corrupted(2, kUdpChecksum, RTE_MBUF_F_RX_IP_CKSUM_GOOD | RTE_MBUF_F_RX_L4_CKSUM_BAD),
        corrupted(3, kIpChecksum, good), corrupted(4, kUdpChecksum, good)});
  const auto& errors = worker_->counters().parse_errors;
  EXPECT_EQ(errors[static_cast<size_t>(packet::ParseError::kBadUdpChecksum)].load(), 2u);
  EXPECT_EQ(errors[static_cast<size_t>(packet::ParseError::kBadIpChecksum)].load(), 0u);
  std::vector<Received> got = Drain(port_b);
  ASSERT_EQ(got.size(), 2u) << "the two packets the NIC vouched for are relayed";
  ASSERT_EQ(got[0].frame.kind, packet::FrameKind::kUdp);
  ASSERT_GE(got[0].payload.size(), 4u);
  EXPECT_EQ(got[0].payload[3], 3) << "new IPv4 header, valid checksums";
  EXPECT_EQ(got[1].frame.kind, packet::FrameKind::kDrop);
  EXPECT_EQ(got[1].frame.error, packet::ParseError::kBadUdpChecksum);
}

// On a port whose NIC fills in checksums the worker leaves them to it: the
// frame goes out with the TX flags and header lengths DPDK asks for and only
// the pseudo-header sum in the UDP checksum, and is right once the NIC has
// done its part. SRTP re-encrypted and plain forwarded alike (plain keeps its
// old checksum's sum otherwise); a NIC that does the IPv4 header only gets a
// software UDP checksum.
TEST_F(PipelineTest, ChecksumsAreLeftToANicThatFillsThemIn) {
  WorkerConfig config = worker_->config();
  config.tx_checksum_offload.resize(std::max(port_a, port_b) + 1);
  config.tx_checksum_offload[port_b] = {.ipv4_header = true, .udp = true};
  config.tx_checksum_offload[port_a] = {.ipv4_header = true, .udp = false};
  worker_ = std::make_unique<Worker>(config);
  std::mt19937 rng(37);
  for (const auto& suite : {std::optional(crypto::Suite::kAesCm128HmacSha1_80),
                            std::optional<crypto::Suite>()}) {
    SCOPED_TRACE(Name(suite));
    Call& c = Keep(MakeCall(suite, suite, /*give_remotes=*/true, rng));
    Publish(c);
    for (int dir = 0; dir < 2; ++dir) {
      LibsrtpPeer* sender = dir == 0 ? c.a_send.get() : c.b_send.get();
      LibsrtpPeer* receiver = dir == 0 ? c.b_recv.get() : c.a_recv.get();
      std::vector<std::vector<uint8_t>> originals;
      std::vector<rte_mbuf*> frames;
      for (uint16_t seq = 1; seq <= 4; ++seq) {
        // Odd and even payload lengths.
        std::vector<uint8_t> p = RtpPacket(seq, 0x5150 + dir, 159 + seq, static_cast<uint8_t>(seq));
        originals.push_back(p);
        if (sender != nullptr) {
          ASSERT_EQ(sender->ProtectRtp(p), srtp_err_status_ok);
        }
        frames.push_back(dir == 0 ? Frame(*c.a.remote_mac, c.a.port_mac, *c.a.remote, c.a.local, p)
                                  : Frame(*c.b.remote_mac, c.b.port_mac, *c.b.remote, c.b.local, p));
      }
      Send(frames);
      std::vector<Received> got = Drain(dir == 0 ? port_b : port_a);
      ASSERT_EQ(got.size(), originals.size());
      for (size_t i = 0; i < got.size(); ++i) {
        const Received& r = got[i];
        if (dir == 0) {
          EXPECT_EQ(r.tx_flags,
                    RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_UDP_CKSUM);
        } else {
          EXPECT_EQ(r.tx_flags, RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM);
        }
        EXPECT_EQ(r.l2_len, 14u);
        EXPECT_EQ(r.l3_len, 20u);
        // As sent, the IPv4 header checksum is the NIC's to write.
        EXPECT_EQ(r.as_sent.error, packet::ParseError::kBadIpChecksum);
        ASSERT_EQ(r.frame.kind, packet::FrameKind::kUdp) << packet::ParseErrorName(r.frame.error);
        if (dir == 0) {
          // What rte_ipv4_phdr_cksum() gives, for the NIC to start from.
          EXPECT_EQ(r.udp_checksum_as_sent,
                    packet::UdpPseudoHeaderSum(r.frame.src.ip, r.frame.dst.ip,
                                               8 + r.frame.payload_len));
        } else {
          EXPECT_EQ(r.as_sent_udp.kind, packet::FrameKind::kUdp)
              << packet::ParseErrorName(r.as_sent_udp.error);
        }
        std::vector<uint8_t> p = r.payload;
        if (receiver != nullptr) {
          ASSERT_EQ(receiver->UnprotectRtp(p), srtp_err_status_ok);
        }
        EXPECT_EQ(p, originals[i]) << "packet " << i;
      }
    }
    c.session->Unpublish(*table_);
    table_->Synchronize();
  }
  EXPECT_EQ(worker_->counters().total_drops(), 0u);
}

TEST_F(PipelineTest, UnknownDestinationAndGarbageAreCountedDrops) {
  Send({Frame(Mac(1), Mac(2), Ep("10.0.9.9:1000"), Ep("10.0.1.1:31000"), RtpPacket(1, 1, 20, 0))});
  EXPECT_EQ(Drops(DropReason::kNoFlow), 1u);
  rte_mbuf* runt = rte_pktmbuf_alloc(pool);
  std::memset(rte_pktmbuf_append(runt, 10), 0xff, 10);
  Send({runt});
  EXPECT_EQ(Drops(DropReason::kMalformedFrame), 1u);
  EXPECT_EQ(worker_->counters().rx_packets.load(), 2u);
  EXPECT_EQ(rte_mempool_in_use_count(pool), 0u) << "every mbuf freed";
}

// Receive relays a burst three calls later (its frames loaded first, then
// parsed and looked up, then its peers and contexts loaded), so each burst
// waits for memory while an older one keeps the core busy; Drain sends what
// it still holds, parsing the newest burst first. Packets of every flow
// leave in the order they came, as ProcessBurst would send them.
TEST_F(PipelineTest, ReceiveRelaysThreeBurstsBehindInOrderAndDrainSendsTheRest) {
  std::mt19937 rng(11);
  const std::vector<std::pair<std::optional<crypto::Suite>, std::optional<crypto::Suite>>> kinds =
      {{crypto::Suite::kAesCm128HmacSha1_80, crypto::Suite::kAeadAes128Gcm},
       {crypto::Suite::kAesCm128HmacSha1_80, std::nullopt},
       {std::nullopt, std::nullopt}};
  std::vector<Call*> calls;
  for (size_t i = 0; i < kinds.size(); ++i) {
    Call& c = Keep(MakeCall(kinds[i].first, kinds[i].second, /*give_remotes=*/true, rng,
                            /*a_rtcp_mux=*/true, static_cast<int>(i)));
    Publish(c);
    calls.push_back(&c);
  }
  constexpr int kBursts = 6;
  constexpr int kBehind = Worker::kPipelineDepth - 1;
  static_assert(kBehind == 3 && kBursts > kBehind);
  constexpr int kPerCall = 8;
  const size_t burst_size = kPerCall * calls.size();
  std::vector<std::vector<std::vector<uint8_t>>> sent(calls.size());
  std::vector<Received> got;
  for (int b = 0; b < kBursts; ++b) {
    std::vector<rte_mbuf*> frames;
    for (int j = 0; j < kPerCall; ++j) {
      for (size_t ci = 0; ci < calls.size(); ++ci) {
        Call& c = *calls[ci];
        // Across the sequence number wrap, so the rollover counter moves.
        const auto seq = static_cast<uint16_t>(65530 + b * kPerCall + j);
        std::vector<uint8_t> p =
            RtpPacket(seq, static_cast<uint32_t>(0x5000 + ci), 160, static_cast<uint8_t>(seq));
        sent[ci].push_back(p);
        if (c.a_send) {
          ASSERT_EQ(c.a_send->ProtectRtp(p), srtp_err_status_ok);
        }
        frames.push_back(Frame(*c.a.remote_mac, c.a.port_mac, *c.a.remote, c.a.local, p));
      }
    }
    worker_->Receive(frames.data(), static_cast<uint16_t>(frames.size()));
    worker_->FlushTx();
    EXPECT_EQ(worker_->held_packets(), std::min(b + 1, kBehind) * burst_size) << "after burst " << b;
    std::vector<Received> out = Drain(port_b);
    EXPECT_EQ(out.size(), b >= kBehind ? burst_size : 0u) << "after burst " << b;
    for (Received& r : out) got.push_back(std::move(r));
  }
  worker_->Drain();
  worker_->FlushTx();
  EXPECT_EQ(worker_->held_packets(), 0u);
  for (Received& r : Drain(port_b)) got.push_back(std::move(r));
  ASSERT_EQ(got.size(), kBursts * burst_size);

  std::vector<size_t> next(calls.size(), 0);
  for (const Received& r : got) {
    ASSERT_EQ(r.frame.kind, packet::FrameKind::kUdp);
    size_t ci = 0;
    while (ci < calls.size() && r.frame.dst != *calls[ci]->b.remote) ++ci;
    ASSERT_LT(ci, calls.size()) << "sent to " << r.frame.dst.ToString();
    std::vector<uint8_t> p = r.payload;
    if (calls[ci]->b_recv) {
      ASSERT_EQ(calls[ci]->b_recv->UnprotectRtp(p), srtp_err_status_ok);
    }
    ASSERT_LT(next[ci], sent[ci].size());
    EXPECT_EQ(p, sent[ci][next[ci]]) << "call " << ci << ", packet " << next[ci];
    ++next[ci];
  }
  EXPECT_EQ(worker_->counters().rx_packets.load(), kBursts * burst_size);
  EXPECT_EQ(worker_->counters().tx_packets.load(), kBursts * burst_size);
  EXPECT_EQ(worker_->counters().total_drops(), 0u);
}

// A worker reports an RCU quiescent state only through Quiesce, which first
// relays what Receive holds: after a report no held packet refers to a flow,
// so a flow removed before it can be freed once every worker has reported.
// What was looked up before the removal is relayed; the newest burst, not
// yet looked up, finds no flow.
TEST_F(PipelineTest, QuiesceRelaysWhatIsHeldBeforeItReports) {
  std::mt19937 rng(13);
  Call& c = Keep(MakeCall(crypto::Suite::kAesCm128HmacSha1_80, std::nullopt,
                          /*give_remotes=*/true, rng));
  Publish(c);
  constexpr int kBursts = Worker::kPipelineDepth - 1;
  constexpr int kPerBurst = 10;
  std::vector<rte_mbuf*> frames;
  for (int i = 0; i < kBursts * kPerBurst; ++i) {
    std::vector<uint8_t> p = RtpPacket(static_cast<uint16_t>(i), 0x7000, 160, 0);
    ASSERT_EQ(c.a_send->ProtectRtp(p), srtp_err_status_ok);
    frames.push_back(Frame(*c.a.remote_mac, c.a.port_mac, *c.a.remote, c.a.local, p));
  }
  table_->RegisterReader(0);
  for (int b = 0; b < kBursts; ++b) worker_->Receive(frames.data() + b * kPerBurst, kPerBurst);
  EXPECT_EQ(worker_->held_packets(), static_cast<uint32_t>(kBursts * kPerBurst));
  EXPECT_EQ(Drain(port_b).size(), 0u);
  // The control plane removes the call and asks whether every worker has
  // passed a quiescent state since.
  c.session->Unpublish(*table_);
  const uint64_t token = rte_rcu_qsbr_start(table_->qsbr());
  EXPECT_EQ(rte_rcu_qsbr_check(table_->qsbr(), token, false), 0);
  worker_->Quiesce();
  EXPECT_EQ(rte_rcu_qsbr_check(table_->qsbr(), token, false), 1);
  EXPECT_EQ(worker_->held_packets(), 0u);
  constexpr size_t kLookedUp = (kBursts - 1) * kPerBurst;
  EXPECT_EQ(Drain(port_b).size(), kLookedUp) << "relayed and sent before the report";
  table_->UnregisterReader(0);
  c.session.reset();  // freed: nothing refers to it
  EXPECT_EQ(worker_->counters().tx_packets.load(), kLookedUp);
  EXPECT_EQ(Drops(DropReason::kNoFlow), static_cast<uint64_t>(kPerBurst));
  EXPECT_EQ(rte_mempool_in_use_count(pool), 0u) << "every mbuf sent or freed";
}

// Worker::Run, pipelined, while the control plane removes and frees a call
// mid-stream: what was looked up before is relayed in order, what comes
// after is refused as unknown, nothing is lost or leaked. (Under
// AddressSanitizer a packet read after its flow was freed would show here.)
TEST_F(PipelineTest, RunRelaysInOrderWhileACallIsRemovedMidStream) {
  rte_ring* ring = rte_ring_create("run_handoff", 4096, static_cast<int>(rte_socket_id()),
                                   RING_F_SC_DEQ);
  ASSERT_NE(ring, nullptr);
  // Fed from its hand-off ring (as another worker would feed it), sending on
  // port b; a report every other poll.
  WorkerConfig config;
  config.table = table_.get();
  config.backend = backend_.get();
  config.handoff = {ring};
  config.quiescent_every = 2;
  worker_ = std::make_unique<Worker>(config);

  std::mt19937 rng(12);
  Call& c = Keep(MakeCall(crypto::Suite::kAesCm128HmacSha1_80,
                          crypto::Suite::kAesCm128HmacSha1_80, /*give_remotes=*/true, rng));
  Publish(c);
  // 600 frames, then 400 more once the call is gone: fewer than port b's
  // queue holds, so nothing is lost to a full TX queue whenever this thread
  // reads it.
  constexpr int kFrames = 1000;
  constexpr int kBefore = 600;
  std::vector<rte_mbuf*> frames;
  for (int i = 0; i < kFrames; ++i) {
    std::vector<uint8_t> p = RtpPacket(static_cast<uint16_t>(i), 0x6000, 160, 0);
    ASSERT_EQ(c.a_send->ProtectRtp(p), srtp_err_status_ok);
    rte_mbuf* m = Frame(*c.a.remote_mac, c.a.port_mac, *c.a.remote, c.a.local, p);
    ASSERT_NE(m, nullptr);
    frames.push_back(m);
  }
  // Queued at once: every poll finds a burst, so the worker holds some at
  // each report until the queue runs dry.
  ASSERT_EQ(rte_ring_enqueue_bulk(ring, reinterpret_cast<void**>(frames.data()), kBefore,
                                  nullptr),
            static_cast<unsigned>(kBefore));
  std::atomic<bool> stop{false};
  std::thread worker([&] { worker_->Run(stop); });
  const WorkerCounters& k = worker_->counters();
  bool removed = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!removed && k.rx_packets.load() >= 100) {
      // Mid-stream: out of the table, every worker past a report, freed.
      c.session->Unpublish(*table_);
      table_->Synchronize();
      c.session.reset();
      removed = true;
      ASSERT_EQ(rte_ring_enqueue_bulk(ring, reinterpret_cast<void**>(frames.data() + kBefore),
                                      kFrames - kBefore, nullptr),
                static_cast<unsigned>(kFrames - kBefore));
    }
    if (k.tx_packets.load() + k.total_drops() == static_cast<uint64_t>(kFrames)) break;
    std::this_thread::yield();
  }
  stop = true;
  worker.join();
  std::vector<Received> got = Drain(port_b);
  rte_ring_free(ring);

  EXPECT_TRUE(removed);
  EXPECT_EQ(k.rx_packets.load(), static_cast<uint64_t>(kFrames));
  EXPECT_EQ(worker_->held_packets(), 0u);
  // Relayed until the call went, refused as unknown after.
  EXPECT_GT(k.tx_packets.load(), 0u);
  EXPECT_GE(Drops(DropReason::kNoFlow), static_cast<uint64_t>(kFrames - kBefore));
  EXPECT_EQ(k.tx_packets.load() + Drops(DropReason::kNoFlow), static_cast<uint64_t>(kFrames));
  ASSERT_EQ(got.size(), k.tx_packets.load());
  // What went out is the stream's beginning, in order, as phone B decrypts it.
  for (size_t i = 0; i < got.size(); ++i) {
    std::vector<uint8_t> p = got[i].payload;
    ASSERT_EQ(c.b_recv->UnprotectRtp(p), srtp_err_status_ok) << "packet " << i;
    ASSERT_GE(p.size(), 4u);
    EXPECT_EQ(p[2] << 8 | p[3], static_cast<int>(i));
  }
  EXPECT_EQ(rte_mempool_in_use_count(pool), 0u) << "every mbuf freed";
}


// PollOnce, the loop's body that Run and sluice-bench both call: a poll
// takes what the RX queue holds into the pipeline, a quiet poll relays it,
// and every quiescent_every polls the worker reports quiescence (after
// relaying what it holds).
TEST_F(PipelineTest, PollOnceReceivesRelaysOnAQuietPollAndReportsQuiescence) {
  std::mt19937 rng(31);
  Call& c = Keep(MakeCall(crypto::Suite::kAesCm128HmacSha1_80, std::nullopt,
                          /*give_remotes=*/true, rng));
  Publish(c);
  WorkerConfig config;
  config.table = table_.get();
  config.backend = backend_.get();
  config.rx_queues = {{port_a, 0}};
  config.quiescent_every = 4;
  Worker worker(config);
  worker.Start();
  const uint64_t token = rte_rcu_qsbr_start(table_->qsbr());

  // A net_ring port's TX comes back on its RX: the phone's packets wait in
  // port a's RX queue.
  constexpr int kPackets = 12;
  std::vector<rte_mbuf*> frames;
  std::vector<std::vector<uint8_t>> originals;
  for (int i = 0; i < kPackets; ++i) {
    std::vector<uint8_t> p = RtpPacket(static_cast<uint16_t>(100 + i), 0x5150, 160,
                                       static_cast<uint8_t>(i));
    originals.push_back(p);
    ASSERT_EQ(c.a_send->ProtectRtp(p), srtp_err_status_ok);
    frames.push_back(Frame(*c.a.remote_mac, c.a.port_mac, *c.a.remote, c.a.local, p));
  }
  ASSERT_EQ(rte_eth_tx_burst(port_a, 0, frames.data(), kPackets), kPackets);

  EXPECT_EQ(worker.PollOnce(), static_cast<uint32_t>(kPackets));
  EXPECT_EQ(worker.held_packets(), static_cast<uint32_t>(kPackets)) << "in the pipeline";
  EXPECT_EQ(Drain(port_b).size(), 0u);
  EXPECT_EQ(worker.PollOnce(), 0u);
  EXPECT_EQ(worker.held_packets(), 0u) << "a quiet poll relays what is held";
  std::vector<Received> got = Drain(port_b);
  ASSERT_EQ(got.size(), originals.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].payload, originals[i]) << i;
  EXPECT_GT(worker.counters().busy_cycles.load(), 0u);

  EXPECT_EQ(rte_rcu_qsbr_check(table_->qsbr(), token, false), 0) << "two polls of four";
  worker.PollOnce();
  EXPECT_EQ(rte_rcu_qsbr_check(table_->qsbr(), token, false), 0);
  EXPECT_GT(worker.counters().idle_cycles.load(), 0u);
  worker.PollOnce();
  EXPECT_EQ(rte_rcu_qsbr_check(table_->qsbr(), token, false), 1) << "the fourth poll reports";
  worker.Stop();
  EXPECT_EQ(rte_mempool_in_use_count(pool), 0u);
}

// A flow is found by its local address, which hosts behind any interface
// can aim at: a packet for leg a is relayed only when it came in on leg a's
// port and VLAN, whether the tag is still in the frame or the NIC stripped
// it; the rest is counted as wrong_interface. The port a burst was received
// on is the one given, not what the mbuf held.
TEST_F(PipelineTest, PacketsComeInOnlyThroughTheirLegsInterface) {
  std::mt19937 rng(41);
  Call& c = Keep(MakeCall(crypto::Suite::kAesCm128HmacSha1_80, std::nullopt,
                          /*give_remotes=*/true, rng));
  c.a.vlan = 10;  // leg a: port a, VLAN 10
  auto s = session::Session::Create(1, c.a, c.b, session::SessionOptions{});
  ASSERT_TRUE(s.ok()) << s.status();
  c.session = *std::move(s);
  Publish(c);
  std::vector<uint8_t> plain[3];
  auto packet = [&](uint16_t seq) {
    std::vector<uint8_t> p = RtpPacket(seq, 0x7100, 160, static_cast<uint8_t>(seq));
    plain[seq] = p;
    EXPECT_EQ(c.a_send->ProtectRtp(p), srtp_err_status_ok);
    return p;
  };
  auto frame = [&](const std::vector<uint8_t>& p, uint16_t vlan) {
    return Frame(*c.a.remote_mac, c.a.port_mac, *c.a.remote, c.a.local, p, vlan);
  };
  const std::vector<uint8_t> p1 = packet(1), p2 = packet(2);

  std::vector<rte_mbuf*> wrong = {frame(p1, 10), frame(p1, 10)};
  worker_->ProcessBurst(wrong.data(), 2, port_b);  // VLAN 10, but port b
  std::vector<rte_mbuf*> on_a = {frame(p1, 11), frame(p1, 0)};
  worker_->ProcessBurst(on_a.data(), 2, port_a);  // port a, other VLANs
  worker_->FlushTx();
  EXPECT_EQ(Drops(DropReason::kWrongInterface), 4u);
  EXPECT_EQ(worker_->counters().total_drops(), 4u) << "refused before anything else";
  EXPECT_EQ(session::FlowCounters::Both(c.session->flow(0).counters.rx_packets), 0u);
  EXPECT_TRUE(Drain(port_b).empty());

  // Port a, VLAN 10: in the frame, or stripped by the NIC into the mbuf.
  rte_mbuf* stripped = frame(p2, 0);
  stripped->ol_flags |= RTE_MBUF_F_RX_VLAN | RTE_MBUF_F_RX_VLAN_STRIPPED;
  stripped->vlan_tci = 10;
  std::vector<rte_mbuf*> right = {frame(p1, 10), stripped};
  worker_->ProcessBurst(right.data(), 2, port_a);
  worker_->FlushTx();
  std::vector<Received> got = Drain(port_b);
  ASSERT_EQ(got.size(), 2u) << "not refused as replays: the refused copies changed nothing";
  EXPECT_EQ(got[0].payload, plain[1]);
  EXPECT_EQ(got[1].payload, plain[2]);
  EXPECT_EQ(Drops(DropReason::kWrongInterface), 4u);
  EXPECT_EQ(worker_->counters().total_drops(), 4u);
  EXPECT_EQ(session::FlowCounters::Both(c.session->flow(0).counters.tx_packets), 2u);
  EXPECT_EQ(rte_mempool_in_use_count(pool), 0u);
}

// PollOnce takes the port from the queue it polled: a packet for leg a that
// arrives on port b is refused whatever its mbuf said, and one that arrives
// on port a is relayed.
TEST_F(PipelineTest, PollOnceChecksThePortItPolled) {
  std::mt19937 rng(43);
  Call& c = Keep(MakeCall(std::nullopt, std::nullopt, /*give_remotes=*/true, rng));
  Publish(c);
  WorkerConfig config;
  config.table = table_.get();
  config.backend = backend_.get();
  config.rx_queues = {{port_a, 0}, {port_b, 0}};
  Worker worker(config);
  worker.Start();
  auto send_on = [&](uint16_t rx_port, uint16_t mbuf_port) {
    rte_mbuf* m = Frame(*c.a.remote_mac, c.a.port_mac, *c.a.remote, c.a.local,
                        RtpPacket(1, 0x7200, 160, 0));
    m->port = mbuf_port;
    // A net_ring port's TX comes back on its own RX.
    ASSERT_EQ(rte_eth_tx_burst(rx_port, 0, &m, 1), 1);
    EXPECT_EQ(worker.PollOnce(), 1u);
    EXPECT_EQ(worker.PollOnce(), 0u) << "a quiet poll relays what is held";
  };
  send_on(port_b, port_a);
  EXPECT_EQ(worker.counters().drops[static_cast<size_t>(DropReason::kWrongInterface)].load(), 1u);
  EXPECT_TRUE(Drain(port_b).empty());
  send_on(port_a, port_b);
  EXPECT_EQ(Drain(port_b).size(), 1u);
  EXPECT_EQ(worker.counters().total_drops(), 1u);
  worker.Stop();
  EXPECT_EQ(rte_mempool_in_use_count(pool), 0u);
}

// A packet whose flow another worker owns is checked by the worker that
// polled it, before the hand-off: what came through the wrong interface
// takes no room in the owner's ring; what came through the right one
// carries its port there.
TEST_F(PipelineTest, HandOffPassesOnlyWhatCameThroughTheLegsInterface) {
  std::mt19937 rng(47);
  Call& c = Keep(MakeCall(std::nullopt, std::nullopt, /*give_remotes=*/true, rng));
  c.session->SetOwner(1);
  Publish(c);
  std::array<rte_ring*, 2> rings{};
  for (int i = 0; i < 2; ++i) {
    rings[i] = rte_ring_create(("ingress_handoff" + std::to_string(i)).c_str(), 64,
                               static_cast<int>(rte_socket_id()), RING_F_SC_DEQ);
    ASSERT_NE(rings[i], nullptr);
  }
  WorkerConfig config;
  config.table = table_.get();
  config.backend = backend_.get();
  config.handoff = {rings[0], rings[1]};
  Worker poller(config);
  auto frame = [&] {
    return Frame(*c.a.remote_mac, c.a.port_mac, *c.a.remote, c.a.local,
                 RtpPacket(1, 0x7300, 160, 0));
  };
  rte_mbuf* wrong = frame();
  poller.ProcessBurst(&wrong, 1, port_b);
  EXPECT_EQ(poller.counters().drops[static_cast<size_t>(DropReason::kWrongInterface)].load(), 1u);
  EXPECT_EQ(rte_ring_count(rings[1]), 0u);
  rte_mbuf* right = frame();
  poller.ProcessBurst(&right, 1, port_a);
  EXPECT_EQ(poller.counters().handed_off.load(), 1u);
  // The owner (the fixture's worker, which hands nothing off) takes its ring.
  rte_mbuf* handed[4];
  const unsigned n =
      rte_ring_dequeue_burst(rings[1], reinterpret_cast<void**>(handed), 4, nullptr);
  ASSERT_EQ(n, 1u);
  EXPECT_EQ(handed[0]->port, port_a);
  worker_->ProcessBurst(handed, 1);
  worker_->FlushTx();
  EXPECT_EQ(Drain(port_b).size(), 1u);
  EXPECT_EQ(worker_->counters().total_drops(), 0u);
  for (rte_ring* r : rings) rte_ring_free(r);
  EXPECT_EQ(rte_mempool_in_use_count(pool), 0u);
}

// Relay's steps keep the burst contract: packets refused at different steps
// of one burst (wrong payload kind, forged, no flow) are counted once each
// under their own reason, and every good packet around them leaves in the
// order it came.
TEST_F(PipelineTest, RejectsAtEveryStepOfOneBurstLeaveTheRestInOrder) {
  std::mt19937 rng(37);
  Call& c = Keep(MakeCall(crypto::Suite::kAesCm128HmacSha1_80,
                          crypto::Suite::kAesCm128HmacSha1_80, true, rng));
  Publish(c);
  std::vector<rte_mbuf*> frames;
  std::vector<std::vector<uint8_t>> sent;
  for (int i = 0; i < 24; ++i) {
    std::vector<uint8_t> p = RtpPacket(static_cast<uint16_t>(i), 0x600d, 160, static_cast<uint8_t>(i));
    Endpoint to = c.a.local;
    switch (i % 4) {
      case 1: {  // forged: refused by Unprotect
        ASSERT_EQ(c.a_send->ProtectRtp(p), srtp_err_status_ok);
        p[30] ^= 0x80;
        break;
      }
      case 2:  // a STUN message: refused by Admit
        p.assign(20, 0);
        p[1] = 1;
        break;
      case 3:  // nobody's port: no flow
        ASSERT_EQ(c.a_send->ProtectRtp(p), srtp_err_status_ok);
        to.port = 1;
        break;
      default:
        sent.push_back(p);
        ASSERT_EQ(c.a_send->ProtectRtp(p), srtp_err_status_ok);
    }
    frames.push_back(Frame(*c.a.remote_mac, c.a.port_mac, *c.a.remote, to, p));
  }
  Send(frames);
  EXPECT_EQ(Drops(DropReason::kAuthFailed), 6u);
  EXPECT_EQ(Drops(DropReason::kStun), 6u);
  EXPECT_EQ(Drops(DropReason::kNoFlow), 6u);
  EXPECT_EQ(worker_->counters().total_drops(), 18u);
  EXPECT_EQ(c.session->flow(0).counters.auth_failures.load(), 6u);
  EXPECT_EQ(c.session->flow(0).counters.other_drops.load(), 6u);
  std::vector<Received> got = Drain(port_b);
  ASSERT_EQ(got.size(), sent.size());
  for (size_t i = 0; i < got.size(); ++i) {
    std::vector<uint8_t> p = got[i].payload;
    ASSERT_EQ(c.b_recv->UnprotectRtp(p), srtp_err_status_ok) << i;
    EXPECT_EQ(p, sent[i]) << i;
  }
  EXPECT_EQ(rte_mempool_in_use_count(pool), 0u);
}


// STUN and DTLS as a peer sends them first (RFC 7983: first byte 0-3, and
// 20-63).
std::vector<uint8_t> StunRequest() {
  std::vector<uint8_t> p(20, 0);
  p[1] = 1;  // binding request
  return p;
}
std::vector<uint8_t> DtlsRecord() {
  std::vector<uint8_t> p(40, 0x42);
  p[0] = 22;  // handshake
  return p;
}

class HandshakeRingTest : public PipelineTest {
 protected:
  // The fixture's worker, now handing over to a ring of `size` slots.
  void UseRing(unsigned size, session::policing::Rate rate = {}) {
    ring_ = rte_ring_create("worker_handshake", size, static_cast<int>(rte_socket_id()),
                            RING_F_SC_DEQ);
    ASSERT_NE(ring_, nullptr);
    WorkerConfig config = worker_->config();
    config.handshake = ring_;
    config.handshake_rate = rate;
    worker_ = std::make_unique<Worker>(config);
  }
  void TearDown() override {
    void* m;
    while (ring_ != nullptr && rte_ring_dequeue(ring_, &m) == 0) {
      rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
    }
    rte_ring_free(ring_);
    PipelineTest::TearDown();
  }
  // Two calls whose leg a takes handshakes, and a ring at 100 a second per
  // leg (bursts of kMinBurst).
  std::pair<Call*, Call*> TwoWebRtcCalls(std::mt19937& rng) {
    Call& one = Keep(MakeCall(std::nullopt, std::nullopt, /*give_remotes=*/true, rng));
    Call& two = Keep(MakeCall(std::nullopt, std::nullopt, /*give_remotes=*/true, rng,
                              /*a_rtcp_mux=*/true, /*index=*/1));
    for (Call* c : {&one, &two}) {
      c->session->SetHandshake(0, true);
      Publish(*c);
    }
    UseRing(256, session::policing::MakeRate(100, rte_get_tsc_hz()));
    return {&one, &two};
  }
  // 640 STUN and DTLS datagrams from `from` at c's leg a, within milliseconds.
  void Flood(Call& c, const Endpoint& from) {
    for (int burst = 0; burst < 20; ++burst) {
      std::vector<rte_mbuf*> frames;
      for (int i = 0; i < 32; ++i) {
        frames.push_back(Frame(*c.a.remote_mac, c.a.port_mac, from, c.a.local,
                               i % 2 == 0 ? StunRequest() : DtlsRecord()));
      }
      Send(frames);
    }
  }
  std::vector<rte_mbuf*> TakeRing() {
    std::vector<rte_mbuf*> out(rte_ring_count(ring_));
    rte_ring_dequeue_bulk(ring_, reinterpret_cast<void**>(out.data()),
                          static_cast<unsigned>(out.size()), nullptr);
    return out;
  }
  rte_ring* ring_ = nullptr;
};

// A leg that takes handshakes (Flow::handshake) gives its STUN and DTLS to
// the handshake ring, whole, marked with the port they came in on, counted;
// the RTP around them in the burst is relayed in order. The call's other
// leg, unflagged, drops them as before; and what came through another
// interface is refused before any hand-over.
TEST_F(HandshakeRingTest, AHandshakeLegsStunAndDtlsGoToTheRing) {
  std::mt19937 rng(53);
  Call& c = Keep(MakeCall(std::nullopt, std::nullopt, /*give_remotes=*/true, rng));
  c.session->SetHandshake(0, true);
  Publish(c);
  UseRing(64);
  auto to_a = [&](const std::vector<uint8_t>& p) {
    rte_mbuf* m = Frame(*c.a.remote_mac, c.a.port_mac, *c.a.remote, c.a.local, p);
    m->port = 99;  // the port given to ProcessBurst is the one that counts
    return m;
  };
  std::vector<uint8_t> rtp[3];
  for (int i = 0; i < 3; ++i) rtp[i] = RtpPacket(static_cast<uint16_t>(i + 1), 0x5100, 160, 0);
  std::vector<rte_mbuf*> burst = {to_a(rtp[0]), to_a(StunRequest()), to_a(rtp[1]),
                                  to_a(DtlsRecord()), to_a(rtp[2])};
  worker_->ProcessBurst(burst.data(), static_cast<uint16_t>(burst.size()), port_a);
  worker_->FlushTx();
  std::vector<Received> got = Drain(port_b);
  ASSERT_EQ(got.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(got[i].payload, rtp[i]) << i;
  EXPECT_EQ(worker_->counters().handshake_packets.load(), 2u);
  EXPECT_EQ(worker_->counters().total_drops(), 0u);
  std::vector<rte_mbuf*> handed = TakeRing();
  ASSERT_EQ(handed.size(), 2u);
  const packet::PayloadKind kinds[] = {packet::PayloadKind::kStun, packet::PayloadKind::kDtls};
  for (size_t i = 0; i < handed.size(); ++i) {
    EXPECT_EQ(handed[i]->port, port_a);
    const packet::ParsedFrame f = packet::ParseFrame(
        rte_pktmbuf_mtod(handed[i], const uint8_t*), rte_pktmbuf_data_len(handed[i]), {});
    EXPECT_EQ(f.payload_kind, kinds[i]);
    EXPECT_EQ(f.dst, c.a.local);
    rte_pktmbuf_free(handed[i]);
  }

  Send({Frame(*c.b.remote_mac, c.b.port_mac, *c.b.remote, c.b.local, StunRequest()),
        Frame(*c.b.remote_mac, c.b.port_mac, *c.b.remote, c.b.local, DtlsRecord())});
  EXPECT_EQ(Drops(DropReason::kStun), 1u);
  EXPECT_EQ(Drops(DropReason::kDtls), 1u);
  rte_mbuf* wrong = to_a(StunRequest());
  worker_->ProcessBurst(&wrong, 1, port_b);
  EXPECT_EQ(Drops(DropReason::kWrongInterface), 1u);
  EXPECT_EQ(rte_ring_count(ring_), 0u);
  EXPECT_EQ(worker_->counters().handshake_packets.load(), 2u);
}

// A full handshake ring costs the worker nothing but a counted drop; a
// worker given no ring drops a handshake leg's STUN as any other.
TEST_F(HandshakeRingTest, AFullRingIsACountedDrop) {
  std::mt19937 rng(59);
  Call& c = Keep(MakeCall(std::nullopt, std::nullopt, /*give_remotes=*/true, rng));
  c.session->SetHandshake(0, true);
  Publish(c);
  std::vector<rte_mbuf*> burst;
  for (int i = 0; i < 5; ++i) {
    burst.push_back(Frame(*c.a.remote_mac, c.a.port_mac, *c.a.remote, c.a.local, StunRequest()));
  }
  Send({burst[0]});
  EXPECT_EQ(Drops(DropReason::kStun), 1u) << "no ring";
  UseRing(4);  // room for three
  Send({burst.begin() + 1, burst.end()});
  EXPECT_EQ(worker_->counters().handshake_packets.load(), 3u);
  EXPECT_EQ(Drops(DropReason::kHandshakeFull), 1u);
  EXPECT_EQ(c.session->flow(0).counters.other_drops.load(), 2u) << "both drops count on the leg";
}

// A flood of STUN and DTLS at one WebRTC leg's port from a stranger is held
// to the leg's handshake rate ([webrtc] handshake_max_pps), so the ring
// every WebRTC leg shares keeps room: another leg's handshake still reaches
// it, and so does the flooded leg's own peer (its selected address has a
// reserve of the burst the stranger cannot spend). Without the rate, the
// flood fills the ring and the others are dropped as handshake_full.
TEST_F(HandshakeRingTest, AFloodAtOneLegLeavesTheRingToTheOthers) {
  std::mt19937 rng(67);
  auto [flooded_call, other_call] = TwoWebRtcCalls(rng);
  Call& flooded = *flooded_call;
  Call& other = *other_call;
  Flood(flooded, Ep("192.0.2.99:4444"));
  auto from_peer = [](Call& c) {
    return std::vector<rte_mbuf*>{
        Frame(*c.a.remote_mac, c.a.port_mac, *c.a.remote, c.a.local, StunRequest()),
        Frame(*c.a.remote_mac, c.a.port_mac, *c.a.remote, c.a.local, DtlsRecord())};
  };
  Send(from_peer(flooded));
  Send(from_peer(other));
  EXPECT_EQ(Drops(DropReason::kHandshakeFull), 0u);
  EXPECT_EQ(Drops(DropReason::kHandshakeRate),
            640u - (session::policing::kMinBurst - session::policing::kPeerReserve));
  size_t peers = 0;
  for (rte_mbuf* m : TakeRing()) {
    const packet::ParsedFrame f =
        packet::ParseFrame(rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m), {});
    peers += f.src == *flooded.a.remote || f.src == *other.a.remote;
    rte_pktmbuf_free(m);
  }
  EXPECT_EQ(peers, 4u) << "both legs' peers reached the ring";
  EXPECT_EQ(flooded.session->flow(0).counters.other_drops.load(),
            Drops(DropReason::kHandshakeRate));
}

// A spoofer claiming a WebRTC leg's peer address (anyone can write it as
// the source) gets no more than the leg's handshake rate: a flood from that
// address is held to it (handshake_peer_rate), so the ring every WebRTC leg
// shares keeps room for another leg's peer. Were the peer's address exempt,
// the flood would fill the ring (handshake_full) and the other leg's
// handshake would be lost.
TEST_F(HandshakeRingTest, AFloodClaimingThePeersAddressIsHeldToTheLegsRate) {
  std::mt19937 rng(71);
  auto [flooded_call, other_call] = TwoWebRtcCalls(rng);
  Call& flooded = *flooded_call;
  Call& other = *other_call;
  Flood(flooded, *flooded.a.remote);
  Send({Frame(*other.a.remote_mac, other.a.port_mac, *other.a.remote, other.a.local,
              StunRequest()),
        Frame(*other.a.remote_mac, other.a.port_mac, *other.a.remote, other.a.local,
              DtlsRecord())});
  EXPECT_EQ(Drops(DropReason::kHandshakeFull), 0u);
  EXPECT_EQ(Drops(DropReason::kHandshakePeerRate), 640u - session::policing::kMinBurst);
  size_t from_other = 0;
  for (rte_mbuf* m : TakeRing()) {
    const packet::ParsedFrame f =
        packet::ParseFrame(rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m), {});
    from_other += f.src == *other.a.remote;
    rte_pktmbuf_free(m);
  }
  EXPECT_EQ(from_other, 2u) << "the other leg's peer reached the ring";
  EXPECT_EQ(flooded.session->flow(0).counters.other_drops.load(),
            Drops(DropReason::kHandshakePeerRate));
}

// While a WebRTC leg's keys are pending nothing is relayed to or from it:
// RTP and RTCP it sends (its receive keys are missing) and RTP the plain
// leg sends toward it (its send keys are missing) are dropped as
// not_keyed, never sent in clear. The same call without the flag relays
// plain both ways: what the rule stops. Keyed (contexts handed over, then
// the flag cleared), the plain leg's RTP leaves encrypted at once, and the
// leg's SRTP is relayed.
TEST_F(PipelineTest, PendingKeysDropMediaBothWaysUntilTheHandshakeKeysTheLeg) {
  std::mt19937 rng(61);
  Call& c = Keep(MakeCall(std::nullopt, std::nullopt, /*give_remotes=*/true, rng));
  c.session->SetKeysPending(0, true);
  Publish(c);
  auto from_a = [&](const std::vector<uint8_t>& p) {
    return Frame(*c.a.remote_mac, c.a.port_mac, *c.a.remote, c.a.local, p);
  };
  auto from_b = [&](const std::vector<uint8_t>& p) {
    return Frame(*c.b.remote_mac, c.b.port_mac, *c.b.remote, c.b.local, p);
  };
  const std::vector<uint8_t> rtp = RtpPacket(1, 0x6100, 160, 3);
  Send({from_a(rtp), from_a(RtcpReceiverReport(0x6100))});
  Send({from_b(rtp)});
  EXPECT_EQ(Drops(DropReason::kNotKeyed), 3u);
  EXPECT_TRUE(Drain(port_a).empty());
  EXPECT_TRUE(Drain(port_b).empty());

  c.session->SetKeysPending(0, false);
  Send({from_a(rtp)});
  Send({from_b(rtp)});
  EXPECT_EQ(Drain(port_b).size(), 1u) << "plain without the flag";
  EXPECT_EQ(Drain(port_a).size(), 1u) << "plain without the flag";

  c.session->SetKeysPending(0, true);
  const srtp::MasterKey rx_key = RandomKey(crypto::Suite::kAesCm128HmacSha1_80, rng);
  const srtp::MasterKey tx_key = RandomKey(crypto::Suite::kAesCm128HmacSha1_80, rng);
  c.session->HandOverRx(0, *srtp::Context::Create(std::span(&rx_key, 1), {}));
  c.session->HandOverTx(0, *srtp::Context::Create(std::span(&tx_key, 1), {}));
  c.session->SetKeysPending(0, false);
  auto a_send = *LibsrtpPeer::Create(LibsrtpPeer::Role::kSender, std::span(&rx_key, 1), {});
  auto a_recv = *LibsrtpPeer::Create(LibsrtpPeer::Role::kReceiver, std::span(&tx_key, 1), {});
  const std::vector<uint8_t> toward_a = RtpPacket(2, 0x6200, 160, 4);
  Send({from_b(toward_a)});
  std::vector<Received> got = Drain(port_a);
  ASSERT_EQ(got.size(), 1u);
  std::vector<uint8_t> p = got[0].payload;
  EXPECT_NE(p, toward_a) << "not in clear";
  ASSERT_EQ(a_recv->UnprotectRtp(p), srtp_err_status_ok);
  EXPECT_EQ(p, toward_a);
  std::vector<uint8_t> srtp = RtpPacket(3, 0x6300, 160, 5);
  const std::vector<uint8_t> original = srtp;
  ASSERT_EQ(a_send->ProtectRtp(srtp), srtp_err_status_ok);
  Send({from_a(srtp)});
  got = Drain(port_b);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, original);
  EXPECT_EQ(Drops(DropReason::kNotKeyed), 3u);
}

// A leg keyed by SDES whose next keys come from a handshake: set pending and
// switched to plain, the worker parks its old contexts; the handshake's
// keys are handed over and the flag cleared before the control loop
// collected what was parked. The first packet after must leave with the new
// keys, not in clear (SetKeysPending collects first).
TEST_F(PipelineTest, KeysFromAHandshakeAfterSdesKeysAreUsedAtOnce) {
  std::mt19937 rng(67);
  Call& c = Keep(MakeCall(crypto::Suite::kAesCm128HmacSha1_80, std::nullopt,
                          /*give_remotes=*/true, rng));
  Publish(c);
  c.session->SetKeysPending(0, true);
  c.session->HandOverRx(0, nullptr);
  c.session->HandOverTx(0, nullptr);
  const std::vector<uint8_t> toward_a = RtpPacket(9, 0x6400, 160, 6);
  Send({Frame(*c.b.remote_mac, c.b.port_mac, *c.b.remote, c.b.local, toward_a)});
  EXPECT_EQ(Drops(DropReason::kNotKeyed), 1u);
  ASSERT_NE(c.session->flow(1).tx_retired.load(), nullptr) << "the SDES context, parked";

  const srtp::MasterKey tx_key = RandomKey(crypto::Suite::kAeadAes128Gcm, rng);
  c.session->HandOverTx(0, *srtp::Context::Create(std::span(&tx_key, 1), {}));
  c.session->SetKeysPending(0, false);
  Send({Frame(*c.b.remote_mac, c.b.port_mac, *c.b.remote, c.b.local, toward_a)});
  std::vector<Received> got = Drain(port_a);
  ASSERT_EQ(got.size(), 1u);
  std::vector<uint8_t> p = got[0].payload;
  EXPECT_NE(p, toward_a) << "not in clear";
  auto a_recv = *LibsrtpPeer::Create(LibsrtpPeer::Role::kReceiver, std::span(&tx_key, 1), {});
  ASSERT_EQ(a_recv->UnprotectRtp(p), srtp_err_status_ok);
  EXPECT_EQ(p, toward_a);
}

}  // namespace
}  // namespace sluice::worker
