// AES-192 key derivation against the installed libsrtp2, both directions,
// SRTP and SRTCP: libsrtp2 before cisco/libsrtp#763 was fixed (Debian 12's
// 2.5.0) derives AES-192 session keys with the AES-256 PRF (see
// crypto::Aes192Kdf). A Sluice context with kLibsrtpLegacy interoperates
// with such a libsrtp2; one with kRfc6188 (the default) interoperates with
// a libsrtp2 that follows RFC 6188, and with RFC 6188's own vectors (in
// rfc_vectors_test.cc) whichever libsrtp2 is linked.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "../testing/libsrtp_peer.h"
#include "sluice/crypto/backend.h"
#include "sluice/crypto/session_key.h"
#include "sluice/crypto/suite.h"
#include "sluice/srtp/context.h"
#include "sluice/srtp/engine.h"
#include "sluice/srtp/master_key.h"
#include "sluice/srtp/verdict.h"

namespace sluice::srtp {
namespace {

using crypto::Aes192Kdf;
using crypto::Suite;
using testing::LibsrtpPeer;
using Bytes = std::vector<uint8_t>;

Bytes MakeRtp(uint16_t seq) {
  Bytes b = {0x80, 0x00, static_cast<uint8_t>(seq >> 8), static_cast<uint8_t>(seq),
             0, 0, 0, 1, 0x12, 0x34, 0x56, 0x78};
  for (int i = 0; i < 40; ++i) b.push_back(static_cast<uint8_t>(i * 3 + seq));
  return b;
}

Bytes MakeRtcp() {
  Bytes b = {0x81, 201, 0, 7, 0x12, 0x34, 0x56, 0x78};
  for (int i = 0; i < 24; ++i) b.push_back(static_cast<uint8_t>(0x5a + i));
  return b;
}

enum class Op { kProtectRtp, kUnprotectRtp, kProtectRtcp, kUnprotectRtcp };

// One packet through the engine, in a buffer with room for the trailer.
Verdict RunOne(Engine& engine, Op op, Context& ctx, Bytes& bytes) {
  Bytes room = bytes;
  room.resize(bytes.size() + 64);
  Packet pkt{room.data(), static_cast<uint32_t>(bytes.size()),
             static_cast<uint32_t>(room.size())};
  const Job jobs[1] = {{&ctx, &pkt}};
  Verdict v[1] = {Verdict::kOk};
  switch (op) {
    case Op::kProtectRtp: engine.ProtectRtp(jobs, v); break;
    case Op::kUnprotectRtp: engine.UnprotectRtp(jobs, v); break;
    case Op::kProtectRtcp: engine.ProtectRtcp(jobs, v); break;
    case Op::kUnprotectRtcp: engine.UnprotectRtcp(jobs, v); break;
  }
  bytes.assign(room.begin(), room.begin() + pkt.len);
  return v[0];
}

class Aes192KdfTest : public ::testing::TestWithParam<Suite> {
 protected:
  void SetUp() override {
    LibsrtpPeer::Init();
    auto b = crypto::MakeBackend(crypto::BackendKind::kIpsecMb);
    ASSERT_TRUE(b.ok()) << b.status();
    backend_ = std::move(*b);
    engine_ = std::make_unique<Engine>(*backend_);
    std::mt19937 rng(763);
    key_.suite = GetParam();
    for (uint8_t& x : key_.key) x = static_cast<uint8_t>(rng());
    for (uint8_t& x : key_.salt) x = static_cast<uint8_t>(rng());
  }

  std::unique_ptr<Context> Sluice(Aes192Kdf kdf) {
    ContextOptions options;
    options.aes192_kdf = kdf;
    auto ctx = Context::Create({&key_, 1}, options);
    EXPECT_TRUE(ctx.ok()) << ctx.status();
    return ctx.ok() ? std::move(*ctx) : nullptr;
  }
  std::unique_ptr<LibsrtpPeer> Peer(LibsrtpPeer::Role role) {
    auto peer = LibsrtpPeer::Create(role, {&key_, 1}, {});
    EXPECT_TRUE(peer.ok()) << peer.status();
    return peer.ok() ? std::move(*peer) : nullptr;
  }

  // Whether SRTP and SRTCP pass both ways between libsrtp2 and a Sluice
  // context with `kdf` (every packet: all or nothing is asserted).
  bool Interoperates(Aes192Kdf kdf) {
    auto rx = Sluice(kdf);
    auto tx = Sluice(kdf);
    auto peer_tx = Peer(LibsrtpPeer::Role::kSender);
    auto peer_rx = Peer(LibsrtpPeer::Role::kReceiver);
    int passed = 0, total = 0;
    for (uint16_t seq = 1; seq <= 3; ++seq) {
      Bytes in = MakeRtp(seq);
      EXPECT_EQ(peer_tx->ProtectRtp(in), srtp_err_status_ok);
      passed += RunOne(*engine_, Op::kUnprotectRtp, *rx, in) == Verdict::kOk && in == MakeRtp(seq);
      Bytes out = MakeRtp(seq);
      EXPECT_EQ(RunOne(*engine_, Op::kProtectRtp, *tx, out), Verdict::kOk);
      passed += peer_rx->UnprotectRtp(out) == srtp_err_status_ok && out == MakeRtp(seq);
      Bytes rtcp_in = MakeRtcp();
      EXPECT_EQ(peer_tx->ProtectRtcp(rtcp_in), srtp_err_status_ok);
      passed += RunOne(*engine_, Op::kUnprotectRtcp, *rx, rtcp_in) == Verdict::kOk &&
                rtcp_in == MakeRtcp();
      Bytes rtcp_out = MakeRtcp();
      EXPECT_EQ(RunOne(*engine_, Op::kProtectRtcp, *tx, rtcp_out), Verdict::kOk);
      passed += peer_rx->UnprotectRtcp(rtcp_out) == srtp_err_status_ok && rtcp_out == MakeRtcp();
      total += 4;
    }
    EXPECT_TRUE(passed == 0 || passed == total) << passed << " of " << total;
    return passed == total;
  }

  MasterKey key_;
  std::unique_ptr<crypto::Backend> backend_;
  std::unique_ptr<Engine> engine_;
};

// The installed libsrtp2 takes exactly one of the two derivations: the one
// Aes192KdfFollowsRfc6188 (checked against RFC 6188 §7.4's vector) names.
TEST_P(Aes192KdfTest, InstalledLibsrtpTakesExactlyOneDerivation) {
  const bool rfc = LibsrtpPeer::Aes192KdfFollowsRfc6188();
  EXPECT_EQ(Interoperates(Aes192Kdf::kRfc6188), rfc);
  EXPECT_EQ(Interoperates(Aes192Kdf::kLibsrtpLegacy), !rfc);
}

// Debian 12's libsrtp2 2.5.0 has the bug: the legacy derivation is the one
// that talks to it. A libsrtp2 with the fix would fail here: then the test
// says so, rather than pass for a bug that is not there.
TEST_P(Aes192KdfTest, DebianLibsrtp250NeedsTheLegacyDerivation) {
  if (std::string(srtp_get_version_string()) != "libsrtp2 2.5.0") {
    GTEST_SKIP() << "linked " << srtp_get_version_string() << ", not Debian 12's 2.5.0";
  }
  EXPECT_FALSE(LibsrtpPeer::Aes192KdfFollowsRfc6188());
  EXPECT_TRUE(Interoperates(Aes192Kdf::kLibsrtpLegacy));
  EXPECT_FALSE(Interoperates(Aes192Kdf::kRfc6188));
}

// Other key sizes have one derivation: the setting changes nothing.
TEST(Aes192KdfOtherSuitesTest, LegacyChangesOnlyAes192) {
  for (Suite s : {Suite::kAesCm128HmacSha1_80, Suite::kAes256CmHmacSha1_80,
                  Suite::kAeadAes256Gcm}) {
    const crypto::SuiteInfo& info = crypto::GetSuiteInfo(s);
    uint8_t key[32], salt[14];
    for (int i = 0; i < 32; ++i) key[i] = static_cast<uint8_t>(i + 1);
    for (int i = 0; i < 14; ++i) salt[i] = static_cast<uint8_t>(i + 100);
    auto a = crypto::DeriveSessionKeys(info, {key, info.key_len}, {salt, info.salt_len});
    auto b = crypto::DeriveSessionKeys(info, {key, info.key_len}, {salt, info.salt_len},
                                       Aes192Kdf::kLibsrtpLegacy);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_TRUE(crypto::SamePreparedKey(*a->srtp, *b->srtp)) << info.name;
    EXPECT_TRUE(crypto::SamePreparedKey(*a->srtcp, *b->srtcp)) << info.name;
  }
}

INSTANTIATE_TEST_SUITE_P(Suites, Aes192KdfTest,
                         ::testing::Values(Suite::kAes192CmHmacSha1_80,
                                           Suite::kAes192CmHmacSha1_32));

}  // namespace
}  // namespace sluice::srtp
