// The ipsec-mb backend: what it reports, and its direct AES-CM + HMAC-SHA1
// jobs (CmHmacJobs), which must give the same ciphertext and tag as the
// same work passed as CryptoOps, in protect's order and in unprotect's.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>

#include "../../src/crypto/cm_hmac_jobs.h"
#include "sluice/crypto/backend.h"
#include "sluice/crypto/session_key.h"
#include "sluice/crypto/suite.h"

namespace sluice::crypto {
namespace {

std::unique_ptr<Backend> IpsecMb() {
  absl::StatusOr<std::unique_ptr<Backend>> b = MakeBackend(BackendKind::kIpsecMb);
  EXPECT_TRUE(b.ok()) << b.status();
  return *std::move(b);
}

SessionKeys Keys(Suite suite) {
  const SuiteInfo& info = GetSuiteInfo(suite);
  std::array<uint8_t, 32> key{};
  std::array<uint8_t, 14> salt{};
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(3 * i + 1);
  for (size_t i = 0; i < salt.size(); ++i) salt[i] = static_cast<uint8_t>(5 * i + 2);
  return *DeriveSessionKeys(info, {key.data(), info.key_len}, {salt.data(), info.salt_len});
}

TEST(IpsecMbBackendTest, NameAndDirectJobs) {
  std::unique_ptr<Backend> b = IpsecMb();
  EXPECT_EQ(b->name(), "ipsec-mb");
  EXPECT_FALSE(b->arch().empty());
  EXPECT_NE(b->DirectCmHmacJobs(), nullptr);
  EXPECT_FALSE(b->SubmitCmHmacJobs(0, 16));
  EXPECT_FALSE(b->SubmitCmHmacJobs(Backend::kMaxDirectJobs + 1, 16));
  EXPECT_FALSE(b->SubmitHmacJobs(0));
  EXPECT_FALSE(b->SubmitHmacJobs(Backend::kMaxDirectJobs + 1));
  EXPECT_FALSE(b->SubmitCmJobs(0, 16));
  EXPECT_FALSE(b->SubmitCmJobs(Backend::kMaxDirectJobs + 1, 16));
}

class DirectJobsTest : public ::testing::TestWithParam<Suite> {};

// Packets of several lengths in two equal copies: one for the direct jobs,
// one with CryptoOps set up over it for the same work.
struct TwoCopies {
  static constexpr size_t kPackets = 7;
  static constexpr uint32_t kHeader = 12;
  std::array<std::array<uint8_t, 256>, kPackets> direct{}, viaop{};
  std::array<std::array<uint8_t, 16>, kPackets> ivs{};
  std::array<CryptoOp, kPackets> ops{};
  std::array<CryptoOp*, kPackets> op_ptrs{};
  std::array<std::array<uint8_t, 12>, kPackets> tags{};

  explicit TwoCopies(const SessionKey& sk) {
    for (size_t p = 0; p < kPackets; ++p) {
      const uint32_t len = 20 + 29 * static_cast<uint32_t>(p);
      for (uint32_t i = 0; i < len + 4; ++i) direct[p][i] = static_cast<uint8_t>(i * 7 + p);
      viaop[p] = direct[p];
      for (size_t i = 0; i < 16; ++i) ivs[p][i] = static_cast<uint8_t>(i + 16 * p);
      CryptoOp& op = ops[p];
      op.key = &sk;
      op.buf = viaop[p].data();
      op.cipher_offset = kHeader;
      op.cipher_len = len - kHeader;
      op.auth_offset = 0;
      op.auth_len = len + 4;
      std::memcpy(op.iv, ivs[p].data(), 16);
      op_ptrs[p] = &op;
    }
  }

  void SetJobs(CmHmacJobs& jobs, const SessionKey& sk) {
    for (size_t p = 0; p < kPackets; ++p) {
      const uint32_t len = ops[p].cipher_len + kHeader;
      jobs.Set(p, sk, sk.suite->key_len, direct[p].data(), kHeader, len - kHeader,
               ivs[p].data(), len + 4, tags[p].data());
    }
  }

  void ExpectSameTags() const {
    for (size_t p = 0; p < kPackets; ++p) {
      EXPECT_EQ(std::memcmp(tags[p].data(), ops[p].tag, CmHmacJobs::kTagOutputLen), 0)
          << "packet " << p;
    }
  }
  void ExpectSameBytes() const {
    for (size_t p = 0; p < kPackets; ++p) EXPECT_EQ(direct[p], viaop[p]) << "packet " << p;
  }
};

TEST_P(DirectJobsTest, AgreeWithCryptoOps) {
  std::unique_ptr<Backend> b = IpsecMb();
  SessionKeys keys = Keys(GetParam());
  TwoCopies c(*keys.srtp);
  ASSERT_TRUE(b->AesCmThenHmacSha1(c.op_ptrs));
  CmHmacJobs* jobs = b->DirectCmHmacJobs();
  ASSERT_NE(jobs, nullptr);
  c.SetJobs(*jobs, *keys.srtp);
  ASSERT_TRUE(b->SubmitCmHmacJobs(TwoCopies::kPackets, static_cast<int>(keys.srtp->suite->key_len)));
  c.ExpectSameBytes();
  c.ExpectSameTags();
}

// Unprotect's order: the hash alone first (over what arrived), then the
// cipher alone over the same jobs, as HmacSha1 and then AesCm give them.
TEST_P(DirectJobsTest, HashThenCipherAgreesWithCryptoOps) {
  std::unique_ptr<Backend> b = IpsecMb();
  SessionKeys keys = Keys(GetParam());
  TwoCopies c(*keys.srtp);
  ASSERT_TRUE(b->HmacSha1(c.op_ptrs));
  ASSERT_TRUE(b->AesCm(c.op_ptrs));
  CmHmacJobs* jobs = b->DirectCmHmacJobs();
  ASSERT_NE(jobs, nullptr);
  c.SetJobs(*jobs, *keys.srtp);
  ASSERT_TRUE(b->SubmitHmacJobs(TwoCopies::kPackets));
  c.ExpectSameTags();
  ASSERT_TRUE(b->SubmitCmJobs(TwoCopies::kPackets, static_cast<int>(keys.srtp->suite->key_len)));
  c.ExpectSameBytes();
}

INSTANTIATE_TEST_SUITE_P(KeySizes, DirectJobsTest,
                         ::testing::Values(Suite::kAesCm128HmacSha1_80,
                                           Suite::kAes192CmHmacSha1_80,
                                           Suite::kAes256CmHmacSha1_32));

}  // namespace
}  // namespace sluice::crypto
