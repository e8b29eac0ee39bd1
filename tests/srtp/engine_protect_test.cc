// Engine protect: what each packet's verdict is, what protect appends, and
// that the ipsec-mb backend's direct jobs give the bytes the CryptoOp path
// (OpenSSL) gives, whatever the tailroom and MKI.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "sluice/crypto/backend.h"
#include "sluice/srtp/context.h"
#include "sluice/srtp/engine.h"

namespace sluice::srtp {
namespace {

using crypto::BackendKind;
using crypto::Suite;

std::unique_ptr<Context> MakeContext(Suite suite, uint8_t mki_len = 0, uint64_t lifetime = 0) {
  MasterKey k;
  k.suite = suite;
  for (size_t i = 0; i < k.key.size(); ++i) k.key[i] = static_cast<uint8_t>(i + 1);
  for (size_t i = 0; i < k.salt.size(); ++i) k.salt[i] = static_cast<uint8_t>(0x40 + i);
  k.mki_len = mki_len;
  k.mki = {0xa1, 0xb2, 0xc3, 0xd4};
  k.lifetime = lifetime;
  absl::StatusOr<std::unique_ptr<Context>> ctx = Context::Create({&k, 1}, ContextOptions{});
  EXPECT_TRUE(ctx.ok()) << ctx.status();
  return *std::move(ctx);
}

std::unique_ptr<crypto::Backend> NewBackend(BackendKind kind) {
  return *crypto::MakeBackend(kind);
}

struct RtpBuffer {
  std::array<uint8_t, 512> bytes{};
  Packet pkt{};
  RtpBuffer(uint16_t seq, uint32_t payload, uint32_t tailroom, uint32_t ssrc = 0x11223344) {
    bytes[0] = 0x80;
    bytes[1] = 0x60;
    bytes[2] = static_cast<uint8_t>(seq >> 8);
    bytes[3] = static_cast<uint8_t>(seq);
    for (int i = 0; i < 4; ++i) bytes[8 + i] = static_cast<uint8_t>(ssrc >> (24 - 8 * i));
    for (uint32_t i = 0; i < payload; ++i) bytes[12 + i] = static_cast<uint8_t>(i ^ seq);
    pkt = Packet{bytes.data(), 12 + payload, 12 + payload + tailroom};
  }
};

Verdict ProtectOne(Engine& engine, Context& ctx, RtpBuffer& b) {
  Job job{&ctx, &b.pkt};
  Verdict v = Verdict::kCryptoError;
  engine.ProtectRtp({&job, 1}, {&v, 1});
  return v;
}

class EngineProtectTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  std::unique_ptr<crypto::Backend> backend_ = NewBackend(GetParam());
  Engine engine_{*backend_};
};

TEST_P(EngineProtectTest, AppendsTheTagAndKeepsTheHeader) {
  auto ctx = MakeContext(Suite::kAesCm128HmacSha1_80);
  RtpBuffer b(7, 100, 64);
  const RtpBuffer plain = b;
  ASSERT_EQ(ProtectOne(engine_, *ctx, b), Verdict::kOk);
  EXPECT_EQ(b.pkt.len, 112u + ctx->srtp_overhead());
  EXPECT_EQ(std::memcmp(b.bytes.data(), plain.bytes.data(), 12), 0);
  EXPECT_NE(std::memcmp(b.bytes.data() + 12, plain.bytes.data() + 12, 100), 0);
  EXPECT_EQ(ctx->srtp_packets(0), 1u);
}

TEST_P(EngineProtectTest, RefusesToReuseAnIndex) {
  auto ctx = MakeContext(Suite::kAeadAes128Gcm);
  RtpBuffer first(9, 40, 64), again(9, 40, 64), next(10, 40, 64);
  EXPECT_EQ(ProtectOne(engine_, *ctx, first), Verdict::kOk);
  EXPECT_EQ(ProtectOne(engine_, *ctx, again), Verdict::kReplayed);
  EXPECT_EQ(ProtectOne(engine_, *ctx, next), Verdict::kOk);
}

TEST_P(EngineProtectTest, VerdictsOfPacketsItCannotProtect) {
  auto ctx = MakeContext(Suite::kAesCm128HmacSha1_80, 0, /*lifetime=*/2);
  RtpBuffer no_room(1, 20, 9), bad_version(2, 20, 64), short_packet(3, 0, 64);
  bad_version.bytes[0] = 0x40;
  short_packet.pkt.len = 11;
  const RtpBuffer untouched = no_room;
  EXPECT_EQ(ProtectOne(engine_, *ctx, no_room), Verdict::kNoTailroom);
  EXPECT_EQ(no_room.bytes, untouched.bytes);
  EXPECT_EQ(no_room.pkt.len, untouched.pkt.len);
  EXPECT_EQ(ProtectOne(engine_, *ctx, bad_version), Verdict::kMalformed);
  EXPECT_EQ(ProtectOne(engine_, *ctx, short_packet), Verdict::kMalformed);
  RtpBuffer a(4, 20, 64), b(5, 20, 64), c(6, 20, 64);
  EXPECT_EQ(ProtectOne(engine_, *ctx, a), Verdict::kOk);
  EXPECT_EQ(ProtectOne(engine_, *ctx, b), Verdict::kOk);
  EXPECT_EQ(ProtectOne(engine_, *ctx, c), Verdict::kLifetimeExhausted);
}

TEST_P(EngineProtectTest, SrtcpGetsIndexTrailerMkiAndTag) {
  auto ctx = MakeContext(Suite::kAesCm128HmacSha1_80, /*mki_len=*/2);
  std::array<uint8_t, 128> bytes{};
  bytes[0] = 0x80;
  bytes[1] = 200;
  bytes[7] = 0x44;
  Packet pkt{bytes.data(), 28, 128};
  Job job{ctx.get(), &pkt};
  Verdict v;
  ASSERT_EQ(engine_.ProtectRtcp({&job, 1}, {&v, 1}), 1u);
  EXPECT_EQ(pkt.len, 28u + ctx->srtcp_overhead());
  // RFC 3711 §3.4: E set (encrypted), index 1, then the MKI.
  EXPECT_EQ(bytes[28], 0x80);
  EXPECT_EQ(bytes[31], 1);
  EXPECT_EQ(bytes[32], 0xa1);
  EXPECT_EQ(bytes[33], 0xb2);
}

// A restored plain-sourced sender's SEQ shift (ContextOptions::
// rtp_seq_offset): the header carries SEQ + shift, the index and ROC follow
// the shifted SEQ across its wrap, in bursts (a run of one stream) and one
// by one, and the receiver authenticates every packet at that index.
TEST_P(EngineProtectTest, SeqShiftMovesTheHeaderAndTheIndexAcrossAWrap) {
  MasterKey k;
  k.suite = Suite::kAesCm128HmacSha1_80;
  for (size_t i = 0; i < k.key.size(); ++i) k.key[i] = static_cast<uint8_t>(3 * i + 1);
  ContextOptions shifted;
  shifted.rtp_seq_offset = 1000;
  auto tx = *Context::Create({&k, 1}, shifted);
  auto rx = *Context::Create({&k, 1}, ContextOptions{});
  constexpr uint32_t kSsrc = 0x11223344;
  for (uint32_t n = 0; n < 200;) {
    const uint32_t burst = n < 100 ? 8 : 1;
    std::vector<RtpBuffer> bufs;
    bufs.reserve(burst);  // a buffer's packet points into it: never moved
    for (uint32_t j = 0; j < burst; ++j) bufs.emplace_back(static_cast<uint16_t>(64400 + n + j), 40, 64);
    std::vector<Job> jobs;
    for (RtpBuffer& b : bufs) jobs.push_back(Job{tx.get(), &b.pkt});
    std::vector<Verdict> v(burst, Verdict::kCryptoError);
    ASSERT_EQ(engine_.ProtectRtp(jobs, v), burst);
    for (uint32_t j = 0; j < burst; ++j, ++n) {
      const uint16_t seq = static_cast<uint16_t>(bufs[j].bytes[2] << 8 | bufs[j].bytes[3]);
      EXPECT_EQ(seq, static_cast<uint16_t>(65400 + n));  // 64400 + n + 1000, modulo 2^16
      Job back{rx.get(), &bufs[j].pkt};
      Verdict rv = Verdict::kCryptoError;
      ASSERT_EQ(engine_.UnprotectRtp({&back, 1}, {&rv, 1}), 1u) << "packet " << n;
      EXPECT_EQ(rx->FindStream(kSsrc)->rtp_window.top(), uint64_t{65400} + n);
    }
  }
  EXPECT_EQ(tx->FindStream(kSsrc)->roc(), 1u);  // the shifted SEQ wrapped
  EXPECT_EQ(tx->FindStream(kSsrc)->rtp_window.top(), uint64_t{65599});
}

INSTANTIATE_TEST_SUITE_P(Backends, EngineProtectTest,
                         ::testing::Values(BackendKind::kIpsecMb, BackendKind::kOpenssl),
                         [](const auto& info) {
                           return std::string(info.param == BackendKind::kIpsecMb ? "ipsecmb"
                                                                                  : "openssl");
                         });

// A burst that takes every way through protect: direct jobs with the tag in
// place, with an MKI, with too little tailroom for the library's 12 bytes,
// a payload-less packet, and another key size mid-burst.
TEST(EngineProtectDirectJobsTest, SameBytesAsTheCryptoOpPath) {
  auto imb = NewBackend(BackendKind::kIpsecMb);
  auto ossl = NewBackend(BackendKind::kOpenssl);
  ASSERT_NE(imb->DirectCmHmacJobs(), nullptr);
  Engine with_jobs(*imb), with_ops(*ossl);
  struct Side {
    std::unique_ptr<Context> plain, mki, aes256;
    std::vector<RtpBuffer> bufs;
  } sides[2];
  for (Side& s : sides) {
    s.plain = MakeContext(Suite::kAesCm128HmacSha1_80);
    s.mki = MakeContext(Suite::kAesCm128HmacSha1_80, 4);
    s.aes256 = MakeContext(Suite::kAes256CmHmacSha1_32);
    s.bufs.reserve(40);  // each Packet points into its buffer: no reallocation
    for (uint16_t seq = 100; seq < 140; ++seq) {
      // Every fifth packet has room for its trailer but not for the 12 bytes
      // of tag the library writes.
      const uint32_t tailroom = seq % 5 != 0 ? 64 : (seq - 100) % 3 == 1 ? 14 : 10;
      s.bufs.emplace_back(seq, seq % 7 == 0 ? 0 : 30 + seq % 50, tailroom);
    }
  }
  auto run = [](Engine& engine, Side& s) {
    std::vector<Job> jobs;
    for (size_t i = 0; i < s.bufs.size(); ++i) {
      Context* ctx = i % 9 == 4 ? s.aes256.get() : i % 3 == 1 ? s.mki.get() : s.plain.get();
      jobs.push_back(Job{ctx, &s.bufs[i].pkt});
    }
    std::vector<Verdict> v(jobs.size());
    EXPECT_EQ(engine.ProtectRtp(jobs, v), jobs.size());
  };
  run(with_jobs, sides[0]);
  run(with_ops, sides[1]);
  for (size_t i = 0; i < sides[0].bufs.size(); ++i) {
    EXPECT_EQ(sides[0].bufs[i].pkt.len, sides[1].bufs[i].pkt.len) << "packet " << i;
    EXPECT_EQ(std::memcmp(sides[0].bufs[i].bytes.data(), sides[1].bufs[i].bytes.data(),
                          sides[0].bufs[i].pkt.len),
              0)
        << "packet " << i;
  }
}

}  // namespace
}  // namespace sluice::srtp
