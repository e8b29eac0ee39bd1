#include "sluice/dpdk/port.h"

#include <rte_errno.h>
#include <rte_ethdev.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace sluice::dpdk {

namespace {

// The device offers the queues asked for. af_packet fans frames out over all
// its queue pairs, and af_xdp's XDP program hands each of its interface
// queues to that queue's socket: a queue nobody polls would swallow its
// share (af_packet) or pass it to the kernel's stack (af_xdp), so for those
// two the counts must match exactly.
absl::Status CheckQueueCounts(const PortSetup& setup, const rte_eth_dev_info& dev) {
  const std::string_view driver = dev.driver_name != nullptr ? dev.driver_name : "";
  const bool every_queue = driver == "net_af_packet" || driver == "net_af_xdp";
  if (dev.max_tx_queues < setup.tx_queues || dev.max_rx_queues < setup.rx_queues ||
      (every_queue && dev.max_rx_queues != setup.rx_queues)) {
    const uint16_t want = std::max(setup.rx_queues, setup.tx_queues);
    return absl::FailedPreconditionError(absl::StrCat(
        setup.device, " offers ", dev.max_rx_queues, " RX and ", dev.max_tx_queues,
        " TX queues; sluiced uses ", setup.rx_queues, " RX and ", setup.tx_queues,
        " TX (one TX queue per worker; RX as [[interface]] rx_queues says, default one per "
        "worker). For net_af_packet give its --vdev qpairs=", want,
        "; for net_af_xdp queue_count=", want, " (and the interface that many combined "
        "channels: ethtool -L)"));
  }
  return absl::OkStatus();
}

// RSS over several RX queues, and the checksum offloads the device offers;
// records in `info` which offloads are on.
rte_eth_conf PortConf(const PortSetup& setup, const rte_eth_dev_info& dev, PortInfo& info) {
  rte_eth_conf conf = {};
  if (setup.rx_queues > 1) {
    // Spread by address and UDP ports; a flow that lands on another worker's
    // queue is handed to its owner, so order and ownership hold either way.
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_hf =
        (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP) & dev.flow_type_rss_offloads;
  }
  // Checksums the device can check or fill in are left to it: received
  // frames then carry RTE_MBUF_F_RX_*_CKSUM_GOOD, which the worker trusts,
  // and sent ones RTE_MBUF_F_TX_*_CKSUM, with only the pseudo-header sum
  // written (the form rte_ipv4_phdr_cksum() gives).
  if (!setup.checksum_offload) return conf;
  if (dev.rx_offload_capa & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM) {
    conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
    info.rx_ip_checksum_offload = true;
  }
  if (dev.rx_offload_capa & RTE_ETH_RX_OFFLOAD_UDP_CKSUM) {
    conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
    info.rx_udp_checksum_offload = true;
  }
  if (dev.tx_offload_capa & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM) {
    conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
    info.tx_ip_checksum_offload = true;
  }
  if (dev.tx_offload_capa & RTE_ETH_TX_OFFLOAD_UDP_CKSUM) {
    conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
    info.tx_udp_checksum_offload = true;
  }
  return conf;
}

// Every RX and TX queue, with the ring sizes the device accepts.
absl::Status SetUpQueues(const PortSetup& setup, uint16_t port_id) {
  uint16_t rx_ring = setup.rx_ring_size, tx_ring = setup.tx_ring_size;
  rte_eth_dev_adjust_nb_rx_tx_desc(port_id, &rx_ring, &tx_ring);
  const int socket = rte_eth_dev_socket_id(port_id);
  for (uint16_t q = 0; q < setup.rx_queues; ++q) {
    if (int rc = rte_eth_rx_queue_setup(port_id, q, rx_ring, socket, nullptr, setup.pool);
        rc != 0) {
      return absl::InternalError(absl::StrCat(setup.device, ": RX queue ", q, ": ",
                                              rte_strerror(-rc)));
    }
  }
  for (uint16_t q = 0; q < setup.tx_queues; ++q) {
    if (int rc = rte_eth_tx_queue_setup(port_id, q, tx_ring, socket, nullptr); rc != 0) {
      return absl::InternalError(absl::StrCat(setup.device, ": TX queue ", q, ": ",
                                              rte_strerror(-rc)));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PortInfo> StartPort(const PortSetup& setup) {
  PortInfo info;
  if (rte_eth_dev_get_port_by_name(setup.device.c_str(), &info.port_id) != 0) {
    return absl::NotFoundError(absl::StrCat(
        "no DPDK port named \"", setup.device,
        "\": create it in [eal] args (--vdev=... for a virtual device, or allow the PCI "
        "device bound to vfio-pci)"));
  }
  rte_eth_dev_info dev = {};
  if (int rc = rte_eth_dev_info_get(info.port_id, &dev); rc != 0) {
    return absl::InternalError(absl::StrCat(setup.device, ": rte_eth_dev_info_get: ",
                                            rte_strerror(-rc)));
  }
  if (absl::Status s = CheckQueueCounts(setup, dev); !s.ok()) return s;
  const rte_eth_conf conf = PortConf(setup, dev, info);
  if (int rc = rte_eth_dev_configure(info.port_id, setup.rx_queues, setup.tx_queues, &conf);
      rc != 0) {
    return absl::InternalError(absl::StrCat(setup.device, ": rte_eth_dev_configure: ",
                                            rte_strerror(-rc)));
  }
  if (absl::Status s = SetUpQueues(setup, info.port_id); !s.ok()) return s;
  // Not every virtual device can change its MTU; the default then stands.
  rte_eth_dev_set_mtu(info.port_id, setup.mtu);
  if (int rc = rte_eth_dev_start(info.port_id); rc != 0) {
    return absl::InternalError(absl::StrCat(setup.device, ": start: ", rte_strerror(-rc)));
  }
  rte_ether_addr addr;
  rte_eth_macaddr_get(info.port_id, &addr);
  std::memcpy(info.mac.data(), addr.addr_bytes, 6);
  return info;
}

void StopPort(uint16_t port_id) {
  rte_eth_dev_stop(port_id);
  rte_eth_dev_close(port_id);
}

std::vector<std::pair<std::string, uint64_t>> ReadXstats(uint16_t port_id) {
  std::vector<std::pair<std::string, uint64_t>> out;
  const int n = rte_eth_xstats_get_names(port_id, nullptr, 0);
  if (n <= 0) return out;
  std::vector<rte_eth_xstat_name> names(static_cast<size_t>(n));
  std::vector<rte_eth_xstat> values(static_cast<size_t>(n));
  const int got_names = rte_eth_xstats_get_names(port_id, names.data(), static_cast<unsigned>(n));
  const int got = rte_eth_xstats_get(port_id, values.data(), static_cast<unsigned>(n));
  if (got_names != n || got != n) return out;
  out.reserve(values.size());
  for (const rte_eth_xstat& v : values) {
    if (v.id < names.size()) out.emplace_back(names[v.id].name, v.value);
  }
  return out;
}

}  // namespace sluice::dpdk
