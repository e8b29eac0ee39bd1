// Frames the kernel dropped because a socket-backed port's receive ring was
// full, which DPDK 22.11's drivers leave out of imissed:
//  - net_af_packet never reads its sockets' PACKET_STATISTICS (DPDK reads
//    them itself from 25.03 on, and then this adds nothing);
//  - net_af_xdp reports XDP_STATISTICS' rx_dropped (no buffer on the fill
//    ring) but not rx_ring_full, the socket's RX ring overflowing, which a
//    kernel that keeps the two apart (Linux 5.9 on) counts separately.
// What this finds is added to the port's imissed, as a NIC's full RX ring.
//
// Watch: main thread, at start-up, right after each port starts and before
// privileges are dropped (it lists /proc/self/fd). Drops: any thread. Never
// touches the data plane.
#ifndef SLUICE_DPDK_KERNEL_RING_DROPS_H_
#define SLUICE_DPDK_KERNEL_RING_DROPS_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace sluice::dpdk {

class KernelRingDrops {
 public:
  // Finds the sockets of started port `port_id` when its driver is one of
  // the two above; for any other port (or none found) its drops stay 0.
  void Watch(uint16_t port_id);

  // The port's ring drops since Watch.
  uint64_t Drops(uint16_t port_id) const;

 private:
  enum class Kind : uint8_t { kPacket, kXdp };
  struct Port {
    uint16_t port_id = 0;
    Kind kind = Kind::kPacket;
    std::vector<int> fds;  // the driver's sockets, one per queue; not ours to close
    // PACKET_STATISTICS resets the kernel's count on each read: what the
    // reads returned is summed here.
    std::unique_ptr<std::atomic<uint64_t>> total = std::make_unique<std::atomic<uint64_t>>(0);
  };
  std::vector<Port> ports_;  // written by Watch only, before any reader runs
  std::vector<int> claimed_xdp_;  // AF_XDP sockets an earlier Watch found
};

// This process's packet sockets bound to interface `ifindex`.
std::vector<int> PacketSocketsOf(int ifindex);
// This process's AF_XDP sockets (which have no getsockname to tell their
// interface).
std::vector<int> XdpSockets();

}  // namespace sluice::dpdk

#endif  // SLUICE_DPDK_KERNEL_RING_DROPS_H_
