#include "sluice/dpdk/kernel_ring_drops.h"

#include <linux/if_packet.h>
#include <linux/if_xdp.h>
#include <rte_ethdev.h>
#include <rte_version.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <string>

#ifndef SOL_XDP
#define SOL_XDP 283
#endif

namespace sluice::dpdk {

namespace {

bool IsDriver(const rte_eth_dev_info& dev, const char* name) {
  return dev.driver_name != nullptr && std::strcmp(dev.driver_name, name) == 0;
}

// net_af_packet reads PACKET_STATISTICS into imissed itself from DPDK 25.03
// on; a second reader would steal its counts, as each read resets them.
bool PacketDriverHidesDrops(const rte_eth_dev_info& dev) {
#if RTE_VERSION < RTE_VERSION_NUM(25, 3, 0, 0)
  return IsDriver(dev, "net_af_packet");
#else
  (void)dev;
  return false;
#endif
}

// Every socket descriptor of this process, with its domain and inode.
struct OwnSocket {
  int fd;
  int domain;
  ino_t inode;
};
std::vector<OwnSocket> OwnSockets() {
  std::vector<OwnSocket> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    const std::string name = entry.path().filename().string();
    int fd = -1;
    if (std::from_chars(name.data(), name.data() + name.size(), fd).ec != std::errc()) continue;
    struct stat st = {};
    int domain = 0;
    socklen_t len = sizeof domain;
    if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode) ||
        getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) {
      continue;
    }
    out.push_back({fd, domain, st.st_ino});
  }
  return out;
}

}  // namespace

std::vector<int> PacketSocketsOf(int ifindex) {
  std::vector<int> fds;
  for (const OwnSocket& s : OwnSockets()) {
    sockaddr_ll addr = {};
    socklen_t len = sizeof addr;
    if (s.domain == AF_PACKET &&
        getsockname(s.fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0 &&
        addr.sll_ifindex == ifindex) {
      fds.push_back(s.fd);
    }
  }
  return fds;
}

std::vector<int> XdpSockets() {
  std::vector<int> fds;
  for (const OwnSocket& s : OwnSockets()) {
    if (s.domain == AF_XDP) fds.push_back(s.fd);
  }
  return fds;
}

void KernelRingDrops::Watch(uint16_t port_id) {
  rte_eth_dev_info dev = {};
  if (rte_eth_dev_info_get(port_id, &dev) != 0 || dev.if_index == 0) return;
  Port port;
  port.port_id = port_id;
  if (PacketDriverHidesDrops(dev)) {
    port.fds = PacketSocketsOf(static_cast<int>(dev.if_index));
  } else if (IsDriver(dev, "net_af_xdp")) {
    // Ports start one after another: the AF_XDP sockets no earlier port
    // claimed are this one's.
    port.kind = Kind::kXdp;
    for (int fd : XdpSockets()) {
      if (std::find(claimed_xdp_.begin(), claimed_xdp_.end(), fd) == claimed_xdp_.end()) {
        port.fds.push_back(fd);
        claimed_xdp_.push_back(fd);
      }
    }
  }
  if (!port.fds.empty()) ports_.push_back(std::move(port));
}

uint64_t KernelRingDrops::Drops(uint16_t port_id) const {
  for (const Port& port : ports_) {
    if (port.port_id != port_id) continue;
    if (port.kind == Kind::kXdp) {
      // XDP_STATISTICS counts up and is not reset by reading.
      uint64_t full = 0;
      for (int fd : port.fds) {
        xdp_statistics stats = {};
        socklen_t len = sizeof stats;
        if (getsockopt(fd, SOL_XDP, XDP_STATISTICS, &stats, &len) == 0 && len == sizeof stats) {
          full += stats.rx_ring_full;
        }
      }
      return full;
    }
    for (int fd : port.fds) {
      tpacket_stats stats = {};
      socklen_t len = sizeof stats;
      if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &stats, &len) == 0) {
        port.total->fetch_add(stats.tp_drops, std::memory_order_relaxed);
      }
    }
    return port.total->load(std::memory_order_relaxed);
  }
  return 0;
}

}  // namespace sluice::dpdk
