#include "sluice/ice/stun.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::ice {
namespace {

// RFC 5769 §2.1: sample request (USERNAME padded with spaces, ICE-CONTROLLED).
const std::vector<uint8_t> kSampleRequest = {
    0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01,
    0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
    0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73,  // SOFTWARE
    0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74,
    0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff,                          // PRIORITY
    0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36,  // ICE-CONTROLLED
    0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76,  // USERNAME
    0x59, 0x20, 0x20, 0x20,
    0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56,  // MESSAGE-INTEGRITY
    0x78, 0x1e, 0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49, 0xc1, 0xb5, 0x71, 0xa2,
    0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf,                          // FINGERPRINT
};

// RFC 5769 §2.2: sample IPv4 response, 192.0.2.1:32853.
const std::vector<uint8_t> kSampleIpv4Response = {
    0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01,
    0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
    0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,  // SOFTWARE
    0x74, 0x6f, 0x72, 0x20,
    0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,  // XOR-MAPPED
    0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3,  // MESSAGE-INTEGRITY
    0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7,
    0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96,                          // FINGERPRINT
};

// RFC 5769 §2.3: sample IPv6 response, [2001:db8:1234:5678:11:2233:4455:6677]:32853.
const std::vector<uint8_t> kSampleIpv6Response = {
    0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01,
    0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
    0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,  // SOFTWARE
    0x74, 0x6f, 0x72, 0x20,
    0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa,  // XOR-MAPPED
    0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9,
    0x00, 0x08, 0x00, 0x14, 0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1,  // MESSAGE-INTEGRITY
    0x17, 0x84, 0xc9, 0x7c, 0x82, 0x92, 0xc2, 0x75, 0xbf, 0xe3, 0xed, 0x41,
    0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb, 0x0b, 0x4c,                          // FINGERPRINT
};

constexpr std::string_view kSamplePassword = "VOkJxbRl1RmTxUk/WvJxBt";
const StunTransactionId kSampleId = {0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
                                     0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae};

std::span<const uint8_t> Text(std::string_view s) { return StunKey(s); }

packet::Endpoint Ep(const char* text) { return *packet::Endpoint::Parse(text); }

TEST(StunRfc5769, SampleRequestParsesAndAuthenticates) {
  const StunParse p = ParseStun(kSampleRequest);
  ASSERT_TRUE(p.ok()) << StunParseStatusName(p.status);
  const StunMessage& m = p.message;
  EXPECT_EQ(m.method, kStunBindingMethod);
  EXPECT_EQ(m.cls, StunClass::kRequest);
  EXPECT_EQ(m.transaction_id, kSampleId);
  ASSERT_TRUE(m.username);
  EXPECT_EQ(*m.username, "evtj:h6vY");  // its padding is spaces: ignored
  EXPECT_EQ(m.priority, 0x6e0001ffu);
  EXPECT_EQ(m.ice_controlled, 0x932ff9b151263b36u);
  EXPECT_FALSE(m.ice_controlling);
  EXPECT_FALSE(m.use_candidate);
  EXPECT_TRUE(m.has_fingerprint);
  EXPECT_EQ(m.integrity_offset, 76u);
  EXPECT_EQ(m.unknown_required_count, 0u);  // SOFTWARE is comprehension-optional
  EXPECT_TRUE(VerifyStunIntegrity(kSampleRequest, m, StunKey(kSamplePassword)));
  EXPECT_FALSE(VerifyStunIntegrity(kSampleRequest, m, StunKey("VOkJxbRl1RmTxUk/WvJxBu")));
  EXPECT_FALSE(VerifyStunIntegrity(kSampleRequest, m, {}));
}

TEST(StunRfc5769, SampleResponsesCarryTheMappedAddress) {
  const StunParse v4 = ParseStun(kSampleIpv4Response);
  ASSERT_TRUE(v4.ok()) << StunParseStatusName(v4.status);
  EXPECT_EQ(v4.message.cls, StunClass::kSuccessResponse);
  EXPECT_EQ(v4.message.xor_mapped_address, Ep("192.0.2.1:32853"));
  EXPECT_TRUE(VerifyStunIntegrity(kSampleIpv4Response, v4.message, StunKey(kSamplePassword)));

  const StunParse v6 = ParseStun(kSampleIpv6Response);
  ASSERT_TRUE(v6.ok()) << StunParseStatusName(v6.status);
  EXPECT_EQ(v6.message.xor_mapped_address, Ep("[2001:db8:1234:5678:11:2233:4455:6677]:32853"));
  EXPECT_TRUE(VerifyStunIntegrity(kSampleIpv6Response, v6.message, StunKey(kSamplePassword)));
}

// The builder reproduces the vectors byte for byte: same layout, same
// MESSAGE-INTEGRITY and FINGERPRINT (padding as the RFC wrote it).
std::vector<uint8_t> SampleResponse(const packet::Endpoint& mapped) {
  StunBuilder b(kStunBindingMethod, StunClass::kSuccessResponse, kSampleId);
  b.AddAttribute(stun_attr::kSoftware, Text("test vector"), 0x20);
  b.AddXorMappedAddress(mapped).AddMessageIntegrity(StunKey(kSamplePassword)).AddFingerprint();
  return std::move(b).Take();
}

TEST(StunRfc5769, BuilderReproducesTheVectors) {
  StunBuilder b(kStunBindingMethod, StunClass::kRequest, kSampleId);
  b.AddAttribute(stun_attr::kSoftware, Text("STUN test client"))
      .AddPriority(0x6e0001ff)
      .AddIceControlled(0x932ff9b151263b36)
      .AddAttribute(stun_attr::kUsername, Text("evtj:h6vY"), 0x20)
      .AddMessageIntegrity(StunKey(kSamplePassword))
      .AddFingerprint();
  EXPECT_EQ(b.bytes(), kSampleRequest);
  EXPECT_EQ(SampleResponse(Ep("192.0.2.1:32853")), kSampleIpv4Response);
  EXPECT_EQ(SampleResponse(Ep("[2001:db8:1234:5678:11:2233:4455:6677]:32853")),
            kSampleIpv6Response);
}

TEST(StunParse, EveryTruncationIsRefused) {
  for (size_t n = 0; n < kSampleRequest.size(); ++n) {
    const StunParse p = ParseStun(std::span(kSampleRequest).first(n));
    EXPECT_FALSE(p.ok()) << n;
    EXPECT_EQ(p.status, n < 20 ? StunParseStatus::kTooShort : StunParseStatus::kBadLength) << n;
  }
}

TEST(StunParse, TrailingBytesAndWrongLengthFieldAreRefused) {
  auto longer = kSampleRequest;
  longer.insert(longer.end(), {0, 0, 0, 0});
  EXPECT_EQ(ParseStun(longer).status, StunParseStatus::kBadLength);
  auto odd = kSampleRequest;
  odd[3] = 0x57;  // not a multiple of 4
  EXPECT_EQ(ParseStun(odd).status, StunParseStatus::kBadLength);
}

TEST(StunParse, AnAttributeMustFitWithItsPadding) {
  // Header length 12: a USERNAME of 9 bytes needs 4 + 12.
  std::vector<uint8_t> d = {0x00, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xa4, 0x42};
  d.resize(20, 0x11);
  d.insert(d.end(), {0x00, 0x06, 0x00, 0x09, 'a', 'b', 'c', 'd', ':', 'e', 'f', 'g'});
  EXPECT_EQ(ParseStun(d).status, StunParseStatus::kTruncatedAttribute);
  // The same USERNAME without its padding: the length field is 13.
  d[3] = 0x0d;
  d.push_back('h');
  EXPECT_EQ(ParseStun(d).status, StunParseStatus::kBadLength);
  // An attribute length running far past the end.
  d = std::vector<uint8_t>{0x00, 0x01, 0x00, 0x04, 0x21, 0x12, 0xa4, 0x42};
  d.resize(20, 0);
  d.insert(d.end(), {0x80, 0x22, 0xff, 0xff});
  EXPECT_EQ(ParseStun(d).status, StunParseStatus::kTruncatedAttribute);
}

TEST(StunParse, NoAttributeMayFollowFingerprint) {
  StunBuilder b(kStunBindingMethod, StunClass::kRequest, kSampleId);
  b.AddPriority(1).AddFingerprint().AddUseCandidate();
  EXPECT_EQ(ParseStun(b.bytes()).status, StunParseStatus::kAttributeAfterFingerprint);
}

TEST(StunParse, WrongFingerprintIsRefused) {
  auto bad_crc = kSampleRequest;
  bad_crc.back() ^= 0x01;
  EXPECT_EQ(ParseStun(bad_crc).status, StunParseStatus::kBadFingerprint);
  auto changed_body = kSampleRequest;
  changed_body[44] ^= 0x01;  // PRIORITY: covered by the fingerprint
  EXPECT_EQ(ParseStun(changed_body).status, StunParseStatus::kBadFingerprint);
}

TEST(StunParse, AttributesAfterIntegrityAreIgnored) {
  StunBuilder b(kStunBindingMethod, StunClass::kRequest, kSampleId);
  b.AddUsername("abcd:efgh").AddPriority(7).AddMessageIntegrity(StunKey(kSamplePassword));
  b.AddUseCandidate().AddAttribute(0x0003, Text("xxxx")).AddFingerprint();
  const StunParse p = ParseStun(b.bytes());
  ASSERT_TRUE(p.ok()) << StunParseStatusName(p.status);
  EXPECT_FALSE(p.message.use_candidate);               // RFC 8489 §14.5
  EXPECT_EQ(p.message.unknown_required_count, 0u);
  EXPECT_TRUE(VerifyStunIntegrity(b.bytes(), p.message, StunKey(kSamplePassword)));
}

TEST(StunParse, NotStunIsRefused) {
  auto rtp = kSampleRequest;
  rtp[0] = 0x80;
  EXPECT_EQ(ParseStun(rtp).status, StunParseStatus::kNotStun);
  auto classic = kSampleRequest;
  classic[4] = 0;  // RFC 3489 had no magic cookie
  EXPECT_EQ(ParseStun(classic).status, StunParseStatus::kNotStun);
}

TEST(StunParse, MalformedKnownAttributesAreRefused) {
  const auto with = [](uint16_t type, std::vector<uint8_t> value) {
    StunBuilder b(kStunBindingMethod, StunClass::kRequest, kSampleId);
    b.AddAttribute(type, value);
    return ParseStun(b.bytes()).status;
  };
  EXPECT_EQ(with(stun_attr::kPriority, {1, 2, 3}), StunParseStatus::kBadAttribute);
  EXPECT_EQ(with(stun_attr::kUseCandidate, {1}), StunParseStatus::kBadAttribute);
  EXPECT_EQ(with(stun_attr::kIceControlling, {1, 2, 3, 4}), StunParseStatus::kBadAttribute);
  EXPECT_EQ(with(stun_attr::kMessageIntegrity, std::vector<uint8_t>(19)),
            StunParseStatus::kBadAttribute);
  EXPECT_EQ(with(stun_attr::kXorMappedAddress, {0, 3, 0, 0, 1, 2, 3, 4}),
            StunParseStatus::kBadAttribute);
  EXPECT_EQ(with(stun_attr::kXorMappedAddress, {0, 2, 0, 0, 1, 2, 3, 4}),
            StunParseStatus::kBadAttribute);  // IPv6 family, IPv4 length
  EXPECT_EQ(with(stun_attr::kErrorCode, {0, 0, 7, 0}), StunParseStatus::kBadAttribute);
  EXPECT_EQ(with(stun_attr::kErrorCode, {0, 0, 4, 100}), StunParseStatus::kBadAttribute);
  EXPECT_EQ(with(stun_attr::kUsername, std::vector<uint8_t>(kStunMaxUsername + 1, 'a')),
            StunParseStatus::kBadAttribute);
  EXPECT_EQ(with(stun_attr::kUsername, std::vector<uint8_t>(kStunMaxUsername, 'a')),
            StunParseStatus::kOk);
}

TEST(StunParse, UnknownComprehensionRequiredAttributesAreListed) {
  StunBuilder b(kStunBindingMethod, StunClass::kRequest, kSampleId);
  b.AddAttribute(0x0003, Text("abcd"))   // CHANGE-REQUEST: required, not known here
      .AddAttribute(0x8055, Text("ab"))  // comprehension-optional: ignored
      .AddAttribute(0x7fff, {});
  const StunParse p = ParseStun(b.bytes());
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p.message.unknown_required_count, 2u);
  EXPECT_EQ(p.message.unknown_required[0], 0x0003);
  EXPECT_EQ(p.message.unknown_required[1], 0x7fff);
}

TEST(StunParse, FirstOccurrenceOfAnAttributeCounts) {
  StunBuilder b(kStunBindingMethod, StunClass::kRequest, kSampleId);
  b.AddUsername("first:one").AddUsername("second:one").AddPriority(1).AddPriority(2);
  const StunParse p = ParseStun(b.bytes());
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.message.username, "first:one");
  EXPECT_EQ(p.message.priority, 1u);
}

TEST(StunMessageType, MethodAndClassBits) {
  EXPECT_EQ(StunMessageType(kStunBindingMethod, StunClass::kRequest), 0x0001);
  EXPECT_EQ(StunMessageType(kStunBindingMethod, StunClass::kIndication), 0x0011);
  EXPECT_EQ(StunMessageType(kStunBindingMethod, StunClass::kSuccessResponse), 0x0101);
  EXPECT_EQ(StunMessageType(kStunBindingMethod, StunClass::kErrorResponse), 0x0111);
  for (uint16_t method : {0x001, 0x003, 0x0ff, 0xfff}) {
    for (StunClass c : {StunClass::kRequest, StunClass::kIndication,
                        StunClass::kSuccessResponse, StunClass::kErrorResponse}) {
      StunBuilder b(method, c, kSampleId);
      const StunParse p = ParseStun(b.bytes());
      ASSERT_TRUE(p.ok());
      EXPECT_EQ(p.message.method, method);
      EXPECT_EQ(p.message.cls, c);
    }
  }
}

TEST(StunBuild, SuccessResponseRoundTrips) {
  for (const char* mapped : {"198.51.100.7:40000", "[2001:db8::42]:9"}) {
    const auto bytes = BuildBindingSuccess(kSampleId, Ep(mapped), StunKey(kSamplePassword));
    const StunParse p = ParseStun(bytes);
    ASSERT_TRUE(p.ok()) << StunParseStatusName(p.status);
    EXPECT_EQ(p.message.cls, StunClass::kSuccessResponse);
    EXPECT_EQ(p.message.transaction_id, kSampleId);
    EXPECT_EQ(p.message.xor_mapped_address, Ep(mapped));
    EXPECT_TRUE(p.message.has_fingerprint);
    EXPECT_TRUE(VerifyStunIntegrity(bytes, p.message, StunKey(kSamplePassword)));
  }
}

TEST(StunBuild, ErrorResponses) {
  const uint16_t unknown[] = {0x0003, 0x7fff};
  const auto e420 = BuildBindingError(kSampleId, 420, StunKey(kSamplePassword), unknown);
  StunParse p = ParseStun(e420);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.message.cls, StunClass::kErrorResponse);
  ASSERT_TRUE(p.message.error_code);
  EXPECT_EQ(p.message.error_code->code, 420);
  EXPECT_EQ(p.message.error_code->reason, "Unknown Attribute");
  EXPECT_TRUE(VerifyStunIntegrity(e420, p.message, StunKey(kSamplePassword)));
  const auto e401 = BuildBindingError(kSampleId, 401, {});
  p = ParseStun(e401);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.message.error_code->code, 401);
  EXPECT_EQ(p.message.error_code->reason, "Unauthenticated");
  EXPECT_FALSE(p.message.integrity_offset);  // RFC 8489 §9.1.3
  EXPECT_TRUE(p.message.has_fingerprint);
  EXPECT_STREQ(StunErrorReason(487), "Role Conflict");
  EXPECT_STREQ(StunErrorReason(400), "Bad Request");
}

TEST(StunVerify, ADifferentDatagramDoesNotVerify) {
  const StunParse p = ParseStun(kSampleRequest);
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(VerifyStunIntegrity(std::span(kSampleRequest).first(80), p.message,
                                   StunKey(kSamplePassword)));
  auto tampered = kSampleRequest;
  tampered[23] ^= 0x01;  // SOFTWARE length: covered by the HMAC
  EXPECT_FALSE(VerifyStunIntegrity(tampered, p.message, StunKey(kSamplePassword)));
  StunMessage no_integrity = p.message;
  no_integrity.integrity_offset.reset();
  EXPECT_FALSE(VerifyStunIntegrity(kSampleRequest, no_integrity, StunKey(kSamplePassword)));
}

// Random corruption of a valid message: every outcome is a status, and a
// message still parsed with a change the HMAC covers never authenticates.
TEST(StunParse, RandomCorruptionIsTotal) {
  std::mt19937 rng(23);
  for (int i = 0; i < 20000; ++i) {
    auto d = kSampleRequest;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) d[rng() % d.size()] ^= static_cast<uint8_t>(1 + rng() % 255);
    if (rng() % 4 == 0) d.resize(rng() % (d.size() + 8), 0x5a);
    const StunParse p = ParseStun(d);
    const bool covered_changed =
        d.size() >= 96 && !std::equal(d.begin(), d.begin() + 96, kSampleRequest.begin());
    if (p.ok() && covered_changed) {
      EXPECT_FALSE(VerifyStunIntegrity(d, p.message, StunKey(kSamplePassword)));
    }
  }
}

}  // namespace
}  // namespace sluice::ice
