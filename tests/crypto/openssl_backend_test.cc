// The OpenSSL backend: what it reports, that it has no direct job form, and
// its AES-GCM decrypt contract (the tag left alone when it verifies,
// complemented when it does not), with the same output as ipsec-mb.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>

#include "sluice/crypto/backend.h"
#include "sluice/crypto/session_key.h"
#include "sluice/crypto/suite.h"

namespace sluice::crypto {
namespace {

std::unique_ptr<Backend> Make(BackendKind kind) {
  absl::StatusOr<std::unique_ptr<Backend>> b = MakeBackend(kind);
  EXPECT_TRUE(b.ok()) << b.status();
  return *std::move(b);
}

TEST(OpensslBackendTest, NameAndNoDirectJobs) {
  std::unique_ptr<Backend> b = Make(BackendKind::kOpenssl);
  EXPECT_EQ(b->name(), "openssl");
  EXPECT_EQ(b->DirectCmHmacJobs(), nullptr);
  EXPECT_FALSE(b->SubmitCmHmacJobs(1, 16));
  EXPECT_FALSE(b->SubmitHmacJobs(1));
  EXPECT_FALSE(b->SubmitCmJobs(1, 16));
}

struct GcmPacket {
  std::array<uint8_t, 96> buf{};
  CryptoOp op{};
};

void SetUpGcm(GcmPacket& p, const SessionKey& sk) {
  for (size_t i = 0; i < p.buf.size(); ++i) p.buf[i] = static_cast<uint8_t>(i * 13);
  p.op.key = &sk;
  p.op.buf = p.buf.data();
  p.op.cipher_offset = 12;
  p.op.cipher_len = 60;
  p.op.auth_offset = 0;
  p.op.auth_len = 12;
  p.op.tag_len = 16;
  for (size_t i = 0; i < 12; ++i) p.op.iv[i] = static_cast<uint8_t>(i + 1);
}

TEST(OpensslBackendTest, GcmDecryptMarksAWrongTag) {
  std::unique_ptr<Backend> b = Make(BackendKind::kOpenssl);
  const SuiteInfo& info = GetSuiteInfo(Suite::kAeadAes128Gcm);
  std::array<uint8_t, 16> key{};
  std::array<uint8_t, 12> salt{};
  SessionKeys keys = *DeriveSessionKeys(info, key, salt);
  GcmPacket p;
  SetUpGcm(p, *keys.srtp);
  const auto plain = p.buf;
  CryptoOp* op = &p.op;
  ASSERT_TRUE(b->GcmEncrypt({&op, 1}));
  std::array<uint8_t, 16> tag;
  std::memcpy(tag.data(), p.op.tag, 16);

  const auto sealed = p.buf;
  ASSERT_TRUE(b->GcmDecrypt({&op, 1}));  // tag still holds the right one
  EXPECT_EQ(p.buf, plain);
  EXPECT_EQ(std::memcmp(p.op.tag, tag.data(), 16), 0);

  p.buf = sealed;
  p.op.tag[3] ^= 1;
  std::array<uint8_t, 16> wrong;
  std::memcpy(wrong.data(), p.op.tag, 16);
  ASSERT_TRUE(b->GcmDecrypt({&op, 1}));  // a wrong tag is not a failure
  for (size_t i = 0; i < 16; ++i) EXPECT_EQ(p.op.tag[i], static_cast<uint8_t>(~wrong[i]));
}

TEST(OpensslBackendTest, GcmEncryptMatchesIpsecMb) {
  std::unique_ptr<Backend> ossl = Make(BackendKind::kOpenssl);
  std::unique_ptr<Backend> imb = Make(BackendKind::kIpsecMb);
  const SuiteInfo& info = GetSuiteInfo(Suite::kAeadAes256Gcm);
  std::array<uint8_t, 32> key{};
  std::array<uint8_t, 12> salt{};
  key[0] = 9;
  SessionKeys keys = *DeriveSessionKeys(info, key, salt);
  GcmPacket a, c;
  SetUpGcm(a, *keys.srtp);
  SetUpGcm(c, *keys.srtp);
  CryptoOp* op_a = &a.op;
  CryptoOp* op_c = &c.op;
  ASSERT_TRUE(ossl->GcmEncrypt({&op_a, 1}));
  ASSERT_TRUE(imb->GcmEncrypt({&op_c, 1}));
  EXPECT_EQ(a.buf, c.buf);
  EXPECT_EQ(std::memcmp(a.op.tag, c.op.tag, 16), 0);
}

}  // namespace
}  // namespace sluice::crypto
