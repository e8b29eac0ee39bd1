#include "sluice/packet/parse.h"

#include <cstring>
#include <span>

#include "sluice/packet/rewrite.h"  // the RFC 1071 checksums

namespace sluice::packet {
namespace {

constexpr uint16_t kEtherTypeIpv4 = 0x0800;
constexpr uint16_t kEtherTypeArp = 0x0806;
constexpr uint16_t kEtherTypeVlan = 0x8100;   // IEEE 802.1Q C-tag
constexpr uint16_t kEtherTypeQinQ = 0x88a8;   // IEEE 802.1ad S-tag
constexpr uint16_t kEtherTypeIpv6 = 0x86dd;
constexpr uint32_t kEtherLen = 14;
constexpr uint32_t kVlanLen = 4;
constexpr uint32_t kMaxVlanTags = 2;
constexpr uint32_t kArpFixedLen = 8;
constexpr uint32_t kIpv4MinLen = 20;
constexpr uint32_t kIpv6Len = 40;
constexpr uint32_t kUdpLen = 8;
constexpr uint32_t kIcmpLen = 8;
constexpr uint8_t kProtoHopByHop = 0;
constexpr uint8_t kProtoIcmp = 1;
constexpr uint8_t kProtoUdp = 17;
constexpr uint8_t kProtoRouting = 43;
constexpr uint8_t kProtoFragment = 44;
constexpr uint8_t kProtoIcmpV6 = 58;
constexpr uint8_t kProtoDestOptions = 60;
// More extension headers than this is an attack, not a media packet.
constexpr int kMaxExtHeaders = 8;

inline uint16_t Get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

// Sets an address in place. The frame's addresses start zeroed, so the 12
// unused bytes of an IPv4 one already are. (Building an IpAddress and copying
// it costs a store-forwarding stall per address.)
inline void SetAddress(IpAddress& a, uint8_t family, const uint8_t* bytes) {
  a.family = family;
  std::memcpy(a.bytes.data(), bytes, family == 4 ? 4 : 16);
}

// The parsers fill one ParsedFrame in place (the caller's return slot).
inline void Drop(ParsedFrame& f, ParseError e) {
  f.kind = FrameKind::kDrop;
  f.error = e;
}

// The IP datagram's transport part, [l4, end), is known and inside the frame;
// f.src.ip and f.dst.ip are set. Decides by protocol.
// Inlined into both IP versions' parsers: a call costs a packet about as
// much as the UDP part itself.
[[gnu::always_inline]] inline void ParseL4(const uint8_t* data, ParsedFrame& f, uint8_t proto,
                                           uint32_t l4, uint32_t end,
                                           const ParseOptions& options) {
  f.l4_offset = static_cast<uint16_t>(l4);
  const uint32_t avail = end - l4;
  const bool v6 = f.src.ip.is_v6();
  if (proto == (v6 ? kProtoIcmpV6 : kProtoIcmp)) {
    if (avail < kIcmpLen) return Drop(f, ParseError::kRunt);
    f.kind = v6 ? FrameKind::kIcmpV6 : FrameKind::kIcmpV4;
    return;
  }
  if (proto != kProtoUdp) {
    f.kind = FrameKind::kOtherL4;
    return;
  }
  if (avail < kUdpLen) return Drop(f, ParseError::kRunt);
  const uint8_t* udp = data + l4;
  // RFC 768: the length covers header and data. A shorter length than the IP
  // payload leaves trailing bytes, which are ignored (as Linux does).
  const uint16_t udp_len = Get16(udp + 4);
  if (udp_len < kUdpLen || udp_len > avail) return Drop(f, ParseError::kBadUdpLen);
  if (options.verify_udp_checksum) {
    // RFC 768: 0 means the sender computed none (IPv4 only). RFC 8200 §8.1:
    // over IPv6 the checksum is mandatory and a zero one is discarded.
    if (Get16(udp + 6) == 0) {
      if (v6) return Drop(f, ParseError::kBadUdpChecksum);
    } else {
      // The payload summed on its own, for the checksum it is sent with.
      const uint16_t payload_sum = OnesComplementSum(udp + kUdpLen, udp_len - kUdpLen);
      if (UdpChecksum(f.src.ip, f.dst.ip, udp, udp_len, payload_sum) != 0) {
        return Drop(f, ParseError::kBadUdpChecksum);
      }
      f.payload_sum_known = true;
      f.payload_sum = payload_sum;
    }
  }
  f.src.port = Get16(udp);
  f.dst.port = Get16(udp + 2);
  f.payload_offset = static_cast<uint16_t>(l4 + kUdpLen);
  f.payload_len = static_cast<uint16_t>(udp_len - kUdpLen);
  f.payload_kind =
      ClassifyPayload(std::span<const uint8_t>(data + f.payload_offset, f.payload_len));
  f.kind = FrameKind::kUdp;
}

void ParseIpv4(const uint8_t* data, uint32_t len, ParsedFrame& f, const ParseOptions& options) {
  const uint32_t l3 = f.l3_offset;
  const uint32_t avail = len - l3;
  if (avail < kIpv4MinLen) return Drop(f, ParseError::kRunt);
  const uint8_t* ip = data + l3;
  // RFC 791 §3.1.
  if (ip[0] >> 4 != 4) return Drop(f, ParseError::kBadIpVersion);
  const uint32_t ihl = (ip[0] & 0x0fu) * 4;
  if (ihl < kIpv4MinLen || ihl > avail) return Drop(f, ParseError::kBadIpHeaderLen);
  // Bytes past the total length are Ethernet padding (frames are at least 60
  // bytes) and are not part of the datagram.
  const uint32_t total = Get16(ip + 2);
  if (total < ihl || total > avail) return Drop(f, ParseError::kBadIpTotalLen);
  if (options.verify_ip_checksum && Ipv4HeaderChecksum(ip, ihl) != 0) {
    return Drop(f, ParseError::kBadIpChecksum);
  }
  SetAddress(f.src.ip, 4, ip + 12);
  SetAddress(f.dst.ip, 4, ip + 16);
  // MF set or a non-zero fragment offset: the relay does not reassemble.
  if ((Get16(ip + 6) & 0x3fff) != 0) return Drop(f, ParseError::kFragment);
  if (ip[8] == 0) return Drop(f, ParseError::kTtlExpired);
  ParseL4(data, f, ip[9], l3 + ihl, l3 + total, options);
}

void ParseIpv6(const uint8_t* data, uint32_t len, ParsedFrame& f, const ParseOptions& options) {
  const uint32_t l3 = f.l3_offset;
  const uint32_t avail = len - l3;
  if (avail < kIpv6Len) return Drop(f, ParseError::kRunt);
  const uint8_t* ip = data + l3;
  // RFC 8200 §3.
  if (ip[0] >> 4 != 6) return Drop(f, ParseError::kBadIpVersion);
  const uint32_t payload_len = Get16(ip + 4);
  if (payload_len > avail - kIpv6Len) return Drop(f, ParseError::kBadIpTotalLen);
  SetAddress(f.src.ip, 6, ip + 8);
  SetAddress(f.dst.ip, 6, ip + 24);
  if (ip[7] == 0) return Drop(f, ParseError::kTtlExpired);

  // RFC 8200 §4: walk the extension headers to the upper-layer header. Each
  // of these three has its next header in byte 0 and its length, in 8-octet
  // units not counting the first 8, in byte 1 (§4.3, §4.4, §4.6).
  const uint32_t end = l3 + kIpv6Len + payload_len;
  uint32_t off = l3 + kIpv6Len;
  uint8_t next = ip[6];
  for (int n = 0;; ++n) {
    switch (next) {
      case kProtoHopByHop:
        // §4.1: hop-by-hop options only immediately after the IPv6 header.
        if (n != 0) return Drop(f, ParseError::kBadExtHeaders);
        [[fallthrough]];
      case kProtoRouting:
      case kProtoDestOptions: {
        if (n == kMaxExtHeaders || end - off < 2) return Drop(f, ParseError::kBadExtHeaders);
        const uint32_t ext_len = (uint32_t{data[off + 1]} + 1) * 8;
        if (ext_len > end - off) return Drop(f, ParseError::kBadExtHeaders);
        next = data[off];
        off += ext_len;
        break;
      }
      case kProtoFragment:
        return Drop(f, ParseError::kFragment);
      default:
        ParseL4(data, f, next, off, end, options);
        return;
    }
  }
}

}  // namespace

const char* FrameKindName(FrameKind kind) noexcept {
  switch (kind) {
    case FrameKind::kUdp: return "udp";
    case FrameKind::kArp: return "arp";
    case FrameKind::kIcmpV4: return "icmp";
    case FrameKind::kIcmpV6: return "icmpv6";
    case FrameKind::kOtherL4: return "other-l4";
    case FrameKind::kOtherL2: return "other-l2";
    case FrameKind::kDrop: return "drop";
  }
  return "unknown";
}

const char* ParseErrorName(ParseError e) noexcept {
  switch (e) {
    case ParseError::kNone: return "none";
    case ParseError::kRunt: return "runt";
    case ParseError::kBadIpVersion: return "bad-ip-version";
    case ParseError::kBadIpHeaderLen: return "bad-ip-header-len";
    case ParseError::kBadIpTotalLen: return "bad-ip-total-len";
    case ParseError::kBadIpChecksum: return "bad-ip-checksum";
    case ParseError::kFragment: return "fragment";
    case ParseError::kBadUdpLen: return "bad-udp-len";
    case ParseError::kBadUdpChecksum: return "bad-udp-checksum";
    case ParseError::kTtlExpired: return "ttl-expired";
    case ParseError::kBadExtHeaders: return "bad-ext-headers";
    case ParseError::kOversized: return "oversized";
  }
  return "unknown";
}

void ParseFrame(const uint8_t* data, uint32_t len, const ParseOptions& options,
                ParsedFrame* out) noexcept {
  // Reset field by field from zero: `f = ParsedFrame{}` builds a temporary
  // in misaligned stores and copies it in aligned loads, which stalls.
  std::memset(static_cast<void*>(out), 0, sizeof *out);
  ParsedFrame& f = *out;
  f.kind = FrameKind::kDrop;
  f.error = ParseError::kNone;
  f.payload_kind = PayloadKind::kUnknown;
  if (len > kMaxFrameLen) {
    Drop(f, ParseError::kOversized);
    return;
  }
  if (len < kEtherLen) {
    Drop(f, ParseError::kRunt);
    return;
  }
  uint32_t off = 12;
  uint16_t ether_type = Get16(data + off);
  off += 2;
  // IEEE 802.1Q / 802.1ad: up to two tags (QinQ), the outer one first. A tag
  // is TPID, then PCP/DEI/VID; the next ethertype follows it.
  while ((ether_type == kEtherTypeVlan || ether_type == kEtherTypeQinQ) &&
         f.vlan_count < kMaxVlanTags) {
    if (len - off < kVlanLen) {
      Drop(f, ParseError::kRunt);
      return;
    }
    if (f.vlan_count == 0) f.vlan_id = Get16(data + off) & 0x0fff;
    ++f.vlan_count;
    ether_type = Get16(data + off + 2);
    off += kVlanLen;
  }
  f.l3_offset = static_cast<uint16_t>(off);
  switch (ether_type) {
    case kEtherTypeIpv4:
      ParseIpv4(data, len, f, options);
      break;
    case kEtherTypeIpv6:
      ParseIpv6(data, len, f, options);
      break;
    case kEtherTypeArp: {
      // RFC 826: 8 fixed bytes, then sender and target hardware and protocol
      // addresses, whose lengths are in bytes 4 and 5.
      if (len - off < kArpFixedLen ||
          len - off - kArpFixedLen < 2 * (uint32_t{data[off + 4]} + data[off + 5])) {
        Drop(f, ParseError::kRunt);
      } else {
        f.kind = FrameKind::kArp;
      }
      break;
    }
    default:
      f.kind = FrameKind::kOtherL2;
      break;
  }
}

ParsedFrame ParseFrame(const uint8_t* data, uint32_t len, const ParseOptions& options) noexcept {
  ParsedFrame f;
  ParseFrame(data, len, options, &f);
  return f;
}

}  // namespace sluice::packet
