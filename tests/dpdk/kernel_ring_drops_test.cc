// KernelRingDrops on a real net_af_packet port: bound to the loopback
// interface of a network namespace this process makes for itself
// (unshare), with a ring of 64 frames nobody polls, so what is sent beyond
// that is the kernel's loss and must be counted. Needs root; skipped, with
// the reason, without it.
#include "sluice/dpdk/kernel_ring_drops.h"

#include <gtest/gtest.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "sluice/dpdk/eal.h"
#include "sluice/dpdk/port.h"

namespace sluice::dpdk {
namespace {

constexpr int kRingFrames = 64;
std::string skip_reason;  // empty: the environment is up
rte_mempool* pool = nullptr;

// The namespace's loopback, up.
bool LoopbackUp() {
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return false;
  ifreq ifr = {};
  std::strcpy(ifr.ifr_name, "lo");
  bool ok = ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
  ifr.ifr_flags |= IFF_UP;
  ok = ok && ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
  close(fd);
  return ok;
}

class Environment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (unshare(CLONE_NEWNET) != 0) {
      skip_reason = std::string("cannot make a network namespace (needs root): ") +
                    std::strerror(errno);
    } else if (!LoopbackUp()) {
      skip_reason = "cannot bring the namespace's loopback up";
    }
    if (!skip_reason.empty()) {
      std::printf("note: kernel ring drop tests skipped: %s\n", skip_reason.c_str());
      return;
    }
    EalOptions options;
    options.program_name = "kernel_ring_drops_test";
    options.vdevs = {"net_af_packet0,iface=lo,framecnt=" + std::to_string(kRingFrames),
                     "net_null0"};
    options.memory_mb = 128;
    absl::Status s = InitEal(options);
    ASSERT_TRUE(s.ok()) << s;
    pool = rte_pktmbuf_pool_create("ring_drops_pool", 4095, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                   static_cast<int>(rte_socket_id()));
    ASSERT_NE(pool, nullptr);
  }
};
const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new Environment);

class KernelRingDropsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!skip_reason.empty()) GTEST_SKIP() << "skipped: " << skip_reason;
  }

  static absl::StatusOr<PortInfo> Start(const std::string& device) {
    PortSetup setup;
    setup.device = device;
    setup.pool = pool;
    return StartPort(setup);
  }

  // Sends n frames of a local experimental EtherType on lo.
  static int SendFrames(int n) {
    const int fd = socket(AF_PACKET, SOCK_RAW, 0);
    if (fd < 0) return 0;
    sockaddr_ll to = {};
    to.sll_family = AF_PACKET;
    to.sll_ifindex = static_cast<int>(if_nametoindex("lo"));
    to.sll_halen = 6;
    std::vector<uint8_t> frame(200, 0);
    frame[12] = 0x88;  // IEEE 802 local experimental EtherType 1
    frame[13] = 0xb5;
    int sent = 0;
    for (int i = 0; i < n; ++i) {
      if (sendto(fd, frame.data(), frame.size(), 0, reinterpret_cast<sockaddr*>(&to),
                 sizeof to) == static_cast<ssize_t>(frame.size())) {
        ++sent;
      }
    }
    close(fd);
    return sent;
  }
};

TEST_F(KernelRingDropsTest, FindsThePortsOwnPacketSockets) {
  absl::StatusOr<PortInfo> port = Start("net_af_packet0");
  ASSERT_TRUE(port.ok()) << port.status();
  const int lo = static_cast<int>(if_nametoindex("lo"));
  // The driver's one queue pair is one socket; a socket of ours bound
  // elsewhere (unbound: index 0) is not the port's.
  const int other = socket(AF_PACKET, SOCK_RAW, 0);
  ASSERT_GE(other, 0);
  const std::vector<int> fds = PacketSocketsOf(lo);
  EXPECT_EQ(fds.size(), 1u);
  EXPECT_EQ(std::count(fds.begin(), fds.end(), other), 0);
  close(other);

  // The ring holds kRingFrames; nothing polls it, so the rest is lost and
  // counted, and counted once however often it is read.
  KernelRingDrops drops;
  drops.Watch(port->port_id);
  EXPECT_EQ(drops.Drops(port->port_id), 0u);
  const int sent = SendFrames(10 * kRingFrames);
  ASSERT_EQ(sent, 10 * kRingFrames);
  // On lo a packet socket sees each frame twice: as it leaves and as it
  // arrives.
  const uint64_t seen = 2 * static_cast<uint64_t>(sent);
  const uint64_t lost = drops.Drops(port->port_id);
  EXPECT_GE(lost, seen - kRingFrames);
  EXPECT_LE(lost, seen);
  EXPECT_EQ(drops.Drops(port->port_id), lost);

  // What the ring kept is what the port receives.
  rte_mbuf* burst[32];
  uint64_t received = 0;
  for (int i = 0; i < 2 * kRingFrames / 32 + 1; ++i) {
    const uint16_t n = rte_eth_rx_burst(port->port_id, 0, burst, 32);
    rte_pktmbuf_free_bulk(burst, n);
    received += n;
  }
  EXPECT_EQ(received + lost, seen);
  StopPort(port->port_id);
}

TEST_F(KernelRingDropsTest, PortsWithoutAKernelRingReportNone) {
  absl::StatusOr<PortInfo> port = Start("net_null0");
  ASSERT_TRUE(port.ok()) << port.status();
  KernelRingDrops drops;
  drops.Watch(port->port_id);
  EXPECT_EQ(drops.Drops(port->port_id), 0u);
  EXPECT_EQ(drops.Drops(static_cast<uint16_t>(port->port_id + 7)), 0u);
  StopPort(port->port_id);
}

}  // namespace
}  // namespace sluice::dpdk
