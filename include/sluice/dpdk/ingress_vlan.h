// The VLAN a received frame came in on: the outermost tag in the frame, or
// the one the NIC stripped into the mbuf (RTE_MBUF_F_RX_VLAN_STRIPPED,
// RTE_MBUF_F_RX_QINQ_STRIPPED). A leg's interface is a port and this VLAN.
//
// Any thread. Reads the mbuf's first line only. Does not allocate.
#ifndef SLUICE_DPDK_INGRESS_VLAN_H_
#define SLUICE_DPDK_INGRESS_VLAN_H_

#include <rte_mbuf.h>

#include <cstdint>

#include "sluice/packet/parse.h"

namespace sluice::dpdk {

// The VLAN ID (0: untagged) of frame `frame`, parsed from mbuf `m`.
[[gnu::always_inline]] inline uint16_t IngressVlan(const rte_mbuf* m,
                                                   const packet::ParsedFrame& frame) noexcept {
  constexpr uint64_t kStripped = RTE_MBUF_F_RX_VLAN_STRIPPED | RTE_MBUF_F_RX_QINQ_STRIPPED;
  uint16_t vlan = frame.vlan_count > 0 ? frame.vlan_id : 0;
  if ((m->ol_flags & kStripped) != 0) [[unlikely]] {
    vlan = (m->ol_flags & RTE_MBUF_F_RX_QINQ_STRIPPED) != 0 ? m->vlan_tci_outer : m->vlan_tci;
    vlan &= 0x0fff;
  }
  return vlan;
}

}  // namespace sluice::dpdk

#endif  // SLUICE_DPDK_INGRESS_VLAN_H_
