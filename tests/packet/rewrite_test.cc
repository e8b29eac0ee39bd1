#include "sluice/packet/rewrite.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "sluice/packet/parse.h"

namespace sluice::packet {
namespace {

using Bytes = std::vector<uint8_t>;

// RFC 1071 written out plainly, independent of the library's implementation:
// the ones'-complement sum of big-endian 16-bit words (odd byte padded).
uint16_t RefSum(const uint8_t* p, size_t n, uint32_t sum = 0) {
  for (size_t i = 0; i < n; i += 2) {
    uint32_t word = uint32_t{p[i]} << 8;
    if (i + 1 < n) word |= p[i + 1];
    sum += word;
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  }
  return static_cast<uint16_t>(sum);
}

uint16_t Get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

uint16_t RefPseudoSum(const IpAddress& src, const IpAddress& dst, uint32_t udp_len) {
  Bytes ph;
  const size_t n = src.is_v6() ? 16 : 4;
  ph.insert(ph.end(), src.bytes.begin(), src.bytes.begin() + n);
  ph.insert(ph.end(), dst.bytes.begin(), dst.bytes.begin() + n);
  if (src.is_v6()) {
    ph.insert(ph.end(), {0, 0, static_cast<uint8_t>(udp_len >> 8), static_cast<uint8_t>(udp_len),
                         0, 0, 0, 17});
  } else {
    ph.insert(ph.end(), {0, 17, static_cast<uint8_t>(udp_len >> 8), static_cast<uint8_t>(udp_len)});
  }
  return RefSum(ph.data(), ph.size());
}

MacAddress kOurMac = {0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x01};
MacAddress kPeerMac = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55};

UdpHeaderSpec Spec(absl::string_view src, absl::string_view dst, uint16_t vlan = 0) {
  UdpHeaderSpec s;
  s.src_mac = kOurMac;
  s.dst_mac = kPeerMac;
  s.vlan_id = vlan;
  s.src = *Endpoint::Parse(src);
  s.dst = *Endpoint::Parse(dst);
  return s;
}

// A buffer with headroom in front of the payload, and guard bytes around, as
// an mbuf has.
struct Buffer {
  static constexpr size_t kHeadroom = 128;
  static constexpr size_t kTail = 16;
  static constexpr uint8_t kGuard = 0xcc;
  Bytes bytes;
  size_t payload_len;

  explicit Buffer(const Bytes& payload)
      : bytes(kHeadroom + payload.size() + kTail, kGuard), payload_len(payload.size()) {
    if (!payload.empty()) std::memcpy(bytes.data() + kHeadroom, payload.data(), payload.size());
  }
  uint8_t* payload() { return bytes.data() + kHeadroom; }
  uint8_t* Write(const UdpHeaderSpec& spec, uint16_t ip_id = 0x4242) {
    return WriteUdpHeaders(payload(), static_cast<uint32_t>(payload_len), spec, ip_id);
  }
  // The bytes outside [frame, payload end) are untouched.
  bool GuardsIntact(const uint8_t* frame) const {
    for (const uint8_t* p = bytes.data(); p < frame; ++p) {
      if (*p != kGuard) return false;
    }
    for (size_t i = kHeadroom + payload_len; i < bytes.size(); ++i) {
      if (bytes[i] != kGuard) return false;
    }
    return true;
  }
};

Bytes Rtp(size_t media) {
  Bytes p = {0x80, 0x08, 0x00, 0x07, 0, 0, 0x03, 0x20, 0x11, 0x22, 0x33, 0x44};
  for (size_t i = 0; i < media; ++i) p.push_back(static_cast<uint8_t>(i * 7 + 1));
  return p;
}

TEST(HeaderLength, ByFamilyAndTag) {
  EXPECT_EQ(HeaderLength(Spec("10.0.0.1:1", "10.0.0.2:2")), 42u);
  EXPECT_EQ(HeaderLength(Spec("10.0.0.1:1", "10.0.0.2:2", 100)), 46u);
  EXPECT_EQ(HeaderLength(Spec("[fd00::1]:1", "[fd00::2]:2")), 62u);
  EXPECT_EQ(HeaderLength(Spec("[fd00::1]:1", "[fd00::2]:2", 100)), 66u);
  EXPECT_EQ(MaxUdpPayload(Spec("10.0.0.1:1", "10.0.0.2:2")), 65535u - 28u);
  EXPECT_EQ(MaxUdpPayload(Spec("[fd00::1]:1", "[fd00::2]:2")), 65535u - 8u);
}

struct RoundTripCase {
  std::string name;
  UdpHeaderSpec spec;
};

std::vector<RoundTripCase> RoundTripCases() {
  return {
      {"ipv4", Spec("10.200.1.1:30000", "203.0.113.7:40000")},
      {"ipv4 vlan", Spec("10.200.1.1:30001", "203.0.113.7:40001", 100)},
      {"ipv6", Spec("[fd00:1::1]:30000", "[2001:db8::7]:40000")},
      {"ipv6 vlan", Spec("[fd00:1::1]:30001", "[2001:db8::7]:40001", 4095)},
  };
}

TEST(WriteUdpHeaders, ParsesBackWithValidChecksums) {
  for (const RoundTripCase& c : RoundTripCases()) {
    for (size_t media : {0, 1, 2, 3, 160, 161, 1200}) {
      const Bytes payload = media == 0 ? Bytes() : Rtp(media);
      Buffer buf(payload);
      uint8_t* frame = buf.Write(c.spec);
      const uint32_t header_len = HeaderLength(c.spec);
      ASSERT_EQ(frame, buf.payload() - header_len) << c.name;
      EXPECT_TRUE(buf.GuardsIntact(frame)) << c.name;
      EXPECT_TRUE(std::equal(payload.begin(), payload.end(), buf.payload())) << c.name;

      const uint32_t frame_len = header_len + static_cast<uint32_t>(payload.size());
      const ParsedFrame f = ParseFrame(frame, frame_len, {});
      ASSERT_EQ(f.kind, FrameKind::kUdp) << c.name << " " << media << " "
                                         << ParseErrorName(f.error);
      EXPECT_EQ(f.src, c.spec.src) << c.name;
      EXPECT_EQ(f.dst, c.spec.dst) << c.name;
      EXPECT_EQ(f.payload_offset, header_len) << c.name;
      EXPECT_EQ(f.payload_len, payload.size()) << c.name;
      EXPECT_EQ(f.vlan_count, c.spec.vlan_id != 0 ? 1 : 0) << c.name;
      EXPECT_EQ(f.vlan_id, c.spec.vlan_id) << c.name;
      if (media >= 12) {
        EXPECT_EQ(f.payload_kind, PayloadKind::kRtp) << c.name;
      }

      // The checksums, checked with the plain implementation.
      const uint8_t* ip = frame + f.l3_offset;
      const uint8_t* udp = frame + f.l4_offset;
      const uint32_t udp_len = 8 + static_cast<uint32_t>(payload.size());
      if (c.spec.src.ip.is_v4()) {
        EXPECT_EQ(RefSum(ip, 20), 0xffff) << c.name;
      }
      EXPECT_EQ(RefSum(udp, udp_len, RefPseudoSum(c.spec.src.ip, c.spec.dst.ip, udp_len)), 0xffff)
          << c.name << " " << media;
      EXPECT_NE(Get16(udp + 6), 0) << c.name;
    }
  }
}

// A relay forwarding a payload unchanged recovers its sum from the received
// checksum (RFC 1624) and writes the same checksum as reading it would give,
// across address families and ports.
TEST(UdpPayloadSum, RecoveredFromTheChecksumGivesTheSameNewChecksum) {
  for (const RoundTripCase& in : RoundTripCases()) {
    for (const RoundTripCase& out : RoundTripCases()) {
      for (size_t media : {0, 1, 2, 3, 160, 161, 1200}) {
        const Bytes payload = media == 0 ? Bytes() : Rtp(media);
        Buffer received(payload);
        const uint8_t* frame = received.Write(in.spec);
        const ParsedFrame f =
            ParseFrame(frame, HeaderLength(in.spec) + static_cast<uint32_t>(payload.size()), {});
        ASSERT_EQ(f.kind, FrameKind::kUdp);
        const std::optional<uint16_t> sum = UdpPayloadSum(Get16(frame + f.l4_offset + 6), f.src,
                                                          f.dst, f.payload_len);
        ASSERT_TRUE(sum.has_value());
        // Equal as ones'-complement numbers (0 and 0xffff are both zero).
        const uint16_t direct = OnesComplementSum(payload.data(), payload.size());
        EXPECT_TRUE(*sum == direct || (*sum % 0xffff == 0 && direct % 0xffff == 0))
            << in.name << " " << media << ": " << *sum << " vs " << direct;

        Buffer read_again(payload), from_sum(payload);
        UdpHeaderSpec spec = out.spec;
        const uint8_t* a = read_again.Write(spec);
        spec.payload_sum = sum;
        const uint8_t* b = from_sum.Write(spec);
        const uint32_t len = HeaderLength(spec) + static_cast<uint32_t>(payload.size());
        EXPECT_TRUE(std::equal(a, a + len, b)) << in.name << " -> " << out.name << " " << media;
      }
    }
  }
}

TEST(UdpPayloadSum, NoneWithoutAChecksum) {
  EXPECT_FALSE(UdpPayloadSum(0, *Endpoint::Parse("10.0.0.1:1000"), *Endpoint::Parse("10.0.0.2:2000"),
                             20)
                   .has_value());
}

TEST(WriteUdpHeaders, Ipv4HeaderFields) {
  UdpHeaderSpec spec = Spec("10.200.1.1:30000", "203.0.113.7:40000", 100);
  spec.ttl = 17;
  Buffer buf(Rtp(160));
  const uint8_t* f = buf.Write(spec, 0xbeef);
  EXPECT_TRUE(std::equal(kPeerMac.begin(), kPeerMac.end(), f));
  EXPECT_TRUE(std::equal(kOurMac.begin(), kOurMac.end(), f + 6));
  EXPECT_EQ(Get16(f + 12), 0x8100);
  EXPECT_EQ(Get16(f + 14), 100);  // PCP 0, DEI 0, VID 100
  EXPECT_EQ(Get16(f + 16), 0x0800);
  const uint8_t* ip = f + 18;
  EXPECT_EQ(ip[0], 0x45);
  EXPECT_EQ(ip[1], 46 << 2);  // EF, ECN 0
  EXPECT_EQ(Get16(ip + 2), 20 + 8 + 172);
  EXPECT_EQ(Get16(ip + 4), 0xbeef);
  EXPECT_EQ(Get16(ip + 6), 0x4000);  // DF
  EXPECT_EQ(ip[8], 17);
  EXPECT_EQ(ip[9], 17);
  EXPECT_EQ(Get16(ip + 12), 0x0ac8);
  EXPECT_EQ(Get16(ip + 16), 0xcb00);
  const uint8_t* udp = ip + 20;
  EXPECT_EQ(Get16(udp), 30000);
  EXPECT_EQ(Get16(udp + 2), 40000);
  EXPECT_EQ(Get16(udp + 4), 8 + 172);
}

TEST(WriteUdpHeaders, Ipv6HeaderFields) {
  UdpHeaderSpec spec = Spec("[fd00:1::1]:30000", "[2001:db8::7]:40000");
  spec.ttl = 33;
  Buffer buf(Rtp(160));
  const uint8_t* f = buf.Write(spec);
  EXPECT_EQ(Get16(f + 12), 0x86dd);
  const uint8_t* ip = f + 14;
  // Version 6, traffic class 0xb8 (EF), flow label 0.
  EXPECT_EQ(ip[0], 0x6b);
  EXPECT_EQ(ip[1], 0x80);
  EXPECT_EQ(ip[2], 0);
  EXPECT_EQ(ip[3], 0);
  EXPECT_EQ(Get16(ip + 4), 8 + 172);
  EXPECT_EQ(ip[6], 17);
  EXPECT_EQ(ip[7], 33);
  EXPECT_TRUE(std::equal(ip + 8, ip + 24, spec.src.ip.bytes.begin()));
  EXPECT_TRUE(std::equal(ip + 24, ip + 40, spec.dst.ip.bytes.begin()));
}

TEST(WriteUdpHeaders, DscpZeroLeavesTrafficClassZero) {
  UdpHeaderSpec v4 = Spec("10.0.0.1:1000", "10.0.0.2:2000");
  v4.dscp = 0;
  Buffer b4(Rtp(20));
  EXPECT_EQ(b4.Write(v4)[15], 0);
  UdpHeaderSpec v6 = Spec("[::1]:1000", "[::2]:2000");
  v6.dscp = 0;
  Buffer b6(Rtp(20));
  const uint8_t* f = b6.Write(v6);
  EXPECT_EQ(f[14], 0x60);
  EXPECT_EQ(f[15], 0x00);
}

TEST(WriteUdpHeaders, ChecksumOffloadLeavesThePseudoHeaderSum) {
  for (const RoundTripCase& c : RoundTripCases()) {
    UdpHeaderSpec spec = c.spec;
    spec.udp_checksum_offload = true;
    spec.ip_checksum_offload = true;
    const Bytes payload = Rtp(161);
    Buffer buf(payload);
    uint8_t* frame = buf.Write(spec);
    const uint32_t frame_len = HeaderLength(spec) + static_cast<uint32_t>(payload.size());
    const ParsedFrame f =
        ParseFrame(frame, frame_len, {.verify_ip_checksum = false, .verify_udp_checksum = false});
    ASSERT_EQ(f.kind, FrameKind::kUdp) << c.name;
    EXPECT_EQ(f.src, spec.src);
    EXPECT_EQ(f.dst, spec.dst);
    uint8_t* ip = frame + f.l3_offset;
    uint8_t* udp = frame + f.l4_offset;
    const uint32_t udp_len = 8 + static_cast<uint32_t>(payload.size());
    if (spec.src.ip.is_v4()) {
      EXPECT_EQ(Get16(ip + 10), 0) << c.name;  // for the NIC to fill
    }
    // What rte_ipv4_phdr_cksum()/rte_ipv6_phdr_cksum() would have written.
    EXPECT_EQ(Get16(udp + 6), RefPseudoSum(spec.src.ip, spec.dst.ip, udp_len)) << c.name;
    EXPECT_EQ(Get16(udp + 6), UdpPseudoHeaderSum(spec.src.ip, spec.dst.ip, udp_len));

    // Do what the NIC does: sum the UDP datagram as it stands (the field
    // seeded with the pseudo-header sum) and store the complement; then the
    // frame verifies.
    const uint16_t nic = static_cast<uint16_t>(~RefSum(udp, udp_len));
    udp[6] = static_cast<uint8_t>(nic >> 8);
    udp[7] = static_cast<uint8_t>(nic);
    if (spec.src.ip.is_v4()) {
      const uint16_t ip_sum = static_cast<uint16_t>(~RefSum(ip, 20));
      ip[10] = static_cast<uint8_t>(ip_sum >> 8);
      ip[11] = static_cast<uint8_t>(ip_sum);
    }
    EXPECT_EQ(ParseFrame(frame, frame_len, {}).kind, FrameKind::kUdp) << c.name;
  }
}

// Completing an offloaded frame as a NIC does gives, byte for byte, the frame
// with software checksums: every layout, odd and even lengths, and a UDP
// checksum that computes to 0 (sent as 0xFFFF either way).
TEST(CompleteOffloadedChecksums, GivesTheFrameSoftwareChecksumsGive) {
  for (const RoundTripCase& c : RoundTripCases()) {
    std::vector<Bytes> payloads;
    for (size_t media : {0, 1, 2, 3, 160, 161, 1200}) payloads.push_back(Rtp(media));
    {
      // The last word set to the checksum of the payload with it 0: the
      // datagram then sums to 0xFFFF and its computed checksum is 0.
      Bytes zero = Rtp(20);
      zero.push_back(0);
      zero.push_back(0);
      Buffer first(zero);
      const uint16_t sum = Get16(first.Write(c.spec) + HeaderLength(c.spec) - 2);
      zero[zero.size() - 2] = static_cast<uint8_t>(sum >> 8);
      zero[zero.size() - 1] = static_cast<uint8_t>(sum);
      payloads.push_back(zero);
    }
    for (const Bytes& payload : payloads) {
      Buffer software(payload);
      const uint8_t* want = software.Write(c.spec);
      UdpHeaderSpec spec = c.spec;
      spec.udp_checksum_offload = spec.ip_checksum_offload = true;
      Buffer offloaded(payload);
      uint8_t* frame = offloaded.Write(spec);
      const uint32_t header_len = HeaderLength(spec);
      const uint32_t frame_len = header_len + static_cast<uint32_t>(payload.size());
      const bool v6 = spec.src.ip.is_v6();
      const uint32_t l3_len = v6 ? 40 : 20;
      const uint32_t l2_len = header_len - l3_len - 8;
      ASSERT_TRUE(CompleteOffloadedChecksums(frame, frame_len, l2_len, l3_len, !v6, true));
      EXPECT_TRUE(std::equal(frame, frame + frame_len, want))
          << c.name << ", " << payload.size() << "-byte payload";
      EXPECT_TRUE(offloaded.GuardsIntact(frame)) << c.name;
    }
  }
}

TEST(CompleteOffloadedChecksums, RefusesLengthsPastTheFrame) {
  UdpHeaderSpec spec = Spec("10.0.0.1:1000", "10.0.0.2:2000");
  spec.udp_checksum_offload = spec.ip_checksum_offload = true;
  Buffer buf(Rtp(0));
  uint8_t* frame = buf.Write(spec);
  const Bytes before(frame, frame + 54);
  EXPECT_FALSE(CompleteOffloadedChecksums(frame, 54, 14, 40, false, true));
  EXPECT_FALSE(CompleteOffloadedChecksums(frame, 41, 14, 20, true, true));
  EXPECT_FALSE(CompleteOffloadedChecksums(frame, 54, 14, 12, true, false));
  EXPECT_TRUE(std::equal(before.begin(), before.end(), frame));
  EXPECT_TRUE(CompleteOffloadedChecksums(frame, 54, 14, 20, true, true));
  EXPECT_EQ(ParseFrame(frame, 54, {}).kind, FrameKind::kUdp);
}

TEST(WriteUdpHeaders, OnlyIpChecksumOffload) {
  UdpHeaderSpec spec = Spec("10.0.0.1:1000", "10.0.0.2:2000");
  spec.ip_checksum_offload = true;
  Buffer buf(Rtp(40));
  uint8_t* frame = buf.Write(spec);
  const uint32_t len = 42 + 52;
  EXPECT_EQ(Get16(frame + 24), 0);
  EXPECT_EQ(ParseFrame(frame, len, {}).error, ParseError::kBadIpChecksum);
  EXPECT_EQ(ParseFrame(frame, len, {.verify_ip_checksum = false}).kind, FrameKind::kUdp);
}

TEST(WriteUdpHeaders, ComputedZeroUdpChecksumIsSentAsAllOnes) {
  for (const char* family : {"v4", "v6"}) {
    UdpHeaderSpec spec = family == std::string("v4") ? Spec("10.0.0.1:1000", "10.0.0.2:2000")
                                                     : Spec("[fd00::1]:1000", "[fd00::2]:2000");
    // With the last payload word 0 the checksum is c = ~S; putting c in that
    // word makes the sum 0xffff, so the computed checksum becomes 0.
    Bytes payload = Rtp(20);
    payload.push_back(0);
    payload.push_back(0);
    Buffer first(payload);
    const uint16_t c = Get16(first.Write(spec) + HeaderLength(spec) - 2);
    payload[payload.size() - 2] = static_cast<uint8_t>(c >> 8);
    payload[payload.size() - 1] = static_cast<uint8_t>(c);
    Buffer second(payload);
    uint8_t* frame = second.Write(spec);
    const uint32_t header_len = HeaderLength(spec);
    EXPECT_EQ(Get16(frame + header_len - 2), 0xffff) << family;
    const ParsedFrame f =
        ParseFrame(frame, header_len + static_cast<uint32_t>(payload.size()), {});
    EXPECT_EQ(f.kind, FrameKind::kUdp) << family << " " << ParseErrorName(f.error);
  }
}

// A template writes exactly what WriteUdpHeaders writes, for every layout,
// option and payload length, with the payload sum given or read, and touches
// nothing outside the frame; one template serves payload after payload.
TEST(UdpHeaderTemplate, WritesWhatWriteUdpHeadersWrites) {
  std::mt19937 rng(20261122);
  const char* const pairs[][2] = {{"10.0.0.1:1000", "192.0.2.77:40000"},
                                  {"[fd00::1]:1000", "[2001:db8::5:77]:40000"},
                                  {"198.51.100.9:65534", "203.0.113.1:1"},
                                  {"[fe80::1]:5004", "[::1]:5006"}};
  for (const auto& pair : pairs) {
    for (uint16_t vlan : {uint16_t{0}, uint16_t{100}, uint16_t{4094}}) {
      for (int options = 0; options < 16; ++options) {
        UdpHeaderSpec spec = Spec(pair[0], pair[1], vlan);
        spec.udp_checksum_offload = options & 1;
        spec.ip_checksum_offload = options & 2;
        spec.dscp = (options & 4) ? 0 : 46;
        spec.ttl = (options & 8) ? 1 : 64;
        UdpHeaderTemplate tmpl;
        tmpl.Build(spec);
        ASSERT_EQ(tmpl.length(), HeaderLength(spec));
        for (int round = 0; round < 12; ++round) {
          const size_t len = round == 0 ? 0 : rng() % 1400;
          Bytes payload(len);
          for (uint8_t& b : payload) b = static_cast<uint8_t>(rng());
          const uint16_t ip_id = static_cast<uint16_t>(rng());
          const bool give_sum = rng() % 2 == 0;
          const uint16_t sum = OnesComplementSum(payload.data(), payload.size());
          UdpHeaderSpec with_sum = spec;
          if (give_sum) with_sum.payload_sum = sum;
          Buffer want(payload), got(payload);
          const uint8_t* want_frame = want.Write(with_sum, ip_id);
          const uint8_t* got_frame =
              tmpl.Write(got.payload(), static_cast<uint32_t>(len), ip_id,
                         give_sum ? std::optional<uint16_t>(sum) : std::nullopt);
          ASSERT_EQ(got_frame - got.bytes.data(), want_frame - want.bytes.data());
          ASSERT_EQ(got.bytes, want.bytes)
              << pair[0] << " vlan " << vlan << " options " << options << " len " << len;
          ASSERT_TRUE(got.GuardsIntact(got_frame));
        }
      }
    }
  }
}

TEST(Checksum, Ipv4HeaderKnownAnswer) {
  // The classic example: 4500 0073 0000 4000 4011 [b861] c0a8 0001 c0a8 00c7.
  uint8_t header[20] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                        0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  EXPECT_EQ(Ipv4HeaderChecksum(header, sizeof(header)), 0xb861);
  header[10] = 0xb8;
  header[11] = 0x61;
  EXPECT_EQ(Ipv4HeaderChecksum(header, sizeof(header)), 0);

  // WriteUdpHeaders produces exactly that header for the same fields.
  UdpHeaderSpec spec = Spec("192.168.0.1:1000", "192.168.0.199:2000");
  spec.dscp = 0;
  spec.ttl = 0x40;
  Buffer buf(Bytes(0x73 - 28, 0));
  const uint8_t* frame = buf.Write(spec, 0);
  EXPECT_TRUE(std::equal(header, header + 20, frame + 14));
}

TEST(Checksum, Rfc1071Example) {
  // RFC 1071 §3: 0001 f203 f4f5 f6f7 sums to ddf2 (after the end-around carry).
  const uint8_t bytes[8] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  EXPECT_EQ(OnesComplementSum(bytes, 8), 0xddf2);
  // Chained in even pieces, the same.
  EXPECT_EQ(OnesComplementSum(bytes + 2, 6, OnesComplementSum(bytes, 2)), 0xddf2);
  EXPECT_EQ(OnesComplementSum(bytes + 6, 2, OnesComplementSum(bytes, 6)), 0xddf2);
  // An odd last byte is the high byte of a zero-padded word.
  const uint8_t odd[3] = {0x12, 0x34, 0x56};
  EXPECT_EQ(OnesComplementSum(odd, 3), 0x1234 + 0x5600);
  EXPECT_EQ(OnesComplementSum(nullptr, 0), 0);
  EXPECT_EQ(OnesComplementSum(nullptr, 0, 0xabcd), 0xabcd);
}

TEST(Checksum, AgreesWithThePlainImplementation) {
  Bytes data;
  uint32_t x = 12345;
  for (size_t n = 0; n < 300; ++n) {
    x = x * 1103515245 + 12345;
    data.push_back(static_cast<uint8_t>(x >> 16));
    EXPECT_EQ(OnesComplementSum(data.data(), data.size()), RefSum(data.data(), data.size()))
        << n;
  }
  const Bytes ones(1500, 0xff);
  EXPECT_EQ(OnesComplementSum(ones.data(), ones.size()), 0xffff);
}

TEST(Checksum, AgreesAtEveryStartOffsetAndAcrossLongBuffers) {
  // Random bytes summed from each of the first 16 offsets (unaligned loads,
  // a different split between wide steps and the tail), and buffers long
  // enough that the wide loop's 32-bit lanes are folded into the sum
  // several times, all-ones (every lane at its largest) among them.
  std::mt19937 rng(7);
  Bytes data(2100);
  for (uint8_t& b : data) b = static_cast<uint8_t>(rng());
  for (size_t offset = 0; offset < 16; ++offset) {
    for (size_t len : {31u, 32u, 33u, 63u, 64u, 172u, 180u, 1212u, 2048u}) {
      EXPECT_EQ(OnesComplementSum(data.data() + offset, len), RefSum(data.data() + offset, len))
          << "offset " << offset << " length " << len;
    }
  }
  for (size_t len : {size_t{1} << 19, (size_t{1} << 20) + 37, (size_t{3} << 19) + 2}) {
    Bytes big(len);
    for (uint8_t& b : big) b = static_cast<uint8_t>(rng());
    EXPECT_EQ(OnesComplementSum(big.data(), len), RefSum(big.data(), len)) << len;
    const Bytes ones(len, 0xff);
    EXPECT_EQ(OnesComplementSum(ones.data(), len), RefSum(ones.data(), len)) << len;
  }
}

TEST(Checksum, AgreesAtRandomLengthsAndAlignmentsWithCarriesEverywhere) {
  // Every split of the 64-, 32-, 16- and 8-byte steps and the tail (odd
  // lengths among them), from random start offsets, over random bytes and
  // over bytes that carry out of every add (all ones, and mostly ones), with
  // a running sum carried in.
  std::mt19937 rng(27);
  Bytes random(4200), ones(4200, 0xff), mostly(4200);
  for (uint8_t& b : random) b = static_cast<uint8_t>(rng());
  for (uint8_t& b : mostly) b = rng() % 8 == 0 ? static_cast<uint8_t>(rng()) : 0xff;
  for (int trial = 0; trial < 3000; ++trial) {
    const size_t len = trial < 300 ? trial : rng() % 4096;
    const size_t offset = rng() % 64;
    const uint16_t start = trial % 2 == 0 ? 0 : static_cast<uint16_t>(rng());
    for (const Bytes* data : {&random, &ones, &mostly}) {
      const uint8_t* p = data->data() + offset;
      EXPECT_EQ(OnesComplementSum(p, len, start), RefSum(p, len, start))
          << "offset " << offset << " length " << len << " start " << start;
    }
  }
}

TEST(Checksum, PseudoHeaderSums) {
  const IpAddress a4 = *IpAddress::Parse("10.0.0.1");
  const IpAddress b4 = *IpAddress::Parse("192.0.2.200");
  const IpAddress a6 = *IpAddress::Parse("fd00::1");
  const IpAddress b6 = *IpAddress::Parse("2001:db8:ffff::ffff");
  for (uint32_t len : {8u, 9u, 180u, 65535u}) {
    EXPECT_EQ(UdpPseudoHeaderSum(a4, b4, len), RefPseudoSum(a4, b4, len)) << len;
    EXPECT_EQ(UdpPseudoHeaderSum(a6, b6, len), RefPseudoSum(a6, b6, len)) << len;
  }
}

TEST(WriteUdpHeadersDeathTest, MixedFamiliesAssertInDebug) {
  UdpHeaderSpec spec = Spec("10.0.0.1:1000", "[fd00::2]:2000");
  Buffer buf(Rtp(20));
  // In a release build the call writes an IPv4 header in bounds.
  EXPECT_DEBUG_DEATH(buf.Write(spec), "family");
}

}  // namespace
}  // namespace sluice::packet
