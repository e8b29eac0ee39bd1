// StartPort on a device that has checksum offloads (net_tap, whose PMD
// computes them when asked), and the worker's frames through it: what the
// kernel on the other side of the tap receives has right checksums although
// the worker wrote only the pseudo-header sum. And the other way, the PMD's
// verdict on a received checksum reaches the worker.
//
// The tap interface lives in a network namespace this process makes for
// itself (unshare), gone when it exits; nothing is sent anywhere else.
#include "sluice/dpdk/port.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "sluice/crypto/backend.h"
#include "sluice/dpdk/eal.h"
#include "sluice/packet/parse.h"
#include "sluice/packet/rewrite.h"
#include "sluice/session/flow_table.h"
#include "sluice/session/session.h"
#include "sluice/worker/worker.h"

namespace sluice::dpdk {
namespace {

using packet::Endpoint;
using packet::MacAddress;

constexpr char kTapName[] = "sltap0";
std::string skip_reason;  // empty: the environment is up
rte_mempool* pool = nullptr;

class PortEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (access("/dev/net/tun", R_OK | W_OK) != 0) {
      skip_reason = "no /dev/net/tun to make a tap device with";
    } else if (unshare(CLONE_NEWNET) != 0) {
      skip_reason = std::string("cannot make a network namespace (needs root): ") +
                    std::strerror(errno);
    }
    if (!skip_reason.empty()) {
      std::printf("note: net_tap port tests skipped: %s\n", skip_reason.c_str());
      return;
    }
    EalOptions options;
    options.program_name = "port_test";
    options.vdevs = {std::string("net_tap0,iface=") + kTapName, "net_ring0"};
    options.memory_mb = 128;
    absl::Status s = InitEal(options);
    ASSERT_TRUE(s.ok()) << s;
    pool = rte_pktmbuf_pool_create("port_test_pool", 4095, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                   static_cast<int>(rte_socket_id()));
    ASSERT_NE(pool, nullptr);
  }
};
const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new PortEnvironment);

MacAddress Mac(uint8_t last) { return {0x02, 0, 0, 0, 0, last}; }
Endpoint Ep(const char* text) { return *Endpoint::Parse(text); }

// A raw socket on the kernel's side of the tap.
class TapPeer {
 public:
  ~TapPeer() {
    if (fd_ >= 0) close(fd_);
  }
  bool Open() {
    const unsigned index = if_nametoindex(kTapName);
    if (index == 0) return false;
    fd_ = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(ETH_P_ALL));
    if (fd_ < 0) return false;
    sockaddr_ll addr = {};
    addr.sll_family = AF_PACKET;
    addr.sll_protocol = htons(ETH_P_ALL);
    addr.sll_ifindex = static_cast<int>(index);
    index_ = static_cast<int>(index);
    return bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  // Frames the kernel got from the tap (PACKET_HOST/OTHERHOST: sent by
  // DPDK), for up to a second until `want` are in.
  std::vector<std::vector<uint8_t>> Receive(size_t want) {
    std::vector<std::vector<uint8_t>> out;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (out.size() < want && std::chrono::steady_clock::now() < deadline) {
      pollfd p = {fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      std::vector<uint8_t> buf(2048);
      sockaddr_ll from = {};
      socklen_t len = sizeof from;
      const ssize_t n = recvfrom(fd_, buf.data(), buf.size(), 0,
                                 reinterpret_cast<sockaddr*>(&from), &len);
      if (n <= 0 || from.sll_pkttype == PACKET_OUTGOING) continue;
      buf.resize(static_cast<size_t>(n));
      // Only UDP/IPv4 from the relay: the kernel sends its own (IPv6 router
      // solicitations and the like) on a link that comes up.
      if (n < 14 || buf[12] != 0x08 || buf[13] != 0x00) continue;
      out.push_back(std::move(buf));
    }
    return out;
  }
  bool Send(const std::vector<uint8_t>& frame) {
    sockaddr_ll to = {};
    to.sll_family = AF_PACKET;
    to.sll_ifindex = index_;
    to.sll_halen = 6;
    std::memcpy(to.sll_addr, frame.data(), 6);
    return sendto(fd_, frame.data(), frame.size(), 0, reinterpret_cast<sockaddr*>(&to),
                  sizeof to) == static_cast<ssize_t>(frame.size());
  }

 private:
  int fd_ = -1;
  int index_ = 0;
};

std::vector<uint8_t> UdpFrame(const MacAddress& src_mac, const MacAddress& dst_mac,
                              const Endpoint& src, const Endpoint& dst, size_t payload) {
  packet::UdpHeaderSpec spec;
  spec.src_mac = src_mac;
  spec.dst_mac = dst_mac;
  spec.src = src;
  spec.dst = dst;
  const uint32_t hdr = packet::HeaderLength(spec);
  std::vector<uint8_t> f(hdr + payload);
  f[hdr] = 0x80;  // RTP version 2, PCMU
  for (size_t i = 1; i < payload; ++i) f[hdr + i] = static_cast<uint8_t>(i * 13 + 5);
  packet::WriteUdpHeaders(f.data() + hdr, static_cast<uint32_t>(payload), spec, 7);
  return f;
}

class TapPortTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!skip_reason.empty()) GTEST_SKIP() << skip_reason;
    if (started_) return;
    PortSetup setup;
    setup.device = "net_tap0";
    setup.pool = pool;
    absl::StatusOr<PortInfo> info = StartPort(setup);
    ASSERT_TRUE(info.ok()) << info.status();
    info_ = *info;
    started_ = true;
  }
  static inline bool started_ = false;
  static inline PortInfo info_;
};

TEST_F(TapPortTest, EnablesTheChecksumOffloadsTheDeviceOffers) {
  rte_eth_dev_info dev = {};
  ASSERT_EQ(rte_eth_dev_info_get(info_.port_id, &dev), 0);
  ASSERT_TRUE(dev.tx_offload_capa & RTE_ETH_TX_OFFLOAD_UDP_CKSUM)
      << "this DPDK's net_tap no longer offers UDP checksum offload";
  EXPECT_TRUE(info_.tx_ip_checksum_offload);
  EXPECT_TRUE(info_.tx_udp_checksum_offload);
  EXPECT_TRUE(info_.rx_ip_checksum_offload);
  EXPECT_TRUE(info_.rx_udp_checksum_offload);
}

// A plain call from a ring port (frames handed to the worker directly) to the
// tap: the kernel receives them with right IPv4 and UDP checksums, odd and
// even lengths, which the worker left to the device.
TEST_F(TapPortTest, WorkerFramesLeaveWithChecksumsTheDeviceFilledIn) {
  uint16_t ring = 0;
  ASSERT_EQ(rte_eth_dev_get_port_by_name("net_ring0", &ring), 0);
  TapPeer peer;
  ASSERT_TRUE(peer.Open()) << std::strerror(errno);

  session::LegSpec a, b;
  a.name = "a";
  a.port_id = ring;
  a.port_mac = Mac(0xa0);
  a.local = Ep("10.0.1.1:30000");
  a.remote = Ep("10.0.1.2:40000");
  a.remote_mac = Mac(0xa1);
  b.name = "b";
  b.port_id = info_.port_id;
  b.port_mac = info_.mac;
  b.local = Ep("10.0.2.1:30002");
  b.remote = Ep("10.0.2.2:40002");
  b.remote_mac = Mac(0xb1);
  auto session = session::Session::Create(1, a, b, session::SessionOptions{});
  ASSERT_TRUE(session.ok()) << session.status();
  auto table = session::FlowTable::Create("port_test_flows", 64, 1);
  ASSERT_TRUE(table.ok()) << table.status();
  ASSERT_TRUE((*session)->Publish(**table).ok());
  auto backend = crypto::MakeBackend(crypto::BackendKind::kAuto);
  ASSERT_TRUE(backend.ok());

  worker::WorkerConfig config;
  config.table = table->get();
  config.backend = backend->get();
  // As sluiced builds it from the ports' PortInfo.
  config.tx_checksum_offload.resize(info_.port_id + 1);
  config.tx_checksum_offload[info_.port_id] = {.ipv4_header = info_.tx_ip_checksum_offload,
                                               .udp = info_.tx_udp_checksum_offload};
  worker::Worker worker(config);

  const std::vector<size_t> sizes = {172, 173, 61, 1212};
  std::vector<rte_mbuf*> frames;
  for (size_t size : sizes) {
    const std::vector<uint8_t> f = UdpFrame(*a.remote_mac, a.port_mac, *a.remote, a.local, size);
    rte_mbuf* m = rte_pktmbuf_alloc(pool);
    ASSERT_NE(m, nullptr);
    std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(f.size())), f.data(), f.size());
    frames.push_back(m);
  }
  worker.ProcessBurst(frames.data(), static_cast<uint16_t>(frames.size()), a.port_id);
  worker.FlushTx();
  EXPECT_EQ(worker.counters().total_drops(), 0u);

  const std::vector<std::vector<uint8_t>> got = peer.Receive(sizes.size());
  ASSERT_EQ(got.size(), sizes.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const packet::ParsedFrame f = packet::ParseFrame(
        got[i].data(), static_cast<uint32_t>(got[i].size()), packet::ParseOptions{});
    ASSERT_EQ(f.kind, packet::FrameKind::kUdp)
        << sizes[i] << "-byte payload: " << packet::ParseErrorName(f.error);
    EXPECT_EQ(f.src, b.local);
    EXPECT_EQ(f.dst, *b.remote);
    EXPECT_EQ(f.payload_len, sizes[i]);
  }
  (*session)->Unpublish(**table);
  (*table)->Synchronize();
}

// Received: the device checks the checksums and says so in ol_flags, which
// the worker trusts; a wrong UDP checksum is reported bad.
TEST_F(TapPortTest, ReceivedChecksumsAreCheckedByTheDevice) {
  TapPeer peer;
  ASSERT_TRUE(peer.Open()) << std::strerror(errno);
  std::vector<uint8_t> good =
      UdpFrame(Mac(0xc1), info_.mac, Ep("10.0.3.2:40000"), Ep("10.0.3.1:30000"), 172);
  std::vector<uint8_t> bad = good;
  bad[14 + 20 + 6] ^= 0x5a;  // the UDP checksum
  ASSERT_TRUE(peer.Send(good));
  ASSERT_TRUE(peer.Send(bad));
  std::vector<uint64_t> flags;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (flags.size() < 2 && std::chrono::steady_clock::now() < deadline) {
    rte_mbuf* pkts[8];
    const uint16_t n = rte_eth_rx_burst(info_.port_id, 0, pkts, 8);
    for (uint16_t i = 0; i < n; ++i) {
      const uint8_t* d = rte_pktmbuf_mtod(pkts[i], const uint8_t*);
      // Only the two frames sent here (the kernel sends its own on the link).
      if (rte_pktmbuf_data_len(pkts[i]) == good.size() && d[6 + 5] == 0xc1) {
        flags.push_back(pkts[i]->ol_flags);
      }
      rte_pktmbuf_free(pkts[i]);
    }
    if (n == 0) usleep(1000);
  }
  ASSERT_EQ(flags.size(), 2u);
  EXPECT_EQ(flags[0] & RTE_MBUF_F_RX_IP_CKSUM_MASK, RTE_MBUF_F_RX_IP_CKSUM_GOOD);
  EXPECT_EQ(flags[0] & RTE_MBUF_F_RX_L4_CKSUM_MASK, RTE_MBUF_F_RX_L4_CKSUM_GOOD);
  EXPECT_EQ(flags[1] & RTE_MBUF_F_RX_L4_CKSUM_MASK, RTE_MBUF_F_RX_L4_CKSUM_BAD);
}

}  // namespace
}  // namespace sluice::dpdk
