// Master keys: the sameness check behind the two-time-pad refusal, and the
// fingerprints that stand in for a key once it is gone.
#include "sluice/srtp/master_key.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace sluice::srtp {
namespace {

using crypto::Suite;

MasterKey Key(Suite suite, uint8_t key_first, uint8_t salt_first) {
  MasterKey k;
  k.suite = suite;
  for (size_t i = 0; i < k.key.size(); ++i) k.key[i] = static_cast<uint8_t>(key_first + i);
  for (size_t i = 0; i < k.salt.size(); ++i) k.salt[i] = static_cast<uint8_t>(salt_first + i);
  return k;
}

TEST(MasterKeyTest, SpansFollowTheSuite) {
  MasterKey k = Key(Suite::kAeadAes256Gcm, 1, 2);
  k.mki_len = 2;
  EXPECT_EQ(k.key_bytes().size(), 32u);
  EXPECT_EQ(k.salt_bytes().size(), 12u);
  EXPECT_EQ(k.mki_bytes().size(), 2u);
}

TEST(MasterKeyTest, SameKeyAcrossTagLengths) {
  const MasterKey a = Key(Suite::kAesCm128HmacSha1_80, 1, 50);
  const MasterKey b = Key(Suite::kAesCm128HmacSha1_32, 1, 50);
  EXPECT_TRUE(a.SameKeyAs(b));
  EXPECT_TRUE(b.SameKeyAs(a));
  EXPECT_FALSE(a.SameKeyAs(Key(Suite::kAesCm128HmacSha1_80, 2, 50)));
  EXPECT_FALSE(a.SameKeyAs(Key(Suite::kAesCm128HmacSha1_80, 1, 51)));
  EXPECT_FALSE(a.SameKeyAs(Key(Suite::kAes256CmHmacSha1_80, 1, 50)));
}

TEST(MasterKeyTest, FingerprintsMatchExactlyWhenTheKeysAreTheSame) {
  const MasterKey a = Key(Suite::kAesCm128HmacSha1_80, 1, 50);
  const MasterKey same = Key(Suite::kAesCm128HmacSha1_32, 1, 50);
  const MasterKey other_key = Key(Suite::kAesCm128HmacSha1_80, 9, 50);
  const MasterKey other_salt = Key(Suite::kAesCm128HmacSha1_80, 1, 60);
  const KeyFingerprint fa(a);
  EXPECT_TRUE(fa.Matches(KeyFingerprint(a)));
  EXPECT_TRUE(fa.Matches(KeyFingerprint(same)));
  EXPECT_FALSE(fa.Matches(KeyFingerprint(other_key)));
  EXPECT_FALSE(fa.Matches(KeyFingerprint(other_salt)));
}

TEST(MasterKeyTest, CopiesAreIndependent) {
  MasterKey a = Key(Suite::kAesCm128HmacSha1_80, 1, 50);
  MasterKey b = a;
  b.key[0] ^= 0xff;
  EXPECT_FALSE(a.SameKeyAs(b));
  EXPECT_EQ(a.key[0], 1);
}

}  // namespace
}  // namespace sluice::srtp
