#include "sluice/packet/parse.h"
#include "sluice/packet/rewrite.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace sluice::packet {
namespace {

// Frames are assembled byte by byte here, with checksums from the plain
// RFC 1071 definition below, independent of the library's implementation.

using Bytes = std::vector<uint8_t>;

void Put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
void Set16(Bytes& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v);
}
void Append(Bytes& b, const Bytes& more) { b.insert(b.end(), more.begin(), more.end()); }

// RFC 1071: the 16-bit ones'-complement of the ones'-complement sum of
// big-endian 16-bit words, an odd last byte padded with zero.
uint16_t RefChecksum(const Bytes& b) {
  uint32_t sum = 0;
  for (size_t i = 0; i < b.size(); i += 2) {
    uint32_t word = uint32_t{b[i]} << 8;
    if (i + 1 < b.size()) word |= b[i + 1];
    sum += word;
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  }
  return static_cast<uint16_t>(~sum);
}

constexpr uint16_t kIpv4 = 0x0800;
constexpr uint16_t kIpv6 = 0x86dd;
constexpr uint16_t kArp = 0x0806;
constexpr uint16_t kVlan = 0x8100;
constexpr uint16_t kQinQ = 0x88a8;

struct Tag {
  uint16_t tpid;
  uint16_t tci;
};

Bytes Ethernet(uint16_t ether_type, const std::vector<Tag>& tags, const Bytes& l3) {
  Bytes f = {0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02};
  for (const Tag& t : tags) {
    Put16(f, t.tpid);
    Put16(f, t.tci);
  }
  Put16(f, ether_type);
  Append(f, l3);
  return f;
}

using V4Addr = std::array<uint8_t, 4>;
using V6Addr = std::array<uint8_t, 16>;
const V4Addr kSrc4 = {192, 0, 2, 10};
const V4Addr kDst4 = {198, 51, 100, 20};
const V6Addr kSrc6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a};
const V6Addr kDst6 = {0xfd, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};

struct Udp {
  uint16_t sport = 40000;
  uint16_t dport = 30000;
  Bytes payload;
  bool zero_checksum = false;
  bool corrupt_checksum = false;
  int len_delta = 0;  // added to the UDP length field after the checksum
};

// A UDP datagram with its checksum over the pseudo-header made of `pseudo`
// (addresses) and the protocol/length words.
Bytes UdpDatagram(const Udp& u, const Bytes& addrs, bool v6) {
  Bytes d;
  Put16(d, u.sport);
  Put16(d, u.dport);
  const uint16_t len = static_cast<uint16_t>(8 + u.payload.size());
  Put16(d, len);
  Put16(d, 0);
  Append(d, u.payload);
  Bytes pseudo = addrs;
  if (v6) {
    Put16(pseudo, 0);
    Put16(pseudo, len);
    Put16(pseudo, 0);
    Put16(pseudo, 17);
  } else {
    Put16(pseudo, 17);
    Put16(pseudo, len);
  }
  Append(pseudo, d);
  uint16_t sum = RefChecksum(pseudo);
  if (sum == 0) sum = 0xffff;
  if (u.zero_checksum) sum = 0;
  if (u.corrupt_checksum) sum ^= 0x0100;
  Set16(d, 6, sum);
  Set16(d, 4, static_cast<uint16_t>(len + u.len_delta));
  return d;
}

Bytes Concat(const auto& a, const auto& b) {
  Bytes r(a.begin(), a.end());
  r.insert(r.end(), b.begin(), b.end());
  return r;
}

Bytes Udp4(const Udp& u) { return UdpDatagram(u, Concat(kSrc4, kDst4), false); }
Bytes Udp6(const Udp& u) { return UdpDatagram(u, Concat(kSrc6, kDst6), true); }

struct V4 {
  uint8_t version = 4;
  uint8_t proto = 17;
  uint8_t ttl = 64;
  uint16_t frag = 0x4000;  // DF
  Bytes options;           // a multiple of 4 bytes
  int ihl_override = -1;
  int total_delta = 0;
  bool corrupt_checksum = false;
};

Bytes Ipv4(const V4& v, const Bytes& l4) {
  Bytes h;
  const uint8_t ihl = static_cast<uint8_t>(v.ihl_override >= 0 ? v.ihl_override
                                                                : (20 + v.options.size()) / 4);
  h.push_back(static_cast<uint8_t>(v.version << 4 | ihl));
  h.push_back(0xb8);  // EF
  Put16(h, static_cast<uint16_t>(20 + v.options.size() + l4.size() + v.total_delta));
  Put16(h, 0x1234);
  Put16(h, v.frag);
  h.push_back(v.ttl);
  h.push_back(v.proto);
  Put16(h, 0);
  Append(h, Bytes(kSrc4.begin(), kSrc4.end()));
  Append(h, Bytes(kDst4.begin(), kDst4.end()));
  Append(h, v.options);
  uint16_t sum = RefChecksum(h);
  if (v.corrupt_checksum) sum ^= 0x0001;
  Set16(h, 10, sum);
  Append(h, l4);
  return h;
}

struct Ext {
  uint8_t type;     // 0, 43, 44, 60
  uint8_t len = 0;  // in 8-octet units beyond the first 8
};

struct V6 {
  uint8_t version = 6;
  uint8_t hop_limit = 64;
  std::vector<Ext> ext;
  int payload_delta = 0;
};

Bytes Ipv6(const V6& v, uint8_t proto, const Bytes& l4) {
  Bytes exts;
  for (size_t i = 0; i < v.ext.size(); ++i) {
    const uint8_t next = i + 1 < v.ext.size() ? v.ext[i + 1].type : proto;
    Bytes e(8 * (size_t{v.ext[i].len} + 1), 0);
    e[0] = next;
    e[1] = v.ext[i].len;
    if (v.ext[i].type == 0 || v.ext[i].type == 60) e[2] = 1;  // PadN option
    if (v.ext[i].type == 0 || v.ext[i].type == 60) e[3] = static_cast<uint8_t>(e.size() - 4);
    Append(exts, e);
  }
  Bytes h;
  h.push_back(static_cast<uint8_t>(v.version << 4 | 0xb));  // traffic class 0xb8: EF
  h.push_back(0x80);
  Put16(h, 0);
  Put16(h, static_cast<uint16_t>(exts.size() + l4.size() + v.payload_delta));
  h.push_back(v.ext.empty() ? proto : v.ext[0].type);
  h.push_back(v.hop_limit);
  Append(h, Bytes(kSrc6.begin(), kSrc6.end()));
  Append(h, Bytes(kDst6.begin(), kDst6.end()));
  Append(h, exts);
  Append(h, l4);
  return h;
}

Bytes RtpPayload(size_t media_bytes = 160) {
  Bytes p = {0x80, 0x00, 0x12, 0x34, 0, 0, 0x10, 0, 0xde, 0xad, 0xbe, 0xef};
  for (size_t i = 0; i < media_bytes; ++i) p.push_back(static_cast<uint8_t>(0xd5 ^ i));
  return p;
}
Bytes RtcpPayload() {
  // Receiver report, no report blocks, plus a 4-byte SRTCP-style trailer.
  return {0x80, 201, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef, 0x80, 0, 0, 1};
}
Bytes DtlsPayload() {
  Bytes p = {22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0};
  return p;
}
Bytes StunPayload() {
  // Binding request: type, length 0, magic cookie, 96-bit transaction ID.
  Bytes p = {0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42};
  for (int i = 0; i < 12; ++i) p.push_back(static_cast<uint8_t>(i));
  return p;
}

Bytes Udp4Frame(const Udp& u = {.payload = RtpPayload()}, const V4& v = {},
                const std::vector<Tag>& tags = {}) {
  return Ethernet(kIpv4, tags, Ipv4(v, Udp4(u)));
}
Bytes Udp6Frame(const Udp& u = {.payload = RtpPayload()}, const V6& v = {},
                const std::vector<Tag>& tags = {}) {
  return Ethernet(kIpv6, tags, Ipv6(v, 17, Udp6(u)));
}

Bytes ArpRequest() {
  Bytes a = {0, 1, 0x08, 0x00, 6, 4, 0, 1, 0x02, 0, 0, 0, 0, 0x01};
  Append(a, Bytes(kSrc4.begin(), kSrc4.end()));
  Append(a, Bytes(6, 0));
  Append(a, Bytes(kDst4.begin(), kDst4.end()));
  return a;
}

// Parses a copy of exactly the given bytes, so that ASan sees any overread.
ParsedFrame Parse(const Bytes& frame, const ParseOptions& options = {}) {
  Bytes copy = frame;
  return ParseFrame(copy.empty() ? nullptr : copy.data(), static_cast<uint32_t>(copy.size()),
                    options);
}

constexpr ParseOptions kNoVerify = {.verify_ip_checksum = false, .verify_udp_checksum = false};

void ExpectDrop(const Bytes& frame, ParseError error, const ParseOptions& options = {}) {
  const ParsedFrame f = Parse(frame, options);
  EXPECT_EQ(f.kind, FrameKind::kDrop) << FrameKindName(f.kind);
  EXPECT_EQ(f.error, error) << ParseErrorName(f.error) << " instead of " << ParseErrorName(error);
}

IpAddress Ip(const V4Addr& a) { return IpAddress::V4Bytes(a.data()); }
IpAddress Ip(const V6Addr& a) { return IpAddress::V6Bytes(a.data()); }

// --- Valid UDP -------------------------------------------------------------

TEST(ParseFrame, Ipv4UdpRtp) {
  const Bytes frame = Udp4Frame();
  const ParsedFrame f = Parse(frame);
  ASSERT_EQ(f.kind, FrameKind::kUdp) << ParseErrorName(f.error);
  EXPECT_EQ(f.error, ParseError::kNone);
  EXPECT_EQ(f.vlan_count, 0);
  EXPECT_EQ(f.l3_offset, 14);
  EXPECT_EQ(f.l4_offset, 34);
  EXPECT_EQ(f.payload_offset, 42);
  EXPECT_EQ(f.payload_len, 172);
  EXPECT_EQ(f.payload_offset + f.payload_len, frame.size());
  EXPECT_EQ(f.src.ip, Ip(kSrc4));
  EXPECT_EQ(f.dst.ip, Ip(kDst4));
  EXPECT_EQ(f.src.port, 40000);
  EXPECT_EQ(f.dst.port, 30000);
  EXPECT_EQ(f.payload_kind, PayloadKind::kRtp);
  EXPECT_EQ(frame[f.payload_offset], 0x80);
}

TEST(ParseFrame, Ipv6UdpRtp) {
  const Bytes frame = Udp6Frame();
  const ParsedFrame f = Parse(frame);
  ASSERT_EQ(f.kind, FrameKind::kUdp) << ParseErrorName(f.error);
  EXPECT_EQ(f.l3_offset, 14);
  EXPECT_EQ(f.l4_offset, 54);
  EXPECT_EQ(f.payload_offset, 62);
  EXPECT_EQ(f.payload_len, 172);
  EXPECT_EQ(f.src, (Endpoint{Ip(kSrc6), 40000}));
  EXPECT_EQ(f.dst, (Endpoint{Ip(kDst6), 30000}));
  EXPECT_EQ(f.payload_kind, PayloadKind::kRtp);
}

TEST(ParseFrame, PayloadKinds) {
  struct Case {
    Bytes payload;
    PayloadKind kind;
  };
  const std::vector<Case> cases = {
      {RtpPayload(), PayloadKind::kRtp},         {RtcpPayload(), PayloadKind::kRtcp},
      {DtlsPayload(), PayloadKind::kDtls},       {StunPayload(), PayloadKind::kStun},
      {Bytes(), PayloadKind::kUnknown},          {Bytes(40, 0xff), PayloadKind::kUnknown},
  };
  for (const Case& c : cases) {
    const Udp u = {.payload = c.payload};
    const ParsedFrame f4 = Parse(Udp4Frame(u));
    ASSERT_EQ(f4.kind, FrameKind::kUdp);
    EXPECT_EQ(f4.payload_kind, c.kind) << PayloadKindName(c.kind);
    EXPECT_EQ(f4.payload_len, c.payload.size());
    const ParsedFrame f6 = Parse(Udp6Frame(u));
    ASSERT_EQ(f6.kind, FrameKind::kUdp);
    EXPECT_EQ(f6.payload_kind, c.kind) << PayloadKindName(c.kind);
  }
}

TEST(ParseFrame, ChecksumsOfEveryPayloadLengthAndContent) {
  // Odd and even lengths, and content that makes sums carry.
  for (size_t n = 0; n <= 80; ++n) {
    for (uint8_t fill : {0x00, 0x5a, 0xff}) {
      Udp u = {.sport = static_cast<uint16_t>(1000 + n), .dport = 0xffff};
      for (size_t i = 0; i < n; ++i) u.payload.push_back(static_cast<uint8_t>(fill + i * 37));
      const ParsedFrame f4 = Parse(Udp4Frame(u));
      ASSERT_EQ(f4.kind, FrameKind::kUdp) << n << " " << ParseErrorName(f4.error);
      EXPECT_EQ(f4.payload_len, n);
      const ParsedFrame f6 = Parse(Udp6Frame(u));
      ASSERT_EQ(f6.kind, FrameKind::kUdp) << n << " " << ParseErrorName(f6.error);
      // The verified payload's sum, kept for the checksum it is sent with.
      const uint16_t sum = OnesComplementSum(u.payload.data(), u.payload.size());
      EXPECT_TRUE(f4.payload_sum_known && f6.payload_sum_known) << n;
      EXPECT_EQ(f4.payload_sum, sum) << n;
      EXPECT_EQ(f6.payload_sum, sum) << n;
      u.corrupt_checksum = true;
      ExpectDrop(Udp4Frame(u), ParseError::kBadUdpChecksum);
      ExpectDrop(Udp6Frame(u), ParseError::kBadUdpChecksum);
    }
  }
}

// --- VLAN ------------------------------------------------------------------

TEST(ParseFrame, SingleVlanTag) {
  // PCP 5, VID 100.
  const Bytes frame = Udp4Frame({.payload = RtpPayload()}, {}, {{kVlan, 0xa064}});
  const ParsedFrame f = Parse(frame);
  ASSERT_EQ(f.kind, FrameKind::kUdp);
  EXPECT_EQ(f.vlan_count, 1);
  EXPECT_EQ(f.vlan_id, 100);
  EXPECT_EQ(f.l3_offset, 18);
  EXPECT_EQ(f.payload_offset, 46);
}

TEST(ParseFrame, QinQ) {
  for (uint16_t outer : {kQinQ, kVlan}) {
    const Bytes frame = Udp6Frame({.payload = RtpPayload()}, {}, {{outer, 0x0fff}, {kVlan, 7}});
    const ParsedFrame f = Parse(frame);
    ASSERT_EQ(f.kind, FrameKind::kUdp);
    EXPECT_EQ(f.vlan_count, 2);
    EXPECT_EQ(f.vlan_id, 0x0fff);  // the outer one
    EXPECT_EQ(f.l3_offset, 22);
    EXPECT_EQ(f.payload_offset, 22 + 40 + 8);
  }
}

TEST(ParseFrame, ThirdVlanTagIsOtherL2) {
  const Bytes frame = Udp4Frame({.payload = RtpPayload()}, {},
                                {{kQinQ, 1}, {kVlan, 2}, {kVlan, 3}});
  const ParsedFrame f = Parse(frame);
  EXPECT_EQ(f.kind, FrameKind::kOtherL2);
  EXPECT_EQ(f.vlan_count, 2);
}

TEST(ParseFrame, TruncatedVlanTagIsRunt) {
  Bytes frame = {0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x81, 0x00, 0x00};
  ExpectDrop(frame, ParseError::kRunt);
  frame.push_back(0x05);
  ExpectDrop(frame, ParseError::kRunt);  // a tag, but no ethertype after it
}

// --- IPv4 ------------------------------------------------------------------

TEST(ParseFrame, EthernetPaddingAfterShortIpv4IsIgnored) {
  Bytes frame = Udp4Frame({.payload = {1, 2, 3, 4}});
  ASSERT_EQ(frame.size(), 46u);
  frame.resize(60, 0xee);  // minimum Ethernet frame, non-zero padding
  const ParsedFrame f = Parse(frame);
  ASSERT_EQ(f.kind, FrameKind::kUdp) << ParseErrorName(f.error);
  EXPECT_EQ(f.payload_len, 4);
  EXPECT_EQ(f.payload_offset + f.payload_len, 46);
}

TEST(ParseFrame, Ipv4Options) {
  // Router alert (RFC 2113), then the longest header: 40 bytes of options.
  for (const Bytes& options : {Bytes{0x94, 0x04, 0, 0}, Bytes(40, 0x01)}) {
    const Bytes frame = Udp4Frame({.payload = RtpPayload()}, {.options = options});
    const ParsedFrame f = Parse(frame);
    ASSERT_EQ(f.kind, FrameKind::kUdp) << ParseErrorName(f.error);
    EXPECT_EQ(f.l4_offset, 14 + 20 + options.size());
    EXPECT_EQ(f.payload_kind, PayloadKind::kRtp);
  }
}

TEST(ParseFrame, Ipv4ZeroUdpChecksumMeansNone) {
  const ParsedFrame f = Parse(Udp4Frame({.payload = RtpPayload(), .zero_checksum = true}));
  EXPECT_EQ(f.kind, FrameKind::kUdp);
  EXPECT_FALSE(f.payload_sum_known);  // nothing summed
}

TEST(ParseFrame, NoPayloadSumWithoutVerifying) {
  const ParsedFrame f = Parse(Udp4Frame(), {.verify_udp_checksum = false});
  EXPECT_EQ(f.kind, FrameKind::kUdp);
  EXPECT_FALSE(f.payload_sum_known);
}

TEST(ParseFrame, BadIpv4Checksum) {
  const Bytes frame = Udp4Frame({.payload = RtpPayload()}, {.corrupt_checksum = true});
  ExpectDrop(frame, ParseError::kBadIpChecksum);
  EXPECT_EQ(Parse(frame, {.verify_ip_checksum = false}).kind, FrameKind::kUdp);
}

TEST(ParseFrame, BadUdpChecksum) {
  const Bytes v4 = Udp4Frame({.payload = RtpPayload(), .corrupt_checksum = true});
  const Bytes v6 = Udp6Frame({.payload = RtpPayload(), .corrupt_checksum = true});
  ExpectDrop(v4, ParseError::kBadUdpChecksum);
  ExpectDrop(v6, ParseError::kBadUdpChecksum);
  EXPECT_EQ(Parse(v4, {.verify_udp_checksum = false}).kind, FrameKind::kUdp);
  EXPECT_EQ(Parse(v6, {.verify_udp_checksum = false}).kind, FrameKind::kUdp);
}

TEST(ParseFrame, BadIpVersion) {
  ExpectDrop(Udp4Frame({.payload = RtpPayload()}, {.version = 6}), ParseError::kBadIpVersion);
  ExpectDrop(Udp6Frame({.payload = RtpPayload()}, {.version = 4}), ParseError::kBadIpVersion);
  // An IPv6 header behind the IPv4 ethertype.
  ExpectDrop(Ethernet(kIpv4, {}, Ipv6({}, 17, Udp6({}))), ParseError::kBadIpVersion);
}

TEST(ParseFrame, BadIpHeaderLength) {
  for (int ihl : {0, 1, 4}) {
    ExpectDrop(Udp4Frame({.payload = RtpPayload()}, {.ihl_override = ihl}),
               ParseError::kBadIpHeaderLen);
  }
  // IHL 15 (60 bytes) in a frame with 20 + 8 + 4 bytes of IP.
  ExpectDrop(Udp4Frame({.payload = {1, 2, 3, 4}}, {.ihl_override = 15}),
             ParseError::kBadIpHeaderLen);
}

TEST(ParseFrame, BadIpTotalLength) {
  ExpectDrop(Udp4Frame({.payload = RtpPayload()}, {.total_delta = 1}), ParseError::kBadIpTotalLen);
  // Total length below the header length (checksum recomputed by the builder).
  const int below = -(20 + 8 + 172) + 19;
  ExpectDrop(Udp4Frame({.payload = RtpPayload()}, {.total_delta = below}),
             ParseError::kBadIpTotalLen);
  ExpectDrop(Udp6Frame({.payload = RtpPayload()}, {.payload_delta = 1}),
             ParseError::kBadIpTotalLen);
}

TEST(ParseFrame, IpPayloadTooShortForUdpIsRunt) {
  // A consistent IPv4 datagram of 20 + 4 bytes whose protocol says UDP.
  ExpectDrop(Ethernet(kIpv4, {}, Ipv4({}, {0x9c, 0x40, 0x75, 0x30})), ParseError::kRunt);
  ExpectDrop(Ethernet(kIpv6, {}, Ipv6({}, 17, {0x9c, 0x40, 0x75, 0x30})), ParseError::kRunt);
}

TEST(ParseFrame, BadUdpLength) {
  // Below 8.
  for (int delta : {-172 - 1, -172 - 8}) {
    ExpectDrop(Udp4Frame({.payload = RtpPayload(), .len_delta = delta}), ParseError::kBadUdpLen,
               kNoVerify);
    ExpectDrop(Udp6Frame({.payload = RtpPayload(), .len_delta = delta}), ParseError::kBadUdpLen,
               kNoVerify);
  }
  // Past the IP payload.
  ExpectDrop(Udp4Frame({.payload = RtpPayload(), .len_delta = 1}), ParseError::kBadUdpLen,
             kNoVerify);
  ExpectDrop(Udp6Frame({.payload = RtpPayload(), .len_delta = 1}), ParseError::kBadUdpLen,
             kNoVerify);
  ExpectDrop(Udp4Frame({.payload = RtpPayload(), .len_delta = 0x7000}), ParseError::kBadUdpLen,
             kNoVerify);
}

TEST(ParseFrame, UdpShorterThanIpPayloadUsesUdpLength) {
  // The IP datagram carries 3 bytes after the UDP datagram; the UDP checksum
  // covers only the UDP length.
  Bytes udp = Udp4({.payload = RtpPayload()});
  udp.insert(udp.end(), {0xaa, 0xbb, 0xcc});
  const ParsedFrame f = Parse(Ethernet(kIpv4, {}, Ipv4({}, udp)));
  ASSERT_EQ(f.kind, FrameKind::kUdp) << ParseErrorName(f.error);
  EXPECT_EQ(f.payload_len, 172);
}

TEST(ParseFrame, Ipv4Fragments) {
  ExpectDrop(Udp4Frame({.payload = RtpPayload()}, {.frag = 0x2000}), ParseError::kFragment);  // MF
  ExpectDrop(Udp4Frame({.payload = RtpPayload()}, {.frag = 0x0001}), ParseError::kFragment);
  ExpectDrop(Udp4Frame({.payload = RtpPayload()}, {.frag = 0x1fff}), ParseError::kFragment);
  ExpectDrop(Udp4Frame({.payload = RtpPayload()}, {.frag = 0x2010}), ParseError::kFragment);
  EXPECT_EQ(Parse(Udp4Frame({.payload = RtpPayload()}, {.frag = 0})).kind, FrameKind::kUdp);
  EXPECT_EQ(Parse(Udp4Frame({.payload = RtpPayload()}, {.frag = 0x4000})).kind, FrameKind::kUdp);
  // The fragment is refused even when its UDP bytes would pass.
  ExpectDrop(Udp4Frame({.payload = RtpPayload()}, {.frag = 0x2000}), ParseError::kFragment,
             kNoVerify);
}

TEST(ParseFrame, TtlZero) {
  ExpectDrop(Udp4Frame({.payload = RtpPayload()}, {.ttl = 0}), ParseError::kTtlExpired);
  ExpectDrop(Udp6Frame({.payload = RtpPayload()}, {.hop_limit = 0}), ParseError::kTtlExpired);
  EXPECT_EQ(Parse(Udp4Frame({.payload = RtpPayload()}, {.ttl = 1})).kind, FrameKind::kUdp);
  EXPECT_EQ(Parse(Udp6Frame({.payload = RtpPayload()}, {.hop_limit = 1})).kind, FrameKind::kUdp);
}

TEST(ParseFrame, Icmpv4) {
  // Echo request: type 8, code 0, checksum, id, sequence, data.
  const Bytes echo = {8, 0, 0xf7, 0xfd, 0, 1, 0, 1, 'h', 'i'};
  const ParsedFrame f = Parse(Ethernet(kIpv4, {}, Ipv4({.proto = 1}, echo)));
  ASSERT_EQ(f.kind, FrameKind::kIcmpV4);
  EXPECT_EQ(f.l4_offset, 34);
  EXPECT_EQ(f.src.ip, Ip(kSrc4));
  EXPECT_EQ(f.dst.ip, Ip(kDst4));
  EXPECT_EQ(f.src.port, 0);
  // Shorter than the 8-byte ICMP header.
  ExpectDrop(Ethernet(kIpv4, {}, Ipv4({.proto = 1}, {8, 0, 0, 0})), ParseError::kRunt);
  // ICMPv6's number over IPv4 is just another protocol.
  EXPECT_EQ(Parse(Ethernet(kIpv4, {}, Ipv4({.proto = 58}, echo))).kind, FrameKind::kOtherL4);
}

TEST(ParseFrame, Icmpv6NeighbourSolicitation) {
  // RFC 4861 §4.3: type 135, code 0, checksum, reserved, target address.
  Bytes ns = {135, 0, 0, 0, 0, 0, 0, 0};
  Append(ns, Bytes(kDst6.begin(), kDst6.end()));
  const ParsedFrame f = Parse(Ethernet(kIpv6, {}, Ipv6({.hop_limit = 255}, 58, ns)));
  ASSERT_EQ(f.kind, FrameKind::kIcmpV6);
  EXPECT_EQ(f.l4_offset, 54);
  EXPECT_EQ(f.src.ip, Ip(kSrc6));
  EXPECT_EQ(f.dst.ip, Ip(kDst6));
  // Behind a hop-by-hop header (MLD reports carry router alert like this).
  const ParsedFrame g = Parse(Ethernet(kIpv6, {}, Ipv6({.ext = {{0}}}, 58, ns)));
  ASSERT_EQ(g.kind, FrameKind::kIcmpV6);
  EXPECT_EQ(g.l4_offset, 62);
  ExpectDrop(Ethernet(kIpv6, {}, Ipv6({}, 58, {135, 0, 0, 0})), ParseError::kRunt);
  EXPECT_EQ(Parse(Ethernet(kIpv6, {}, Ipv6({}, 1, ns))).kind, FrameKind::kOtherL4);
}

TEST(ParseFrame, OtherL4) {
  const Bytes tcp(20, 0);
  const ParsedFrame f = Parse(Ethernet(kIpv4, {}, Ipv4({.proto = 6}, tcp)));
  EXPECT_EQ(f.kind, FrameKind::kOtherL4);
  EXPECT_EQ(f.l4_offset, 34);
  EXPECT_EQ(Parse(Ethernet(kIpv6, {}, Ipv6({}, 6, tcp))).kind, FrameKind::kOtherL4);
  EXPECT_EQ(Parse(Ethernet(kIpv6, {}, Ipv6({}, 59, {}))).kind, FrameKind::kOtherL4);  // no next
  EXPECT_EQ(Parse(Ethernet(kIpv6, {}, Ipv6({}, 50, tcp))).kind, FrameKind::kOtherL4);  // ESP
}

// --- IPv6 extension headers -------------------------------------------------

TEST(ParseFrame, Ipv6ExtensionHeaders) {
  const V6 v = {.ext = {{0, 0}, {60, 1}, {43, 0}, {60, 0}}};
  const ParsedFrame f = Parse(Udp6Frame({.payload = RtpPayload()}, v));
  ASSERT_EQ(f.kind, FrameKind::kUdp) << ParseErrorName(f.error);
  EXPECT_EQ(f.l4_offset, 14 + 40 + 8 + 16 + 8 + 8);
  EXPECT_EQ(f.payload_kind, PayloadKind::kRtp);
  EXPECT_EQ(f.src.port, 40000);
}

TEST(ParseFrame, Ipv6AtMostEightExtensionHeaders) {
  V6 v;
  v.ext.assign(8, Ext{60});
  EXPECT_EQ(Parse(Udp6Frame({.payload = RtpPayload()}, v)).kind, FrameKind::kUdp);
  v.ext.push_back(Ext{60});
  ExpectDrop(Udp6Frame({.payload = RtpPayload()}, v), ParseError::kBadExtHeaders);
}

TEST(ParseFrame, Ipv6HopByHopOnlyFirst) {
  ExpectDrop(Udp6Frame({.payload = RtpPayload()}, {.ext = {{60}, {0}}}),
             ParseError::kBadExtHeaders);
}

TEST(ParseFrame, Ipv6ExtensionHeaderPastPayload) {
  // The destination options header claims 16 bytes; the IPv6 payload has 8.
  Bytes frame = Ethernet(kIpv6, {}, Ipv6({.ext = {{60, 0}}}, 17, {}));
  frame[14 + 40 + 1] = 1;
  ExpectDrop(frame, ParseError::kBadExtHeaders);
  // The payload ends one byte into an extension header.
  Bytes one = Ethernet(kIpv6, {}, Ipv6({}, 60, {17}));
  ExpectDrop(one, ParseError::kBadExtHeaders);
  // Empty payload behind an extension header type.
  ExpectDrop(Ethernet(kIpv6, {}, Ipv6({}, 43, {})), ParseError::kBadExtHeaders);
}

TEST(ParseFrame, Ipv6Fragments) {
  ExpectDrop(Udp6Frame({.payload = RtpPayload()}, {.ext = {{44}}}), ParseError::kFragment);
  ExpectDrop(Udp6Frame({.payload = RtpPayload()}, {.ext = {{0}, {60}, {44}}}),
             ParseError::kFragment);
}

TEST(ParseFrame, Ipv6ZeroUdpChecksumIsInvalid) {
  const Bytes frame = Udp6Frame({.payload = RtpPayload(), .zero_checksum = true});
  ExpectDrop(frame, ParseError::kBadUdpChecksum);
  EXPECT_EQ(Parse(frame, {.verify_udp_checksum = false}).kind, FrameKind::kUdp);
}

TEST(ParseFrame, Ipv6TrailingBytesAreIgnored) {
  Bytes frame = Udp6Frame({.payload = {9}});
  frame.insert(frame.end(), 20, 0xee);
  const ParsedFrame f = Parse(frame);
  ASSERT_EQ(f.kind, FrameKind::kUdp);
  EXPECT_EQ(f.payload_len, 1);
}

// --- ARP and other L2 ---------------------------------------------------------

TEST(ParseFrame, Arp) {
  const ParsedFrame f = Parse(Ethernet(kArp, {}, ArpRequest()));
  EXPECT_EQ(f.kind, FrameKind::kArp);
  EXPECT_EQ(f.l3_offset, 14);
  const ParsedFrame v = Parse(Ethernet(kArp, {{kVlan, 12}}, ArpRequest()));
  EXPECT_EQ(v.kind, FrameKind::kArp);
  EXPECT_EQ(v.l3_offset, 18);
  EXPECT_EQ(v.vlan_id, 12);
  // Padded to the Ethernet minimum.
  Bytes padded = Ethernet(kArp, {}, ArpRequest());
  padded.resize(60, 0);
  EXPECT_EQ(Parse(padded).kind, FrameKind::kArp);
}

TEST(ParseFrame, TruncatedArpIsRunt) {
  Bytes arp = ArpRequest();
  arp.pop_back();
  ExpectDrop(Ethernet(kArp, {}, arp), ParseError::kRunt);
  arp.resize(7);  // not even the fixed part
  ExpectDrop(Ethernet(kArp, {}, arp), ParseError::kRunt);
  // Address lengths that point past the frame.
  Bytes big = ArpRequest();
  big[4] = 255;
  ExpectDrop(Ethernet(kArp, {}, big), ParseError::kRunt);
}

TEST(ParseFrame, OtherL2) {
  EXPECT_EQ(Parse(Ethernet(0x88cc, {}, Bytes(46, 0))).kind, FrameKind::kOtherL2);  // LLDP
  EXPECT_EQ(Parse(Ethernet(0x0042, {}, Bytes(46, 0))).kind, FrameKind::kOtherL2);  // 802.3 length
  EXPECT_EQ(Parse(Ethernet(0x8847, {}, Bytes(46, 0))).kind, FrameKind::kOtherL2);  // MPLS
}

// --- Runts, oversized, truncation -------------------------------------------

TEST(ParseFrame, Runts) {
  EXPECT_EQ(ParseFrame(nullptr, 0, {}).error, ParseError::kRunt);
  for (size_t n = 0; n < 14; ++n) ExpectDrop(Bytes(n, 0), ParseError::kRunt);
  // Ethernet header, then less than an IPv4/IPv6 header.
  ExpectDrop(Ethernet(kIpv4, {}, Bytes(19, 0x45)), ParseError::kRunt);
  ExpectDrop(Ethernet(kIpv6, {}, Bytes(39, 0x60)), ParseError::kRunt);
}

TEST(ParseFrame, Oversized) {
  Bytes frame = Udp4Frame();
  frame.resize(kMaxFrameLen, 0);
  EXPECT_EQ(Parse(frame).kind, FrameKind::kUdp);  // the largest accepted length
  frame.push_back(0);
  ExpectDrop(frame, ParseError::kOversized);
}

TEST(ParseFrame, LargestIpv4Datagram) {
  const Udp u = {.payload = Bytes(65535 - 20 - 8, 0x80)};
  const Bytes frame = Udp4Frame(u);
  ASSERT_EQ(frame.size(), 14u + 65535u);
  ExpectDrop(frame, ParseError::kOversized);
  // Without the Ethernet header's worth of payload it fits.
  const Bytes smaller = Udp4Frame({.payload = Bytes(65535 - 14 - 20 - 8, 0x80)});
  const ParsedFrame f = Parse(smaller);
  ASSERT_EQ(f.kind, FrameKind::kUdp);
  EXPECT_EQ(f.payload_offset + f.payload_len, 65535);
}

// Every prefix of a valid frame parses without reading past it, and only a
// prefix that holds the whole IP datagram is UDP.
TEST(ParseFrame, EveryTruncationIsSafe) {
  struct Case {
    std::string name;
    Bytes frame;
    size_t datagram_end;  // where the IP datagram ends (padding after it)
  };
  std::vector<Case> cases;
  Bytes padded = Udp4Frame({.payload = {1, 2}});
  const size_t padded_end = padded.size();
  padded.resize(60, 0);
  cases.push_back({"ipv4", Udp4Frame(), 0});
  cases.push_back({"ipv4 padded", padded, padded_end});
  cases.push_back({"ipv4 options vlan",
                   Udp4Frame({.payload = RtcpPayload()}, {.options = Bytes(8, 1)}, {{kVlan, 5}}),
                   0});
  cases.push_back({"ipv6", Udp6Frame(), 0});
  cases.push_back({"ipv6 ext qinq",
                   Udp6Frame({.payload = StunPayload()}, {.ext = {{0, 1}, {43}, {60}}},
                             {{kQinQ, 1}, {kVlan, 2}}),
                   0});
  for (Case& c : cases) {
    if (c.datagram_end == 0) c.datagram_end = c.frame.size();
    ASSERT_EQ(Parse(c.frame).kind, FrameKind::kUdp) << c.name;
    for (size_t n = 0; n <= c.frame.size(); ++n) {
      const Bytes prefix(c.frame.begin(), c.frame.begin() + n);
      for (const ParseOptions& options : {ParseOptions{}, kNoVerify}) {
        const ParsedFrame f = Parse(prefix, options);
        if (n >= c.datagram_end) {
          EXPECT_EQ(f.kind, FrameKind::kUdp) << c.name << " " << n;
        } else {
          EXPECT_EQ(f.kind, FrameKind::kDrop) << c.name << " " << n;
          EXPECT_TRUE(f.error == ParseError::kRunt || f.error == ParseError::kBadIpTotalLen ||
                      f.error == ParseError::kBadIpHeaderLen)
              << c.name << " " << n << " " << ParseErrorName(f.error);
        }
      }
    }
  }
}

// --- Names -----------------------------------------------------------------

TEST(ParseFrame, EveryErrorAndKindHasAName) {
  std::set<std::string> names;
  for (int i = 0; i < kParseErrorCount; ++i) {
    const std::string name = ParseErrorName(static_cast<ParseError>(i));
    EXPECT_NE(name, "unknown") << i;
    names.insert(name);
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(kParseErrorCount));
  EXPECT_STREQ(ParseErrorName(static_cast<ParseError>(kParseErrorCount)), "unknown");
  names.clear();
  for (int i = 0; i < kFrameKindCount; ++i) {
    const std::string name = FrameKindName(static_cast<FrameKind>(i));
    EXPECT_NE(name, "unknown") << i;
    names.insert(name);
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(kFrameKindCount));
}

}  // namespace
}  // namespace sluice::packet
