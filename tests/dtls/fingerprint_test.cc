#include "sluice/dtls/fingerprint.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sluice::dtls {
namespace {

using ::testing::HasSubstr;

const std::vector<uint8_t> kAbc = {'a', 'b', 'c'};

// FIPS 180-2 test vectors for "abc", in RFC 8122's notation.
constexpr char kSha1Abc[] = "sha-1 A9:99:3E:36:47:06:81:6A:BA:3E:25:71:78:50:C2:6C:9C:D0:D8:9D";
constexpr char kSha256Abc[] =
    "sha-256 BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:"
    "B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD";

TEST(FingerprintTest, ComputesAndFormatsKnownDigests) {
  EXPECT_EQ(FormatFingerprint(ComputeFingerprint(kAbc, HashFunction::kSha1)), kSha1Abc);
  EXPECT_EQ(FormatFingerprint(ComputeFingerprint(kAbc, HashFunction::kSha256)), kSha256Abc);
}

TEST(FingerprintTest, EveryHashRoundTripsWithItsLength) {
  const int lens[] = {20, 28, 32, 48, 64};
  for (int i = 0; i < kHashFunctionCount; ++i) {
    const auto hash = static_cast<HashFunction>(i);
    EXPECT_EQ(DigestLen(hash), lens[i]);
    const Fingerprint fp = ComputeFingerprint(kAbc, hash);
    const std::string text = FormatFingerprint(fp);
    EXPECT_EQ(text.size(), HashFunctionName(hash).size() + 1 + 3 * lens[i] - 1);
    absl::StatusOr<Fingerprint> parsed = ParseFingerprint(text);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(parsed->hash, hash);
    EXPECT_EQ(std::vector<uint8_t>(parsed->digest_bytes().begin(), parsed->digest_bytes().end()),
              std::vector<uint8_t>(fp.digest_bytes().begin(), fp.digest_bytes().end()));
  }
}

// RFC 8122 §5: hash-func is case-insensitive; hex in lower case (sent by
// some stacks) is accepted too; surrounding blanks are ignored.
TEST(FingerprintTest, ParsingIsLiberalInCaseAndBlanks) {
  absl::StatusOr<Fingerprint> fp = ParseFingerprint(
      "  SHA-256 ba:78:16:bf:8f:01:cf:ea:41:41:40:de:5d:ae:22:23:"
      "b0:03:61:a3:96:17:7a:9c:b4:10:ff:61:f2:00:15:ad \r\n");
  ASSERT_TRUE(fp.ok()) << fp.status();
  EXPECT_EQ(FormatFingerprint(*fp), kSha256Abc);
  EXPECT_EQ(HashFunctionFromName("Sha-512"), HashFunction::kSha512);
  EXPECT_FALSE(HashFunctionFromName("sha256"));
}

TEST(FingerprintTest, MalformedValuesAreRefusedSayingWhy) {
  struct Case {
    std::string value;
    absl::StatusCode code;
    const char* says;
  };
  const std::string sha1_hex = std::string(kSha1Abc).substr(6);
  const Case cases[] = {
      {"", absl::StatusCode::kInvalidArgument, "expected '<hash-func> <hex pairs>'"},
      {"sha-256", absl::StatusCode::kInvalidArgument, "expected '<hash-func> <hex pairs>'"},
      {"md5 " + sha1_hex, absl::StatusCode::kUnimplemented, "'md5' is not accepted"},
      {"sha-3 " + sha1_hex, absl::StatusCode::kUnimplemented, "'sha-3' is not accepted"},
      {"sha-256 " + sha1_hex, absl::StatusCode::kInvalidArgument, "needs 32 hex pairs"},
      {"sha-1 " + sha1_hex + ":00", absl::StatusCode::kInvalidArgument, "needs 20 hex pairs"},
      {"sha-1 " + sha1_hex.substr(0, 58) + "G", absl::StatusCode::kInvalidArgument,
       "is not hex"},
      {"sha-1 " + std::string(sha1_hex).replace(2, 1, "-"), absl::StatusCode::kInvalidArgument,
       "expected ':' after byte 0"},
      {"sha-1  " + sha1_hex, absl::StatusCode::kInvalidArgument, "needs 20 hex pairs"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.value);
    absl::StatusOr<Fingerprint> fp = ParseFingerprint(c.value);
    ASSERT_FALSE(fp.ok());
    EXPECT_EQ(fp.status().code(), c.code);
    EXPECT_THAT(fp.status().message(), HasSubstr(c.says));
  }
}

TEST(FingerprintTest, MatchAcceptsAnyEntryOfTheStrongestHash) {
  const std::vector<uint8_t> cert = {1, 2, 3, 4};
  const Fingerprint right = ComputeFingerprint(cert, HashFunction::kSha256);
  Fingerprint wrong = right;
  wrong.digest[31] ^= 0x01;  // the last byte: no early exit can hide it
  EXPECT_TRUE(MatchFingerprints(cert, std::vector{right}).ok());
  EXPECT_TRUE(MatchFingerprints(cert, std::vector{wrong, right}).ok());
  absl::Status s = MatchFingerprints(cert, std::vector{wrong});
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(s.message(), HasSubstr("fingerprint mismatch"));
  EXPECT_THAT(s.message(), HasSubstr("sha-256"));
  EXPECT_FALSE(MatchFingerprints(ComputeFingerprint({}, HashFunction::kSha1).digest_bytes(),
                                 std::vector{right})
                   .ok());
}

// RFC 8122 §5: the set in the strongest offered hash decides; a matching
// weaker fingerprint does not make up for a wrong stronger one.
TEST(FingerprintTest, MatchUsesOnlyTheStrongestHashOffered) {
  const std::vector<uint8_t> cert = {9, 8, 7};
  const Fingerprint sha1 = ComputeFingerprint(cert, HashFunction::kSha1);
  const Fingerprint sha512 = ComputeFingerprint(cert, HashFunction::kSha512);
  Fingerprint wrong512 = sha512;
  wrong512.digest[0] ^= 0x80;
  EXPECT_TRUE(MatchFingerprints(cert, std::vector{sha1}).ok());
  EXPECT_TRUE(MatchFingerprints(cert, std::vector{sha1, sha512}).ok());
  absl::Status s = MatchFingerprints(cert, std::vector{sha1, wrong512});
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(s.message(), HasSubstr("sha-512"));
}

TEST(FingerprintTest, MatchWithoutFingerprintsIsAnError) {
  EXPECT_EQ(MatchFingerprints(kAbc, {}).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sluice::dtls
