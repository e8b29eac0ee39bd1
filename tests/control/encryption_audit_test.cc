#include "sluice/control/encryption_audit.h"

#include <gtest/gtest.h>

namespace sluice::control {
namespace {

CryptoSpec Sdes(const std::string& value) {
  CryptoSpec spec;
  spec.kind = CryptoSpec::Kind::kSdes;
  spec.sdes = value;
  return spec;
}

CryptoSpec Kind(CryptoSpec::Kind kind) {
  CryptoSpec spec;
  spec.kind = kind;
  return spec;
}

TEST(EncryptionAuditTest, SuitesByWhatAnEavesdropperGets) {
  EXPECT_EQ(SuiteEncryption("AES_CM_128_HMAC_SHA1_80"), Encryption::kEncrypted);
  EXPECT_EQ(SuiteEncryption("AEAD_AES_256_GCM_8"), Encryption::kEncrypted);
  EXPECT_EQ(SuiteEncryption("AES_CM_128_NULL_AUTH"), Encryption::kUnauthenticated);
  EXPECT_EQ(SuiteEncryption("NULL_HMAC_SHA1_80"), Encryption::kPlain);  // readable media
  EXPECT_EQ(SuiteEncryption("plain"), Encryption::kPlain);
  EXPECT_EQ(SuiteEncryption("passthrough"), Encryption::kEncrypted);
  EXPECT_EQ(EncryptionName(Encryption::kUnauthenticated), "unauthenticated");
}

TEST(EncryptionAuditTest, ALegIsItsWeakerDirectionAndDtlsIsEncrypted) {
  EXPECT_EQ(LegEncryption("AES_CM_128_HMAC_SHA1_80", "plain", false), Encryption::kPlain);
  EXPECT_EQ(LegEncryption("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_NULL_AUTH", false),
            Encryption::kUnauthenticated);
  EXPECT_EQ(LegEncryption("plain", "plain", true), Encryption::kEncrypted);
}

TEST(EncryptionAuditTest, RequestedLegsAreJudgedBySuiteNameWithoutParsingKeys) {
  LegRequest leg;
  leg.rx = Sdes("AES_CM_128_NULL_AUTH inline:not-parsed-here");
  leg.tx = Kind(CryptoSpec::Kind::kGenerate);
  leg.tx.suite = crypto::Suite::kAeadAes128Gcm;
  EXPECT_EQ(RequestedLegEncryption(leg), Encryption::kUnauthenticated);
  leg.rx = Sdes("AEAD_AES_256_GCM inline:x");
  EXPECT_EQ(RequestedLegEncryption(leg), Encryption::kEncrypted);
  leg.tx = Kind(CryptoSpec::Kind::kPlain);
  EXPECT_EQ(RequestedLegEncryption(leg), Encryption::kPlain);
  // An offer's answerer leg: no receive key until the answer.
  LegRequest offered;
  offered.await_answer = true;
  offered.tx = Sdes("AES_CM_128_HMAC_SHA1_32 inline:x");
  EXPECT_EQ(RequestedLegEncryption(offered), Encryption::kEncrypted);
  offered.await_answer = false;
  EXPECT_EQ(RequestedLegEncryption(offered), Encryption::kPlain);
}

}  // namespace
}  // namespace sluice::control
