#include "sluice/dtls/srtp_profile.h"

#include "gtest/gtest.h"
#include "sluice/crypto/suite.h"

namespace sluice::dtls {
namespace {

using crypto::Suite;

// RFC 5764 §4.1.2 and RFC 7714 §14.2: ids, and the key and salt sizes the
// exporter yields for each profile (GCM salts are 12 bytes, RFC 7714 §12).
TEST(SrtpProfileTest, ProfilesMapToSuitesWithTheirKeySizes) {
  struct Case {
    SrtpProfile profile;
    uint16_t id;
    Suite suite;
    int key_len, salt_len;
  };
  const Case cases[] = {
      {SrtpProfile::kAes128CmSha1_80, 0x0001, Suite::kAesCm128HmacSha1_80, 16, 14},
      {SrtpProfile::kAes128CmSha1_32, 0x0002, Suite::kAesCm128HmacSha1_32, 16, 14},
      {SrtpProfile::kAeadAes128Gcm, 0x0007, Suite::kAeadAes128Gcm, 16, 12},
      {SrtpProfile::kAeadAes256Gcm, 0x0008, Suite::kAeadAes256Gcm, 32, 12},
  };
  ASSERT_EQ(AllSrtpProfiles().size(), std::size(cases));
  for (const Case& c : cases) {
    const SrtpProfileInfo& info = GetSrtpProfileInfo(c.profile);
    EXPECT_EQ(info.profile, c.profile);
    EXPECT_EQ(info.id, c.id);
    EXPECT_EQ(info.suite, c.suite);
    EXPECT_EQ(crypto::GetSuiteInfo(info.suite).key_len, c.key_len);
    EXPECT_EQ(crypto::GetSuiteInfo(info.suite).salt_len, c.salt_len);
    EXPECT_EQ(SrtpProfileFromId(c.id), c.profile);
    EXPECT_EQ(SrtpProfileFromName(info.name), c.profile);
  }
  // RFC 5764 §4.1.2 authenticates SRTCP with 80 bits in the _32 profile too.
  EXPECT_EQ(crypto::GetSuiteInfo(Suite::kAesCm128HmacSha1_32).srtcp_tag_len, 10);
}

TEST(SrtpProfileTest, NamesInOpenSslAndRfcSpelling) {
  EXPECT_EQ(SrtpProfileFromName("SRTP_AES128_CM_SHA1_80"), SrtpProfile::kAes128CmSha1_80);
  EXPECT_EQ(SrtpProfileFromName("SRTP_AES128_CM_HMAC_SHA1_32"), SrtpProfile::kAes128CmSha1_32);
  EXPECT_EQ(SrtpProfileFromName("SRTP_AEAD_AES_256_GCM"), SrtpProfile::kAeadAes256Gcm);
  EXPECT_FALSE(SrtpProfileFromName("srtp_aead_aes_256_gcm"));
  EXPECT_FALSE(SrtpProfileFromName("SRTP_NULL_HMAC_SHA1_80"));
  EXPECT_FALSE(SrtpProfileFromId(0x0005));  // SRTP_NULL_HMAC_SHA1_80: not offered
  EXPECT_FALSE(SrtpProfileFromId(0));
}

}  // namespace
}  // namespace sluice::dtls
