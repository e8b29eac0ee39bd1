#include "sluice/packet/rewrite.h"

#include <bit>
#include <cassert>
#include <cstring>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace sluice::packet {
namespace {

// The checksum is written with a few lines here rather than DPDK's
// rte_raw_cksum() so that the packet library, which the control plane and
// the tests link too, needs neither DPDK's headers nor its build flags.

constexpr uint16_t kEtherTypeIpv4 = 0x0800;
constexpr uint16_t kEtherTypeIpv6 = 0x86dd;
constexpr uint16_t kEtherTypeVlan = 0x8100;
constexpr uint8_t kProtoUdp = 17;
constexpr uint32_t kEtherLen = 14;
constexpr uint32_t kVlanLen = 4;
using rewrite_internal::Fold;
using rewrite_internal::kIpv4Len;
using rewrite_internal::kIpv6Len;
using rewrite_internal::kUdpLen;
using rewrite_internal::Put16;
using rewrite_internal::UdpChecksumField;


// Ones'-complement addition in 64 bits: the carry out goes back in at the
// bottom (RFC 1071 §2(C)). 2^64 - 1 is a multiple of 2^16 - 1, so folding the
// result to 16 bits later gives the same sum as adding 16-bit words.
inline uint64_t Add64(uint64_t sum, uint64_t word) {
  sum += word;
  return sum + (sum < word);
}

// The sum of the two big-endian 16-bit words at p, as a host-order number.
inline uint32_t PairSum(const uint8_t* p) {
  uint32_t w;
  std::memcpy(&w, p, 4);
  if constexpr (std::endian::native == std::endian::little) w = __builtin_bswap32(w);
  return (w >> 16) + (w & 0xffff);
}

// The sum of an address's big-endian 16-bit words, as a host-order number.
inline uint32_t WordSum(const IpAddress& a) {
  const uint8_t* b = a.bytes.data();
  uint32_t sum = PairSum(b);
  if (a.is_v6()) sum += PairSum(b + 4) + PairSum(b + 8) + PairSum(b + 12);
  return sum;
}


#if defined(__x86_64__)
// Adds the kWords 64-bit words at data to sum in one chain of add-with-carry
// instructions (GCC keeps the carry in the flag between _addcarry_u64 calls
// whose results stay in registers), the last carry added back.
template <int kWords>
[[gnu::always_inline]] inline uint64_t AddWithCarries(uint64_t sum, const uint8_t* data) {
  unsigned long long s = sum;
  unsigned char carry = 0;
  for (int i = 0; i < kWords; ++i) {
    unsigned long long w;
    std::memcpy(&w, data + 8 * i, 8);
    carry = _addcarry_u64(carry, s, w, &s);
  }
  _addcarry_u64(carry, s, 0, &s);
  return s;
}
#endif

// RFC 1071 §2(B): the ones'-complement sum does not depend on byte order, so
// words are added as the CPU loads them, 64 bits at a time (§2(C): wider
// words, carries added back), and the folded result is turned into a
// big-endian number once at the end. Every piece must start at an even offset
// of the summed stream.
inline uint64_t Accumulate(const uint8_t* data, size_t len, uint64_t acc) {
#if defined(__x86_64__)
  // One add-with-carry per 8 bytes, the carry kept in the flag from word
  // to word and added back at the end of each step.
  while (len >= 64) {
    acc = AddWithCarries<8>(acc, data);
    data += 64;
    len -= 64;
  }
  if (len & 32) {
    acc = AddWithCarries<4>(acc, data);
    data += 32;
  }
  if (len & 16) {
    acc = AddWithCarries<2>(acc, data);
    data += 16;
  }
  if (len & 8) {
    acc = AddWithCarries<1>(acc, data);
    data += 8;
  }
  len &= 7;
#else
  // Two accumulators halve the chain of dependent add-with-carry steps.
  uint64_t other = 0;
  while (len >= 32) {
    uint64_t w[4];
    std::memcpy(w, data, 32);
    acc = Add64(acc, w[0]);
    other = Add64(other, w[1]);
    acc = Add64(acc, w[2]);
    other = Add64(other, w[3]);
    data += 32;
    len -= 32;
  }
  acc = Add64(acc, other);
  // Fewer than 32 bytes.
  while (len >= 8) {
    uint64_t w;
    std::memcpy(&w, data, 8);
    acc = Add64(acc, w);
    data += 8;
    len -= 8;
  }
#endif
  // The tail: fewer than 8 bytes.
  if (len >= 4) {
    uint32_t w;
    std::memcpy(&w, data, 4);
    acc = Add64(acc, w);
    data += 4;
    len -= 4;
  }
  if (len >= 2) {
    uint16_t w;
    std::memcpy(&w, data, 2);
    acc = Add64(acc, w);
    data += 2;
    len -= 2;
  }
  if (len == 1) {
    const uint8_t last[2] = {data[0], 0};
    uint16_t w;
    std::memcpy(&w, last, 2);
    acc = Add64(acc, w);
  }
  return acc;
}

// A host-order 16-bit sum in the accumulator's (memory) order, and back.
inline uint16_t SwapIfLittle(uint16_t v) {
  if constexpr (std::endian::native == std::endian::little) {
    return static_cast<uint16_t>(v << 8 | v >> 8);
  }
  return v;
}
inline uint16_t Finish(uint64_t acc) { return SwapIfLittle(Fold(acc)); }

// The sum of the UDP pseudo-header's 16-bit words as a host-order number,
// from values rather than from a buffer built for it: RFC 768 (source,
// destination, zero, protocol, 16-bit length) and RFC 8200 §8.1 (the same
// with a 32-bit length).
inline uint64_t PseudoHeaderWords(const IpAddress& src, const IpAddress& dst, uint32_t udp_len) {
  return uint64_t{WordSum(src)} + WordSum(dst) + kProtoUdp + (udp_len >> 16) + (udp_len & 0xffff);
}

// IPv4 header words but the total length and the ID (the checksum field
// counts as 0), from the values that WriteUdpHeaders stores.
inline uint64_t Ipv4HeaderWords(const UdpHeaderSpec& spec) {
  const uint8_t traffic_class = static_cast<uint8_t>((spec.dscp & 0x3f) << 2);  // ECN 0
  return 0x4500u + traffic_class + 0x4000u + (uint32_t{spec.ttl} << 8 | kProtoUdp) +
         WordSum(spec.src.ip) + WordSum(spec.dst.ip);
}

}  // namespace

uint16_t OnesComplementSum(const uint8_t* data, size_t len, uint16_t sum) noexcept {
  return Finish(Accumulate(data, len, SwapIfLittle(sum)));
}

uint16_t Ipv4HeaderChecksum(const uint8_t* header, size_t header_len) noexcept {
  // Without options (nearly every header), the length is a constant the
  // sum unrolls for.
  if (header_len == kIpv4Len) {
    return static_cast<uint16_t>(~Finish(Accumulate(header, kIpv4Len, 0)));
  }
  return static_cast<uint16_t>(~Finish(Accumulate(header, header_len, 0)));
}

uint16_t UdpPseudoHeaderSum(const IpAddress& src, const IpAddress& dst, uint32_t udp_len) noexcept {
  return Fold(PseudoHeaderWords(src, dst, udp_len));
}

uint16_t UdpChecksum(const IpAddress& src, const IpAddress& dst, const uint8_t* udp,
                     uint32_t udp_len) noexcept {
  const uint64_t sum = PseudoHeaderWords(src, dst, udp_len) + OnesComplementSum(udp, udp_len);
  return static_cast<uint16_t>(~Fold(sum));
}

uint16_t UdpChecksum(const IpAddress& src, const IpAddress& dst, const uint8_t* udp,
                     uint32_t udp_len, uint16_t payload_sum) noexcept {
  const uint64_t sum =
      PseudoHeaderWords(src, dst, udp_len) + PairSum(udp) + PairSum(udp + 4) + payload_sum;
  return static_cast<uint16_t>(~Fold(sum));
}

std::optional<uint16_t> UdpPayloadSum(uint16_t checksum, const Endpoint& src, const Endpoint& dst,
                                      uint32_t payload_len) noexcept {
  if (checksum == 0) return std::nullopt;  // none (IPv4); IPv6 refuses it before here
  const uint32_t udp_len = kUdpLen + payload_len;
  // fold(pseudo + header + payload) == ~checksum, so payload == ~checksum -
  // (pseudo + header), subtraction being addition of the ones' complement.
  const uint64_t headers =
      PseudoHeaderWords(src.ip, dst.ip, udp_len) + src.port + dst.port + udp_len;
  // Minus headers, as a multiple of 0xffff (ones'-complement zero) larger
  // than any header sum less it.
  return Fold(uint64_t{static_cast<uint16_t>(~checksum)} + (uint64_t{0xffff} << 32) - headers);
}

uint32_t HeaderLength(const UdpHeaderSpec& spec) noexcept {
  return kEtherLen + (spec.vlan_id != 0 ? kVlanLen : 0) +
         (spec.src.ip.is_v6() ? kIpv6Len : kIpv4Len) + kUdpLen;
}

uint32_t MaxUdpPayload(const UdpHeaderSpec& spec) noexcept {
  return 0xffff - kUdpLen - (spec.src.ip.is_v6() ? 0 : kIpv4Len);
}

uint8_t* WriteUdpHeaders(uint8_t* payload, uint32_t payload_len, const UdpHeaderSpec& spec,
                         uint16_t ip_id) noexcept {
  assert(!spec.src.ip.unset() && spec.src.ip.family == spec.dst.ip.family);
  assert(payload_len <= MaxUdpPayload(spec));
  const bool v6 = spec.src.ip.is_v6();
  const uint32_t udp_len = kUdpLen + payload_len;
  uint8_t* const frame = payload - HeaderLength(spec);

  // Ethernet II, with an 802.1Q tag when asked (IEEE 802.1Q §9.6: TPID, then
  // PCP 0, DEI 0, VID).
  uint8_t* p = frame;
  std::memcpy(p, spec.dst_mac.data(), 6);
  std::memcpy(p + 6, spec.src_mac.data(), 6);
  p += 12;
  if (spec.vlan_id != 0) {
    p = Put16(p, kEtherTypeVlan);
    p = Put16(p, spec.vlan_id & 0x0fff);
  }
  p = Put16(p, v6 ? kEtherTypeIpv6 : kEtherTypeIpv4);

  uint8_t* const ip = p;
  const uint8_t traffic_class = static_cast<uint8_t>((spec.dscp & 0x3f) << 2);  // ECN 0
  if (v6) {
    // RFC 8200 §3: version 6, traffic class, flow label 0.
    ip[0] = static_cast<uint8_t>(0x60 | traffic_class >> 4);
    ip[1] = static_cast<uint8_t>(traffic_class << 4);
    ip[2] = 0;
    ip[3] = 0;
    Put16(ip + 4, static_cast<uint16_t>(udp_len));
    ip[6] = kProtoUdp;
    ip[7] = spec.ttl;
    std::memcpy(ip + 8, spec.src.ip.bytes.data(), 16);
    std::memcpy(ip + 24, spec.dst.ip.bytes.data(), 16);
    p = ip + kIpv6Len;
  } else {
    // RFC 791 §3.1, RFC 2474 §3 (DSCP in the upper six bits of the TOS byte).
    ip[0] = 0x45;
    ip[1] = traffic_class;
    Put16(ip + 2, static_cast<uint16_t>(kIpv4Len + udp_len));
    Put16(ip + 4, ip_id);
    Put16(ip + 6, 0x4000);  // DF, offset 0
    ip[8] = spec.ttl;
    ip[9] = kProtoUdp;
    ip[10] = 0;
    ip[11] = 0;
    std::memcpy(ip + 12, spec.src.ip.bytes.data(), 4);
    std::memcpy(ip + 16, spec.dst.ip.bytes.data(), 4);
    if (!spec.ip_checksum_offload) {
      // Summed from the values rather than read back from the bytes just
      // stored, which would stall on store forwarding.
      const uint64_t sum = Ipv4HeaderWords(spec) + kIpv4Len + udp_len + ip_id;
      Put16(ip + 10, static_cast<uint16_t>(~Fold(sum)));
    }
    p = ip + kIpv4Len;
  }

  uint8_t* const udp = p;
  Put16(udp, spec.src.port);
  Put16(udp + 2, spec.dst.port);
  Put16(udp + 4, static_cast<uint16_t>(udp_len));
  const uint16_t payload_sum =
      spec.udp_checksum_offload ? 0
      : spec.payload_sum        ? *spec.payload_sum
                                : OnesComplementSum(payload, payload_len);
  Put16(udp + 6, UdpChecksumField(PseudoHeaderWords(spec.src.ip, spec.dst.ip, 0),
                                  uint32_t{spec.src.port} + spec.dst.port, udp_len,
                                  spec.udp_checksum_offload, payload_sum));
  return frame;
}

void UdpHeaderTemplate::Build(const UdpHeaderSpec& spec) noexcept {
  len_ = static_cast<uint8_t>(HeaderLength(spec));
  v6_ = spec.src.ip.is_v6();
  ip_offset_ = static_cast<uint8_t>(kEtherLen + (spec.vlan_id != 0 ? kVlanLen : 0));
  ip_checksum_offload_ = spec.ip_checksum_offload;
  udp_checksum_offload_ = spec.udp_checksum_offload;
  // Each fits 32 bits: at most a dozen 16-bit words.
  ip_sum_ = static_cast<uint32_t>(Ipv4HeaderWords(spec));
  pseudo_sum_ = static_cast<uint32_t>(PseudoHeaderWords(spec.src.ip, spec.dst.ip, 0));
  ports_sum_ = uint32_t{spec.src.port} + spec.dst.port;
  UdpHeaderSpec empty = spec;
  empty.payload_sum = 0;
  WriteUdpHeaders(bytes_ + len_, 0, empty, 0);
}

bool CompleteOffloadedChecksums(uint8_t* frame, uint32_t frame_len, uint32_t l2_len,
                                uint32_t l3_len, bool ipv4_header, bool udp) noexcept {
  if (uint64_t{l2_len} + l3_len + kUdpLen > frame_len) return false;
  if (ipv4_header && l3_len < kIpv4Len) return false;
  uint8_t* const ip = frame + l2_len;
  uint8_t* const l4 = ip + l3_len;
  if (ipv4_header) Put16(ip + 10, Ipv4HeaderChecksum(ip, l3_len));
  if (udp) {
    const uint16_t sum = static_cast<uint16_t>(~OnesComplementSum(l4, frame_len - l2_len - l3_len));
    Put16(l4 + 6, sum == 0 ? 0xffff : sum);
  }
  return true;
}

}  // namespace sluice::packet
