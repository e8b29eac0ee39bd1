// Start-up restore: the checkpoint rule's arithmetic, a record brought back
// as a create request, and Restore against a real redis-server holding good
// records, damaged ones, one for an unknown interface and one sealed under
// another KEK.
#include "sluice/ha/restore.h"

#include <algorithm>
#include <array>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "redis_server.h"
#include "sluice/ha/record.h"
#include "sluice/ha/replicator.h"
#include "sluice/ha/sealer.h"
#include "sluice/crypto/backend.h"
#include "sluice/srtp/context.h"
#include "sluice/srtp/engine.h"
#include "sluice/srtp/sdes.h"

namespace sluice::ha {
namespace {

using testing::RedisServer;

SessionRecord Sample() {
  SessionRecord r;
  r.session = "call-1";
  for (int i = 0; i < 2; ++i) {
    LegRecord& leg = r.legs[static_cast<size_t>(i)];
    leg.name = i == 0 ? "caller" : "callee";
    leg.interface = i == 0 ? "a" : "b";
    leg.local_port = static_cast<uint16_t>(30000 + 2 * i);
    leg.remote = packet::Endpoint::Parse(i == 0 ? "10.0.0.2:4000" : "10.0.1.2:5000");
  }
  return r;
}

const std::string kSdes = "AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

// The checkpoint rule (docs/ha.md): a restored sender's SRTCP index moves
// past everything it may have sent since the checkpoint; nothing else moves.
TEST(CheckpointRuleTest, RestoredSenderSkipsWhatItMayHaveSentSinceTheCheckpoint) {
  config::HaConfig cfg;
  cfg.checkpoint_ms = 1000;
  cfg.max_rtcp_pps = 100;
  EXPECT_EQ(SrtcpSkip(cfg, 10000, 10000), 101u);   // one interval at 100/s, plus one
  EXPECT_EQ(SrtcpSkip(cfg, 10000, 15000), 601u);   // and the 5 s since
  EXPECT_EQ(SrtcpSkip(cfg, 15000, 10000), 101u);   // a clock behind: one interval still
  cfg.max_rtcp_pps = 1000000;
  EXPECT_EQ(SrtcpSkip(cfg, 0, uint64_t{1} << 40), 0x7fffffffu);  // bounded
  // The SRTP index of a sender relayed from plain RTP, the same way at
  // max_rtp_pps; elapsed time counted up to a day.
  cfg.max_rtp_pps = 500;
  EXPECT_EQ(RtpSkip(cfg, 10000, 10100), 551u);  // 1.1 s at 500/s, plus one
  EXPECT_EQ(RtpSkip(cfg, 15000, 10000), 501u);
  EXPECT_EQ(RtpSkip(cfg, 0, UINT64_MAX), (500ull * (86400000 + 1000) + 999) / 1000 + 1);

  const Sealer sealer = Sealer::FromKey({});
  SessionRecord r = Sample();
  const std::string sdes = "AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
  r.legs[1].tx = {SealedCrypto::Kind::kSdes, *sealer.Seal(sdes, r.session + "/1/tx")};
  r.legs[0].rx = {SealedCrypto::Kind::kSdes, *sealer.Seal(sdes, r.session + "/0/rx")};
  StreamsRecord s;
  s.at_unix_ms = 50000;
  s.legs[1].tx = {{9, true, 123456, 40}};
  s.legs[0].rx = {{5, true, 777, 12}};
  cfg.max_rtcp_pps = 100;
  absl::StatusOr<control::CreateRequest> req = RequestFromRecord(r, s, sealer, cfg, 52000);
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->legs[1].tx.kind, control::CryptoSpec::Kind::kSdes);
  EXPECT_EQ(req->legs[1].tx.sdes, sdes);
  EXPECT_EQ(req->legs[0].local_port, 30000);
  EXPECT_EQ(req->legs[1].tx_streams[0].rtp_top, 123456u);       // RTP: the source's index
  EXPECT_EQ(req->legs[1].tx_streams[0].rtcp_index, 40u + 301u);  // SRTCP: skipped
  EXPECT_EQ(req->legs[0].rx_streams[0].rtcp_index, 12u);         // a receiver's: as it was
  EXPECT_EQ(req->legs[0].rx_streams[0].rtp_top, 777u);

  // A key sealed for another place in the session does not open there.
  std::swap(r.legs[0].rx, r.legs[1].tx);
  EXPECT_TRUE(absl::IsDataLoss(RequestFromRecord(r, s, sealer, cfg, 52000).status()));
  // Another KEK: FailedPrecondition, which stops sluiced from starting.
  std::array<uint8_t, kKekBytes> other{};
  other[0] = 1;
  EXPECT_TRUE(absl::IsFailedPrecondition(
      RequestFromRecord(r, s, Sealer::FromKey(other), cfg, 52000).status()));
}

// A keyed WebRTC leg: its record holds the keys the handshake exported and
// both ICE passwords, sealed (none of them in clear), and comes back as a
// create that installs the leg keyed, its ICE credentials and selected pair
// as they were, with the checkpoint rule applied to what it sends.
TEST(CheckpointRuleTest, KeyedWebRtcLegIsSealedAndRestoredWithoutAHandshake) {
  const Sealer sealer = Sealer::FromKey({3});
  const std::string kLocalPwd = "localpasswordlocalpassw0";
  const std::string kPeerPwd = "peerpasswordpeerpassword";
  control::CreateRequest create;
  create.session = "webrtc-1";
  for (int i = 0; i < 2; ++i) {
    control::LegRequest& leg = create.legs.emplace_back();
    leg.name = i == 0 ? "browser" : "phone";
    leg.interface = "a";
    leg.family = 4;
  }
  control::LegRequest& browser = create.legs[0];
  browser.dtls.emplace();
  browser.dtls->setup = "actpass";
  browser.dtls->fingerprints = {"sha-256 AB:CD"};
  browser.ice.emplace();
  browser.ice->ufrag = "peerU";
  browser.ice->pwd = kPeerPwd;
  create.legs[1].rx = {control::CryptoSpec::Kind::kSdes, kSdes};
  control::SessionInfo reply;
  reply.session = create.session;
  for (int i = 0; i < 2; ++i) {
    control::LegInfo& leg = reply.legs.emplace_back();
    leg.local = *packet::Endpoint::Parse(i == 0 ? "10.0.0.1:30000" : "10.0.0.1:30002");
  }
  reply.legs[0].ice.emplace();
  reply.legs[0].ice->ufrag = "locU";
  reply.legs[0].ice->pwd = kLocalPwd;

  SessionRecord record;
  ASSERT_TRUE(RecordFromCreate(create, reply, sealer, record));
  EXPECT_TRUE(record.legs[0].dtls->restored_profile.empty());  // not keyed yet
  // What Replicator::OnLegKeyed seals once the handshake keyed the leg.
  record.legs[0].dtls->restored_profile = "AES_CM_128_HMAC_SHA1_80";
  record.legs[0].rx = {SealedCrypto::Kind::kSdes, *sealer.Seal(kSdes, "webrtc-1/0/rx")};
  record.legs[0].tx = {SealedCrypto::Kind::kSdes, *sealer.Seal(kSdes, "webrtc-1/0/tx")};

  const std::string text = EncodeSession(record);
  std::string key_bytes;
  ASSERT_TRUE(absl::Base64Unescape(kSdes.substr(kSdes.find(':') + 1), &key_bytes));
  for (const std::string& secret : {kSdes.substr(kSdes.find(':') + 1), key_bytes, kLocalPwd,
                                    kPeerPwd, absl::Base64Escape(kLocalPwd)}) {
    EXPECT_EQ(text.find(secret), std::string::npos);
  }

  StreamsRecord s;
  s.at_unix_ms = 50000;
  s.legs[0].remote = packet::Endpoint::Parse("10.0.0.9:5555");  // the selected pair
  s.legs[0].tx = {{9, true, 1000, 40}};
  config::HaConfig cfg;
  cfg.max_rtcp_pps = 100;
  absl::StatusOr<control::CreateRequest> req =
      RequestFromRecord(*DecodeSession(text), s, sealer, cfg, 52000);
  ASSERT_TRUE(req.ok()) << req.status();
  const control::LegRequest& leg = req->legs[0];
  ASSERT_TRUE(leg.dtls && leg.ice);
  EXPECT_EQ(leg.dtls->restored_profile, "AES_CM_128_HMAC_SHA1_80");
  EXPECT_EQ(leg.dtls->fingerprints, browser.dtls->fingerprints);
  EXPECT_EQ(leg.rx.sdes, kSdes);
  EXPECT_EQ(leg.tx.sdes, kSdes);
  EXPECT_EQ(leg.ice->local_ufrag, "locU");
  EXPECT_EQ(leg.ice->local_pwd, kLocalPwd);
  EXPECT_EQ(leg.ice->ufrag, "peerU");
  EXPECT_EQ(leg.ice->pwd, kPeerPwd);
  EXPECT_EQ(leg.ice->selected->ToString(), "10.0.0.9:5555");
  EXPECT_FALSE(leg.remote.has_value());  // an ICE leg's peer is its selected pair
  EXPECT_EQ(leg.tx_streams[0].rtcp_index, 40u + 301u);  // rule 3 as for SDES

  // Restored again, it replicates as it came (a second restart).
  control::SessionInfo again = reply;
  again.legs[0].ice->pwd = "a new one the reply shows";
  SessionRecord second;
  ASSERT_TRUE(RecordFromCreate(*req, again, sealer, second));
  EXPECT_EQ(second.legs[0].dtls->restored_profile, "AES_CM_128_HMAC_SHA1_80");
  EXPECT_EQ(*sealer.Unseal(second.legs[0].ice->pwd_sealed, "webrtc-1/0/ice"), kLocalPwd);

  // Another KEK stops the start; a damaged or moved password refuses it.
  std::array<uint8_t, kKekBytes> other{};
  other[0] = 1;
  EXPECT_TRUE(absl::IsFailedPrecondition(
      RequestFromRecord(record, s, Sealer::FromKey(other), cfg, 52000).status()));
  SessionRecord damaged = record;
  damaged.legs[0].ice->pwd_sealed.back() ^= 1;
  EXPECT_TRUE(absl::IsDataLoss(RequestFromRecord(damaged, s, sealer, cfg, 52000).status()));
  SessionRecord moved = record;
  std::swap(moved.legs[0].ice->pwd_sealed, moved.legs[0].ice->peer_pwd_sealed);
  EXPECT_TRUE(absl::IsDataLoss(RequestFromRecord(moved, s, sealer, cfg, 52000).status()));

  // Replicated before keying: restored to handshake afresh.
  SessionRecord handshaking = record;
  handshaking.legs[0].dtls->restored_profile.clear();
  handshaking.legs[0].rx = handshaking.legs[0].tx = {};
  req = RequestFromRecord(handshaking, s, sealer, cfg, 52000);
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_TRUE(req->legs[0].dtls->restored_profile.empty());
  EXPECT_EQ(req->legs[0].rx.kind, control::CryptoSpec::Kind::kPlain);
  EXPECT_EQ(req->legs[0].ice->local_pwd, kLocalPwd);
}

// One packet from the plain side, SEQ `seq`, protected by `tx` and, when
// Sluice sends it, checked by the SRTP phone `rx`: the index it came at,
// or nothing when Sluice refused it.
std::optional<uint64_t> Relay(srtp::Engine& engine, srtp::Context& tx, srtp::Context& rx,
                              uint16_t seq, uint8_t payload_xor) {
  std::array<uint8_t, 128> bytes{};
  bytes[0] = 0x80;
  bytes[2] = static_cast<uint8_t>(seq >> 8);
  bytes[3] = static_cast<uint8_t>(seq);
  bytes[11] = 9;  // SSRC 9
  for (int i = 12; i < 52; ++i) bytes[i] = static_cast<uint8_t>(i ^ seq ^ payload_xor);
  srtp::Packet pkt{bytes.data(), 52, 128};
  srtp::Job job{&tx, &pkt};
  srtp::Verdict v = srtp::Verdict::kCryptoError;
  engine.ProtectRtp({&job, 1}, {&v, 1});
  if (v != srtp::Verdict::kOk) return std::nullopt;
  srtp::Job back{&rx, &pkt};
  EXPECT_EQ(engine.UnprotectRtp({&back, 1}, {&v, 1}), 1u) << "the phone refused SEQ " << seq;
  return rx.FindStream(9)->rtp_window.top();
}

// Rule 2 end to end: a plain RTP source relayed to SRTP; Sluice protects
// 300 packets, the checkpoint having seen 200, and crashes; restored by
// RequestFromRecord, it is sent every SEQ of before again with other
// payloads (someone spoofing the plain side), then the source's next 100.
// Nothing goes out at an index used before the crash; every packet that
// goes out authenticates at the phone; the source's new packets all relay.
// Then a second restart on top of the first: the shift accumulates.
TEST(CheckpointRuleTest, RestoredPlainSourcedSenderNeverReusesAnIndex) {
  config::HaConfig cfg;
  cfg.checkpoint_ms = 100;
  cfg.max_rtp_pps = 500;
  const Sealer sealer = Sealer::FromKey({});
  SessionRecord r = Sample();  // leg 0 receives plain; leg 1 sends SRTP
  r.legs[1].tx = {SealedCrypto::Kind::kSdes, *sealer.Seal(kSdes, r.session + "/1/tx")};
  absl::StatusOr<srtp::SdesCrypto> sdes = srtp::ParseSdesCrypto(kSdes);
  ASSERT_TRUE(sdes.ok()) << sdes.status();
  const srtp::MasterKey key = sdes->key;
  auto backend = crypto::MakeBackend(crypto::BackendKind::kOpenssl);
  ASSERT_TRUE(backend.ok());
  srtp::Engine engine(**backend);
  auto phone = *srtp::Context::Create({&key, 1}, {});
  auto before = *srtp::Context::Create({&key, 1}, {});
  std::set<uint64_t> used;
  StreamsRecord checkpoint;
  for (uint16_t n = 0; n < 300; ++n) {  // SEQ 65400 on: wraps at n = 136
    std::optional<uint64_t> index =
        Relay(engine, *before, *phone, static_cast<uint16_t>(65400 + n), 0);
    ASSERT_TRUE(index.has_value());
    used.insert(*index);
    if (n == 199) checkpoint.legs[1].tx = before->SnapshotStreams(true);
  }
  checkpoint.at_unix_ms = 1000;
  // Restored 100 ms after the snapshot: the skip is 101, above the 100
  // packets sent after it.
  uint16_t next_seq = static_cast<uint16_t>(65400 + 300);  // past the wrap
  for (int restart = 0; restart < 2; ++restart) {
    absl::StatusOr<control::CreateRequest> req = RequestFromRecord(
        r, *DecodeStreams(EncodeStreams(checkpoint)), sealer, cfg, checkpoint.at_unix_ms + 100);
    ASSERT_TRUE(req.ok()) << req.status();
    EXPECT_EQ(req->legs[1].tx_seq_offset, 101 * (restart + 1));
    EXPECT_EQ(req->legs[1].tx_streams[0].rtp_top, checkpoint.legs[1].tx[0].rtp_top + 101);
    EXPECT_EQ(req->legs[0].tx_seq_offset, 0);  // leg 0 sends plain: nothing to skip
    srtp::ContextOptions options;  // as Session::Create makes the tx context
    options.rtp_seq_offset = req->legs[1].tx_seq_offset;
    auto after = *srtp::Context::Create({&key, 1}, options);
    for (const srtp::StreamState& st : req->legs[1].tx_streams) after->RestoreStream(st, true);
    const uint64_t highest_before = *used.rbegin();
    for (uint16_t seq = 65400; seq != next_seq; ++seq) {  // every SEQ again, other payloads
      if (std::optional<uint64_t> index = Relay(engine, *after, *phone, seq, 0x5a)) {
        EXPECT_TRUE(used.insert(*index).second) << "index " << *index << " used twice";
      }
    }
    for (uint16_t n = 0; n < 100; ++n, ++next_seq) {  // the source carries on
      std::optional<uint64_t> index = Relay(engine, *after, *phone, next_seq, 0);
      ASSERT_TRUE(index.has_value()) << "SEQ " << next_seq << " dropped";
      EXPECT_TRUE(used.insert(*index).second) << "index " << *index << " used twice";
      EXPECT_GT(*index, highest_before);
    }
    // The next crash: its checkpoint has seen all but the last 100.
    checkpoint.legs[1].tx = after->SnapshotStreams(true);
    checkpoint.legs[1].tx[0].rtp_top -= 100;
    checkpoint.legs[1].tx_seq_offset = req->legs[1].tx_seq_offset;
  }
}

// Sessions restore through Operations::Create; the fake records them.
class FakeOperations : public control::Operations {
 public:
  std::string Version() const override { return "test"; }
  uint32_t Workers() const override { return 1; }
  absl::StatusOr<control::SessionInfo> Create(const control::CreateRequest& r) override {
    created.push_back(r.session);
    return control::SessionInfo{};
  }
  absl::StatusOr<control::SessionInfo> Update(const control::UpdateRequest&) override {
    return absl::UnimplementedError("");
  }
  absl::StatusOr<control::SessionInfo> Delete(const std::string&) override {
    return absl::UnimplementedError("");
  }
  absl::StatusOr<control::SessionInfo> Get(const std::string&) override {
    return absl::UnimplementedError("");
  }
  control::ListResult List(uint64_t, uint64_t) override { return {}; }
  control::Stats GetStats() override { return {}; }
  std::vector<std::string> created;
};

class RestoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!RedisServer::Installed()) GTEST_SKIP() << "redis-server is not installed (scripts/setup-deps)";
    ASSERT_TRUE(redis_.Start());
    config_.redis = "unix:" + redis_.socket();
    config_.instance = "r";
    config_.restore_timeout_ms = 2000;
  }
  void Set(const std::string& session, const std::string& record, const std::string& streams) {
    ASSERT_TRUE(redis_.Command({"HSET", "sluice:r:s:" + session, "record", record, "streams", streams}));
  }
  std::string Good(const std::string& name, const Sealer& sealer) {
    SessionRecord r = Sample();
    r.session = name;
    r.legs[0].rx = {SealedCrypto::Kind::kSdes, *sealer.Seal(kSdes, name + "/0/rx")};
    return EncodeSession(r);
  }
  absl::Status Run(const Sealer& sealer, const NgRestore& ng = {}) {
    return Restore(
        config_, sealer, ops_, [](const std::string& i) { return i == "a" || i == "b"; }, counts_,
        [this](std::string_view line) { log_.emplace_back(line); }, ng);
  }
  // A good record with ng state `state` sealed for `place`.
  std::string WithNg(const std::string& name, const std::string& state, const std::string& place,
                     const Sealer& sealer) {
    absl::StatusOr<SessionRecord> r = DecodeSession(Good(name, sealer));
    r->ng_sealed = *sealer.Seal(state, place);
    return EncodeSession(*r);
  }

  RedisServer redis_;
  config::HaConfig config_;
  FakeOperations ops_;
  control::HaStats counts_;
  std::vector<std::string> log_;
  const Sealer sealer_ = Sealer::FromKey({9});
  const std::string streams_ = EncodeStreams({});
};

TEST_F(RestoreTest, RestoresGoodRecordsAndCountsEveryBadOne) {
  Set("good-1", Good("good-1", sealer_), streams_);
  Set("good-2", Good("good-2", sealer_), streams_);
  const std::string good = Good("trunc", sealer_);
  Set("trunc", good.substr(0, good.size() - 9), streams_);
  Set("garbage", std::string("\0\xff", 2), streams_);
  Set("no-streams", Good("no-streams", sealer_), "");
  Set("renamed", Good("other-name", sealer_), streams_);
  std::string elsewhere = Good("elsewhere", sealer_);
  elsewhere.replace(elsewhere.find("\"interface\":\"b\""), 15, "\"interface\":\"z\"");
  Set("elsewhere", elsewhere, streams_);
  // Sealed for another session: refused as damage, not as another KEK.
  SessionRecord swapped = Sample();
  swapped.session = "swapped";
  swapped.legs[0].rx = {SealedCrypto::Kind::kSdes, *sealer_.Seal(kSdes, "good-1/0/rx")};
  Set("swapped", EncodeSession(swapped), streams_);

  ASSERT_TRUE(Run(sealer_).ok());
  EXPECT_EQ(counts_.restored, 2u);
  EXPECT_EQ(counts_.refused_corrupt, 5u);  // trunc, garbage, no-streams, renamed, swapped
  EXPECT_EQ(counts_.refused_unknown_interface, 1u);
  std::sort(ops_.created.begin(), ops_.created.end());
  EXPECT_EQ(ops_.created, (std::vector<std::string>{"good-1", "good-2"}));
  for (const std::string& line : log_) EXPECT_EQ(line.find("inline:"), std::string::npos) << line;
}

// A record's ng state is unsealed, checked before its session is created
// and adopted after; a state that does not check, or sealed for another
// session, refuses the record as corrupt; under another KEK, the start.
TEST_F(RestoreTest, NgStateIsCheckedThenAdoptedOrTheRecordRefused) {
  Set("ng-good", WithNg("ng-good", "good state", "ng-good/ng", sealer_), streams_);
  Set("ng-bad", WithNg("ng-bad", "bad state", "ng-bad/ng", sealer_), streams_);
  Set("ng-moved", WithNg("ng-moved", "good state", "ng-good/ng", sealer_), streams_);
  Set("native", Good("native", sealer_), streams_);
  std::vector<std::string> adopted;
  NgRestore ng;
  ng.check = [](const std::string& session, std::string_view state) {
    return state == "good state" ? absl::OkStatus() : absl::InvalidArgumentError("not good");
  };
  ng.adopt = [&](std::string_view state, const control::CreateRequest& create) {
    adopted.push_back(create.session + "=" + std::string(state));
    return absl::OkStatus();
  };
  ASSERT_TRUE(Run(sealer_, ng).ok());
  EXPECT_EQ(counts_.restored, 2u);
  EXPECT_EQ(counts_.refused_corrupt, 2u);  // ng-bad, ng-moved
  EXPECT_EQ(adopted, std::vector<std::string>{"ng-good=good state"});
  std::sort(ops_.created.begin(), ops_.created.end());
  EXPECT_EQ(ops_.created, (std::vector<std::string>{"native", "ng-good"}));

  redis_.Command({"FLUSHALL"});
  SessionRecord plain = Sample();  // no key sealed: the ng state alone names the KEK
  plain.session = "plain";
  plain.ng_sealed = *Sealer::FromKey({7}).Seal("good state", "plain/ng");
  Set("plain", EncodeSession(plain), streams_);
  absl::Status s = Run(sealer_, ng);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
}

TEST_F(RestoreTest, AnotherKekStopsTheStart) {
  Set("good-1", Good("good-1", Sealer::FromKey({7})), streams_);
  absl::Status s = Run(sealer_);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_NE(s.message().find("wrong key-encryption key"), std::string::npos) << s;
  EXPECT_TRUE(ops_.created.empty());
}

TEST_F(RestoreTest, RecordsOfThePreviousKekAreRestored) {
  Set("old", Good("old", Sealer::FromKey({7})), streams_);
  Set("new", Good("new", sealer_), streams_);
  Sealer rotating = Sealer::FromKey({9});
  rotating.SetPrevious(Sealer::FromKey({7}));
  ASSERT_TRUE(Run(rotating).ok());
  EXPECT_EQ(counts_.restored, 2u);
}

TEST_F(RestoreTest, NoRedisStopsTheStart) {
  redis_.Stop();
  absl::Status s = Run(sealer_);
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_NE(s.message().find("cannot reach Redis"), std::string::npos) << s;
}

}  // namespace
}  // namespace sluice::ha
