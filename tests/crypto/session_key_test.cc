// Session keys: which cache lines a packet reads, preparation, copies and
// the constant-time sameness check. The derived keys themselves are checked
// against RFC 3711 B.3 and RFC 6188 in tests/srtp/rfc_vectors_test.cc.
#include "sluice/crypto/session_key.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstring>

#include "sluice/crypto/suite.h"

namespace sluice::crypto {
namespace {

std::array<uint8_t, 32> Bytes(uint8_t first) {
  std::array<uint8_t, 32> b{};
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(first + i);
  return b;
}

SessionKeys Derive(Suite suite, uint8_t key_first = 1, uint8_t salt_first = 100) {
  const SuiteInfo& info = GetSuiteInfo(suite);
  const auto key = Bytes(key_first);
  const auto salt = Bytes(salt_first);
  absl::StatusOr<SessionKeys> keys =
      DeriveSessionKeys(info, {key.data(), info.key_len}, {salt.data(), info.salt_len});
  EXPECT_TRUE(keys.ok()) << keys.status();
  return *std::move(keys);
}

TEST(SessionKeyTest, HotLinesCoverWhatAPacketReads) {
  EXPECT_EQ(Derive(Suite::kAesCm128HmacSha1_80).srtp->hot_lines(), 4);
  EXPECT_EQ(Derive(Suite::kAes256CmHmacSha1_80).srtp->hot_lines(), 5);
  EXPECT_EQ(Derive(Suite::kAeadAes128Gcm).srtp->hot_lines(), 1);
  EXPECT_EQ(Derive(Suite::kNullHmacSha1_80).srtp->hot_lines(), 2);
}

TEST(SessionKeyTest, SrtpAndSrtcpKeysDiffer) {
  SessionKeys keys = Derive(Suite::kAesCm128HmacSha1_80);
  EXPECT_FALSE(SamePreparedKey(*keys.srtp, *keys.srtcp));
  EXPECT_EQ(keys.srtp->suite, &GetSuiteInfo(Suite::kAesCm128HmacSha1_80));
}

TEST(SessionKeyTest, SameMasterKeyGivesTheSamePreparedKey) {
  SessionKeys a = Derive(Suite::kAesCm128HmacSha1_80);
  SessionKeys b = Derive(Suite::kAesCm128HmacSha1_80);
  SessionKeys other_salt = Derive(Suite::kAesCm128HmacSha1_80, 1, 101);
  SessionKeys other_key = Derive(Suite::kAesCm128HmacSha1_80, 2, 100);
  EXPECT_TRUE(SamePreparedKey(*a.srtp, *b.srtp));
  EXPECT_FALSE(SamePreparedKey(*a.srtp, *other_salt.srtp));
  EXPECT_FALSE(SamePreparedKey(*a.srtp, *other_key.srtp));
}

TEST(SessionKeyTest, CopyKeepsEveryPreparedField) {
  SessionKeys gcm = Derive(Suite::kAeadAes128Gcm);
  ASSERT_NE(gcm.srtp->gcm, nullptr);  // made alone: its own tables
  SessionKey copy;
  CopyPreparedKey(*gcm.srtp, copy);
  EXPECT_TRUE(SamePreparedKey(*gcm.srtp, copy));
  ASSERT_NE(copy.gcm, nullptr);
  EXPECT_NE(copy.gcm, gcm.srtp->gcm);
  EXPECT_EQ(std::memcmp(copy.gcm->data, gcm.srtp->gcm->data, GcmTables::kBytes), 0);
}

TEST(SessionKeyTest, AesCmRoundKeysStartWithTheCipherKey) {
  // FIPS 197 §5.2: the schedule's first round key is the key itself, which
  // enc_key() relies on.
  const SuiteInfo& info = GetSuiteInfo(Suite::kAesCm128HmacSha1_80);
  SessionKey key;
  key.suite = &info;
  const auto enc = Bytes(7);
  const auto auth = Bytes(50);
  PrepareSessionKey(key, {enc.data(), info.key_len}, {auth.data(), info.auth_key_len});
  EXPECT_EQ(std::memcmp(key.enc_key(), enc.data(), info.key_len), 0);
  EXPECT_NE(std::memcmp(key.aes_round_keys + 16, enc.data(), 16), 0);
  const std::array<uint8_t, 20> zeros{};
  EXPECT_NE(std::memcmp(key.hmac_ipad_state, zeros.data(), 20), 0);
  EXPECT_NE(std::memcmp(key.hmac_ipad_state, key.hmac_opad_state, 20), 0);
}

TEST(SessionKeyTest, WrongLengthsAreRefused) {
  const SuiteInfo& info = GetSuiteInfo(Suite::kAesCm128HmacSha1_80);
  const auto b = Bytes(0);
  EXPECT_FALSE(DeriveSessionKeys(info, {b.data(), 15}, {b.data(), 14}).ok());
  EXPECT_FALSE(DeriveSessionKeys(info, {b.data(), 16}, {b.data(), 12}).ok());
  EXPECT_TRUE(DeriveSessionKeys(info, {b.data(), 16}, {b.data(), 14}).ok());
}

}  // namespace
}  // namespace sluice::crypto
