// The replicator against a real redis-server on a Unix socket: sessions
// written sealed, updated, deleted; checkpoints; a Redis that is stopped or
// paused never blocks Poll, grows a backlog and a lag that stats shows, and
// is caught up with when it returns.
#include "sluice/ha/replicator.h"

#include <chrono>
#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include "redis_server.h"
#include "sluice/ha/record.h"

namespace sluice::ha {
namespace {

using testing::RedisServer;

const std::string kRxKey = "AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
const std::string kTxKey = "AEAD_AES_128_GCM inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBka";

uint64_t NowMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

control::CreateRequest Request(const std::string& name) {
  control::CreateRequest r;
  r.session = name;
  for (int i = 0; i < 2; ++i) {
    control::LegRequest& leg = r.legs.emplace_back();
    leg.name = i == 0 ? "a" : "b";
    leg.interface = leg.name;
    leg.remote = packet::Endpoint::Parse(i == 0 ? "10.0.0.2:4000" : "10.0.1.2:5000");
    leg.rx.kind = control::CryptoSpec::Kind::kSdes;
    leg.rx.sdes = kRxKey;
    leg.tx.kind = i == 0 ? control::CryptoSpec::Kind::kGenerate : control::CryptoSpec::Kind::kPlain;
  }
  return r;
}

control::SessionInfo Reply(const std::string& name) {
  control::SessionInfo info;
  info.session = name;
  for (int i = 0; i < 2; ++i) {
    control::LegInfo& leg = info.legs.emplace_back();
    leg.name = i == 0 ? "a" : "b";
    leg.local = *packet::Endpoint::Parse(i == 0 ? "10.0.0.1:30000" : "10.0.1.1:30002");
  }
  info.legs[0].tx_crypto = kTxKey;  // generated
  return info;
}

class ReplicatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!RedisServer::Installed()) GTEST_SKIP() << "redis-server is not installed (scripts/setup-deps)";
    ASSERT_TRUE(redis_.Start());
    Replicator::Options options{"unix:" + redis_.socket(), "", "t", 50};
    replicator_ = std::make_unique<Replicator>(
        options, Sealer::FromKey(kek_), [this](const std::string&) { return streams_; });
  }

  // Polls until `done` or 10 s; returns the longest single Poll, in ms.
  template <typename Done>
  uint64_t PollUntil(Done done) {
    uint64_t longest = 0;
    for (const uint64_t until = NowMs() + 10000; !done() && NowMs() < until;) {
      const uint64_t t = NowMs();
      replicator_->Poll();
      longest = std::max(longest, NowMs() - t);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return longest;
  }
  // Polls for ms milliseconds; returns the longest single Poll.
  uint64_t PollFor(uint64_t ms) {
    const uint64_t until = NowMs() + ms;
    return PollUntil([&] { return NowMs() >= until; });
  }
  bool Synced() const {
    const control::HaStats s = replicator_->Stats();
    return s.connected && s.backlog == 0;
  }

  // The hash's fields, read through a connection of the test's own.
  std::map<std::string, std::string> Read(const std::string& session) {
    std::map<std::string, std::string> out;
    redisContext* c = redisConnectUnix(redis_.socket().c_str());
    if (c == nullptr || c->err != 0) {
      ADD_FAILURE() << "cannot connect to the test's redis";
      if (c) redisFree(c);
      return out;
    }
    const std::string key = "sluice:t:s:" + session;
    auto* r = static_cast<redisReply*>(redisCommand(c, "HGETALL %b", key.data(), key.size()));
    for (size_t i = 0; r != nullptr && i + 1 < r->elements; i += 2) {
      out[std::string(r->element[i]->str, r->element[i]->len)] =
          std::string(r->element[i + 1]->str, r->element[i + 1]->len);
    }
    if (r) freeReplyObject(r);
    redisFree(c);
    return out;
  }

  RedisServer redis_;
  std::array<uint8_t, kKekBytes> kek_{1, 2, 3};
  std::optional<std::array<control::LegStreams, 2>> streams_;
  std::unique_ptr<Replicator> replicator_;
};

// The ng front end's state is asked for at each write and sealed for the
// session's "/ng" place; a change it reports is written again, under the
// KEK of now.
TEST_F(ReplicatorTest, SealsTheNgStateIntoEachWrite) {
  std::string state = "ng state 1";
  int asked = 0;
  replicator_->SetNgState([&](const std::string& session) -> std::optional<std::string> {
    if (session != "ng-call") return std::nullopt;
    ++asked;
    return state;
  });
  replicator_->OnCreated(Request("ng-call"), Reply("ng-call"));
  replicator_->OnCreated(Request("native"), Reply("native"));
  PollUntil([&] { return Synced(); });
  const Sealer sealer = Sealer::FromKey(kek_);
  absl::StatusOr<SessionRecord> r = DecodeSession(Read("ng-call")["record"]);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Read("ng-call")["record"].find("ng state"), std::string::npos);
  EXPECT_EQ(*sealer.Unseal(r->ng_sealed, "ng-call/ng"), "ng state 1");
  EXPECT_FALSE(sealer.Unseal(r->ng_sealed, "ng-call/0/rx").ok());
  EXPECT_TRUE(DecodeSession(Read("native")["record"])->ng_sealed.empty());

  state = "ng state 2";
  replicator_->NgChanged("ng-call");
  replicator_->NgChanged("unknown");  // no session held: nothing
  EXPECT_EQ(replicator_->Stats().backlog, 1u);
  PollUntil([&] { return Synced(); });
  r = DecodeSession(Read("ng-call")["record"]);
  EXPECT_EQ(*sealer.Unseal(r->ng_sealed, "ng-call/ng"), "ng state 2");
  // A checkpoint's write keeps the sealed state: not asked for again.
  const int before = asked;
  const uint64_t checkpoints = replicator_->Stats().checkpoints;
  streams_.emplace();
  (*streams_)[0].rx = {{42, true, 1000, 0}};
  PollUntil([&] { return replicator_->Stats().checkpoints > checkpoints && Synced(); });
  EXPECT_GT(replicator_->Stats().checkpoints, checkpoints);
  EXPECT_EQ(asked, before);
  r = DecodeSession(Read("ng-call")["record"]);
  EXPECT_EQ(*sealer.Unseal(r->ng_sealed, "ng-call/ng"), "ng state 2");
}

TEST_F(ReplicatorTest, WritesSessionsSealedAndDeletesThem) {
  replicator_->OnCreated(Request("call-1"), Reply("call-1"));
  PollUntil([&] { return Synced(); });
  const auto fields = Read("call-1");
  ASSERT_EQ(fields.count("record"), 1u);
  ASSERT_EQ(fields.count("streams"), 1u);
  for (const auto& [name, value] : fields) {
    EXPECT_EQ(value.find("inline:"), std::string::npos) << name;
    EXPECT_EQ(value.find("WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"), std::string::npos) << name;
    EXPECT_EQ(value.find("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBka"), std::string::npos) << name;
  }
  absl::StatusOr<SessionRecord> record = DecodeSession(fields.at("record"));
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ(record->legs[0].local_port, 30000);
  EXPECT_EQ(record->legs[1].tx.kind, SealedCrypto::Kind::kPlain);
  // The generated tx key is sealed too, bound to its place.
  const Sealer sealer = Sealer::FromKey(kek_);
  EXPECT_EQ(*sealer.Unseal(record->legs[0].tx.sealed, "call-1/0/tx"), kTxKey);
  EXPECT_EQ(*sealer.Unseal(record->legs[1].rx.sealed, "call-1/1/rx"), kRxKey);
  EXPECT_EQ(replicator_->Stats().writes, 1u);
  // The heartbeat: a recent time, expiring within three checkpoint
  // intervals (3 s at least).
  PollFor(120);
  const std::optional<std::string> beat = redis_.Command({"GET", "sluice:t:heartbeat"});
  ASSERT_TRUE(beat.has_value() && !beat->empty());
  const std::optional<std::string> ttl = redis_.Command({"PTTL", "sluice:t:heartbeat"});
  ASSERT_TRUE(ttl.has_value());
  EXPECT_GT(std::stoll(*ttl), 0);
  EXPECT_LE(std::stoll(*ttl), 3000);
  EXPECT_GT(std::stoull(*beat), uint64_t{1700000000000});  // Unix ms

  replicator_->OnDeleted("call-1");
  PollUntil([&] { return Synced(); });
  EXPECT_TRUE(Read("call-1").empty());
  EXPECT_EQ(replicator_->Stats().deletes, 1u);
  EXPECT_EQ(replicator_->Stats().sessions, 0u);
}

// A WebRTC leg: written at once with its ICE passwords sealed and no keys;
// its handshake's keys, when the session manager reports them, sealed into
// rx and tx with the profile, and its checkpoint begun again; a KEK
// rotation reseals the passwords too.
TEST_F(ReplicatorTest, SealsAWebRtcLegsKeysOnceKeyedAndItsIcePasswords) {
  control::CreateRequest request = Request("web");
  control::LegRequest& leg = request.legs[0];
  leg.remote.reset();
  leg.rx = control::CryptoSpec{};
  leg.tx = control::CryptoSpec{};
  leg.dtls.emplace();
  leg.dtls->setup = "actpass";
  leg.dtls->fingerprints = {"sha-256 AB:CD"};
  leg.ice.emplace();
  leg.ice->ufrag = "peerU";
  leg.ice->pwd = "peerPasswordOfTheBrowser";
  control::SessionInfo reply = Reply("web");
  reply.legs[0].tx_crypto.reset();
  reply.legs[0].ice.emplace();
  reply.legs[0].ice->ufrag = "locU";
  reply.legs[0].ice->pwd = "localPasswordOfSluice123";
  replicator_->OnCreated(request, reply);
  PollUntil([&] { return Synced(); });
  absl::StatusOr<SessionRecord> r = DecodeSession(Read("web")["record"]);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(replicator_->Stats().not_replicated, 0u);
  EXPECT_EQ(r->legs[0].rx.kind, SealedCrypto::Kind::kPlain);
  EXPECT_TRUE(r->legs[0].dtls->restored_profile.empty());

  streams_.emplace();
  (*streams_)[0].tx = {{7, true, 500, 20}};
  PollUntil([&] { return replicator_->Stats().checkpoints > 0 && Synced(); });
  replicator_->OnLegKeyed("web", 0, "AES_CM_128_HMAC_SHA1_80", kRxKey, kRxKey);
  replicator_->OnLegKeyed("gone", 0, "AES_CM_128_HMAC_SHA1_80", kRxKey, kRxKey);  // nothing
  streams_.reset();
  PollUntil([&] { return Synced(); });
  const auto fields = Read("web");
  for (const std::string& secret : {std::string("WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"),
                                    std::string("localPasswordOfSluice123"),
                                    std::string("peerPasswordOfTheBrowser")}) {
    EXPECT_EQ(fields.at("record").find(secret), std::string::npos) << secret;
  }
  r = DecodeSession(fields.at("record"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->legs[0].dtls->restored_profile, "AES_CM_128_HMAC_SHA1_80");
  EXPECT_EQ(*Sealer::FromKey(kek_).Unseal(r->legs[0].tx.sealed, "web/0/tx"), kRxKey);
  EXPECT_TRUE(DecodeStreams(fields.at("streams"))->legs[0].tx.empty()) << "a new SRTP context";

  std::array<uint8_t, kKekBytes> next{4, 5, 6};
  Sealer rotated = Sealer::FromKey(next);
  rotated.SetPrevious(Sealer::FromKey(kek_));
  ASSERT_TRUE(replicator_->Rekek(std::move(rotated)).ok());
  PollUntil([&] { return Synced(); });
  r = DecodeSession(Read("web")["record"]);
  const Sealer only_next = Sealer::FromKey(next);
  EXPECT_EQ(*only_next.Unseal(r->legs[0].ice->pwd_sealed, "web/0/ice"), "localPasswordOfSluice123");
  EXPECT_EQ(*only_next.Unseal(r->legs[0].ice->peer_pwd_sealed, "web/0/ice-peer"),
            "peerPasswordOfTheBrowser");
}

TEST_F(ReplicatorTest, CheckpointsStreamsThatMoveAndKeepsThoseASnapshotLacks) {
  replicator_->OnCreated(Request("call-2"), Reply("call-2"));
  streams_.emplace();
  (*streams_)[0].rx = {{0xa1, true, (uint64_t{2} << 16) | 100, 3}};
  (*streams_)[1].tx = {{0xa1, true, (uint64_t{2} << 16) | 100, 4}};
  PollUntil([&] { return Synced() && replicator_->Stats().checkpoints >= 1; });
  absl::StatusOr<StreamsRecord> s = DecodeStreams(Read("call-2").at("streams"));
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->legs[0].rx.size(), 1u);
  EXPECT_EQ(s->legs[0].rx[0].rtp_top, (uint64_t{2} << 16) | 100);
  EXPECT_EQ(s->legs[1].tx[0].rtcp_index, 4u);
  // A snapshot without the stream (a re-key's context not yet adopted)
  // leaves it where it was.
  (*streams_)[0].rx.clear();
  (*streams_)[1].tx.clear();
  const uint64_t checkpoints = replicator_->Stats().checkpoints;
  PollFor(300);  // six checkpoint intervals
  EXPECT_EQ(replicator_->Stats().checkpoints, checkpoints);
  s = DecodeStreams(Read("call-2").at("streams"));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->legs[0].rx[0].rtp_top, (uint64_t{2} << 16) | 100);
  ASSERT_EQ(s->legs[1].tx.size(), 1u);
  // A stream moved down (a peer's ROC reset detected after a re-key): the
  // checkpoint follows, else a restore would refuse the peer's packets.
  (*streams_)[0].rx = {{0xa1, true, 50, 1}};
  PollUntil([&] { return Synced() && replicator_->Stats().checkpoints > checkpoints; });
  s = DecodeStreams(Read("call-2").at("streams"));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->legs[0].rx[0].rtp_top, 50u);
  // A re-key of leg 1's tx starts that direction's checkpoint afresh.
  control::UpdateRequest update;
  update.session = "call-2";
  update.leg = "b";
  update.tx.emplace();
  update.tx->kind = control::CryptoSpec::Kind::kSdes;
  update.tx->sdes = kRxKey;
  replicator_->OnUpdated(update, Reply("call-2"));
  PollUntil([&] { return Synced(); });
  s = DecodeStreams(Read("call-2").at("streams"));
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->legs[1].tx.empty());
  absl::StatusOr<SessionRecord> record = DecodeSession(Read("call-2").at("record"));
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->legs[1].tx.kind, SealedCrypto::Kind::kSdes);
}

// Redis killed mid-call: Poll stays quick, the backlog and lag show what
// Redis lacks, and a new Redis (empty) gets every session once it is back.
TEST_F(ReplicatorTest, RedisGoneThenBackIsCaughtUpWithoutEverBlocking) {
  replicator_->OnCreated(Request("call-3"), Reply("call-3"));
  PollUntil([&] { return Synced(); });
  redis_.Stop();
  uint64_t longest = PollUntil([&] { return !replicator_->Stats().connected; });
  replicator_->OnCreated(Request("call-4"), Reply("call-4"));
  longest = std::max(longest, PollFor(300));
  control::HaStats s = replicator_->Stats();
  EXPECT_FALSE(s.connected);
  EXPECT_GE(s.backlog, 1u);
  EXPECT_GE(s.lag_ms, 250u);
  EXPECT_GE(s.disconnects, 1u);
  EXPECT_FALSE(s.last_error.empty());
  ASSERT_TRUE(redis_.Start());
  longest = std::max(longest, PollUntil([&] { return Synced(); }));
  s = replicator_->Stats();
  EXPECT_TRUE(s.connected);
  EXPECT_EQ(s.backlog, 0u);
  EXPECT_EQ(s.lag_ms, 0u);
  EXPECT_EQ(Read("call-3").count("record"), 1u) << "written again to the new Redis";
  EXPECT_EQ(Read("call-4").count("record"), 1u);
  std::printf("longest Poll with Redis gone: %llu ms\n", static_cast<unsigned long long>(longest));
  EXPECT_LT(longest, 250u) << "a Poll waited on Redis";
}

// Polls that find Redis away do not put the heartbeat off: once Redis is
// back, the heartbeat goes out at once, not heartbeat_ms (1 s) after the
// first of them.
TEST_F(ReplicatorTest, HeartbeatsAsSoonAsRedisIsBack) {
  redis_.Stop();
  PollFor(50);
  EXPECT_FALSE(replicator_->Stats().connected);
  ASSERT_TRUE(redis_.Start());
  PollUntil([&] { return replicator_->Stats().connected; });
  ASSERT_TRUE(replicator_->Stats().connected) << replicator_->Stats().last_error;
  const uint64_t connected = NowMs();
  PollUntil([&] {
    const std::optional<std::string> beat = redis_.Command({"GET", "sluice:t:heartbeat"});
    return beat.has_value() && !beat->empty();
  });
  EXPECT_LT(NowMs() - connected, 400u) << "the heartbeat waited for its timer";
  PollUntil([&] { return replicator_->heartbeat_confirmed_ms() > 0; });
  EXPECT_GT(replicator_->heartbeat_confirmed_ms(), 0u) << "its reply taken as ours";
}

// A clock that moves between two readings in one Poll (every reading a
// millisecond on) must not make a connection under way look timed out.
TEST_F(ReplicatorTest, ConnectsWhenTheClockTicksWithinAPoll) {
  uint64_t t = 1000;
  Replicator::Options options{"unix:" + redis_.socket(), "", "t", 50};
  replicator_ = std::make_unique<Replicator>(
      options, Sealer::FromKey(kek_), [this](const std::string&) { return streams_; },
      [&t]() { return ++t; });
  replicator_->OnCreated(Request("call-7"), Reply("call-7"));
  PollUntil([&] { return Synced(); });
  EXPECT_TRUE(replicator_->Stats().connected) << replicator_->Stats().last_error;
  EXPECT_EQ(replicator_->Stats().disconnects, 0u);
}

// A Redis that refuses writes (out of memory) is asked again a second
// later, not at every Poll; once it accepts, it gets the latest state.
TEST_F(ReplicatorTest, RefusedWritesAreRetriedASecondApart) {
  ASSERT_TRUE(redis_.Command({"CONFIG", "SET", "maxmemory", "1"}));
  replicator_->OnCreated(Request("call-6"), Reply("call-6"));
  PollFor(1500);
  const control::HaStats s = replicator_->Stats();
  EXPECT_TRUE(s.connected);
  EXPECT_GE(s.write_errors, 1u);
  // Two rounds a second apart, each the session's write and perhaps the
  // heartbeat: without the pause, hundreds.
  EXPECT_LE(s.write_errors, 6u) << "retried without a pause";
  EXPECT_NE(s.last_error.find("OOM"), std::string::npos) << s.last_error;
  EXPECT_EQ(s.backlog, 1u);
  EXPECT_GE(s.lag_ms, 1000u);
  ASSERT_TRUE(redis_.Command({"CONFIG", "SET", "maxmemory", "0"}));
  PollUntil([&] { return Synced(); });
  EXPECT_EQ(Read("call-6").count("record"), 1u);
}

// A Redis that accepts and never answers (paused) never stalls Poll;
// resumed, it gets the latest state.
TEST_F(ReplicatorTest, PausedRedisNeverStallsPoll) {
  replicator_->OnCreated(Request("call-5"), Reply("call-5"));
  PollUntil([&] { return Synced(); });
  redis_.Pause();
  uint64_t longest = 0;
  for (int i = 0; i < 300; ++i) {
    control::UpdateRequest update;
    update.session = "call-5";
    update.leg = "a";
    update.hold = (i % 2) == 0;
    replicator_->OnUpdated(update, Reply("call-5"));
    longest = std::max(longest, PollFor(1));
  }
  EXPECT_LE(replicator_->Stats().backlog, 2u) << "changes of one session are coalesced";
  EXPECT_GE(replicator_->Stats().lag_ms, 200u);
  redis_.Resume();
  PollUntil([&] { return Synced(); });
  std::printf("longest Poll with Redis paused: %llu ms\n", static_cast<unsigned long long>(longest));
  EXPECT_LT(longest, 250u) << "a Poll waited on Redis";
  absl::StatusOr<SessionRecord> record = DecodeSession(Read("call-5").at("record"));
  ASSERT_TRUE(record.ok());
  EXPECT_FALSE(record->hold) << "the last update's state";
}

}  // namespace
}  // namespace sluice::ha
