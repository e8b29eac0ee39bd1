// A UDP frame in an mbuf, as a NIC would have received it: headers written
// by packet::WriteUdpHeaders (checksums in software) in front of a payload.
// What tests feed a worker or the handshake thread.
#ifndef SLUICE_TESTS_TESTING_UDP_FRAME_H_
#define SLUICE_TESTS_TESTING_UDP_FRAME_H_

#include <rte_mbuf.h>

#include <cstdint>
#include <cstring>
#include <span>

#include "sluice/packet/rewrite.h"

namespace sluice::testing {

// `payload` under the headers `spec` describes, from `pool`, with
// mbuf->port = `port`; null when the pool is empty.
inline rte_mbuf* UdpFrame(rte_mempool* pool, const packet::UdpHeaderSpec& spec,
                          std::span<const uint8_t> payload, uint16_t port) {
  rte_mbuf* m = rte_pktmbuf_alloc(pool);
  if (m == nullptr) return nullptr;
  m->port = port;
  const uint32_t hdr = packet::HeaderLength(spec);
  uint8_t* start = reinterpret_cast<uint8_t*>(
      rte_pktmbuf_append(m, static_cast<uint16_t>(hdr + payload.size())));
  if (!payload.empty()) std::memcpy(start + hdr, payload.data(), payload.size());
  packet::WriteUdpHeaders(start + hdr, static_cast<uint32_t>(payload.size()), spec, 1);
  return m;
}

}  // namespace sluice::testing

#endif  // SLUICE_TESTS_TESTING_UDP_FRAME_H_
