// Parsing received frames: Ethernet, 802.1Q/802.1ad, IPv4 (with options),
// IPv6 (with extension headers), UDP; and what the worker should do with
// each frame.
//
// Data plane, any worker. A pure function over a byte range: no allocation,
// no state, never reads outside [data, data + len), never fails other than
// by returning kDrop with a reason.
#ifndef SLUICE_PACKET_PARSE_H_
#define SLUICE_PACKET_PARSE_H_

#include <cstdint>

#include "sluice/packet/address.h"
#include "sluice/packet/classify.h"

namespace sluice::packet {

enum class FrameKind : uint8_t {
  kUdp,        // a UDP datagram for us to look up (unfragmented, lengths valid)
  kArp,        // ARP, to the slow path
  kIcmpV4,     // ICMP (echo and errors), to the slow path
  kIcmpV6,     // ICMPv6 (neighbour discovery, echo), to the slow path
  kOtherL4,    // IP but neither UDP nor ICMP: dropped, counted
  kOtherL2,    // not ARP, IPv4 or IPv6 (or a third VLAN tag): dropped, counted
  kDrop,       // malformed, with a reason in ParsedFrame::error
};
inline constexpr int kFrameKindCount = 7;
const char* FrameKindName(FrameKind kind) noexcept;

// Why a frame was refused; each has its own counter. The values index
// counter arrays: append, never renumber.
enum class ParseError : uint8_t {
  kNone = 0,
  kRunt,             // the frame, or the IP payload, is shorter than a header it must hold
  kBadIpVersion,     // version nibble disagrees with the ethertype
  kBadIpHeaderLen,   // IHL < 5 or past the frame
  kBadIpTotalLen,    // IP total/payload length past the frame or below headers
  kBadIpChecksum,
  kFragment,         // IPv4 MF/offset or an IPv6 fragment header
  kBadUdpLen,        // UDP length past the IP payload or below 8
  kBadUdpChecksum,   // wrong, or zero over IPv6 (RFC 8200 §8.1)
  kTtlExpired,       // TTL/hop limit 0 on arrival
  kBadExtHeaders,    // IPv6 extension headers past the payload, more than 8,
                     // or hop-by-hop other than first
  kOversized,        // longer than 65535 bytes: no mbuf segment is, and the
                     // offsets below would not fit
};
inline constexpr int kParseErrorCount = 12;
const char* ParseErrorName(ParseError e) noexcept;

// Frames longer than this are kDrop/kOversized.
inline constexpr uint32_t kMaxFrameLen = 65535;

struct ParsedFrame {
  FrameKind kind = FrameKind::kDrop;
  ParseError error = ParseError::kNone;  // kNone unless kind == kDrop
  uint8_t vlan_count = 0;      // 0, 1 or 2 (QinQ)
  uint16_t vlan_id = 0;        // outermost VLAN ID when vlan_count > 0
  uint16_t l3_offset = 0;      // start of the ARP or IP header
  uint16_t l4_offset = 0;      // start of the UDP/ICMP header (kUdp, kIcmpV4/V6, kOtherL4)
  uint16_t payload_offset = 0; // start of the UDP payload (kUdp)
  uint16_t payload_len = 0;    // UDP length - 8 (trailing Ethernet padding excluded)
  // UDP source and destination for kUdp. For kIcmpV4/V6 and kOtherL4 the
  // addresses are filled too, with port 0.
  Endpoint src;
  Endpoint dst;
  PayloadKind payload_kind = PayloadKind::kUnknown;  // kUdp only
  // kUdp whose UDP checksum was verified here: the sum of its payload's
  // 16-bit words (OnesComplementSum), which a relay forwarding the payload
  // unchanged puts in the new checksum without reading the payload again.
  bool payload_sum_known = false;
  uint16_t payload_sum = 0;
};

struct ParseOptions {
  // Verify the IPv4 header checksum (skip when the NIC already did:
  // RTE_MBUF_F_RX_IP_CKSUM_GOOD).
  bool verify_ip_checksum = true;
  // Verify the UDP checksum: over IPv4 when non-zero (zero means none, RFC
  // 768); over IPv6 always, where zero is refused (RFC 8200 §8.1). Skip when
  // the NIC already did (RTE_MBUF_F_RX_L4_CKSUM_GOOD): this is the one part
  // of parsing that reads the whole payload.
  bool verify_udp_checksum = true;
};

// Parses one Ethernet frame of `len` bytes (without the FCS). `data` may be
// null when `len` is 0.
//
// kUdp guarantees: l3_offset < l4_offset, l4_offset + 8 == payload_offset,
// payload_offset + payload_len <= len, and src/dst are of the same family.
// Bytes after the IP datagram (Ethernet padding) are allowed and ignored.
// ICMP needs at least its 8-byte header, ARP its full header and addresses.
ParsedFrame ParseFrame(const uint8_t* data, uint32_t len, const ParseOptions& options) noexcept;
// The same into *out, for a caller that keeps the result in a larger record:
// copying a returned ParsedFrame reads in wide loads what was just written in
// narrow stores, a store-forwarding stall per frame.
void ParseFrame(const uint8_t* data, uint32_t len, const ParseOptions& options,
                ParsedFrame* out) noexcept;

}  // namespace sluice::packet

#endif  // SLUICE_PACKET_PARSE_H_
