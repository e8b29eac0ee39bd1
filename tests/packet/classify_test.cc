#include "sluice/packet/classify.h"

#include <gtest/gtest.h>

#include <array>
#include <vector>

namespace sluice::packet {
namespace {

std::vector<uint8_t> Datagram(uint8_t b0, uint8_t b1, size_t size) {
  std::vector<uint8_t> d(size, 0);
  if (size > 0) d[0] = b0;
  if (size > 1) d[1] = b1;
  return d;
}

TEST(ClassifyPayload, RtpVersion2WithAudioPayloadType) {
  EXPECT_EQ(ClassifyPayload(Datagram(0x80, 0, 172)), PayloadKind::kRtp);    // PCMU
  EXPECT_EQ(ClassifyPayload(Datagram(0x80, 0x88, 172)), PayloadKind::kRtp); // PCMA, marker
  EXPECT_EQ(ClassifyPayload(Datagram(0x90, 111, 60)), PayloadKind::kRtp);   // X bit
}

TEST(ClassifyPayload, RtcpByPayloadTypeOnMuxedPort) {
  for (uint8_t pt : {200, 201, 202, 203, 204, 205, 206, 207}) {
    EXPECT_EQ(ClassifyPayload(Datagram(0x81, pt, 28)), PayloadKind::kRtcp) << int{pt};
  }
  // RFC 5761 §4: 192-223 is the whole range reserved for RTCP.
  EXPECT_EQ(ClassifyPayload(Datagram(0x80, 192, 8)), PayloadKind::kRtcp);
  EXPECT_EQ(ClassifyPayload(Datagram(0x80, 223, 8)), PayloadKind::kRtcp);
  EXPECT_EQ(ClassifyPayload(Datagram(0x80, 224, 12)), PayloadKind::kRtp);
  EXPECT_EQ(ClassifyPayload(Datagram(0x80, 191, 12)), PayloadKind::kRtp);
}

TEST(ClassifyPayload, Rfc7983FirstByteRanges) {
  EXPECT_EQ(ClassifyPayload(Datagram(0x00, 0x01, 20)), PayloadKind::kStun);
  EXPECT_EQ(ClassifyPayload(Datagram(0x01, 0x01, 20)), PayloadKind::kStun);
  EXPECT_EQ(ClassifyPayload(Datagram(3, 0, 20)), PayloadKind::kStun);
  EXPECT_EQ(ClassifyPayload(Datagram(16, 0, 20)), PayloadKind::kZrtp);
  EXPECT_EQ(ClassifyPayload(Datagram(20, 0xfe, 13)), PayloadKind::kDtls);
  EXPECT_EQ(ClassifyPayload(Datagram(22, 0xfe, 13)), PayloadKind::kDtls);
  EXPECT_EQ(ClassifyPayload(Datagram(63, 0xfe, 13)), PayloadKind::kDtls);
  EXPECT_EQ(ClassifyPayload(Datagram(64, 0, 8)), PayloadKind::kTurnChannel);
  EXPECT_EQ(ClassifyPayload(Datagram(79, 0, 8)), PayloadKind::kTurnChannel);
}

TEST(ClassifyPayload, UnassignedAndShortInputIsUnknown) {
  EXPECT_EQ(ClassifyPayload({}), PayloadKind::kUnknown);
  EXPECT_EQ(ClassifyPayload(Datagram(4, 0, 20)), PayloadKind::kUnknown);
  EXPECT_EQ(ClassifyPayload(Datagram(80, 0, 20)), PayloadKind::kUnknown);
  EXPECT_EQ(ClassifyPayload(Datagram(127, 0, 20)), PayloadKind::kUnknown);
  EXPECT_EQ(ClassifyPayload(Datagram(192, 0, 20)), PayloadKind::kUnknown);  // RTP version 3
  EXPECT_EQ(ClassifyPayload(Datagram(0x80, 0, 11)), PayloadKind::kUnknown);  // short RTP
  EXPECT_EQ(ClassifyPayload(Datagram(0x80, 200, 7)), PayloadKind::kUnknown); // short RTCP
  EXPECT_EQ(ClassifyPayload(Datagram(0x80, 0, 1)), PayloadKind::kUnknown);
  EXPECT_EQ(ClassifyPayload(Datagram(0x00, 0x01, 19)), PayloadKind::kUnknown); // short STUN
}

TEST(ClassifyPayload, EveryFirstByteHasExactlyOneKind) {
  // The RFC 7983 ranges partition 0-255; check that the code agrees.
  std::array<int, 7> seen{};
  for (int b = 0; b < 256; ++b) {
    auto kind = ClassifyPayload(Datagram(static_cast<uint8_t>(b), 0, 64));
    seen[static_cast<size_t>(kind)]++;
  }
  EXPECT_EQ(seen[static_cast<size_t>(PayloadKind::kStun)], 4);
  EXPECT_EQ(seen[static_cast<size_t>(PayloadKind::kZrtp)], 4);
  EXPECT_EQ(seen[static_cast<size_t>(PayloadKind::kDtls)], 44);
  EXPECT_EQ(seen[static_cast<size_t>(PayloadKind::kTurnChannel)], 16);
  EXPECT_EQ(seen[static_cast<size_t>(PayloadKind::kRtp)], 64);
  EXPECT_EQ(seen[static_cast<size_t>(PayloadKind::kUnknown)], 256 - 4 - 4 - 44 - 16 - 64);
}

TEST(PayloadKindName, NamesEveryKind) {
  EXPECT_STREQ(PayloadKindName(PayloadKind::kRtp), "rtp");
  EXPECT_STREQ(PayloadKindName(PayloadKind::kRtcp), "rtcp");
  EXPECT_STREQ(PayloadKindName(PayloadKind::kDtls), "dtls");
  EXPECT_STREQ(PayloadKindName(PayloadKind::kUnknown), "unknown");
}

}  // namespace
}  // namespace sluice::packet
