// Engine unprotect: a packet is accepted only when its tag verifies, and
// only an accepted packet moves its stream's replay window; each refusal
// has its own verdict. The protected input comes from a second context
// with the same key (the sender).
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>

#include "sluice/crypto/backend.h"
#include "sluice/srtp/context.h"
#include "sluice/srtp/engine.h"

namespace sluice::srtp {
namespace {

using crypto::BackendKind;
using crypto::Suite;

std::unique_ptr<Context> MakeContext(Suite suite, uint8_t mki_len = 0, uint8_t mki0 = 0xa1) {
  MasterKey k;
  k.suite = suite;
  for (size_t i = 0; i < k.key.size(); ++i) k.key[i] = static_cast<uint8_t>(i + 1);
  for (size_t i = 0; i < k.salt.size(); ++i) k.salt[i] = static_cast<uint8_t>(0x40 + i);
  k.mki_len = mki_len;
  k.mki = {mki0, 0xb2, 0xc3, 0xd4};
  absl::StatusOr<std::unique_ptr<Context>> ctx = Context::Create({&k, 1}, ContextOptions{});
  EXPECT_TRUE(ctx.ok()) << ctx.status();
  return *std::move(ctx);
}

struct Buffer {
  std::array<uint8_t, 256> bytes{};
  Packet pkt{};
};

class EngineUnprotectTest
    : public ::testing::TestWithParam<std::tuple<BackendKind, Suite>> {
 protected:
  Suite suite() const { return std::get<1>(GetParam()); }

  // An RTP packet of sequence `seq` protected by the sender.
  Buffer Sealed(uint16_t seq) {
    Buffer b;
    b.bytes[0] = 0x80;
    b.bytes[2] = static_cast<uint8_t>(seq >> 8);
    b.bytes[3] = static_cast<uint8_t>(seq);
    b.bytes[8] = 0x5e;
    for (int i = 12; i < 72; ++i) b.bytes[i] = static_cast<uint8_t>(i * seq);
    b.pkt = Packet{b.bytes.data(), 72, 256};
    Job job{sender_.get(), &b.pkt};
    Verdict v;
    EXPECT_EQ(engine_.ProtectRtp({&job, 1}, {&v, 1}), 1u);
    return b;
  }

  Verdict Unprotect(Context& ctx, Buffer& b) {
    Job job{&ctx, &b.pkt};
    Verdict v = Verdict::kCryptoError;
    engine_.UnprotectRtp({&job, 1}, {&v, 1});
    return v;
  }

  std::unique_ptr<crypto::Backend> backend_ = *crypto::MakeBackend(std::get<0>(GetParam()));
  Engine engine_{*backend_};
  std::unique_ptr<Context> sender_ = MakeContext(suite());
  std::unique_ptr<Context> receiver_ = MakeContext(suite());
};

TEST_P(EngineUnprotectTest, RestoresThePlainPacket) {
  Buffer b = Sealed(5);
  ASSERT_EQ(Unprotect(*receiver_, b), Verdict::kOk);
  EXPECT_EQ(b.pkt.len, 72u);
  for (int i = 12; i < 72; ++i) ASSERT_EQ(b.bytes[i], static_cast<uint8_t>(i * 5)) << i;
  EXPECT_EQ(receiver_->streams()[0].highest_seq(), 5);
  EXPECT_EQ(receiver_->srtp_packets(0), 1u);
}

TEST_P(EngineUnprotectTest, ForgeryIsRefusedAndMovesNothing) {
  if (crypto::GetSuiteInfo(suite()).srtp_auth == crypto::AuthKind::kNull) {
    GTEST_SKIP() << "no SRTP tag to forge";
  }
  Buffer forged = Sealed(20);
  forged.bytes[forged.pkt.len - 1] ^= 0x01;
  EXPECT_EQ(Unprotect(*receiver_, forged), Verdict::kAuthFailed);
  EXPECT_EQ(receiver_->srtp_packets(0), 0u);
  for (const Context::Stream& s : receiver_->streams()) EXPECT_FALSE(s.in_use());
  Buffer genuine = Sealed(21);
  EXPECT_EQ(Unprotect(*receiver_, genuine), Verdict::kOk);
}

TEST_P(EngineUnprotectTest, ReplayIsRefused) {
  Buffer b = Sealed(30);
  Buffer copy = b;
  copy.pkt.data = copy.bytes.data();
  ASSERT_EQ(Unprotect(*receiver_, b), Verdict::kOk);
  EXPECT_EQ(Unprotect(*receiver_, copy), Verdict::kReplayed);
}

TEST_P(EngineUnprotectTest, TruncatedPacketIsMalformed) {
  Buffer b = Sealed(40);
  b.pkt.len = 12 + crypto::GetSuiteInfo(suite()).srtp_tag_len - 1;
  EXPECT_EQ(Unprotect(*receiver_, b), Verdict::kMalformed);
}

INSTANTIATE_TEST_SUITE_P(
    BackendsAndSuites, EngineUnprotectTest,
    ::testing::Combine(::testing::Values(BackendKind::kIpsecMb, BackendKind::kOpenssl),
                       ::testing::Values(Suite::kAesCm128HmacSha1_80, Suite::kAeadAes128Gcm,
                                         Suite::kAesCm128NullAuth)),
    [](const auto& info) {
      return std::string(std::get<0>(info.param) == BackendKind::kIpsecMb ? "ipsecmb_"
                                                                           : "openssl_") +
             std::to_string(static_cast<int>(std::get<1>(info.param)));
    });

TEST(EngineUnprotectMkiTest, UnknownMkiIsRefused) {
  auto backend = *crypto::MakeBackend(BackendKind::kIpsecMb);
  Engine engine(*backend);
  auto sender = MakeContext(Suite::kAesCm128HmacSha1_80, 2, 0xa1);
  auto receiver = MakeContext(Suite::kAesCm128HmacSha1_80, 2, 0xee);
  std::array<uint8_t, 128> bytes{};
  bytes[0] = 0x80;
  Packet pkt{bytes.data(), 40, 128};
  Job out{sender.get(), &pkt};
  Verdict v;
  ASSERT_EQ(engine.ProtectRtp({&out, 1}, {&v, 1}), 1u);
  Job in{receiver.get(), &pkt};
  EXPECT_EQ(engine.UnprotectRtp({&in, 1}, {&v, 1}), 0u);
  EXPECT_EQ(v, Verdict::kUnknownMki);
}

TEST(EngineUnprotectRtcpTest, TamperedSrtcpFailsAndGenuineVerifies) {
  auto backend = *crypto::MakeBackend(BackendKind::kIpsecMb);
  Engine engine(*backend);
  auto sender = MakeContext(Suite::kAeadAes128Gcm);
  auto receiver = MakeContext(Suite::kAeadAes128Gcm);
  std::array<uint8_t, 128> a{}, b{};
  a[0] = b[0] = 0x80;
  a[1] = b[1] = 200;
  Packet pa{a.data(), 28, 128}, pb{b.data(), 28, 128};
  Job out[2] = {{sender.get(), &pa}, {sender.get(), &pb}};
  Verdict v[2];
  ASSERT_EQ(engine.ProtectRtcp(out, v), 2u);
  a[10] ^= 0x20;
  Job in[2] = {{receiver.get(), &pa}, {receiver.get(), &pb}};
  EXPECT_EQ(engine.UnprotectRtcp(in, v), 1u);
  EXPECT_EQ(v[0], Verdict::kAuthFailed);
  EXPECT_EQ(v[1], Verdict::kOk);
  EXPECT_EQ(pb.len, 28u);
}

}  // namespace
}  // namespace sluice::srtp
