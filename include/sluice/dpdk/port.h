// Bringing up a DPDK port for a configured interface: queues, RSS, MTU.
//
// Main thread, at start-up and shutdown.
#ifndef SLUICE_DPDK_PORT_H_
#define SLUICE_DPDK_PORT_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "sluice/packet/rewrite.h"

struct rte_mempool;

namespace sluice::dpdk {

struct PortSetup {
  std::string device;      // DPDK device name (vdev name or PCI address)
  uint16_t rx_queues = 1;
  uint16_t tx_queues = 1;  // one per worker, plus one for the control thread
  uint16_t rx_ring_size = 1024;
  uint16_t tx_ring_size = 1024;
  uint16_t mtu = 1500;
  rte_mempool* pool = nullptr;
  // Enable the checksum offloads the device offers (receive and transmit,
  // IPv4 header and UDP); false leaves every checksum to software.
  bool checksum_offload = true;
};

struct PortInfo {
  uint16_t port_id = 0;
  packet::MacAddress mac{};
  bool rx_ip_checksum_offload = false;   // the NIC verifies IPv4 header checksums
  bool rx_udp_checksum_offload = false;  // and UDP checksums
  bool tx_ip_checksum_offload = false;   // the NIC fills in IPv4 header checksums
  bool tx_udp_checksum_offload = false;  // and UDP checksums (from the pseudo-header sum)
};

// Configures and starts the port. Errors say what to change in the config
// (for example too few queues on a virtual device).
absl::StatusOr<PortInfo> StartPort(const PortSetup& setup);

void StopPort(uint16_t port_id);

// The port's extended counters (rte_eth_xstats), by the driver's names;
// empty when the driver has none. Control thread.
std::vector<std::pair<std::string, uint64_t>> ReadXstats(uint16_t port_id);

}  // namespace sluice::dpdk

#endif  // SLUICE_DPDK_PORT_H_
