// Re-keying without losing a packet: trial keys during the overlap, and
// streams that carry their rollover counter and replay window to the new
// context.
#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <vector>

#include "libsrtp_peer.h"
#include "sluice/crypto/backend.h"
#include "sluice/srtp/engine.h"

namespace sluice::srtp {
namespace {

using testing::LibsrtpPeer;

MasterKey RandomKey(crypto::Suite suite, std::mt19937& rng) {
  MasterKey key;
  key.suite = suite;
  for (auto& b : key.key) b = static_cast<uint8_t>(rng());
  for (auto& b : key.salt) b = static_cast<uint8_t>(rng());
  return key;
}

std::vector<uint8_t> Rtp(uint16_t seq, uint32_t ssrc) {
  std::vector<uint8_t> p(12 + 160, 0x55);
  p[0] = 0x80;
  p[2] = static_cast<uint8_t>(seq >> 8);
  p[3] = static_cast<uint8_t>(seq);
  p[4] = p[5] = p[6] = p[7] = 0;
  p[8] = static_cast<uint8_t>(ssrc >> 24);
  p[9] = static_cast<uint8_t>(ssrc >> 16);
  p[10] = static_cast<uint8_t>(ssrc >> 8);
  p[11] = static_cast<uint8_t>(ssrc);
  return p;
}

class RekeyTest : public ::testing::TestWithParam<crypto::Suite> {
 protected:
  void SetUp() override {
    LibsrtpPeer::Init();
    backend_ = *crypto::MakeBackend(crypto::BackendKind::kIpsecMb);
    engine_ = std::make_unique<Engine>(*backend_);
  }
  Verdict Unprotect(Context& ctx, std::vector<uint8_t>& p) {
    p.resize(p.size() + 64);
    Packet pkt{p.data(), static_cast<uint32_t>(p.size() - 64), static_cast<uint32_t>(p.size())};
    Job job{&ctx, &pkt};
    Verdict v;
    engine_->UnprotectRtp({&job, 1}, {&v, 1});
    p.resize(v == Verdict::kOk ? pkt.len : p.size() - 64);
    return v;
  }
  Verdict Protect(Context& ctx, std::vector<uint8_t>& p) {
    const size_t len = p.size();
    p.resize(len + 64);
    Packet pkt{p.data(), static_cast<uint32_t>(len), static_cast<uint32_t>(p.size())};
    Job job{&ctx, &pkt};
    Verdict v;
    engine_->ProtectRtp({&job, 1}, {&v, 1});
    p.resize(v == Verdict::kOk ? pkt.len : len);
    return v;
  }
  void Overlap(bool from_previous_context);
  std::unique_ptr<Context> ReceiveAcrossRekey(bool peer_resets, RocOnRekey rule,
                                              const MasterKey& old_key, const MasterKey& new_key,
                                              std::vector<Verdict>& verdicts);
  std::vector<uint8_t> Forged(const MasterKey& key, uint32_t roc, uint16_t seq);
  std::unique_ptr<crypto::Backend> backend_;
  std::unique_ptr<Engine> engine_;
};

// The receiver moves from the old key to [new, old]: packets in flight under
// the old key still verify, across a sequence wrap, until the deadline; the
// sender's stream (ROC 1 by then) carries on under the new key. The old key
// comes from its master key, or (as the control plane does it) prepared from
// the context in use.
void RekeyTest::Overlap(bool from_previous_context) {
  std::mt19937 rng(3);
  const MasterKey old_key = RandomKey(GetParam(), rng), new_key = RandomKey(GetParam(), rng);
  auto tx_old = *Context::Create({&old_key, 1}, {});
  auto rx = *Context::Create({&old_key, 1}, {});
  uint16_t seq = 65500;
  std::vector<uint8_t> before_rekey;
  for (int i = 0; i < 100; ++i, ++seq) {
    std::vector<uint8_t> p = Rtp(seq, 7);
    ASSERT_EQ(Protect(*tx_old, p), Verdict::kOk);
    before_rekey = p;
    ASSERT_EQ(Unprotect(*rx, p), Verdict::kOk);
  }
  ASSERT_NE(rx->FindStream(7), nullptr);
  ASSERT_EQ(rx->FindStream(7)->roc(), 1u);

  ContextOptions opts;
  opts.trial_keys = true;
  const MasterKey both[] = {new_key, old_key};
  auto next = from_previous_context ? *Context::Create({&new_key, 1}, opts, rx.get())
                                    : *Context::Create(both, opts);
  ASSERT_EQ(next->key_count(), 2);
  next->AdoptStreamsFrom(*rx);
  auto tx_new = *Context::Create({&new_key, 1}, {});
  tx_new->AdoptStreamsFrom(*tx_old);
  engine_->SetNow(100);
  next->SetTrialDeadline(200);

  // Old-key packets still in flight interleaved with new-key ones.
  for (int i = 0; i < 20; ++i, seq += 2) {
    std::vector<uint8_t> late = Rtp(seq, 7);
    ASSERT_EQ(Protect(*tx_old, late), Verdict::kOk);
    std::vector<uint8_t> fresh = Rtp(static_cast<uint16_t>(seq + 1), 7);
    ASSERT_EQ(Protect(*tx_new, fresh), Verdict::kOk);
    EXPECT_EQ(Unprotect(*next, fresh), Verdict::kOk) << "new key " << i;
    EXPECT_EQ(Unprotect(*next, late), Verdict::kOk) << "old key in flight " << i;
  }
  ASSERT_NE(next->FindStream(7), nullptr);
  EXPECT_EQ(next->FindStream(7)->roc(), 1u);
  // The window came along: a replay of a packet from before the re-key fails.
  std::vector<uint8_t> replay = before_rekey;
  EXPECT_NE(Unprotect(*next, replay), Verdict::kOk);
  // After the deadline the old key is refused, the new one still works.
  engine_->SetNow(300);
  std::vector<uint8_t> too_late = Rtp(seq, 7);
  ASSERT_EQ(Protect(*tx_old, too_late), Verdict::kOk);
  EXPECT_EQ(Unprotect(*next, too_late), Verdict::kAuthFailed);
  std::vector<uint8_t> fresh = Rtp(static_cast<uint16_t>(seq + 1), 7);
  ASSERT_EQ(Protect(*tx_new, fresh), Verdict::kOk);
  EXPECT_EQ(Unprotect(*next, fresh), Verdict::kOk);
}

// The rollover counter on a re-key after the sequence has wrapped (ROC 2):
// RFC 3711 §3.3.1 keeps it, RFC 4568 §7.1.4 (and peers that reset on any new
// key) start at 0. Streams are seeded at ROC 2 rather than sent 2^17 packets.
constexpr uint32_t kSsrc = 0x1234;
constexpr uint32_t kRoc = 2;

std::unique_ptr<LibsrtpPeer> Peer(LibsrtpPeer::Role role, const MasterKey& key,
                                  std::optional<uint32_t> roc) {
  LibsrtpPeer::Options o;
  o.ssrc = kSsrc;
  auto peer = *LibsrtpPeer::Create(role, {&key, 1}, o);
  if (roc) {
    EXPECT_EQ(peer->SetRoc(kSsrc, *roc), srtp_err_status_ok);
  }
  return peer;
}

// Sluice receives at ROC 2 under the old key, then the peer re-keys and
// either keeps the ROC or resets it. Returns the receive context after the
// re-key, with `packets` new-key packets (from seq 1020) already through it.
std::unique_ptr<Context> RekeyTest::ReceiveAcrossRekey(bool peer_resets, RocOnRekey rule,
                                                       const MasterKey& old_key,
                                                       const MasterKey& new_key,
                                                       std::vector<Verdict>& verdicts) {
  auto old_peer = Peer(LibsrtpPeer::Role::kSender, old_key, kRoc);
  auto rx = *Context::Create({&old_key, 1}, {});
  rx->SeedRtpStream(kSsrc, kRoc, 999);
  for (uint16_t seq = 1000; seq < 1020; ++seq) {
    std::vector<uint8_t> p = Rtp(seq, kSsrc);
    EXPECT_EQ(old_peer->ProtectRtp(p), srtp_err_status_ok);
    EXPECT_EQ(Unprotect(*rx, p), Verdict::kOk);
  }
  ContextOptions opts;
  opts.trial_keys = true;
  opts.roc_on_rekey = rule;
  auto next = *Context::Create({&new_key, 1}, opts, rx.get());
  next->AdoptStreamsFrom(*rx);
  engine_->SetNow(100);
  next->SetTrialDeadline(200);
  auto new_peer = Peer(LibsrtpPeer::Role::kSender, new_key,
                       peer_resets ? std::nullopt : std::optional<uint32_t>(kRoc));
  for (uint16_t seq = 1020; seq < 1030; ++seq) {
    std::vector<uint8_t> p = Rtp(seq, kSsrc);
    EXPECT_EQ(new_peer->ProtectRtp(p), srtp_err_status_ok);
    verdicts.push_back(Unprotect(*next, p));
  }
  return next;
}

// A packet under `key` at (roc, seq), protected by Sluice's own sender.
std::vector<uint8_t> RekeyTest::Forged(const MasterKey& key, uint32_t roc, uint16_t seq) {
  auto tx = *Context::Create({&key, 1}, {});
  tx->SeedRtpStream(kSsrc, roc, static_cast<uint16_t>(seq - 1));
  std::vector<uint8_t> p = Rtp(seq, kSsrc);
  EXPECT_EQ(Protect(*tx, p), Verdict::kOk);
  return p;
}

TEST_P(RekeyTest, ReceiveDetectsAPeerThatResetsTheRoc) {
  std::mt19937 rng(21);
  const MasterKey old_key = RandomKey(GetParam(), rng), new_key = RandomKey(GetParam(), rng);
  std::vector<Verdict> v;
  auto rx = ReceiveAcrossRekey(true, RocOnRekey::kDetect, old_key, new_key, v);
  EXPECT_EQ(v, std::vector<Verdict>(10, Verdict::kOk));
  EXPECT_EQ(rx->roc_after_rekey(), RocAfterRekey::kReset);
  EXPECT_EQ(rx->FindStream(kSsrc)->roc(), 0u);
  // Fixed: the kept ROC is no longer tried, even for a later packet.
  std::vector<uint8_t> kept = Forged(new_key, kRoc, 1040);
  EXPECT_EQ(Unprotect(*rx, kept), Verdict::kAuthFailed);
  // Replay: a packet accepted under ROC 0 is refused again.
  std::vector<uint8_t> again = Forged(new_key, 0, 1050);
  std::vector<uint8_t> copy = again;
  EXPECT_EQ(Unprotect(*rx, again), Verdict::kOk);
  EXPECT_EQ(Unprotect(*rx, copy), Verdict::kReplayed);
}

TEST_P(RekeyTest, ReceiveDetectsAPeerThatKeepsTheRoc) {
  std::mt19937 rng(22);
  const MasterKey old_key = RandomKey(GetParam(), rng), new_key = RandomKey(GetParam(), rng);
  std::vector<Verdict> v;
  auto rx = ReceiveAcrossRekey(false, RocOnRekey::kDetect, old_key, new_key, v);
  EXPECT_EQ(v, std::vector<Verdict>(10, Verdict::kOk));
  EXPECT_EQ(rx->roc_after_rekey(), RocAfterRekey::kKept);
  EXPECT_EQ(rx->FindStream(kSsrc)->roc(), kRoc);
  // Fixed: ROC 0 is no longer tried.
  std::vector<uint8_t> reset = Forged(new_key, 0, 1040);
  EXPECT_EQ(Unprotect(*rx, reset), Verdict::kAuthFailed);
}

// Without detection (RFC 3711's rule alone) a resetting peer's audio is
// lost after the re-key: the failure detection fixes.
TEST_P(RekeyTest, KeepingTheRocLosesAPeerThatResetsIt) {
  std::mt19937 rng(23);
  const MasterKey old_key = RandomKey(GetParam(), rng), new_key = RandomKey(GetParam(), rng);
  std::vector<Verdict> v;
  auto rx = ReceiveAcrossRekey(true, RocOnRekey::kKeep, old_key, new_key, v);
  EXPECT_EQ(v, std::vector<Verdict>(10, Verdict::kAuthFailed));
  EXPECT_EQ(rx->roc_after_rekey(), RocAfterRekey::kNone);
}

// The first new-key packet fixes the rule: one that authenticates under the
// other ROC in the same burst is refused, never both accepted.
TEST_P(RekeyTest, DetectionNeverAcceptsBothRocs) {
  std::mt19937 rng(24);
  const MasterKey old_key = RandomKey(GetParam(), rng), new_key = RandomKey(GetParam(), rng);
  auto rx = *Context::Create({&old_key, 1}, {});
  rx->SeedRtpStream(kSsrc, kRoc, 999);
  auto next = *Context::Create({&new_key, 1}, {.roc_on_rekey = RocOnRekey::kDetect});
  next->AdoptStreamsFrom(*rx);
  EXPECT_EQ(next->roc_after_rekey(), RocAfterRekey::kUndecided);
  std::vector<uint8_t> a = Forged(new_key, 0, 1000), b = Forged(new_key, kRoc, 1001);
  a.resize(a.size() + 64);
  b.resize(b.size() + 64);
  Packet pa{a.data(), static_cast<uint32_t>(a.size() - 64), static_cast<uint32_t>(a.size())};
  Packet pb{b.data(), static_cast<uint32_t>(b.size() - 64), static_cast<uint32_t>(b.size())};
  Job jobs[] = {{next.get(), &pa}, {next.get(), &pb}};
  Verdict v[2];
  EXPECT_EQ(engine_->UnprotectRtp(jobs, v), 1u);
  EXPECT_EQ(v[0], Verdict::kOk);
  EXPECT_NE(v[1], Verdict::kOk);
  EXPECT_EQ(next->roc_after_rekey(), RocAfterRekey::kReset);
}

// Sluice sends at ROC 2, then re-keys: kReset starts the stream at ROC 0
// (a peer that resets follows), kKeep carries ROC 2 (a peer that keeps
// follows, one that resets does not).
TEST_P(RekeyTest, SendResetsOrKeepsTheRocAsTold) {
  std::mt19937 rng(25);
  const MasterKey old_key = RandomKey(GetParam(), rng), new_key = RandomKey(GetParam(), rng);
  for (RocOnRekey rule : {RocOnRekey::kReset, RocOnRekey::kKeep}) {
    auto tx = *Context::Create({&old_key, 1}, {});
    tx->SeedRtpStream(kSsrc, kRoc, 999);
    auto old_peer = Peer(LibsrtpPeer::Role::kReceiver, old_key, kRoc);
    for (uint16_t seq = 1000; seq < 1010; ++seq) {
      std::vector<uint8_t> p = Rtp(seq, kSsrc);
      ASSERT_EQ(Protect(*tx, p), Verdict::kOk);
      EXPECT_EQ(old_peer->UnprotectRtp(p), srtp_err_status_ok);
    }
    auto next = *Context::Create({&new_key, 1}, {.roc_on_rekey = rule});
    next->AdoptStreamsFrom(*tx);
    auto resetting = Peer(LibsrtpPeer::Role::kReceiver, new_key, std::nullopt);
    auto keeping = Peer(LibsrtpPeer::Role::kReceiver, new_key, kRoc);
    for (uint16_t seq = 1010; seq < 1020; ++seq) {
      std::vector<uint8_t> p = Rtp(seq, kSsrc);
      ASSERT_EQ(Protect(*next, p), Verdict::kOk);
      std::vector<uint8_t> q = p;
      const bool reset = rule == RocOnRekey::kReset;
      EXPECT_EQ(resetting->UnprotectRtp(p) == srtp_err_status_ok, reset) << seq;
      EXPECT_EQ(keeping->UnprotectRtp(q) == srtp_err_status_ok, !reset) << seq;
    }
  }
}

TEST_P(RekeyTest, OverlapAcceptsBothKeysAcrossTheWrapThenOnlyTheNew) { Overlap(false); }

TEST_P(RekeyTest, OverlapWithThePreviousContextsPreparedKey) { Overlap(true); }

// With MKIs the replaced key is found by its MKI, not tried: it is still
// accepted until the overlap's deadline and refused (kKeyRetired) after it;
// its packet count carries on from the previous context, where the owner
// counted until the hand-over.
TEST_P(RekeyTest, MkiKeyIsRetiredAtTheDeadlineAndKeepsItsCount) {
  std::mt19937 rng(11);
  MasterKey old_key = RandomKey(GetParam(), rng), new_key = RandomKey(GetParam(), rng);
  old_key.mki_len = new_key.mki_len = 2;
  old_key.mki[1] = 1;
  new_key.mki[1] = 2;
  auto tx_old = *Context::Create({&old_key, 1}, {});
  auto tx_new = *Context::Create({&new_key, 1}, {});
  auto rx = *Context::Create({&old_key, 1}, {});
  uint16_t seq = 100;
  for (int i = 0; i < 10; ++i, ++seq) {
    std::vector<uint8_t> p = Rtp(seq, 7);
    ASSERT_EQ(Protect(*tx_old, p), Verdict::kOk);
    ASSERT_EQ(Unprotect(*rx, p), Verdict::kOk);
  }
  // Made while the owner still counts on rx: two more packets come after.
  auto next = *Context::Create({&new_key, 1}, {}, rx.get());
  for (int i = 0; i < 2; ++i, ++seq) {
    std::vector<uint8_t> p = Rtp(seq, 7);
    ASSERT_EQ(Protect(*tx_old, p), Verdict::kOk);
    ASSERT_EQ(Unprotect(*rx, p), Verdict::kOk);
  }
  ASSERT_EQ(next->key_count(), 2);
  const int carried = next->carried_key();
  ASSERT_EQ(carried, 1);
  next->AdoptStreamsFrom(*rx);
  next->AdoptKeyCountsFrom(*rx);
  EXPECT_EQ(next->srtp_packets(carried), 12u) << "the master key's count, not the context's";
  engine_->SetNow(100);
  next->SetTrialDeadline(200);

  std::vector<uint8_t> late = Rtp(seq++, 7);
  ASSERT_EQ(Protect(*tx_old, late), Verdict::kOk);
  EXPECT_EQ(Unprotect(*next, late), Verdict::kOk) << "in flight, within the overlap";
  EXPECT_EQ(next->srtp_packets(carried), 13u);
  engine_->SetNow(200);
  std::vector<uint8_t> too_late = Rtp(seq++, 7);
  ASSERT_EQ(Protect(*tx_old, too_late), Verdict::kOk);
  EXPECT_EQ(Unprotect(*next, too_late), Verdict::kKeyRetired);
  EXPECT_EQ(next->srtp_packets(carried), 13u);
  std::vector<uint8_t> fresh = Rtp(seq++, 7);
  ASSERT_EQ(Protect(*tx_new, fresh), Verdict::kOk);
  EXPECT_EQ(Unprotect(*next, fresh), Verdict::kOk);
  EXPECT_EQ(next->srtp_packets(0), 1u);
}

// A context cannot carry a key of another suite or MKI length, nor take the
// previous key again as a new one.
TEST_P(RekeyTest, PreviousContextMustMatchAndDiffer) {
  std::mt19937 rng(9);
  const MasterKey old_key = RandomKey(GetParam(), rng), new_key = RandomKey(GetParam(), rng);
  auto rx = *Context::Create({&old_key, 1}, {});
  ContextOptions opts;
  opts.trial_keys = true;
  EXPECT_FALSE(Context::Create({&old_key, 1}, opts, rx.get()).ok());
  MasterKey other_suite = new_key;
  other_suite.suite = GetParam() == crypto::Suite::kAesCm128HmacSha1_80
                          ? crypto::Suite::kAeadAes128Gcm
                          : crypto::Suite::kAesCm128HmacSha1_80;
  EXPECT_FALSE(Context::Create({&other_suite, 1}, opts, rx.get()).ok());
  MasterKey with_mki = new_key;
  with_mki.mki_len = 1;
  EXPECT_FALSE(Context::Create({&with_mki, 1}, opts, rx.get()).ok());
  // Without MKIs the two keys are told apart only by trying them.
  EXPECT_FALSE(Context::Create({&new_key, 1}, ContextOptions{}, rx.get()).ok());
  EXPECT_TRUE(Context::Create({&new_key, 1}, opts, rx.get()).ok());
}

// The sender side: a new tx context adopts the stream, so its ROC carries on
// and a receiver that kept its state (libsrtp with the new key, fed the same
// history) verifies every packet.
TEST_P(RekeyTest, SenderKeepsRolloverCounterAcrossRekey) {
  std::mt19937 rng(5);
  const MasterKey old_key = RandomKey(GetParam(), rng), new_key = RandomKey(GetParam(), rng);
  auto tx = *Context::Create({&old_key, 1}, {});
  auto rx_new = *LibsrtpPeer::Create(LibsrtpPeer::Role::kReceiver, {&new_key, 1}, {});
  auto tx_ref = *Context::Create({&new_key, 1}, {});  // reference: one key all along
  uint16_t seq = 65530;
  for (int i = 0; i < 20; ++i, ++seq) {
    std::vector<uint8_t> p = Rtp(seq, 7), q = Rtp(seq, 7);
    ASSERT_EQ(Protect(*tx, p), Verdict::kOk);
    ASSERT_EQ(Protect(*tx_ref, q), Verdict::kOk);
    ASSERT_EQ(rx_new->UnprotectRtp(q), srtp_err_status_ok);  // receiver tracks ROC 1
  }
  auto next = *Context::Create({&new_key, 1}, {});
  next->AdoptStreamsFrom(*tx);
  for (int i = 0; i < 20; ++i, ++seq) {
    std::vector<uint8_t> p = Rtp(seq, 7);
    const std::vector<uint8_t> original = p;
    ASSERT_EQ(Protect(*next, p), Verdict::kOk);
    ASSERT_EQ(rx_new->UnprotectRtp(p), srtp_err_status_ok) << "packet " << i;
    EXPECT_EQ(p, original);
  }
  ASSERT_NE(next->FindStream(7), nullptr);
  EXPECT_EQ(next->FindStream(7)->roc(), 1u);
}

// What a receiver remembers of SSRCs whose slots were reclaimed lasts as
// long as a key it guards: a re-key that keeps the old key for the overlap
// keeps the records (a captured old-key packet is still refused, and the
// full record still holds the slot), the next re-key, which no longer holds
// that key, lets them go.
TEST_P(RekeyTest, RetiredStreamsLastAsLongAsTheirKey) {
  std::mt19937 rng(5);
  const MasterKey a = RandomKey(GetParam(), rng), b = RandomKey(GetParam(), rng),
                  c = RandomKey(GetParam(), rng);
  ContextOptions opts;
  opts.max_streams = 1;  // two records
  opts.stream_idle = 1000;
  auto tx_a = *Context::Create({&a, 1}, opts);
  auto rx_a = *Context::Create({&a, 1}, opts);
  std::vector<uint8_t> first;
  uint64_t now = 1;
  for (uint32_t ssrc = 1; ssrc <= 3; ++ssrc, now += 2000) {
    engine_->SetNow(now);
    std::vector<uint8_t> p = Rtp(100, ssrc);
    ASSERT_EQ(Protect(*tx_a, p), Verdict::kOk);
    if (ssrc == 1) first = p;
    ASSERT_EQ(Unprotect(*rx_a, p), Verdict::kOk) << ssrc;
  }
  ContextOptions carry = opts;
  carry.trial_keys = true;
  auto rx_b = *Context::Create({&b, 1}, carry, rx_a.get());
  rx_b->AdoptStreamsFrom(*rx_a);
  auto tx_b = *Context::Create({&b, 1}, opts);
  engine_->SetNow(now);
  std::vector<uint8_t> p = first;
  EXPECT_EQ(Unprotect(*rx_b, p), Verdict::kReplayed);
  engine_->SetNow(now += 2000);
  p = Rtp(1, 4);
  ASSERT_EQ(Protect(*tx_b, p), Verdict::kOk);
  EXPECT_EQ(Unprotect(*rx_b, p), Verdict::kStreamLimit);

  auto rx_c = *Context::Create({&c, 1}, carry, rx_b.get());
  rx_c->AdoptStreamsFrom(*rx_b);
  auto tx_c = *Context::Create({&c, 1}, opts);
  engine_->SetNow(now += 2000);
  p = Rtp(2, 4);
  ASSERT_EQ(Protect(*tx_c, p), Verdict::kOk);
  EXPECT_EQ(Unprotect(*rx_c, p), Verdict::kOk);
  engine_->SetNow(now += 2000);
  p = first;  // key a is gone: the packet no longer authenticates
  EXPECT_EQ(Unprotect(*rx_c, p), Verdict::kAuthFailed);
}

INSTANTIATE_TEST_SUITE_P(Suites, RekeyTest,
                         ::testing::Values(crypto::Suite::kAesCm128HmacSha1_80,
                                           crypto::Suite::kAeadAes128Gcm,
                                           crypto::Suite::kAeadAes256Gcm8),
                         [](const auto& info) {
                           std::string name(crypto::SuiteName(info.param));
                           return name;
                         });

}  // namespace
}  // namespace sluice::srtp
