#include "sluice/crypto/suite.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace sluice::crypto {
namespace {

TEST(Suite, EveryNameRoundTrips) {
  std::set<std::string> names;
  for (const SuiteInfo& info : AllSuites()) {
    auto found = SuiteFromName(info.name);
    ASSERT_TRUE(found.has_value()) << info.name;
    EXPECT_EQ(*found, info.suite);
    EXPECT_EQ(&GetSuiteInfo(info.suite), &info);
    names.insert(std::string(info.name));
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(kSuiteCount));
}

TEST(Suite, NamesAreExactAndCaseSensitive) {
  EXPECT_FALSE(SuiteFromName("aes_cm_128_hmac_sha1_80").has_value());
  EXPECT_FALSE(SuiteFromName("AES_CM_129_HMAC_SHA1_80").has_value());
  EXPECT_FALSE(SuiteFromName("AES_CM_128_HMAC_SHA1_80 ").has_value());
  EXPECT_FALSE(SuiteFromName("").has_value());
}

// Key, salt and tag sizes from RFC 4568 §6.2, RFC 6188 §7.1 and RFC 7714 §14.2.
TEST(Suite, SizesFollowTheRfcs) {
  const auto& cm80 = GetSuiteInfo(Suite::kAesCm128HmacSha1_80);
  EXPECT_EQ(cm80.key_salt_len(), 30);
  EXPECT_EQ(cm80.srtp_tag_len, 10);
  EXPECT_EQ(cm80.srtcp_tag_len, 10);
  const auto& cm32 = GetSuiteInfo(Suite::kAesCm128HmacSha1_32);
  EXPECT_EQ(cm32.srtp_tag_len, 4);
  EXPECT_EQ(cm32.srtcp_tag_len, 10) << "SRTCP keeps the 80-bit tag";
  EXPECT_EQ(GetSuiteInfo(Suite::kAes192CmHmacSha1_80).key_salt_len(), 38);
  EXPECT_EQ(GetSuiteInfo(Suite::kAes256CmHmacSha1_32).key_salt_len(), 46);
  EXPECT_EQ(GetSuiteInfo(Suite::kAes256CmHmacSha1_32).srtp_tag_len, 4);
  const auto& gcm128 = GetSuiteInfo(Suite::kAeadAes128Gcm);
  EXPECT_EQ(gcm128.key_salt_len(), 28);
  EXPECT_EQ(gcm128.srtp_tag_len, 16);
  EXPECT_TRUE(gcm128.is_aead());
  EXPECT_EQ(GetSuiteInfo(Suite::kAeadAes256Gcm).key_salt_len(), 44);
  EXPECT_EQ(GetSuiteInfo(Suite::kAeadAes256Gcm8).srtp_tag_len, 8);
  const auto& null_auth = GetSuiteInfo(Suite::kAesCm128NullAuth);
  EXPECT_EQ(null_auth.srtp_tag_len, 0);
  EXPECT_EQ(null_auth.srtp_auth, AuthKind::kNull);
  EXPECT_EQ(null_auth.srtcp_auth, AuthKind::kHmacSha1) << "RFC 3711 §3.4: SRTCP is always authenticated";
  const auto& null_cipher = GetSuiteInfo(Suite::kNullHmacSha1_32);
  EXPECT_EQ(null_cipher.cipher, CipherKind::kNull);
  EXPECT_EQ(null_cipher.srtp_tag_len, 4);
}

TEST(Suite, LifetimeCapsFromRfc3711) {
  for (const SuiteInfo& info : AllSuites()) {
    EXPECT_EQ(info.max_srtp_packets, uint64_t{1} << 48) << info.name;
    EXPECT_EQ(info.max_srtcp_packets, uint64_t{1} << 31) << info.name;
    EXPECT_EQ(info.auth_key_len, info.is_aead() ? 0 : 20) << info.name;
  }
}

}  // namespace
}  // namespace sluice::crypto
