// EAL starts without hugepages or PCI, and a virtual device carries packets.
#include "sluice/dpdk/eal.h"

#include <gtest/gtest.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_join.h"

namespace sluice::dpdk {
namespace {

class EalEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    EalOptions options;
    options.program_name = "eal_test";
    options.vdevs = {"net_ring0", "net_null0"};
    options.memory_mb = 128;
    absl::Status s = InitEal(options);
    ASSERT_TRUE(s.ok()) << s;
  }
  void TearDown() override { CleanupEal(); }
};

const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new EalEnvironment);

TEST(BuildEalArgs, AddsNoHugeAndPerProcessPrefixWithoutHugepages) {
  EalOptions options;
  options.force_no_huge = true;
  options.vdevs = {"net_null0"};
  std::vector<std::string> args = BuildEalArgs(options);
  const std::string joined = absl::StrJoin(args, " ");
  EXPECT_NE(joined.find("--no-huge"), std::string::npos) << joined;
  EXPECT_NE(joined.find("--no-shconf"), std::string::npos) << joined;
  EXPECT_NE(joined.find("--no-pci"), std::string::npos) << joined;
  EXPECT_NE(joined.find("--file-prefix=sluice-" + std::to_string(getpid())),
            std::string::npos)
      << joined;
  EXPECT_NE(joined.find("--vdev=net_null0"), std::string::npos) << joined;
}

TEST(BuildEalArgs, AllowsPciWhenAsked) {
  EalOptions options;
  options.allow_pci = true;
  options.file_prefix = "custom";
  std::vector<std::string> args = BuildEalArgs(options);
  EXPECT_EQ(std::count(args.begin(), args.end(), "--no-pci"), 0);
  EXPECT_EQ(std::count(args.begin(), args.end(), "--file-prefix=custom"), 1);
}

TEST(Eal, SecondStartIsRefused) {
  EalOptions options;
  absl::Status s = InitEal(options);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
}

TEST(Eal, VirtualDevicesAreProbed) {
  uint16_t ring_port = 0, null_port = 0;
  EXPECT_EQ(rte_eth_dev_get_port_by_name("net_ring0", &ring_port), 0);
  EXPECT_EQ(rte_eth_dev_get_port_by_name("net_null0", &null_port), 0);
  EXPECT_NE(ring_port, null_port);
}

TEST(Eal, RingDeviceLoopsPacketsBack) {
  uint16_t port = 0;
  ASSERT_EQ(rte_eth_dev_get_port_by_name("net_ring0", &port), 0);
  rte_mempool* pool = rte_pktmbuf_pool_create("eal_test_pool", 1023, 0, 0,
                                              RTE_MBUF_DEFAULT_BUF_SIZE,
                                              static_cast<int>(rte_socket_id()));
  ASSERT_NE(pool, nullptr);
  rte_eth_conf conf = {};
  ASSERT_EQ(rte_eth_dev_configure(port, 1, 1, &conf), 0);
  ASSERT_EQ(rte_eth_rx_queue_setup(port, 0, 128, rte_eth_dev_socket_id(port), nullptr, pool), 0);
  ASSERT_EQ(rte_eth_tx_queue_setup(port, 0, 128, rte_eth_dev_socket_id(port), nullptr), 0);
  ASSERT_EQ(rte_eth_dev_start(port), 0);

  constexpr int kBurst = 8;
  rte_mbuf* tx[kBurst];
  for (int i = 0; i < kBurst; ++i) {
    tx[i] = rte_pktmbuf_alloc(pool);
    ASSERT_NE(tx[i], nullptr);
    char* data = rte_pktmbuf_append(tx[i], 64);
    ASSERT_NE(data, nullptr);
    std::memset(data, i, 64);
  }
  ASSERT_EQ(rte_eth_tx_burst(port, 0, tx, kBurst), kBurst);

  rte_mbuf* rx[kBurst * 2];
  uint16_t n = rte_eth_rx_burst(port, 0, rx, kBurst * 2);
  ASSERT_EQ(n, kBurst);
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(rte_pktmbuf_pkt_len(rx[i]), 64u);
    EXPECT_EQ(*rte_pktmbuf_mtod(rx[i], uint8_t*), i) << "packet order changed";
    rte_pktmbuf_free(rx[i]);
  }
  rte_eth_dev_stop(port);
}

}  // namespace
}  // namespace sluice::dpdk
