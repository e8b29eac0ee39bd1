// Writing the headers of a relayed datagram: Ethernet (+ optional 802.1Q),
// IPv4 or IPv6, UDP, with lengths and checksums, in front of a payload that
// stays where it is. Also the Internet checksum (RFC 1071) that both this and
// ParseFrame use.
//
// Data plane, any worker. Does not allocate; writes only the bytes it is told.
#ifndef SLUICE_PACKET_REWRITE_H_
#define SLUICE_PACKET_REWRITE_H_

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>

#include "sluice/packet/address.h"

namespace sluice::packet {

using MacAddress = std::array<uint8_t, 6>;

struct UdpHeaderSpec {
  MacAddress src_mac{};
  MacAddress dst_mac{};
  uint16_t vlan_id = 0;  // 0 = untagged; else an 802.1Q tag, VID 1-4094, PCP 0
  // Our address and port, and the peer's. The caller's duty: both set and of
  // the same family (asserted in debug builds). src's family decides IPv4 or
  // IPv6; a mismatch in a release build writes a wrong but in-bounds header.
  Endpoint src;
  Endpoint dst;
  uint8_t ttl = 64;      // IPv4 TTL or IPv6 hop limit
  uint8_t dscp = 46;     // EF (RFC 4594 telephony); 0 to leave unmarked
  // Leave the UDP checksum for the NIC: the UDP checksum field then holds the
  // pseudo-header sum, not complemented, exactly what DPDK's
  // rte_ipv4_phdr_cksum()/rte_ipv6_phdr_cksum() return, as the
  // RTE_MBUF_F_TX_UDP_CKSUM offload expects. The caller sets the mbuf's
  // ol_flags, l2_len and l3_len.
  bool udp_checksum_offload = false;
  // Leave the IPv4 header checksum for the NIC (RTE_MBUF_F_TX_IP_CKSUM): the
  // field is written as 0. No effect on IPv6, which has no header checksum.
  bool ip_checksum_offload = false;
  // The ones'-complement sum of the payload's 16-bit words, as
  // OnesComplementSum returns it, when the caller knows it: the UDP checksum
  // is then computed without reading the payload. A relay that forwards a
  // payload unchanged has it from the received checksum (UdpPayloadSum).
  std::optional<uint16_t> payload_sum;
};

// The ones'-complement sum of a received UDP payload's 16-bit words,
// recovered from the datagram's checksum, addresses and ports without reading
// the payload (RFC 1624's incremental update, run backwards). nullopt for a
// datagram without a checksum (0, over IPv4). As right as the checksum was:
// a corrupted payload keeps failing its check downstream.
std::optional<uint16_t> UdpPayloadSum(uint16_t checksum, const Endpoint& src, const Endpoint& dst,
                                      uint32_t payload_len) noexcept;

// Bytes HeaderLength(spec) needs in front of the payload: 14 (+4 with a VLAN
// tag) + 20 (IPv4) or 40 (IPv6) + 8.
uint32_t HeaderLength(const UdpHeaderSpec& spec) noexcept;

// Largest payload_len WriteUdpHeaders accepts for spec's family, so that the
// IPv4 total length or IPv6 payload length fits in 16 bits.
uint32_t MaxUdpPayload(const UdpHeaderSpec& spec) noexcept;

// Writes the headers into [payload - HeaderLength(spec), payload) for a
// payload of payload_len bytes (which the UDP checksum covers; it must be
// readable and at most MaxUdpPayload(spec), asserted in debug builds), and
// returns the start of the frame. ip_id is the IPv4 identification field
// (ignored for IPv6). IPv4 goes with DF set (RFC 6864 §4.1 lets the ID of an
// atomic datagram be anything).
uint8_t* WriteUdpHeaders(uint8_t* payload, uint32_t payload_len, const UdpHeaderSpec& spec,
                         uint16_t ip_id) noexcept;

// The headers WriteUdpHeaders writes for one spec, built once and stamped in
// front of many payloads: what a flow sends to one peer. Per packet only the
// lengths, the IPv4 ID and the checksums change, and they are patched in;
// the rest is one fixed-size copy. Write gives exactly WriteUdpHeaders' bytes.
class alignas(16) UdpHeaderTemplate {
 public:
  // spec as for WriteUdpHeaders; its payload_sum is not used here.
  void Build(const UdpHeaderSpec& spec) noexcept;
  // HeaderLength of the spec built from.
  uint32_t length() const noexcept { return len_; }
  // WriteUdpHeaders(payload, payload_len, spec, ip_id) with spec.payload_sum
  // = payload_sum (read from the payload when nullopt).
  uint8_t* Write(uint8_t* payload, uint32_t payload_len, uint16_t ip_id,
                 std::optional<uint16_t> payload_sum) const noexcept;

 private:
  // 16 bytes of sums and layout, then the headers: a template at a 16-byte
  // offset within a cache line has its headers (but the last two bytes of
  // IPv6 with a VLAN tag) in the next line.
  uint32_t ip_sum_ = 0;      // IPv4 header words but the total length and ID
  uint32_t pseudo_sum_ = 0;  // UDP pseudo-header words but the length
  uint32_t ports_sum_ = 0;   // source port + destination port
  uint8_t len_ = 0;          // 42, 46, 62 or 66
  uint8_t ip_offset_ = 0;
  uint8_t v6_ : 1 = 0;
  uint8_t ip_checksum_offload_ : 1 = 0;
  uint8_t udp_checksum_offload_ : 1 = 0;
  uint8_t bytes_[66] = {};   // the headers for an empty payload, ID 0
};

// --- Internet checksum (RFC 1071) -----------------------------------------
// All values are host-order numbers: a checksum field holds them big-endian.

// The ones'-complement sum of [data, data + len) added to `sum`, folded to 16
// bits, not complemented. An odd last byte counts as the high byte of a word
// padded with zero; when chaining, every piece but the last must have an even
// length.
uint16_t OnesComplementSum(const uint8_t* data, size_t len, uint16_t sum = 0) noexcept;

// The IPv4 header checksum of `header_len` bytes: what the checksum field
// must hold when it was 0 during the computation; 0 when verifying a header
// whose checksum field is correct.
uint16_t Ipv4HeaderChecksum(const uint8_t* header, size_t header_len) noexcept;

// The sum of the UDP pseudo-header (RFC 768 for IPv4, RFC 8200 §8.1 for IPv6)
// for a datagram of udp_len bytes (header included), not complemented: the
// value rte_ipv4_phdr_cksum()/rte_ipv6_phdr_cksum() compute.
uint16_t UdpPseudoHeaderSum(const IpAddress& src, const IpAddress& dst, uint32_t udp_len) noexcept;

// The complemented sum over the pseudo-header and [udp, udp + udp_len): with
// the checksum field 0 it is the checksum to send (after mapping 0 to 0xFFFF,
// RFC 768); with the received checksum in place it is 0 when that is right.
uint16_t UdpChecksum(const IpAddress& src, const IpAddress& dst, const uint8_t* udp,
                     uint32_t udp_len) noexcept;
// The same from the datagram's 8-byte header at `udp` and the sum of its
// payload's words (OnesComplementSum), summed already.
uint16_t UdpChecksum(const IpAddress& src, const IpAddress& dst, const uint8_t* udp,
                     uint32_t udp_len, uint16_t payload_sum) noexcept;

// What a NIC does to a frame sent with RTE_MBUF_F_TX_IP_CKSUM (ipv4_header)
// and RTE_MBUF_F_TX_UDP_CKSUM (udp): the IPv4 header checksum computed into
// its field (which WriteUdpHeaders left 0), and the UDP checksum computed
// over the datagram as it stands, its field seeded with the pseudo-header sum,
// and stored complemented (a computed 0 as 0xFFFF). l2_len and l3_len as the
// mbuf gives them. For a device that cannot (the benchmark's ring ports) and
// for tests; false, frame untouched, when the lengths do not fit.
bool CompleteOffloadedChecksums(uint8_t* frame, uint32_t frame_len, uint32_t l2_len,
                                uint32_t l3_len, bool ipv4_header, bool udp) noexcept;

// Write, inline: the relay stamps a template on every packet it sends. What
// it needs of rewrite.cc's helpers is here too.
namespace rewrite_internal {

constexpr uint32_t kIpv4Len = 20;
constexpr uint32_t kIpv6Len = 40;
constexpr uint32_t kUdpLen = 8;

// One 16-bit store (stored byte by byte, neighbours were merged in shifts).
inline uint8_t* Put16(uint8_t* p, uint16_t v) {
  if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap16(v);
  std::memcpy(p, &v, 2);
  return p + 2;
}

// The ones'-complement sum in 64 bits folded to 16 (RFC 1071 §2(C)).
inline uint16_t Fold(uint64_t sum) {
  sum = (sum & 0xffffffffu) + (sum >> 32);  // < 2^33 - 1: no carry out below
  const uint32_t s = static_cast<uint32_t>(sum) + static_cast<uint32_t>(sum >> 32);
  // The upper half of s + (s rotated by 16) is the halves' sum with the
  // lower halves' carry added back (RFC 1071 §4.1's end-around carry).
  return static_cast<uint16_t>((s + std::rotr(s, 16)) >> 16);
}

// The UDP checksum field for a datagram of udp_len bytes whose pseudo-header
// words (but the length) sum to pseudo, ports to ports, payload to payload.
inline uint16_t UdpChecksumField(uint64_t pseudo, uint32_t ports, uint32_t udp_len,
                                 bool offload, uint16_t payload) {
  // The pseudo-header's length: 16 bits (RFC 768) or 32 (RFC 8200), whose
  // upper word is 0 as udp_len fits in 16 bits.
  pseudo += udp_len;
  if (offload) return Fold(pseudo);
  uint16_t checksum = static_cast<uint16_t>(~Fold(pseudo + ports + udp_len + payload));
  // RFC 768 (and RFC 8200 §8.1): a computed 0 goes out as all ones, since 0
  // means "no checksum" over IPv4 and is invalid over IPv6.
  return checksum == 0 ? 0xffff : checksum;
}

}  // namespace rewrite_internal

inline uint8_t* UdpHeaderTemplate::Write(uint8_t* payload, uint32_t payload_len, uint16_t ip_id,
                                         std::optional<uint16_t> payload_sum) const noexcept {
  using rewrite_internal::Fold, rewrite_internal::Put16, rewrite_internal::UdpChecksumField;
  using rewrite_internal::kIpv4Len, rewrite_internal::kIpv6Len, rewrite_internal::kUdpLen;
  uint8_t* const frame = payload - len_;
  // One constant-size copy per layout; a runtime length would call memcpy.
  switch (len_) {
    case 42: std::memcpy(frame, bytes_, 42); break;
    case 46: std::memcpy(frame, bytes_, 46); break;
    case 62: std::memcpy(frame, bytes_, 62); break;
    default: std::memcpy(frame, bytes_, 66); break;
  }
  uint8_t* const ip = frame + ip_offset_;
  const uint32_t udp_len = kUdpLen + payload_len;
  uint8_t* udp;
  if (v6_) {
    Put16(ip + 4, static_cast<uint16_t>(udp_len));
    udp = ip + kIpv6Len;
  } else {
    Put16(ip + 2, static_cast<uint16_t>(kIpv4Len + udp_len));
    Put16(ip + 4, ip_id);
    if (!ip_checksum_offload_) {
      Put16(ip + 10, static_cast<uint16_t>(~Fold(uint64_t{ip_sum_} + kIpv4Len + udp_len + ip_id)));
    }
    udp = ip + kIpv4Len;
  }
  Put16(udp + 4, static_cast<uint16_t>(udp_len));
  const uint16_t sum = udp_checksum_offload_ ? 0
                       : payload_sum         ? *payload_sum
                                             : OnesComplementSum(payload, payload_len);
  Put16(udp + 6, UdpChecksumField(pseudo_sum_, ports_sum_, udp_len, udp_checksum_offload_, sum));
  return frame;
}

}  // namespace sluice::packet

#endif  // SLUICE_PACKET_REWRITE_H_
